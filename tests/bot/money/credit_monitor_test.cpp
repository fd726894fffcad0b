// CreditMonitor against the fake OpenRouter credit endpoints: exact snapshots, the /credits
// fallback to /key, low-balance and runway alerts, polls after N calls and on the timer, faults,
// stop(), and the keys kept out of logs, errors, the database and alerts.
#include "parley/bot/money/credit_monitor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "fakes/fake_openrouter.h"
#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::bot::money {
namespace credit_monitor_test {

using fakes::FakeAnswer;
using fakes::FakeCredits;
using fakes::FakeKeyInfo;
using fakes::FakeOpenRouter;
using fakes::OpenRouterEndpoint;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kKey = "sk-or-v1-SECRET-api-0123456789abcdef";
constexpr const char* kManagement = "sk-or-v1-SECRET-mgmt-fedcba9876543210";
constexpr int64_t kStart = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kUsd = 1'000'000'000;

// Records every log line with its level.
class LogCapture {
 public:
  struct Line {
    spdlog::level::level_enum level;
    std::string text;
  };

  LogCapture() : sink_(std::make_shared<Sink>()), previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  [[nodiscard]] std::vector<Line> lines() const { return sink_->lines(); }
  [[nodiscard]] std::string all() const {
    std::string out;
    for (const auto& l : lines()) out += l.text + "\n";
    return out;
  }
  [[nodiscard]] size_t count_at_least(spdlog::level::level_enum level) const {
    size_t n = 0;
    for (const auto& l : lines()) n += l.level >= level ? 1 : 0;
    return n;
  }

 private:
  class Sink final : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::vector<Line> lines() {
      const std::lock_guard lock(mutex_);
      return lines_;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      lines_.push_back(Line{msg.level, std::string(msg.payload.begin(), msg.payload.end())});
    }
    void flush_() override {}

