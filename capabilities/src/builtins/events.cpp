// events: the caller's events (table events, migration 0011): a title, a start — a time in the
// zone it was given in, or a whole day — a duration, a place, people, an importance and notes;
// add, upcoming, list (a day or a range), get, update, remove, and export as an iCalendar file
// (RFC 5545) — and, for the bot's prompt, upcoming_events() of parley/capabilities/events.h.
// Every statement is scoped by the UserScope's user id: another user's event number is answered
// exactly like one that does not exist, and an export holds the caller's events only.
//
// Times are read in the caller's time zone (Caller::time_zone) at the call's clock, in the forms
// builtins/when.h reads; the event keeps that zone's name, so that its calendar entry stays at
// the local time it was given (09:00 in Berlin stays 09:00 in Berlin whatever DST does). An
// all-day event starts at the first instant of its day in its zone and lasts whole days.
//
// The calendar file: VCALENDAR 2.0 with one VEVENT per event (UID stable across exports,
// DTSTAMP, DTSTART/DTEND with TZID — or VALUE=DATE for all-day events, or UTC for events in
// UTC —, SUMMARY, LOCATION, DESCRIPTION with the people and notes, PRIORITY from the
// importance), and one VTIMEZONE per zone used, written from the tz database as one STANDARD or
// DAYLIGHT observance per offset change over the years of that zone's events (no RRULEs: exact
// for past and announced changes, and what the tz database says for the future). TEXT values
// are escaped, lines end in CRLF and are folded at 75 octets without splitting a UTF-8
// character.
#include "parley/capabilities/events.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "builtins/builtins_internal.h"
#include "builtins/when.h"
#include "parley/base/text.h"

