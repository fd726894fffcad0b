// goals: the caller's goals (tables goals and goal_milestones, migration 0011) — a tree through
// parent_id, each with a status, a priority (1 highest … 5), a target day, progress 0–100 and
// milestones. Every statement is scoped by the UserScope's user id: another user's goal or
// milestone number is answered exactly like one that does not exist, and a parent must be one of
// the caller's own goals that is not the goal itself or below it (no cycles). Writes go through
// the store's write queue and answer once committed; reads use the read pool.
//
// Marking a goal done sets its progress to 100 and closed_at; abandoning it sets closed_at;
// reopening clears it. When every milestone of a goal is done the answer suggests marking the
// goal done — it never does so itself. Removing a goal removes its milestones; its sub-goals
// stay, without a parent (the schema's ON DELETE SET NULL). Days are the caller's calendar days
// (builtins/when.h), so "days left" counts days of the caller's zone.
#include <date/date.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "builtins/builtins_internal.h"
#include "builtins/when.h"

namespace parley::capabilities::builtins {
namespace {
namespace goals_detail {

using nlohmann::json;
using storage::Connection;
using storage::WriteAck;
using Day = date::local_days;

constexpr size_t kMaxTitle = 200;
constexpr size_t kMaxDescription = 2000;
constexpr size_t kMaxDayText = 40;
constexpr int64_t kMaxGoalsListed = 100;
constexpr int64_t kMaxMilestonesShown = 50;
constexpr int kMaxDepth = 64;  // walks up a parent chain; the tree is acyclic, this is a guard
constexpr int kBarCells = 10;

constexpr const char* kGoalsUsage =
    "/goals | /goals ID | /goals add TITLE | /goals progress ID PERCENT | /goals done ID | "
    "/goals milestone ID TITLE | /goals milestone done MILESTONE-ID | /goals remove ID";
constexpr const char* kTargetForms = "2026-12-31, tomorrow, in 3 weeks, or none";

struct Goal {
  int64_t id = 0;
  std::optional<int64_t> parent_id;
  std::string title;
  std::string description;
  std::string status;
  int64_t priority = 3;
  std::optional<std::string> target_day;
  int64_t progress = 0;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::optional<int64_t> closed_at;
  int64_t milestones_done = 0;
  int64_t milestones_total = 0;
};

struct Milestone {
  int64_t id = 0;
  int64_t goal_id = 0;
  std::string title;
  std::optional<std::string> target_day;
  std::optional<int64_t> done_at;
  int64_t created_at = 0;
};

Unexpected bad(std::string message) {
  return fail(ErrorCode::invalid_argument, "goals: " + std::move(message));
}

Unexpected no_such_goal(int64_t id) {
  // The same answer whether the id is free or another user's: nothing about others leaks.
  return fail(ErrorCode::not_found, fmt::format("goals: you have no goal #{}", id));
}

Unexpected no_such_milestone(int64_t id) {
  return fail(ErrorCode::not_found, fmt::format("goals: you have no milestone #{}", id));
}

bool is_open(const Goal& g) { return g.status == "active" || g.status == "paused"; }

// Days from `today` to the target (negative: overdue), for open goals with a target.
std::optional<int64_t> days_left(const Goal& g, Day today) {
  if (!g.target_day || !is_open(g)) return std::nullopt;
  const auto target = parse_day_string(*g.target_day);
  if (!target) return std::nullopt;
  return static_cast<int64_t>((*target - today).count());
}

std::string progress_bar(int64_t progress) {
  const int64_t filled = std::clamp<int64_t>(progress, 0, 100) * kBarCells / 100;
  std::string bar;
  for (int64_t i = 0; i < kBarCells; ++i) bar += i < filled ? "▓" : "░";
  return fmt::format("{} {}%", bar, progress);
}

std::string when_due(const Goal& g, Day today) {
  const auto left = days_left(g, today);
  if (!left) return {};
  const std::string day = human_day(*parse_day_string(*g.target_day));
  if (*left == 0) return fmt::format("due today ({})", day);
  if (*left > 0) return fmt::format("{} day{} left ({})", *left, *left == 1 ? "" : "s", day);
  return fmt::format("{} day{} overdue ({})", -*left, *left == -1 ? "" : "s", day);
}

json goal_json(const Goal& g, Day today) {
  const auto left = days_left(g, today);
  return {{"id", g.id},
          {"parent_id", g.parent_id ? json(*g.parent_id) : json(nullptr)},
          {"title", g.title},
          {"description", g.description},
          {"status", g.status},
          {"priority", g.priority},
          {"target_day", g.target_day ? json(*g.target_day) : json(nullptr)},
          {"days_left", left ? json(*left) : json(nullptr)},
          {"progress", g.progress},
          {"milestones", {{"done", g.milestones_done}, {"total", g.milestones_total}}},
          {"created_at", iso_utc(g.created_at)},
          {"updated_at", iso_utc(g.updated_at)},
          {"closed_at", g.closed_at ? json(iso_utc(*g.closed_at)) : json(nullptr)}};
}

json milestone_json(const Milestone& m) {
  return {{"id", m.id},
          {"goal_id", m.goal_id},
          {"title", m.title},
          {"target_day", m.target_day ? json(*m.target_day) : json(nullptr)},
          {"done", m.done_at.has_value()},
          {"done_at", m.done_at ? json(iso_utc(*m.done_at)) : json(nullptr)}};
}

// "#3 Learn Spanish [P1] ▓▓▓░░░░░░░ 30% · 12 days left (Fri 4 Dec) · milestones 1/3"
std::string goal_line(const Goal& g, Day today) {
  std::string line =
      fmt::format("#{} {} [P{}{}] {}", g.id, g.title, g.priority,
                  g.status == "active" ? "" : ", " + g.status, progress_bar(g.progress));
  if (const auto due = when_due(g, today); !due.empty()) line += " · " + due;
  if (g.milestones_total > 0) {
    line += fmt::format(" · milestones {}/{}", g.milestones_done, g.milestones_total);
  }
  return line;
}

std::string done_hint(const Goal& g) {
  if (g.status == "done") return {};
  if (g.milestones_total > 0 && g.milestones_done == g.milestones_total) {
    return fmt::format(" All {} milestones of #{} are done — mark the goal done? /goals done {}",
                       g.milestones_total, g.id, g.id);
  }
  if (g.progress == 100) {
    return fmt::format(" #{} is at 100% — mark it done? /goals done {}", g.id, g.id);
  }
  return {};
}

// ---- storage

constexpr const char* kGoalSelect =
    "SELECT g.id, g.parent_id, g.title, g.description, g.status, g.priority, g.target_day, "
    "g.progress, g.created_at, g.updated_at, g.closed_at, "
    "(SELECT count(*) FROM goal_milestones m WHERE m.goal_id = g.id AND m.user_id = g.user_id "
    "AND m.done_at IS NOT NULL), "
    "(SELECT count(*) FROM goal_milestones m WHERE m.goal_id = g.id AND m.user_id = g.user_id) "
    "FROM goals g ";

Goal read_goal(const storage::Statement& st) {
  Goal g;
  g.id = st.column_int64(0);
  g.parent_id = st.column_opt_int64(1);
  g.title = st.column_text(2);
  g.description = st.column_text(3);
  g.status = st.column_text(4);
  g.priority = st.column_int64(5);
  if (!st.column_is_null(6)) g.target_day = st.column_text(6);
  g.progress = st.column_int64(7);
  g.created_at = st.column_int64(8);
  g.updated_at = st.column_int64(9);
  g.closed_at = st.column_opt_int64(10);
  g.milestones_done = st.column_int64(11);
  g.milestones_total = st.column_int64(12);
  return g;
}

template <typename... Args>
Result<std::vector<Goal>> goals_where(Connection& conn, std::string_view where,
                                      const Args&... args) {
  auto st = conn.cached(std::string(kGoalSelect) + std::string(where));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(args...);
  std::vector<Goal> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    out.push_back(read_goal(**st));
  }
  return out;
}

Result<Goal> find_goal(Connection& conn, int64_t user, int64_t id) {
  auto found = goals_where(conn, "WHERE g.id = ? AND g.user_id = ?", id, user);
  if (!found) return fail(std::move(found).error());
  if (found->empty()) return no_such_goal(id);
  return std::move(found->front());
}

// The open goals in list order: by priority, then target day (none last), then id.
constexpr const char* kOpenOrder =
    "WHERE g.user_id = ? AND g.status IN ('active', 'paused') "
    "ORDER BY g.priority, g.target_day IS NULL, g.target_day, g.id LIMIT ?";
constexpr const char* kChildOrder =
    "WHERE g.user_id = ? AND g.parent_id = ? "
    "ORDER BY g.status NOT IN ('active', 'paused'), g.priority, g.target_day IS NULL, "
    "g.target_day, g.id LIMIT ?";

Result<std::vector<Milestone>> milestones_of(Connection& conn, int64_t user, int64_t goal) {
  auto st = conn.cached(
      "SELECT id, goal_id, title, target_day, done_at, created_at FROM goal_milestones "
      "WHERE goal_id = ? AND user_id = ? ORDER BY id LIMIT ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(goal, user, kMaxMilestonesShown);
  std::vector<Milestone> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    Milestone m{(*st)->column_int64(0), (*st)->column_int64(1),     (*st)->column_text(2),
                std::nullopt,           (*st)->column_opt_int64(4), (*st)->column_int64(5)};
    if (!(*st)->column_is_null(3)) m.target_day = (*st)->column_text(3);
    out.push_back(std::move(m));
  }
  return out;
}

// ---- arguments

// A target day: kTargetForms, in the caller's zone; nullopt for "none".
Result<std::optional<std::string>> parse_target(std::string_view text, int64_t now,
                                                const Zone& zone) {
  const std::string s = normalise_words(text);
  if (s == "none" || s == "no" || s.empty()) return std::optional<std::string>();
  if (s.starts_with("in ")) {
    auto spec = parse_when(s, "goals");
    if (!spec) return fail(std::move(spec).error());
    return std::optional(day_string(local_day(zone, resolve_when(*spec, now, zone.tz))));
  }
  auto day = parse_day(s, now, zone, "goals");
  if (!day) {
    return bad(fmt::format("could not read the target day '{}'; say it like {}", trim(text),
                           kTargetForms));
  }
  return std::optional(day_string(*day));
}

std::optional<int64_t> whole_number(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '#') text.remove_prefix(1);
  if (!text.empty() && text.back() == '%') text.remove_suffix(1);
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || n < 0) {
    return std::nullopt;
  }
  return n;
}

