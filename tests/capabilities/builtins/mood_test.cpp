// mood: log (scores, tags, trigger, activity, when in the caller's zone), a day's logs and
// averages, the week (per-day averages, sparkline, averages over days, change against the week
// before) and the month, remove; a DST week in which every day counts once, and late-evening
// logs on their local day; per-user isolation; argument errors; the /mood command forms; the
// chart of the month (and week), read back from its PNG's pixels as the days' averages.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "capabilities/builtins/chart_reader.h"
#include "capabilities/builtins/user_store_fixture.h"

namespace parley::capabilities {
namespace mood_test {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// Characters (UTF-8 code points) in `s`.
size_t code_points(const std::string& s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

class MoodTest : public UserStoreFixture {
 protected:
  Result<json> try_mood(const UserScope& who, const json& args, const std::string& zone = "UTC") {
    InvokeContext ctx;
    ctx.caller.user_id = who.user_id();
    ctx.caller.time_zone = zone;
    ctx.data = &who;
    ctx.services = &services_;
    return registry_.find("mood")->invoke(ctx, args);
  }
  json mood(const UserScope& who, const json& args, const std::string& zone = "UTC") {
    auto r = try_mood(who, args, zone);
    EXPECT_TRUE(r.ok()) << args.dump() << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : json();
  }
  int64_t log(const UserScope& who, int value, const std::string& when = "",
              json extra = json::object(), const std::string& zone = "UTC") {
    extra["action"] = "log";
    extra["mood"] = value;
    if (!when.empty()) extra["when"] = when;
    return mood(who, extra, zone)["log"]["id"].get<int64_t>();
  }
};

TEST_F(MoodTest, LogTodayAndRemove) {
  const std::string berlin = "Europe/Berlin";  // 15:04 on Mon 23 Nov there
  auto first = mood(*alice_,
                    {{"action", "log"},
                     {"mood", 7},
                     {"energy", 4},
                     {"stress", 6},
                     {"anxiety", 3},
                     {"tags", {"Work", "#work", "team lead"}},
                     {"trigger", " long meeting "},
                     {"activity", "working"}},
                    berlin);
  const int64_t id = first["log"]["id"].get<int64_t>();
  const std::string n = std::to_string(id);
  EXPECT_EQ(first["log"]["day"], "2026-11-23");
  EXPECT_EQ(first["log"]["at_local"], "2026-11-23T15:04:05+01:00");
  EXPECT_EQ(first["log"]["tags"], (json{"work", "team-lead"}));
  EXPECT_EQ(first["log"]["trigger"], "long meeting");
  EXPECT_EQ(first["log"]["anxiety"], 3);
  EXPECT_EQ(first["text"], "Logged #" + n +
                               " for Mon 23 Nov 2026 15:04: mood 7, energy 4, stress 6, anxiety 3 "
                               "— long meeting (working) #work #team-lead.");
  auto second = mood(*alice_, {{"action", "log"}, {"mood", 5}, {"when", "09:30"}}, berlin);
  const int64_t early = second["log"]["id"].get<int64_t>();
  EXPECT_EQ(second["log"]["at"], "2026-11-23T08:30:00Z") << "today's 09:30, already past";
  EXPECT_EQ(second["log"]["energy"], nullptr);
  EXPECT_EQ(second["day"], (json{{"day", "2026-11-23"}, {"mood", 6.0}, {"logs", 2}}));
  EXPECT_THAT(second["text"].get<std::string>(),
              HasSubstr(" Mon 23 Nov: mood 6.0 on average over 2 logs."));

  auto today = mood(*alice_, {{"action", "today"}}, berlin);
  EXPECT_EQ(today["count"], 2);
  EXPECT_EQ(today["average"],
            (json{{"mood", 6.0}, {"energy", 4.0}, {"stress", 6.0}, {"anxiety", 3.0}}));
  ASSERT_EQ(today["logs"].size(), 2u);
  EXPECT_EQ(today["logs"][0]["id"], early) << "in the order of the day";
  EXPECT_EQ(today["text"], "Your mood today (Europe/Berlin):\n#" + std::to_string(early) +
                               " 09:30 mood 5\n#" + n +
                               " 15:04 mood 7, energy 4, stress 6, anxiety 3 — long meeting "
                               "(working) #work #team-lead\nAverage: mood 6.0, energy 4.0, "
                               "stress 6.0, anxiety 3.0 (2 logs)");
  EXPECT_EQ(mood(*alice_, {{"action", "today"}, {"day", "yesterday"}}, berlin)["text"],
            "No mood logged on Sun 22 Nov.");

  auto removed = mood(*alice_, {{"action", "remove"}, {"id", id}}, berlin);
  EXPECT_EQ(removed["text"], "Removed mood log #" + n +
                                 " (Mon 23 Nov 2026 15:04: mood 7, energy 4, stress 6, anxiety 3 "
                                 "— long meeting (working) #work #team-lead).");
  auto after = mood(*alice_, {{"action", "today"}}, berlin);
  EXPECT_EQ(after["count"], 1);
  EXPECT_EQ(after["average"]["energy"], nullptr);
  auto again = try_mood(*alice_, {{"action", "remove"}, {"id", id}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::not_found);
  EXPECT_EQ(again.error().message, "mood: you have no mood log #" + n);
}

TEST_F(MoodTest, WeekPerDayAveragesSparklineAndChange) {
  // The week is Tue 17 – Mon 23 Nov (UTC), the week before 10 – 16 Nov.
  log(*alice_, 4, "2026-11-17 08:00", {{"energy", 5}});
  log(*alice_, 6, "2026-11-17 20:00");
  log(*alice_, 8, "2026-11-19");
  log(*alice_, 2, "2026-11-20", {{"stress", 9}});
  log(*alice_, 10, "2026-11-22 08:00");
  log(*alice_, 9, "2026-11-22 12:00");
  log(*alice_, 8, "2026-11-22 18:00");
  log(*alice_, 7);
  log(*alice_, 3, "2026-11-12");
  log(*alice_, 5, "2026-11-15");
  log(*alice_, 1, "2026-11-09");  // before both weeks

  auto week = mood(*alice_, {{"action", "week"}});
  EXPECT_EQ(week["period"], "week");
  EXPECT_EQ(week["from"], "2026-11-17");
  EXPECT_EQ(week["to"], "2026-11-23");
  ASSERT_EQ(week["days"].size(), 7u);
  EXPECT_EQ(week["days"][0], (json{{"day", "2026-11-17"},
                                   {"logs", 2},
                                   {"mood", 5.0},
                                   {"energy", 5.0},
                                   {"stress", nullptr},
                                   {"anxiety", nullptr}}));
  EXPECT_EQ(week["days"][1]["logs"], 0);
  EXPECT_EQ(week["days"][1]["mood"], nullptr);
  EXPECT_EQ(week["days"][5]["mood"], 9.0);
  EXPECT_EQ(week["days"][5]["logs"], 3);
  EXPECT_EQ(week["days"][6]["mood"], 7.0);
  EXPECT_EQ(week["sparkline"], "▄·▆▂·▇▆");
  EXPECT_EQ(week["average"]["mood"], 6.2) << "(5 + 8 + 2 + 9 + 7) / 5: each day once";
  EXPECT_EQ(week["average"]["energy"], 5.0);
  EXPECT_EQ(week["average"]["stress"], 9.0);
  EXPECT_EQ(week["average"]["anxiety"], nullptr);
  EXPECT_EQ(week["days_logged"], 5);
  EXPECT_EQ(week["logs"], 8);
  EXPECT_EQ(week["previous"]["from"], "2026-11-10");
  EXPECT_EQ(week["previous"]["to"], "2026-11-16");
  EXPECT_EQ(week["previous"]["average"]["mood"], 4.0);
  EXPECT_EQ(week["previous"]["days_logged"], 2);
  EXPECT_NEAR(week["change"]["mood"].get<double>(), 2.2, 1e-9);
  EXPECT_EQ(week["text"],
            "Your mood, Tue 17 Nov – Mon 23 Nov (UTC):\n"
            "Tue 17 Nov ▄ 5.0, energy 5.0 (2 logs)\n"
            "Wed 18 Nov · no log\n"
            "Thu 19 Nov ▆ 8.0 (1 log)\n"
            "Fri 20 Nov ▂ 2.0, stress 9.0 (1 log)\n"
            "Sat 21 Nov · no log\n"
            "Sun 22 Nov ▇ 9.0 (3 logs)\n"
            "Mon 23 Nov ▆ 7.0 (1 log)\n"
            "▄·▆▂·▇▆ mood 6.2, energy 5.0, stress 9.0 (logged on 5 of 7 days, 8 logs)\n"
            "Mood +2.2 against the week before (4.0)");

  // The chart's numbers are the query's: every day's average is what its logs give.
  double sum = 0;
  int days = 0;
  for (const auto& d : week["days"]) {
    if (d["mood"].is_null()) continue;
    sum += d["mood"].get<double>();
    ++days;
  }
  EXPECT_DOUBLE_EQ(sum / days, week["average"]["mood"].get<double>());
}

TEST_F(MoodTest, MonthIsThirtyDays) {
  log(*alice_, 8);
  log(*alice_, 4, "29 days ago");
  log(*alice_, 6, "30 days ago");  // the 30 days before
  auto month = mood(*alice_, {{"action", "month"}});
  EXPECT_EQ(month["period"], "month");
  EXPECT_EQ(month["from"], "2026-10-25");
  EXPECT_EQ(month["to"], "2026-11-23");
  EXPECT_EQ(month["days"].size(), 30u);
  EXPECT_EQ(code_points(month["sparkline"].get<std::string>()), 30u);
  EXPECT_EQ(month["sparkline"].get<std::string>().rfind("▃", 0), 0u);
  EXPECT_EQ(month["average"]["mood"], 6.0);
  EXPECT_EQ(month["days_logged"], 2);
  EXPECT_EQ(month["previous"]["average"]["mood"], 6.0);
  EXPECT_EQ(month["change"]["mood"], 0.0);
  const auto text = month["text"].get<std::string>();
  EXPECT_THAT(text, HasSubstr("Your mood, Sun 25 Oct – Mon 23 Nov (UTC):\n▃"));
  EXPECT_THAT(text, HasSubstr(" mood 6.0 (logged on 2 of 30 days, 2 logs)"));
  EXPECT_THAT(text, HasSubstr("Mood +0.0 against the 30 days before (6.0)"));
  EXPECT_THAT(text, Not(HasSubstr("no log"))) << "no line per day for a month";

  EXPECT_THAT(mood(*bob_, {{"action", "month"}})["text"].get<std::string>(),
              HasSubstr("No mood logged in the last 30 days."));
  log(*bob_, 5);
  EXPECT_THAT(mood(*bob_, {{"action", "week"}})["text"].get<std::string>(),
              HasSubstr("Nothing logged the week before to compare with."));
}

// Berlin's spring change (Sun 29 Mar 2026 has 23 hours): a log each late evening lands on its
// local day, and every day of the week counts once.
TEST_F(MoodTest, DstWeekEveryDayCountsOnce) {
  const std::string berlin = "Europe/Berlin";
  clock_.set_ms(1'775'037'600'000);  // 2026-04-01T10:00:00Z, 12:00 CEST on Wed 1 Apr
  const auto at = [&](const json& answer) { return answer["log"]["at"].get<std::string>(); };
  const auto log_at = [&](int value, const std::string& when) {
    return mood(*alice_, {{"action", "log"}, {"mood", value}, {"when", when}}, berlin);
  };
  log_at(2, "2026-03-26 23:30");
  log_at(4, "2026-03-27 23:30");
  auto sat = log_at(6, "2026-03-28 23:30");
  EXPECT_EQ(at(sat), "2026-03-28T22:30:00Z");
  EXPECT_EQ(sat["log"]["day"], "2026-03-28");
  auto sun = log_at(8, "2026-03-29 23:30");
  EXPECT_EQ(at(sun), "2026-03-29T21:30:00Z");
  EXPECT_EQ(sun["log"]["day"], "2026-03-29");
  auto gap = log_at(4, "2026-03-29 02:30");  // a time the change skips
  EXPECT_EQ(gap["log"]["day"], "2026-03-29");
  auto mon = log_at(10, "2026-03-30 00:30");
  EXPECT_EQ(at(mon), "2026-03-29T22:30:00Z") << "still the 29th in UTC";
  EXPECT_EQ(mon["log"]["day"], "2026-03-30");
  log_at(5, "2026-03-31 23:30");
  log_at(3, "today");
  log_at(9, "2026-03-25 23:30");  // the week before

  auto week = mood(*alice_, {{"action", "week"}}, berlin);
  EXPECT_EQ(week["from"], "2026-03-26");
  EXPECT_EQ(week["to"], "2026-04-01");
  ASSERT_EQ(week["days"].size(), 7u);
  const std::vector<std::string> days{"2026-03-26", "2026-03-27", "2026-03-28", "2026-03-29",
                                      "2026-03-30", "2026-03-31", "2026-04-01"};
  const std::vector<double> means{2, 4, 6, 6, 10, 5, 3};
  for (size_t i = 0; i < days.size(); ++i) {
    EXPECT_EQ(week["days"][i]["day"], days[i]);
    EXPECT_EQ(week["days"][i]["mood"], means[i]) << days[i];
    EXPECT_EQ(week["days"][i]["logs"], days[i] == "2026-03-29" ? 2 : 1) << days[i];
  }
  EXPECT_EQ(week["days_logged"], 7);
  EXPECT_EQ(week["logs"], 8);
  EXPECT_DOUBLE_EQ(week["average"]["mood"].get<double>(), 36.0 / 7);
  EXPECT_EQ(week["previous"]["average"]["mood"], 9.0);
  EXPECT_EQ(code_points(week["sparkline"].get<std::string>()), 7u);
  EXPECT_THAT(week["text"].get<std::string>(), HasSubstr("\nSun 29 Mar ▅ 6.0 (2 logs)\n"));

  // The same logs seen from UTC fall on UTC days: the zone decides at the time of writing only
  // (days are stored), so a caller now in UTC sees the days as they were written.
  EXPECT_EQ(mood(*alice_, {{"action", "today"}, {"day", "2026-03-30"}}, "UTC")["count"], 1);
}

TEST_F(MoodTest, LateEveningLogLandsOnItsLocalDay) {
  const std::string ny = "America/New_York";
  clock_.set_ms(1'795'408'200'000);  // 2026-11-23T04:30:00Z, 23:30 on Sun 22 Nov in New York
  auto logged = mood(*alice_, {{"action", "log"}, {"mood", 6}}, ny);
  EXPECT_EQ(logged["log"]["day"], "2026-11-22");
  EXPECT_EQ(logged["log"]["at_local"], "2026-11-22T23:30:00-05:00");
  EXPECT_EQ(mood(*alice_, {{"action", "today"}}, ny)["count"], 1);
  EXPECT_EQ(mood(*alice_, {{"action", "today"}}, "UTC")["count"], 0) << "the 23rd in UTC";
  auto week = mood(*alice_, {{"action", "week"}}, ny);
  EXPECT_EQ(week["to"], "2026-11-22");
  EXPECT_EQ(week["days"][6]["mood"], 6.0);

  clock_.set_ms(1'795'442'645'000);  // 09:04 on Mon 23 Nov in New York
  auto last_night = mood(*alice_, {{"action", "log"}, {"mood", 4}, {"when", "23:30"}}, ny);
  EXPECT_EQ(last_night["log"]["day"], "2026-11-22") << "the latest 23:30";
}

TEST_F(MoodTest, UsersCannotReachEachOthersLogs) {
  const int64_t a1 = log(*alice_, 9, "", {{"trigger", "alice's secret"}});
  const int64_t b1 = log(*bob_, 2);
  const int64_t a2 = log(*alice_, 8);

  auto bob_today = mood(*bob_, {{"action", "today"}});
  EXPECT_EQ(bob_today["count"], 1);
  EXPECT_THAT(bob_today["text"].get<std::string>(), Not(HasSubstr("secret")));
  auto bob_week = mood(*bob_, {{"action", "week"}});
  EXPECT_EQ(bob_week["average"]["mood"], 2.0);
  EXPECT_EQ(bob_week["logs"], 1);
  for (int64_t id = 1; id <= a2 + 2; ++id) {
    if (id == b1) continue;
    auto r = try_mood(*bob_, {{"action", "remove"}, {"id", id}});
    ASSERT_FALSE(r.ok()) << id;
    EXPECT_EQ(r.error().code, ErrorCode::not_found);
    EXPECT_EQ(r.error().message, "mood: you have no mood log #" + std::to_string(id));
  }
  auto alice_today = mood(*alice_, {{"action", "today"}});
  EXPECT_EQ(alice_today["count"], 2);
  EXPECT_EQ(alice_today["logs"][0]["id"], a1);
  EXPECT_EQ(mood(*alice_, {{"action", "week"}})["average"]["mood"], 8.5);
}

TEST_F(MoodTest, ArgumentErrors) {
  struct Case {
    json args;
    std::string says;
  };
  for (const auto& c : {
           Case{{{"action", "log"}}, "mood: log needs \"mood\", a whole number from 1"},
           Case{{{"action", "log"}, {"mood", 11}}, "arguments.mood"},
           Case{{{"action", "log"}, {"mood", 0}}, "arguments.mood"},
           Case{{{"action", "log"}, {"mood", 7.5}}, "arguments.mood"},
           Case{{{"action", "log"}, {"mood", "7"}}, "arguments.mood"},
           Case{{{"action", "log"}, {"mood", 7}, {"energy", 11}}, "arguments.energy"},
           Case{{{"action", "log"}, {"mood", 7}, {"anxiety", 0}}, "arguments.anxiety"},
           Case{{{"action", "log"}, {"mood", 7}, {"trigger", std::string(301, 'x')}},
                "arguments.trigger"},
           Case{{{"action", "log"}, {"mood", 7}, {"tags", {"#"}}},
                "mood: tag '#' has no word in it"},
           Case{{{"action", "log"}, {"mood", 7}, {"when", "tomorrow"}}, "is in the future"},
           Case{{{"action", "log"}, {"mood", 7}, {"when", "in 2 hours"}}, "is in the future"},
           Case{{{"action", "log"}, {"mood", 7}, {"when", "soonish"}},
                "mood: could not read \"when\" 'soonish'"},
           Case{{{"action", "log"}, {"mood", 7}, {"id", 3}},
                "mood: log does not take \"id\" (it takes: mood, energy"},
           Case{{{"action", "today"}, {"id", 3}},
                "mood: today does not take \"id\" (it takes: day)"},
           Case{{{"action", "week"}, {"day", "today"}},
                "mood: week does not take \"day\" (it takes: chart)"},
           Case{{{"action", "today"}, {"chart", true}},
                "mood: today does not take \"chart\" (it takes: day)"},
           Case{{{"action", "month"}, {"chart", "yes"}}, "arguments.chart"},
           Case{{{"action", "today"}, {"day", "someday"}}, "mood: could not read the day"},
           Case{{{"action", "remove"}}, "mood: remove needs the log's \"id\""},
           Case{{{"action", "remove"}, {"id", 0}}, "arguments.id"},
           Case{{{"action", "chart"}}, "arguments.action"},
           Case{{{"mood", 7}}, "arguments.action"},
           Case{{{"action", "log"}, {"mood", 7}, {"feeling", "meh"}}, "arguments.feeling"},
       }) {
    auto r = try_mood(*alice_, c.args);
    ASSERT_FALSE(r.ok()) << c.args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.args.dump();
    EXPECT_EQ(r.error().message.rfind("mood: ", 0), 0u) << r.error().message;
  }
  EXPECT_EQ(mood(*alice_, {{"action", "week"}})["logs"], 0) << "nothing written";
}

TEST_F(MoodTest, NoStorageScopeNoMood) {
  auto r = call("mood", nullptr, {{"action", "week"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_THAT(r.error().message, HasSubstr("mood:"));
}

TEST_F(MoodTest, CommandForms) {
  Capability* cap = registry_.find_command("mood");
  ASSERT_EQ(cap, registry_.find("mood"));
  const auto parse = [&](std::string_view text) { return cap->parse_command("mood", text); };
  EXPECT_EQ(*parse("7"), (json{{"action", "log"}, {"mood", 7}}));
  EXPECT_EQ(*parse("7 tired after a long meeting"),
            (json{{"action", "log"}, {"mood", 7}, {"trigger", "tired after a long meeting"}}));
  EXPECT_EQ(*parse("7/10  ok"), (json{{"action", "log"}, {"mood", 7}, {"trigger", "ok"}}));
  EXPECT_EQ(*parse("log 3 rainy"), (json{{"action", "log"}, {"mood", 3}, {"trigger", "rainy"}}));
  EXPECT_EQ(*parse(""), (json{{"action", "today"}}));
  EXPECT_EQ(*parse("today"), (json{{"action", "today"}}));
  EXPECT_EQ(*parse("week"), (json{{"action", "week"}}));
  EXPECT_EQ(*parse("month"), (json{{"action", "month"}, {"chart", true}}));
  EXPECT_EQ(*parse("remove 4"), (json{{"action", "remove"}, {"id", 4}}));
  EXPECT_EQ(*parse("remove #4"), (json{{"action", "remove"}, {"id", 4}}));
  for (const char* bad :
       {"11", "0", "7.5", "great", "log", "log great", "remove", "remove x", "week please"}) {
    auto r = parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << bad;
  }
  EXPECT_EQ(parse("11").error().message, "mood: 11 is not a mood from 1 to 10");
  EXPECT_THAT(parse("great").error().message, HasSubstr("/mood week"));

  // Parsed commands run as they are.
  const auto logged = mood(*alice_, *parse("7 tired after a long meeting"));
  EXPECT_EQ(logged["log"]["trigger"], "tired after a long meeting");
  EXPECT_EQ(mood(*alice_, *parse("week"))["logs"], 1);
  EXPECT_EQ(
      mood(*alice_,
           *parse("remove " + std::to_string(logged["log"]["id"].get<int64_t>())))["log"]["mood"],
      7);
  EXPECT_EQ(mood(*alice_, *parse("today"))["count"], 0);
  EXPECT_EQ(cap->flags().side_effects, SideEffects::unsafe);
}

// The month's chart, decoded from the PNG the answer carries: each day's marker, read back from
// its height, is the day's average as the month's own "days" give it (within a pixel), and a
// day without a log has no marker.
TEST_F(MoodTest, MonthChartReadsBackAsTheDaysAverages) {
  log(*alice_, 10, "2026-10-25 09:00");  // the first day of the 30
  log(*alice_, 1, "2026-10-26 09:00");
  for (int v : {2, 3, 3}) log(*alice_, v, "2026-11-20 10:00");  // 2.67
  log(*alice_, 7, "2026-11-22 08:00");
  log(*alice_, 8, "2026-11-22 20:00");  // 7.5
  log(*alice_, 6, "2026-11-23 08:00");  // today
  for (int d = 1; d <= 9; ++d) {
    log(*alice_, 1 + d, fmt::format("2026-11-{:02} 12:00", d));
    if (d % 3 == 0) log(*alice_, 10, fmt::format("2026-11-{:02} 13:00", d));
  }
  log(*alice_, 9, "2026-10-24 12:00");  // the 30 days before: not drawn

  const json plain = mood(*alice_, {{"action", "month"}});
  EXPECT_FALSE(plain.contains("chart")) << "a tool call without \"chart\" gets no picture";
  EXPECT_FALSE(plain.contains("attachments"));
  const json month = mood(*alice_, {{"action", "month"}, {"chart", true}});
  EXPECT_EQ(month["text"], plain["text"]) << "the text answer stays as it is";
  EXPECT_FALSE(month.contains("chart_error"));

  const json& days = month["days"];
  ASSERT_EQ(days.size(), 30u);
  ASSERT_EQ(month["chart"]["days"].size(), 30u);
  for (size_t i = 0; i < days.size(); ++i) {
    EXPECT_EQ(month["chart"]["days"][i]["day"], days[i]["day"]);
    EXPECT_EQ(month["chart"]["days"][i]["mood"], days[i]["mood"]);
  }
  EXPECT_EQ(month["chart"]["scale"], (json{{"min", 1}, {"max", 10}}));

  const auto png = chart_reader::png_of(month, "mood-30-days.png");
  ASSERT_TRUE(png);
  EXPECT_EQ(chart_reader::png_header_size(*png),
            (std::pair{builtins::kChartWidth, builtins::mood_chart::kHeight}));
  const auto picture = chart_reader::Picture::decode(*png);
  ASSERT_TRUE(picture);
  size_t markers = 0;
  for (size_t i = 0; i < days.size(); ++i) {
    const auto read = chart_reader::read_mood(*picture, i, days.size());
    if (days[i]["mood"].is_null()) {
      EXPECT_FALSE(read) << days[i]["day"] << " has no log, so no marker";
      continue;
    }
    ASSERT_TRUE(read) << days[i]["day"];
    ++markers;
    EXPECT_NEAR(*read, days[i]["mood"].get<double>(), chart_reader::kMoodPerPixel)
        << days[i]["day"];
  }
  EXPECT_EQ(markers, 14u);
  EXPECT_EQ(static_cast<int64_t>(markers), month["days_logged"].get<int64_t>());
  EXPECT_NEAR(*chart_reader::read_mood(*picture, 26, 30), 8.0 / 3, chart_reader::kMoodPerPixel);
  EXPECT_NEAR(*chart_reader::read_mood(*picture, 28, 30), 7.5, chart_reader::kMoodPerPixel);

  // The week draws its seven days the same way, when asked.
  const json week = mood(*alice_, {{"action", "week"}, {"chart", true}});
  const auto week_png = chart_reader::png_of(week, "mood-7-days.png");
  ASSERT_TRUE(week_png);
  const auto week_picture = chart_reader::Picture::decode(*week_png);
  ASSERT_TRUE(week_picture);
  for (size_t i = 0; i < 7; ++i) {
    const json& d = week["days"][i];
    const auto read = chart_reader::read_mood(*week_picture, i, 7);
    ASSERT_EQ(read.has_value(), !d["mood"].is_null()) << d["day"];
    if (read) {
      EXPECT_NEAR(*read, d["mood"].get<double>(), chart_reader::kMoodPerPixel);
    }
  }
}

TEST_F(MoodTest, MonthCommandAttachesTheChartAndAnEmptyMonthHasNothingToDraw) {
  Capability* cap = registry_.find_command("mood");
  log(*alice_, 7);
  auto args = cap->parse_command("mood", "month");
  ASSERT_TRUE(args.ok());
  const json month = mood(*alice_, *args);
  EXPECT_TRUE(chart_reader::png_of(month, "mood-30-days.png"));
  EXPECT_FALSE(mood(*alice_, *cap->parse_command("mood", "week")).contains("attachments"))
      << "/mood week stays text";

  const json empty = mood(*bob_, *args);
  EXPECT_EQ(empty["chart"], nullptr);
  EXPECT_EQ(empty["chart_note"], "nothing to draw: no mood logged in the last 30 days");
  EXPECT_FALSE(empty.contains("attachments"));
  EXPECT_FALSE(empty.contains("chart_error"));
  EXPECT_THAT(empty["text"].get<std::string>(), HasSubstr("No mood logged in the last 30 days."));
}

}  // namespace mood_test
}  // namespace parley::capabilities
