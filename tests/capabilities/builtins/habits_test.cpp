// habits: add, log (done, skipped with a reason, the same day again replacing it), status with
// streaks, marks, completion and the weekly sparkline; pause, resume (the paused days excused),
// archive, remove; a reminder when asked, through the reminders table; every error case; per-user
// isolation by id and by name; the /habits and /habit command forms; and the streak edge cases —
// a missed day, a skip, today not yet logged, weekdays across a weekend, weekly N across the
// Sunday → Monday boundary, and the DST days of Europe/Berlin (23 and 25 hours) counted as one
// day each; the calendar chart of the last five weeks, read back cell by cell from its PNG.
#include <date/tz.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "capabilities/builtins/chart_reader.h"
#include "capabilities/builtins/user_store_fixture.h"
#include "parley/capabilities/reminders.h"

namespace parley::capabilities {
namespace habits_test {

using nlohmann::json;
using ::testing::HasSubstr;

int64_t at_utc(int y, unsigned mo, unsigned d, int h, int mi) {
  const auto day = std::chrono::year_month_day{std::chrono::year{y}, std::chrono::month{mo},
                                               std::chrono::day{d}};
  const auto t = std::chrono::sys_days{day} + std::chrono::hours{h} + std::chrono::minutes{mi};
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// The fixture's clock is Monday 2026-11-23 14:04:05 UTC.
class HabitsTest : public UserStoreFixture {
 protected:
  InvokeContext context(const UserScope& who, const std::string& zone, bool direct) {
    InvokeContext ctx;
    ctx.caller.user_id = who.user_id();
    ctx.caller.time_zone = zone;
    ctx.channel = "console";
    ctx.data = &who;
    ctx.services = &services_;
    ctx.direct = direct;
    return ctx;
  }
  Result<json> try_habits(const UserScope& who, const json& args, const std::string& zone = "UTC") {
    return registry_.find("habits")->invoke(context(who, zone, false), args);
  }
  json habits(const UserScope& who, const json& args, const std::string& zone = "UTC") {
    auto r = try_habits(who, args, zone);
    EXPECT_TRUE(r.ok()) << args.dump() << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : json();
  }
  // A /command as the user typed it: "/habit done read" → command("habit", "done read").
  Result<json> command(const UserScope& who, const std::string& cmd, const std::string& text,
                       const std::string& zone = "UTC") {
    Capability* cap = registry_.find_command(cmd);
    EXPECT_NE(cap, nullptr) << cmd;
    if (cap == nullptr) return fail(ErrorCode::not_found, cmd);
    auto args = cap->parse_command(cmd, text);
    if (!args) return fail(std::move(args).error());
    return cap->invoke(context(who, zone, true), *args);
  }
  int64_t add(const UserScope& who, const std::string& name, json extra = json::object(),
              const std::string& zone = "UTC") {
    extra["action"] = "add";
    extra["name"] = name;
    return habits(who, extra, zone)["habit"]["id"].get<int64_t>();
  }
  json done(const UserScope& who, const std::string& name, const std::string& day,
            const std::string& zone = "UTC") {
    return habits(who, {{"action", "log"}, {"name", name}, {"day", day}}, zone);
  }
  json skip(const UserScope& who, const std::string& name, const std::string& day,
            const std::string& reason, const std::string& zone = "UTC") {
    return habits(
        who, {{"action", "log"}, {"name", name}, {"day", day}, {"done", false}, {"reason", reason}},
        zone);
  }
  // The habit named `name` as the status shows it.
  json view(const UserScope& who, const std::string& name, const std::string& zone = "UTC") {
    const json status = habits(who, {{"action", "status"}}, zone);
    for (const auto& h : status["habits"]) {
      if (h["name"] == name) return h;
    }
    ADD_FAILURE() << name << " is not in " << status.dump();
    return json();
  }
  std::string marks(const json& view) {
    std::string out;
    for (const auto& m : view["last_14_days"]) {
      const auto w = m["mark"].get<std::string>();
      out += w == "done" ? "✓" : w == "skipped" ? "–" : w == "missed" ? "✗" : "·";
    }
    return out;
  }
  void expect_streaks(const json& view, int64_t current, int64_t longest) {
    EXPECT_EQ(view["current_streak"], current) << view.dump();
    EXPECT_EQ(view["longest_streak"], longest) << view.dump();
  }
  std::string pending_reminders(const UserScope& who, const std::string& zone) {
    InvokeContext ctx = context(who, zone, false);
    auto r = registry_.find("reminders")->invoke(ctx, {{"action", "list"}});
    EXPECT_TRUE(r.ok());
    return r.ok() ? (*r)["reminders"].dump() : "";
  }
};

// The reminder comes back: when it fires (the bot's scheduler calls rearm_habit_reminder in the
// same commit), the next scheduled day's is set at the same local time — across a DST change,
// over a weekend for a weekdays habit — and a paused habit's reminder waits for its resume.
TEST_F(HabitsTest, AFiredReminderIsSetAgainForTheNextScheduledDayAndAPauseHoldsIt) {
  const std::string berlin = "Europe/Berlin";
  // Friday 26 March 2027, 12:00 UTC; Berlin moves to summer time early on Sunday the 28th.
  clock_.set_ms(at_utc(2027, 3, 26, 12, 0));
  auto added =
      habits(*alice_, {{"action", "add"}, {"name", "floss"}, {"remind_at", "20:00"}}, berlin);
  auto work = habits(*alice_,
                     {{"action", "add"},
                      {"name", "inbox zero"},
                      {"frequency", "weekdays"},
                      {"remind_at", "08:30"}},
                     berlin);
  EXPECT_EQ(added["reminder_due_local"], "2027-03-26T20:00:00+01:00");
  // Fires the pending reminder `id` at `now` as the scheduler does; the next one's id.
  auto fire = [this](int64_t id, int64_t now) -> std::optional<int64_t> {
    auto r = store_->writes()
                 .submit(
                     [id, now](storage::Connection& conn) -> Result<storage::WriteAck> {
                       PARLEY_TRY(conn.exec(fmt::format(
                           "UPDATE reminders SET state = 'fired', fired_at = {} WHERE id = {}", now,
                           id)));
                       auto next = rearm_habit_reminder(conn, id, now);
                       if (!next) return fail(std::move(next).error());
                       return storage::WriteAck{next->value_or(0), next->has_value()};
                     },
                     {}, "fire")
                 .get();
    EXPECT_TRUE(r.ok()) << r.error().describe();
    if (!r.ok() || !r->inserted) return std::nullopt;
    return r->row_id;
  };
  auto due_local = [this](int64_t id) {
    auto conn = store_->reads().acquire();
    const int64_t due =
        *conn->query_int64(fmt::format("SELECT due_at FROM reminders WHERE id = {}", id));
    return date::format("%FT%T%Ez",
                        date::make_zoned(date::locate_zone("Europe/Berlin"),
                                         date::sys_seconds{std::chrono::seconds{due / 1000}}));
  };
  const int64_t first = added["habit"]["reminder_id"].get<int64_t>();
  // Friday 20:00 CET fires: Saturday's.
  auto second = fire(first, at_utc(2027, 3, 26, 19, 0));
  ASSERT_TRUE(second);
  EXPECT_EQ(due_local(*second), "2027-03-27T20:00:00+01:00");
  // Saturday's fires: Sunday's is at 20:00 summer time.
  auto third = fire(*second, at_utc(2027, 3, 27, 19, 0));
  ASSERT_TRUE(third);
  EXPECT_EQ(due_local(*third), "2027-03-28T20:00:00+02:00");
  EXPECT_EQ(view(*alice_, "floss", berlin)["reminder_id"], *third);
  EXPECT_EQ(fire(*second, at_utc(2027, 3, 27, 19, 0)), std::nullopt)
      << "an old reminder of the habit sets nothing";

  // The weekdays habit: added after Friday's 08:30, so its first is Monday's (summer time);
  // Monday's fires, Tuesday's is next.
  EXPECT_EQ(work["reminder_due_local"], "2027-03-29T08:30:00+02:00");
  const int64_t tuesday =
      *fire(work["habit"]["reminder_id"].get<int64_t>(), at_utc(2027, 3, 29, 6, 30));
  EXPECT_EQ(due_local(tuesday), "2027-03-30T08:30:00+02:00");

  // Paused: the pending reminder is cancelled and nothing is set; resumed: the next one.
  clock_.set_ms(at_utc(2027, 3, 28, 10, 0));
  auto paused = habits(*alice_, {{"action", "pause"}, {"name", "floss"}}, berlin);
  EXPECT_THAT(paused["text"].get<std::string>(), HasSubstr("Its reminder waits until you resume"));
  EXPECT_THAT(pending_reminders(*alice_, berlin), ::testing::Not(HasSubstr("Habit: floss")));
  clock_.set_ms(at_utc(2027, 3, 30, 19, 0));  // Tuesday 21:00 CEST: today's 20:00 has passed
  auto resumed = habits(*alice_, {{"action", "resume"}, {"name", "floss"}}, berlin);
  EXPECT_THAT(resumed["text"].get<std::string>(), HasSubstr("Its reminder is set again"));
  const int64_t back = resumed["habit"]["reminder_id"].get<int64_t>();
  EXPECT_EQ(due_local(back), "2027-03-31T20:00:00+02:00");
  EXPECT_THAT(pending_reminders(*alice_, berlin), HasSubstr("Habit: floss"));

  // A reminder of no habit sets nothing.
  auto plain = registry_.find("reminders")
                   ->invoke(context(*alice_, berlin, false),
                            {{"action", "create"}, {"when", "in 1 hour"}, {"text", "tea"}});
  ASSERT_TRUE(plain.ok()) << plain.error().describe();
  EXPECT_EQ(fire((*plain)["reminder"]["id"].get<int64_t>(), at_utc(2027, 3, 30, 20, 0)),
            std::nullopt);
}

TEST_F(HabitsTest, AddLogAndStatusWithAMissedDayASkipAndTodayOpen) {
  auto added = habits(*alice_, {{"action", "add"},
                                {"name", "  Meditate "},
                                {"target", "20 minutes"},
                                {"start", "2026-11-16"}});
  const int64_t id = added["habit"]["id"].get<int64_t>();
  EXPECT_EQ(added["habit"]["name"], "Meditate");
  EXPECT_EQ(added["habit"]["frequency"], "daily");
  EXPECT_EQ(added["habit"]["start_day"], "2026-11-16");
  EXPECT_EQ(added["text"], "Added habit #" + std::to_string(id) +
                               " Meditate (daily, 20 minutes), starting Mon 16 Nov.");

  for (const char* d : {"2026-11-16", "2026-11-17", "2026-11-18"}) done(*alice_, "meditate", d);
  auto skipped = skip(*alice_, "MEDITATE", "2026-11-19", "sick");
  EXPECT_EQ(skipped["text"],
            "– Meditate skipped on Thu 19 Nov: sick (excused). Streak 0 days (best 3).")
      << "20–22 November are not logged yet";
  done(*alice_, "Meditate", "2026-11-20");
  auto sat = done(*alice_, "Meditate", "2026-11-21");
  EXPECT_EQ(sat["longest_streak"], 5) << "the skip neither broke nor extended it";
  // Sunday 22 is missed; Monday 23 (today) is still open.

  json v = view(*alice_, "Meditate");
  expect_streaks(v, 0, 5);
  EXPECT_EQ(marks(v), "······✓✓✓–✓✓✗·");
  EXPECT_EQ(v["completion_30_days"], 83) << "5 done of 6 expected (the skip and today aside)";
  EXPECT_EQ(v["streak_unit"], "days");
  EXPECT_EQ(v["weekly_completion"].size(), 8u);
  EXPECT_EQ(v["weekly_completion"][6], 83) << "16–22 Nov";
  EXPECT_EQ(v["weekly_completion"][7], nullptr) << "this week expects nothing yet";
  EXPECT_EQ(v["sparkline"], "······▇·");
  const auto text = habits(*alice_, {{"action", "status"}})["text"].get<std::string>();
  EXPECT_THAT(text, HasSubstr("#" + std::to_string(id) +
                              " Meditate (daily, 20 minutes)\n"
                              "  ······✓✓✓–✓✓✗·  streak 0 days, best 5\n"
                              "  30 days 83% · weeks ······▇·"));

  auto today = habits(*alice_, {{"action", "log"}, {"id", id}, {"note", "felt calm"}});
  EXPECT_EQ(today["text"], "✓ Meditate done on Mon 23 Nov (today). Streak 1 day (best 5).");
  EXPECT_EQ(today["log"]["note"], "felt calm");
  EXPECT_EQ(today["replaced"], false);
  expect_streaks(view(*alice_, "Meditate"), 1, 5);
}

TEST_F(HabitsTest, TodayNotYetLoggedKeepsTheStreak) {
  add(*alice_, "stretch", {{"start", "2026-11-20"}});
  for (const char* d : {"2026-11-20", "2026-11-21", "yesterday"}) done(*alice_, "stretch", d);
  json v = view(*alice_, "stretch");
  expect_streaks(v, 3, 3);
  EXPECT_EQ(marks(v), "··········✓✓✓·");
  clock_.set_ms(at_utc(2026, 11, 24, 9, 0));  // a day later: Monday passed without a log
  expect_streaks(view(*alice_, "stretch"), 0, 3);
}

TEST_F(HabitsTest, LoggingTheSameDayAgainReplacesIt) {
  add(*alice_, "run", {{"start", "2026-11-20"}});
  done(*alice_, "run", "2026-11-22");
  auto again = skip(*alice_, "run", "2026-11-22", "rain");
  EXPECT_EQ(again["replaced"], true);
  EXPECT_THAT(again["text"].get<std::string>(),
              HasSubstr("(This replaces the earlier log of that day.)"));
  EXPECT_EQ(marks(view(*alice_, "run")), "··········✗✗–·");
  auto back = done(*alice_, "run", "2026-11-22");
  EXPECT_EQ(back["replaced"], true);
  EXPECT_EQ(marks(view(*alice_, "run")), "··········✗✗✓·");
  auto conn = store_->reads().acquire();
  auto n = conn->query_int64("SELECT count(*) FROM habit_logs");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1) << "one log per habit and day";
}

TEST_F(HabitsTest, WeekdaysAcrossAWeekend) {
  add(*alice_, "commute by bike", {{"frequency", "weekdays"}, {"start", "2026-11-16"}});
  for (const char* d : {"2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"}) {
    done(*alice_, "commute by bike", d);
  }
  // Nothing on Saturday 21 and Sunday 22: the weekend neither counts nor breaks.
  json v = view(*alice_, "commute by bike");
  expect_streaks(v, 5, 5);
  EXPECT_EQ(marks(v), "······✓✓✓✓✓···");
  EXPECT_EQ(v["streak_unit"], "weekdays");
  auto monday = done(*alice_, "commute by bike", "today");
  EXPECT_EQ(monday["current_streak"], 6);
  // A weekend log is kept but does not count.
  auto saturday = done(*alice_, "commute by bike", "saturday");
  EXPECT_EQ(saturday["current_streak"], 6);
  EXPECT_THAT(saturday["text"].get<std::string>(), HasSubstr("does not count"));

  // A missed Friday breaks it, across the weekend.
  add(*alice_, "standup notes", {{"frequency", "weekdays"}, {"start", "2026-11-16"}});
  for (const char* d : {"2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-23"}) {
    done(*alice_, "standup notes", d);
  }
  json broken = view(*alice_, "standup notes");
  expect_streaks(broken, 1, 4);
  EXPECT_EQ(marks(broken), "······✓✓✓✓✗··✓");
  EXPECT_EQ(broken["completion_30_days"], 83) << "5 of 6 weekdays";
}

TEST_F(HabitsTest, WeeklyCountsMondayToSunday) {
  add(*alice_, "swim", {{"frequency", "weekly"}, {"per_week", 3}, {"start", "2026-11-02"}});
  // Week 2–8 Nov: three; week 9–15: three, the last on Sunday 15; week 16–22: two, from Monday
  // 16. Weeks starting on Sunday would have counted 15, 16, 17 together.
  for (const char* d : {"2026-11-03", "2026-11-05", "2026-11-07", "2026-11-13", "2026-11-14",
                        "2026-11-15", "2026-11-16", "2026-11-17"}) {
    done(*alice_, "swim", d);
  }
  json v = view(*alice_, "swim");
  expect_streaks(v, 0, 2);
  EXPECT_EQ(v["streak_unit"], "weeks");
  EXPECT_EQ(marks(v), "···✓✓✓✓✓······") << "a weekly habit marks no day missed";
  EXPECT_THAT(habits(*alice_, {{"action", "status"}})["text"].get<std::string>(),
              HasSubstr("swim (3x a week)"));

  // The third of the week on Sunday 22 completes it; this week (from Monday 23) is still open.
  done(*alice_, "swim", "2026-11-22");
  v = view(*alice_, "swim");
  expect_streaks(v, 3, 3);
  EXPECT_EQ(v["weekly_completion"][7], 0) << "this week so far";
  done(*alice_, "swim", "today");
  v = view(*alice_, "swim");
  expect_streaks(v, 3, 3);
  EXPECT_EQ(v["weekly_completion"][7], 33);
  EXPECT_EQ(v["weekly_completion"][6], 100);

  // A week that ends short breaks it once it is over.
  clock_.set_ms(at_utc(2026, 11, 30, 8, 0));  // Monday 30
  expect_streaks(view(*alice_, "swim"), 0, 3);
}

TEST_F(HabitsTest, WeeklySkipsThatLeaveTooFewDaysAreExcused) {
  add(*alice_, "climb", {{"frequency", "weekly"}, {"per_week", 3}, {"start", "2026-11-09"}});
  for (const char* d : {"2026-11-09", "2026-11-11", "2026-11-13"}) done(*alice_, "climb", d);
  // 16–22: away Monday to Friday; both free days done: excused, neither broken nor extended.
  for (const char* d : {"2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"}) {
    skip(*alice_, "climb", d, "travelling");
  }
  done(*alice_, "climb", "2026-11-21");
  done(*alice_, "climb", "2026-11-22");
  expect_streaks(view(*alice_, "climb"), 1, 1);

  // One free day not done in such a week breaks it.
  add(*alice_, "yoga", {{"frequency", "weekly"}, {"per_week", 3}, {"start", "2026-11-09"}});
  for (const char* d : {"2026-11-09", "2026-11-11", "2026-11-13"}) done(*alice_, "yoga", d);
  for (const char* d : {"2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"}) {
    skip(*alice_, "yoga", d, "travelling");
  }
  done(*alice_, "yoga", "2026-11-21");
  expect_streaks(view(*alice_, "yoga"), 0, 1);
}

// Europe/Berlin springs forward on 2026-03-29 (a 23-hour day) and falls back on 2026-10-25 (a
// 25-hour day): each is one day of a streak, and "today" is the day in Berlin.
TEST_F(HabitsTest, DstDaysCountAsOneDayEach) {
  const std::string berlin = "Europe/Berlin";
  clock_.set_ms(at_utc(2026, 3, 29, 22, 30));  // 00:30 CEST on Monday 30 March; 22:30 in UTC
  add(*alice_, "read", {{"start", "2026-03-27"}}, berlin);
  for (const char* d : {"2026-03-27", "2026-03-28", "yesterday"}) done(*alice_, "read", d, berlin);
  auto today = done(*alice_, "read", "today", berlin);
  EXPECT_EQ(today["log"]["day"], "2026-03-30");
  EXPECT_EQ(today["current_streak"], 4);
  json v = view(*alice_, "read", berlin);
  expect_streaks(v, 4, 4);
  EXPECT_EQ(marks(v), "··········✓✓✓✓");
  // The same logs seen from UTC, where it is still 29 March: today (the 30th) is ahead.
  EXPECT_EQ(marks(view(*alice_, "read", "UTC")), "···········✓✓✓");

  clock_.set_ms(at_utc(2026, 10, 25, 23, 30));  // 00:30 CET on Monday 26 October
  add(*alice_, "walk", {{"start", "2026-10-23"}}, berlin);
  for (const char* d : {"2026-10-23", "2026-10-24", "2026-10-25", "today"}) {
    done(*alice_, "walk", d, berlin);
  }
  v = view(*alice_, "walk", berlin);
  expect_streaks(v, 4, 4);
  EXPECT_EQ(marks(v), "··········✓✓✓✓");
  EXPECT_EQ(v["completion_30_days"], 100);

  // Weekly across the autumn change: 19–25 October holds the 25-hour Sunday.
  add(*alice_, "sauna", {{"frequency", "weekly"}, {"per_week", 2}, {"start", "2026-10-12"}},
      berlin);
  for (const char* d : {"2026-10-17", "2026-10-18", "2026-10-24", "2026-10-25"}) {
    done(*alice_, "sauna", d, berlin);
  }
  expect_streaks(view(*alice_, "sauna", berlin), 2, 2);
}

TEST_F(HabitsTest, PauseResumeArchiveRemove) {
  const int64_t id = add(*alice_, "journal", {{"start", "2026-11-16"}});
  for (const char* d : {"2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"}) {
    done(*alice_, "journal", d);
  }
  clock_.set_ms(at_utc(2026, 11, 21, 10, 0));
  auto paused = habits(*alice_, {{"action", "pause"}, {"id", id}});
  EXPECT_THAT(paused["text"].get<std::string>(), HasSubstr("Paused #" + std::to_string(id)));
  EXPECT_EQ(paused["habit"]["status"], "paused");
  EXPECT_THAT(
      habits(*alice_, {{"action", "pause"}, {"name", "journal"}})["text"].get<std::string>(),
      HasSubstr("is already paused"));
  auto status = habits(*alice_, {{"action", "status"}});
  EXPECT_THAT(status["text"].get<std::string>(), HasSubstr("Paused: #" + std::to_string(id)));

  clock_.set_ms(at_utc(2026, 11, 25, 10, 0));  // Wednesday
  auto resumed = habits(*alice_, {{"action", "resume"}, {"name", "journal"}});
  EXPECT_EQ(resumed["excused_days"], 4) << "21–24 November";
  EXPECT_EQ(resumed["habit"]["status"], "active");
  auto today = done(*alice_, "journal", "today");
  EXPECT_EQ(today["current_streak"], 6) << "the pause broke nothing";

  auto archived = habits(*alice_, {{"action", "archive"}, {"id", id}});
  EXPECT_EQ(archived["habit"]["status"], "archived");
  auto hidden = habits(*alice_, {{"action", "status"}});
  EXPECT_TRUE(hidden["habits"].empty());
  EXPECT_EQ(hidden["text"], "You have no active habits; add one with /habits add NAME.");
  EXPECT_THAT(habits(*alice_, {{"action", "list"}})["text"].get<std::string>(),
              HasSubstr("Archived: #" + std::to_string(id) + " journal"));
  auto refused = try_habits(*alice_, {{"action", "log"}, {"id", id}});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "habits: 'journal' is archived; resume it first");

