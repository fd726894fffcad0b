// goals: add, list (open goals by priority, then target day with none last, then id; sub-goals
// under their parent; progress bars, days left or overdue, milestones), get, update (progress,
// status with closed_at, priority, target day, title, parent), milestones (all done suggests
// marking the goal done, never does it), remove (sub-goals stay, without a parent); every error
// case — progress 101, a parent of another user, a cycle; per-user isolation by every id; days
// left in the caller's zone across a DST change; the /goals command forms.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "capabilities/builtins/user_store_fixture.h"

namespace parley::capabilities {
namespace goals_test {

using nlohmann::json;
using ::testing::HasSubstr;

int64_t utc_at(int y, unsigned mo, unsigned d, int h, int mi) {
  const auto day = std::chrono::year_month_day{std::chrono::year{y}, std::chrono::month{mo},
                                               std::chrono::day{d}};
  const auto t = std::chrono::sys_days{day} + std::chrono::hours{h} + std::chrono::minutes{mi};
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// The fixture's clock is Monday 2026-11-23 14:04:05 UTC.
class GoalsTest : public UserStoreFixture {
 protected:
  InvokeContext context(const UserScope& who, const std::string& zone, bool direct) {
    InvokeContext ctx;
    ctx.caller.user_id = who.user_id();
    ctx.caller.time_zone = zone;
    ctx.data = &who;
    ctx.services = &services_;
    ctx.direct = direct;
    return ctx;
  }
  Result<json> try_goals(const UserScope& who, const json& args, const std::string& zone = "UTC") {
    return registry_.find("goals")->invoke(context(who, zone, false), args);
  }
  json goals(const UserScope& who, const json& args, const std::string& zone = "UTC") {
    auto r = try_goals(who, args, zone);
    EXPECT_TRUE(r.ok()) << args.dump() << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : json();
  }
  Result<json> command(const UserScope& who, const std::string& text) {
    Capability* cap = registry_.find_command("goals");
    EXPECT_NE(cap, nullptr);
    if (cap == nullptr) return fail(ErrorCode::not_found, "goals");
    auto args = cap->parse_command("goals", text);
    if (!args) return fail(std::move(args).error());
    return cap->invoke(context(who, "UTC", true), *args);
  }
  int64_t add(const UserScope& who, const std::string& title, json extra = json::object()) {
    extra["action"] = "add";
    extra["title"] = title;
    return goals(who, extra)["goal"]["id"].get<int64_t>();
  }
  Error error(const UserScope& who, const json& args) {
    auto r = try_goals(who, args);
    EXPECT_FALSE(r.ok()) << args.dump();
    return r.ok() ? Error{} : r.error();
  }
  std::vector<int64_t> listed(const UserScope& who) {
    std::vector<int64_t> ids;
    const json list = goals(who, {{"action", "list"}});
    for (const auto& g : list["goals"]) {
      ids.push_back(g["id"].get<int64_t>());
    }
    return ids;
  }
};

TEST_F(GoalsTest, ListsOpenGoalsByPriorityThenTargetDayWithSubGoalsUnderTheirParent) {
  const int64_t a = add(*alice_, "Read 20 books", {{"priority", 2}, {"target_day", "2026-12-01"}});
  const int64_t b = add(*alice_, "Learn Spanish", {{"priority", 1}, {"progress", 30}});
  const int64_t c = add(*alice_, "Run a marathon", {{"priority", 1}, {"target_day", "2026-12-24"}});
  const int64_t d = add(*alice_, "File taxes", {{"priority", 1}, {"target_day", "2026-11-20"}});
  const int64_t e = add(*alice_, "Run 10 km", {{"parent_id", c}, {"target_day", "2026-11-30"}});
  const int64_t f = add(*alice_, "Old plan");
  goals(*alice_, {{"action", "update"}, {"id", f}, {"status", "done"}});
  const int64_t g = add(*alice_, "Someday", {{"priority", 5}});
  goals(*alice_, {{"action", "update"}, {"id", g}, {"status", "paused"}});

  EXPECT_EQ(listed(*alice_), (std::vector<int64_t>{d, c, e, b, a, g}));
  const json list = goals(*alice_, {{"action", "list"}});
  EXPECT_EQ(list["goals"][2]["depth"], 1);
  EXPECT_EQ(list["goals"][2]["parent_id"], c);
  EXPECT_EQ(list["goals"][0]["days_left"], -3);
  const auto id = [](int64_t n) { return "#" + std::to_string(n); };
  EXPECT_EQ(list["text"],
            "Your open goals:\n" + id(d) +
                " File taxes [P1] ░░░░░░░░░░ 0% · 3 days overdue (Fri 20 Nov)\n" + id(c) +
                " Run a marathon [P1] ░░░░░░░░░░ 0% · 31 days left (Thu 24 Dec)\n  ↳ " + id(e) +
                " Run 10 km [P3] ░░░░░░░░░░ 0% · 7 days left (Mon 30 Nov)\n" + id(b) +
                " Learn Spanish [P1] ▓▓▓░░░░░░░ 30%\n" + id(a) +
                " Read 20 books [P2] ░░░░░░░░░░ 0% · 8 days left (Tue 1 Dec)\n" + id(g) +
                " Someday [P5, paused] ░░░░░░░░░░ 0%");
  EXPECT_EQ(goals(*bob_, {{"action", "list"}})["text"],
            "You have no open goals; add one with /goals add TITLE.");
}

TEST_F(GoalsTest, UpdateProgressStatusAndFields) {
  const int64_t id = add(*alice_, "Write a novel", {{"description", "80k words"}});
  auto r = goals(*alice_, {{"action", "update"}, {"id", id}, {"progress", 45}});
  EXPECT_EQ(r["goal"]["progress"], 45);
  EXPECT_EQ(r["text"], "Updated #" + std::to_string(id) + " Write a novel [P3] ▓▓▓▓░░░░░░ 45%.");
  r = goals(*alice_, {{"action", "update"},
                      {"id", id},
                      {"title", "Write a short novel"},
                      {"priority", 1},
                      {"target_day", "2027-06-30"}});
  EXPECT_EQ(r["goal"]["title"], "Write a short novel");
  EXPECT_EQ(r["goal"]["priority"], 1);
  EXPECT_EQ(r["goal"]["target_day"], "2027-06-30");
  EXPECT_EQ(r["goal"]["description"], "80k words") << "what was not given stays";
  r = goals(*alice_, {{"action", "update"}, {"id", id}, {"target_day", "none"}});
  EXPECT_EQ(r["goal"]["target_day"], nullptr);
  r = goals(*alice_, {{"action", "update"}, {"id", id}, {"progress", 100}});
  EXPECT_THAT(r["text"].get<std::string>(), HasSubstr("mark it done?"));
  EXPECT_EQ(r["goal"]["status"], "active") << "never marked done by itself";

  clock_.advance_ms(60'000);
  r = goals(*alice_, {{"action", "update"}, {"id", id}, {"status", "done"}, {"progress", 100}});
  EXPECT_EQ(r["goal"]["status"], "done");
  EXPECT_EQ(r["goal"]["progress"], 100);
  EXPECT_EQ(r["goal"]["closed_at"], "2026-11-23T14:05:05Z");
  EXPECT_EQ(r["text"], "Done: #" + std::to_string(id) + " Write a short novel. Well done!");
  auto e = error(*alice_, {{"action", "update"}, {"id", id}, {"progress", 50}});
  EXPECT_THAT(e.message, HasSubstr("is done (100%); set its status to active first"));
  r = goals(*alice_, {{"action", "update"}, {"id", id}, {"status", "active"}, {"progress", 90}});
  EXPECT_EQ(r["goal"]["closed_at"], nullptr);
  EXPECT_EQ(r["goal"]["progress"], 90);
  r = goals(*alice_, {{"action", "update"}, {"id", id}, {"status", "abandoned"}});
  EXPECT_EQ(r["goal"]["closed_at"], "2026-11-23T14:05:05Z");
  EXPECT_EQ(r["goal"]["progress"], 90);
  EXPECT_TRUE(listed(*alice_).empty());

  // Marking done sets progress 100 whatever it was.
  const int64_t other = add(*alice_, "Tidy the cellar", {{"progress", 10}});
  r = goals(*alice_, {{"action", "update"}, {"id", other}, {"status", "done"}});
  EXPECT_EQ(r["goal"]["progress"], 100);
}

TEST_F(GoalsTest, MilestonesSuggestMarkingTheGoalDoneButNeverDoIt) {
  const int64_t id = add(*alice_, "Learn Spanish");
  auto m1 = goals(*alice_, {{"action", "milestone_add"},
                            {"id", id},
                            {"title", "A1 course"},
                            {"target_day", "2026-12-15"}});
  const int64_t a1 = m1["milestone"]["id"].get<int64_t>();
  EXPECT_EQ(m1["text"], "Added milestone #" + std::to_string(a1) + " to #" + std::to_string(id) +
                            " Learn Spanish: A1 course (0/1 done).");
  const int64_t a2 =
      goals(*alice_, {{"action", "milestone_add"}, {"id", id}, {"title", "A2"}})["milestone"]["id"]
          .get<int64_t>();
  auto done1 = goals(*alice_, {{"action", "milestone_done"}, {"milestone_id", a1}});
  EXPECT_EQ(done1["all_milestones_done"], false);
  EXPECT_THAT(done1["text"].get<std::string>(), HasSubstr("1/2 milestones"));
  EXPECT_THAT(goals(*alice_, {{"action", "list"}})["text"].get<std::string>(),
              HasSubstr("milestones 1/2"));
  auto done2 = goals(*alice_, {{"action", "milestone_done"}, {"milestone_id", a2}});
  EXPECT_EQ(done2["all_milestones_done"], true);
  EXPECT_THAT(done2["text"].get<std::string>(),
              HasSubstr("All 2 milestones of #" + std::to_string(id) +
                        " are done — mark the goal done? /goals done " + std::to_string(id)));
  EXPECT_EQ(done2["goal"]["status"], "active");
  auto again = goals(*alice_, {{"action", "milestone_done"}, {"milestone_id", a2}});
  EXPECT_THAT(again["text"].get<std::string>(), HasSubstr("was already done"));

  auto got = goals(*alice_, {{"action", "get"}, {"id", id}});
  ASSERT_EQ(got["milestones"].size(), 2u);
  EXPECT_EQ(got["milestones"][0]["done"], true);
  EXPECT_THAT(got["text"].get<std::string>(), HasSubstr("Milestones 2/2:\n  ✓ #"));
  EXPECT_THAT(got["text"].get<std::string>(), HasSubstr("mark the goal done?"));
}

TEST_F(GoalsTest, GetShowsMilestonesAndSubGoalsAndRemoveKeepsSubGoals) {
  const int64_t parent = add(*alice_, "Get fit", {{"description", "by summer"}});
  const int64_t child = add(*alice_, "Run 5 km", {{"parent_id", parent}, {"progress", 50}});
  const int64_t grandchild = add(*alice_, "Buy shoes", {{"parent_id", child}});
  goals(*alice_, {{"action", "milestone_add"}, {"id", parent}, {"title", "See a doctor"}});
  auto got = goals(*alice_, {{"action", "get"}, {"id", parent}});
  ASSERT_EQ(got["sub_goals"].size(), 1u);
  EXPECT_EQ(got["sub_goals"][0]["id"], child);
  EXPECT_EQ(got["parent"], nullptr);
  EXPECT_THAT(got["text"].get<std::string>(), HasSubstr("by summer"));
  EXPECT_THAT(got["text"].get<std::string>(), HasSubstr("Milestones 0/1:\n  ○ #"));
  EXPECT_THAT(got["text"].get<std::string>(),
              HasSubstr("Sub-goals:\n  ↳ #" + std::to_string(child) + " Run 5 km [P3] ▓▓▓▓▓"));
  auto sub = goals(*alice_, {{"action", "get"}, {"id", child}});
  EXPECT_EQ(sub["parent"]["id"], parent);
  EXPECT_THAT(sub["text"].get<std::string>(), HasSubstr("Part of #" + std::to_string(parent)));

  auto removed = goals(*alice_, {{"action", "remove"}, {"id", parent}});
  EXPECT_EQ(removed["text"], "Removed goal #" + std::to_string(parent) +
                                 " Get fit with its 1 milestone. Its 1 sub-goal stays, now "
                                 "without a parent.");
  auto kept = goals(*alice_, {{"action", "get"}, {"id", child}});
  EXPECT_EQ(kept["goal"]["parent_id"], nullptr);
  EXPECT_EQ(listed(*alice_), (std::vector<int64_t>{child, grandchild}));
  auto conn = store_->reads().acquire();
  EXPECT_EQ(*conn->query_int64("SELECT count(*) FROM goal_milestones"), 0);
}

TEST_F(GoalsTest, BadInputIsRefusedWithClearErrors) {
  const int64_t a = add(*alice_, "A");
  const int64_t b = add(*alice_, "B", {{"parent_id", a}});
  const int64_t c = add(*alice_, "C", {{"parent_id", b}});
  Error e = error(*alice_, {{"action", "update"}, {"id", a}, {"parent_id", c}});
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
  EXPECT_THAT(e.message,
              HasSubstr("goals: #" + std::to_string(a) + " cannot go under #" + std::to_string(c)));
  EXPECT_THAT(e.message, HasSubstr("a cycle"));
  e = error(*alice_, {{"action", "update"}, {"id", a}, {"parent_id", a}});
  EXPECT_EQ(e.message, "goals: #" + std::to_string(a) + " cannot be its own parent");
  // Moving C to the top and A under C is fine.
  goals(*alice_, {{"action", "update"}, {"id", c}, {"parent_id", 0}});
  EXPECT_EQ(
      goals(*alice_, {{"action", "update"}, {"id", a}, {"parent_id", c}})["goal"]["parent_id"], c);

  e = error(*alice_, {{"action", "update"}, {"id", a}, {"progress", 101}});
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
  EXPECT_THAT(e.message, HasSubstr("progress"));
  e = error(*alice_, {{"action", "add"}, {"title", "x"}, {"priority", 0}});
  EXPECT_THAT(e.message, HasSubstr("priority"));
  e = error(*alice_, {{"action", "add"}, {"title", "  "}});
  EXPECT_EQ(e.message, "goals: add needs a non-empty \"title\"");
  e = error(*alice_, {{"action", "add"}, {"title", "x"}, {"target_day", "whenever"}});
  EXPECT_THAT(e.message, HasSubstr("goals: could not read the target day 'whenever'"));
  e = error(*alice_, {{"action", "add"}, {"title", "x"}, {"parent_id", 9999}});
  EXPECT_EQ(e.code, ErrorCode::not_found);
  EXPECT_EQ(e.message, "goals: you have no goal #9999");
  e = error(*alice_, {{"action", "update"}, {"id", a}});
  EXPECT_THAT(e.message, HasSubstr("goals: update needs something to change"));
  e = error(*alice_, {{"action", "update"}, {"id", a}, {"status", "done"}, {"progress", 50}});
  EXPECT_EQ(e.message, "goals: a done goal is at 100%, not 50%");
  e = error(*alice_, {{"action", "get"}});
  EXPECT_EQ(e.message, "goals: get needs the goal's \"id\"");
  e = error(*alice_, {{"action", "milestone_done"}, {"milestone_id", 77}});
  EXPECT_EQ(e.message, "goals: you have no milestone #77");
  e = error(*alice_, {{"action", "milestone_add"}, {"id", a}});
  EXPECT_EQ(e.message, "goals: milestone_add needs a non-empty \"title\"");
  e = error(*alice_, {{"action", "list"}, {"extra", 1}});
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
  // Nothing was half-written.
  EXPECT_EQ(listed(*alice_).size(), 3u);
}

TEST_F(GoalsTest, UsersAreIsolated) {
  const int64_t mine = add(*alice_, "Alice's goal");
  const int64_t milestone =
      goals(*alice_,
            {{"action", "milestone_add"}, {"id", mine}, {"title", "step"}})["milestone"]["id"]
          .get<int64_t>();
  const std::string missing = "goals: you have no goal #" + std::to_string(mine);
  for (const json& args : {json{{"action", "get"}, {"id", mine}},
                           json{{"action", "update"}, {"id", mine}, {"progress", 5}},
                           json{{"action", "milestone_add"}, {"id", mine}, {"title", "x"}},
                           json{{"action", "remove"}, {"id", mine}},
                           json{{"action", "add"}, {"title", "x"}, {"parent_id", mine}}}) {
    Error e = error(*bob_, args);
    EXPECT_EQ(e.code, ErrorCode::not_found) << args.dump();
    EXPECT_EQ(e.message, missing) << "the same answer as a missing one: " << args.dump();
  }
  Error e = error(*bob_, {{"action", "milestone_done"}, {"milestone_id", milestone}});
  EXPECT_EQ(e.message, "goals: you have no milestone #" + std::to_string(milestone));
  // A goal of Bob's cannot be moved under Alice's.
  const int64_t his = add(*bob_, "Bob's goal");
  e = error(*bob_, {{"action", "update"}, {"id", his}, {"parent_id", mine}});
  EXPECT_EQ(e.message, missing);
  EXPECT_EQ(listed(*bob_), std::vector<int64_t>{his});
  auto got = goals(*alice_, {{"action", "get"}, {"id", mine}});
  EXPECT_EQ(got["goal"]["progress"], 0);
  EXPECT_EQ(got["milestones"][0]["done"], false);
}

TEST_F(GoalsTest, DaysLeftCountTheCallersDaysAcrossDst) {
  // 03:04 on Tuesday 24 November in Auckland: "tomorrow" is the 25th there.
  auto r =
      goals(*alice_, {{"action", "add"}, {"title", "Call grandma"}, {"target_day", "tomorrow"}},
            "Pacific/Auckland");
  EXPECT_EQ(r["goal"]["target_day"], "2026-11-25");
  EXPECT_EQ(r["goal"]["days_left"], 1);
  r = goals(*alice_, {{"action", "add"}, {"title", "Plan trip"}, {"target_day", "in 3 weeks"}},
            "Pacific/Auckland");
  EXPECT_EQ(r["goal"]["target_day"], "2026-12-15");

  // Berlin, 20 October: ten days to the 30th, the 25-hour 25 October included.
  clock_.set_ms(utc_at(2026, 10, 20, 12, 0));
  r = goals(*alice_, {{"action", "add"}, {"title", "Report"}, {"target_day", "2026-10-30"}},
            "Europe/Berlin");
  EXPECT_EQ(r["goal"]["days_left"], 10);
  clock_.set_ms(utc_at(2026, 10, 29, 23, 30));  // 00:30 CET on the 30th
  r = goals(*alice_, {{"action", "get"}, {"id", r["goal"]["id"]}}, "Europe/Berlin");
  EXPECT_EQ(r["goal"]["days_left"], 0);
  EXPECT_THAT(r["text"].get<std::string>(), HasSubstr("due today (Fri 30 Oct)"));
  r = goals(*alice_, {{"action", "get"}, {"id", r["goal"]["id"]}}, "UTC");
  EXPECT_EQ(r["goal"]["days_left"], 1) << "still the 29th in UTC";
}

TEST_F(GoalsTest, Commands) {
  auto r = command(*alice_, "add Learn to juggle");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  const int64_t id = (*r)["goal"]["id"].get<int64_t>();
  const std::string n = std::to_string(id);
  r = command(*alice_, "progress " + n + " 40%");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["goal"]["progress"], 40);
  r = command(*alice_, "milestone " + n + " three balls");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  const int64_t m = (*r)["milestone"]["id"].get<int64_t>();
  r = command(*alice_, "milestone done " + std::to_string(m));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_THAT((*r)["text"].get<std::string>(), HasSubstr("mark the goal done?"));
  r = command(*alice_, "#" + n);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["goal"]["id"], id);
  r = command(*alice_, "");
  ASSERT_TRUE(r.ok());
  EXPECT_THAT((*r)["text"].get<std::string>(), HasSubstr("Learn to juggle [P3] ▓▓▓▓░░░░░░ 40%"));
  r = command(*alice_, "done " + n);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["goal"]["status"], "done");
  EXPECT_EQ((*r)["goal"]["progress"], 100);
  r = command(*alice_, "remove " + n);
  ASSERT_TRUE(r.ok()) << r.error().describe();

