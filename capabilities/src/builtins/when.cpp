#include "builtins/when.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <regex>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "parley/base/text.h"

namespace parley::capabilities::builtins {

const char* const kWhenForms =
    "in 10m, in 2 hours, in 1h30m, in 3 days, today 18:30, tomorrow 09:00, 18:30 (the next "
    "one), 2026-11-24T09:00+01:00 or 2026-11-24 09:00 (your time zone)";
const char* const kDayForms =
    "today, yesterday, tomorrow, 2026-12-06, 3 days ago or a weekday (monday: the latest one)";

namespace {

using Ms = std::chrono::milliseconds;
using SysMs = std::chrono::sys_time<Ms>;
using LocalMs = date::local_time<Ms>;

constexpr int64_t kMaxAmount = 999'999;

Unexpected not_understood(std::string_view what, std::string_view in, std::string_view capability) {
  if (what == in) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("{}: could not read the time '{}'; say it like {}", capability, in,
                            kWhenForms));
  }
  return fail(ErrorCode::invalid_argument,
              fmt::format("{}: could not read '{}' in the time '{}'; say it like {}", capability,
                          what, in, kWhenForms));
}

int to_int(const std::ssub_match& m) { return m.matched ? std::stoi(m.str()) : 0; }

// "09:00", "9:30", "9am", "6:30 pm", optionally after "at". A bare number is not a time.
std::optional<std::pair<int, int>> parse_time_of_day(const std::string& s) {
  static const std::regex kTime(R"(^(?:at )?(\d{1,2})(?::(\d{2}))? ?(am|pm)?$)");
  std::smatch m;
  if (!std::regex_match(s, m, kTime)) return std::nullopt;
  int hour = to_int(m[1]);
  const int minute = to_int(m[2]);
  if (minute > 59) return std::nullopt;
  if (m[3].matched) {
    if (hour < 1 || hour > 12) return std::nullopt;
    hour = hour % 12 + (m[3].str() == "pm" ? 12 : 0);
  } else if (!m[2].matched || hour > 23) {
    return std::nullopt;
  }
  return std::pair{hour, minute};
}

// After "in ": amounts with units, e.g. "10m", "2 hours", "1h30m", "1 hour and 30 minutes",
// "a day".
Result<WhenSpec> parse_relative(std::string_view rest, std::string_view in,
                                std::string_view capability) {
  WhenSpec spec;
  spec.kind = WhenSpec::Kind::relative;
  size_t i = 0;
  bool any = false;
  const auto at_end = [&] { return i >= rest.size(); };
  const auto skip_separators = [&] {
    for (;;) {
      while (!at_end() && (rest[i] == ' ' || rest[i] == ',')) ++i;
      if (rest.substr(i).starts_with("and ")) {
        i += 4;
        continue;
      }
      return;
    }
  };
  const auto word_from = [&](size_t from) {
    size_t end = from;
    while (end < rest.size() && rest[end] != ' ') ++end;
    return rest.substr(from, end - from);
  };
  for (skip_separators(); !at_end(); skip_separators()) {
    const size_t start = i;
    int64_t amount = 0;
    if (std::isdigit(static_cast<unsigned char>(rest[i])) != 0) {
      while (!at_end() && std::isdigit(static_cast<unsigned char>(rest[i])) != 0) {
        amount = amount * 10 + (rest[i] - '0');
        if (amount > kMaxAmount) return not_understood(word_from(start), in, capability);
        ++i;
      }
    } else if (rest.substr(i).starts_with("a ")) {
      amount = 1;
      i += 2;
    } else if (rest.substr(i).starts_with("an ")) {
      amount = 1;
      i += 3;
    } else {
      return not_understood(word_from(start), in, capability);
    }
    while (!at_end() && rest[i] == ' ') ++i;
    const size_t unit_start = i;
    while (!at_end() && std::isalpha(static_cast<unsigned char>(rest[i])) != 0) ++i;
    const std::string_view unit = rest.substr(unit_start, i - unit_start);
    if (unit == "s" || unit == "sec" || unit == "secs" || unit == "second" || unit == "seconds") {
      spec.duration_ms += amount * 1000;
    } else if (unit == "m" || unit == "min" || unit == "mins" || unit == "minute" ||
               unit == "minutes") {
      spec.duration_ms += amount * 60'000;
    } else if (unit == "h" || unit == "hr" || unit == "hrs" || unit == "hour" || unit == "hours") {
      spec.duration_ms += amount * 3'600'000;
    } else if (unit == "d" || unit == "day" || unit == "days") {
      spec.days += amount;
    } else if (unit == "w" || unit == "week" || unit == "weeks") {
      spec.days += amount * 7;
    } else {
      return not_understood(unit.empty() ? word_from(start) : word_from(unit_start), in,
                            capability);
    }
    // "1h30m": the next amount may follow the unit directly; anything else must be a separator.
    if (!at_end() && rest[i] != ' ' && rest[i] != ',' &&
        std::isdigit(static_cast<unsigned char>(rest[i])) == 0) {
      return not_understood(word_from(start), in, capability);
    }
    any = true;
  }
  if (!any) return not_understood(in, in, capability);
  return spec;
}

