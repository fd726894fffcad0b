// Plain row types of the store. Value types; timestamps are Unix epoch milliseconds (UTC).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::storage {

struct NewMessage {
  int64_t conversation_id = 0;
  std::string channel;
  std::optional<std::string> platform_id;  // the channel's id; redelivery is recognised by it
  std::string role = "user";               // user | assistant | system | tool
  std::string author;
  std::string text;
  int64_t created_at = 0;       // 0: now
  std::string metadata = "{}";  // a JSON object
};

struct StoredMessage {
  int64_t id = 0;
  int64_t conversation_id = 0;
  std::string channel;
  std::optional<std::string> platform_id;
  std::string role;
  std::string author;
  std::string text;
  int64_t created_at = 0;
  std::string metadata;
};

// A user's message left without an answer (MessageRepository::unanswered), with the channel's
// key of its conversation (what the channel put in InboundMessage::conversation).
struct UnansweredMessage {
  StoredMessage message;
  std::string conversation_key;
};

// The most recent messages of a conversation, oldest first. Messages are shared, so appending
// to a cached history copies pointers, not text.
using History = std::vector<std::shared_ptr<const StoredMessage>>;

// The kinds of memory (the layers of the seed schemas), as stored in memories.kind.
inline constexpr const char* kMemoryKinds[] = {"fact",      "preference", "event",    "emotion",
                                               "goal",      "habit",      "decision", "identity",
                                               "procedure", "insight"};
bool memory_kind_known(std::string_view kind);

struct NewMemory {
  int64_t user_id = 0;
  std::string content;
  std::string tags{};  // space-separated words
  int importance = 0;
  std::string kind{"fact"};           // one of kMemoryKinds
  std::optional<int64_t> event_at{};  // when it happened, if known
  double confidence = 1.0;            // 0..1
  std::string source{"user"};         // user | tool | extracted | import
  int64_t source_message_id = 0;      // 0: none
  std::string external_id{};          // an importer's id, unique per user; "" none
  std::string reason{};               // for the trail (memory_events)
  std::string model{};                // the model that extracted it, for the trail
};

struct Memory {
  int64_t id = 0;
  int64_t user_id = 0;
  std::string content;
  std::string tags;
  int importance = 0;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::string kind{"fact"};
  std::optional<int64_t> event_at{};
  std::optional<int64_t> valid_to{};  // set when superseded
  int64_t superseded_by = 0;          // 0: current
  double confidence = 1.0;
  std::string source{"user"};
  int64_t source_message_id = 0;
  std::string content_hash{};
  int64_t access_count = 0;
  std::optional<int64_t> last_accessed_at{};
  std::optional<int64_t> deleted_at{};  // forgotten (purged after a grace period)
  std::string external_id{};

  [[nodiscard]] bool current() const { return superseded_by == 0 && !deleted_at; }
};

struct MemoryHit {
  std::shared_ptr<const Memory> memory;
  double score = 0;  // BM25 over the user's own memories: higher is more relevant
};

// The short-term layer: what a conversation said before the messages a prompt still holds.
struct ConversationSummary {
  int64_t id = 0;
  int64_t conversation_id = 0;
  int64_t through_message_id = 0;  // every message up to this id is in it
  std::string text;
  int64_t tokens = 0;
  std::string model{};
  int64_t created_at = 0;
};

// One row of memory_events: a change to a memory.
struct MemoryEvent {
  int64_t id = 0;
  int64_t memory_id = 0;
  int64_t user_id = 0;
  std::string op;  // ADD, UPDATE, SUPERSEDE, NOOP, FORGET, RESTORE
  std::optional<std::string> old_text{};
  std::optional<std::string> new_text{};
  int64_t related_id = 0;  // SUPERSEDE: the memory that replaced this one
  std::string reason{};
  std::string source{};
  int64_t source_message_id = 0;
  std::string model{};
  int64_t created_at = 0;
};

}  // namespace parley::storage