  auto bad = command(*alice_, "progress " + n + " 101");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("progress"));
  for (const char* text : {"add", "progress x 10", "done", "frobnicate", "milestone 3", "3 4"}) {
    bad = command(*alice_, text);
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument) << text;
    EXPECT_THAT(bad.error().message, HasSubstr("goals: usage: /goals")) << text;
  }
}

// Found by schema_args_fuzz: "/goals 0" became {"id": 0}, which the schema refused as
// "arguments.id: 0 is below the minimum 1"; "/goals progress 2 150%" likewise. The command
// says its usage, or what a percentage is.
TEST_F(GoalsTest, ACommandsNumbersAreCheckedByTheCommand) {
  Capability* cap = registry_.find_command("goals");
  for (const char* text :
       {"0", "#0", "done 0", "remove 0", "milestone 0 x", "milestone done 0", "progress 0 40"}) {
    const auto r = cap->parse_command("goals", text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_THAT(r.error().message, ::testing::StartsWith("goals: usage: ")) << text;
  }
  const auto over = cap->parse_command("goals", "progress 2 150%");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().message, "goals: progress is a percentage from 0 to 100, not 150");
  EXPECT_EQ((*cap->parse_command("goals", "progress 2 0%"))["progress"], 0);
}

TEST_F(GoalsTest, NothingWithoutStorage) {
  auto r = call("goals", nullptr, {{"action", "list"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
}

}  // namespace goals_test
}  // namespace parley::capabilities
