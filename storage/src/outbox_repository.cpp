#include "parley/storage/outbox_repository.h"

#include <fmt/format.h>

#include <random>
#include <span>

namespace parley::storage {

namespace {

constexpr const char* kOutboxColumns =
    "id, conversation_id, channel, target, body, state, attempts, created_at";

OutboxEntry read_entry(const Statement& st) {
  OutboxEntry e;
  e.id = st.column_int64(0);
  e.conversation_id = st.column_opt_int64(1);
  e.channel = st.column_text(2);
  e.target = st.column_text(3);
  e.body = st.column_text(4);
  e.state = st.column_text(5);
  e.attempts = st.column_int64(6);
  e.created_at = st.column_int64(7);
  return e;
}

// An UPDATE of one entry; not_found when it does not exist (or is not in a state the update
// applies to).
WriteJob update_job(std::string what, std::string sql, int64_t id, int64_t now,
                    std::optional<std::string> text = {}) {
  WriteJob job;
  job.what = std::move(what);
  job.apply = [sql = std::move(sql), id, now,
               text = std::move(text)](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(sql);
    if (!st) return fail(std::move(st).error());
    if (text) {
      (*st)->bind_all(now, *text, id);
    } else {
      (*st)->bind_all(now, id);
    }
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (conn.changes() == 0) {
      return fail(ErrorCode::not_found, fmt::format("no outbox entry {} to update", id));
    }
    return WriteAck{id, false};
  };
  return job;
}

// Inserts `files` for entry `outbox_id` (inside the caller's transaction).
Status insert_files(Connection& conn, int64_t outbox_id, const std::vector<OutboxFile>& files,
                    int64_t now) {
  if (files.empty()) return {};
  auto st = conn.cached(
      "INSERT INTO outbox_files(outbox_id, token, filename, media_type, content, created_at) "
      "VALUES (?,?,?,?,?,?)");
  if (!st) return fail(std::move(st).error());
  for (const auto& f : files) {
    (*st)->bind_all(outbox_id, f.token, f.filename, f.media_type,
                    std::as_bytes(std::span(f.content.data(), f.content.size())), now);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
  }
  return {};
}

std::vector<OutboxFile> with_tokens(std::vector<OutboxFile> files) {
  for (auto& f : files) {
    if (f.token.empty()) f.token = new_file_token();
  }
  return files;
}

std::optional<int64_t> reply_column(int64_t reply_to) {
  return reply_to > 0 ? std::optional<int64_t>(reply_to) : std::nullopt;
}

WriteJob add_job(std::optional<int64_t> conversation_id, std::string channel, std::string target,
                 std::string body, std::vector<OutboxFile> files, int64_t now, int64_t reply_to) {
  WriteJob job;
  job.what = "outbox add";
  job.apply = [=, channel = std::move(channel), target = std::move(target), body = std::move(body),
               files = with_tokens(std::move(files))](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "INSERT INTO outbox(conversation_id, channel, target, body, state, created_at, "
        "updated_at, reply_to) VALUES (?,?,?,?, 'pending', ?, ?, ?) RETURNING id");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(conversation_id, channel, target, body, now, now, reply_column(reply_to));
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    const int64_t id = (*st)->column_int64(0);
    (*st)->reset();
    PARLEY_TRY(insert_files(conn, id, files, now));
    return WriteAck{id, true};
  };
  return job;
}

WriteJob add_parts_job(std::optional<int64_t> conversation_id, std::string channel,
                       std::string target, std::vector<std::string> bodies,
                       std::vector<OutboxFile> files, int64_t now, int64_t reply_to) {
  WriteJob job;
  job.what = "outbox add parts";
  job.apply = [=, channel = std::move(channel), target = std::move(target),
               bodies = std::move(bodies),
               files = with_tokens(std::move(files))](Connection& conn) -> Result<WriteAck> {
    if (bodies.empty()) return fail(ErrorCode::invalid_argument, "an outbox reply without parts");
    auto st = conn.cached(
        "INSERT INTO outbox(conversation_id, channel, target, body, state, created_at, "
        "updated_at, reply_to) VALUES (?,?,?,?, 'pending', ?, ?, ?) RETURNING id");
    if (!st) return fail(std::move(st).error());
    int64_t first = 0;
    for (size_t i = 0; i < bodies.size(); ++i) {
      (*st)->bind_all(conversation_id, channel, target, bodies[i], now, now,
                      reply_column(reply_to));
      auto row = (*st)->step();
      if (!row) return fail(std::move(row).error());
      const int64_t id = (*st)->column_int64(0);
      if (i == 0) {
        first = id;
      } else if (id != first + static_cast<int64_t>(i)) {
        // One writer, one transaction: rowids follow each other. Checked, not assumed.
        return fail(ErrorCode::internal,
                    fmt::format("outbox parts got ids {} and {}: not consecutive", first, id));
      }
    }
    (*st)->reset();
    PARLEY_TRY(insert_files(conn, first + static_cast<int64_t>(bodies.size()) - 1, files, now));
    return WriteAck{first, true};
  };
  return job;
}

constexpr const char* kBeginSend =
    "UPDATE outbox SET attempts = attempts + 1, updated_at = ? WHERE id = ? AND state = 'pending'";
constexpr const char* kSent =
    "UPDATE outbox SET state = 'sent', updated_at = ? WHERE id = ? AND state = 'pending'";

void submit_with(WriteQueue& writes, WriteJob job, WriteCallback done) {
  job.done = std::move(done);
  writes.submit(std::move(job));
}

}  // namespace

