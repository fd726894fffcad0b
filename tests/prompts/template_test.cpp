// Tests of prompt templates: parse once, render in one pass, unknown variables rejected with
// their name and line, and a missing value never rendered as a blank.
#include "parley/prompts/template.h"

#include <gtest/gtest.h>

namespace parley::prompts {
namespace template_test {

TEST(Template, RendersKnownVariables) {
  auto t = Template::parse("Hello {{user.name}} on {{ channel }}.\nNow: {{now}}");
  ASSERT_TRUE(t.ok()) << t.error().describe();
  auto out = t->render({{"user.name", "Ana"}, {"channel", "discord"}, {"now", "Mon 09:00"}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "Hello Ana on discord.\nNow: Mon 09:00");
  EXPECT_EQ(t->variables(), (std::vector<std::string>{"user.name", "channel", "now"}));
}

TEST(Template, ValuesAreNotReparsed) {
  auto t = Template::parse("{{memories}}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->render({{"memories", "{{summary}}"}}), "{{summary}}");
}

TEST(Template, UnknownVariableNamesItAndItsLine) {
  auto t = Template::parse("line one\nline two {{user.nmae}}\n");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(t.error().message.find("user.nmae"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("line 2"), std::string::npos) << t.error().message;
}

TEST(Template, UnclosedAndEmptyVariablesAreErrors) {
  auto a = Template::parse("a\nb\n{{channel");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("line 3"), std::string::npos) << a.error().message;
  EXPECT_FALSE(Template::parse("{{ }}").ok());
}

TEST(Template, MissingValueIsAnErrorNotABlank) {
  auto t = Template::parse("{{summary}}");
  ASSERT_TRUE(t.ok());
  auto out = t->render({});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("summary"), std::string::npos);
}

TEST(Template, PlainTextAndSingleBracesPassThrough) {
  auto t = Template::parse("JSON like {\"a\": 1} stays; } and { too");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->render({}), "JSON like {\"a\": 1} stays; } and { too");
}

}  // namespace template_test
}  // namespace parley::prompts
