// AccessPolicy::decide and the `access:` / `lanes:` configuration keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "parley/bot/config/config.h"
#include "parley/bot/pipeline/access.h"

namespace access_test {

using parley::bot::config::ConfigError;
using parley::bot::config::parse_config;
using parley::bot::pipeline::AccessPolicy;
using ::testing::HasSubstr;

TEST(AccessPolicyTest, OpenByDefaultWithTheTerminalAsTheOnlyAdmin) {
  const AccessPolicy p;
  EXPECT_TRUE(p.decide("http", "anyone").allowed);
  EXPECT_FALSE(p.decide("http", "anyone").admin);
  EXPECT_TRUE(p.decide("console", "me").admin);
}

TEST(AccessPolicyTest, PrivateAdmitsOnlyTheAllowlistedAndTheAdmins) {
  AccessPolicy p;
  p.mode = AccessPolicy::Mode::private_bot;
  p.allow["http"] = {"alice"};
  p.admins = {"http:root"};
  EXPECT_TRUE(p.decide("http", "alice").allowed);
  EXPECT_FALSE(p.decide("http", "alice").admin);
  EXPECT_FALSE(p.decide("http", "bob").allowed);
  EXPECT_FALSE(p.decide("discord", "alice").allowed) << "an allowlist is per channel";
  EXPECT_TRUE(p.decide("http", "root").allowed);
  EXPECT_TRUE(p.decide("http", "root").admin);
  EXPECT_FALSE(p.decide("console", "me").allowed)
      << "admins replaced: the terminal is no longer one";
}

TEST(AccessPolicyTest, AnAllowlistRestrictsItsChannelEvenWhenOpen) {
  AccessPolicy p;
  p.allow["http"] = {"alice"};
  p.allow["email"] = {"*"};
  EXPECT_FALSE(p.decide("http", "bob").allowed);
  EXPECT_TRUE(p.decide("email", "bob").allowed);
  EXPECT_TRUE(p.decide("discord", "bob").allowed);
}

TEST(AccessConfigTest, KeysParse) {
  const auto cfg = parse_config(R"(access:
  mode: private
  allow: {http: [alice, bob]}
  admins: ["http:alice"]
  rate_limit: {messages: 5, per_seconds: 10}
  refusal: "Go away, kindly."
lanes: {debounce_ms: 0, max_wait_ms: 100}
)",
                                "parley.yaml");
  EXPECT_EQ(cfg.access.mode, AccessPolicy::Mode::private_bot);
  EXPECT_EQ(cfg.access.allow.at("http"), (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(cfg.access.admins, (std::vector<std::string>{"http:alice"}));
  EXPECT_EQ(cfg.access.rate_messages, 5);
  EXPECT_EQ(cfg.access.rate_window.count(), 10);
  EXPECT_EQ(cfg.access.refusal, "Go away, kindly.");
  EXPECT_EQ(cfg.lanes.debounce.count(), 0);
  EXPECT_EQ(cfg.lanes.max_wait.count(), 100);
}

TEST(AccessConfigTest, ErrorsNameTheKeyAndLine) {
  auto error_of = [](const std::string& yaml) {
    try {
      (void)parse_config(yaml, "parley.yaml");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error_of("access:\n  mode: secret\n"),
              HasSubstr("parley.yaml:2:9: access.mode: 'secret' is not one of open, private"));
  EXPECT_THAT(error_of("access:\n  admins: [alice]\n"),
              HasSubstr("access.admins[0]: 'alice': expected CHANNEL:SENDER"));
  EXPECT_THAT(error_of("access:\n  allow: {http: alice}\n"),
              HasSubstr("access.allow.http: expected a list"));
  EXPECT_THAT(
      error_of("access:\n  rate_limit: {messages: -1}\n"),
      HasSubstr("access.rate_limit.messages: expected an integer in [0, 1000000], found -1"));
  EXPECT_THAT(error_of("lanes:\n  debounce: 3\n"), HasSubstr("lanes.debounce: unknown key"));
}

}  // namespace access_test
