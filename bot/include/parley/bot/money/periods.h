// Calendar periods in one time zone: the days and months budgets, spend alerts and reports
// count in. A day is local midnight to local midnight (23 or 25 hours across a DST change).
//
// Thread safety: immutable after construction; share freely.
#pragma once

#include <cstdint>
#include <string>

namespace date {
class time_zone;
}

namespace parley::bot::money {

class Periods {
 public:
  // Throws std::runtime_error naming the zone when it is not an IANA zone on this system.
  explicit Periods(const std::string& zone = "UTC");

  [[nodiscard]] const std::string& zone() const { return name_; }
  // "2026-12-05" / "2026-12" for the instant `ms` (epoch ms).
  [[nodiscard]] std::string day_key(int64_t ms) const;
  [[nodiscard]] std::string month_key(int64_t ms) const;
  // Epoch ms of the start of the day / month holding `ms`, and of the next one.
  [[nodiscard]] int64_t day_start(int64_t ms) const;
  [[nodiscard]] int64_t next_day(int64_t ms) const;
  [[nodiscard]] int64_t month_start(int64_t ms) const;
  [[nodiscard]] int64_t next_month(int64_t ms) const;

 private:
  std::string name_;
  const date::time_zone* tz_ = nullptr;
};

}  // namespace parley::bot::money