   private:
    std::vector<Line> lines_;
  };

  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

class RecordingSink final : public AlertSink {
 public:
  void raise(AlertRaise alert) override {
    const std::lock_guard lock(mu_);
    alerts_.push_back(std::move(alert));
  }
  std::vector<AlertRaise> alerts() const {
    const std::lock_guard lock(mu_);
    return alerts_;
  }
  void clear() {
    const std::lock_guard lock(mu_);
    alerts_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<AlertRaise> alerts_;
};

template <typename Pred>
bool wait_until(Pred pred, milliseconds limit = milliseconds(10'000)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

FakeOpenRouter::Options fake_options(bool management) {
  FakeOpenRouter::Options o;
  o.api_key = kKey;
  if (management) o.management_key = kManagement;
  return o;
}

class CreditMonitorTest : public ::testing::Test {
 protected:
  explicit CreditMonitorTest(bool management = false)
      : work_(net::asio::make_work_guard(ioc_)),
        multi_(ioc_.get_executor()),
        fake_(fake_options(management)) {
    storage::StoreOptions so;
    so.path = dir_ / "credit.db";
    so.clock = &clock_;
    store_ = std::move(storage::Store::open(so).value());
    thread_ = std::thread([this] { ioc_.run(); });
    options_.base_url = fake_.base_url();
    options_.api_key = kKey;
    options_.interval = std::chrono::seconds(0);
    options_.every_calls = 0;
    options_.request_timeout = milliseconds(5'000);
  }
  ~CreditMonitorTest() override {
    monitor_.reset();
    multi_.shutdown();
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  CreditMonitor& monitor() {
    if (!monitor_) {
      monitor_ = std::make_unique<CreditMonitor>(ioc_.get_executor(), multi_, store_->credits(),
                                                 sink_, clock_, options_);
    }
    return *monitor_;
  }

  Result<CreditStatus> poll() {
    auto p = std::make_shared<std::promise<Result<CreditStatus>>>();
    auto f = p->get_future();
    monitor().poll_now([p](Result<CreditStatus> r) { p->set_value(std::move(r)); });
    if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      ADD_FAILURE() << "poll_now did not complete";
      return fail(ErrorCode::deadline_exceeded, "test: poll_now did not complete");
    }
    return f.get();
  }

  std::vector<storage::CreditSnapshot> rows() {
    auto r = store_->credits().since("openrouter", 0);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::vector<storage::CreditSnapshot>{};
  }

  static FakeKeyInfo limited(double limit, double usage, double daily = 0) {
    FakeKeyInfo k;
    k.limit = limit;
    k.usage = usage;
    k.limit_remaining = limit - usage;
    k.usage_daily = daily;
    k.usage_weekly = daily;
    k.usage_monthly = usage;
    return k;
  }

  testing::TempDir dir_;
  ManualClock clock_{kStart};
  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  http::CurlMulti multi_;
  std::thread thread_;
  FakeOpenRouter fake_;
  std::unique_ptr<storage::Store> store_;
  RecordingSink sink_;
  CreditMonitorOptions options_;
  std::unique_ptr<CreditMonitor> monitor_;
};

class CreditMonitorWithManagementKey : public CreditMonitorTest {
 protected:
  CreditMonitorWithManagementKey() : CreditMonitorTest(true) {
    options_.management_key = kManagement;
  }
};

TEST(CreditMonitorHelpers, Balance) {
  storage::CreditSnapshot s;
  s.usage_nanousd = 3 * kUsd;
  EXPECT_FALSE(CreditMonitor::balance_of(s).has_value());  // no limit, no account figures
  s.total_credits_nanousd = 10 * kUsd;
  s.total_usage_nanousd = 4 * kUsd;
  EXPECT_EQ(CreditMonitor::balance_of(s), 6 * kUsd);
  s.limit_nanousd = 5 * kUsd;
  s.remaining_nanousd = 2 * kUsd;
  EXPECT_EQ(CreditMonitor::balance_of(s), 2 * kUsd);  // the key's limit is the smaller
  s.remaining_nanousd = 8 * kUsd;
  EXPECT_EQ(CreditMonitor::balance_of(s), 6 * kUsd);  // the account holds less than the limit
}

TEST_F(CreditMonitorWithManagementKey, SnapshotIsStoredWithExactFigures) {
  FakeKeyInfo k;
  k.label = "sk-or-v1-0a1...f9e";
  k.limit = 10;
  k.limit_remaining = 7.654321987;
  k.usage = 2.345678013;
  k.usage_daily = 0.5;
  k.usage_weekly = 1.25;
  k.usage_monthly = 2.000000001;
  k.is_free_tier = true;
  fake_.set_key(k);
  fake_.set_credits(FakeCredits{25.5, 3.25});

  auto r = poll();
  ASSERT_TRUE(r.ok()) << r.error().describe();
  const auto all = rows();
  ASSERT_EQ(all.size(), 1u);
  const auto& s = all[0];
  EXPECT_EQ(s.ts, kStart);
  EXPECT_EQ(s.provider, "openrouter");
  EXPECT_EQ(s.limit_nanousd, 10 * kUsd);
  EXPECT_EQ(s.usage_nanousd, 2'345'678'013);
  EXPECT_EQ(s.remaining_nanousd, 7'654'321'987);
  EXPECT_TRUE(s.is_free_tier);
  EXPECT_EQ(s.usage_daily_nanousd, 500'000'000);
  EXPECT_EQ(s.usage_weekly_nanousd, 1'250'000'000);
  EXPECT_EQ(s.usage_monthly_nanousd, 2'000'000'001);
  EXPECT_EQ(s.total_credits_nanousd, 25'500'000'000);
  EXPECT_EQ(s.total_usage_nanousd, 3'250'000'000);

  // The stored JSON is the two response bodies, the label scrubbed.
  const auto raw = nlohmann::json::parse(s.raw, nullptr, false);
  ASSERT_TRUE(raw.is_object()) << s.raw;
  EXPECT_EQ(raw["key"]["data"]["label"], "[redacted]");
  EXPECT_EQ(raw["key"]["data"]["usage"], 2.345678013);
  EXPECT_EQ(raw["credits"]["data"]["total_credits"], 25.5);
  EXPECT_THAT(s.raw, Not(HasSubstr("0a1...f9e")));

  const CreditStatus& st = *r;
  ASSERT_TRUE(st.latest.has_value());
  EXPECT_EQ(st.latest->id, s.id);
  EXPECT_EQ(st.balance_nanousd, 7'654'321'987);  // the key's limit; the account holds $22.25
  EXPECT_EQ(st.last_poll_ms, kStart);
  EXPECT_EQ(st.last_error, "");
  EXPECT_TRUE(st.credits_endpoint_allowed);
  EXPECT_EQ(st.polls, 1u);
  EXPECT_EQ(monitor().status().latest->id, s.id);

  // The API key went to /key, the management key to /credits only.
  for (const auto& req : fake_.requests()) {
    if (req.target == "/api/v1/key") {
      EXPECT_EQ(req.authorization, std::string("Bearer ") + kKey);
    }
    if (req.target == "/api/v1/credits") {
      EXPECT_EQ(req.authorization, std::string("Bearer ") + kManagement);
    }
  }
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::key), 1u);
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::credits), 1u);
}

TEST_F(CreditMonitorWithManagementKey, AccountBalanceWhenTheKeyHasNoLimit) {
  FakeKeyInfo k;  // no limit
  k.usage = 1;
  fake_.set_key(k);
  fake_.set_credits(FakeCredits{20, 17.5});
  auto r = poll();
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->balance_nanousd, 2'500'000'000);
  EXPECT_FALSE(r->latest->limit_nanousd.has_value());
  EXPECT_FALSE(r->latest->remaining_nanousd.has_value());
}

TEST_F(CreditMonitorTest, CreditsForbiddenFallsBackToKeyAskedOnceWithoutWarnings) {
  LogCapture logs;
  FakeKeyInfo k;  // no limit, and /credits refuses the key: the balance is unknown
  k.usage = 4.5;
  fake_.set_key(k);
  for (int i = 0; i < 3; ++i) {
    clock_.advance_ms(kHour);
    auto r = poll();
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->last_error, "");
    EXPECT_FALSE(r->credits_endpoint_allowed);
    EXPECT_FALSE(r->balance_nanousd.has_value());
    EXPECT_FALSE(r->runway_hours.has_value());
  }
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::credits), 1u);
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::key), 3u);
  const auto all = rows();
  ASSERT_EQ(all.size(), 3u);
  for (const auto& s : all) {
    EXPECT_EQ(s.usage_nanousd, 4'500'000'000);
    EXPECT_FALSE(s.total_credits_nanousd.has_value());
    EXPECT_FALSE(nlohmann::json::parse(s.raw).contains("credits"));
  }
  EXPECT_EQ(logs.count_at_least(spdlog::level::warn), 0u) << logs.all();
  size_t told = 0;
  for (const auto& l : logs.lines()) {
    if (l.text.find("management key") != std::string::npos) {
      ++told;
      EXPECT_EQ(l.level, spdlog::level::info);
      EXPECT_THAT(l.text, HasSubstr("/api/v1/credits"));
    }
  }
  EXPECT_EQ(told, 1u) << logs.all();
  EXPECT_TRUE(sink_.alerts().empty());
}

TEST_F(CreditMonitorTest, RefusedManagementKeyIsReportedOnceAndNotRetried) {
  options_.management_key = "sk-or-v1-not-the-management-key";
  LogCapture logs;
  fake_.set_key(limited(10, 1));
  ASSERT_TRUE(poll().ok());
  ASSERT_TRUE(poll().ok());
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::credits), 1u);
  EXPECT_FALSE(monitor().status().credits_endpoint_allowed);
  EXPECT_EQ(logs.count_at_least(spdlog::level::warn), 1u) << logs.all();
  EXPECT_THAT(logs.all(), Not(HasSubstr("sk-or-v1-not-the-management-key")));
}

TEST_F(CreditMonitorTest, LowBalanceWarningThenCritical) {
  options_.warning_nanousd = 5 * kUsd;
  options_.critical_nanousd = 1 * kUsd;
  fake_.set_key(limited(10, 4));  // $6 left: nothing
  ASSERT_TRUE(poll().ok());
  EXPECT_TRUE(sink_.alerts().empty());

  fake_.set_key(limited(10, 6));  // $4 left
  ASSERT_TRUE(poll().ok());
  auto alerts = sink_.alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].kind, "low_balance");
  EXPECT_EQ(alerts[0].severity, Severity::warning);
  EXPECT_EQ(alerts[0].subject, "openrouter");
  EXPECT_EQ(alerts[0].period_key, "2023-11-14");
  EXPECT_EQ(alerts[0].value, 4.0);
  EXPECT_EQ(alerts[0].threshold, 5.0);
  EXPECT_EQ(alerts[0].unit, "USD");
  EXPECT_THAT(alerts[0].message, HasSubstr("$4.00"));
  EXPECT_THAT(alerts[0].message, HasSubstr("$5.00"));

