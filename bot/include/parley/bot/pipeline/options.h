// The pipeline's settings that parley.yaml sets (read by config/). Plain data.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace parley::bot::pipeline {

// Conversation lanes (`lanes:`): a burst settles `debounce` after its last message, but waits
// at most `max_wait` after the turn before it.
struct LaneOptions {
  size_t shards = 64;
  std::chrono::milliseconds debounce{400};
  std::chrono::milliseconds max_wait{2000};
  size_t max_batch = 16;  // messages answered by one turn at most
  // Back-pressure: with this many messages queued or answered at once, a new one is refused
  // (nothing kept: HTTP 503 with Retry-After, email fetched again later) rather than growing
  // memory without bound under a burst; 0: no limit.
  size_t max_active = 10'000;
};

// Memory (`memory:`): the vectors' dimensions, and automatic extraction (memory_extractor.h).
struct ExtractionOptions {
  bool enabled = true;
  std::chrono::milliseconds quiet{std::chrono::minutes(2)};  // after a conversation's last turn
  int max_tokens = 600;                                      // of the model's answer
  int daily_calls_per_user = 50;   // extraction calls per user per UTC day
  size_t max_messages = 40;        // the newest unread messages read at once
  size_t existing = 10;            // similar memories shown to the model
  size_t max_ops = 12;             // operations applied from one answer
  double duplicate_cosine = 0.92;  // a new memory this close to one of its kind is a duplicate
  std::string role;                // empty: `extract`, else `fast`, else the default role
};

struct MemoryOptions {
  int dimensions = 512;  // of the embeddings (the `embed` role's `dimensions` request field)
  ExtractionOptions extraction;
};

}  // namespace parley::bot::pipeline
