// /commands without the LLM: built-ins answered in one line, /help per caller, unknown
// commands, permissions, rate limits, usage errors and timeouts.
#include "parley/bot/pipeline/command_router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "parley/capabilities/builtins.h"

namespace parley::bot {
namespace command_router_test {

namespace caps = parley::capabilities;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

class Slow final : public caps::Capability {
 public:
  std::string_view name() const override { return "slow"; }
  std::string_view description() const override { return "takes its time"; }
  json parameters() const override { return {{"type", "object"}}; }

 protected:
  void invoke_async_(const caps::InvokeContext&, const json&, caps::Done done) override {
    parked_.push_back(std::move(done));
  }

 private:
  std::vector<caps::Done> parked_;
};

class Secret final : public caps::Capability {
 public:
  std::string_view name() const override { return "secret"; }
  std::string_view description() const override { return "admins only"; }
  json parameters() const override { return {{"type", "object"}}; }
  caps::Flags flags() const override { return {caps::SideEffects::none, true, false}; }

 protected:
  Result<json> invoke_(const caps::InvokeContext&, const json&) override {
    return json{{"text", "42"}};
  }
};

class CommandRouterTest : public ::testing::Test {
 protected:
  CommandRouterTest() : work_(net::asio::make_work_guard(ioc_)) {
    thread_ = std::thread([this] { ioc_.run(); });
    EXPECT_TRUE(caps::register_builtins(registry_).ok());
    EXPECT_TRUE(registry_.add(std::make_unique<Slow>()).ok());
    EXPECT_TRUE(registry_.add(std::make_unique<Secret>()).ok());
    config_ =
        std::make_shared<caps::CapabilitiesConfig>(caps::default_capabilities_config(registry_));
  }
  ~CommandRouterTest() override {
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  pipeline::CommandReply run(const std::string& text, bool admin = false) {
    caps::InvokeContext ctx;
    ctx.caller = caps::Caller{5, "alice", "UTC", admin, {}};
    ctx.channel = "console";
    std::promise<pipeline::CommandReply> p;
    net::asio::co_spawn(
        net::asio::make_strand(ioc_), router_.run(text, ctx, config_),
        [&p](std::exception_ptr, pipeline::CommandReply r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  std::thread thread_;
  caps::Registry registry_;
  caps::RateLimiter limiter_;
  pipeline::CommandRouter router_{registry_, limiter_};
  std::shared_ptr<caps::CapabilitiesConfig> config_;
};

TEST_F(CommandRouterTest, IsCommand) {
  EXPECT_TRUE(pipeline::is_command("/calc 1+1"));
  EXPECT_TRUE(pipeline::is_command("/help"));
  EXPECT_FALSE(pipeline::is_command("/"));
  EXPECT_FALSE(pipeline::is_command("/ 1"));
  EXPECT_FALSE(pipeline::is_command("//comment"));
  EXPECT_FALSE(pipeline::is_command("hello /calc"));
}

TEST_F(CommandRouterTest, CalcAnswersInOneLine) {
  const auto r = run("/calc 2*(3+4)");
  EXPECT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.capability, "calc");
  EXPECT_EQ(r.text, "14");
  EXPECT_EQ(run("/CALC 123*456").text, "56088") << "command names are case-insensitive";
}

TEST_F(CommandRouterTest, ErrorsAreOneClearLine) {
  const auto syntax = run("/calc 2*");
  EXPECT_FALSE(syntax.ok);
  EXPECT_THAT(syntax.text, HasSubstr("calc"));
  EXPECT_THAT(syntax.text, Not(HasSubstr("\n")));
  const auto zero = run("/calc 1/0");
  EXPECT_FALSE(zero.ok);
  EXPECT_THAT(zero.text, HasSubstr("division by zero"));
}

TEST_F(CommandRouterTest, UnknownCommandPointsToHelp) {
  const auto r = run("/weather Paris");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.text, "Unknown command /weather. /help lists what you can use.");
}

TEST_F(CommandRouterTest, HelpListsWhatThisCallerMayUse) {
  const auto r = run("/help");
  EXPECT_TRUE(r.ok);
  EXPECT_THAT(r.text, HasSubstr("/calc EXPRESSION — "));
  EXPECT_THAT(r.text, HasSubstr("/todo add TEXT"));
  EXPECT_THAT(r.text, Not(HasSubstr("/secret"))) << "admin-only is not offered";
  EXPECT_THAT(run("/help", true).text, HasSubstr("/secret"));
  config_->by_name["calc"].enabled = false;
  EXPECT_THAT(run("/help").text, Not(HasSubstr("/calc")));
}

TEST_F(CommandRouterTest, PermissionsAreExplained) {
  EXPECT_EQ(run("/secret").text, "Sorry: secret is for administrators only.");
  EXPECT_EQ(run("/secret", true).text, "42");
  config_->by_name["calc"].enabled = false;
  EXPECT_EQ(run("/calc 1+1").text, "Sorry: calc is disabled.");
  config_->by_name["calc"].enabled = true;
  config_->by_name["calc"].allow.channels = {"email"};
  EXPECT_EQ(run("/calc 1+1").text, "Sorry: calc is not available on console.");
}

TEST_F(CommandRouterTest, RateLimitedWithAClearMessage) {
  config_->by_name["calc"].rate_limit = {2, std::chrono::seconds(60)};
  EXPECT_TRUE(run("/calc 1").ok);
  EXPECT_TRUE(run("/calc 2").ok);
  const auto r = run("/calc 3");
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.text, HasSubstr("too fast; try again in"));
}

TEST_F(CommandRouterTest, ATimeoutIsOneLine) {
  config_->by_name["slow"].timeout = std::chrono::milliseconds(100);
  const auto r = run("/slow");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.text, "slow did not answer in time");
}

TEST_F(CommandRouterTest, ResultTextPrefersTheTextField) {
  EXPECT_EQ(pipeline::result_text(json{{"text", "hi"}, {"x", 1}}), "hi");
  EXPECT_EQ(pipeline::result_text(json{{"x", 1}}), R"({"x":1})");
}

}  // namespace command_router_test
}  // namespace parley::bot