  // Below the critical threshold, the next UTC day: critical only, with that day's key.
  sink_.clear();
  clock_.advance_ms(2 * kHour);  // 2023-11-15T00:13:20Z
  fake_.set_key(limited(10, 9.5));
  ASSERT_TRUE(poll().ok());
  alerts = sink_.alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].kind, "low_balance");
  EXPECT_EQ(alerts[0].severity, Severity::critical);
  EXPECT_EQ(alerts[0].period_key, "2023-11-15");
  EXPECT_EQ(alerts[0].value, 0.5);
  EXPECT_EQ(alerts[0].threshold, 1.0);
  EXPECT_THAT(alerts[0].message, HasSubstr("$0.5000"));

  // Every poll under a threshold raises again: deduplication is the sink's.
  ASSERT_TRUE(poll().ok());
  EXPECT_EQ(sink_.alerts().size(), 2u);
}

TEST_F(CreditMonitorTest, RunwayFromTwoSnapshots) {
  options_.runway_hours = 100;
  fake_.set_key(limited(100, 10));  // usage_daily 0: no rate yet
  auto first = poll();
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_EQ(first->balance_nanousd, 90 * kUsd);
  EXPECT_FALSE(first->runway_hours.has_value());
  EXPECT_TRUE(sink_.alerts().empty());

  clock_.advance_ms(2 * kHour);
  fake_.set_key(limited(100, 12));  // $2 in 2 hours: $1/hour, $88 left
  auto second = poll();
  ASSERT_TRUE(second.ok()) << second.error().describe();
  ASSERT_TRUE(second->runway_hours.has_value());
  EXPECT_NEAR(*second->runway_hours, 88.0, 1e-9);
  EXPECT_NEAR(*monitor().status().runway_hours, 88.0, 1e-9);
  const auto alerts = sink_.alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].kind, "runway");
  EXPECT_EQ(alerts[0].severity, Severity::warning);
  EXPECT_EQ(alerts[0].subject, "openrouter");
  EXPECT_EQ(alerts[0].period_key, "2023-11-15");  // 2023-11-15T00:13:20Z
  EXPECT_NEAR(*alerts[0].value, 88.0, 1e-9);
  EXPECT_EQ(alerts[0].threshold, 100.0);
  EXPECT_EQ(alerts[0].unit, "hours");
  EXPECT_THAT(alerts[0].message, HasSubstr("88.0 hours"));
  EXPECT_THAT(alerts[0].message, HasSubstr("$1.00/hour"));
}