class Goals final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "goals"; }
  [[nodiscard]] std::string_view description() const override {
    return "The user's goals with sub-goals, priority, target day, progress and milestones.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"goal", "milestone", "objective", "resolution", "ambition", "aim for"};
  }
  [[nodiscard]] json parameters() const override {
    return {
        {"type", "object"},
        {"additionalProperties", false},
        {"required", {"action"}},
        {"properties",
         {{"action",
           {{"type", "string"},
            {"enum",
             {"add", "update", "milestone_add", "milestone_done", "list", "get", "remove"}}}},
          {"id",
           {{"type", "integer"},
            {"minimum", 1},
            {"description", "goal number (update, get, remove, milestone_add)"}}},
          {"milestone_id",
           {{"type", "integer"}, {"minimum", 1}, {"description", "milestone_done"}}},
          {"title", {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxTitle}}},
          {"description", {{"type", "string"}, {"maxLength", kMaxDescription}}},
          {"parent_id",
           {{"type", "integer"},
            {"minimum", 0},
            {"description", "parent goal (add, update; 0: none)"}}},
          {"priority",
           {{"type", "integer"},
            {"minimum", 1},
            {"maximum", 5},
            {"description", "1 highest, default 3"}}},
          {"target_day",
           {{"type", "string"},
            {"maxLength", kMaxDayText},
            {"description", "2026-12-31, in 3 weeks, none"}}},
          {"progress", {{"type", "integer"}, {"minimum", 0}, {"maximum", 100}}},
          {"status", {{"type", "string"}, {"enum", {"active", "paused", "done", "abandoned"}}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"goals", kGoalsUsage, "your open goals; /goals add run a marathon"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view /*command*/,
                                           std::string_view text) const override {
    const auto [action, rest] = split_first_word(text);
    // Goal and milestone numbers start at 1 (as the schema says: #0 would be its error about
    // "arguments.id" rather than this usage).
    const auto number = [](std::string_view t) -> std::optional<int64_t> {
      const auto n = whole_number(t);
      if (!n || *n < 1) return std::nullopt;
      return n;
    };
    if (action.empty() || action == "list") {
      if (rest.empty()) return json{{"action", "list"}};
    } else if (action == "add") {
      if (!rest.empty()) return json{{"action", "add"}, {"title", std::string(rest)}};
    } else if (action == "progress") {
      const auto [id, percent] = split_first_word(rest);
      const auto goal = number(id);
      const auto p = whole_number(percent);
      if (goal && p && *p > 100) {
        return bad(fmt::format("progress is a percentage from 0 to 100, not {}", *p));
      }
      if (goal && p) return json{{"action", "update"}, {"id", *goal}, {"progress", *p}};
    } else if (action == "done" || action == "remove") {
      if (const auto goal = number(rest)) {
        if (action == "remove") return json{{"action", "remove"}, {"id", *goal}};
        return json{{"action", "update"}, {"id", *goal}, {"status", "done"}};
      }
    } else if (action == "milestone") {
      const auto [first, more] = split_first_word(rest);
      if (first == "done") {
        if (const auto m = number(more)) {
          return json{{"action", "milestone_done"}, {"milestone_id", *m}};
        }
      } else if (const auto goal = number(first); goal && !more.empty()) {
        return json{{"action", "milestone_add"}, {"id", *goal}, {"title", std::string(more)}};
      }
    } else if (const auto goal = number(action); goal && rest.empty()) {
      return json{{"action", "get"}, {"id", *goal}};
    }
    return bad(fmt::format("usage: {}", kGoalsUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const Zone zone = zone_of(ctx.caller.time_zone);
    const int64_t now = clock_of(ctx).now_ms();
    const Day today = local_day(zone, now);
    const auto action = args.at("action").get<std::string>();
    if (action == "list") return done(list(**scope, today));
    if (action == "add") return add(**scope, args, zone, now, std::move(done));
    if (action == "milestone_done") {
      if (!args.contains("milestone_id")) {
        return done(bad("milestone_done needs the \"milestone_id\""));
      }
      return milestone_done(**scope, args.at("milestone_id").get<int64_t>(), now, today,
                            std::move(done));
    }
    if (!args.contains("id")) {
      return done(bad(fmt::format("{} needs the goal's \"id\"", action)));
    }
    const auto id = args.at("id").get<int64_t>();
    if (action == "get") return done(get(**scope, id, today));
    if (action == "update") return update(**scope, id, args, zone, now, std::move(done));
    if (action == "milestone_add") {
      return milestone_add(**scope, id, args, zone, now, std::move(done));
    }
    return remove(**scope, id, std::move(done));
  }

 private:
  static Result<json> list(const UserScope& scope, Day today) {
    std::vector<Goal> goals;
    {
      auto conn = scope.store().reads().acquire();
      auto found = goals_where(*conn, kOpenOrder, scope.user_id(), kMaxGoalsListed + 1);
      if (!found) return fail(std::move(found).error());
      goals = std::move(*found);
    }
    const bool more = goals.size() > static_cast<size_t>(kMaxGoalsListed);
    if (more) goals.pop_back();

    // Sub-goals under their parent, in the same order; a goal whose parent is not open here is a
    // root.
    std::set<int64_t> open;
    for (const auto& g : goals) open.insert(g.id);
    std::map<int64_t, std::vector<const Goal*>> children;
    std::vector<const Goal*> roots;
    for (const auto& g : goals) {
      if (g.parent_id && open.contains(*g.parent_id) && *g.parent_id != g.id) {
        children[*g.parent_id].push_back(&g);
      } else {
        roots.push_back(&g);
      }
    }
    json out = json::array();
    std::string text;
    std::set<int64_t> shown;
    const auto walk = [&](const auto& self, const Goal& g, int depth) -> void {
      if (!shown.insert(g.id).second || depth > kMaxDepth) return;
      json j = goal_json(g, today);
      j["depth"] = depth;
      out.push_back(std::move(j));
      text += "\n" + std::string(static_cast<size_t>(depth) * 2, ' ') + (depth > 0 ? "↳ " : "") +
              goal_line(g, today);
      for (const Goal* c : children[g.id]) self(self, *c, depth + 1);
    };
    for (const Goal* g : roots) walk(walk, *g, 0);
    if (goals.empty()) {
      text = "You have no open goals; add one with /goals add TITLE.";
    } else {
      text = "Your open goals:" + text;
      if (more) text += fmt::format("\n(only the first {} are shown)", kMaxGoalsListed);
    }
    return json{{"goals", std::move(out)}, {"truncated", more}, {"text", std::move(text)}};
  }

  static Result<json> get(const UserScope& scope, int64_t id, Day today) {
    Goal g;
    std::vector<Milestone> milestones;
    std::vector<Goal> subs;
    std::optional<Goal> parent;
    {
      auto conn = scope.store().reads().acquire();
      auto found = find_goal(*conn, scope.user_id(), id);
      if (!found) return fail(std::move(found).error());
      g = std::move(*found);
      auto ms = milestones_of(*conn, scope.user_id(), id);
      if (!ms) return fail(std::move(ms).error());
      milestones = std::move(*ms);
      auto c = goals_where(*conn, kChildOrder, scope.user_id(), id, kMaxGoalsListed);
      if (!c) return fail(std::move(c).error());
      subs = std::move(*c);
      if (g.parent_id) {
        auto p = find_goal(*conn, scope.user_id(), *g.parent_id);
        if (p) parent = std::move(*p);
      }
    }
    std::string text = goal_line(g, today);
    if (!g.description.empty()) text += "\n" + g.description;
    if (parent) text += fmt::format("\nPart of #{} {}", parent->id, parent->title);
    json ms = json::array();
    if (!milestones.empty()) {
      text += fmt::format("\nMilestones {}/{}:", g.milestones_done, g.milestones_total);
      for (const auto& m : milestones) {
        ms.push_back(milestone_json(m));
        text += fmt::format("\n  {} #{} {}", m.done_at ? "✓" : "○", m.id, m.title);
        if (m.target_day && !m.done_at) {
          if (const auto d = parse_day_string(*m.target_day)) text += " (by " + human_day(*d) + ")";
        }
      }
    }
    json sub = json::array();
    if (!subs.empty()) {
      text += "\nSub-goals:";
      for (const auto& s : subs) {
        sub.push_back(goal_json(s, today));
        text += "\n  ↳ " + goal_line(s, today);
      }
    }
    text += done_hint(g);
    return json{{"goal", goal_json(g, today)},
                {"milestones", std::move(ms)},
                {"sub_goals", std::move(sub)},
                {"parent", parent ? goal_json(*parent, today) : json(nullptr)},
                {"text", std::move(text)}};
  }

  void add(const UserScope& scope, const json& args, const Zone& zone, int64_t now,
           Done done) const {
    auto g = std::make_shared<Goal>();
    g->title = std::string(trim(args.value("title", std::string())));
    if (g->title.empty()) return done(bad("add needs a non-empty \"title\""));
    g->description = std::string(trim(args.value("description", std::string())));
    g->status = "active";
    g->priority = args.value("priority", int64_t{3});
    g->progress = args.value("progress", int64_t{0});
    g->created_at = g->updated_at = now;
    if (const auto p = args.value("parent_id", int64_t{0}); p > 0) g->parent_id = p;
    if (args.contains("target_day")) {
      auto t = parse_target(args.at("target_day").get<std::string>(), now, zone);
      if (!t) return done(fail(std::move(t).error()));
      g->target_day = std::move(*t);
    }
    const Day today = local_day(zone, now);
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "goals add",
        [g, user](Connection& conn) -> Result<WriteAck> {
          if (g->parent_id) {
            auto parent = find_goal(conn, user, *g->parent_id);
            if (!parent) return fail(std::move(parent).error());
          }
          auto st = conn.cached(
              "INSERT INTO goals(user_id, parent_id, title, description, status, priority, "
              "target_day, progress, created_at, updated_at) VALUES (?,?,?,?,'active',?,?,?,?,?)");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)
                         ->bind_all(user, g->parent_id, g->title, g->description, g->priority,
                                    g->target_day, g->progress, g->created_at, g->updated_at)
                         .run());
          g->id = conn.last_insert_rowid();
          return WriteAck{g->id, true};
        },
        [g, today] {
          std::string text = "Added goal " + goal_line(*g, today);
          if (g->parent_id) text += fmt::format(", under #{}", *g->parent_id);
          return json{{"goal", goal_json(*g, today)}, {"text", text + "."}};
        },
        std::move(done));
  }

  struct Update {
    std::optional<std::string> title;
    std::optional<std::string> description;
    std::optional<std::string> status;
    std::optional<int64_t> priority;
    std::optional<int64_t> progress;
    bool set_target = false;
    std::optional<std::string> target_day;
    bool set_parent = false;
    std::optional<int64_t> parent_id;
  };

  void update(const UserScope& scope, int64_t id, const json& args, const Zone& zone, int64_t now,
              Done done) const {
    Update u;
    if (args.contains("title")) {
      u.title = std::string(trim(args.at("title").get<std::string>()));
      if (u.title->empty()) return done(bad("\"title\" cannot be empty"));
    }
    if (args.contains("description")) {
      u.description = std::string(trim(args.at("description").get<std::string>()));
    }
    if (args.contains("status")) u.status = args.at("status").get<std::string>();
    if (args.contains("priority")) u.priority = args.at("priority").get<int64_t>();
    if (args.contains("progress")) u.progress = args.at("progress").get<int64_t>();
    if (args.contains("target_day")) {
      auto t = parse_target(args.at("target_day").get<std::string>(), now, zone);
      if (!t) return done(fail(std::move(t).error()));
      u.set_target = true;
      u.target_day = std::move(*t);
    }
    if (args.contains("parent_id")) {
      u.set_parent = true;
      if (const auto p = args.at("parent_id").get<int64_t>(); p > 0) u.parent_id = p;
      if (u.parent_id == id) return done(bad(fmt::format("#{} cannot be its own parent", id)));
    }
    if (!u.title && !u.description && !u.status && !u.priority && !u.progress && !u.set_target &&
        !u.set_parent) {
      return done(
          bad("update needs something to change: progress, status, priority, "
              "target_day, title, description or parent_id"));
    }
    if (u.status == "done" && u.progress && *u.progress != 100) {
      return done(bad(fmt::format("a done goal is at 100%, not {}%", *u.progress)));
    }
    auto g = std::make_shared<Goal>();
    auto became = std::make_shared<std::string>();  // the status it changed to, if it changed
    const Day today = local_day(zone, now);
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "goals update",
        [g, became, u, id, user, now](Connection& conn) -> Result<WriteAck> {
          auto found = find_goal(conn, user, id);
          if (!found) return fail(std::move(found).error());
          *g = std::move(*found);
          if (u.set_parent && u.parent_id) {
            // The new parent must be the caller's and must not be this goal or below it.
            std::optional<int64_t> cur = u.parent_id;
            for (int depth = 0; cur; ++depth) {
              if (*cur == id || depth > kMaxDepth) {
                return bad(fmt::format("#{} cannot go under #{}: #{} is below #{} (a cycle)", id,
                                       *u.parent_id, *u.parent_id, id));
              }
              auto up = find_goal(conn, user, *cur);
              if (!up) return fail(std::move(up).error());
              cur = up->parent_id;
            }
          }
          if (u.progress && *u.progress != 100 && g->status == "done" &&
              (!u.status || *u.status == "done")) {
            return bad(
                fmt::format("#{} is done (100%); set its status to active first to change "
                            "its progress",
                            id));
          }
          if (u.title) g->title = *u.title;
          if (u.description) g->description = *u.description;
          if (u.priority) g->priority = *u.priority;
          if (u.progress) g->progress = *u.progress;
          if (u.set_target) g->target_day = u.target_day;
          if (u.set_parent) g->parent_id = u.parent_id;
          if (u.status && *u.status != g->status) {
            *became = *u.status;
            g->status = *u.status;
            if (g->status == "done") {
              g->progress = 100;
              g->closed_at = now;
            } else if (g->status == "abandoned") {
              g->closed_at = now;
            } else {
              g->closed_at.reset();
            }
          }
          g->updated_at = now;
          auto st = conn.cached(
              "UPDATE goals SET parent_id = ?, title = ?, description = ?, status = ?, "
              "priority = ?, target_day = ?, progress = ?, updated_at = ?, closed_at = ? "
              "WHERE id = ? AND user_id = ?");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)
                         ->bind_all(g->parent_id, g->title, g->description, g->status, g->priority,
                                    g->target_day, g->progress, g->updated_at, g->closed_at, id,
                                    user)
                         .run());
          return WriteAck{id, false};
        },
        [g, became, today] {
          std::string text;
          if (*became == "done") {
            text = fmt::format("Done: #{} {}. Well done!", g->id, g->title);
          } else if (*became == "abandoned") {
            text = fmt::format("Abandoned #{} {}.", g->id, g->title);
          } else {
            text = "Updated " + goal_line(*g, today) + "." + done_hint(*g);
          }
          return json{{"goal", goal_json(*g, today)}, {"text", std::move(text)}};
        },
        std::move(done));
  }

  void milestone_add(const UserScope& scope, int64_t goal_id, const json& args, const Zone& zone,
                     int64_t now, Done done) const {
    auto m = std::make_shared<Milestone>();
    m->goal_id = goal_id;
    m->title = std::string(trim(args.value("title", std::string())));
    m->created_at = now;
    if (m->title.empty()) return done(bad("milestone_add needs a non-empty \"title\""));
    if (args.contains("target_day")) {
      auto t = parse_target(args.at("target_day").get<std::string>(), now, zone);
      if (!t) return done(fail(std::move(t).error()));
      m->target_day = std::move(*t);
    }
    auto g = std::make_shared<Goal>();
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "goals milestone_add",
        [m, g, user](Connection& conn) -> Result<WriteAck> {
          auto found = find_goal(conn, user, m->goal_id);
          if (!found) return fail(std::move(found).error());
          *g = std::move(*found);
          auto st = conn.cached(
              "INSERT INTO goal_milestones(goal_id, user_id, title, target_day, created_at) "
              "VALUES (?,?,?,?,?)");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY(
              (*st)->bind_all(m->goal_id, user, m->title, m->target_day, m->created_at).run());
          m->id = conn.last_insert_rowid();
          ++g->milestones_total;
          return WriteAck{m->id, true};
        },
        [m, g] {
          return json{
              {"milestone", milestone_json(*m)},
              {"text", fmt::format("Added milestone #{} to #{} {}: {} ({}/{} done).", m->id, g->id,
                                   g->title, m->title, g->milestones_done, g->milestones_total)}};
        },
        std::move(done));
  }

  void milestone_done(const UserScope& scope, int64_t id, int64_t now, Day today, Done done) const {
    auto m = std::make_shared<Milestone>();
    auto g = std::make_shared<Goal>();
    auto already = std::make_shared<bool>(false);
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "goals milestone_done",
        [m, g, already, id, user, now](Connection& conn) -> Result<WriteAck> {
          auto get = conn.cached(
              "SELECT goal_id, title, target_day, done_at, created_at FROM goal_milestones "
              "WHERE id = ? AND user_id = ?");
          if (!get) return fail(std::move(get).error());
          (*get)->bind_all(id, user);
          auto row = (*get)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) return no_such_milestone(id);
          *m = Milestone{id,           (*get)->column_int64(0),     (*get)->column_text(1),
                         std::nullopt, (*get)->column_opt_int64(3), (*get)->column_int64(4)};
          if (!(*get)->column_is_null(2)) m->target_day = (*get)->column_text(2);
          (*get)->reset();
          *already = m->done_at.has_value();
          if (!*already) {
            auto set =
                conn.cached("UPDATE goal_milestones SET done_at = ? WHERE id = ? AND user_id = ?");
            if (!set) return fail(std::move(set).error());
            PARLEY_TRY((*set)->bind_all(now, id, user).run());
            m->done_at = now;
          }
          auto found = find_goal(conn, user, m->goal_id);
          if (!found) return fail(std::move(found).error());
          *g = std::move(*found);
          return WriteAck{id, false};
        },
        [m, g, already, today] {
          std::string text =
              *already ? fmt::format("Milestone #{} was already done: {}", m->id, m->title)
                       : fmt::format("✓ Milestone #{} done: {}", m->id, m->title);
          text += fmt::format(" (#{} {}: {}/{} milestones).", g->id, g->title, g->milestones_done,
                              g->milestones_total);
          text += done_hint(*g);
          return json{{"milestone", milestone_json(*m)},
                      {"goal", goal_json(*g, today)},
                      {"all_milestones_done", g->milestones_done == g->milestones_total},
                      {"text", std::move(text)}};
        },
        std::move(done));
  }

  void remove(const UserScope& scope, int64_t id, Done done) const {
    auto g = std::make_shared<Goal>();
    auto subs = std::make_shared<int64_t>(0);
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "goals remove",
        [g, subs, id, user](Connection& conn) -> Result<WriteAck> {
          auto found = find_goal(conn, user, id);
          if (!found) return fail(std::move(found).error());
          *g = std::move(*found);
          auto count =
              conn.cached("SELECT count(*) FROM goals WHERE parent_id = ? AND user_id = ?");
          if (!count) return fail(std::move(count).error());
          (*count)->bind_all(id, user);
          auto row = (*count)->step();
          if (!row) return fail(std::move(row).error());
          *subs = (*count)->column_int64(0);
          (*count)->reset();
          auto st = conn.cached("DELETE FROM goals WHERE id = ? AND user_id = ?");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)->bind_all(id, user).run());
          return WriteAck{id, false};
        },
        [g, subs] {
          std::string text = fmt::format("Removed goal #{} {}", g->id, g->title);
          if (g->milestones_total > 0) {
            text += fmt::format(" with its {} milestone{}", g->milestones_total,
                                g->milestones_total == 1 ? "" : "s");
          }
          text += ".";
          if (*subs > 0) {
            text += fmt::format(" Its {} sub-goal{} stay{}, now without a parent.", *subs,
                                *subs == 1 ? "" : "s", *subs == 1 ? "s" : "");
          }
          return json{{"goal", {{"id", g->id}, {"title", g->title}}},
                      {"sub_goals_kept", *subs},
                      {"text", std::move(text)}};
        },
        std::move(done));
  }
};

}  // namespace goals_detail
}  // namespace

std::unique_ptr<Capability> make_goals() { return std::make_unique<goals_detail::Goals>(); }

}  // namespace parley::capabilities::builtins
