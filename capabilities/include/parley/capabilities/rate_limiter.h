// RateLimiter: per user and capability, at most `calls` calls in any window of `per` (a
// sliding window over the times of the recent calls). Used by the tool loop and by /commands
// alike, so a limit cannot be dodged by asking the model instead.
//
// Thread safety: all methods may be called from any thread. The state is guarded by one mutex
// held for a few map operations (no I/O under it); the message path takes it at most once per
// capability call.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "parley/capabilities/config.h"

namespace parley::capabilities {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // Records a call at `now` and returns true when it is within `limit`; false (and nothing
  // recorded) when the caller is over it. `retry_after`, when given, receives how long until
  // the next call would be allowed.
  bool allow(int64_t user_id, const std::string& capability, const RateLimit& limit,
             Clock::time_point now = Clock::now(), std::chrono::seconds* retry_after = nullptr);

 private:
  std::mutex mu_;
  std::map<std::pair<int64_t, std::string>, std::deque<Clock::time_point>>
      calls_;                       // GUARDED_BY(mu_)
  uint64_t calls_since_sweep_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace parley::capabilities