TEST_F(CreditMonitorTest, RunwayLooksBackOneDayAndFallsBackToUsageDaily) {
  fake_.set_key(limited(100, 10));
  ASSERT_TRUE(poll().ok());
  // 25 hours later the first snapshot is too old: usage_daily / 24 gives the rate.
  clock_.advance_ms(25 * kHour);
  fake_.set_key(limited(100, 20, 4.8));  // $0.20/hour, $80 left
  auto r = poll();
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->runway_hours.has_value());
  EXPECT_NEAR(*r->runway_hours, 400.0, 1e-9);
  // An hour later the rate comes from that snapshot: $1 in one hour.
  clock_.advance_ms(kHour);
  fake_.set_key(limited(100, 21, 5.8));
  r = poll();
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->runway_hours.has_value());
  EXPECT_NEAR(*r->runway_hours, 79.0, 1e-9);
  // No spend in the last hour: the rate is still measured from the oldest snapshot of the day.
  clock_.advance_ms(kHour);
  r = poll();
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(*r->runway_hours, 2 * 79.0, 1e-9);  // $1 over two hours from the oldest
}

// The wall clock jumping (an NTP step): set back two hours, a snapshot "from the future" gives
// no rate (no negative spend, no division by a negative span), and no runway alert is raised
// from it; set forward a day, the old snapshots fall out of the window and usage_daily gives
// the rate. Polls keep their schedule either way (their timer runs on the steady clock:
// StartPollsAtOnceThenOnTheIntervalUntilStopped).
TEST_F(CreditMonitorTest, AClockJumpNeverGivesANegativeOrFutureRate) {
  options_.runway_hours = 1e6;
  fake_.set_key(limited(100, 10));
  ASSERT_TRUE(poll().ok());
  clock_.advance_ms(-2 * kHour);
  fake_.set_key(limited(100, 11));
  auto back = poll();
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_FALSE(back->runway_hours.has_value()) << "the earlier snapshot is later than now";
  EXPECT_TRUE(sink_.alerts().empty());
  clock_.advance_ms(3 * kHour);  // an hour after the first snapshot
  fake_.set_key(limited(100, 12));
  auto on = poll();
  ASSERT_TRUE(on.ok());
  ASSERT_TRUE(on->runway_hours.has_value());
  // Measured from the snapshot stamped earliest (the one taken while the clock was back): $1
  // over three hours by the clock, $88 left. An estimate from what the clock said, never
  // negative or infinite.
  EXPECT_NEAR(*on->runway_hours, 264.0, 1e-9);
  clock_.advance_ms(30 * kHour);  // a day and more forward
  fake_.set_key(limited(100, 13, 2.4));
  auto ahead = poll();
  ASSERT_TRUE(ahead.ok());
  ASSERT_TRUE(ahead->runway_hours.has_value());
  EXPECT_NEAR(*ahead->runway_hours, 870.0, 1e-9) << "usage_daily $2.40: $0.10/hour, $87 left";
}