std::string new_file_token() {
  thread_local std::random_device device;
  std::string out;
  out.reserve(32);
  for (int i = 0; i < 4; ++i) out += fmt::format("{:08x}", static_cast<uint32_t>(device()));
  return out;
}

std::future<Result<WriteAck>> OutboxRepository::add(std::optional<int64_t> conversation_id,
                                                    std::string channel, std::string target,
                                                    std::string body) {
  return writes_.submit_for_future(
      make_add_job(conversation_id, std::move(channel), std::move(target), std::move(body)));
}

void OutboxRepository::add(std::optional<int64_t> conversation_id, std::string channel,
                           std::string target, std::string body, WriteCallback done,
                           std::vector<OutboxFile> files, int64_t reply_to) {
  submit_with(writes_,
              make_add_job(conversation_id, std::move(channel), std::move(target), std::move(body),
                           std::move(files), reply_to),
              std::move(done));
}

void OutboxRepository::add_parts(std::optional<int64_t> conversation_id, std::string channel,
                                 std::string target, std::vector<std::string> bodies,
                                 WriteCallback done, std::vector<OutboxFile> files) {
  submit_with(writes_,
              make_add_parts_job(conversation_id, std::move(channel), std::move(target),
                                 std::move(bodies), std::move(files)),
              std::move(done));
}

WriteJob OutboxRepository::make_add_job(std::optional<int64_t> conversation_id, std::string channel,
                                        std::string target, std::string body,
                                        std::vector<OutboxFile> files, int64_t reply_to) {
  return add_job(conversation_id, std::move(channel), std::move(target), std::move(body),
                 std::move(files), clock_.now_ms(), reply_to);
}

WriteJob OutboxRepository::make_add_parts_job(std::optional<int64_t> conversation_id,
                                              std::string channel, std::string target,
                                              std::vector<std::string> bodies,
                                              std::vector<OutboxFile> files, int64_t reply_to) {
  return add_parts_job(conversation_id, std::move(channel), std::move(target), std::move(bodies),
                       std::move(files), clock_.now_ms(), reply_to);
}

std::future<Result<WriteAck>> OutboxRepository::begin_send(int64_t id) {
  return writes_.submit_for_future(
      update_job("outbox begin send", kBeginSend, id, clock_.now_ms()));
}

void OutboxRepository::begin_send(int64_t id, WriteCallback done) {
  submit_with(writes_, update_job("outbox begin send", kBeginSend, id, clock_.now_ms()),
              std::move(done));
}

std::future<Result<WriteAck>> OutboxRepository::mark_sent(int64_t id) {
  return writes_.submit_for_future(update_job("outbox sent", kSent, id, clock_.now_ms()));
}

void OutboxRepository::mark_sent(int64_t id, WriteCallback done) {
  submit_with(writes_, update_job("outbox sent", kSent, id, clock_.now_ms()), std::move(done));
}

std::future<Result<WriteAck>> OutboxRepository::mark_failed(int64_t id, std::string error) {
  return writes_.submit_for_future(update_job(
      "outbox failed",  // The send certainly did not happen: no longer counted as begun, so a
                        // restart sends it rather than marking it unknown.
      "UPDATE outbox SET attempts = max(attempts - 1, 0), updated_at = ?, last_error = ? "
      "WHERE id = ? AND state = 'pending'",
      id, clock_.now_ms(), std::move(error)));
}

