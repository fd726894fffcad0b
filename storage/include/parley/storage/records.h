// Plain row types of the store. Value types; timestamps are Unix epoch milliseconds (UTC).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
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

// The most recent messages of a conversation, oldest first. Messages are shared, so appending
// to a cached history copies pointers, not text.
using History = std::vector<std::shared_ptr<const StoredMessage>>;

struct NewMemory {
  int64_t user_id = 0;
  std::string content;
  std::string tags{};  // space-separated words
  int importance = 0;
};

struct Memory {
  int64_t id = 0;
  int64_t user_id = 0;
  std::string content;
  std::string tags;
  int importance = 0;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

struct MemoryHit {
  std::shared_ptr<const Memory> memory;
  double score = 0;  // BM25 over the user's own memories: higher is more relevant
};

}  // namespace parley::storage
