#include "parley/storage/message_repository.h"

#include <fmt/format.h>

#include <algorithm>

namespace parley::storage {

namespace {
#define PARLEY_MESSAGE_COLUMNS \
  "id, conversation_id, channel, platform_id, role, author, text, created_at, metadata"
constexpr const char* kRecentSql =
    "SELECT " PARLEY_MESSAGE_COLUMNS
    " FROM (SELECT * FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?)"
    " ORDER BY id";
constexpr const char* kGetMessageSql =
    "SELECT " PARLEY_MESSAGE_COLUMNS " FROM messages WHERE id = ?";
constexpr const char* kReplyAfterSql =
    "SELECT " PARLEY_MESSAGE_COLUMNS
    " FROM messages WHERE conversation_id = ? AND id > ? AND role = 'assistant' ORDER BY id "
    "LIMIT 1";
constexpr const char* kFindSql =
    "SELECT " PARLEY_MESSAGE_COLUMNS " FROM messages WHERE channel = ? AND platform_id = ?";
// The last message of each conversation (messages_conversation serves the grouping), when it is
// a user's, recent enough, from before `max_id`, and nothing was spent or queued for it.
constexpr const char* kUnansweredSql =
    "SELECT m.id, m.conversation_id, m.channel, m.platform_id, m.role, m.author, m.text, "
    "m.created_at, m.metadata, c.external_id "
    "FROM (SELECT conversation_id, MAX(id) AS last FROM messages GROUP BY conversation_id) l "
    "JOIN messages m ON m.id = l.last JOIN conversations c ON c.id = m.conversation_id "
    "WHERE m.role = 'user' AND m.created_at >= ?1 AND m.id <= ?2 "
    "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.conversation_id = m.conversation_id "
    "AND o.reply_to >= m.id) "
    "AND NOT EXISTS (SELECT 1 FROM usage u WHERE u.conversation_id = m.conversation_id "
    "AND u.purpose IN ('turn', 'tool_step') "
    "AND (u.message_id >= m.id OR (u.message_id IS NULL AND u.ts > m.created_at))) "
    "ORDER BY m.id LIMIT ?3";
#undef PARLEY_MESSAGE_COLUMNS

StoredMessage read_message(const Statement& st) {
  StoredMessage m;
  m.id = st.column_int64(0);
  m.conversation_id = st.column_int64(1);
  m.channel = st.column_text(2);
  if (!st.column_is_null(3)) m.platform_id = st.column_text(3);
  m.role = st.column_text(4);
  m.author = st.column_text(5);
  m.text = st.column_text(6);
  m.created_at = st.column_int64(7);
  m.metadata = st.column_text(8);
  return m;
}

Status validate(const NewMessage& m) {
  if (m.channel.empty()) return fail(ErrorCode::invalid_argument, "message has no channel");
  if (m.platform_id && m.platform_id->empty()) {
    return fail(ErrorCode::invalid_argument, "message has an empty platform_id");
  }
  return {};
}
}  // namespace

WriteJob MessageRepository::make_job(NewMessage message, WriteCallback done) {
  if (message.created_at == 0) message.created_at = clock_.now_ms();
  auto msg = std::make_shared<StoredMessage>();
  msg->conversation_id = message.conversation_id;
  msg->channel = std::move(message.channel);
  msg->platform_id = std::move(message.platform_id);
  msg->role = std::move(message.role);
  msg->author = std::move(message.author);
  msg->text = std::move(message.text);
  msg->created_at = message.created_at;
  msg->metadata = std::move(message.metadata);

  WriteJob job;
  job.what = "append message";
  job.apply = [msg](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "INSERT INTO messages(conversation_id, channel, platform_id, role, author, text, "
        "created_at, metadata) VALUES (?,?,?,?,?,?,?,?) "
        "ON CONFLICT(channel, platform_id) DO NOTHING RETURNING id");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(msg->conversation_id, msg->channel, msg->platform_id, msg->role, msg->author,
                    msg->text, msg->created_at, msg->metadata);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (*row) {
      msg->id = (*st)->column_int64(0);
      return WriteAck{msg->id, true};
    }
    // Redelivery: the unique (channel, platform_id) row already exists.
    auto existing = conn.cached("SELECT id FROM messages WHERE channel = ? AND platform_id = ?");
    if (!existing) return fail(std::move(existing).error());
    (*existing)->bind_all(msg->channel, msg->platform_id);
    auto found = (*existing)->step();
    if (!found) return fail(std::move(found).error());
    if (!*found) return fail(ErrorCode::internal, "message conflict without an existing row");
    return WriteAck{(*existing)->column_int64(0), false};
  };
  job.on_commit = [this, msg](const WriteAck& ack) {
    if (!ack.inserted) return;
    std::shared_ptr<const StoredMessage> stored = msg;
    cache_.on_commit(CacheKey{CacheKind::history, msg->conversation_id}, [&](CacheValue& v) {
      const auto& old = *std::get<std::shared_ptr<const History>>(v);
      auto next = std::make_shared<History>();
      const size_t keep = std::min(old.size(), history_ > 0 ? history_ - 1 : 0);
      next->reserve(keep + 1);
      next->insert(next->end(), old.end() - static_cast<std::ptrdiff_t>(keep), old.end());
      next->push_back(stored);
      v = std::shared_ptr<const History>(std::move(next));
      return true;
    });
  };
  job.done = std::move(done);
  return job;
}

Result<WriteJob> MessageRepository::append_job(NewMessage message) {
  if (auto v = validate(message); !v) return fail(std::move(v).error());
  return make_job(std::move(message), {});
}