int64_t to_ms(SysMs t) { return t.time_since_epoch().count(); }

// The instant a local time of `zone` names; skipped and repeated times at their earliest.
SysMs to_sys(const date::time_zone* zone, LocalMs local) {
  return zone->to_sys(local, date::choose::earliest);
}

date::zoned_seconds zoned(const Zone& zone, int64_t ms) {
  return date::make_zoned(zone.tz, date::floor<std::chrono::seconds>(SysMs{Ms{ms}}));
}

}  // namespace

// Lowercase ASCII, words separated by one space, trimmed.
std::string normalise_words(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : trim(s)) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// The syntax of a time expression (no clock, no zone): what /remind's greedy parse and the
// create action share.
Result<WhenSpec> parse_when(std::string_view when, std::string_view capability) {
  const std::string s = normalise_words(when);
  if (s.empty()) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("{}: when? say it like {}", capability, kWhenForms));
  }
  if (s.starts_with("in ")) return parse_relative(std::string_view(s).substr(3), s, capability);

  // date [t ] time [zone]: 1 year, 2 month, 3 day, 4 hour, 5 minute, 6 second, 7 zone, 8 its
  // sign, 9 its hours, 10 its minutes.
  static const std::regex kIso(
      R"(^(\d{4})-(\d{2})-(\d{2})[t ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)"
      R"( ?(z|utc|([+-])(\d{2})(?::?(\d{2}))?)?$)");
  std::smatch m;
  if (std::regex_match(s, m, kIso)) {
    const date::year_month_day day{date::year{to_int(m[1])},
                                   date::month{static_cast<unsigned>(to_int(m[2]))},
                                   date::day{static_cast<unsigned>(to_int(m[3]))}};
    const int hour = to_int(m[4]);
    const int minute = to_int(m[5]);
    const int second = to_int(m[6]);
    if (!day.ok() || day.year() < date::year{1970} || hour > 23 || minute > 59 || second > 59) {
      return not_understood(s, s, capability);
    }
    const date::local_seconds local = date::local_days{day} + std::chrono::hours{hour} +
                                      std::chrono::minutes{minute} + std::chrono::seconds{second};
    WhenSpec spec;
    if (!m[7].matched) {
      spec.kind = WhenSpec::Kind::local;
      spec.local = local;
      return spec;
    }
    int offset_minutes = 0;
    if (m[8].matched) {
      const int oh = to_int(m[9]);
      const int om = to_int(m[10]);
      if (oh > 23 || om > 59) return not_understood(s, s, capability);
      offset_minutes = (m[8].str() == "-" ? -1 : 1) * (oh * 60 + om);
    }
    spec.kind = WhenSpec::Kind::instant;
    spec.utc_ms = std::chrono::duration_cast<Ms>(local.time_since_epoch() -
                                                 std::chrono::minutes{offset_minutes})
                      .count();
    return spec;
  }

  static const std::regex kDay(R"(^(today|tonight|tomorrow)(?: (.+))?$)");
  if (std::regex_match(s, m, kDay)) {
    if (!m[2].matched) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("{}: '{}' needs a time of day, e.g. '{} 09:00'; say it like {}",
                              capability, s, m[1].str(), kWhenForms));
    }
    const auto t = parse_time_of_day(m[2].str());
    if (!t) return not_understood(m[2].str(), s, capability);
    WhenSpec spec;
    spec.kind = WhenSpec::Kind::day_time;
    spec.day_offset = m[1].str() == "tomorrow" ? 1 : 0;
    std::tie(spec.hour, spec.minute) = *t;
    return spec;
  }

  if (const auto t = parse_time_of_day(s)) {
    WhenSpec spec;
    spec.kind = WhenSpec::Kind::time_of_day;
    std::tie(spec.hour, spec.minute) = *t;
    return spec;
  }
  return not_understood(s, s, capability);
}

