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

namespace {
// Exactly `n` digits at `at` (advanced past them).
std::optional<int> digits(std::string_view t, size_t& at, size_t n) {
  if (at + n > t.size()) return std::nullopt;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = t[at + i];
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  at += n;
  return v;
}
bool take(std::string_view t, size_t& at, char c) {
  if (at < t.size() && t[at] == c) {
    ++at;
    return true;
  }
  return false;
}
}  // namespace

std::optional<int64_t> parse_iso_utc(std::string_view t) {
  using namespace std::chrono;
  size_t at = 0;
  const auto y = digits(t, at, 4);
  if (!y || !take(t, at, '-')) return std::nullopt;
  const auto mo = digits(t, at, 2);
  if (!mo || !take(t, at, '-')) return std::nullopt;
  const auto d = digits(t, at, 2);
  if (!d) return std::nullopt;
  const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*mo)},
                           day{static_cast<unsigned>(*d)}};
  if (!ymd.ok()) return std::nullopt;
  int64_t ms = duration_cast<milliseconds>(sys_days{ymd}.time_since_epoch()).count();
  if (at == t.size()) return ms;
  if (!take(t, at, 'T') && !take(t, at, ' ')) return std::nullopt;
  const auto h = digits(t, at, 2);
  if (!h || *h > 23 || !take(t, at, ':')) return std::nullopt;
  const auto mi = digits(t, at, 2);
  if (!mi || *mi > 59) return std::nullopt;
  int sec = 0;
  if (take(t, at, ':')) {
    const auto s = digits(t, at, 2);
    if (!s || *s > 60) return std::nullopt;
    sec = *s;
    if (take(t, at, '.')) {
      int frac_digits = 0;
      int frac = 0;
      while (at < t.size() && t[at] >= '0' && t[at] <= '9') {
        if (frac_digits < 3) {
          frac = frac * 10 + (t[at] - '0');
          ++frac_digits;
        }
        ++at;
      }
      if (frac_digits == 0) return std::nullopt;
      while (frac_digits++ < 3) frac *= 10;
      ms += frac;
    }
  }
  ms += ((int64_t{*h} * 60 + *mi) * 60 + sec) * 1000;
  if (at == t.size() || take(t, at, 'Z')) return at == t.size() ? std::optional(ms) : std::nullopt;
  const bool plus = take(t, at, '+');
  if (!plus && !take(t, at, '-')) return std::nullopt;
  const auto oh = digits(t, at, 2);
  if (!oh || *oh > 23) return std::nullopt;
  take(t, at, ':');
  const auto om = digits(t, at, 2);
  if (!om || *om > 59 || at != t.size()) return std::nullopt;
  const int64_t offset = (int64_t{*oh} * 60 + *om) * 60'000;
  return plus ? ms - offset : ms + offset;
}

}  // namespace parley
