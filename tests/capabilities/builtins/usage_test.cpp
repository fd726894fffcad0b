// usage: the caller's own calls, tokens and cost per calendar period in their time zone;
// admins may see everyone's, nobody else may.
#include <gmock/gmock.h>

#include "user_store_fixture.h"

namespace parley::capabilities {
namespace usage_test {

using nlohmann::json;
using ::testing::HasSubstr;

class UsageTest : public UserStoreFixture {
 protected:
  void add(const UserScope& who, int64_t ts, double cost) {
    storage::UsageRecord r;
    r.ts = ts;
    r.user_id = who.user_id();
    r.purpose = "turn";
    r.model_requested = "m";
    r.model_answered = "m";
    r.prompt_tokens = 1000;
    r.completion_tokens = 100;
    r.cost_actual_nanousd = storage::usd_to_nanousd(cost);
    r.cost_source = "provider";
    ASSERT_TRUE(store_->usage().record(r).get().ok());
  }
  Result<json> as(const UserScope& who, json args, bool admin = false, std::string tz = "UTC") {
    InvokeContext ctx;
    ctx.caller = Caller{who.user_id(), "x", std::move(tz), admin, {}};
    ctx.data = &who;
    ctx.services = &services_;
    return registry_.find("usage")->invoke(ctx, args);
  }
};

// The clock: 2026-11-23T14:04:05Z, a Monday.
constexpr int64_t kNow = 1'795'442'645'000;
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

TEST_F(UsageTest, TodayWeekMonthAllForTheCallerOnly) {
  add(*alice_, kNow - kHour, 0.01);       // today
  add(*alice_, kNow - 20 * kHour, 0.02);  // yesterday (Sunday): last week
  add(*alice_, kNow - 10 * kDay, 0.03);   // this month
  add(*alice_, kNow - 40 * kDay, 0.04);   // October
  add(*bob_, kNow - kHour, 5.0);
  EXPECT_EQ(as(*alice_, {{"period", "today"}})->at("calls"), 1);
  EXPECT_EQ(as(*alice_, {{"period", "week"}})->at("calls"), 1);
  EXPECT_EQ(as(*alice_, {{"period", "month"}})->at("calls"), 3);
  const auto all = *as(*alice_, {{"period", "all"}});
  EXPECT_EQ(all["calls"], 4);
  EXPECT_DOUBLE_EQ(all["cost_actual_usd"].get<double>(), 0.10);
  EXPECT_THAT(all["text"].get<std::string>(), HasSubstr("4 LLM calls"));
  EXPECT_THAT(all["text"].get<std::string>(), HasSubstr("$0.1000 billed"));
}

TEST_F(UsageTest, DaysFollowTheCallersTimeZone) {
  // 14:04Z is already 01:04 on the 24th in Auckland (UTC+13): the call an hour ago was "today"
  // there too, the one 20 hours ago was the 23rd.
  add(*alice_, kNow - kHour, 0.01);
  add(*alice_, kNow - 14 * kHour, 0.01);  // 00:04Z: the 23rd in UTC, 13:04 on the 23rd in Auckland
  EXPECT_EQ(as(*alice_, {{"period", "today"}})->at("calls"), 2);
  EXPECT_EQ(as(*alice_, {{"period", "today"}}, false, "Pacific/Auckland")->at("calls"), 1);
}

TEST_F(UsageTest, EveryoneIsForAdmins) {
  add(*alice_, kNow - kHour, 0.01);
  add(*bob_, kNow - kHour, 5.0);
  const auto denied = as(*alice_, {{"everyone", true}});
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, ErrorCode::permission_denied);
  const auto all = as(*alice_, {{"everyone", true}}, true);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->at("calls"), 2);
  EXPECT_THAT(all->at("text").get<std::string>(), HasSubstr("Everyone today: 2 LLM calls"));
}

TEST_F(UsageTest, NothingYetAndBadArguments) {
  EXPECT_EQ(as(*bob_, json::object())->at("text"), "You made no LLM calls today.");
  const auto bad = as(*bob_, {{"period", "year"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("arguments.period"));
}

TEST_F(UsageTest, Command) {
  const auto* cap = registry_.find("usage");
  EXPECT_EQ(*cap->parse_command("usage", ""), json::object());
  EXPECT_EQ(*cap->parse_command("usage", "week"), (json{{"period", "week"}}));
  EXPECT_EQ(*cap->parse_command("usage", "month everyone"),
            (json{{"period", "month"}, {"everyone", true}}));
}

// Found by schema_args_fuzz: "/usage week eyeryone" took the typo as the period (the last word
// won), and the user heard "arguments.period: expected one of …" about a JSON field they never
// wrote. A word that is no period, or a second period, is the command's usage.
TEST_F(UsageTest, AWordThatIsNoPeriodIsAUsageErrorNotASchemaOne) {
  const auto* cap = registry_.find("usage");
  for (const char* text : {"week eyeryone", "year", "week month"}) {
    const auto r = cap->parse_command("usage", text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_THAT(r.error().message, HasSubstr("usage: /usage [today|week|month|all] [everyone]"));
  }
  EXPECT_THAT(cap->parse_command("usage", "week eyeryone").error().message,
              HasSubstr("'eyeryone' is not a period"));
  EXPECT_EQ(*cap->parse_command("usage", "everyone all"),
            (json{{"period", "all"}, {"everyone", true}}));
}

}  // namespace usage_test
}  // namespace parley::capabilities
