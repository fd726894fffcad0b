// reminder_time_fuzz: a libFuzzer target for the time and day expressions people write to the
// built-ins (capabilities/src/builtins/when.h): parse_when and resolve_when (reminders, events,
// goals, habits), future_time (a reminder's due time), parse_day and read_moment (journal,
// mood, expenses…), and the /remind command's greedy reading of its WHEN.
//
// The first byte chooses the caller's time zone (among zones with DST, half-hour offsets and
// none), the second a fixed `now` (around DST changes and ordinary days); the rest is the
// expression. The seed corpus (tests/fuzz/corpus/reminder_time/) holds the forms kWhenForms
// and kDayForms name.
//
// Invariants (a violation aborts, and libFuzzer keeps the input):
// - Nothing throws; every error is invalid_argument with a message prefixed with the
//   capability.
// - future_time (what a reminder is set for) is after now and at most ten years later, or an
//   error; it agrees with parse_when + resolve_when.
// - resolve_when: "in …" is now plus its duration exactly when it counts no days, and within
//   three hours of now + days + duration otherwise (DST); "HH:MM" is the next one: after now,
//   within a day and an hour; "tomorrow HH:MM" is after now and within two days; a local time
//   shows its hour and minute in the zone unless a DST gap skips it.
// - parse_day's day is within a few days of today for the relative forms; read_moment is never
//   more than a minute after now and its day is the day of its instant.
// - /remind's parse_command takes a WHEN that parse_when reads and a non-empty text.
#include <date/date.h>
#include <date/tz.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "builtins/when.h"
#include "fuzz_check.h"
#include "parley/base/text.h"
#include "parley/capabilities/builtins.h"
#include "parley/capabilities/capability.h"

namespace {

namespace caps = parley::capabilities;
using namespace parley::capabilities::builtins;  // NOLINT(google-build-using-namespace)
using parley::ErrorCode;

using parley::fuzz::violated;

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kTenYears = int64_t{10} * 366 * kDay;  // as reminders.cpp

constexpr const char* kZones[] = {
    "UTC",          "Europe/Paris",     "America/New_York", "Australia/Lord_Howe",
    "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham",  "Asia/Tokyo"};

// Instants (epoch ms) chosen to sit next to DST changes and on ordinary days.
constexpr int64_t kNows[] = {
    1'794'960'000'000,  // 2026-11-18 00:00 UTC
    1'774'744'200'000,  // 2026-03-29 00:30 UTC: Paris springs forward within the hour
    1'792'887'600'000,  // 2026-10-25 00:20 UTC: Paris falls back within the hour
    1'772'953'199'000,  // 2026-03-08 06:59:59 UTC: New York springs forward
    1'767'225'599'000,  // 2025-12-31 23:59:59 UTC
    1'709'164'800'000,  // 2024-02-29 00:00 UTC
    1'800'000'000'000,  // 2027-01-15 08:00 UTC
    86'400'000,         // 1970-01-02
};

const caps::Capability& reminders() {
  static const caps::Registry* r = [] {
    auto* reg = new caps::Registry();
    if (!caps::register_builtins(*reg).ok()) violated("register_builtins", __LINE__);
    return reg;
  }();
  const caps::Capability* c = r->find_command("remind");
  if (c == nullptr) violated("no /remind", __LINE__);
  return *c;
}

void check_error(const parley::Error& e, std::string_view capability) {
  PARLEY_FUZZ_CHECK(e.code == ErrorCode::invalid_argument);
  PARLEY_FUZZ_CHECK(e.message.starts_with(std::string(capability) + ": "));
}

// The local hour and minute of `ms` in `zone`.
std::pair<int, int> local_hm(const Zone& zone, int64_t ms) {
  const auto local = zone.tz->to_local(
      std::chrono::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(ms)));
  const auto since_midnight = local - date::floor<date::days>(local);
  const auto h = std::chrono::duration_cast<std::chrono::hours>(since_midnight);
  const auto m = std::chrono::duration_cast<std::chrono::minutes>(since_midnight - h);
  return {static_cast<int>(h.count()), static_cast<int>(m.count())};
}

// Whether local `hour:minute` of some day near `ms` falls in a DST gap of `zone`.
bool near_gap(const Zone& zone, int64_t ms) {
  const auto t = std::chrono::sys_seconds(std::chrono::seconds(ms / 1000));
  const auto info = zone.tz->get_info(t);
  const int64_t begin = info.begin.time_since_epoch().count() * 1000;
  const int64_t end = info.end.time_since_epoch().count() * 1000;
  return ms - begin < 2 * kDay || end - ms < 2 * kDay;
}

