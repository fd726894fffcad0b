#include "parley/bot/money/usd.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>

namespace parley::bot::money {

std::string format_usd(int64_t nanousd) {
  const double usd = to_usd(nanousd);
  return std::abs(usd) < 1.0 ? fmt::format("${:.4f}", usd) : fmt::format("${:.2f}", usd);
}

std::string exact_usd(int64_t nanousd) {
  const bool negative = nanousd < 0;
  // Through unsigned: INT64_MIN has no positive counterpart.
  const uint64_t v = negative ? 0 - static_cast<uint64_t>(nanousd) : static_cast<uint64_t>(nanousd);
  return fmt::format("{}{}.{:09}", negative ? "-" : "", v / 1'000'000'000u, v % 1'000'000'000u);
}

std::string iso_utc(int64_t ms) {
  using namespace std::chrono;
  const sys_seconds t{duration_cast<seconds>(milliseconds{ms})};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count());
}

}  // namespace parley::bot::money
