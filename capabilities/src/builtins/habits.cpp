// habits: the caller's habits (tables habits and habit_logs, migration 0011) — daily, on
// weekdays, or N times a week — with one log per habit and day (done, or skipped with a reason),
// and their streaks, marks and completion as people read them. Every statement is scoped by the
// UserScope's user id: another user's habit number or name is answered exactly like one that
// does not exist. Writes go through the store's write queue and answer once committed; reads use
// the read pool.
//
// Days are the caller's calendar days ("YYYY-MM-DD" in Caller::time_zone, builtins/when.h), and
// streaks walk those days one by one — never 24-hour steps — so that a 23- or 25-hour day of a
// DST change is one day like any other:
// - daily: consecutive days done; weekdays: consecutive weekdays done (weekends neither count
//   nor break); weekly N: consecutive weeks (Monday–Sunday) with at least N done.
// - A skip with a reason is excused: it neither breaks nor extends a streak. A week whose
//   excused days leave fewer than N free days keeps the streak when every free day was done.
// - A scheduled day without a log breaks the streak, except today (still open) and, for weekly
//   habits, the current week (still open). The week a habit starts in asks for at most as many
//   as it has days left.
// - Pausing (or archiving) remembers the day; resuming writes a skip "paused" for each scheduled
//   day since without a log, so that a pause never breaks a streak.
//
// Asked for a chart ("chart": true, which /habits sets), the status also comes as a PNG calendar
// of the active habits' last five weeks (chart.h), its cells what the marks above say (plus
// "open": today, not logged yet, still asked for).
//
// A reminder when asked (add's remind_at): a pending reminder for the next scheduled day at that
// local time, through the reminders built-in's own statements (parley/capabilities/reminders.h),
// in the same write as the habit, the time of day and the zone kept with the habit (migration
// 0013). When it fires, the bot's reminder scheduler calls rearm_habit_reminder() (below) in the
// same commit, which sets the next scheduled day's; pausing or archiving cancels the pending one,
// resuming sets the next.
#include <date/date.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <vector>

#include "builtins/builtins_internal.h"
#include "builtins/chart.h"
#include "builtins/trend.h"
#include "builtins/when.h"
#include "parley/capabilities/reminders.h"