void check_when(std::string_view text, const Zone& zone, int64_t now) {
  const auto spec = parse_when(text, "reminders");
  const auto due = future_time(text, now, zone, kTenYears, "reminders");
  if (!spec) {
    check_error(spec.error(), "reminders");
    PARLEY_FUZZ_CHECK(!due.ok());
    PARLEY_FUZZ_CHECK(due.error().message == spec.error().message);
    return;
  }
  const int64_t at = resolve_when(*spec, now, zone.tz);
  if (due.ok()) {
    PARLEY_FUZZ_CHECK(*due == at);
    PARLEY_FUZZ_CHECK(*due > now);
    PARLEY_FUZZ_CHECK(*due - now <= kTenYears);
  } else {
    check_error(due.error(), "reminders");
    PARLEY_FUZZ_CHECK(at <= now || at - now > kTenYears);
  }
  switch (spec->kind) {
    case WhenSpec::Kind::relative:
      PARLEY_FUZZ_CHECK(spec->days >= 0 && spec->duration_ms >= 0);
      if (spec->days == 0) {
        PARLEY_FUZZ_CHECK(at == now + spec->duration_ms);
      } else if (spec->days < 3660) {
        const int64_t naive = now + spec->days * kDay + spec->duration_ms;
        PARLEY_FUZZ_CHECK(at - naive <= 3 * kHour && naive - at <= 3 * kHour);
      }
      break;
    case WhenSpec::Kind::time_of_day:
      PARLEY_FUZZ_CHECK(at > now);
      PARLEY_FUZZ_CHECK(at - now <= kDay + kHour);
      if (!near_gap(zone, at)) {
        PARLEY_FUZZ_CHECK(local_hm(zone, at) == std::make_pair(spec->hour, spec->minute));
      }
      break;
    case WhenSpec::Kind::day_time:
      PARLEY_FUZZ_CHECK(spec->day_offset == 0 || spec->day_offset == 1);
      if (spec->day_offset == 1) PARLEY_FUZZ_CHECK(at > now && at - now <= 2 * kDay + kHour);
      if (spec->day_offset == 0) PARLEY_FUZZ_CHECK(at - now <= kDay + kHour);
      if (!near_gap(zone, at)) {
        PARLEY_FUZZ_CHECK(local_hm(zone, at) == std::make_pair(spec->hour, spec->minute));
      }
      break;
    case WhenSpec::Kind::local:
    case WhenSpec::Kind::instant: break;
  }
}

void check_day(std::string_view text, const Zone& zone, int64_t now) {
  const date::local_days today = local_day(zone, now);
  const auto day = parse_day(text, now, zone, "journal");
  if (!day) {
    check_error(day.error(), "journal");
  } else {
    const std::string words = normalise_words(text);
    if (words.empty() || words == "today") PARLEY_FUZZ_CHECK(*day == today);
    if (words == "tomorrow") PARLEY_FUZZ_CHECK(*day == today + date::days{1});
    if (words.find(' ') == std::string::npos && words.size() <= 9 && !words.empty() &&
        (words[0] < '0' || words[0] > '9')) {
      // yesterday or a weekday: within the last week.
      PARLEY_FUZZ_CHECK(*day <= today + date::days{1} && *day >= today - date::days{7});
    }
  }
  const auto moment = read_moment(text, now, zone, "journal");
  if (!moment) {
    check_error(moment.error(), "journal");
    return;
  }
  PARLEY_FUZZ_CHECK(moment->at <= now + kMinute);
  PARLEY_FUZZ_CHECK(moment->day == local_day(zone, moment->at));
}

void check_remind(std::string_view text) {
  const auto args = reminders().parse_command("remind", text);
  if (!args) {
    check_error(args.error(), "reminders");
    return;
  }
  PARLEY_FUZZ_CHECK(args->value("action", "") == "create");
  const std::string when = args->value("when", "");
  PARLEY_FUZZ_CHECK(parse_when(when, "reminders").ok());
  PARLEY_FUZZ_CHECK(!parley::trim(args->value("text", "")).empty());
}

void test_one_input(const uint8_t* data, size_t size) {
  if (size < 2) return;
  const Zone zone = zone_of(kZones[data[0] % std::size(kZones)]);
  PARLEY_FUZZ_CHECK(zone.tz != nullptr);
  const int64_t now = kNows[data[1] % std::size(kNows)];
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  check_when(text, zone, now);
  check_day(text, zone, now);
  check_remind(text);
}

}  // namespace

PARLEY_FUZZ_MAIN(test_one_input)