Result<int64_t> OutboxRepository::settle_after_restart() {
  const int64_t now = clock_.now_ms();
  auto done = writes_.submit(
      [now](Connection& conn) -> Result<WriteAck> {
        auto st = conn.cached(
            "UPDATE outbox SET state = 'unknown', updated_at = ?, "
            "last_error = 'the process stopped during the send' "
            "WHERE state = 'pending' AND attempts > 0");
        if (!st) return fail(std::move(st).error());
        (*st)->bind_all(now);
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        return WriteAck{static_cast<int64_t>(conn.changes()), false};
      },
      {}, "outbox settle");
  auto r = done.get();
  if (!r) return fail(std::move(r).error());
  return r->row_id;
}

Result<std::vector<OutboxEntry>> OutboxRepository::pending(size_t limit) {
  auto conn = reads_.acquire();
  auto st = conn->cached(fmt::format(
      "SELECT {} FROM outbox WHERE state = 'pending' ORDER BY id LIMIT ?", kOutboxColumns));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(static_cast<int64_t>(limit));
  std::vector<OutboxEntry> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    out.push_back(read_entry(**st));
  }
  return out;
}

Result<std::vector<OutboxEntry>> OutboxRepository::pending_for(const std::string& channel,
                                                               int64_t after_id, size_t limit) {
  auto conn = reads_.acquire();
  auto st =
      conn->cached(fmt::format("SELECT {} FROM outbox WHERE state = 'pending' AND channel = ? AND "
                               "id > ? ORDER BY id LIMIT ?",
                               kOutboxColumns));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(channel, after_id, static_cast<int64_t>(limit));
  std::vector<OutboxEntry> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    out.push_back(read_entry(**st));
  }
  return out;
}

Result<OutboxEntry> OutboxRepository::get(int64_t id) {
  auto conn = reads_.acquire();
  auto st = conn->cached(fmt::format("SELECT {} FROM outbox WHERE id = ?", kOutboxColumns));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return fail(ErrorCode::not_found, fmt::format("no outbox entry {}", id));
  OutboxEntry entry = read_entry(**st);
  auto files = conn->cached(
      "SELECT filename, media_type, content, token FROM outbox_files WHERE outbox_id = ? "
      "ORDER BY id");
  if (!files) return fail(std::move(files).error());
  (*files)->bind_all(id);
  for (;;) {
    auto r = (*files)->step();
    if (!r) return fail(std::move(r).error());
    if (!*r) break;
    entry.files.push_back(OutboxFile{(*files)->column_text(0), (*files)->column_text(1),
                                     std::string((*files)->column_blob(2)),
                                     (*files)->column_text(3)});
  }
  return entry;
}

Result<std::optional<OutboxEntry>> OutboxRepository::first_reply(int64_t conversation_id,
                                                                 int64_t message_id,
                                                                 int64_t since_ms) {
  int64_t id = 0;
  {
    auto conn = reads_.acquire();
    auto st = conn->cached(
        "SELECT id FROM outbox WHERE conversation_id = ?1 AND (reply_to >= ?2 OR "
        "(reply_to IS NULL AND created_at >= ?3)) ORDER BY id LIMIT 1");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(conversation_id, message_id, since_ms);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) return std::optional<OutboxEntry>();
    id = (*st)->column_int64(0);
  }
  auto entry = get(id);
  if (!entry) return fail(std::move(entry).error());
  return std::optional<OutboxEntry>(std::move(*entry));
}

std::future<Result<WriteAck>> OutboxRepository::prune_files(int64_t before_ms) {
  WriteJob job;
  job.what = "outbox prune files";
  job.apply = [before_ms](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "DELETE FROM outbox_files WHERE created_at < ? AND outbox_id IN "
        "(SELECT id FROM outbox WHERE state <> 'pending')");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(before_ms);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    return WriteAck{static_cast<int64_t>(conn.changes()), false};
  };
  return writes_.submit_for_future(std::move(job));
}

Result<OutboxFileFound> OutboxRepository::file(const std::string& token) {
  auto conn = reads_.acquire();
  auto st = conn->cached(
      "SELECT f.filename, f.media_type, f.content, f.token, f.outbox_id, o.channel, "
      "f.created_at FROM outbox_files f JOIN outbox o ON o.id = f.outbox_id WHERE f.token = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(token);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return fail(ErrorCode::not_found, "no such file");
  OutboxFileFound out;
  out.file = OutboxFile{(*st)->column_text(0), (*st)->column_text(1),
                        std::string((*st)->column_blob(2)), (*st)->column_text(3)};
  out.outbox_id = (*st)->column_int64(4);
  out.channel = (*st)->column_text(5);
  out.created_at = (*st)->column_int64(6);
  return out;
}

}  // namespace parley::storage
