#include "parley/storage/directory.h"

#include <fmt/format.h>

namespace parley::storage {

namespace {
Status require(const std::string& value, const char* what) {
  if (value.empty()) return fail(ErrorCode::invalid_argument, fmt::format("{} is empty", what));
  return {};
}
}  // namespace

Result<WriteJob> Directory::user_job(std::string channel, std::string external_id,
                                     std::string display_name) {
  PARLEY_TRY(require(channel, "channel"));
  PARLEY_TRY(require(external_id, "external id"));
  const int64_t now = clock_.now_ms();
  WriteJob job;
  job.what = "ensure user";
  job.apply = [channel = std::move(channel), external_id = std::move(external_id),
               name = std::move(display_name), now](Connection& conn) -> Result<WriteAck> {
    auto find = conn.cached("SELECT user_id FROM identities WHERE channel = ? AND external_id = ?");
    if (!find) return fail(std::move(find).error());
    (*find)->bind_all(channel, external_id);
    auto row = (*find)->step();
    if (!row) return fail(std::move(row).error());
    if (*row) return WriteAck{(*find)->column_int64(0), false};

    auto user = conn.cached("INSERT INTO users(display_name, created_at) VALUES (?, ?)");
    if (!user) return fail(std::move(user).error());
    PARLEY_TRY((*user)->bind_all(name.empty() ? external_id : name, now).run());
    const int64_t user_id = conn.last_insert_rowid();
    auto ident = conn.cached(
        "INSERT INTO identities(user_id, channel, external_id, created_at) VALUES (?,?,?,?)");
    if (!ident) return fail(std::move(ident).error());
    PARLEY_TRY((*ident)->bind_all(user_id, channel, external_id, now).run());
    return WriteAck{user_id, true};
  };
  return job;
}

Result<WriteJob> Directory::conversation_job(std::string channel, std::string external_id,
                                             std::string title) {
  PARLEY_TRY(require(channel, "channel"));
  PARLEY_TRY(require(external_id, "external id"));
  const int64_t now = clock_.now_ms();
  WriteJob job;
  job.what = "ensure conversation";
  job.apply = [channel = std::move(channel), external_id = std::move(external_id),
               title = std::move(title), now](Connection& conn) -> Result<WriteAck> {
    auto ins = conn.cached(
        "INSERT INTO conversations(channel, external_id, title, created_at) VALUES (?,?,?,?) "
        "ON CONFLICT(channel, external_id) DO NOTHING RETURNING id");
    if (!ins) return fail(std::move(ins).error());
    (*ins)->bind_all(channel, external_id, title, now);
    auto row = (*ins)->step();
    if (!row) return fail(std::move(row).error());
    if (*row) return WriteAck{(*ins)->column_int64(0), true};
    auto find = conn.cached("SELECT id FROM conversations WHERE channel = ? AND external_id = ?");
    if (!find) return fail(std::move(find).error());
    (*find)->bind_all(channel, external_id);
    auto found = (*find)->step();
    if (!found) return fail(std::move(found).error());
    if (!*found) return fail(ErrorCode::internal, "conversation conflict without an existing row");
    return WriteAck{(*find)->column_int64(0), false};
  };
  if (cache_ != nullptr) {
    job.on_commit = [cache = cache_](const WriteAck& ack) {
      // Nothing can have been written to a conversation before the commit that created it.
      if (ack.inserted) {
        cache->put(CacheKey{CacheKind::history, ack.row_id},
                   std::shared_ptr<const History>(std::make_shared<History>()));
      }
    };
  }
  return job;
}

std::future<Result<WriteAck>> Directory::ensure_user(std::string channel, std::string external_id,
                                                     std::string display_name) {
  auto job = user_job(std::move(channel), std::move(external_id), std::move(display_name));
  if (!job) return failed_write(std::move(job).error());
  return writes_.submit_for_future(std::move(*job));
}

void Directory::ensure_user(std::string channel, std::string external_id, std::string display_name,
                            WriteCallback done) {
  auto job = user_job(std::move(channel), std::move(external_id), std::move(display_name));
  if (!job) return done(fail(std::move(job).error()));
  job->done = std::move(done);
  writes_.submit(std::move(*job));
}

std::future<Result<WriteAck>> Directory::ensure_conversation(std::string channel,
                                                             std::string external_id,
                                                             std::string title) {
  auto job = conversation_job(std::move(channel), std::move(external_id), std::move(title));
  if (!job) return failed_write(std::move(job).error());
  return writes_.submit_for_future(std::move(*job));
}

void Directory::ensure_conversation(std::string channel, std::string external_id, std::string title,
                                    WriteCallback done) {
  auto job = conversation_job(std::move(channel), std::move(external_id), std::move(title));
  if (!job) return done(fail(std::move(job).error()));
  job->done = std::move(done);
  writes_.submit(std::move(*job));
}

Result<int64_t> Directory::find_user(const std::string& channel, const std::string& external_id) {
  auto conn = reads_.acquire();
  auto st = conn->cached("SELECT user_id FROM identities WHERE channel = ? AND external_id = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(channel, external_id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) {
    return fail(ErrorCode::not_found, fmt::format("no user for {} identity", channel));
  }
  return (*st)->column_int64(0);
}

Result<std::string> Directory::identity_of(int64_t user_id) {
  auto conn = reads_.acquire();
  auto st = conn->cached(
      "SELECT channel, external_id FROM identities WHERE user_id = ? ORDER BY id LIMIT 1");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(user_id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return fail(ErrorCode::not_found, fmt::format("user {} has no identity", user_id));
  return (*st)->column_text(0) + ":" + (*st)->column_text(1);
}

Result<int64_t> Directory::find_conversation(const std::string& channel,
                                             const std::string& external_id) {
  auto conn = reads_.acquire();
  auto st = conn->cached("SELECT id FROM conversations WHERE channel = ? AND external_id = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(channel, external_id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) {
    return fail(ErrorCode::not_found, fmt::format("no {} conversation with that id", channel));
  }
  return (*st)->column_int64(0);
}

void Directory::note_refusal(std::string channel, std::string external_id, WriteCallback done) {
  const int64_t now = clock_.now_ms();
  WriteJob job;
  job.what = "note refusal";
  job.apply = [channel = std::move(channel), external_id = std::move(external_id),
               now](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "INSERT INTO access_refusals(channel, external_id, first_at, last_at) VALUES (?,?,?,?) "
        "ON CONFLICT(channel, external_id) DO UPDATE SET last_at = excluded.last_at, "
        "attempts = attempts + 1 RETURNING attempts");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(channel, external_id, now, now);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    const int64_t attempts = *row ? (*st)->column_int64(0) : 0;
    return WriteAck{attempts, attempts == 1};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

}  // namespace parley::storage
