#include "parley/capabilities/rate_limiter.h"

namespace parley::capabilities {

bool RateLimiter::allow(int64_t user_id, const std::string& capability, const RateLimit& limit,
                        Clock::time_point now, std::chrono::seconds* retry_after) {
  if (limit.calls <= 0) return true;
  std::lock_guard lock(mu_);
  // Now and then, forget callers whose calls have all left their window, so that the map does
  // not grow with every sender ever seen.
  if (++calls_since_sweep_ >= 4096) {
    calls_since_sweep_ = 0;
    std::erase_if(calls_, [&](const auto& kv) {
      return kv.second.empty() || now - kv.second.back() >= limit.per;
    });
  }
  auto& times = calls_[{user_id, capability}];
  while (!times.empty() && now - times.front() >= limit.per) times.pop_front();
  if (times.size() >= static_cast<size_t>(limit.calls)) {
    if (retry_after != nullptr) {
      const auto wait = limit.per - (now - times.front());
      *retry_after = std::chrono::ceil<std::chrono::seconds>(wait);
    }
    return false;
  }
  times.push_back(now);
  return true;
}

}  // namespace parley::capabilities
