// Messages: durable append through the write queue (deduplicated on (channel, platform_id)),
// and the recent history of a conversation served from the hot cache.
//
// Thread safety: all methods are safe from any thread. append() callbacks run on the writer
// thread after the commit.
#pragma once

#include <future>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/hot_cache.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/records.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

class MessageRepository {
 public:
  MessageRepository(WriteQueue& writes, ReadPool& reads, HotCache& cache, const Clock& clock,
                    size_t history_messages)
      : writes_(writes), reads_(reads), cache_(cache), clock_(clock), history_(history_messages) {}

  // Acknowledged after commit with the row id; ack.inserted is false when a message with the
  // same (channel, platform_id) was already stored (a redelivery: nothing new is written).
  void append(NewMessage message, WriteCallback done);
  std::future<Result<WriteAck>> append(NewMessage message);

  // The last `history_messages` messages of the conversation, oldest first.
  Result<std::shared_ptr<const History>> recent(int64_t conversation_id);

  Result<StoredMessage> get(int64_t id);
  Result<std::optional<StoredMessage>> find(std::string_view channel, std::string_view platform_id);
  // The largest message id stored (0: none).
  Result<int64_t> last_id();
  // Whether a reply (an assistant message) follows message `id` in its conversation.
  Result<bool> answered(int64_t conversation_id, int64_t id);
  // The first reply (an assistant message) after message `id` in its conversation, if any.
  Result<std::optional<StoredMessage>> reply_after(int64_t conversation_id, int64_t id);
  // Messages a crash left unanswered: the last message of its conversation, a user's, stored at
  // or after `since_ms` with an id at most `max_id`, and with no reply queued for it and no turn's
  // LLM usage for it (purpose turn or tool_step: memory extraction and summaries are not the
  // answer), so a turn that spent money or queued a reply is never run again. "For it": for this
  // message or a later one, by id (outbox.reply_to, usage.message_id; usage rows from before
  // that column by time, strictly after the message's millisecond — an outbox entry without
  // reply_to is a reminder or an alert, never an answer). Oldest first, at most `limit`.
  Result<std::vector<UnansweredMessage>> unanswered(int64_t since_ms, int64_t max_id,
                                                    size_t limit = 1000);

  // The newest summary of the conversation, if any.
  Result<std::optional<ConversationSummary>> latest_summary(int64_t conversation_id);
  // Stores a newer summary (created_at: now); a summary that does not reach further than the
  // newest one stored is not kept (ack.inserted false).
  void add_summary(ConversationSummary summary, WriteCallback done);

  [[nodiscard]] size_t history_limit() const { return history_; }

  // The job append() submits (checked the same way), for a joint write (write_queue.h: joint)
  // with what must commit with it.
  Result<WriteJob> append_job(NewMessage message);

 private:
  WriteJob make_job(NewMessage message, WriteCallback done);

  WriteQueue& writes_;
  ReadPool& reads_;
  HotCache& cache_;
  const Clock& clock_;
  const size_t history_;
};

}  // namespace parley::storage