TEST_F(CreditMonitorTest, ZeroSpendMeansUnknownRunway) {
  options_.runway_hours = 1e9;
  fake_.set_key(limited(100, 10));
  ASSERT_TRUE(poll().ok());
  clock_.advance_ms(kHour);
  auto r = poll();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->runway_hours.has_value());
  EXPECT_TRUE(sink_.alerts().empty());
}

TEST_F(CreditMonitorTest, PollsAfterEveryNCalls) {
  options_.every_calls = 3;
  fake_.set_key(limited(10, 1));
  for (int i = 0; i < 3; ++i) monitor().on_call();  // not started: not counted
  monitor().start();                                // polls once (no interval here)
  ASSERT_TRUE(wait_until([&] { return rows().size() == 1; }));
  monitor().on_call();
  monitor().on_call();
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::key), 1u);
  monitor().on_call();
  ASSERT_TRUE(wait_until([&] { return rows().size() == 2; }));
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::key), 2u);
  for (int i = 0; i < 3; ++i) monitor().on_call();
  ASSERT_TRUE(wait_until([&] { return rows().size() == 3; }));
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::key), 3u);
}

TEST_F(CreditMonitorTest, OnCallFromManyThreadsNeverBlocksAndPolls) {
  options_.every_calls = 10;
  fake_.set_key(limited(10, 1));
  monitor().start();
  ASSERT_TRUE(wait_until([&] { return rows().size() == 1; }));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 25; ++i) monitor_->on_call();
    });
  }
  for (auto& t : threads) t.join();
  // 100 calls: ten triggers, folded into the poll in flight when they come during one.
  ASSERT_TRUE(wait_until([&] { return rows().size() >= 2; }));
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_GE(fake_.request_count(OpenRouterEndpoint::key), 2u);
  EXPECT_LE(fake_.request_count(OpenRouterEndpoint::key), 11u);
}