void MessageRepository::append(NewMessage message, WriteCallback done) {
  if (auto v = validate(message); !v) {
    done(fail(std::move(v).error()));
    return;
  }
  writes_.submit(make_job(std::move(message), std::move(done)));
}

std::future<Result<WriteAck>> MessageRepository::append(NewMessage message) {
  if (auto v = validate(message); !v) return failed_write(std::move(v).error());
  return writes_.submit_for_future(make_job(std::move(message), {}));
}

Result<std::shared_ptr<const History>> MessageRepository::recent(int64_t conversation_id) {
  return read_through<History>(
      cache_, CacheKey{CacheKind::history, conversation_id},
      [&]() -> Result<std::shared_ptr<const History>> {
        auto conn = reads_.acquire();
        auto st = conn->cached(kRecentSql);
        if (!st) return fail(std::move(st).error());
        (*st)->bind_all(conversation_id, static_cast<int64_t>(history_));
        auto history = std::make_shared<History>();
        for (;;) {
          auto row = (*st)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) break;
          history->push_back(std::make_shared<const StoredMessage>(read_message(**st)));
        }
        return std::shared_ptr<const History>(std::move(history));
      });
}

Result<StoredMessage> MessageRepository::get(int64_t id) {
  auto conn = reads_.acquire();
  auto st = conn->cached(kGetMessageSql);
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return fail(ErrorCode::not_found, fmt::format("no message with id {}", id));
  return read_message(**st);
}

Result<int64_t> MessageRepository::last_id() {
  auto conn = reads_.acquire();
  auto st = conn->cached("SELECT coalesce(max(id), 0) FROM messages");
  if (!st) return fail(std::move(st).error());
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  return *row ? (*st)->column_int64(0) : int64_t{0};
}

Result<bool> MessageRepository::answered(int64_t conversation_id, int64_t id) {
  auto conn = reads_.acquire();
  auto st = conn->cached(
      "SELECT EXISTS(SELECT 1 FROM messages WHERE conversation_id = ? AND id > ? AND "
      "role = 'assistant')");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(conversation_id, id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  return *row && (*st)->column_int64(0) != 0;
}

Result<std::optional<StoredMessage>> MessageRepository::reply_after(int64_t conversation_id,
                                                                    int64_t id) {
  auto conn = reads_.acquire();
  auto st = conn->cached(kReplyAfterSql);
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(conversation_id, id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<StoredMessage>();
  return std::optional<StoredMessage>(read_message(**st));
}

Result<std::vector<UnansweredMessage>> MessageRepository::unanswered(int64_t since_ms,
                                                                     int64_t max_id, size_t limit) {
  auto conn = reads_.acquire();
  auto st = conn->cached(kUnansweredSql);
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(since_ms, max_id, static_cast<int64_t>(limit));
  std::vector<UnansweredMessage> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    out.push_back(UnansweredMessage{read_message(**st), (*st)->column_text(9)});
  }
  return out;
}

Result<std::optional<StoredMessage>> MessageRepository::find(std::string_view channel,
                                                             std::string_view platform_id) {
  auto conn = reads_.acquire();
  auto st = conn->cached(kFindSql);
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(channel, platform_id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<StoredMessage>();
  return std::optional<StoredMessage>(read_message(**st));
}

Result<std::optional<ConversationSummary>> MessageRepository::latest_summary(
    int64_t conversation_id) {
  auto conn = reads_.acquire();
  auto st = conn->cached(
      "SELECT id, conversation_id, through_message_id, text, tokens, model, created_at FROM "
      "conversation_summaries WHERE conversation_id = ? ORDER BY id DESC LIMIT 1");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(conversation_id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<ConversationSummary>();
  ConversationSummary s;
  s.id = (*st)->column_int64(0);
  s.conversation_id = (*st)->column_int64(1);
  s.through_message_id = (*st)->column_int64(2);
  s.text = (*st)->column_text(3);
  s.tokens = (*st)->column_int64(4);
  s.model = (*st)->column_text(5);
  s.created_at = (*st)->column_int64(6);
  return std::optional<ConversationSummary>(std::move(s));
}

void MessageRepository::add_summary(ConversationSummary summary, WriteCallback done) {
  if (summary.text.empty() || summary.conversation_id <= 0) {
    done(fail(ErrorCode::invalid_argument, "a summary needs a conversation and a text"));
    return;
  }
  summary.created_at = clock_.now_ms();
  WriteJob job;
  job.what = "add summary";
  job.apply = [s = std::move(summary)](Connection& conn) -> Result<WriteAck> {
    auto newest = conn.cached(
        "SELECT coalesce(max(through_message_id), 0) FROM conversation_summaries WHERE "
        "conversation_id = ?");
    if (!newest) return fail(std::move(newest).error());
    (*newest)->bind_all(s.conversation_id);
    auto row = (*newest)->step();
    if (!row) return fail(std::move(row).error());
    const int64_t through = (*newest)->column_int64(0);
    (*newest)->reset();
    if (s.through_message_id <= through) return WriteAck{0, false};
    auto st = conn.cached(
        "INSERT INTO conversation_summaries(conversation_id, through_message_id, text, tokens, "
        "model, created_at) VALUES (?,?,?,?,?,?)");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)
                   ->bind_all(s.conversation_id, s.through_message_id, s.text, s.tokens, s.model,
                              s.created_at)
                   .run());
    return WriteAck{conn.last_insert_rowid(), true};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

}  // namespace parley::storage
