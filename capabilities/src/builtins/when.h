// Times and days as people write them, read in the caller's time zone: what reminders, the
// journal, mood, habits, goals, decisions, expenses and events share (private to the
// built-ins).
//
// A time (parse_when + resolve_when): ISO-8601 with a zone or without one (local), "in 10m" /
// "in 2 hours" / "in 1h30m" / "in 3 days", "today 18:30", "tomorrow 09:00", "18:30" (the next
// one), 12-hour "9am" / "6:30pm" wherever a time of day goes. Days count in calendar days of
// the zone ("in 1 day" is the same clock time tomorrow, even across a DST change); hours,
// minutes and seconds are exact durations. A local time that a DST change skips or repeats is
// taken at its earliest instant.
//
// A day (parse_day): "today", "yesterday", "tomorrow", "2026-12-06", "3 days ago", or a
// weekday name ("monday": the latest Monday, today included), in the caller's zone. Days are
// stored as "YYYY-MM-DD" strings of the zone the user was in, so that "a day" is the user's
// day, whatever the zone does afterwards.
//
// Thread safety: every function is safe from any thread.
#pragma once

#include <date/date.h>
#include <date/tz.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/result.h"

namespace parley::capabilities::builtins {

// The forms parse_when reads, for answers that ask again.
extern const char* const kWhenForms;
// The forms parse_day reads.
extern const char* const kDayForms;

// A time expression as written, before it meets a clock and a zone.
struct WhenSpec {
  enum class Kind { instant, local, relative, day_time, time_of_day };
  Kind kind = Kind::instant;
  int64_t utc_ms = 0;           // instant
  date::local_seconds local{};  // local
  int64_t days = 0;             // relative: calendar days (weeks included)
  int64_t duration_ms = 0;      // relative: hours, minutes, seconds
  int day_offset = 0;           // day_time: 0 today, 1 tomorrow
  int hour = 0;                 // day_time, time_of_day
  int minute = 0;
};

// Lowercase ASCII, words separated by one space, trimmed.
std::string normalise_words(std::string_view s);

// The syntax of a time expression (no clock, no zone); errors are invalid_argument, prefixed
// with `capability`, and say which forms are understood.
Result<WhenSpec> parse_when(std::string_view when, std::string_view capability);

// The expression at `now_ms` in `zone`, as epoch ms.
int64_t resolve_when(const WhenSpec& spec, int64_t now_ms, const date::time_zone* zone);

// A time zone and the name the caller knows it by ("UTC", not the "Etc/UTC" it links to).
struct Zone {
  const date::time_zone* tz = nullptr;
  std::string name;
};

// The caller's zone; UTC when it has none or names no known zone.
Zone zone_of(std::string_view name);

// A time to come (a reminder's): `when` at `now_ms` in `zone`, as epoch ms after now_ms and at
// most `max_ahead_ms` later. Errors (invalid_argument, prefixed with `capability`): what
// parse_when refuses, a time not after now ("in the past", with both times), or too far ahead.
Result<int64_t> future_time(std::string_view when, int64_t now_ms, const Zone& zone,
                            int64_t max_ahead_ms, std::string_view capability);

// "Tue 24 Nov 2026 09:00" in `zone`.
std::string human_time(const Zone& zone, int64_t ms);
// "2026-11-24T09:00:00+01:00"
std::string iso_local(const Zone& zone, int64_t ms);

// The calendar day of instant `ms` in `zone`.
date::local_days local_day(const Zone& zone, int64_t ms);
// "2026-12-06"
std::string day_string(date::local_days day);
// A stored "YYYY-MM-DD" (strict), or nullopt.
std::optional<date::local_days> parse_day_string(std::string_view text);
// The first instant of `day` in `zone` (a day that starts in a DST gap starts at the gap's
// end), as epoch ms.
int64_t day_start_ms(const Zone& zone, date::local_days day);
// "Mon 7 Dec"
std::string human_day(date::local_days day);
// "7 Dec" (under a day in a chart)
std::string short_day(date::local_days day);

// A day as people write it (see the top of this file), at `now_ms` in `zone`.
Result<date::local_days> parse_day(std::string_view text, int64_t now_ms, const Zone& zone,
                                   std::string_view capability);

// Tags as short lowercase words: trimmed, a leading '#' dropped, spaces made '-', duplicates
// dropped (the first kept in place); a tag with no word in it is invalid_argument, prefixed with
// `capability`. `tags` is a JSON array of strings (the schema checked it).
Result<std::vector<std::string>> read_tags(const nlohmann::json& tags, std::string_view capability);

// When something was recorded as happening (journal, mood): its instant and the user's day.
struct Moment {
  int64_t at = 0;
  date::local_days day{};
};
// Absent or empty: now; a day ("yesterday", "2026-11-20", "monday": today is now, another day
// its local noon); or a time of the past ("21:00": the latest one, "yesterday 21:00",
// "2026-11-22 21:00", ISO with a zone). Never in the future (invalid_argument, prefixed with
// `capability`).
Result<Moment> read_moment(std::string_view when, int64_t now, const Zone& zone,
                           std::string_view capability);

}  // namespace parley::capabilities::builtins
