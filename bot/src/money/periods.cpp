#include "parley/bot/money/periods.h"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

#include <stdexcept>

namespace parley::bot::money {

namespace {

using Ms = std::chrono::milliseconds;
using SysMs = date::sys_time<Ms>;

int64_t to_ms(const date::time_zone* tz, date::local_days d) {
  return std::chrono::duration_cast<Ms>(tz->to_sys(d, date::choose::earliest).time_since_epoch())
      .count();
}

}  // namespace

Periods::Periods(const std::string& zone) : name_(zone.empty() ? "UTC" : zone) {
  try {
    tz_ = date::locate_zone(name_);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(
        fmt::format("unknown time zone '{}' (expected an IANA name such as Europe/Paris)", name_));
  }
}

std::string Periods::day_key(int64_t ms) const {
  const auto local = date::floor<date::days>(tz_->to_local(SysMs{Ms{ms}}));
  return date::format("%F", local);
}

std::string Periods::month_key(int64_t ms) const {
  const date::year_month_day ymd{date::floor<date::days>(tz_->to_local(SysMs{Ms{ms}}))};
  return fmt::format("{:04}-{:02}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()));
}

int64_t Periods::day_start(int64_t ms) const {
  return to_ms(tz_, date::floor<date::days>(tz_->to_local(SysMs{Ms{ms}})));
}

int64_t Periods::next_day(int64_t ms) const {
  return to_ms(tz_, date::floor<date::days>(tz_->to_local(SysMs{Ms{ms}})) + date::days{1});
}

int64_t Periods::month_start(int64_t ms) const {
  const date::year_month_day ymd{date::floor<date::days>(tz_->to_local(SysMs{Ms{ms}}))};
  return to_ms(tz_, date::local_days{ymd.year() / ymd.month() / 1});
}

int64_t Periods::next_month(int64_t ms) const {
  const date::year_month_day ymd{date::floor<date::days>(tz_->to_local(SysMs{Ms{ms}}))};
  return to_ms(tz_, date::local_days{(ymd.year() / ymd.month() + date::months{1}) / 1});
}

}  // namespace parley::bot::money
