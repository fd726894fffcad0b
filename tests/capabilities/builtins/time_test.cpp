// time: the current time from the injected clock in a named IANA zone or the caller's, with
// DST and half-hour offsets; unknown zones named in the error; the /time command forms.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "parley/capabilities/builtins.h"
#include "parley/capabilities/capability.h"

namespace parley::capabilities {
namespace time_test {

using nlohmann::json;
using ::testing::HasSubstr;

int64_t utc_ms(std::chrono::year_month_day day, int h, int m, int s) {
  const auto t = std::chrono::sys_days{day} + std::chrono::hours{h} + std::chrono::minutes{m} +
                 std::chrono::seconds{s};
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

class TimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(register_builtins(registry_).ok());
    time_ = registry_.find("time");
    ASSERT_NE(time_, nullptr);
    clock_.set_ms(utc_ms(std::chrono::year{2026} / 11 / 23, 14, 4, 5) + 999);
  }
  Result<json> now(const json& args, std::string caller_zone = "UTC") {
    InvokeContext ctx;
    ctx.caller.time_zone = std::move(caller_zone);
    ctx.services = &services_;
    return time_->invoke(ctx, args);
  }

  Registry registry_;
  Capability* time_ = nullptr;
  ManualClock clock_;
  Services services_{&clock_};
};

TEST_F(TimeTest, NamedZone) {
  auto r = now({{"zone", "Europe/Paris"}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(*r, (json{{"zone", "Europe/Paris"},
                      {"iso", "2026-11-23T15:04:05+01:00"},
                      {"text", "Monday 23 November 2026, 15:04 (Europe/Paris, UTC+01:00)"}}));
}

TEST_F(TimeTest, CallersZoneByDefault) {
  auto r = now(json::object(), "America/New_York");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["zone"], "America/New_York");
  EXPECT_EQ((*r)["iso"], "2026-11-23T09:04:05-05:00");
  EXPECT_EQ((*r)["text"], "Monday 23 November 2026, 09:04 (America/New_York, UTC-05:00)");
  // An empty zone argument also means the caller's.
  EXPECT_EQ((*now({{"zone", ""}}, "Asia/Tokyo"))["iso"], "2026-11-23T23:04:05+09:00");
  EXPECT_EQ((*now(json::object()))["iso"], "2026-11-23T14:04:05+00:00");
}

TEST_F(TimeTest, SummerTimeAndHalfHourOffsets) {
  clock_.set_ms(utc_ms(std::chrono::year{2026} / 7 / 4, 10, 30, 0));
  EXPECT_EQ((*now({{"zone", "Europe/Paris"}}))["iso"], "2026-07-04T12:30:00+02:00");
  EXPECT_EQ((*now({{"zone", "Asia/Kolkata"}}))["text"],
            "Saturday 4 July 2026, 16:00 (Asia/Kolkata, UTC+05:30)");
}

TEST_F(TimeTest, UnknownZoneIsNamed) {
  auto r = now({{"zone", "Mars/Olympus_Mons"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_THAT(r.error().message, HasSubstr("time: unknown time zone 'Mars/Olympus_Mons'"));
  // Path-like names are just unknown names.
  EXPECT_EQ(now({{"zone", "../../etc/passwd"}}).error().code, ErrorCode::invalid_argument);
  auto caller = now(json::object(), "Nowhere/Land");
  ASSERT_FALSE(caller.ok());
  EXPECT_THAT(caller.error().message, HasSubstr("'Nowhere/Land'"));
}

TEST_F(TimeTest, ZoneOfTheWrongTypeIsRefusedByTheSchema) {
  auto r = now({{"zone", 5}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_THAT(r.error().message, HasSubstr("arguments.zone"));
  EXPECT_THAT(now({{"tz", "UTC"}}).error().message, HasSubstr("arguments.tz"));
}

TEST_F(TimeTest, SystemClockWithoutServices) {
  auto r = time_->invoke(InvokeContext{}, json{{"zone", "UTC"}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_GE((*r)["iso"].get<std::string>(), "2024-");
}

TEST_F(TimeTest, CommandForms) {
  EXPECT_EQ(registry_.find_command("time"), time_);
  EXPECT_EQ(*time_->parse_command("time", "Europe/Paris"), (json{{"zone", "Europe/Paris"}}));
  EXPECT_EQ(*time_->parse_command("time", "  Europe/Paris "), (json{{"zone", "Europe/Paris"}}));
  EXPECT_EQ(*time_->parse_command("time", ""), json::object());
  EXPECT_EQ((*now(*time_->parse_command("time", ""), "Europe/Paris"))["zone"], "Europe/Paris");
  EXPECT_EQ(time_->flags().side_effects, SideEffects::none);
}

// Found by schema_args_fuzz: "/time" with 65 characters after it was refused by the schema as
// "arguments.zone: expected at most 64 characters"; it is an unknown zone, said as /time says
// it, cut to 40 characters.
TEST_F(TimeTest, ACommandsZoneLongerThanAnyIsUnknownNotASchemaError) {
  const std::string long_zone = std::string(30, 'e') + "é" + std::string(40, 'x');
  const auto r = time_->parse_command("time", long_zone);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().message, "time: unknown time zone '" + std::string(30, 'e') + "é" +
                                   std::string(9, 'x') +
                                   "…' (expected an IANA name such as Europe/Paris)");
  EXPECT_TRUE(time_->parse_command("time", std::string(64, 'z')).ok());
}

}  // namespace time_test
}  // namespace parley::capabilities
