// decisions: add, get, list (latest; pending oldest first), outcome (recorded, then updated),
// search ("what did I decide about X, and how did it go?") ranked with the decision above its
// story, remove (the index follows); days in the caller's zone across DST changes; every error
// naming its field with nothing written; per-user isolation by every id and every search; the
// /decide and /decisions command forms.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "capabilities/builtins/user_store_fixture.h"

namespace parley::capabilities {
namespace decisions_test {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

int64_t utc_ms(std::chrono::year_month_day day, int h, int m) {
  const auto t = std::chrono::sys_days{day} + std::chrono::hours{h} + std::chrono::minutes{m};
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

class DecisionsTest : public UserStoreFixture {
 protected:
  // Invokes decisions as `who`, a caller in `zone`.
  Result<json> try_decisions(const UserScope& who, const json& args,
                             const std::string& zone = "Europe/Berlin") {
    InvokeContext ctx;
    ctx.caller.user_id = who.user_id();
    ctx.caller.time_zone = zone;
    ctx.data = &who;
    ctx.services = &services_;
    return registry_.find("decisions")->invoke(ctx, args);
  }
  json decisions(const UserScope& who, const json& args,
                 const std::string& zone = "Europe/Berlin") {
    auto r = try_decisions(who, args, zone);
    EXPECT_TRUE(r.ok()) << args.dump() << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : json();
  }
  int64_t add(const UserScope& who, const json& fields) {
    json args = fields;
    args["action"] = "add";
    return decisions(who, args)["decision"]["id"].get<int64_t>();
  }
  static std::string id_text(int64_t id) { return "#" + std::to_string(id); }
};

TEST_F(DecisionsTest, AddGetListAndOutcome) {
  auto added = decisions(*alice_, {{"action", "add"},
                                   {"title", "  Take the job at Acme "},
                                   {"alternatives", {"stay at Initech", "freelance"}},
                                   {"reasons", "better pay, shorter commute"},
                                   {"confidence", 7},
                                   {"expected", "more money and evenings free"}});
  const int64_t job = added["decision"]["id"].get<int64_t>();
  EXPECT_EQ(added["text"], "Recorded decision " + id_text(job) +
                               " 2026-11-23 Take the job at Acme (confidence 7/10)");
  const json& d = added["decision"];
  EXPECT_EQ(d["title"], "Take the job at Acme");
  EXPECT_EQ(d["day"], "2026-11-23");
  EXPECT_EQ(d["alternatives"], (json{"stay at Initech", "freelance"}));
  EXPECT_EQ(d["confidence"], 7);
  EXPECT_EQ(d["outcome"], nullptr);
  EXPECT_EQ(d["satisfaction"], nullptr);
  EXPECT_EQ(d["created_at"], "2026-11-23T14:04:05Z");

  const int64_t car = add(*alice_, {{"title", "Sell the car"}, {"day", "2026-11-01"}});
  const int64_t bike = add(*alice_, {{"title", "Buy a bike"}, {"day", "yesterday"}});

  auto got = decisions(*alice_, {{"action", "get"}, {"id", job}});
  EXPECT_EQ(got["text"], id_text(job) +
                             " 2026-11-23 Take the job at Acme (confidence 7/10)\n"
                             "  instead of: stay at Initech; freelance\n"
                             "  why: better pay, shorter commute\n"
                             "  expected: more money and evenings free\n"
                             "  outcome not recorded yet");

  auto list = decisions(*alice_, {{"action", "list"}});
  ASSERT_EQ(list["decisions"].size(), 3u);
  EXPECT_EQ(list["decisions"][0]["id"], job);  // latest day first
  EXPECT_EQ(list["decisions"][1]["id"], bike);
  EXPECT_EQ(list["decisions"][2]["id"], car);
  EXPECT_THAT(list["text"].get<std::string>(), HasSubstr("Your decisions, latest first:\n"));

  clock_.advance_ms(int64_t{30} * 86'400'000);
  auto outcome = decisions(*alice_, {{"action", "outcome"},
                                     {"id", car},
                                     {"outcome", "sold it in a week, no regrets"},
                                     {"satisfaction", 6}});
  EXPECT_EQ(outcome["decision"]["outcome"], "sold it in a week, no regrets");
  EXPECT_EQ(outcome["decision"]["satisfaction"], 6);
  EXPECT_EQ(outcome["decision"]["outcome_at"], "2026-12-23T14:04:05Z");
  EXPECT_THAT(outcome["text"].get<std::string>(),
              HasSubstr("Recorded how it went for " + id_text(car)));
  EXPECT_THAT(outcome["text"].get<std::string>(),
              HasSubstr("outcome: sold it in a week, no regrets (satisfaction 6/10)"));

  // Later: the satisfaction alone changes; the outcome stays.
  auto later = decisions(*alice_, {{"action", "outcome"}, {"id", car}, {"satisfaction", 9}});
  EXPECT_EQ(later["decision"]["outcome"], "sold it in a week, no regrets");
  EXPECT_EQ(later["decision"]["satisfaction"], 9);
  EXPECT_THAT(later["text"].get<std::string>(), HasSubstr("Updated how it went"));

  auto pending = decisions(*alice_, {{"action", "list"}, {"pending", true}});
  ASSERT_EQ(pending["decisions"].size(), 2u);
  EXPECT_EQ(pending["decisions"][0]["id"], bike);  // oldest first
  EXPECT_EQ(pending["decisions"][1]["id"], job);
  EXPECT_EQ(pending["text"], "Decisions waiting for their outcome, oldest first:\n" +
                                 id_text(bike) + " 2026-11-22 Buy a bike\n" + id_text(job) +
                                 " 2026-11-23 Take the job at Acme (confidence 7/10)");
  EXPECT_THAT(decisions(*alice_, {{"action", "list"}})["text"].get<std::string>(),
              HasSubstr(id_text(car) + " 2026-11-01 Sell the car — satisfaction 9/10"));
}

TEST_F(DecisionsTest, SearchSaysWhatWasDecidedAndHowItWent) {
  const int64_t job = add(*alice_, {{"title", "Take the job at Acme"},
                                    {"reasons", "the team seemed kind"},
                                    {"expected", "a calmer year"}});
  const int64_t flat = add(*alice_, {{"title", "Rent the flat near the station"},
                                     {"reasons", "close to the new job"},
                                     {"expected", "short commute"}});
  decisions(*alice_, {{"action", "outcome"},
                      {"id", flat},
                      {"outcome", "noisy trains at night"},
                      {"satisfaction", 3}});

  // "job" is in one title and in the other's reasons: the decision itself ranks first.
  auto found = decisions(*alice_, {{"action", "search"}, {"query", "job"}});
  ASSERT_EQ(found["decisions"].size(), 2u);
  EXPECT_EQ(found["decisions"][0]["id"], job);
  EXPECT_EQ(found["decisions"][1]["id"], flat);
  EXPECT_EQ(found["matched"], "all");
  const auto text = found["text"].get<std::string>();
  EXPECT_THAT(text,
              HasSubstr("Decisions matching all words of \"job\", best first:\n" + id_text(job) +
                        " 2026-11-23 Take the job at Acme\n"
                        "  why: the team seemed kind\n"
                        "  expected: a calmer year\n"
                        "  outcome not recorded yet\n"));
  EXPECT_THAT(text, HasSubstr("  expected: short commute\n"
                              "  outcome: noisy trains at night (satisfaction 3/10)"));

  // The outcome is searchable once recorded; stems match; any word when not all match.
  auto by_outcome = decisions(*alice_, {{"action", "search"}, {"query", "train"}});
  ASSERT_EQ(by_outcome["decisions"].size(), 1u);
  EXPECT_EQ(by_outcome["decisions"][0]["id"], flat);
  auto any = decisions(*alice_, {{"action", "search"}, {"query", "station zebra"}});
  EXPECT_EQ(any["matched"], "any");
  ASSERT_EQ(any["decisions"].size(), 1u);
  auto none = decisions(*alice_, {{"action", "search"}, {"query", "holiday"}});
  EXPECT_TRUE(none["decisions"].empty());
  EXPECT_EQ(none["text"], "No decision matches \"holiday\".");

  // Query syntax is only words.
  for (const char* q : {"\"job", "job OR flat", "NEAR(job flat)", "user_id : 1", "job*", "-job"}) {
    auto r = try_decisions(*alice_, {{"action", "search"}, {"query", q}});
    ASSERT_TRUE(r.ok()) << q << ": " << r.error().describe();
  }
  auto punct = try_decisions(*alice_, {{"action", "search"}, {"query", "?!"}});
  ASSERT_FALSE(punct.ok());
  EXPECT_THAT(punct.error().message, HasSubstr("decisions: search needs at least one word"));

  // Removed: gone from the index too.
  auto removed = decisions(*alice_, {{"action", "remove"}, {"id", flat}});
  EXPECT_EQ(removed["text"],
            "Removed decision " + id_text(flat) + ": Rent the flat near the station");
  EXPECT_TRUE(decisions(*alice_, {{"action", "search"}, {"query", "train"}})["decisions"].empty());
  auto gone = try_decisions(*alice_, {{"action", "get"}, {"id", flat}});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::not_found);
}

struct DayCase {
  std::string zone;
  int64_t now;
  std::string day;
  std::string stored;
};

TEST_F(DecisionsTest, DaysAreTheCallersAcrossDstChanges) {
  for (const auto& c : {
           // 2026-11-23 14:04 UTC is already the 24th in Auckland, still the 23rd in LA.
           DayCase{"Pacific/Auckland", utc_ms(std::chrono::year{2026} / 11 / 23, 14, 4), "today",
                   "2026-11-24"},
           DayCase{"America/Los_Angeles", utc_ms(std::chrono::year{2026} / 11 / 23, 7, 0), "today",
                   "2026-11-22"},
           // Berlin: 23:30 UTC on the 28th of March is 00:30 CET on the 29th (the night the
           // clocks jump to summer time); 22:30 UTC on the 24th of October is 00:30 CEST on the
           // 25th (the night they go back).
           DayCase{"Europe/Berlin", utc_ms(std::chrono::year{2026} / 3 / 28, 23, 30), "today",
                   "2026-03-29"},
           DayCase{"Europe/Berlin", utc_ms(std::chrono::year{2026} / 3 / 29, 22, 30), "yesterday",
                   "2026-03-29"},
           DayCase{"Europe/Berlin", utc_ms(std::chrono::year{2026} / 10 / 24, 22, 30), "today",
                   "2026-10-25"},
           DayCase{"Europe/Berlin", utc_ms(std::chrono::year{2026} / 10 / 25, 22, 59), "today",
                   "2026-10-25"},
           DayCase{"UTC", utc_ms(std::chrono::year{2026} / 10 / 24, 22, 30), "today", "2026-10-24"},
       }) {
    clock_.set_ms(c.now);
    auto r = decisions(*alice_, {{"action", "add"}, {"title", "t"}, {"day", c.day}}, c.zone);
    EXPECT_EQ(r["decision"]["day"], c.stored) << c.zone << " " << c.day;
  }
}

TEST_F(DecisionsTest, ArgumentErrorsNameTheFieldAndWriteNothing) {
  const int64_t id = add(*alice_, {{"title", "keep"}});
  struct Case {
    json args;
    std::string says;
  };
  for (const auto& c : {
           Case{{{"action", "add"}, {"title", "t"}, {"confidence", 0}}, "arguments.confidence"},
           Case{{{"action", "add"}, {"title", "t"}, {"confidence", 11}}, "arguments.confidence"},
           Case{{{"action", "add"}, {"title", "t"}, {"confidence", 5.5}}, "arguments.confidence"},
           Case{{{"action", "add"}}, "decisions: add needs a non-empty \"title\""},
           Case{{{"action", "add"}, {"title", "  "}}, "decisions: add needs a non-empty \"title\""},
           Case{{{"action", "add"}, {"title", ""}}, "arguments.title"},
           Case{{{"action", "add"}, {"title", "t"}, {"day", "someday"}},
                "decisions: day: could not read the day 'someday'"},
           Case{{{"action", "add"}, {"title", "t"}, {"alternatives", "a, b"}},
                "arguments.alternatives"},
           Case{{{"action", "add"}, {"title", "t"}, {"alternatives", {"a", " "}}},
                "decisions: alternatives[1] is empty"},
           Case{{{"action", "add"}, {"title", "t"}, {"mood", 3}}, "arguments.mood"},
           Case{{{"action", "outcome"}, {"id", id}, {"satisfaction", 11}},
                "arguments.satisfaction"},
           Case{{{"action", "outcome"}, {"id", id}, {"satisfaction", 0}}, "arguments.satisfaction"},
           Case{{{"action", "outcome"}, {"satisfaction", 5}, {"outcome", "x"}},
                "decisions: outcome needs the decision's \"id\""},
           Case{{{"action", "outcome"}, {"id", id}},
                "decisions: outcome needs \"outcome\" (what happened) and/or \"satisfaction\""},
           Case{{{"action", "outcome"}, {"id", id}, {"satisfaction", 5}},
                "has no outcome yet: say what happened"},
           Case{{{"action", "outcome"}, {"id", id}, {"outcome", "   "}},
                "decisions: \"outcome\" is empty"},
           Case{{{"action", "get"}}, "decisions: get needs the decision's \"id\""},
           Case{{{"action", "search"}}, "decisions: search needs \"query\""},
           Case{{{"action", "decide"}}, "arguments.action"},
       }) {
    auto r = try_decisions(*alice_, c.args);
    ASSERT_FALSE(r.ok()) << c.args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr("decisions: ")) << c.args.dump();
  }
  auto list = decisions(*alice_, {{"action", "list"}});
  ASSERT_EQ(list["decisions"].size(), 1u);
  EXPECT_EQ(list["decisions"][0]["outcome"], nullptr);
  EXPECT_EQ(list["decisions"][0]["satisfaction"], nullptr);
}

TEST_F(DecisionsTest, UsersCannotReachEachOthersDecisionsByAnyIdOrSearch) {
  const int64_t a = add(*alice_, {{"title", "Move to Lisbon"}, {"reasons", "sunshine"}});
  const int64_t b = add(*bob_, {{"title", "Stay in Oslo"}, {"reasons", "sunshine is overrated"}});
  const int64_t missing = b + 100;
  for (const int64_t id : {a, missing}) {
    for (const json& args :
         {json{{"action", "get"}, {"id", id}}, json{{"action", "remove"}, {"id", id}},
          json{{"action", "outcome"}, {"id", id}, {"outcome", "x"}}}) {
      auto r = try_decisions(*bob_, args);
      ASSERT_FALSE(r.ok()) << args.dump();
      EXPECT_EQ(r.error().code, ErrorCode::not_found);
      EXPECT_EQ(r.error().message, "decisions: you have no decision #" + std::to_string(id));
    }
  }
  auto bob_found = decisions(*bob_, {{"action", "search"}, {"query", "sunshine Lisbon"}});
  ASSERT_EQ(bob_found["decisions"].size(), 1u);
  EXPECT_EQ(bob_found["decisions"][0]["id"], b);
  EXPECT_TRUE(decisions(*bob_, {{"action", "search"}, {"query", "Lisbon"}})["decisions"].empty());
  ASSERT_EQ(decisions(*bob_, {{"action", "list"}})["decisions"].size(), 1u);
  // Alice's decision is untouched.
  auto alice = decisions(*alice_, {{"action", "get"}, {"id", a}});
  EXPECT_EQ(alice["decision"]["outcome"], nullptr);
  EXPECT_TRUE(decisions(*alice_, {{"action", "search"}, {"query", "Oslo"}})["decisions"].empty());
}

TEST_F(DecisionsTest, NoStorageScopeNoDecisions) {
  auto r = call("decisions", nullptr, {{"action", "list"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_THAT(r.error().message, HasSubstr("decisions:"));
}

TEST_F(DecisionsTest, CommandForms) {
  Capability* cap = registry_.find("decisions");
  ASSERT_EQ(registry_.find_command("decide"), cap);
  ASSERT_EQ(registry_.find_command("decisions"), cap);
  const auto parse = [&](std::string_view text) { return cap->parse_command("decisions", text); };
  EXPECT_EQ(*cap->parse_command("decide", "  take the job "),
            (json{{"action", "add"}, {"title", "take the job"}}));
  EXPECT_EQ(*parse(""), (json{{"action", "list"}}));
  EXPECT_EQ(*parse("pending"), (json{{"action", "list"}, {"pending", true}}));
  EXPECT_EQ(*parse("list pending"), (json{{"action", "list"}, {"pending", true}}));
  EXPECT_EQ(*parse("search the job offer"),
            (json{{"action", "search"}, {"query", "the job offer"}}));
  EXPECT_EQ(*parse("outcome 3 8 it went well, mostly"),
            (json{{"action", "outcome"},
                  {"id", 3},
                  {"satisfaction", 8},
                  {"outcome", "it went well, mostly"}}));
  EXPECT_EQ(*parse("outcome #3 8/10 fine"),
            (json{{"action", "outcome"}, {"id", 3}, {"satisfaction", 8}, {"outcome", "fine"}}));
  EXPECT_EQ(*parse("outcome 3 9"), (json{{"action", "outcome"}, {"id", 3}, {"satisfaction", 9}}));
  EXPECT_EQ(*parse("3"), (json{{"action", "get"}, {"id", 3}}));
  EXPECT_EQ(*parse("#3"), (json{{"action", "get"}, {"id", 3}}));
  EXPECT_EQ(*parse("remove 3"), (json{{"action", "remove"}, {"id", 3}}));
  for (const char* bad : {"search", "outcome", "outcome 3", "outcome 3 great", "outcome x 3 y",
                          "remove", "0", "frobnicate", "list all"}) {
    auto r = parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << bad;
    EXPECT_THAT(r.error().message, HasSubstr("decisions: ")) << bad;
  }
  EXPECT_THAT(parse("outcome 3 great").error().message, HasSubstr("'great' is not a satisfaction"));
  EXPECT_THAT(parse("frobnicate").error().message, HasSubstr("/decisions outcome ID"));
  EXPECT_FALSE(cap->parse_command("decide", "  ").ok());

  // A parsed command runs as is; an out-of-range satisfaction is the schema's to refuse.
  const int64_t id =
      decisions(*alice_, *cap->parse_command("decide", "take the job"))["decision"]["id"]
          .get<int64_t>();
  auto r = decisions(*alice_, *parse("outcome " + std::to_string(id) + " 8 it went well"));
  EXPECT_EQ(r["decision"]["satisfaction"], 8);
  auto bad = try_decisions(*alice_, *parse("outcome " + std::to_string(id) + " 11 too good"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("arguments.satisfaction"));
  EXPECT_THAT(decisions(*alice_, *parse("search job"))["text"].get<std::string>(),
              HasSubstr("outcome: it went well (satisfaction 8/10)"));
  EXPECT_THAT(decisions(*alice_, *parse(std::to_string(id)))["text"].get<std::string>(),
              Not(HasSubstr("not recorded")));
  EXPECT_EQ(cap->flags().side_effects, SideEffects::unsafe);
}

}  // namespace decisions_test
}  // namespace parley::capabilities