namespace parley::capabilities {
namespace builtins {
namespace {
namespace events_detail {

using nlohmann::json;
using storage::Connection;
using storage::WriteAck;
using Ms = std::chrono::milliseconds;
using SysMs = std::chrono::sys_time<Ms>;

constexpr size_t kMaxTitle = 200;
constexpr size_t kMaxWhen = 100;
constexpr size_t kMaxPlace = 200;
constexpr size_t kMaxPerson = 100;
constexpr size_t kMaxPeople = 30;
constexpr size_t kMaxNotes = 2000;
constexpr int64_t kMaxDuration = 525'600;  // a year, in minutes (the table's limit)
constexpr int64_t kMinutesPerDay = 1440;
constexpr int64_t kMsPerMinute = 60'000;
constexpr int64_t kMsPerDay = 86'400'000;
constexpr int64_t kMaxUpcomingDays = 366;
constexpr int64_t kDefaultUpcomingDays = 14;
constexpr int64_t kMaxRangeDays = 366;
constexpr size_t kMaxListed = 100;
constexpr size_t kMaxExported = 10'000;
constexpr int64_t kMaxAheadMs = int64_t{100} * 366 * kMsPerDay;  // about a century
constexpr size_t kMaxWhenWords = 8;  // the longest time expression /events add looks for
constexpr size_t kMaxDayWords = 3;   // "3 days ago"
// How much longer than 24 hours a day may last (a DST change, a zone moving across the date
// line): the margin a SQL range leaves before the exact end is checked.
constexpr int64_t kDayMarginMs = 26 * 3'600'000;

constexpr const char* kEventsUsage =
    "/events | /events add WHEN TITLE | /events list [DAY] | /events export | "
    "/events remove ID | /events ID";

struct Event {
  int64_t id = 0;
  std::string uid;
  std::string title;
  int64_t starts_at = 0;
  std::string zone;
  bool all_day = false;
  std::optional<int64_t> duration_min;
  std::string place;
  std::vector<std::string> people;
  int64_t importance = 3;
  std::string notes;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

constexpr const char* kColumns =
    "e.id, e.uid, e.title, e.starts_at, e.zone, e.all_day, e.duration_min, e.place, e.people, "
    "e.importance, e.notes, e.created_at, e.updated_at";

std::vector<std::string> people_from(const std::string& stored) {
  std::vector<std::string> out;
  const json j = json::parse(stored, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& p : j) {
    if (p.is_string()) out.push_back(p.get<std::string>());
  }
  return out;
}

Event read_event(const storage::Statement& st) {
  Event e;
  e.id = st.column_int64(0);
  e.uid = st.column_text(1);
  e.title = st.column_text(2);
  e.starts_at = st.column_int64(3);
  e.zone = st.column_text(4);
  e.all_day = st.column_int64(5) != 0;
  e.duration_min = st.column_opt_int64(6);
  e.place = st.column_text(7);
  e.people = people_from(st.column_text(8));
  e.importance = st.column_int64(9);
  e.notes = st.column_text(10);
  e.created_at = st.column_int64(11);
  e.updated_at = st.column_int64(12);
  return e;
}

// The whole days an all-day event lasts (at least one).
int64_t days_of(const Event& e) {
  return std::max<int64_t>(1, e.duration_min.value_or(kMinutesPerDay) / kMinutesPerDay);
}

// The calendar day an all-day event starts on, in its zone.
date::local_days first_day(const Event& e) { return local_day(zone_of(e.zone), e.starts_at); }

// When it is over: the end of its last day (all-day), its start plus its duration, or its start.
int64_t end_ms(const Event& e) {
  if (e.all_day) return day_start_ms(zone_of(e.zone), first_day(e) + date::days{days_of(e)});
  return e.starts_at + e.duration_min.value_or(0) * kMsPerMinute;
}

// Whether the event takes place in [from, until): it overlaps the range, or it is a moment
// inside it.
bool within(const Event& e, int64_t from, int64_t until) {
  if (e.starts_at >= until) return false;
  return e.starts_at >= from || end_ms(e) > from;
}

std::string local_format(const char* format, const Zone& zone, int64_t ms) {
  return date::format(format,
                      date::make_zoned(zone.tz, date::floor<std::chrono::seconds>(SysMs{Ms{ms}})));
}

std::string long_day(date::local_days day) { return date::format("%a %d %b %Y", day); }

// When it takes place, for a person in `caller`'s zone.
std::string when_text(const Event& e, const Zone& caller) {
  if (e.all_day) {
    const auto day = first_day(e);
    const int64_t days = days_of(e);
    if (days == 1) return long_day(day) + ", all day";
    return fmt::format("{} – {}, all day", long_day(day), long_day(day + date::days{days - 1}));
  }
  std::string text = human_time(caller, e.starts_at);
  if (e.duration_min.value_or(0) > 0) {
    const int64_t end = end_ms(e);
    text += local_day(caller, end) == local_day(caller, e.starts_at)
                ? "–" + local_format("%H:%M", caller, end)
                : " – " + human_time(caller, end);
  }
  if (e.zone != caller.name) {
    text += fmt::format(" ({} {})", local_format("%H:%M", zone_of(e.zone), e.starts_at), e.zone);
  }
  return text;
}

std::string line_for(const Event& e, const Zone& caller) {
  std::string line = fmt::format("#{} {} — {}", e.id, when_text(e, caller), e.title);
  if (!e.place.empty()) line += " @ " + e.place;
  if (!e.people.empty()) line += fmt::format(" with {}", fmt::join(e.people, ", "));
  if (e.importance != 3) line += fmt::format(" [importance {}/5]", e.importance);
  return line;
}

json to_json(const Event& e) {
  const Zone zone = zone_of(e.zone);
  json j{{"id", e.id},
         {"uid", e.uid},
         {"title", e.title},
         {"all_day", e.all_day},
         {"zone", e.zone},
         {"starts_at", iso_utc(e.starts_at)},
         {"ends_at", iso_utc(end_ms(e))},
         {"duration_minutes", e.duration_min ? json(*e.duration_min) : json(nullptr)},
         {"place", e.place},
         {"people", e.people},
         {"importance", e.importance},
         {"notes", e.notes},
         {"created_at", iso_utc(e.created_at)},
         {"updated_at", iso_utc(e.updated_at)}};
  if (e.all_day) {
    j["day"] = day_string(first_day(e));
    j["last_day"] = day_string(first_day(e) + date::days{days_of(e) - 1});
  } else {
    j["start_local"] = iso_local(zone, e.starts_at);
  }
  return j;
}

Unexpected no_such_event(int64_t id) {
  // The same answer whether the id is free or another user's: nothing about others leaks.
  return fail(ErrorCode::not_found, fmt::format("events: you have no event #{}", id));
}

Unexpected events_invalid(std::string message) {
  return fail(ErrorCode::invalid_argument, "events: " + std::move(message));
}

// `error` (from when.h, "events: could not read …") naming the argument it came from.
Unexpected about_field(Error error, std::string_view field) {
  constexpr std::string_view kPrefix = "events: ";
  if (error.message.starts_with(kPrefix)) {
    error.message.insert(kPrefix.size(), fmt::format("{}: ", field));
  }
  return fail(std::move(error));
}

// 32 random hex digits and "@parley": an iCalendar UID that stays the event's in every export.
std::string new_uid() {
  std::random_device rd;
  std::string uid;
  for (int i = 0; i < 4; ++i) uid += fmt::format("{:08x}", rd());
  return uid + "@parley";
}

// A weekday name, "mon" … "sunday", as 0 (Sunday) … 6, or nullopt.
std::optional<unsigned> weekday_of(std::string_view word) {
  static constexpr std::array<std::string_view, 7> kWeekdays{
      "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};
  for (unsigned i = 0; i < kWeekdays.size(); ++i) {
    if (word == kWeekdays[i] || (word.size() == 3 && kWeekdays[i].starts_with(word))) return i;
  }
  return std::nullopt;
}

// A day for an event: like parse_day, except that a weekday looks ahead — "friday" is the next
// Friday (today included), "next friday" the next one after today.
Result<date::local_days> event_day(std::string_view text, int64_t now, const Zone& zone) {
  const std::string s = normalise_words(text);
  std::string_view word = s;
  const bool next = word.starts_with("next ");
  if (next) word.remove_prefix(5);
  if (const auto wd = weekday_of(word)) {
    const date::local_days today = local_day(zone, now);
    auto ahead = date::weekday{*wd} - date::weekday{today};  // 0..6 days
    if (next && ahead == date::days{0}) ahead = date::days{7};
    return today + ahead;
  }
  return parse_day(text, now, zone, "events");
}

// The arguments' start, when they give one: a time ("when") or a whole day ("day").
struct Start {
  int64_t starts_at = 0;
  bool all_day = false;
};

Result<std::optional<Start>> start_from(const json& args, int64_t now, const Zone& zone) {
  const bool has_when = args.contains("when");
  const bool has_day = args.contains("day");
  if (has_when && has_day) {
    return events_invalid("give either \"when\" (a time) or \"day\" (an all-day event), not both");
  }
  if (has_when) {
    const auto when = args.at("when").get<std::string>();
    auto spec = parse_when(when, "events");
    if (!spec) return about_field(std::move(spec).error(), "when");
    const int64_t at = resolve_when(*spec, now, zone.tz);
    if (at - now > kMaxAheadMs) {
      return events_invalid(fmt::format("when: '{}' is more than a century ahead", trim(when)));
    }
    return std::optional(Start{at, false});
  }
  if (has_day) {
    auto day = event_day(args.at("day").get<std::string>(), now, zone);
    if (!day) return about_field(std::move(day).error(), "day");
    const int64_t at = day_start_ms(zone, *day);
    if (at - now > kMaxAheadMs) {
      return events_invalid(fmt::format("day: '{}' is more than a century ahead",
                                        trim(args.at("day").get<std::string>())));
    }
    return std::optional(Start{at, true});
  }
  return std::optional<Start>{};
}

Status check_all_day_duration(const std::optional<int64_t>& duration) {
  if (duration && (*duration < kMinutesPerDay || *duration % kMinutesPerDay != 0)) {
    return events_invalid(fmt::format(
        "duration_minutes: an all-day event lasts whole days, a multiple of 1440 (one day), "
        "not {}",
        *duration));
  }
  return {};
}

Result<std::vector<std::string>> people_arg(const json& args) {
  std::vector<std::string> people;
  size_t i = 0;
  for (const auto& p : args.at("people")) {
    auto name = std::string(trim(p.get<std::string>()));
    if (name.empty()) return events_invalid(fmt::format("people[{}] is empty", i));
    people.push_back(std::move(name));
    ++i;
  }
  return people;
}

Result<std::vector<Event>> read_events(storage::Store& store, const std::string& sql,
                                       const std::function<void(storage::Statement&)>& bind) {
  std::vector<Event> found;
  auto conn = store.reads().acquire();
  auto st = conn->cached(sql);
  if (!st) return fail(std::move(st).error());
  bind(**st);
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    found.push_back(read_event(**st));
  }
  return found;
}

// The events of `user` taking place in [from, until), in start order, at most `limit`.
Result<std::vector<Event>> events_between(storage::Store& store, int64_t user, int64_t from,
                                          int64_t until, size_t limit) {
  // The index range reaches back by the longest duration an event may have; the exact end (an
  // all-day event's last day in its zone) is checked here.
  static const std::string kSql = fmt::format(
      "SELECT {} FROM events e WHERE e.user_id = ? AND e.starts_at < ? AND e.starts_at >= ? "
      "AND (e.starts_at >= ? OR e.starts_at + coalesce(e.duration_min, e.all_day * 1440) * "
      "60000 + e.all_day * {} > ?) ORDER BY e.starts_at, e.id LIMIT ?",
      kColumns, kDayMarginMs);
  const int64_t reach = from - kMaxDuration * kMsPerMinute - kDayMarginMs;
  const auto sql_limit = static_cast<int64_t>(std::min<size_t>(limit, size_t{1} << 20)) + 64;
  auto found = read_events(store, kSql, [&](storage::Statement& st) {
    st.bind_all(user, until, reach, from, from, sql_limit);
  });
  if (!found) return fail(std::move(found).error());
  std::erase_if(*found, [&](const Event& e) { return !within(e, from, until); });
  if (found->size() > limit) found->resize(limit);
  return found;
}

// iCalendar (RFC 5545) text.

// A TEXT value: backslash, semicolon, comma escaped, line breaks as \n, other controls dropped,
// invalid UTF-8 replaced.
std::string ics_text(std::string_view text) {
  const std::string s = valid_utf8(text);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    switch (c) {
      case '\\': out += "\\\\"; break;
      case ';': out += "\\;"; break;
      case ',': out += "\\,"; break;
      case '\r':
        if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
        out += "\\n";
        break;
      case '\n': out += "\\n"; break;
      default:
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) break;
        out += c;
    }
  }
  return out;
}

// One content line: folded at 75 octets (a continuation line starts with a space, which counts),
// never inside a UTF-8 character, ended by CRLF.
void ics_line(std::string& out, std::string_view line) {
  size_t limit = 75;
  while (line.size() > limit) {
    size_t cut = limit;
    while (cut > 0 && is_utf8_continuation(line[cut])) --cut;
    if (cut == 0) cut = limit;  // not UTF-8 (ics_text makes it so): octets, then
    out.append(line.substr(0, cut));
    out += "\r\n ";
    line.remove_prefix(cut);
    limit = 74;
  }
  out.append(line);
  out += "\r\n";
}

std::string ics_utc(int64_t ms) {
  return date::format("%Y%m%dT%H%M%SZ", date::floor<std::chrono::seconds>(SysMs{Ms{ms}}));
}

std::string ics_date(date::local_days day) { return date::format("%Y%m%d", day); }

// "+0100", "-0530", "+005328" (seconds only when there are some).
std::string ics_offset(std::chrono::seconds offset) {
  const char sign = offset < std::chrono::seconds{0} ? '-' : '+';
  const int64_t s = offset.count() < 0 ? -offset.count() : offset.count();
  std::string out = fmt::format("{}{:02}{:02}", sign, s / 3600, s % 3600 / 60);
  if (s % 60 != 0) out += fmt::format("{:02}", s % 60);
  return out;
}

// DTSTART/DTEND of a timed event: UTC as such, any other zone as local time with its TZID.
std::string ics_time(std::string_view property, const Zone& zone, int64_t ms) {
  if (zone.name == "UTC") return fmt::format("{}:{}", property, ics_utc(ms));
  return fmt::format("{};TZID={}:{}", property, zone.name, local_format("%Y%m%dT%H%M%S", zone, ms));
}

// A VTIMEZONE for `zone` covering [from, until): the observance in force at `from`, then one
// per change of offset or of daylight saving time before `until`.
void ics_timezone(std::string& out, const Zone& zone, std::chrono::sys_seconds from,
                  std::chrono::sys_seconds until) {
  using std::chrono::seconds;
  const auto observance = [&out](const date::sys_info& obs, seconds offset_from,
                                 std::chrono::sys_seconds onset) {
    const char* kind = obs.save != std::chrono::minutes{0} ? "DAYLIGHT" : "STANDARD";
    ics_line(out, fmt::format("BEGIN:{}", kind));
    // The onset is written in the local time in force before it.
    ics_line(out, "DTSTART:" + date::format("%Y%m%dT%H%M%S", onset + offset_from));
    ics_line(out, "TZOFFSETFROM:" + ics_offset(offset_from));
    ics_line(out, "TZOFFSETTO:" + ics_offset(obs.offset));
    if (!obs.abbrev.empty()) ics_line(out, "TZNAME:" + ics_text(obs.abbrev));
    ics_line(out, fmt::format("END:{}", kind));
  };
  ics_line(out, "BEGIN:VTIMEZONE");
  ics_line(out, "TZID:" + zone.name);
  auto info = zone.tz->get_info(from);
  const std::chrono::sys_seconds earliest = date::sys_days{date::year{1900} / 1 / 1};
  if (info.begin >= earliest) {
    observance(info, zone.tz->get_info(info.begin - seconds{1}).offset, info.begin);
  } else {
    // In force since before any date worth writing: from the start of the range, unchanged.
    observance(info, info.offset, from);
  }
  for (int n = 0; info.end < until && n < 1000; ++n) {
    const auto next = zone.tz->get_info(info.end);
    observance(next, info.offset, info.end);
    info = next;
  }
  ics_line(out, "END:VTIMEZONE");
}

// The iCalendar file of `events`, stamped `now`.
std::string ics_calendar(const std::vector<Event>& events, int64_t now) {
  std::string out;
  ics_line(out, "BEGIN:VCALENDAR");
  ics_line(out, "VERSION:2.0");
  ics_line(out, "PRODID:-//parley//events//EN");
  ics_line(out, "CALSCALE:GREGORIAN");

  // The years each zone's timed events span, for its VTIMEZONE.
  struct Span {
    Zone zone;
    int64_t first = 0;
    int64_t last = 0;
  };
  std::vector<Span> spans;
  for (const auto& e : events) {
    if (e.all_day) continue;
    Zone zone = zone_of(e.zone);
    if (zone.name == "UTC") continue;
    auto it = std::find_if(spans.begin(), spans.end(),
                           [&](const Span& s) { return s.zone.name == zone.name; });
    if (it == spans.end()) {
      spans.push_back({std::move(zone), e.starts_at, end_ms(e)});
    } else {
      it->first = std::min(it->first, e.starts_at);
      it->last = std::max(it->last, end_ms(e));
    }
  }
  for (const auto& s : spans) {
    const auto year_of = [](int64_t ms) {
      return date::year_month_day{date::floor<date::days>(SysMs{Ms{ms}})}.year();
    };
    ics_timezone(out, s.zone, date::sys_days{year_of(s.first) / 1 / 1},
                 date::sys_days{(year_of(s.last) + date::years{1}) / 1 / 1});
  }

  const std::string stamp = ics_utc(now);
  for (const auto& e : events) {
    ics_line(out, "BEGIN:VEVENT");
    ics_line(out, "UID:" + e.uid);
    ics_line(out, "DTSTAMP:" + stamp);
    if (e.all_day) {
      ics_line(out, "DTSTART;VALUE=DATE:" + ics_date(first_day(e)));
      ics_line(out, "DTEND;VALUE=DATE:" + ics_date(first_day(e) + date::days{days_of(e)}));
    } else {
      const Zone zone = zone_of(e.zone);
      ics_line(out, ics_time("DTSTART", zone, e.starts_at));
      if (e.duration_min.value_or(0) > 0) ics_line(out, ics_time("DTEND", zone, end_ms(e)));
    }
    ics_line(out, "SUMMARY:" + ics_text(e.title));
    if (!e.place.empty()) ics_line(out, "LOCATION:" + ics_text(e.place));
    std::string description;
    if (!e.people.empty()) description = fmt::format("With: {}", fmt::join(e.people, ", "));
    if (!e.notes.empty()) description += (description.empty() ? "" : "\n") + e.notes;
    if (!description.empty()) ics_line(out, "DESCRIPTION:" + ics_text(description));
    // 1 is the highest priority, 9 the lowest: importance 5 → 1, 3 → 5, 1 → 9.
    ics_line(out, fmt::format("PRIORITY:{}", 11 - 2 * e.importance));
    ics_line(out, "CREATED:" + ics_utc(e.created_at));
    ics_line(out, "LAST-MODIFIED:" + ics_utc(e.updated_at));
    ics_line(out, "END:VEVENT");
  }
  ics_line(out, "END:VCALENDAR");
  return out;
}

class Events final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "events"; }
  [[nodiscard]] std::string_view description() const override {
    return "The user's calendar of events (times, places, people), with an iCalendar export.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"event",   "calendar", "ical",  ".ics",        "meeting",    "birthday",
            "wedding", "concert",  "party", "appointment", "conference", "agenda"};
  }
  [[nodiscard]] json parameters() const override {
    const auto text = [](size_t max, const char* description) {
      return json{
          {"type", "string"}, {"minLength", 1}, {"maxLength", max}, {"description", description}};
    };
    return {{"type", "object"},
            {"additionalProperties", false},
            {"required", {"action"}},
            {"properties",
             {{"action",
               {{"type", "string"},
                {"enum", {"add", "upcoming", "list", "get", "update", "remove", "export"}},
                {"description",
                 "add an event; upcoming: the next days; list: a day or a range of days; get, "
                 "update or remove one by id; export: all events as an iCalendar (.ics) file"}}},
              {"title", text(kMaxTitle, "what it is (add, update)")},
              {"when", text(kMaxWhen,
                            "a start time, in the user's zone unless one is given: tomorrow 09:00, "
                            "18:30, in 3 days, 2026-11-24 09:00, 2026-11-24T09:00+01:00 (add, "
                            "update; not with day)")},
              {"day", text(kMaxWhen,
                           "a whole day: an all-day event (add, update; not with when), or the day "
                           "to list: today, tomorrow, friday, 2026-12-06")},
              {"from", text(kMaxWhen, "first day to list, e.g. 2026-12-01 (list)")},
              {"to", text(kMaxWhen, "last day to list (list)")},
              {"duration_minutes",
               {{"type", "integer"},
                {"minimum", 0},
                {"maximum", kMaxDuration},
                {"description",
                 "how long, in minutes; an all-day event: a multiple of 1440 (add, update)"}}},
              {"place", {{"type", "string"}, {"maxLength", kMaxPlace}, {"description", "where"}}},
              {"people",
               {{"type", "array"},
                {"maxItems", kMaxPeople},
                {"items", {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxPerson}}},
                {"description", "who is there (names)"}}},
              {"importance",
               {{"type", "integer"},
                {"minimum", 1},
                {"maximum", 5},
                {"default", 3},
                {"description", "1 minor … 5 most important"}}},
              {"notes", {{"type", "string"}, {"maxLength", kMaxNotes}}},
              {"days",
               {{"type", "integer"},
                {"minimum", 1},
                {"maximum", kMaxUpcomingDays},
                {"default", kDefaultUpcomingDays},
                {"description", "how many days ahead (upcoming)"}}},
              {"id",
               {{"type", "integer"},
                {"minimum", 1},
                {"description", "event number (get, update, remove)"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"events", kEventsUsage,
             "your calendar, e.g. /events add tomorrow 19:00 dinner with Anna; /events export"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view /*command*/,
                                           std::string_view text) const override {
    const auto [action, rest] = split_first_word(text);
    if (action.empty() || action == "upcoming") {
      if (rest.empty()) return json{{"action", "upcoming"}};
    } else if (action == "add") {
      return parse_add(rest);
    } else if (action == "list") {
      if (rest.empty()) return json{{"action", "list"}};
      return json{{"action", "list"}, {"day", std::string(rest)}};
    } else if (action == "export") {
      if (rest.empty()) return json{{"action", "export"}};
    } else if (action == "remove" || action == "get") {
      if (!rest.empty()) {
        auto id = parse_id(rest, "events");
        if (!id) return fail(std::move(id).error());
        return json{{"action", std::string(action)}, {"id", *id}};
      }
    } else if (rest.empty() && (std::isdigit(static_cast<unsigned char>(action.front())) != 0 ||
                                action.front() == '#')) {
      auto id = parse_id(action, "events");
      if (!id) return fail(std::move(id).error());
      return json{{"action", "get"}, {"id", *id}};
    }
    return events_invalid(fmt::format("usage: {}", kEventsUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const Zone zone = zone_of(ctx.caller.time_zone);
    const int64_t now = clock_of(ctx).now_ms();
    const auto action = args.at("action").get<std::string>();
    if (action == "upcoming") {
      return done(upcoming(**scope, zone, now, args.value("days", kDefaultUpcomingDays)));
    }
    if (action == "list") return done(list(**scope, args, zone, now));
    if (action == "export") return done(export_all(**scope, now));
    if (action == "add") {
      auto e = event_from(args, zone, now);
      if (!e) return done(fail(std::move(e).error()));
      return add(**scope, std::move(*e), zone, std::move(done));
    }
    if (!args.contains("id")) {
      return done(events_invalid(fmt::format("{} needs the event's \"id\"", action)));
    }
    const auto id = args.at("id").get<int64_t>();
    if (action == "get") return done(get(**scope, id, zone));
    if (action == "remove") return remove(**scope, id, zone, std::move(done));
    return update(**scope, id, args, zone, now, std::move(done));
  }

 private:
  // "/events add WHEN TITLE": the longest run of leading words that reads as a time is the WHEN;
  // failing that, a day ("tomorrow", "friday", "2026-12-06") makes an all-day event.
  static Result<json> parse_add(std::string_view text) {
    std::vector<size_t> word_ends;
    for (size_t i = 0; i < text.size();) {
      while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) != 0) ++i;
      if (i == text.size()) break;
      while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) == 0) ++i;
      word_ends.push_back(i);
    }
    const auto made = [&](size_t n, const char* key) -> Result<json> {
      const std::string_view when = text.substr(0, word_ends[n - 1]);
      const std::string_view title = trim(text.substr(word_ends[n - 1]));
      if (title.empty()) {
        return events_invalid(fmt::format(
            "what is it? usage: /events add WHEN TITLE, e.g. /events add {} dinner", when));
      }
      return json{{"action", "add"}, {key, std::string(when)}, {"title", std::string(title)}};
    };
    for (size_t n = std::min(word_ends.size(), kMaxWhenWords); n > 0; --n) {
      if (parse_when(text.substr(0, word_ends[n - 1]), "events")) return made(n, "when");
    }
    // Only the syntax matters here: the day is read again at the call's clock and zone.
    const Zone utc = zone_of("UTC");
    for (size_t n = std::min(word_ends.size(), kMaxDayWords); n > 0; --n) {
      if (event_day(text.substr(0, word_ends[n - 1]), 0, utc)) return made(n, "day");
    }
    if (word_ends.empty()) {
      return events_invalid(fmt::format(
          "usage: /events add WHEN TITLE, where WHEN is a time ({}) or a day", kWhenForms));
    }
    return events_invalid(fmt::format(
        "could not read a time or a day at the start of '{}'; usage: /events add WHEN TITLE, "
        "where WHEN is e.g. {}, or a day: {}",
        text, kWhenForms, kDayForms));
  }

  // A new event from the arguments of add, checked.
  static Result<Event> event_from(const json& args, const Zone& zone, int64_t now) {
    Event e;
    e.title = std::string(trim(args.value("title", std::string())));
    if (e.title.empty()) return events_invalid("add needs a non-empty \"title\"");
    auto start = start_from(args, now, zone);
    if (!start) return fail(std::move(start).error());
    if (!*start) {
      return events_invalid(fmt::format(
          "add needs \"when\" (a time, e.g. {}) or \"day\" (an all-day event)", kWhenForms));
    }
    e.starts_at = (*start)->starts_at;
    e.all_day = (*start)->all_day;
    e.zone = zone.name;
    if (args.contains("duration_minutes"))
      e.duration_min = args.at("duration_minutes").get<int64_t>();
    if (e.all_day) PARLEY_TRY(check_all_day_duration(e.duration_min));
    e.place = std::string(trim(args.value("place", std::string())));
    if (args.contains("people")) {
      auto people = people_arg(args);
      if (!people) return fail(std::move(people).error());
      e.people = std::move(*people);
    }
    e.importance = args.value("importance", int64_t{3});
    e.notes = std::string(trim(args.value("notes", std::string())));
    e.uid = new_uid();
    e.created_at = e.updated_at = now;
    return e;
  }

  Result<json> upcoming(const UserScope& scope, const Zone& zone, int64_t now, int64_t days) const {
    auto found =
        events_between(scope.store(), scope.user_id(), now, now + days * kMsPerDay, kMaxListed + 1);
    if (!found) return fail(std::move(found).error());
    return listing(std::move(*found), zone,
                   fmt::format("Your events in the next {} days ({} time):", days, zone.name),
                   fmt::format("Nothing on your calendar in the next {} days.", days));
  }

  Result<json> list(const UserScope& scope, const json& args, const Zone& zone, int64_t now) const {
    if (args.contains("day") && (args.contains("from") || args.contains("to"))) {
      return events_invalid("list takes either \"day\" or \"from\"/\"to\", not both");
    }
    const auto read = [&](const char* key) -> Result<std::optional<date::local_days>> {
      if (!args.contains(key)) return std::optional<date::local_days>{};
      auto day = event_day(args.at(key).get<std::string>(), now, zone);
      if (!day) return about_field(std::move(day).error(), key);
      return std::optional(*day);
    };
    auto day = read("day");
    if (!day) return fail(std::move(day).error());
    auto from = read("from");
    if (!from) return fail(std::move(from).error());
    auto to = read("to");
    if (!to) return fail(std::move(to).error());
    date::local_days first = local_day(zone, now);
    date::local_days last = first;
    if (*day) {
      first = last = **day;
    } else if (*from || *to) {
      first = from->value_or(to->value_or(first));
      last = to->value_or(first);
    }
    if (last < first) {
      return events_invalid(
          fmt::format("to ({}) is before from ({})", day_string(last), day_string(first)));
    }
    if ((last - first).count() >= kMaxRangeDays) {
      return events_invalid(fmt::format("list at most {} days at once", kMaxRangeDays));
    }
    auto found = events_between(scope.store(), scope.user_id(), day_start_ms(zone, first),
                                day_start_ms(zone, last + date::days{1}), kMaxListed + 1);
    if (!found) return fail(std::move(found).error());
    const std::string range =
        first == last ? long_day(first) : fmt::format("{} – {}", long_day(first), long_day(last));
    auto out = listing(std::move(*found), zone,
                       fmt::format("Your events, {} ({} time):", range, zone.name),
                       fmt::format("Nothing on your calendar for {}.", range));
    if (out) {
      (*out)["from"] = day_string(first);
      (*out)["to"] = day_string(last);
    }
    return out;
  }

  static Result<json> listing(std::vector<Event> found, const Zone& zone, std::string heading,
                              std::string none) {
    const bool more = found.size() > kMaxListed;
    if (more) found.pop_back();
    json out = json::array();
    std::string text = found.empty() ? std::move(none) : std::move(heading);
    for (const auto& e : found) {
      out.push_back(to_json(e));
      text += "\n" + line_for(e, zone);
    }
    if (more) text += fmt::format("\n(only the first {} are shown)", kMaxListed);
    return json{{"events", std::move(out)}, {"truncated", more}, {"text", std::move(text)}};
  }

  static Result<json> get(const UserScope& scope, int64_t id, const Zone& zone) {
    auto found = read_events(
        scope.store(),
        fmt::format("SELECT {} FROM events e WHERE e.id = ? AND e.user_id = ?", kColumns),
        [&](storage::Statement& st) { st.bind_all(id, scope.user_id()); });
    if (!found) return fail(std::move(found).error());
    if (found->empty()) return no_such_event(id);
    const Event& e = found->front();
    std::string text = line_for(e, zone);
    if (!e.notes.empty()) text += "\n  " + e.notes;
    return json{{"event", to_json(e)}, {"text", std::move(text)}};
  }

  Result<json> export_all(const UserScope& scope, int64_t now) const {
    auto found = read_events(
        scope.store(),
        fmt::format("SELECT {} FROM events e WHERE e.user_id = ? ORDER BY e.starts_at, e.id "
                    "LIMIT ?",
                    kColumns),
        [&](storage::Statement& st) {
          st.bind_all(scope.user_id(), static_cast<int64_t>(kMaxExported));
        });
    if (!found) return fail(std::move(found).error());
    const size_t n = found->size();
    std::string text = n == 0 ? std::string("Your calendar file events.ics holds no events yet.")
                              : fmt::format("Your calendar file events.ics holds {} event{}.", n,
                                            n == 1 ? "" : "s");
    if (n == kMaxExported) text += fmt::format(" (only the first {} are in it)", kMaxExported);
    return json{{"count", n},
                {"attachments", json::array({{{"filename", "events.ics"},
                                              {"media_type", "text/calendar"},
                                              {"text", ics_calendar(*found, now)}}})},
                {"text", std::move(text)}};
  }

  void add(const UserScope& scope, Event e, const Zone& zone, Done done) const {
    auto rec = std::make_shared<Event>(std::move(e));
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "events add",
        [rec, user](Connection& conn) -> Result<WriteAck> {
          auto st = conn.cached(
              "INSERT INTO events(user_id, uid, title, starts_at, zone, all_day, duration_min, "
              "place, people, importance, notes, created_at, updated_at) "
              "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)
                         ->bind_all(user, rec->uid, rec->title, rec->starts_at, rec->zone,
                                    rec->all_day ? 1 : 0, rec->duration_min, rec->place,
                                    json(rec->people).dump(), rec->importance, rec->notes,
                                    rec->created_at, rec->updated_at)
                         .run());
          rec->id = conn.last_insert_rowid();
          return WriteAck{rec->id, true};
        },
        [rec, zone] {
          return json{{"event", to_json(*rec)},
                      {"text", fmt::format("Added {}", line_for(*rec, zone))}};
        },
        std::move(done));
  }

  void update(const UserScope& scope, int64_t id, const json& args, const Zone& zone, int64_t now,
              Done done) const {
    // What can be checked without the stored event is checked before the write.
    auto start = start_from(args, now, zone);
    if (!start) return done(fail(std::move(start).error()));
    std::optional<std::vector<std::string>> people;
    if (args.contains("people")) {
      auto p = people_arg(args);
      if (!p) return done(fail(std::move(p).error()));
      people = std::move(*p);
    }
    std::optional<std::string> title;
    if (args.contains("title")) {
      title = std::string(trim(args.at("title").get<std::string>()));
      if (title->empty()) return done(events_invalid("\"title\" is empty"));
    }
    bool any = start->has_value() || people.has_value() || title.has_value();
    for (const char* key : {"duration_minutes", "place", "importance", "notes"}) {
      any = any || args.contains(key);
    }
    if (!any) {
      return done(events_invalid(
          "update needs something to change: title, when or day, duration_minutes, place, "
          "people, importance or notes"));
    }
    auto rec = std::make_shared<Event>();
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "events update",
        [rec, id, user, args, new_start = *start, new_people = std::move(people),
         new_title = std::move(title), zone_name = zone.name,
         now](Connection& conn) -> Result<WriteAck> {
          auto sel = conn.cached(
              fmt::format("SELECT {} FROM events e WHERE e.id = ? AND e.user_id = ?", kColumns));
          if (!sel) return fail(std::move(sel).error());
          (*sel)->bind_all(id, user);
          auto row = (*sel)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) return no_such_event(id);
          Event e = read_event(**sel);
          (*sel)->reset();
          if (new_title) e.title = *new_title;
          if (new_start) {
            const bool was_all_day = e.all_day;
            e.starts_at = new_start->starts_at;
            e.all_day = new_start->all_day;
            e.zone = zone_name;
            // A timed duration does not carry over to a whole-day event, nor the other way.
            if (was_all_day != e.all_day) e.duration_min.reset();
          }
          if (args.contains("duration_minutes")) {
            e.duration_min = args.at("duration_minutes").get<int64_t>();
          }
          if (e.all_day) PARLEY_TRY(check_all_day_duration(e.duration_min));
          if (args.contains("place")) {
            e.place = std::string(trim(args.at("place").get<std::string>()));
          }
          if (new_people) e.people = *new_people;
          if (args.contains("importance")) e.importance = args.at("importance").get<int64_t>();
          if (args.contains("notes")) {
            e.notes = std::string(trim(args.at("notes").get<std::string>()));
          }
          e.updated_at = now;
          auto set = conn.cached(
              "UPDATE events SET title = ?, starts_at = ?, zone = ?, all_day = ?, "
              "duration_min = ?, place = ?, people = ?, importance = ?, notes = ?, "
              "updated_at = ? WHERE id = ? AND user_id = ?");
          if (!set) return fail(std::move(set).error());
          PARLEY_TRY((*set)
                         ->bind_all(e.title, e.starts_at, e.zone, e.all_day ? 1 : 0, e.duration_min,
                                    e.place, json(e.people).dump(), e.importance, e.notes,
                                    e.updated_at, id, user)
                         .run());
          *rec = std::move(e);
          return WriteAck{id, false};
        },
        [rec, zone] {
          return json{{"event", to_json(*rec)},
                      {"text", fmt::format("Updated {}", line_for(*rec, zone))}};
        },
        std::move(done));
  }

  void remove(const UserScope& scope, int64_t id, const Zone& zone, Done done) const {
    auto rec = std::make_shared<Event>();
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "events remove",
        [rec, id, user](Connection& conn) -> Result<WriteAck> {
          // RETURNING names the table's own columns (no alias), in kColumns' order.
          auto st = conn.cached(
              "DELETE FROM events WHERE id = ? AND user_id = ? RETURNING id, uid, title, "
              "starts_at, zone, all_day, duration_min, place, people, importance, notes, "
              "created_at, updated_at");
          if (!st) return fail(std::move(st).error());
          (*st)->bind_all(id, user);
          auto row = (*st)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) return no_such_event(id);
          *rec = read_event(**st);
          return WriteAck{id, false};
        },
        [rec, zone] {
          return json{{"event", to_json(*rec)},
                      {"text", fmt::format("Removed {}", line_for(*rec, zone))}};
        },
        std::move(done));
  }
};

}  // namespace events_detail
}  // namespace

std::unique_ptr<Capability> make_events() { return std::make_unique<events_detail::Events>(); }

}  // namespace builtins

Result<std::vector<UpcomingEvent>> upcoming_events(storage::Store& store, int64_t user_id,
                                                   int64_t now_ms, int64_t within_ms,
                                                   size_t limit) {
  std::vector<UpcomingEvent> out;
  if (limit == 0 || within_ms <= 0) return out;
  within_ms = std::min(within_ms, builtins::events_detail::kMaxAheadMs);
  auto found =
      builtins::events_detail::events_between(store, user_id, now_ms, now_ms + within_ms, limit);
  if (!found) return fail(std::move(found).error());
  for (auto& e : *found) {
    UpcomingEvent u;
    u.id = e.id;
    u.title = std::move(e.title);
    u.starts_at = e.starts_at;
    u.zone = std::move(e.zone);
    u.all_day = e.all_day;
    u.duration_minutes = e.duration_min;
    u.place = std::move(e.place);
    u.people = std::move(e.people);
    u.importance = static_cast<int>(e.importance);
    out.push_back(std::move(u));
  }
  return out;
}

}  // namespace parley::capabilities
