// Tests of render values: `now` in the user's time zone, unknown zones refused.
#include "parley/prompts/render.h"

#include <gtest/gtest.h>

namespace parley::prompts {
namespace render_test {

std::chrono::system_clock::time_point at(int64_t unix_seconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds));
}

TEST(Render, NowIsShownInTheUsersTimeZone) {
  // 2026-07-01 12:30:00 UTC
  const auto t = at(1782909000);
  auto utc = format_now(t, "UTC");
  ASSERT_TRUE(utc.ok()) << utc.error().message;
  EXPECT_EQ(*utc, "Wednesday 01 July 2026, 12:30 (UTC, UTC)");
  auto lisbon = format_now(t, "Europe/Lisbon");  // summer time: UTC+1
  ASSERT_TRUE(lisbon.ok());
  EXPECT_EQ(*lisbon, "Wednesday 01 July 2026, 13:30 (Europe/Lisbon, WEST)");
  auto tokyo = format_now(t, "Asia/Tokyo");
  ASSERT_TRUE(tokyo.ok());
  EXPECT_EQ(*tokyo, "Wednesday 01 July 2026, 21:30 (Asia/Tokyo, JST)");
}

TEST(Render, UnknownZoneIsAnError) {
  auto r = format_now(at(0), "Mars/Olympus_Mons");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(r.error().message.find("Mars/Olympus_Mons"), std::string::npos);
}

TEST(Render, FillsEveryKnownVariable) {
  RenderContext ctx;
  ctx.user_name = "Ana";
  ctx.channel = "discord";
  ctx.memories = "likes tea";
  ctx.now = at(0);
  auto values = values_for(ctx);
  ASSERT_TRUE(values.ok());
  for (const auto& name : known_variables()) EXPECT_EQ(values->count(name), 1u) << name;
  auto t = Template::parse("{{user.name}} on {{channel}} at {{now}}: {{memories}}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->render(*values),
            "Ana on discord at Thursday 01 January 1970, 00:00 (UTC, UTC): likes tea");
}

}  // namespace render_test
}  // namespace parley::prompts
