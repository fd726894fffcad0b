// The pipeline's settings that parley.yaml sets (read by config/). Plain data.
#pragma once

#include <chrono>
#include <cstddef>

namespace parley::bot::pipeline {

// Conversation lanes (`lanes:`): a burst settles `debounce` after its last message, but waits
// at most `max_wait` after the turn before it.
struct LaneOptions {
  size_t shards = 64;
  std::chrono::milliseconds debounce{400};
  std::chrono::milliseconds max_wait{2000};
  size_t max_batch = 16;  // messages answered by one turn at most
};

}  // namespace parley::bot::pipeline