namespace parley::capabilities::builtins {
namespace {
namespace habits_detail {

using nlohmann::json;
using storage::Connection;
using storage::WriteAck;
using Day = date::local_days;

constexpr size_t kMaxName = 100;
constexpr size_t kMaxTarget = 100;
constexpr size_t kMaxReason = 200;
constexpr size_t kMaxNote = 500;
constexpr size_t kMaxDayText = 40;
constexpr size_t kMaxRemindAt = 20;
constexpr int64_t kMaxHabitsShown = 50;
constexpr int kMarkDays = 14;
constexpr int kRateDays = 30;
constexpr int kSparkWeeks = 8;
constexpr int kMaxStartBack = 3660;  // days: about ten years
constexpr int kMaxAhead = 366;       // days: start days and planned skips
constexpr size_t kMaxDaySuffixWords = 3;

constexpr const char* kHabitsUsage =
    "/habits | /habits add NAME [daily|weekdays|Nx/week] | "
    "/habits pause|resume|archive|remove NAME-or-ID";
constexpr const char* kHabitUsage = "/habit done NAME [DAY] | /habit skip NAME REASON";
constexpr const char* kLegend = "✓ done, ✗ missed, – skipped, · not due";

struct Habit {
  int64_t id = 0;
  std::string name;
  std::string frequency;  // daily | weekdays | weekly
  int64_t per_week = 7;
  std::string target;
  std::string status;  // active | paused | archived
  Day start{};
  std::optional<int64_t> reminder_id;
  std::optional<std::string> paused_on;
  int64_t created_at = 0;
  std::optional<std::string> remind_at;  // "HH:MM", local to remind_zone
  std::string remind_zone;
};

struct Log {
  bool done = false;
  std::string reason;
  std::string note;
};
using Logs = std::map<Day, Log>;

struct Streaks {
  int64_t current = 0;
  int64_t longest = 0;
};

Day next_day(Day d) { return d + date::days{1}; }

bool is_weekend(Day d) {
  const date::weekday wd{d};
  return wd == date::Saturday || wd == date::Sunday;
}

// Whether `d` asks for the habit on its own (weekly habits: any day from the start may count).
bool scheduled(const Habit& h, Day d) {
  return d >= h.start && (h.frequency != "weekdays" || !is_weekend(d));
}

Day monday_of(Day d) { return d - (date::weekday{d} - date::Monday); }

// ---- streaks and completion

// Daily and weekdays: walks the calendar days from the start; the run left at today is the
// current streak.
Streaks day_streaks(const Habit& h, const Logs& logs, Day today) {
  Streaks s;
  int64_t run = 0;
  for (Day d = h.start; d <= today; d = next_day(d)) {
    if (!scheduled(h, d)) continue;
    const auto it = logs.find(d);
    if (it != logs.end()) {
      if (it->second.done) s.longest = std::max(s.longest, ++run);
      continue;  // a skip is excused
    }
    if (d < today) run = 0;  // missed; today is still open
  }
  s.current = run;
  return s;
}

struct WeekCount {
  int64_t available = 0;  // days of the week on or after the start
  int64_t done = 0;
  int64_t excused = 0;
};

WeekCount count_week(const Habit& h, const Logs& logs, Day monday) {
  WeekCount c;
  for (Day d = monday; d < monday + date::days{7}; d = next_day(d)) {
    if (d < h.start) continue;
    ++c.available;
    const auto it = logs.find(d);
    if (it == logs.end()) continue;
    if (it->second.done) {
      ++c.done;
    } else {
      ++c.excused;
    }
  }
  return c;
}

enum class WeekResult { none, met, excused, missed, open };

int64_t week_required(const Habit& h, const WeekCount& c) {
  return std::min(h.per_week, c.available);
}

WeekResult judge_week(const Habit& h, const WeekCount& c, bool current) {
  if (c.available == 0) return WeekResult::none;
  const int64_t required = week_required(h, c);
  if (c.done >= required) return WeekResult::met;
  if (current) return WeekResult::open;
  const int64_t free = c.available - c.excused;
  if (c.done >= std::min(required, free)) return WeekResult::excused;
  return WeekResult::missed;
}

Streaks week_streaks(const Habit& h, const Logs& logs, Day today) {
  Streaks s;
  int64_t run = 0;
  const Day this_week = monday_of(today);
  for (Day w = monday_of(h.start); w <= this_week && h.start <= today; w += date::days{7}) {
    switch (judge_week(h, count_week(h, logs, w), w == this_week)) {
      case WeekResult::met: s.longest = std::max(s.longest, ++run); break;
      case WeekResult::missed: run = 0; break;
      case WeekResult::none:
      case WeekResult::excused:
      case WeekResult::open: break;
    }
  }
  s.current = run;
  return s;
}

Streaks streaks_of(const Habit& h, const Logs& logs, Day today) {
  return h.frequency == "weekly" ? week_streaks(h, logs, today) : day_streaks(h, logs, today);
}

// Done over expected in [from, to] (to at most today): for daily and weekdays, the scheduled
// days (an excused day and today without a log expect nothing); for weekly, N of every 7 days
// that were not excused. nullopt when nothing was expected.
std::optional<double> completion(const Habit& h, const Logs& logs, Day from, Day to, Day today) {
  int64_t done = 0;
  int64_t expected = 0;
  for (Day d = std::max(from, h.start); d <= to; d = next_day(d)) {
    if (!scheduled(h, d)) continue;
    const auto it = logs.find(d);
    if (it != logs.end()) {
      if (it->second.done) {
        ++done;
        ++expected;
      }
      continue;
    }
    if (d < today) ++expected;
  }
  if (h.frequency != "weekly") {
    if (expected == 0) return std::nullopt;
    return static_cast<double>(done) / static_cast<double>(expected);
  }
  const double wanted = static_cast<double>(h.per_week) * static_cast<double>(expected) / 7.0;
  if (wanted <= 0) return std::nullopt;
  return std::min(1.0, static_cast<double>(done) / wanted);
}

// One week's completion for the sparkline: weekly habits against their N (what the week can
// still hold when days were excused), the others against their scheduled days so far.
std::optional<double> week_completion(const Habit& h, const Logs& logs, Day monday, Day today) {
  if (monday > today) return std::nullopt;
  if (h.frequency != "weekly") {
    return completion(h, logs, monday, std::min(monday + date::days{6}, today), today);
  }
  const WeekCount c = count_week(h, logs, monday);
  const int64_t wanted = std::min(week_required(h, c), c.available - c.excused);
  if (c.available == 0 || wanted <= 0) return std::nullopt;
  return std::min(1.0, static_cast<double>(c.done) / static_cast<double>(wanted));
}

struct Mark {
  const char* symbol;
  const char* word;
};

Mark mark_of(const Habit& h, const Logs& logs, Day d, Day today) {
  if (d < h.start || d > today) return {"·", "none"};
  const auto it = logs.find(d);
  if (it != logs.end()) return it->second.done ? Mark{"✓", "done"} : Mark{"–", "skipped"};
  if (h.frequency == "weekly" || !scheduled(h, d) || d == today) return {"·", "none"};
  return {"✗", "missed"};
}

// The day's cell in the chart: the mark, with today told apart when it still asks for a log
// (a weekly habit: while its week is not met).
HabitCell cell_of(const Habit& h, const Logs& logs, Day d, Day today) {
  const std::string_view mark = mark_of(h, logs, d, today).word;
  if (mark == "done") return HabitCell::done;
  if (mark == "skipped") return HabitCell::skipped;
  if (mark == "missed") return HabitCell::missed;
  if (d == today && scheduled(h, d)) {
    if (h.frequency != "weekly") return HabitCell::open;
    const Day monday = monday_of(today);
    if (judge_week(h, count_week(h, logs, monday), true) == WeekResult::open) {
      return HabitCell::open;
    }
  }
  return HabitCell::not_due;
}

std::optional<int64_t> percent(std::optional<double> ratio) {
  if (!ratio) return std::nullopt;
  return static_cast<int64_t>(std::lround(*ratio * 100.0));
}

std::string frequency_label(const Habit& h) {
  if (h.frequency == "weekly") return fmt::format("{}x a week", h.per_week);
  return h.frequency;
}

std::string streak_words(const Habit& h, int64_t n) {
  const char* unit = h.frequency == "weekly"     ? "week"
                     : h.frequency == "weekdays" ? "weekday"
                                                 : "day";
  return fmt::format("{} {}{}", n, unit, n == 1 ? "" : "s");
}

json habit_json(const Habit& h) {
  return {{"id", h.id},
          {"name", h.name},
          {"frequency", h.frequency},
          {"per_week", h.frequency == "weekly" ? json(h.per_week) : json(nullptr)},
          {"target", h.target},
          {"status", h.status},
          {"start_day", day_string(h.start)},
          {"reminder_id", h.reminder_id ? json(*h.reminder_id) : json(nullptr)},
          {"created_at", iso_utc(h.created_at)}};
}

std::string habit_title(const Habit& h) {
  std::string t = fmt::format("#{} {} ({}", h.id, h.name, frequency_label(h));
  if (!h.target.empty()) t += ", " + h.target;
  return t + ")";
}

// The habit with its streaks, the last 14 days, completion over 30 days and by week.
std::pair<json, std::string> habit_view(const Habit& h, const Logs& logs, Day today) {
  const Streaks s = streaks_of(h, logs, today);
  json marks = json::array();
  std::string row;
  for (int i = kMarkDays - 1; i >= 0; --i) {
    const Day d = today - date::days{i};
    const Mark m = mark_of(h, logs, d, today);
    marks.push_back({{"day", day_string(d)}, {"mark", m.word}});
    row += m.symbol;
  }
  const auto rate = percent(completion(h, logs, today - date::days{kRateDays - 1}, today, today));
  std::vector<std::optional<double>> weeks;
  json weekly = json::array();
  for (int i = kSparkWeeks - 1; i >= 0; --i) {
    const auto w = week_completion(h, logs, monday_of(today) - date::days{7 * i}, today);
    weeks.push_back(w);
    weekly.push_back(w ? json(*percent(w)) : json(nullptr));
  }
  const std::string spark = sparkline(weeks, 0.0, 1.0);
  json j = habit_json(h);
  j["current_streak"] = s.current;
  j["longest_streak"] = s.longest;
  j["streak_unit"] = h.frequency == "weekly"     ? "weeks"
                     : h.frequency == "weekdays" ? "weekdays"
                                                 : "days";
  j["last_14_days"] = std::move(marks);
  j["completion_30_days"] = rate ? json(*rate) : json(nullptr);
  j["weekly_completion"] = std::move(weekly);
  j["sparkline"] = spark;
  std::string text = fmt::format("{}\n  {}  streak {}, best {}\n  30 days {} · weeks {}",
                                 habit_title(h), row, streak_words(h, s.current), s.longest,
                                 rate ? fmt::format("{}%", *rate) : std::string("–"), spark);
  return {std::move(j), std::move(text)};
}

// ---- storage

constexpr const char* kHabitColumns =
    "SELECT id, name, frequency, per_week, target, status, start_day, reminder_id, paused_on, "
    "created_at, remind_at, coalesce(remind_zone, '') FROM habits ";

Habit read_habit(const storage::Statement& st) {
  Habit h;
  h.id = st.column_int64(0);
  h.name = st.column_text(1);
  h.frequency = st.column_text(2);
  h.per_week = st.column_int64(3);
  h.target = st.column_text(4);
  h.status = st.column_text(5);
  h.start = parse_day_string(st.column_text(6)).value_or(Day{});
  h.reminder_id = st.column_opt_int64(7);
  if (!st.column_is_null(8)) h.paused_on = st.column_text(8);
  h.created_at = st.column_int64(9);
  if (!st.column_is_null(10)) h.remind_at = st.column_text(10);
  h.remind_zone = st.column_text(11);
  return h;
}

template <typename... Args>
Result<std::optional<Habit>> habit_where(Connection& conn, std::string_view where,
                                         const Args&... args) {
  auto st = conn.cached(std::string(kHabitColumns) + std::string(where));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(args...);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<Habit>();
  return std::optional<Habit>(read_habit(**st));
}

// "3" or "#3", typed where a name goes.
std::optional<int64_t> number_in(std::string_view text) {
  if (!text.empty() && text.front() == '#') text.remove_prefix(1);
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t n = 0;
  for (char c : text) {
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

// Which habit: by id, or by name (case-insensitive), or by a number typed as the name. The same
// answer for an id that is free and one that is another user's.
Result<Habit> find_habit(Connection& conn, int64_t user, std::optional<int64_t> id,
                         const std::string& name) {
  if (!name.empty()) {
    auto by_name = habit_where(conn, "WHERE user_id = ? AND name = ?", user, name);
    if (!by_name) return fail(std::move(by_name).error());
    if (*by_name) return **by_name;
    id = number_in(name);
    if (!id) {
      return fail(ErrorCode::not_found, fmt::format("habits: you have no habit named '{}'", name));
    }
  }
  if (!id)
    return fail(ErrorCode::invalid_argument, "habits: which habit? give its \"id\" or \"name\"");
  auto by_id = habit_where(conn, "WHERE id = ? AND user_id = ?", *id, user);
  if (!by_id) return fail(std::move(by_id).error());
  if (!*by_id) return fail(ErrorCode::not_found, fmt::format("habits: you have no habit #{}", *id));
  return **by_id;
}

Result<Logs> load_logs(Connection& conn, int64_t user, int64_t habit) {
  auto st = conn.cached(
      "SELECT day, done, reason, note FROM habit_logs WHERE habit_id = ? AND user_id = ? "
      "ORDER BY day");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(habit, user);
  Logs logs;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    if (auto d = parse_day_string((*st)->column_text(0))) {
      logs[*d] = Log{(*st)->column_int64(1) != 0, (*st)->column_text(2), (*st)->column_text(3)};
    }
  }
  return logs;
}

// ---- argument helpers

// Trimmed, inner runs of white space made one space.
std::string tidy(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : trim(s)) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Unexpected bad(std::string message) {
  return fail(ErrorCode::invalid_argument, "habits: " + std::move(message));
}

// A habit picked by the command text: always a name ("3" and "#3" fall back to the number).
json pick(std::string_view text) { return json{{"name", tidy(text)}}; }

// "/habits add NAME [daily|weekdays|weekly|Nx/week|N/week|Nx]"
Result<json> parse_add_command(std::string_view rest) {
  json args{{"action", "add"}};
  std::string name = tidy(rest);
  const auto space = name.rfind(' ');
  if (space != std::string::npos) {
    const std::string last = lower_ascii(std::string_view(name).substr(space + 1));
    std::optional<json> freq;
    if (last == "daily" || last == "weekdays" || last == "weekly") {
      freq = json{{"frequency", last}};
    } else {
      std::string_view n = last;
      for (std::string_view suffix : {"x/week", "/week", "x"}) {
        if (n.ends_with(suffix)) {
          n.remove_suffix(suffix.size());
          break;
        }
      }
      if (n.size() != last.size()) {
        if (auto count = number_in(n); count && n.front() != '#') {
          // The schema's range, said as the command's own usage rather than its error about
          // "arguments.per_week".
          if (*count < 1 || *count > 7) {
            return bad(fmt::format("'{}': a week has 1 to 7 days; usage: {}", last, kHabitsUsage));
          }
          freq = json{{"frequency", "weekly"}, {"per_week", *count}};
        }
      }
    }
    if (freq) {
      args.update(*freq);
      name.resize(space);
    }
  }
  if (name.empty()) return bad(fmt::format("usage: {}", kHabitsUsage));
  args["name"] = name;
  return args;
}

// The first scheduled day from today (or the start) whose hour:minute is still ahead.
std::optional<int64_t> next_reminder(const Habit& h, int hour, int minute, int64_t now,
                                     const Zone& zone) {
  const Day first = std::max(local_day(zone, now), h.start);
  for (Day d = first; d <= first + date::days{14}; d = next_day(d)) {
    if (!scheduled(h, d)) continue;
    WhenSpec spec;
    spec.kind = WhenSpec::Kind::local;
    spec.local = date::local_seconds{d} + std::chrono::hours{hour} + std::chrono::minutes{minute};
    const int64_t t = resolve_when(spec, now, zone.tz);
    if (t > now) return t;
  }
  return std::nullopt;
}

// Sets the next reminder of active habit `h` after `now` (its remind_at, in its zone), delivered
// where reminder `previous` was (its conversation and channel, its text), and points the habit
// at it. nullopt when the habit keeps no time of day or no day is scheduled in the next weeks.
// REQUIRES: inside a write job.
Result<std::optional<int64_t>> arm_next(Connection& conn, const Habit& h, int64_t previous,
                                        int64_t now) {
  if (!h.remind_at || h.status != "active") return std::optional<int64_t>();
  int hour = 0;
  int minute = 0;
  if (std::sscanf(h.remind_at->c_str(), "%d:%d", &hour, &minute) != 2) {
    return bad(
        fmt::format("habit #{} has a reminder time '{}' that is not HH:MM", h.id, *h.remind_at));
  }
  const auto due = next_reminder(h, hour, minute, now, zone_of(h.remind_zone));
  if (!due) return std::optional<int64_t>();
  auto from =
      conn.cached("SELECT user_id, conversation_id, channel, text FROM reminders WHERE id = ?");
  if (!from) return fail(std::move(from).error());
  (*from)->bind_all(previous);
  auto row = (*from)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<int64_t>();  // the reminder is gone (forgotten)
  NewPendingReminder next{(*from)->column_int64(0), (*from)->column_opt_int64(1),
                          (*from)->column_text(2),  *due,
                          (*from)->column_text(3),  now};
  (*from)->reset();
  auto made = insert_pending_reminder(conn, next, kDefaultMaxPendingReminders);
  if (!made) return fail(std::move(made).error());
  auto st = conn.cached("UPDATE habits SET reminder_id = ? WHERE id = ?");
  if (!st) return fail(std::move(st).error());
  PARLEY_TRY((*st)->bind_all(*made, h.id).run());
  return std::optional<int64_t>(*made);
}

class Habits final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "habits"; }
  [[nodiscard]] std::string_view description() const override {
    return "The user's habits: add, log done or skipped, streaks and completion.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"habit", "streak", "routine", "meditat", "workout", "exercis", "every day", "daily"};
  }
  [[nodiscard]] json parameters() const override {
    return {
        {"type", "object"},
        {"additionalProperties", false},
        {"required", {"action"}},
        {"properties",
         {{"action",
           {{"type", "string"},
            {"enum", {"add", "log", "status", "list", "pause", "resume", "archive", "remove"}}}},
          {"id", {{"type", "integer"}, {"minimum", 1}, {"description", "habit number"}}},
          {"name",
           {{"type", "string"},
            {"minLength", 1},
            {"maxLength", kMaxName},
            {"description", "habit name (add; or names the habit instead of id)"}}},
          {"frequency",
           {{"type", "string"},
            {"enum", {"daily", "weekdays", "weekly"}},
            {"description", "add; default daily"}}},
          {"per_week",
           {{"type", "integer"},
            {"minimum", 1},
            {"maximum", 7},
            {"description", "times a week (frequency weekly; default 1)"}}},
          {"target",
           {{"type", "string"}, {"maxLength", kMaxTarget}, {"description", "e.g. 20 minutes"}}},
          {"start",
           {{"type", "string"},
            {"maxLength", kMaxDayText},
            {"description", "first day (add; default today)"}}},
          {"remind_at",
           {{"type", "string"},
            {"maxLength", kMaxRemindAt},
            {"description", "local time of day to be reminded, e.g. 20:00 (add)"}}},
          {"day",
           {{"type", "string"},
            {"maxLength", kMaxDayText},
            {"description", "log: today (default), yesterday, 2026-12-06, monday"}}},
          {"done",
           {{"type", "boolean"},
            {"description", "log: true done (default), false skipped (needs reason)"}}},
          {"reason", {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxReason}}},
          {"note", {{"type", "string"}, {"maxLength", kMaxNote}}},
          {"chart",
           {{"type", "boolean"},
            {"description", "status, list: also attach a PNG calendar of the last 5 weeks"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"habits", kHabitsUsage, "your habits with streaks; /habits add read daily"},
            {"habit", kHabitUsage, "log a habit: /habit done read, /habit skip read sick"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view command,
                                           std::string_view text) const override {
    const auto [action, rest] = split_first_word(text);
    if (command == "habit") {
      if (action == "done" && !rest.empty()) return parse_done(rest);
      if (action == "skip" && !rest.empty()) return parse_skip(rest);
      return bad(fmt::format("usage: {}", kHabitUsage));
    }
    if (action.empty() || action == "status") {
      if (rest.empty()) return json{{"action", "status"}, {"chart", true}};
    } else if (action == "list") {
      if (rest.empty()) return json{{"action", "list"}};
    } else if (action == "add") {
      if (!rest.empty()) return parse_add_command(rest);
    } else if (action == "pause" || action == "resume" || action == "archive" ||
               action == "remove") {
      if (!rest.empty()) {
        json args = pick(rest);
        args["action"] = std::string(action);
        return args;
      }
    }
    return bad(fmt::format("usage: {}", kHabitsUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const Zone zone = zone_of(ctx.caller.time_zone);
    const int64_t now = clock_of(ctx).now_ms();
    const auto action = args.at("action").get<std::string>();
    const bool chart = args.value("chart", false);
    if (action == "status" || action == "list") {
      return done(status(**scope, local_day(zone, now), action == "list", chart));
    }
    if (args.contains("chart")) {
      return done(bad(fmt::format("{} does not take \"chart\" (status and list do)", action)));
    }
    if (action == "add") return add(ctx, **scope, args, zone, now, std::move(done));
    if (action == "log") return log_day(ctx, **scope, args, zone, now, std::move(done));
    return change(**scope, action, args, local_day(zone, now), now, std::move(done));
  }

 private:
  // "/habit done NAME [DAY]": the longest run of last words that reads as a day is the DAY.
  static Result<json> parse_done(std::string_view rest) {
    const std::string text = tidy(rest);
    json args{{"action", "log"}, {"done", true}};
    size_t cut = text.size();
    for (size_t words = 0; words < kMaxDaySuffixWords; ++words) {
      const auto space = text.rfind(' ', cut - 1);
      if (space == std::string::npos || space == 0) break;
      cut = space;
      const std::string_view day = std::string_view(text).substr(cut + 1);
      if (parse_day(day, 0, zone_of("UTC"), "habits")) {
        args["name"] = text.substr(0, cut);
        args["day"] = std::string(day);
        return args;
      }
    }
    args["name"] = text;
    return args;
  }

  // "/habit skip NAME REASON": NAME quoted, or before a colon, or else the first word — which
  // the call widens to the longest habit name the text begins with (see log()).
  static Result<json> parse_skip(std::string_view rest) {
    const std::string text = tidy(rest);
    std::string habit;
    std::string reason;
    if (text.front() == '"') {
      const auto close = text.find('"', 1);
      if (close != std::string::npos) {
        habit = tidy(std::string_view(text).substr(1, close - 1));
        reason = tidy(std::string_view(text).substr(close + 1));
      }
    } else if (const auto colon = text.find(':'); colon != std::string::npos) {
      habit = tidy(std::string_view(text).substr(0, colon));
      reason = tidy(std::string_view(text).substr(colon + 1));
    } else {
      const auto [first, others] = split_first_word(text);
      habit = std::string(first);
      reason = std::string(others);
    }
    if (habit.empty() || reason.empty()) {
      return bad("a skip needs the habit and a reason: /habit skip NAME REASON");
    }
    return json{{"action", "log"}, {"done", false}, {"name", habit}, {"reason", reason}};
  }

  static Result<json> status(const UserScope& scope, Day today, bool everything, bool chart) {
    std::vector<Habit> habits;
    std::map<int64_t, Logs> logs;
    {
      auto conn = scope.store().reads().acquire();
      auto st = conn->cached(std::string(kHabitColumns) +
                             "WHERE user_id = ? AND (? OR status != 'archived') "
                             "ORDER BY status != 'active', id LIMIT ?");
      if (!st) return fail(std::move(st).error());
      (*st)->bind_all(scope.user_id(), everything ? 1 : 0, kMaxHabitsShown + 1);
      for (;;) {
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        if (!*row) break;
        habits.push_back(read_habit(**st));
      }
      for (const auto& h : habits) {
        if (h.status != "active") continue;
        auto l = load_logs(*conn, scope.user_id(), h.id);
        if (!l) return fail(std::move(l).error());
        logs[h.id] = std::move(*l);
      }
    }
    const bool more = habits.size() > static_cast<size_t>(kMaxHabitsShown);
    if (more) habits.pop_back();

    json out = json::array();
    std::string active_text;
    std::string paused;
    std::string archived;
    for (const auto& h : habits) {
      if (h.status == "active") {
        auto [j, t] = habit_view(h, logs[h.id], today);
        out.push_back(std::move(j));
        active_text += "\n" + t;
        continue;
      }
      out.push_back(habit_json(h));
      std::string& names = h.status == "paused" ? paused : archived;
      names += fmt::format("{}#{} {}", names.empty() ? "" : ", ", h.id, h.name);
    }
    std::string text;
    if (habits.empty()) {
      text = "You have no active habits; add one with /habits add NAME.";
    } else {
      text = active_text.empty() ? std::string("No active habits.")
                                 : fmt::format("Your habits, the last {} days to today ({}):{}",
                                               kMarkDays, kLegend, active_text);
      if (!paused.empty()) text += "\nPaused: " + paused;
      if (!archived.empty()) text += "\nArchived: " + archived;
      if (more) text += fmt::format("\n(only the first {} are shown)", kMaxHabitsShown);
    }
    json answer{{"today", day_string(today)},
                {"habits", std::move(out)},
                {"truncated", more},
                {"text", std::move(text)}};
    if (chart) add_chart(answer, habits, logs, today);
    return answer;
  }

  // The active habits of `habits` (in their order), a cell a day for the last five weeks.
  static void add_chart(json& answer, const std::vector<Habit>& habits,
                        std::map<int64_t, Logs>& logs, Day today) {
    const Day first = today - date::days{habit_chart::kDays - 1};
    HabitChart chart;
    chart.title = fmt::format("Habits, {} – {}", human_day(first), human_day(today));
    json days = json::array();
    for (Day d = first; d <= today; d = next_day(d)) {
      days.push_back(day_string(d));
      chart.column_labels.push_back(date::weekday{d} == date::Monday ? short_day(d)
                                                                     : std::string());
    }
    json rows = json::array();
    for (const auto& h : habits) {
      if (h.status != "active") continue;
      HabitChartRow row{h.name, {}};
      json cells = json::array();
      for (Day d = first; d <= today; d = next_day(d)) {
        row.cells.push_back(cell_of(h, logs[h.id], d, today));
        cells.push_back(to_string(row.cells.back()));
      }
      rows.push_back({{"id", h.id}, {"name", h.name}, {"cells", std::move(cells)}});
      chart.rows.push_back(std::move(row));
    }
    json numbers{{"from", day_string(first)},
                 {"to", day_string(today)},
                 {"days", std::move(days)},
                 {"habits", std::move(rows)}};
    attach_chart(answer, "habits", fmt::format("habits-{}-days.png", habit_chart::kDays),
                 std::move(numbers), habit_chart_svg(chart), "no active habits");
  }

  void add(const InvokeContext& ctx, const UserScope& scope, const json& args, const Zone& zone,
           int64_t now, Done done) const {
    auto h = std::make_shared<Habit>();
    h->name = tidy(args.value("name", std::string()));
    if (h->name.empty()) return done(bad("add needs the habit's \"name\""));
    h->frequency = args.value("frequency", std::string("daily"));
    if (args.contains("per_week") && h->frequency != "weekly") {
      return done(
          bad(fmt::format("\"per_week\" goes with frequency weekly, not {}", h->frequency)));
    }
    h->per_week = h->frequency == "weekly"     ? args.value("per_week", int64_t{1})
                  : h->frequency == "weekdays" ? 5
                                               : 7;
    h->target = tidy(args.value("target", std::string()));
    h->status = "active";
    h->created_at = now;
    const Day today = local_day(zone, now);
    auto start = parse_day(args.value("start", std::string("today")), now, zone, "habits");
    if (!start) return done(fail(std::move(start).error()));
    if (*start < today - date::days{kMaxStartBack} || *start > today + date::days{kMaxAhead}) {
      return done(
          bad(fmt::format("\"start\" {} is too far from today (at most ten years back "
                          "or a year ahead)",
                          day_string(*start))));
    }
    h->start = *start;

    std::optional<NewPendingReminder> reminder;
    std::optional<std::string> remind_at;
    if (args.contains("remind_at")) {
      const auto at = args.at("remind_at").get<std::string>();
      auto spec = parse_when(at, "habits");
      if (!spec || spec->kind != WhenSpec::Kind::time_of_day) {
        return done(
            bad(fmt::format("\"remind_at\" '{}' is not a time of day; say it like 20:00 "
                            "or 8pm",
                            trim(at))));
      }
      const auto due = next_reminder(*h, spec->hour, spec->minute, now, zone);
      if (!due) return done(bad("no scheduled day for the reminder in the next weeks"));
      remind_at = fmt::format("{:02}:{:02}", spec->hour, spec->minute);
      reminder = NewPendingReminder{
          scope.user_id(),
          ctx.conversation_id > 0 ? std::optional(ctx.conversation_id) : std::nullopt,
          ctx.channel,
          *due,
          fmt::format("Habit: {}{} — log it with /habit done {}", h->name,
                      h->target.empty() ? "" : " (" + h->target + ")", h->name),
          now};
    }
    const int64_t user = scope.user_id();
    auto due_at = std::make_shared<std::optional<int64_t>>();
    if (reminder) *due_at = reminder->due_at;
    submit_write(
        scope.store(), name(), "habits add",
        [h, user, reminder, remind_at,
         zone_name = zone.name](Connection& conn) -> Result<WriteAck> {
          auto same = habit_where(conn, "WHERE user_id = ? AND name = ?", user, h->name);
          if (!same) return fail(std::move(same).error());
          if (*same) {
            return bad(fmt::format("you already have a habit named '{}' (#{}{})", (*same)->name,
                                   (*same)->id,
                                   (*same)->status == "active" ? "" : ", " + (*same)->status));
          }
          if (reminder) {
            auto made = insert_pending_reminder(conn, *reminder, kDefaultMaxPendingReminders);
            if (!made) return fail(std::move(made).error());
            h->reminder_id = *made;
          }
          auto st = conn.cached(
              "INSERT INTO habits(user_id, name, frequency, per_week, target, status, start_day, "
              "reminder_id, created_at, remind_at, remind_zone) "
              "VALUES (?,?,?,?,?,'active',?,?,?,?,?)");
          if (!st) return fail(std::move(st).error());
          const std::optional<std::string> remind_zone =
              remind_at ? std::optional(zone_name) : std::nullopt;
          PARLEY_TRY((*st)
                         ->bind_all(user, h->name, h->frequency, h->per_week, h->target,
                                    day_string(h->start), h->reminder_id, h->created_at, remind_at,
                                    remind_zone)
                         .run());
          h->id = conn.last_insert_rowid();
          return WriteAck{h->id, true};
        },
        [h, due_at, zone] {
          std::string text =
              fmt::format("Added habit {}, starting {}.", habit_title(*h), human_day(h->start));
          json j{{"habit", habit_json(*h)}};
          if (*due_at) {
            text += fmt::format(" Reminder #{} set for {} ({}).", h->reminder_id.value_or(0),
                                human_time(zone, **due_at), zone.name);
            j["reminder_due_local"] = iso_local(zone, **due_at);
          }
          j["text"] = std::move(text);
          return j;
        },
        std::move(done));
  }

  struct LogDone {
    Habit habit;
    Day day{};
    Log log;
    bool replaced = false;
    Streaks streaks;
  };

  void log_day(const InvokeContext& ctx, const UserScope& scope, const json& args, const Zone& zone,
               int64_t now, Done done) const {
    std::optional<int64_t> id;
    if (args.contains("id")) id = args.at("id").get<int64_t>();
    std::string habit = tidy(args.value("name", std::string()));
    if (!id && habit.empty()) return done(bad("log needs the habit's \"id\" or \"name\""));
    const bool is_done = args.value("done", true);
    std::string reason = tidy(args.value("reason", std::string()));
    if (!is_done && reason.empty()) {
      return done(bad("a skip (done false) needs a \"reason\""));
    }
    if (is_done && !reason.empty()) {
      return done(bad("\"reason\" is for a skip (done false); use \"note\" for a done day"));
    }
    const Day today = local_day(zone, now);
    auto day = parse_day(args.value("day", std::string("today")), now, zone, "habits");
    if (!day) return done(fail(std::move(day).error()));
    if (is_done && *day > today) {
      return done(bad(
          fmt::format("{} is in the future; only a skip can be logged ahead", day_string(*day))));
    }
    if (*day > today + date::days{kMaxAhead}) {
      return done(bad(fmt::format("{} is more than a year ahead", day_string(*day))));
    }
    if (ctx.direct && !is_done && !id) {
      auto widened = widen_name(scope, habit, reason);
      if (!widened) return done(fail(std::move(widened).error()));
    }
    auto out = std::make_shared<LogDone>();
    out->day = *day;
    out->log = Log{is_done, reason, tidy(args.value("note", std::string()))};
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "habits log",
        [out, id, habit, user, now, today](Connection& conn) -> Result<WriteAck> {
          auto h = find_habit(conn, user, id, habit);
          if (!h) return fail(std::move(h).error());
          out->habit = std::move(*h);
          if (out->habit.status == "archived") {
            return bad(fmt::format("'{}' is archived; resume it first", out->habit.name));
          }
          if (out->day < out->habit.start) {
            return bad(fmt::format("{} is before '{}' started ({})", day_string(out->day),
                                   out->habit.name, day_string(out->habit.start)));
          }
          auto before = conn.cached("SELECT 1 FROM habit_logs WHERE habit_id = ? AND day = ?");
          if (!before) return fail(std::move(before).error());
          (*before)->bind_all(out->habit.id, day_string(out->day));
          auto row = (*before)->step();
          if (!row) return fail(std::move(row).error());
          out->replaced = *row;
          auto st = conn.cached(
              "INSERT INTO habit_logs(habit_id, user_id, day, done, reason, note, at) "
              "VALUES (?,?,?,?,?,?,?) ON CONFLICT(habit_id, day) DO UPDATE SET "
              "done = excluded.done, reason = excluded.reason, note = excluded.note, "
              "at = excluded.at");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)
                         ->bind_all(out->habit.id, user, day_string(out->day),
                                    out->log.done ? 1 : 0, out->log.reason, out->log.note, now)
                         .run());
          auto logs = load_logs(conn, user, out->habit.id);
          if (!logs) return fail(std::move(logs).error());
          out->streaks = streaks_of(out->habit, *logs, today);
          return WriteAck{out->habit.id, false};
        },
        [out, today] {
          const Habit& h = out->habit;
          const std::string when = human_day(out->day) + (out->day == today ? " (today)" : "");
          std::string text;
          if (out->log.done) {
            text = fmt::format("✓ {} done on {}. Streak {} (best {}).", h.name, when,
                               streak_words(h, out->streaks.current), out->streaks.longest);
            if (h.frequency == "weekdays" && is_weekend(out->day)) {
              text += " (A weekend: it does not count towards the streak.)";
            }
          } else {
            text = fmt::format("– {} skipped on {}: {} (excused). Streak {} (best {}).", h.name,
                               when, out->log.reason, streak_words(h, out->streaks.current),
                               out->streaks.longest);
          }
          if (out->replaced) text += " (This replaces the earlier log of that day.)";
          return json{{"habit", habit_json(h)},
                      {"log",
                       {{"day", day_string(out->day)},
                        {"done", out->log.done},
                        {"reason", out->log.reason},
                        {"note", out->log.note}}},
                      {"replaced", out->replaced},
                      {"current_streak", out->streaks.current},
                      {"longest_streak", out->streaks.longest},
                      {"text", std::move(text)}};
        },
        std::move(done));
  }

  // "/habit skip read a book sick": the command took "read" as the name; when the caller has no
  // habit named so, the longest habit name the whole text begins with is the name instead (read
  // before the write: a habit renamed in between is then simply not found).
  static Status widen_name(const UserScope& scope, std::string& habit, std::string& reason) {
    std::vector<std::string> names;
    {
      auto conn = scope.store().reads().acquire();
      auto st = conn->cached("SELECT name FROM habits WHERE user_id = ?");
      if (!st) return fail(std::move(st).error());
      (*st)->bind_all(scope.user_id());
      for (;;) {
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        if (!*row) break;
        names.push_back((*st)->column_text(0));
      }
    }
    const std::string lower_habit = lower_ascii(habit);
    for (const auto& n : names) {
      if (lower_ascii(n) == lower_habit) return {};
    }
    const std::string whole = habit + " " + reason;
    const std::string lower_whole = lower_ascii(whole);
    size_t best = 0;
    for (const auto& n : names) {
      const std::string prefix = lower_ascii(n) + " ";
      if (prefix.size() > best && prefix.size() < lower_whole.size() &&
          lower_whole.starts_with(prefix)) {
        best = prefix.size();
      }
    }
    if (best > 0) {
      habit = whole.substr(0, best - 1);
      reason = tidy(std::string_view(whole).substr(best));
    }
    return {};
  }

  struct Changed {
    Habit habit;
    bool already = false;
    int64_t excused = 0;       // resume: the days of the pause written as skips
    int64_t logs_removed = 0;  // remove
    bool reminder_cancelled = false;
    bool reminder_rearmed = false;  // resume: the next reminder is set
  };

  void change(const UserScope& scope, const std::string& action, const json& args, Day today,
              int64_t now, Done done) const {
    std::optional<int64_t> id;
    if (args.contains("id")) id = args.at("id").get<int64_t>();
    const std::string habit = tidy(args.value("name", std::string()));
    if (!id && habit.empty()) {
      return done(bad(fmt::format("{} needs the habit's \"id\" or \"name\"", action)));
    }
    auto out = std::make_shared<Changed>();
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "habits " + action,
        [out, action, id, habit, user, today, now](Connection& conn) -> Result<WriteAck> {
          auto h = find_habit(conn, user, id, habit);
          if (!h) return fail(std::move(h).error());
          out->habit = std::move(*h);
          Habit& hb = out->habit;
          if (action == "remove") return remove(conn, user, *out);
          if (action == "pause" || action == "archive") {
            const std::string to = action == "pause" ? "paused" : "archived";
            if (hb.status == to) {
              out->already = true;
              return WriteAck{hb.id, false};
            }
            if (to == "paused" && hb.status == "archived") {
              return bad(fmt::format("'{}' is archived; resume it first", hb.name));
            }
            if (!hb.paused_on) hb.paused_on = day_string(today);
            if (hb.reminder_id) {  // resume sets the next one
              auto cancelled = cancel_pending_reminder(conn, user, *hb.reminder_id);
              if (!cancelled) return fail(std::move(cancelled).error());
              out->reminder_cancelled = *cancelled;
            }
            auto st = conn.cached(
                "UPDATE habits SET status = ?, paused_on = ? WHERE id = ? AND user_id = ?");
            if (!st) return fail(std::move(st).error());
            PARLEY_TRY((*st)->bind_all(to, hb.paused_on, hb.id, user).run());
            hb.status = to;
            return WriteAck{hb.id, false};
          }
          // resume
          if (hb.status == "active") {
            out->already = true;
            return WriteAck{hb.id, false};
          }
          const Day from = std::max(
              parse_day_string(hb.paused_on.value_or(std::string())).value_or(today), hb.start);
          auto logs = load_logs(conn, user, hb.id);
          if (!logs) return fail(std::move(logs).error());
          auto skip = conn.cached(
              "INSERT INTO habit_logs(habit_id, user_id, day, done, reason, at) "
              "VALUES (?,?,?,0,'paused',?)");
          if (!skip) return fail(std::move(skip).error());
          for (Day d = from; d < today; d = next_day(d)) {
            if (!scheduled(hb, d) || logs->contains(d)) continue;
            PARLEY_TRY((*skip)->bind_all(hb.id, user, day_string(d), now).run());
            ++out->excused;
          }
          auto st = conn.cached(
              "UPDATE habits SET status = 'active', paused_on = NULL WHERE id = ? AND user_id = ?");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)->bind_all(hb.id, user).run());
          hb.status = "active";
          hb.paused_on.reset();
          if (hb.reminder_id) {
            auto next = arm_next(conn, hb, *hb.reminder_id, now);
            if (!next) return fail(std::move(next).error());
            if (*next) {
              hb.reminder_id = *next;
              out->reminder_rearmed = true;
            }
          }
          return WriteAck{hb.id, false};
        },
        [out, action] {
          const Habit& h = out->habit;
          std::string text;
          if (action == "remove") {
            text = fmt::format("Removed habit #{} {} and its {} log{}.", h.id, h.name,
                               out->logs_removed, out->logs_removed == 1 ? "" : "s");
          } else if (out->already) {
            text = fmt::format("#{} {} is already {}.", h.id, h.name, h.status);
          } else if (action == "pause") {
            text = fmt::format(
                "Paused #{} {}; the days until you resume it will not break its "
                "streak.",
                h.id, h.name);
          } else if (action == "archive") {
            text = fmt::format("Archived #{} {}.", h.id, h.name);
          } else {
            text = fmt::format("Resumed #{} {}", h.id, h.name);
            text += out->excused > 0 ? fmt::format("; {} paused day{} excused.", out->excused,
                                                   out->excused == 1 ? "" : "s")
                                     : ".";
          }
          if (out->reminder_cancelled) {
            text += action == "pause" ? " Its reminder waits until you resume it."
                                      : " Its reminder is cancelled.";
          }
          if (out->reminder_rearmed) {
            text += fmt::format(" Its reminder is set again (#{}).", h.reminder_id.value_or(0));
          }
          json j{{"habit", habit_json(h)}, {"text", std::move(text)}};
          if (action == "resume") j["excused_days"] = out->excused;
          if (action == "remove") j["logs_removed"] = out->logs_removed;
          return j;
        },
        std::move(done));
  }

  static Result<WriteAck> remove(Connection& conn, int64_t user, Changed& out) {
    if (out.habit.reminder_id) {
      auto cancelled = cancel_pending_reminder(conn, user, *out.habit.reminder_id);
      if (!cancelled) return fail(std::move(cancelled).error());
      out.reminder_cancelled = *cancelled;
    }
    auto count = conn.cached("SELECT count(*) FROM habit_logs WHERE habit_id = ? AND user_id = ?");
    if (!count) return fail(std::move(count).error());
    (*count)->bind_all(out.habit.id, user);
    auto row = (*count)->step();
    if (!row) return fail(std::move(row).error());
    out.logs_removed = (*count)->column_int64(0);
    auto st = conn.cached("DELETE FROM habits WHERE id = ? AND user_id = ?");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)->bind_all(out.habit.id, user).run());
    return WriteAck{out.habit.id, false};
  }
};

}  // namespace habits_detail
}  // namespace

std::unique_ptr<Capability> make_habits() { return std::make_unique<habits_detail::Habits>(); }

}  // namespace parley::capabilities::builtins

namespace parley::capabilities {

Result<std::optional<int64_t>> rearm_habit_reminder(storage::Connection& conn, int64_t fired_id,
                                                    int64_t now_ms) {
  using builtins::habits_detail::arm_next;
  using builtins::habits_detail::habit_where;
  auto h = habit_where(conn, "WHERE reminder_id = ? AND status = 'active'", fired_id);
  if (!h) return fail(std::move(h).error());
  if (!*h) return std::optional<int64_t>();
  return arm_next(conn, **h, fired_id, now_ms);
}

}  // namespace parley::capabilities