TEST_F(CreditMonitorTest, StartPollsAtOnceThenOnTheIntervalUntilStopped) {
  options_.interval = std::chrono::seconds(1);
  fake_.set_key(limited(10, 1));
  monitor().start();
  ASSERT_TRUE(wait_until([&] { return rows().size() == 1; }, milliseconds(3'000)));
  ASSERT_TRUE(wait_until([&] { return rows().size() == 2; }, milliseconds(5'000)));
  monitor().stop();
  const size_t asked = fake_.request_count(OpenRouterEndpoint::key);
  std::this_thread::sleep_for(milliseconds(1'500));
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::key), asked);
}

TEST_F(CreditMonitorTest, FaultsGiveLastErrorAndNoRow) {
  struct Case {
    FakeAnswer answer;
    ErrorCode code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {FakeAnswer::error(500, "upstream exploded"), ErrorCode::unavailable,
       "HTTP 500: upstream exploded"},
      {FakeAnswer::error(401, "User not found."), ErrorCode::unauthenticated, "HTTP 401"},
      {FakeAnswer::error(429, "slow down"), ErrorCode::resource_exhausted, "HTTP 429"},
      {FakeAnswer::malformed(), ErrorCode::internal, "not valid JSON"},
      {FakeAnswer::raw(R"({"data": []})"), ErrorCode::internal, "no \"data\" object"},
      {FakeAnswer::raw(R"({"data": {"limit": null}})"), ErrorCode::internal,
       "data.usage is missing"},
      {FakeAnswer::raw(R"({"data": {"usage": "12"}})"), ErrorCode::internal,
       "data.usage is not a number"},
      {FakeAnswer::raw(R"({"data": {"usage": 1, "limit": true}})"), ErrorCode::internal,
       "data.limit is not a number"},
      {FakeAnswer::raw(R"({"data": {"usage": 1, "is_free_tier": 0}})"), ErrorCode::internal,
       "data.is_free_tier"},
  };
  uint64_t failed = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    fake_.push(OpenRouterEndpoint::key, c.answer);
    auto r = poll();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, c.code);
    EXPECT_THAT(r.error().message, HasSubstr("GET /api/v1/key"));
    EXPECT_THAT(r.error().message, HasSubstr(c.says));
    const auto st = monitor().status();
    EXPECT_EQ(st.last_error, r.error().message);
    EXPECT_EQ(st.failed_polls, ++failed);
    EXPECT_FALSE(st.latest.has_value());
  }
  EXPECT_TRUE(rows().empty());
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::credits), 0u);  // /key failed first

  // A good poll clears the error.
  fake_.set_key(limited(10, 1));
  auto ok = poll();
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->last_error, "");
  EXPECT_EQ(rows().size(), 1u);
}

TEST_F(CreditMonitorTest, SlowAnswerMeetsTheDeadline) {
  options_.request_timeout = milliseconds(300);
  fake_.push(OpenRouterEndpoint::key, FakeAnswer::delayed(milliseconds(3'000)));
  auto r = poll();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::deadline_exceeded);
  EXPECT_THAT(r.error().message, HasSubstr("GET /api/v1/key: no answer"));
  EXPECT_TRUE(rows().empty());
}

TEST_F(CreditMonitorTest, ConnectionRefusedIsAnError) {
  std::string url;
  {
    FakeOpenRouter gone;
    url = gone.base_url();
  }
  options_.base_url = url;
  auto r = poll();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_THAT(r.error().message, HasSubstr("GET /api/v1/key: no answer (connection failed"));
  EXPECT_TRUE(rows().empty());
}

TEST_F(CreditMonitorWithManagementKey, FailingCreditsStillStoresTheKeySnapshot) {
  fake_.set_key(limited(10, 2));
  fake_.push(OpenRouterEndpoint::credits, FakeAnswer::error(502, "bad gateway"));
  auto r = poll();
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_THAT(r->last_error, HasSubstr("GET /api/v1/credits: HTTP 502"));
  EXPECT_TRUE(r->credits_endpoint_allowed);  // a fault, not a refusal: asked again next time
  const auto all = rows();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].usage_nanousd, 2 * kUsd);
  EXPECT_FALSE(all[0].total_credits_nanousd.has_value());
  fake_.set_credits(FakeCredits{30, 5});
  r = poll();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->last_error, "");
  EXPECT_EQ(r->latest->total_credits_nanousd, 30 * kUsd);
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::credits), 2u);
}