// The expression at `now_ms` in `zone`, as epoch ms.
int64_t resolve_when(const WhenSpec& spec, int64_t now_ms, const date::time_zone* zone) {
  const SysMs now{Ms{now_ms}};
  const LocalMs local_now = zone->to_local(now);
  const date::local_days today = date::floor<date::days>(local_now);
  const auto at = [&](date::local_days day, int hour, int minute) {
    return to_sys(zone, LocalMs{day + std::chrono::hours{hour} + std::chrono::minutes{minute}});
  };
  switch (spec.kind) {
    case WhenSpec::Kind::instant: return spec.utc_ms;
    case WhenSpec::Kind::local: return to_ms(to_sys(zone, LocalMs{spec.local}));
    case WhenSpec::Kind::relative: {
      const SysMs base = spec.days == 0 ? now : to_sys(zone, local_now + date::days{spec.days});
      return to_ms(base + Ms{spec.duration_ms});
    }
    case WhenSpec::Kind::day_time:
      return to_ms(at(today + date::days{spec.day_offset}, spec.hour, spec.minute));
    case WhenSpec::Kind::time_of_day: {
      const SysMs t = at(today, spec.hour, spec.minute);
      return to_ms(t > now ? t : at(today + date::days{1}, spec.hour, spec.minute));
    }
  }
  return now_ms;
}

// The caller's zone; UTC when it has none or names no known zone.
Zone zone_of(std::string_view name) {
  name = trim(name);
  if (!name.empty()) {
    try {
      return Zone{date::locate_zone(name), std::string(name)};
    } catch (const std::runtime_error&) {
    }
  }
  return Zone{date::locate_zone("UTC"), "UTC"};
}

Result<int64_t> future_time(std::string_view when, int64_t now_ms, const Zone& zone,
                            int64_t max_ahead_ms, std::string_view capability) {
  auto spec = parse_when(when, capability);
  if (!spec) return fail(std::move(spec).error());
  const int64_t due = resolve_when(*spec, now_ms, zone.tz);
  if (due <= now_ms) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("{}: '{}' is in the past ({} {}, it is now {})", capability, trim(when),
                            human_time(zone, due), zone.name, human_time(zone, now_ms)));
  }
  if (due - now_ms > max_ahead_ms) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("{}: '{}' is more than {} years ahead", capability, trim(when),
                            max_ahead_ms / (int64_t{366} * 86'400'000)));
  }
  return due;
}

// "Tue 24 Nov 2026 09:00"
std::string human_time(const Zone& zone, int64_t ms) {
  return date::format("%a %d %b %Y %H:%M", zoned(zone, ms));
}

// "2026-11-24T09:00:00+01:00"
std::string iso_local(const Zone& zone, int64_t ms) {
  const auto z = zoned(zone, ms);
  return date::format("%Y-%m-%dT%H:%M:%S", z) + date::format("%Ez", z);
}

date::local_days local_day(const Zone& zone, int64_t ms) {
  return date::floor<date::days>(zone.tz->to_local(SysMs{Ms{ms}}));
}

std::string day_string(date::local_days day) { return date::format("%F", day); }

std::optional<date::local_days> parse_day_string(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  int parts[3] = {0, 0, 0};
  const std::array<std::pair<size_t, size_t>, 3> fields{{{0, 4}, {5, 2}, {8, 2}}};
  for (size_t f = 0; f < fields.size(); ++f) {
    for (size_t i = fields[f].first; i < fields[f].first + fields[f].second; ++i) {
      if (std::isdigit(static_cast<unsigned char>(text[i])) == 0) return std::nullopt;
      parts[f] = parts[f] * 10 + (text[i] - '0');
    }
  }
  const date::year_month_day ymd{date::year{parts[0]}, date::month{static_cast<unsigned>(parts[1])},
                                 date::day{static_cast<unsigned>(parts[2])}};
  if (!ymd.ok() || ymd.year() < date::year{1900}) return std::nullopt;
  return date::local_days{ymd};
}

int64_t day_start_ms(const Zone& zone, date::local_days day) {
  const date::local_seconds midnight{day};
  const auto info = zone.tz->get_info(midnight);
  if (info.result == date::local_info::nonexistent) {
    // Midnight is skipped (e.g. a zone that moves its clocks at 00:00): the day starts when the
    // gap ends.
    return std::chrono::duration_cast<Ms>(info.second.begin.time_since_epoch()).count();
  }
  return to_ms(to_sys(zone.tz, LocalMs{day}));
}

std::string human_day(date::local_days day) {
  const date::year_month_day ymd{day};
  return fmt::format("{} {} {}", date::format("%a", day), static_cast<unsigned>(ymd.day()),
                     date::format("%b", day));
}

std::string short_day(date::local_days day) {
  const date::year_month_day ymd{day};
  return fmt::format("{} {}", static_cast<unsigned>(ymd.day()), date::format("%b", day));
}

