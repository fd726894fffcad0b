// mood: the caller's mood logs (table mood_logs, migration 0011), several a day: log one (mood
// 1–10, optional energy, stress and anxiety 1–10, tags, what brought it on, what the caller was
// doing, and when), a day's logs and averages, the week (seven days: one line a day, a
// sparkline, the averages and the change against the week before), the month (30 days), and
// remove a log.
//
// Every statement is scoped by the UserScope's user id: another user's log number is answered
// exactly like one that does not exist. Days are the caller's calendar days ('YYYY-MM-DD' of
// Caller::time_zone when logged): a period is a run of such days, each day's values are
// averaged first and the period's averages are the means of the days' (each day counts once,
// however many logs it has and however long DST makes it). The JSON answers carry every
// number the text shows (per-day averages and counts); asked for a chart ("chart": true, which
// /mood month sets), the week or month also comes as a PNG of those same figures (chart.h).
// Writes go through the store's write queue and answer once committed; reads use the read
// pool.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <initializer_list>
#include <optional>
#include <vector>

#include "builtins/builtins_internal.h"
#include "builtins/chart.h"
#include "builtins/trend.h"
#include "builtins/when.h"

namespace parley::capabilities::builtins {
namespace {
namespace mood_detail {

using nlohmann::json;
using storage::Connection;
using storage::WriteAck;

constexpr size_t kMaxTag = 32;
constexpr size_t kMaxTags = 20;
constexpr size_t kMaxNote = 300;
constexpr size_t kMaxWhen = 100;
constexpr int64_t kMaxDayLogs = 100;

constexpr const char* kMoodUsage =
    "/mood N [what brought it on] | /mood log N [...] | /mood today | /mood week | "
    "/mood month | /mood remove ID";

// The scores a log has besides mood, in the order answers show them.
constexpr std::array<const char*, 3> kOtherScores{"energy", "stress", "anxiety"};

struct Log {
  int64_t id = 0;
  std::string day;
  int64_t at = 0;
  int64_t mood = 0;
  std::array<std::optional<int64_t>, 3> other;  // kOtherScores
  std::string tags = "[]";
  std::string cause;
  std::string activity;
  int64_t created_at = 0;
};

constexpr const char* kLogColumns =
    "id, day, at, mood, energy, stress, anxiety, tags, cause, activity, created_at";

Log read_log(const storage::Statement& st) {
  Log l;
  l.id = st.column_int64(0);
  l.day = st.column_text(1);
  l.at = st.column_int64(2);
  l.mood = st.column_int64(3);
  for (size_t i = 0; i < l.other.size(); ++i) {
    l.other[i] = st.column_opt_int64(static_cast<int>(4 + i));
  }
  l.tags = st.column_text(7);
  l.cause = st.column_text(8);
  l.activity = st.column_text(9);
  l.created_at = st.column_int64(10);
  return l;
}

template <typename T>
json or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json to_json(const Log& l, const Zone& zone) {
  json tags = json::parse(l.tags, nullptr, false);
  json out{{"id", l.id},          {"day", l.day},
           {"at", iso_utc(l.at)}, {"at_local", iso_local(zone, l.at)},
           {"mood", l.mood},      {"tags", tags.is_array() ? tags : json::array()},
           {"trigger", l.cause},  {"activity", l.activity}};
  for (size_t i = 0; i < kOtherScores.size(); ++i) out[kOtherScores[i]] = or_null(l.other[i]);
  return out;
}

// "mood 7, energy 4 — after a long meeting (working) #work"
std::string describe(const Log& l) {
  std::string out = fmt::format("mood {}", l.mood);
  for (size_t i = 0; i < kOtherScores.size(); ++i) {
    if (l.other[i]) out += fmt::format(", {} {}", kOtherScores[i], *l.other[i]);
  }
  if (!l.cause.empty()) out += " — " + l.cause;
  if (!l.activity.empty()) out += fmt::format(" ({})", l.activity);
  const json tags = json::parse(l.tags, nullptr, false);
  if (tags.is_array()) {
    for (const auto& t : tags) {
      if (t.is_string()) out += " #" + t.get<std::string>();
    }
  }
  return out;
}

Unexpected bad(std::string message) {
  return fail(ErrorCode::invalid_argument, "mood: " + std::move(message));
}

Unexpected no_such_log(int64_t id) {
  // The same answer whether the id is free or another user's.
  return fail(ErrorCode::not_found, fmt::format("mood: you have no mood log #{}", id));
}

// One day's logs, summed per score: the day's average is sum / n of each.
struct DayTotals {
  int64_t logs = 0;
  std::array<double, 4> sum{};  // mood, energy, stress, anxiety
  std::array<int64_t, 4> n{};
  [[nodiscard]] std::optional<double> average(size_t score) const {
    if (n[score] == 0) return std::nullopt;
    return sum[score] / static_cast<double>(n[score]);
  }
};

constexpr std::array<const char*, 4> kScores{"mood", "energy", "stress", "anxiety"};

// The days [first, first + count) of the caller's logs.
Result<std::vector<DayTotals>> day_totals(const UserScope& scope, date::local_days first,
                                          int count) {
  std::vector<DayTotals> days(static_cast<size_t>(count));
  const date::local_days last = first + date::days{count - 1};
  auto conn = scope.store().reads().acquire();
  auto st = conn->cached(
      "SELECT day, mood, energy, stress, anxiety FROM mood_logs WHERE user_id = ? "
      "AND day BETWEEN ? AND ?");  // days compare as 'YYYY-MM-DD' strings
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(scope.user_id(), day_string(first), day_string(last));
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    const auto day = parse_day_string((*st)->column_text(0));
    if (!day || *day < first || *day > last) continue;
    DayTotals& d = days[static_cast<size_t>((*day - first).count())];
    ++d.logs;
    for (size_t i = 0; i < kScores.size(); ++i) {
      if (auto v = (*st)->column_opt_int64(static_cast<int>(1 + i))) {
        d.sum[i] += static_cast<double>(*v);
        ++d.n[i];
      }
    }
  }
  return days;
}

// The means over days of each score's daily averages.
struct Summary {
  std::array<std::optional<double>, 4> average;
  int64_t days_logged = 0;
  int64_t logs = 0;
};

Summary summarise(const std::vector<DayTotals>& days, size_t from, size_t to) {
  Summary s;
  for (size_t score = 0; score < kScores.size(); ++score) {
    std::vector<std::optional<double>> daily;
    for (size_t i = from; i < to; ++i) daily.push_back(days[i].average(score));
    s.average[score] = mean_of(daily);
  }
  for (size_t i = from; i < to; ++i) {
    s.logs += days[i].logs;
    if (days[i].logs > 0) ++s.days_logged;
  }
  return s;
}

json averages_json(const Summary& s) {
  json out = json::object();
  for (size_t i = 0; i < kScores.size(); ++i) out[kScores[i]] = or_null(s.average[i]);
  return out;
}

// "mood 6.2, energy 5.0, stress 3.5" (the scores present).
std::string averages_text(const Summary& s) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < kScores.size(); ++i) {
    if (s.average[i]) parts.push_back(fmt::format("{} {:.1f}", kScores[i], *s.average[i]));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

class Mood final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "mood"; }
  [[nodiscard]] std::string_view description() const override {
    return "The user's mood log (mood, energy, stress, anxiety 1-10, several a day): log one; "
           "a day's, the week's or the month's averages and trend.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"feeling down", "feeling low", "stressed", "anxious",
            "anxiety",      "burned out",  "burnt out"};
  }
  [[nodiscard]] json parameters() const override {
    const json score = {{"type", "integer"}, {"minimum", 1}, {"maximum", 10}};
    return {
        {"type", "object"},
        {"additionalProperties", false},
        {"required", {"action"}},
        {"properties",
         {{"action", {{"type", "string"}, {"enum", {"log", "today", "week", "month", "remove"}}}},
          {"mood",
           {{"type", "integer"},
            {"minimum", 1},
            {"maximum", 10},
            {"description", "1 awful … 10 great (log)"}}},
          {"energy", score},
          {"stress", score},
          {"anxiety", score},
          {"tags",
           {{"type", "array"},
            {"maxItems", kMaxTags},
            {"items", {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxTag}}}}},
          {"trigger",
           {{"type", "string"}, {"maxLength", kMaxNote}, {"description", "what brought it on"}}},
          {"activity", {{"type", "string"}, {"maxLength", kMaxNote}}},
          {"when",
           {{"type", "string"},
            {"maxLength", kMaxWhen},
            {"description", "log: a past day or time in the user's zone (default now)"}}},
          {"day",
           {{"type", "string"},
            {"maxLength", kMaxWhen},
            {"description", "today: another day (yesterday, 2026-11-20)"}}},
          {"id", {{"type", "integer"}, {"minimum", 1}, {"description", "remove"}}},
          {"chart",
           {{"type", "boolean"},
            {"description", "week, month: also attach a PNG chart of the daily moods"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"mood", kMoodUsage, "your mood, e.g. /mood 7 after a good run, or /mood week"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view /*command*/,
                                           std::string_view text) const override {
    const auto [action, rest] = split_first_word(text);
    if (action.empty()) return json{{"action", "today"}};
    if (action == "today" || action == "week" || action == "month") {
      // The month's 30 points read better as a picture than as a sparkline.
      if (rest.empty() && action == "month") return json{{"action", "month"}, {"chart", true}};
      if (rest.empty()) return json{{"action", std::string(action)}};
    } else if (action == "remove" || action == "delete") {
      if (!rest.empty()) {
        auto id = parse_id(rest, "mood");
        if (!id) return fail(std::move(id).error());
        return json{{"action", "remove"}, {"id", *id}};
      }
    } else if (action == "log") {
      if (!rest.empty()) return log_command(rest);
    } else if (std::isdigit(static_cast<unsigned char>(action.front())) != 0) {
      return log_command(text);
    }
    return fail(ErrorCode::invalid_argument, fmt::format("mood: usage: {}", kMoodUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const auto action = args.at("action").get<std::string>();
    const Zone zone = zone_of(ctx.caller.time_zone);
    const int64_t now = clock_of(ctx).now_ms();
    const auto check = [&](std::initializer_list<std::string_view> fields) {
      return takes_only(args, action, fields, "mood");
    };
    if (action == "log") {
      if (auto st =
              check({"mood", "energy", "stress", "anxiety", "tags", "trigger", "activity", "when"});
          !st.ok()) {
        return done(fail(std::move(st).error()));
      }
      auto log = log_from(args, now, zone);
      if (!log) return done(fail(std::move(log).error()));
      return add(**scope, std::move(*log), zone, std::move(done));
    }
    if (action == "today") {
      if (auto st = check({"day"}); !st.ok()) return done(fail(std::move(st).error()));
      return done(one_day(**scope, args.value("day", std::string()), now, zone));
    }
    if (action == "week" || action == "month") {
      if (auto st = check({"chart"}); !st.ok()) return done(fail(std::move(st).error()));
      const int n = action == "week" ? 7 : 30;
      auto answer = period(**scope, n, now, zone);
      if (answer && args.value("chart", false)) add_chart(*answer, n);
      return done(std::move(answer));
    }
    if (auto st = check({"id"}); !st.ok()) return done(fail(std::move(st).error()));
    if (!args.contains("id")) return done(bad("remove needs the log's \"id\""));
    return remove(**scope, args.at("id").get<int64_t>(), zone, std::move(done));
  }

 private:
  // "7 tired after a long meeting", "7/10 …": the number is the mood, the words after it what
  // brought it on.
  static Result<json> log_command(std::string_view text) {
    auto [first, rest] = split_first_word(text);
    std::string_view digits = first;
    if (digits.ends_with("/10")) digits.remove_suffix(3);
    int64_t mood = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), mood);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) {
      return bad(
          fmt::format("'{}' is not a mood; give a whole number from 1 to 10, e.g. "
                      "/mood 7 after a good run",
                      first));
    }
    if (mood < 1 || mood > 10) {
      return bad(fmt::format("{} is not a mood from 1 to 10", mood));
    }
    json args{{"action", "log"}, {"mood", mood}};
    if (!rest.empty()) args["trigger"] = std::string(utf8_prefix(rest, kMaxNote));
    return args;
  }

  static Result<Log> log_from(const json& args, int64_t now, const Zone& zone) {
    if (!args.contains("mood")) {
      return bad("log needs \"mood\", a whole number from 1 (awful) to 10 (great)");
    }
    Log l;
    l.mood = args.at("mood").get<int64_t>();
    for (size_t i = 0; i < kOtherScores.size(); ++i) {
      if (args.contains(kOtherScores[i])) l.other[i] = args.at(kOtherScores[i]).get<int64_t>();
    }
    if (args.contains("tags")) {
      auto tags = read_tags(args.at("tags"), "mood");
      if (!tags) return fail(std::move(tags).error());
      l.tags = json(*tags).dump();
    }
    l.cause = std::string(trim(args.value("trigger", std::string())));
    l.activity = std::string(trim(args.value("activity", std::string())));
    auto moment = read_moment(args.value("when", std::string()), now, zone, "mood");
    if (!moment) return fail(std::move(moment).error());
    l.at = moment->at;
    l.day = day_string(moment->day);
    l.created_at = now;
    return l;
  }

  void add(const UserScope& scope, Log log, const Zone& zone, Done done) const {
    auto rec = std::make_shared<Log>(std::move(log));
    auto that_day = std::make_shared<std::pair<double, int64_t>>();  // the day's average, logs
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "mood log",
        [rec, that_day, user](Connection& conn) -> Result<WriteAck> {
          auto st = conn.cached(
              "INSERT INTO mood_logs(user_id, day, at, mood, energy, stress, anxiety, tags, "
              "cause, activity, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)
                         ->bind_all(user, rec->day, rec->at, rec->mood, rec->other[0],
                                    rec->other[1], rec->other[2], rec->tags, rec->cause,
                                    rec->activity, rec->created_at)
                         .run());
          rec->id = conn.last_insert_rowid();
          auto avg = conn.cached(
              "SELECT avg(mood), count(*) FROM mood_logs WHERE user_id = ? AND day = ?");
          if (!avg) return fail(std::move(avg).error());
          (*avg)->bind_all(user, rec->day);
          auto row = (*avg)->step();
          if (!row) return fail(std::move(row).error());
          if (*row) *that_day = {(*avg)->column_double(0), (*avg)->column_int64(1)};
          return WriteAck{rec->id, true};
        },
        [rec, that_day, zone] {
          const auto day = parse_day_string(rec->day);
          const std::string label = day ? human_day(*day) : rec->day;
          std::string text = fmt::format("Logged #{} for {}: {}.", rec->id,
                                         human_time(zone, rec->at), describe(*rec));
          if (that_day->second > 1) {
            text += fmt::format(" {}: mood {:.1f} on average over {} logs.", label, that_day->first,
                                that_day->second);
          }
          return json{
              {"log", to_json(*rec, zone)},
              {"day", {{"day", rec->day}, {"mood", that_day->first}, {"logs", that_day->second}}},
              {"text", std::move(text)}};
        },
        std::move(done));
  }

  // One day's logs (today unless `day_text` names another) and their averages.
  static Result<json> one_day(const UserScope& scope, std::string_view day_text, int64_t now,
                              const Zone& zone) {
    auto day = parse_day(day_text, now, zone, "mood");
    if (!day) return fail(std::move(day).error());
    const bool today = *day == local_day(zone, now);
    std::vector<Log> logs;
    {
      auto conn = scope.store().reads().acquire();
      auto st =
          conn->cached(fmt::format("SELECT {} FROM mood_logs WHERE user_id = ? AND day = ? "
                                   "ORDER BY at, id LIMIT ?",
                                   kLogColumns));
      if (!st) return fail(std::move(st).error());
      (*st)->bind_all(scope.user_id(), day_string(*day), kMaxDayLogs);
      for (;;) {
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        if (!*row) break;
        logs.push_back(read_log(**st));
      }
    }
    DayTotals totals;
    json out = json::array();
    std::string lines;
    for (const auto& l : logs) {
      ++totals.logs;
      const std::array<std::optional<int64_t>, 4> scores{l.mood, l.other[0], l.other[1],
                                                         l.other[2]};
      for (size_t i = 0; i < scores.size(); ++i) {
        if (scores[i]) {
          totals.sum[i] += static_cast<double>(*scores[i]);
          ++totals.n[i];
        }
      }
      out.push_back(to_json(l, zone));
      lines += fmt::format("\n#{} {} {}", l.id, iso_local(zone, l.at).substr(11, 5), describe(l));
    }
    const std::string when = today ? "today" : "on " + human_day(*day);
    Summary s;
    for (size_t i = 0; i < kScores.size(); ++i) s.average[i] = totals.average(i);
    s.logs = totals.logs;
    s.days_logged = totals.logs > 0 ? 1 : 0;
    std::string text;
    if (logs.empty()) {
      text = fmt::format("No mood logged {}.", when);
    } else {
      text = fmt::format("Your mood {} ({}):{}\nAverage: {} ({} {})", when, zone.name, lines,
                         averages_text(s), totals.logs, totals.logs == 1 ? "log" : "logs");
    }
    return json{{"day", day_string(*day)},     {"zone", zone.name},
                {"logs", std::move(out)},      {"count", totals.logs},
                {"average", averages_json(s)}, {"text", std::move(text)}};
  }

  // The last `n` days (today included) and the `n` before them.
  static Result<json> period(const UserScope& scope, int n, int64_t now, const Zone& zone) {
    const date::local_days last = local_day(zone, now);
    const date::local_days first = last - date::days{n - 1};
    const date::local_days before = first - date::days{n};
    auto totals = day_totals(scope, before, 2 * n);
    if (!totals) return fail(std::move(totals).error());
    const auto size = static_cast<size_t>(n);
    const Summary previous = summarise(*totals, 0, size);
    const Summary current = summarise(*totals, size, 2 * size);

    std::vector<std::optional<double>> daily;
    json days = json::array();
    std::string lines;
    for (size_t i = 0; i < size; ++i) {
      const DayTotals& d = (*totals)[size + i];
      const date::local_days day = first + date::days{static_cast<int>(i)};
      daily.push_back(d.average(0));
      json entry{{"day", day_string(day)}, {"logs", d.logs}};
      for (size_t score = 0; score < kScores.size(); ++score) {
        entry[kScores[score]] = or_null(d.average(score));
      }
      days.push_back(std::move(entry));
      if (n > 7) continue;  // a month is the sparkline and the averages
      if (d.logs == 0) {
        lines += fmt::format("\n{} · no log", human_day(day));
        continue;
      }
      std::string line = fmt::format("\n{} {} {:.1f}", human_day(day),
                                     sparkline({daily.back()}, 1, 10), *daily.back());
      for (size_t score = 1; score < 3; ++score) {  // energy and stress, when present
        if (auto v = d.average(score)) line += fmt::format(", {} {:.1f}", kScores[score], *v);
      }
      lines += line + fmt::format(" ({} {})", d.logs, d.logs == 1 ? "log" : "logs");
    }
    const std::string spark = sparkline(daily, 1, 10);
    const std::string what = n == 7 ? "week" : fmt::format("{} days", n);
    std::optional<double> change;
    if (current.average[0] && previous.average[0]) {
      change = *current.average[0] - *previous.average[0];
    }

    std::string text =
        fmt::format("Your mood, {} – {} ({}):", human_day(first), human_day(last), zone.name);
    if (current.logs == 0) {
      text += fmt::format("\nNo mood logged in the last {}.", what);
    } else {
      text += lines;
      text += fmt::format("\n{} {}", spark, averages_text(current));
      text += fmt::format(" (logged on {} of {} days, {} {})", current.days_logged, n, current.logs,
                          current.logs == 1 ? "log" : "logs");
      if (change) {
        text += fmt::format("\nMood {:+.1f} against the {} before ({:.1f})", *change,
                            n == 7 ? "week" : "30 days", *previous.average[0]);
      } else {
        text += fmt::format("\nNothing logged the {} before to compare with.",
                            n == 7 ? "week" : "30 days");
      }
    }
    return json{{"period", n == 7 ? "week" : "month"},
                {"from", day_string(first)},
                {"to", day_string(last)},
                {"zone", zone.name},
                {"days", std::move(days)},
                {"average", averages_json(current)},
                {"days_logged", current.days_logged},
                {"logs", current.logs},
                {"sparkline", spark},
                {"previous",
                 {{"from", day_string(before)},
                  {"to", day_string(first - date::days{1})},
                  {"average", averages_json(previous)},
                  {"days_logged", previous.days_logged},
                  {"logs", previous.logs}}},
                {"change", {{"mood", or_null(change)}}},
                {"text", std::move(text)}};
  }

  // The period's daily averages as a picture: exactly the numbers of `answer`'s "days".
  static void add_chart(json& answer, int n) {
    MoodChart chart;
    json numbers{{"from", answer.at("from")},
                 {"to", answer.at("to")},
                 {"scale", {{"min", mood_chart::kMoodBottom}, {"max", mood_chart::kMoodTop}}},
                 {"days", json::array()}};
    for (const auto& d : answer.at("days")) {
      const auto day_text = d.at("day").get<std::string>();
      const auto day = parse_day_string(day_text);
      const json& mood = d.at("mood");
      chart.days.push_back({day ? short_day(*day) : day_text,
                            mood.is_number() ? std::optional(mood.get<double>()) : std::nullopt});
      numbers["days"].push_back({{"day", day_text}, {"mood", mood}, {"logs", d.at("logs")}});
    }
    const auto from = parse_day_string(answer.at("from").get<std::string>());
    const auto to = parse_day_string(answer.at("to").get<std::string>());
    chart.title = from && to ? fmt::format("Mood, {} – {} ({})", human_day(*from), human_day(*to),
                                           answer.at("zone").get<std::string>())
                             : std::string("Mood");
    attach_chart(answer, "mood", fmt::format("mood-{}-days.png", n), std::move(numbers),
                 mood_chart_svg(chart), fmt::format("no mood logged in the last {} days", n));
  }

  void remove(const UserScope& scope, int64_t id, const Zone& zone, Done done) const {
    auto rec = std::make_shared<Log>();
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "mood remove",
        [rec, id, user](Connection& conn) -> Result<WriteAck> {
          auto st = conn.cached(fmt::format(
              "DELETE FROM mood_logs WHERE id = ? AND user_id = ? RETURNING {}", kLogColumns));
          if (!st) return fail(std::move(st).error());
          (*st)->bind_all(id, user);
          auto row = (*st)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) return no_such_log(id);
          *rec = read_log(**st);
          return WriteAck{id, false};
        },
        [rec, zone] {
          return json{{"log", to_json(*rec, zone)},
                      {"text", fmt::format("Removed mood log #{} ({}: {}).", rec->id,
                                           human_time(zone, rec->at), describe(*rec))}};
        },
        std::move(done));
  }
};

}  // namespace mood_detail
}  // namespace

std::unique_ptr<Capability> make_mood() { return std::make_unique<mood_detail::Mood>(); }

}  // namespace parley::capabilities::builtins
