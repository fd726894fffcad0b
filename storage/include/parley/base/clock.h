// Time as parley stores it: Unix epoch milliseconds, UTC. Tests inject a Clock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace parley {

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual int64_t now_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  [[nodiscard]] int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static const SystemClock& instance() {
    static const SystemClock kClock;
    return kClock;
  }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : ms_(start_ms) {}
  [[nodiscard]] int64_t now_ms() const override { return ms_.load(); }
  void advance_ms(int64_t d) { ms_ += d; }
  void set_ms(int64_t v) { ms_ = v; }

 private:
  std::atomic<int64_t> ms_;
};

}  // namespace parley