  auto removed = habits(*alice_, {{"action", "remove"}, {"id", id}});
  EXPECT_EQ(removed["text"], "Removed habit #" + std::to_string(id) + " journal and its 10 logs.");
  auto gone = try_habits(*alice_, {{"action", "remove"}, {"id", id}});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::not_found);
  auto conn = store_->reads().acquire();
  EXPECT_EQ(*conn->query_int64("SELECT count(*) FROM habit_logs"), 0);
}

TEST_F(HabitsTest, ARemindAtSetsAPendingReminderForTheNextScheduledDay) {
  const std::string berlin = "Europe/Berlin";  // 15:04 CET now
  auto added =
      habits(*alice_, {{"action", "add"}, {"name", "floss"}, {"remind_at", "20:00"}}, berlin);
  ASSERT_TRUE(added["habit"]["reminder_id"].is_number());
  EXPECT_EQ(added["reminder_due_local"], "2026-11-23T20:00:00+01:00");
  EXPECT_THAT(added["text"].get<std::string>(),
              HasSubstr("set for Mon 23 Nov 2026 20:00 (Europe/Berlin)"));
  EXPECT_THAT(pending_reminders(*alice_, berlin), HasSubstr("Habit: floss"));

  // 09:00 has passed today: tomorrow. A weekdays habit added on a Saturday: Monday.
  auto morning =
      habits(*alice_, {{"action", "add"}, {"name", "vitamins"}, {"remind_at", "9am"}}, berlin);
  EXPECT_EQ(morning["reminder_due_local"], "2026-11-24T09:00:00+01:00");
  clock_.set_ms(at_utc(2026, 11, 28, 12, 0));
  auto weekdays = habits(*alice_,
                         {{"action", "add"},
                          {"name", "inbox zero"},
                          {"frequency", "weekdays"},
                          {"remind_at", "08:30"}},
                         berlin);
  EXPECT_EQ(weekdays["reminder_due_local"], "2026-11-30T08:30:00+01:00");

  // Removing (or archiving) the habit cancels its reminder.
  const auto floss = added["habit"]["id"].get<int64_t>();
  auto removed = habits(*alice_, {{"action", "remove"}, {"id", floss}}, berlin);
  EXPECT_THAT(removed["text"].get<std::string>(), HasSubstr("Its reminder is cancelled."));
  EXPECT_THAT(pending_reminders(*alice_, berlin), ::testing::Not(HasSubstr("Habit: floss")));

  auto bad = try_habits(*alice_, {{"action", "add"}, {"name", "x"}, {"remind_at", "tomorrow"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);
  EXPECT_THAT(bad.error().message, HasSubstr("habits: \"remind_at\" 'tomorrow' is not a time"));
  auto conn = store_->reads().acquire();
  EXPECT_EQ(*conn->query_int64("SELECT count(*) FROM habits WHERE name = 'x'"), 0);
}

TEST_F(HabitsTest, BadInputIsRefusedWithClearErrors) {
  add(*alice_, "Read", {{"start", "2026-11-20"}});
  const auto error = [&](const json& args) {
    auto r = try_habits(*alice_, args);
    EXPECT_FALSE(r.ok()) << args.dump();
    return r.ok() ? Error{} : r.error();
  };
  Error e = error({{"action", "log"}, {"name", "nope"}});
  EXPECT_EQ(e.code, ErrorCode::not_found);
  EXPECT_EQ(e.message, "habits: you have no habit named 'nope'");
  e = error({{"action", "log"}, {"id", 999}});
  EXPECT_EQ(e.message, "habits: you have no habit #999");
  e = error({{"action", "log"}, {"name", "read"}, {"done", false}});
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
  EXPECT_EQ(e.message, "habits: a skip (done false) needs a \"reason\"");
  e = error({{"action", "log"}, {"name", "read"}, {"reason", "tired"}});
  EXPECT_THAT(e.message, HasSubstr("\"reason\" is for a skip"));
  e = error({{"action", "add"}, {"name", "swim"}, {"frequency", "weekly"}, {"per_week", 8}});
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
  EXPECT_THAT(e.message, HasSubstr("per_week"));
  e = error({{"action", "add"}, {"name", "swim"}, {"per_week", 2}});
  EXPECT_EQ(e.message, "habits: \"per_week\" goes with frequency weekly, not daily");
  e = error({{"action", "add"}, {"name", "READ"}});
  EXPECT_THAT(e.message, HasSubstr("you already have a habit named 'Read'"));
  e = error({{"action", "add"}, {"name", "   "}});
  EXPECT_EQ(e.message, "habits: add needs the habit's \"name\"");
  e = error({{"action", "add"}, {"name", "swim"}, {"start", "someday"}});
  EXPECT_THAT(e.message, HasSubstr("habits: could not read the day 'someday'"));
  e = error({{"action", "log"}, {"name", "read"}, {"day", "tomorrow"}});
  EXPECT_EQ(e.message, "habits: 2026-11-24 is in the future; only a skip can be logged ahead");
  e = error({{"action", "log"}, {"name", "read"}, {"day", "2026-11-19"}});
  EXPECT_EQ(e.message, "habits: 2026-11-19 is before 'Read' started (2026-11-20)");
  e = error({{"action", "log"}});
  EXPECT_EQ(e.message, "habits: log needs the habit's \"id\" or \"name\"");
  e = error({{"action", "pause"}});
  EXPECT_EQ(e.message, "habits: pause needs the habit's \"id\" or \"name\"");
  e = error({{"action", "status"}, {"colour", "red"}});
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
  // Nothing was half-written.
  auto v = view(*alice_, "Read");
  EXPECT_EQ(marks(v), "··········✗✗✗·");
  EXPECT_EQ(habits(*alice_, {{"action", "list"}})["habits"].size(), 1u);
}

TEST_F(HabitsTest, UsersAreIsolated) {
  const int64_t id = add(*alice_, "piano", {{"start", "2026-11-20"}});
  done(*alice_, "piano", "2026-11-21");
  for (const json& args :
       {json{{"action", "log"}, {"id", id}}, json{{"action", "pause"}, {"id", id}},
        json{{"action", "resume"}, {"id", id}}, json{{"action", "archive"}, {"id", id}},
        json{{"action", "remove"}, {"id", id}}}) {
    auto theirs = try_habits(*bob_, args);
    ASSERT_FALSE(theirs.ok()) << args.dump();
    EXPECT_EQ(theirs.error().code, ErrorCode::not_found);
    EXPECT_EQ(theirs.error().message, "habits: you have no habit #" + std::to_string(id))
        << "the same answer as a missing one";
  }
  auto by_name = try_habits(*bob_, {{"action", "log"}, {"name", "piano"}});
  ASSERT_FALSE(by_name.ok());
  EXPECT_EQ(by_name.error().message, "habits: you have no habit named 'piano'");
  EXPECT_EQ(habits(*bob_, {{"action", "status"}})["text"],
            "You have no active habits; add one with /habits add NAME.");
  // Bob may have his own habit of the same name, with its own logs.
  const int64_t his = add(*bob_, "Piano", {{"start", "2026-11-20"}});
  EXPECT_NE(his, id);
  done(*bob_, "piano", "2026-11-22");
  EXPECT_EQ(marks(view(*alice_, "piano")), "··········✗✓✗·");
  EXPECT_EQ(marks(view(*bob_, "Piano")), "··········✗✗✓·");
  EXPECT_EQ(view(*alice_, "piano")["status"], "active");
}

TEST_F(HabitsTest, Commands) {
  auto r = command(*alice_, "habits", "add read a book 3x/week");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["habit"]["name"], "read a book");
  EXPECT_EQ((*r)["habit"]["frequency"], "weekly");
  EXPECT_EQ((*r)["habit"]["per_week"], 3);
  r = command(*alice_, "habits", "add walk the dog");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["habit"]["name"], "walk the dog");
  EXPECT_EQ((*r)["habit"]["frequency"], "daily");
  r = command(*alice_, "habits", "add floss weekdays");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["habit"]["frequency"], "weekdays");

  r = command(*alice_, "habit", "done walk the dog");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["log"]["day"], "2026-11-23");
  r = command(*alice_, "habit", "skip read a book travelling all week");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["habit"]["name"], "read a book");
  EXPECT_EQ((*r)["log"]["reason"], "travelling all week");
  r = command(*alice_, "habit", "skip walk the dog: rain");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["log"]["reason"], "rain");
  EXPECT_EQ((*r)["replaced"], true);
  r = command(*alice_, "habit", "skip \"floss\" dentist said rest");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["log"]["reason"], "dentist said rest");

  r = command(*alice_, "habits", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["habits"].size(), 3u);
  EXPECT_TRUE(chart_reader::png_of(*r, "habits-35-days.png")) << "/habits comes with its chart";
  EXPECT_THAT((*r)["text"].get<std::string>(), HasSubstr("Your habits, the last 14 days"));
  const auto floss = (*r)["habits"][2]["id"].get<int64_t>();
  r = command(*alice_, "habits", "pause #" + std::to_string(floss));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["habit"]["status"], "paused");
  r = command(*alice_, "habits", "resume floss");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["habit"]["status"], "active");
  r = command(*alice_, "habits", "archive walk the dog");
  ASSERT_TRUE(r.ok());
  r = command(*alice_, "habits", "remove " + std::to_string(floss));
  ASSERT_TRUE(r.ok());
  EXPECT_THAT((*r)["text"].get<std::string>(), HasSubstr("Removed habit"));

  clock_.set_ms(at_utc(2026, 11, 25, 9, 0));
  r = command(*alice_, "habit", "done read a book yesterday");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["habit"]["name"], "read a book");
  EXPECT_EQ((*r)["log"]["day"], "2026-11-24");
  r = command(*alice_, "habit", "done read a book 2026-11-23");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["log"]["day"], "2026-11-23");

  for (const auto& [cmd, text] : std::vector<std::pair<std::string, std::string>>{
           {"habit", ""}, {"habit", "skip read"}, {"habits", "add"}, {"habits", "frobnicate"}}) {
    auto bad = command(*alice_, cmd, text);
    ASSERT_FALSE(bad.ok()) << cmd << " " << text;
    EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);
    EXPECT_THAT(bad.error().message, HasSubstr("habits: "));
  }
  auto too_many = command(*alice_, "habits", "add swim 8x/week");
  ASSERT_FALSE(too_many.ok());
  EXPECT_THAT(too_many.error().message, HasSubstr("'8x/week': a week has 1 to 7 days"));
}

