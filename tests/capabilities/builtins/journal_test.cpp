// journal: add (scores, tags, when in the caller's zone), get, list (latest, a day, the last N
// days), soft delete and restore (deleted entries gone from search, list and week, restored
// ones back), ranked search with snippets (title above body), the week from entries and mood
// logs across a DST change; per-user isolation (ids, search, week); argument errors; the
// /journal command forms; nothing without a storage scope.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "capabilities/builtins/user_store_fixture.h"

namespace parley::capabilities {
namespace journal_test {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

class JournalTest : public UserStoreFixture {
 protected:
  // Invokes `capability` as `who`, a caller in `zone`.
  Result<json> try_as(const std::string& capability, const UserScope& who, const json& args,
                      const std::string& zone) {
    InvokeContext ctx;
    ctx.caller.user_id = who.user_id();
    ctx.caller.time_zone = zone;
    ctx.data = &who;
    ctx.services = &services_;
    return registry_.find(capability)->invoke(ctx, args);
  }
  Result<json> try_journal(const UserScope& who, const json& args,
                           const std::string& zone = "UTC") {
    return try_as("journal", who, args, zone);
  }
  json journal(const UserScope& who, const json& args, const std::string& zone = "UTC") {
    auto r = try_journal(who, args, zone);
    EXPECT_TRUE(r.ok()) << args.dump() << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : json();
  }
  int64_t add(const UserScope& who, const std::string& body, json extra = json::object(),
              const std::string& zone = "UTC") {
    extra["action"] = "add";
    extra["body"] = body;
    return journal(who, extra, zone)["entry"]["id"].get<int64_t>();
  }
  std::vector<int64_t> ids(const json& answer, const char* field = "entries") {
    std::vector<int64_t> out;
    for (const auto& e : answer[field]) out.push_back(e["id"].get<int64_t>());
    return out;
  }
  std::string error_of(const UserScope& who, const json& args) {
    auto r = try_journal(who, args);
    EXPECT_FALSE(r.ok()) << args.dump();
    return r.ok() ? std::string() : r.error().message;
  }
};

TEST_F(JournalTest, AddGetAndList) {
  auto added = journal(*alice_, {{"action", "add"},
                                 {"title", " A long day "},
                                 {"body", "  Met Sam for lunch.\nThe meeting ran late. "},
                                 {"mood", 6},
                                 {"energy", 4},
                                 {"stress", 7},
                                 {"sleep_hours", 6.5},
                                 {"tags", {" Work ", "#Lunch", "work", "long  walk"}}});
  const auto& e = added["entry"];
  const int64_t id = e["id"].get<int64_t>();
  EXPECT_EQ(e["title"], "A long day");
  EXPECT_EQ(e["body"], "Met Sam for lunch.\nThe meeting ran late.");
  EXPECT_EQ(e["day"], "2026-11-23");
  EXPECT_EQ(e["at"], "2026-11-23T14:04:05Z");
  EXPECT_EQ(e["mood"], 6);
  EXPECT_EQ(e["energy"], 4);
  EXPECT_EQ(e["stress"], 7);
  EXPECT_EQ(e["sleep_hours"], 6.5);
  EXPECT_EQ(e["tags"], (json{"work", "lunch", "long-walk"}));
  EXPECT_EQ(e["deleted"], false);
  EXPECT_EQ(added["text"],
            "Saved journal entry #" + std::to_string(id) +
                " for Mon 23 Nov (mood 6, energy 4, stress 7, slept 6.5 h) #work #lunch "
                "#long-walk.");

  auto got = journal(*alice_, {{"action", "get"}, {"id", id}}, "Europe/Berlin");
  EXPECT_EQ(got["entry"]["at_local"], "2026-11-23T15:04:05+01:00");
  EXPECT_EQ(got["text"], "Journal entry #" + std::to_string(id) +
                             ", Mon 23 Nov 2026 15:04 Europe/Berlin (mood 6, energy 4, stress 7, "
                             "slept 6.5 h) #work #lunch #long-walk\nA long day\nMet Sam for "
                             "lunch.\nThe meeting ran late.");

  auto plain = journal(*alice_, {{"action", "add"}, {"body", "Quiet evening."}});
  EXPECT_EQ(plain["entry"]["mood"], nullptr);
  EXPECT_EQ(plain["entry"]["sleep_hours"], nullptr);
  EXPECT_EQ(plain["entry"]["tags"], json::array());
  const int64_t quiet = plain["entry"]["id"].get<int64_t>();

  auto list = journal(*alice_, {{"action", "list"}});
  EXPECT_EQ(ids(list), (std::vector<int64_t>{quiet, id})) << "newest first";
  EXPECT_EQ(list["text"], "Your journal, newest first:\n#" + std::to_string(quiet) +
                              " Mon 23 Nov — Quiet evening.\n#" + std::to_string(id) +
                              " Mon 23 Nov — A long day: Met Sam for lunch. The meeting ran "
                              "late. (mood 6, energy 4, stress 7, slept 6.5 h) #work #lunch "
                              "#long-walk");
  EXPECT_EQ(list["truncated"], false);
}

TEST_F(JournalTest, ListOfADayAndOfTheLastDays) {
  const int64_t today = add(*alice_, "today's entry");
  const int64_t yesterday = add(*alice_, "yesterday's entry", {{"when", "yesterday"}});
  const int64_t week_ago = add(*alice_, "a week ago", {{"when", "7 days ago"}});
  const int64_t monday = add(*alice_, "monday's entry", {{"when", "monday"}});  // today, Mon

  EXPECT_EQ(ids(journal(*alice_, {{"action", "list"}, {"day", "yesterday"}})),
            (std::vector<int64_t>{yesterday}));
  EXPECT_EQ(ids(journal(*alice_, {{"action", "list"}, {"day", "2026-11-16"}})),
            (std::vector<int64_t>{week_ago}));
  auto two = journal(*alice_, {{"action", "list"}, {"days", 2}});
  EXPECT_EQ(ids(two), (std::vector<int64_t>{monday, today, yesterday}));
  EXPECT_EQ(two["from"], "2026-11-22");
  EXPECT_EQ(two["to"], "2026-11-23");
  EXPECT_EQ(ids(journal(*alice_, {{"action", "list"}, {"days", 8}})).size(), 4u);
  EXPECT_EQ(journal(*alice_, {{"action", "list"}, {"day", "2026-11-01"}})["text"],
            "No journal entries then.");
  EXPECT_EQ(journal(*bob_, {{"action", "list"}})["text"], "Your journal is empty.");
}

TEST_F(JournalTest, SoftDeleteAndRestore) {
  const int64_t id = add(*alice_, "The garden is full of tulips.", {{"title", "Garden"}});
  const int64_t other = add(*alice_, "Rain all day.");
  auto deleted = journal(*alice_, {{"action", "delete"}, {"id", id}});
  const std::string n = std::to_string(id);
  EXPECT_EQ(deleted["text"], "Deleted journal entry #" + n +
                                 " (Mon 23 Nov: Garden). To bring it back: /journal restore " + n);
  EXPECT_EQ(deleted["restore"], (json{{"action", "restore"}, {"id", id}}));
  EXPECT_EQ(deleted["entry"]["deleted"], true);

  // Gone from list, search and week; get says how to bring it back.
  EXPECT_EQ(ids(journal(*alice_, {{"action", "list"}})), (std::vector<int64_t>{other}));
  EXPECT_EQ(journal(*alice_, {{"action", "search"}, {"query", "tulips"}})["entries"].size(), 0u);
  auto week = journal(*alice_, {{"action", "week"}});
  EXPECT_EQ(week["entries"], 1);
  EXPECT_THAT(week["text"].get<std::string>(), Not(HasSubstr("Garden")));
  auto get = try_journal(*alice_, {{"action", "get"}, {"id", id}});
  ASSERT_FALSE(get.ok());
  EXPECT_EQ(get.error().code, ErrorCode::not_found);
  EXPECT_EQ(get.error().message,
            "journal: entry #" + n + " is deleted; /journal restore " + n + " brings it back");
  EXPECT_THAT(journal(*alice_, {{"action", "delete"}, {"id", id}})["text"].get<std::string>(),
              HasSubstr("Already deleted"));

  auto restored = journal(*alice_, {{"action", "restore"}, {"id", id}});
  EXPECT_EQ(restored["text"], "Restored journal entry #" + n + " (Mon 23 Nov: Garden).");
  EXPECT_EQ(restored["entry"]["deleted"], false);
  EXPECT_EQ(ids(journal(*alice_, {{"action", "list"}})), (std::vector<int64_t>{other, id}));
  EXPECT_EQ(ids(journal(*alice_, {{"action", "search"}, {"query", "tulips"}})),
            (std::vector<int64_t>{id}));
  EXPECT_EQ(journal(*alice_, {{"action", "week"}})["entries"], 2);
  EXPECT_EQ(journal(*alice_, {{"action", "get"}, {"id", id}})["entry"]["body"],
            "The garden is full of tulips.");
  EXPECT_EQ(journal(*alice_, {{"action", "restore"}, {"id", id}})["text"],
            "Journal entry #" + n + " (Mon 23 Nov: Garden) is not deleted.");
}

TEST_F(JournalTest, SearchRanksTitleAboveBodyWithSnippets) {
  const int64_t in_body = add(*alice_,
                              "We walked past the old garden on the way to the station, then "
                              "took the train home and cooked.",
                              {{"title", "Sunday"}});
  const int64_t in_title = add(*alice_, "Planted onions and beans.", {{"title", "Garden day"}});
  add(*alice_, "Nothing about it here.");

  auto found = journal(*alice_, {{"action", "search"}, {"query", "garden"}});
  EXPECT_EQ(ids(found), (std::vector<int64_t>{in_title, in_body})) << "the title weighs more";
  EXPECT_EQ(found["matched"], "all");
  EXPECT_THAT(found["entries"][1]["snippet"].get<std::string>(), HasSubstr("old [garden] on"));
  EXPECT_THAT(found["text"].get<std::string>(),
              HasSubstr("#" + std::to_string(in_body) + " Mon 23 Nov — Sunday: "));

  // Porter stems; all words first, then any of them; user text is never query syntax.
  EXPECT_EQ(ids(journal(*alice_, {{"action", "search"}, {"query", "planting"}})),
            (std::vector<int64_t>{in_title}));
  auto some = journal(*alice_, {{"action", "search"}, {"query", "onions station"}});
  EXPECT_EQ(some["matched"], "any");
  EXPECT_EQ(some["entries"].size(), 2u);
  EXPECT_EQ(journal(*alice_, {{"action", "search"}, {"query", "garden\" OR user_id:*"}})["matched"],
            "any");
  EXPECT_EQ(journal(*alice_, {{"action", "search"}, {"query", "zebra"}})["text"],
            "No journal entry matches \"zebra\".");
  EXPECT_THAT(error_of(*alice_, {{"action", "search"}, {"query", "!!"}}),
              HasSubstr("journal: search needs at least one word"));
}

TEST_F(JournalTest, UsersCannotReachEachOthersEntries) {
  const int64_t a1 = add(*alice_, "Alice's secret garden plans", {{"mood", 9}});
  const int64_t b1 = add(*bob_, "Bob's garden", {{"mood", 2}});
  const int64_t a2 = add(*alice_, "Alice again");

  EXPECT_EQ(ids(journal(*bob_, {{"action", "search"}, {"query", "garden"}})),
            (std::vector<int64_t>{b1}));
  EXPECT_EQ(ids(journal(*bob_, {{"action", "search"}, {"query", "secret"}})).size(), 0u);
  EXPECT_EQ(ids(journal(*bob_, {{"action", "list"}})), (std::vector<int64_t>{b1}));
  auto week = journal(*bob_, {{"action", "week"}});
  EXPECT_EQ(week["entries"], 1);
  EXPECT_EQ(week["average"]["mood"], 2.0);

  for (int64_t id = 1; id <= a2 + 2; ++id) {
    if (id == b1) continue;
    for (const char* action : {"get", "delete", "restore"}) {
      auto r = try_journal(*bob_, {{"action", action}, {"id", id}});
      ASSERT_FALSE(r.ok()) << action << " #" << id;
      EXPECT_EQ(r.error().code, ErrorCode::not_found);
      EXPECT_EQ(r.error().message, "journal: you have no entry #" + std::to_string(id));
    }
  }
  EXPECT_EQ(ids(journal(*alice_, {{"action", "list"}})), (std::vector<int64_t>{a2, a1}))
      << "Bob's deletes did not touch them";
}

TEST_F(JournalTest, WhenIsReadInTheCallersZone) {
  const std::string ny = "America/New_York";  // 09:04 on Mon 23 Nov there
  auto late =
      journal(*alice_, {{"action", "add"}, {"body", "late"}, {"when", "yesterday 23:30"}}, ny);
  EXPECT_EQ(late["entry"]["day"], "2026-11-22");
  EXPECT_EQ(late["entry"]["at"], "2026-11-23T04:30:00Z") << "the UTC day is the 23rd";
  auto nine = journal(*alice_, {{"action", "add"}, {"body", "x"}, {"when", "21:00"}}, ny);
  EXPECT_EQ(nine["entry"]["at"], "2026-11-23T02:00:00Z") << "the latest 21:00, yesterday's";
  auto eight = journal(*alice_, {{"action", "add"}, {"body", "x"}, {"when", "8am"}}, ny);
  EXPECT_EQ(eight["entry"]["at"], "2026-11-23T13:00:00Z") << "today's 8am has passed";
  auto day = journal(*alice_, {{"action", "add"}, {"body", "x"}, {"when", "2026-11-20"}}, ny);
  EXPECT_EQ(day["entry"]["day"], "2026-11-20");
  EXPECT_EQ(day["entry"]["at"], "2026-11-20T17:00:00Z") << "a past day is taken at its noon";

  // Late in the evening in New York it is already tomorrow in UTC: the entry is the local day.
  clock_.set_ms(1'795'408'200'000);  // 2026-11-23T04:30:00Z, 23:30 on the 22nd in New York
  EXPECT_EQ(journal(*alice_, {{"action", "add"}, {"body", "x"}}, ny)["entry"]["day"], "2026-11-22");
  EXPECT_EQ(journal(*alice_, {{"action", "add"}, {"body", "x"}})["entry"]["day"], "2026-11-23");

  for (const char* future : {"tomorrow", "in 10m", "2026-12-01 10:00"}) {
    auto r = try_journal(*alice_, {{"action", "add"}, {"body", "x"}, {"when", future}}, ny);
    ASSERT_FALSE(r.ok()) << future;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_THAT(r.error().message, HasSubstr("is in the future")) << future;
  }
  auto r = try_journal(*alice_, {{"action", "add"}, {"body", "x"}, {"when", "last blue moon"}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("journal: could not read \"when\" 'last blue moon'"));
}

// The week that holds the spring DST change in Berlin (Sun 29 Mar 2026 has 23 hours): seven
// days, each once, with the mood of each from the mood logs and the entries' scores.
TEST_F(JournalTest, WeekFromEntriesAndMoodAcrossDst) {
  const std::string berlin = "Europe/Berlin";
  clock_.set_ms(1'774'951'200'000);  // 2026-03-31T10:00:00Z, 12:00 CEST on Tue 31 Mar
  const auto mood = [&](int value, const std::string& when, json extra = json::object()) {
    extra["action"] = "log";
    extra["mood"] = value;
    extra["when"] = when;
    auto r = try_as("mood", *alice_, extra, berlin);
    ASSERT_TRUE(r.ok()) << r.error().describe();
  };
  const int64_t gone = add(*alice_, "deleted one", {{"mood", 1}}, berlin);
  journal(*alice_, {{"action", "delete"}, {"id", gone}}, berlin);
  add(*alice_, "Long night before the clocks changed.",
      {{"title", "Clocks"}, {"mood", 4}, {"sleep_hours", 5}, {"when", "2026-03-29 01:30"}}, berlin);
  add(*alice_, "A late one.", {{"mood", 8}, {"energy", 6}, {"when", "2026-03-29 23:30"}}, berlin);
  mood(6, "2026-03-29 12:00", {{"stress", 3}});
  mood(7, "2026-03-25 09:00");
  mood(3, "2026-03-24 23:30");  // the week before
  mood(9, "2026-03-30 00:30");  // 22:30 UTC on the 29th: the 30th in Berlin
  add(*alice_, "Sunny.", {{"when", "today"}, {"stress", 2}, {"sleep_hours", 8}}, berlin);
  add(*bob_, "Bob's week", {{"mood", 1}}, berlin);

  auto week = journal(*alice_, {{"action", "week"}}, berlin);
  EXPECT_EQ(week["from"], "2026-03-25");
  EXPECT_EQ(week["to"], "2026-03-31");
  ASSERT_EQ(week["days"].size(), 7u);
  const std::vector<std::string> days{"2026-03-25", "2026-03-26", "2026-03-27", "2026-03-28",
                                      "2026-03-29", "2026-03-30", "2026-03-31"};
  for (size_t i = 0; i < days.size(); ++i) EXPECT_EQ(week["days"][i]["day"], days[i]);
  EXPECT_EQ(week["days"][0]["mood"], 7.0);
  EXPECT_EQ(week["days"][1]["mood"], nullptr);
  EXPECT_EQ(week["days"][4]["mood"], 6.0) << "(4 + 8 + 6) / 3";
  EXPECT_EQ(week["days"][4]["mood_scores"], 3);
  EXPECT_EQ(week["days"][4]["mood_logs"], 1);
  EXPECT_EQ(week["days"][4]["entries"].size(), 2u);
  EXPECT_EQ(week["days"][4]["sleep_hours"], 5.0);
  EXPECT_EQ(week["days"][4]["energy"], 6.0);
  EXPECT_EQ(week["days"][4]["stress"], 3.0);
  EXPECT_EQ(week["days"][5]["mood"], 9.0);
  EXPECT_EQ(week["days"][6]["stress"], 2.0);
  EXPECT_EQ(week["average"]["mood"], (7.0 + 6.0 + 9.0) / 3) << "each day counts once";
  EXPECT_EQ(week["average"]["sleep_hours"], 6.5);
  EXPECT_EQ(week["average"]["stress"], 2.5);
  EXPECT_EQ(week["entries"], 3);
  EXPECT_EQ(week["sparkline"], "▆···▅▇·");
  const auto text = week["text"].get<std::string>();
  EXPECT_THAT(text, HasSubstr("Your week, Wed 25 Mar – Tue 31 Mar (Europe/Berlin):"));
  EXPECT_THAT(text, HasSubstr("\nSun 29 Mar ▅ mood 6.0 — #"));
  EXPECT_THAT(text, HasSubstr("Clocks; #"));
  EXPECT_THAT(text, HasSubstr("\nThu 26 Mar · no mood"));
  EXPECT_THAT(text, HasSubstr("\nMood ▆···▅▇· (1–10)"));
  EXPECT_THAT(text, HasSubstr("\nAverages: mood 7.3, energy 6.0, stress 2.5, sleep 6.5 h"));
  EXPECT_THAT(text, Not(HasSubstr("deleted one")));
  EXPECT_THAT(text, Not(HasSubstr("Bob")));

  auto empty = journal(*bob_, {{"action", "week"}}, "UTC");
  EXPECT_EQ(empty["days"].size(), 7u);
  clock_.advance_ms(30LL * 24 * 3600 * 1000);
  EXPECT_THAT(journal(*bob_, {{"action", "week"}}, berlin)["text"].get<std::string>(),
              HasSubstr("No journal entries and no mood logs these seven days."));
}

TEST_F(JournalTest, ArgumentErrors) {
  struct Case {
    json args;
    std::string says;
  };
  for (const auto& c : {
           Case{{{"action", "add"}}, "journal: add needs a non-empty \"body\""},
           Case{{{"action", "add"}, {"body", "  \n "}}, "journal: add needs a non-empty \"body\""},
           Case{{{"action", "add"}, {"body", ""}}, "arguments.body"},
           Case{{{"action", "add"}, {"body", "x"}, {"mood", 11}}, "arguments.mood"},
           Case{{{"action", "add"}, {"body", "x"}, {"mood", 0}}, "arguments.mood"},
           Case{{{"action", "add"}, {"body", "x"}, {"stress", 7.5}}, "arguments.stress"},
           Case{{{"action", "add"}, {"body", "x"}, {"sleep_hours", 25}}, "arguments.sleep_hours"},
           Case{{{"action", "add"}, {"body", "x"}, {"tags", "work"}}, "arguments.tags"},
           Case{{{"action", "add"}, {"body", "x"}, {"tags", {"###"}}},
                "journal: tag '###' has no word in it"},
           Case{{{"action", "add"}, {"body", "x"}, {"tags", {std::string(33, 'a')}}},
                "arguments.tags[0]"},
           Case{{{"action", "add"}, {"body", "x"}, {"query", "y"}},
                "journal: add does not take \"query\" (it takes: body, title, mood"},
           Case{{{"action", "search"}, {"query", "x"}, {"body", "y"}},
                "journal: search does not take \"body\" (it takes: query)"},
           Case{{{"action", "week"}, {"days", 3}},
                "journal: week does not take \"days\" (it takes nothing else)"},
           Case{{{"action", "search"}}, "journal: search needs \"query\""},
           Case{{{"action", "list"}, {"day", "today"}, {"days", 3}},
                "journal: list takes \"day\" or \"days\", not both"},
           Case{{{"action", "list"}, {"day", "someday"}}, "journal: could not read the day"},
           Case{{{"action", "list"}, {"days", 0}}, "arguments.days"},
           Case{{{"action", "get"}}, "journal: get needs the entry's \"id\""},
           Case{{{"action", "delete"}, {"id", 0}}, "arguments.id"},
           Case{{{"action", "restore"}, {"id", "3"}}, "arguments.id"},
           Case{{{"action", "forget"}}, "arguments.action"},
           Case{{{"body", "x"}}, "arguments.action"},
           Case{{{"action", "add"}, {"body", "x"}, {"user_id", 2}}, "arguments.user_id"},
       }) {
    auto r = try_journal(*alice_, c.args);
    ASSERT_FALSE(r.ok()) << c.args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.args.dump();
    EXPECT_EQ(r.error().message.rfind("journal: ", 0), 0u) << r.error().message;
  }
  EXPECT_EQ(journal(*alice_, {{"action", "list"}})["entries"].size(), 0u) << "nothing written";
  auto missing = try_journal(*alice_, {{"action", "get"}, {"id", 4242}});
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  EXPECT_EQ(missing.error().message, "journal: you have no entry #4242");
}

TEST_F(JournalTest, NoStorageScopeNoJournal) {
  auto r = call("journal", nullptr, {{"action", "list"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_THAT(r.error().message, HasSubstr("journal:"));
}

TEST_F(JournalTest, CommandForms) {
  Capability* cap = registry_.find_command("journal");
  ASSERT_EQ(cap, registry_.find("journal"));
  const auto parse = [&](std::string_view text) { return cap->parse_command("journal", text); };
  EXPECT_EQ(*parse("A quiet walk by the river."),
            (json{{"action", "add"}, {"body", "A quiet walk by the river."}}));
  EXPECT_EQ(*parse("add  ran 5k #Running #health, felt #1"),
            (json{{"action", "add"},
                  {"body", "ran 5k #Running #health, felt #1"},
                  {"tags", {"Running", "health"}}}));
  EXPECT_EQ(*parse("search  garden plans "),
            (json{{"action", "search"}, {"query", "garden plans"}}));
  EXPECT_EQ(*parse(""), (json{{"action", "list"}}));
  EXPECT_EQ(*parse("list"), (json{{"action", "list"}}));
  EXPECT_EQ(*parse("list yesterday"), (json{{"action", "list"}, {"day", "yesterday"}}));
  EXPECT_EQ(*parse("list 2026-11-20"), (json{{"action", "list"}, {"day", "2026-11-20"}}));
  EXPECT_EQ(*parse("list 7 days"), (json{{"action", "list"}, {"days", 7}}));
  EXPECT_EQ(*parse("list 30"), (json{{"action", "list"}, {"days", 30}}));
  EXPECT_EQ(*parse("list of things I am grateful for"),
            (json{{"action", "add"}, {"body", "list of things I am grateful for"}}));
  EXPECT_EQ(*parse("week"), (json{{"action", "week"}}));
  EXPECT_EQ(*parse("week was long"), (json{{"action", "add"}, {"body", "week was long"}}));
  EXPECT_EQ(*parse("12"), (json{{"action", "get"}, {"id", 12}}));
  EXPECT_EQ(*parse("#12"), (json{{"action", "get"}, {"id", 12}}));
  EXPECT_EQ(*parse("delete 12"), (json{{"action", "delete"}, {"id", 12}}));
  EXPECT_EQ(*parse("restore #12"), (json{{"action", "restore"}, {"id", 12}}));
  for (const char* bad : {"add", "search", "delete", "restore", "delete twelve", "restore 0"}) {
    auto r = parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << bad;
  }
  EXPECT_THAT(parse("search").error().message, HasSubstr("/journal search WORDS"));

  // Parsed commands run as they are.
  const auto id = journal(*alice_, *parse("Lovely dinner #family"))["entry"]["id"].get<int64_t>();
  EXPECT_EQ(journal(*alice_, *parse(std::to_string(id)))["entry"]["tags"], (json{"family"}));
  EXPECT_EQ(journal(*alice_, *parse("search dinner"))["entries"].size(), 1u);
  EXPECT_EQ(journal(*alice_, *parse("delete " + std::to_string(id)))["entry"]["deleted"], true);
  EXPECT_EQ(journal(*alice_, *parse("restore " + std::to_string(id)))["entry"]["deleted"], false);
  EXPECT_EQ(journal(*alice_, *parse("week"))["entries"], 1);
  EXPECT_EQ(cap->flags().side_effects, SideEffects::unsafe);
  const auto keywords = cap->keywords();
  EXPECT_NE(std::find(keywords.begin(), keywords.end(), "diary"), keywords.end());
}

}  // namespace journal_test
}  // namespace parley::capabilities
