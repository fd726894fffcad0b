// Rest against FakeDiscord: the invalid-request breaker stops sending far below Discord's ban
// and says so once; a 401 disables the token; the figures /metrics shows.
#include "channels/discord/rest.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <thread>

#include "fakes/fake_discord.h"

namespace parley::bot::channels::discord {
namespace rest_test {

namespace asio = net::asio;
using parley::fakes::DiscordFault;
using parley::fakes::FakeDiscord;
namespace route = parley::fakes::discord_route;

class DiscordRestTest : public ::testing::Test {
 protected:
  DiscordRestTest()
      : discord_(FakeDiscord::Options{}),
        work_(asio::make_work_guard(ioc_)),
        multi_(ioc_.get_executor()) {
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~DiscordRestTest() override {
    rest_.reset();
    multi_.shutdown();
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  void make(int invalid_limit, size_t max_buckets = 4096) {
    Rest::Options o;
    o.max_buckets = max_buckets;
    o.api_base = discord_.api_base();
    o.token = discord_.token();
    o.invalid_limit = invalid_limit;
    o.max_retries = 0;
    rest_ = std::make_unique<Rest>(ioc_.get_executor(), multi_, o, [this](const std::string& line) {
      const std::lock_guard lock(mu_);
      alerts_.push_back(line);
    });
  }

  RestReply get_me() {
    std::promise<RestReply> done;
    auto f = done.get_future();
    asio::co_spawn(
        ioc_,
        [this]() -> asio::awaitable<RestReply> {
          const std::string method = "GET";
          const std::string path = "/users/@me";
          co_return co_await rest_->call(method, path);
        },
        [&done](const std::exception_ptr&, RestReply r) { done.set_value(std::move(r)); });
    return f.get();
  }

  RestReply typing(const std::string& channel) {
    std::promise<RestReply> done;
    auto f = done.get_future();
    asio::co_spawn(
        ioc_,
        [this, channel]() -> asio::awaitable<RestReply> {
          const std::string method = "POST";
          const std::string path = "/channels/" + channel + "/typing";
          co_return co_await rest_->call(method, path);
        },
        [&done](const std::exception_ptr&, RestReply r) { done.set_value(std::move(r)); });
    return f.get();
  }

  size_t sent_to(const char* route_key) const {
    size_t n = 0;
    for (const auto& r : discord_.requests()) n += r.route == route_key ? 1 : 0;
    return n;
  }

  std::vector<std::string> alerts() {
    const std::lock_guard lock(mu_);
    return alerts_;
  }

  FakeDiscord discord_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  http::CurlMulti multi_;
  std::unique_ptr<Rest> rest_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> alerts_;
};

TEST_F(DiscordRestTest, TheInvalidRequestBreakerStopsSendingAndSaysSoOnce) {
  make(5);
  for (int i = 0; i < 5; ++i) {
    discord_.push_fault(route::kCurrentUser, DiscordFault::error(403, "Missing Access", 50001));
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(get_me().status, 403);
  EXPECT_EQ(rest_->stats().invalid_10min, 5u);
  const RestReply refused = get_me();
  EXPECT_EQ(refused.status, 0) << "not sent";
  EXPECT_NE(refused.error.find("too many invalid requests"), std::string::npos) << refused.error;
  EXPECT_EQ(get_me().status, 0);
  EXPECT_EQ(sent_to(route::kCurrentUser), 5u) << "nothing sent past the breaker";
  const auto said = alerts();
  ASSERT_EQ(said.size(), 1u) << "said once";
  EXPECT_NE(said[0].find("5 invalid requests"), std::string::npos) << said[0];
}

TEST_F(DiscordRestTest, A401DisablesTheTokenAndNothingMoreIsSent) {
  make(1000);
  discord_.push_fault(route::kCurrentUser, DiscordFault::error(401, "401: Unauthorized"));
  EXPECT_EQ(get_me().status, 401);
  const RestReply after = get_me();
  EXPECT_EQ(after.status, 0);
  EXPECT_NE(after.error.find("refused (401)"), std::string::npos) << after.error;
  EXPECT_EQ(sent_to(route::kCurrentUser), 1u);
  EXPECT_TRUE(rest_->stats().token_disabled);
  ASSERT_EQ(alerts().size(), 1u);
  EXPECT_EQ(alerts()[0].find(discord_.token()), std::string::npos) << "never the token";
}

TEST_F(DiscordRestTest, A429IsCountedByRouteAndWaitedOut) {
  make(1000);
  discord_.push_fault(route::kCurrentUser, DiscordFault::rate_limited(0.2));
  EXPECT_EQ(get_me().status, 200);
  const auto stats = rest_->stats();
  EXPECT_EQ(stats.rate_limited, 1u);
  ASSERT_EQ(stats.limited_by_route.count("GET /users/@me"), 1u);
  EXPECT_EQ(stats.limited_by_route.at("GET /users/@me"), 1u);
  EXPECT_EQ(discord_.rate_limit_violations(), 0u) << "the retry waited for retry_after";
}

TEST_F(DiscordRestTest, IdleBucketsAreForgottenSoManyChannelsDoNotGrowWithoutEnd) {
  make(1000, /*max_buckets=*/4);
  for (int i = 0; i < 40; ++i) {
    EXPECT_NE(typing(FakeDiscord::snowflake()).status, 0) << "sent and answered (404: unknown)";
    EXPECT_LE(rest_->stats().buckets, 5u) << "after " << i + 1 << " channels";
  }
  EXPECT_EQ(discord_.rate_limit_violations(), 0u);
}

}  // namespace rest_test
}  // namespace parley::bot::channels::discord