// The day 2026-10-20 + `offset` (the chart's first column is 20 October when today is 23 Nov).
std::string chart_day(int offset) {
  const auto d =
      std::chrono::sys_days{std::chrono::year{2026} / 10 / 20} + std::chrono::days{offset};
  const std::chrono::year_month_day ymd{d};
  return fmt::format("{}-{:02}-{:02}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

// The calendar of the last 35 days: each cell read back from the PNG's pixels is the state the
// answer's "chart" gives, which is the capability's own mark for the day (the last 14 days of
// each habit's view), and what was logged: done, skipped, missed, not due (before the start, a
// weekend of a weekdays habit, a day of a weekly one), open (today, not logged yet).
TEST_F(HabitsTest, CalendarChartReadsBackAsTheMarks) {
  // "read": daily since before the window; a skip every week, a day missed every five.
  add(*alice_, "read", {{"start", "2026-10-10"}});
  std::string read_cells;
  for (int c = 0; c < 34; ++c) {
    if (c % 7 == 3) {
      skip(*alice_, "read", chart_day(c), "sick");
      read_cells += 'S';
    } else if (c % 5 == 4) {
      read_cells += 'M';
    } else {
      done(*alice_, "read", chart_day(c));
      read_cells += 'D';
    }
  }
  read_cells += 'O';
  add(*alice_, "gym", {{"frequency", "weekly"}, {"per_week", 3}, {"start", "2026-11-02"}});
  for (const char* d : {"2026-11-03", "2026-11-05", "2026-11-06", "2026-11-10", "2026-11-17",
                        "2026-11-18", "2026-11-19"}) {
    done(*alice_, "gym", d);
  }
  add(*alice_, "floss", {{"frequency", "weekdays"}, {"start", "2026-11-10"}});
  for (const char* d : {"2026-11-10", "2026-11-11", "2026-11-12", "2026-11-17", "2026-11-18",
                        "2026-11-19", "2026-11-20", "today"}) {
    done(*alice_, "floss", d);
  }
  skip(*alice_, "floss", "2026-11-16", "dentist");
  const std::string odd_name = "Tom & Jerry's <b>\"best\"</b>";
  add(*alice_, odd_name, {{"start", "2026-11-20"}});
  done(*alice_, odd_name, "2026-11-21");
  skip(*alice_, odd_name, "2026-11-22", "away");
  add(*alice_, "paused one", {{"start", "2026-11-01"}});
  habits(*alice_, {{"action", "pause"}, {"name", "paused one"}});

  const json status = habits(*alice_, {{"action", "status"}, {"chart", true}});
  EXPECT_FALSE(status.contains("chart_error"));
  const json& chart = status["chart"];
  EXPECT_EQ(chart["from"], "2026-10-20");
  EXPECT_EQ(chart["to"], "2026-11-23");
  ASSERT_EQ(chart["days"].size(), 35u);
  EXPECT_EQ(chart["days"][0], "2026-10-20");
  EXPECT_EQ(chart["days"][34], "2026-11-23");
  const std::vector<std::pair<std::string, std::string>> expected{
      {"read", read_cells},
      {"gym",
       "NNNNNNNNNNNNN"
       "NDNDDNNNDNNNNNNDDDNNNO"},
      {"floss",
       "NNNNNNNNNNNNNNNNNNNNN"
       "DDDMNNSDDDDNND"},
      {odd_name,
       "NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN"
       "MDSO"},
  };
  ASSERT_EQ(chart["habits"].size(), expected.size()) << "active habits only";
  const auto letter = [](const std::string& state) {
    return state == "done"      ? 'D'
           : state == "skipped" ? 'S'
           : state == "missed"  ? 'M'
           : state == "open"    ? 'O'
           : state == "not_due" ? 'N'
                                : '?';
  };
  for (size_t r = 0; r < expected.size(); ++r) {
    const json& row = chart["habits"][r];
    EXPECT_EQ(row["name"], expected[r].first);
    EXPECT_EQ(row["id"], status["habits"][r]["id"]);
    std::string cells;
    for (const auto& c : row["cells"]) cells += letter(c.get<std::string>());
    EXPECT_EQ(cells, expected[r].second) << expected[r].first;
  }

  const auto png = chart_reader::png_of(status, "habits-35-days.png");
  ASSERT_TRUE(png);
  EXPECT_EQ(chart_reader::png_header_size(*png),
            (std::pair{builtins::kChartWidth, builtins::habit_chart::height(expected.size())}));
  const auto picture = chart_reader::Picture::decode(*png);
  ASSERT_TRUE(picture);
  for (size_t r = 0; r < expected.size(); ++r) {
    const json& row = chart["habits"][r];
    const json& marks = status["habits"][r]["last_14_days"];
    ASSERT_EQ(marks.size(), 14u);
    for (size_t c = 0; c < 35; ++c) {
      const auto state = row["cells"][c].get<std::string>();
      const auto read = chart_reader::read_cell(*picture, r, c);
      ASSERT_TRUE(read) << expected[r].first << " " << chart["days"][c];
      EXPECT_EQ(builtins::to_string(*read), state) << expected[r].first << " " << chart["days"][c];
      if (c < 21) continue;
      // The capability's own mark of the day: "none" is a cell not due, or today still open.
      const json& mark = marks[c - 21];
      EXPECT_EQ(mark["day"], chart["days"][c]);
      const auto word = mark["mark"].get<std::string>();
      if (word == "none") {
        EXPECT_TRUE(*read == builtins::HabitCell::not_due || *read == builtins::HabitCell::open)
            << state;
      } else {
        EXPECT_EQ(builtins::to_string(*read), word) << expected[r].first << " " << mark["day"];
      }
    }
  }
}

TEST_F(HabitsTest, ChartOnlyWhereItBelongsAndNothingToDrawWithoutActiveHabits) {
  const json none = habits(*bob_, {{"action", "status"}, {"chart", true}});
  EXPECT_EQ(none["chart"], nullptr);
  EXPECT_EQ(none["chart_note"], "nothing to draw: no active habits");
  EXPECT_FALSE(none.contains("attachments"));
  EXPECT_EQ(none["text"], "You have no active habits; add one with /habits add NAME.");

  add(*alice_, "read");
  EXPECT_FALSE(habits(*alice_, {{"action", "status"}}).contains("chart"))
      << "a tool call without \"chart\" gets no picture";
  EXPECT_TRUE(chart_reader::png_of(habits(*alice_, {{"action", "list"}, {"chart", true}}),
                                   "habits-35-days.png"));
  auto r = try_habits(*alice_, {{"action", "log"}, {"name", "read"}, {"chart", true}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().message, "habits: log does not take \"chart\" (status and list do)");
  r = try_habits(*alice_, {{"action", "status"}, {"chart", 1}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("arguments.chart"));
  Capability* cap = registry_.find_command("habits");
  EXPECT_EQ(*cap->parse_command("habits", ""), (json{{"action", "status"}, {"chart", true}}));
  EXPECT_EQ(*cap->parse_command("habits", "list"), (json{{"action", "list"}}));
}

// Found by schema_args_fuzz: "/habits add read 38/week" became per_week 38, which the schema
// refused as "arguments.per_week: 38 is above the maximum 7". The command says so itself.
TEST_F(HabitsTest, ACommandsTimesAWeekAreOneToSeven) {
  Capability* cap = registry_.find_command("habits");
  for (const char* text : {"add read 38/week", "add read 0x/week", "add read 8x"}) {
    const auto r = cap->parse_command("habits", text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_THAT(r.error().message, HasSubstr("a week has 1 to 7 days; usage: ")) << text;
  }
  EXPECT_EQ((*cap->parse_command("habits", "add read 7x/week"))["per_week"], 7);
}

TEST_F(HabitsTest, NothingWithoutStorage) {
  auto r = call("habits", nullptr, {{"action", "status"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
}

}  // namespace habits_test
}  // namespace parley::capabilities
