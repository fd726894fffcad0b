#include "parley/base/time_format.h"

#include <fmt/format.h>

#include <chrono>

namespace parley {

namespace {

struct Parts {
  std::chrono::year_month_day day;
  std::chrono::hh_mm_ss<std::chrono::seconds> time;
};

// Floors toward the past, so that -1 ms is 1969-12-31T23:59:59Z.
Parts parts_of(int64_t ms) {
  using namespace std::chrono;
  const auto t = floor<seconds>(sys_time<milliseconds>(milliseconds{ms}));
  const auto day = floor<days>(t);
  return {year_month_day{day}, hh_mm_ss<seconds>{t - day}};
}

std::string day_text(const std::chrono::year_month_day& d) {
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(d.year()),
                     static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
}

}  // namespace

std::string iso_utc(int64_t ms) {
  const auto p = parts_of(ms);
  return fmt::format("{}T{:02}:{:02}:{:02}Z", day_text(p.day), p.time.hours().count(),
                     p.time.minutes().count(), p.time.seconds().count());
}

std::string utc_day(int64_t ms) { return day_text(parts_of(ms).day); }

std::string utc_minute(int64_t ms) {
  const auto p = parts_of(ms);
  return fmt::format("{} {:02}:{:02}", day_text(p.day), p.time.hours().count(),
                     p.time.minutes().count());
}

}  // namespace parley