Result<date::local_days> parse_day(std::string_view text, int64_t now_ms, const Zone& zone,
                                   std::string_view capability) {
  const std::string s = normalise_words(text);
  const date::local_days today = local_day(zone, now_ms);
  const auto not_a_day = [&] {
    return fail(ErrorCode::invalid_argument,
                fmt::format("{}: could not read the day '{}'; say it like {}", capability,
                            trim(text), kDayForms));
  };
  if (s.empty() || s == "today") return today;
  if (s == "yesterday") return today - date::days{1};
  if (s == "tomorrow") return today + date::days{1};
  if (auto day = parse_day_string(s)) return *day;
  static const std::regex kAgo(R"(^(\d{1,4}|a|one) (day|days|week|weeks) ago$)");
  std::smatch m;
  if (std::regex_match(s, m, kAgo)) {
    const std::string n = m[1].str();
    const int amount = n == "a" || n == "one" ? 1 : std::stoi(n);
    const int per = m[2].str().starts_with("week") ? 7 : 1;
    return today - date::days{amount * per};
  }
  static constexpr std::array<std::string_view, 7> kWeekdays{
      "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};
  std::string_view word = s;
  if (word.starts_with("last ")) word.remove_prefix(5);
  for (unsigned i = 0; i < kWeekdays.size(); ++i) {
    if (word == kWeekdays[i] || (word.size() == 3 && kWeekdays[i].starts_with(word))) {
      const date::weekday wanted{i};
      auto back = date::weekday{today} - wanted;  // 0..6 days
      // "last monday" on a Monday is a week ago; "monday" on a Monday is today.
      if (back == date::days{0} && word.size() != s.size()) back = date::days{7};
      return today - back;
    }
  }
  return not_a_day();
}

namespace {
constexpr int64_t kFutureSlackMs = 60'000;  // a clock a little ahead is not "the future"
}  // namespace

// Tags as short lowercase words: trimmed, a leading '#' dropped, spaces made '-', duplicates
// dropped (the first kept in place).
Result<std::vector<std::string>> read_tags(const nlohmann::json& tags,
                                           std::string_view capability) {
  std::vector<std::string> out;
  for (const auto& t : tags) {
    const std::string given = t.get<std::string>();  // (a view of a temporary would dangle)
    std::string_view raw = trim(given);
    while (!raw.empty() && raw.front() == '#') raw.remove_prefix(1);
    std::string tag;
    bool space = false;
    for (const char c : trim(raw)) {
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        space = true;
        continue;
      }
      if (space && !tag.empty()) tag += '-';
      space = false;
      tag += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    if (tag.empty()) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("{}: tag '{}' has no word in it", capability, given));
    }
    if (std::find(out.begin(), out.end(), tag) == out.end()) out.push_back(std::move(tag));
  }
  return out;
}

// When something happened: absent or empty, now; a day ("yesterday", "2026-11-20", "monday":
// today is now, another day its local noon); or a time of the past ("21:00": the latest one,
// "yesterday 21:00", "2026-11-22 21:00", ISO with a zone). Never in the future.
Result<Moment> read_moment(std::string_view when, int64_t now, const Zone& zone,
                           std::string_view capability) {
  const date::local_days today = local_day(zone, now);
  if (trim(when).empty()) return Moment{now, today};
  const auto future = [&] {
    return fail(ErrorCode::invalid_argument,
                fmt::format("{}: \"when\" '{}' is in the future (it is now {} {})", capability,
                            trim(when), human_time(zone, now), zone.name));
  };
  if (auto day = parse_day(when, now, zone, capability)) {
    if (*day > today) return future();
    if (*day == today) return Moment{now, today};
    WhenSpec noon;
    noon.kind = WhenSpec::Kind::local;
    noon.local = date::local_seconds{*day} + std::chrono::hours{12};
    return Moment{resolve_when(noon, now, zone.tz), *day};
  }
  std::string text = normalise_words(when);
  const bool yesterday = text.starts_with("yesterday ");
  if (yesterday) text = "today " + text.substr(10);
  auto spec = parse_when(yesterday ? std::string_view(text) : when, capability);
  if (!spec || (yesterday && spec->kind != WhenSpec::Kind::day_time)) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("{}: could not read \"when\" '{}'; give a day ({}) or a time (21:00, "
                            "yesterday 21:00, 2026-11-22 21:00)",
                            capability, trim(when), kDayForms));
  }
  if (yesterday) spec->day_offset = -1;
  if (spec->kind == WhenSpec::Kind::time_of_day) {
    // A record looks back: "21:00" is the latest 21:00, not the next one.
    spec->kind = WhenSpec::Kind::day_time;
    spec->day_offset = 0;
    if (resolve_when(*spec, now, zone.tz) > now) spec->day_offset = -1;
  }
  const int64_t at = resolve_when(*spec, now, zone.tz);
  if (at > now + kFutureSlackMs) return future();
  return Moment{at, local_day(zone, at)};
}

}  // namespace parley::capabilities::builtins