TEST_F(CreditMonitorWithManagementKey, TheKeysNeverReachLogsErrorsTheDatabaseOrAlerts) {
  LogCapture logs;
  options_.warning_nanousd = 100 * kUsd;
  options_.runway_hours = 1e6;
  FakeKeyInfo k = limited(10, 2, 1);
  k.label = kKey;  // as if OpenRouter put the whole key in the label
  fake_.set_key(k);
  fake_.set_credits(FakeCredits{30, 5});
  ASSERT_TRUE(poll().ok());
  // Error bodies that echo the keys.
  fake_.push(OpenRouterEndpoint::key, FakeAnswer::error(401, std::string("bad key ") + kKey));
  auto refused = poll();
  ASSERT_FALSE(refused.ok());
  fake_.push(OpenRouterEndpoint::credits,
             FakeAnswer::raw(std::string("<html>") + kManagement, 500));
  clock_.advance_ms(kHour);
  auto partial = poll();
  ASSERT_TRUE(partial.ok());
  EXPECT_THAT(partial->last_error, HasSubstr("HTTP 500"));
  fake_.push(OpenRouterEndpoint::key, FakeAnswer::raw(std::string("not json ") + kKey));
  ASSERT_FALSE(poll().ok());

  std::vector<std::string> texts = {logs.all(), refused.error().message, partial->last_error,
                                    monitor().status().last_error};
  for (const auto& s : rows()) texts.push_back(s.raw);
  for (const auto& a : sink_.alerts()) texts.push_back(a.message);
  EXPECT_GE(sink_.alerts().size(), 2u);            // low balance and runway
  EXPECT_THAT(logs.all(), HasSubstr("HTTP 401"));  // something was logged
  for (const auto& t : texts) {
    EXPECT_THAT(t, Not(HasSubstr(kKey)));
    EXPECT_THAT(t, Not(HasSubstr(kManagement)));
    EXPECT_THAT(t, Not(HasSubstr("SECRET")));
  }
}

TEST_F(CreditMonitorTest, AfterStopNothingIsCalled) {
  options_.warning_nanousd = 100 * kUsd;
  fake_.set_key(limited(10, 1));
  fake_.push(OpenRouterEndpoint::key, FakeAnswer::delayed(milliseconds(400)));
  std::atomic<int> called{0};
  monitor().poll_now([&called](const Result<CreditStatus>&) { ++called; });
  ASSERT_TRUE(wait_until([&] { return fake_.request_count(OpenRouterEndpoint::key) == 1; }));
  monitor().stop();
  monitor().poll_now([&called](const Result<CreditStatus>&) { ++called; });
  monitor().on_call();
  monitor().start();
  std::this_thread::sleep_for(milliseconds(800));
  EXPECT_EQ(called.load(), 0);
  EXPECT_TRUE(rows().empty());
  EXPECT_TRUE(sink_.alerts().empty());
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::key), 1u);
  monitor().stop();  // idempotent
}

TEST_F(CreditMonitorTest, StopFromInsideACallbackDoesNotDeadlock) {
  fake_.set_key(limited(10, 1));
  std::promise<void> done;
  monitor().poll_now([&](const Result<CreditStatus>& r) {
    EXPECT_TRUE(r.ok());
    monitor_->stop();
    done.set_value();
  });
  ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

TEST_F(CreditMonitorTest, PollNowDuringAPollGetsAFreshPoll) {
  fake_.set_key(limited(10, 1));
  fake_.push(OpenRouterEndpoint::key, FakeAnswer::delayed(milliseconds(300)));
  std::promise<Result<CreditStatus>> first;
  monitor().poll_now([&first](Result<CreditStatus> r) { first.set_value(std::move(r)); });
  ASSERT_TRUE(wait_until([&] { return fake_.request_count(OpenRouterEndpoint::key) == 1; }));
  fake_.set_key(limited(10, 3));
  auto second = poll();  // queued behind the first, then a poll of its own
  ASSERT_TRUE(second.ok());
  auto one = first.get_future().get();
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->latest->usage_nanousd, 1 * kUsd);
  EXPECT_EQ(second->latest->usage_nanousd, 3 * kUsd);
  EXPECT_EQ(fake_.request_count(OpenRouterEndpoint::key), 2u);
}

TEST_F(CreditMonitorTest, NoApiKeyIsAClearError) {
  options_.api_key.clear();
  auto r = poll();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unauthenticated);
  EXPECT_THAT(r.error().message, HasSubstr("no API key"));
  EXPECT_EQ(fake_.request_count(), 0u);
}

}  // namespace credit_monitor_test
}  // namespace parley::bot::money
