// Alerts: stored once per (kind, subject, period), delivered once (log, admin callback,
// webhook), deduplicated across a restart, acknowledged; the webhook URL never logged.
#include "parley/bot/money/alerts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <thread>

#include "fakes/http_site.h"
#include "parley/bot/money/desk.h"
#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::bot::money {
namespace alerts_test {

using ::testing::HasSubstr;
using ::testing::Not;

class AlertsTest : public ::testing::Test {
 protected:
  AlertsTest() : work_(net::asio::make_work_guard(ioc_)), multi_(ioc_.get_executor()) {
    storage::StoreOptions so;
    so.path = dir_ / "a.db";
    so.clock = &clock_;
    store_ = std::move(storage::Store::open(so).value());
    repo_ = std::make_unique<storage::AlertRepository>(store_->writes(), store_->reads(), clock_);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~AlertsTest() override {
    multi_.shutdown();
    work_.reset();
    ioc_.stop();
    thread_.join();
  }
  std::unique_ptr<AlertCenter> center(AlertOptions o = {}) {
    auto c =
        std::make_unique<AlertCenter>(*repo_, clock_, std::move(o), &multi_, ioc_.get_executor());
    c->on_new([this](const storage::AlertRecord& a) {
      std::lock_guard lock(mu_);
      delivered_.push_back(a);
    });
    return c;
  }
  size_t delivered() {
    std::lock_guard lock(mu_);
    return delivered_.size();
  }
  // Every raise answered and delivered, then every write that delivery queued (marking it
  // delivered) committed: the queue is first in, first out, so an empty job after them is a
  // barrier.
  void settle(AlertCenter& c) {
    c.wait_idle();
    ASSERT_TRUE(store_->writes()
                    .submit([](storage::Connection&) {
                      return Result<storage::WriteAck>(storage::WriteAck{});
                    })
                    .get()
                    .ok());
  }
  static AlertRaise low_balance(std::string period = "2026-12-05") {
    return {"low_balance",
            Severity::critical,
            "openrouter",
            std::move(period),
            "balance $0.50 under $1.00",
            0.5,
            1.0,
            "USD"};
  }

  testing::TempDir dir_;
  ManualClock clock_{1'764'892'800'000};
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<storage::AlertRepository> repo_;
  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  http::CurlMulti multi_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<storage::AlertRecord> delivered_;
};

TEST_F(AlertsTest, OneAlertPerKindSubjectAndPeriod) {
  auto c = center();
  for (int i = 0; i < 5; ++i) c->raise(low_balance());
  c->raise(low_balance("2026-12-06"));
  auto other = low_balance();
  other.subject = "openai";
  c->raise(other);
  settle(*c);
  const auto all = repo_->list(false).value();
  EXPECT_EQ(all.size(), 3u);
  EXPECT_EQ(delivered(), 3u);
  EXPECT_EQ(c->raised(), 3u);
  const auto& a = all.back();  // newest first: the first raised is last
  EXPECT_EQ(a.kind, "low_balance");
  EXPECT_EQ(a.severity, "critical");
  EXPECT_EQ(a.value, 0.5);
  EXPECT_EQ(a.threshold, 1.0);
  EXPECT_EQ(a.unit, "USD");
  EXPECT_TRUE(a.delivered_at.has_value());
}

TEST_F(AlertsTest, ACriticalAfterAWarningOfTheSameKindIsANewAlert) {
  auto c = center();
  auto warning = low_balance();
  warning.severity = Severity::warning;
  c->raise(warning);
  c->raise(low_balance());  // critical, the same day
  c->raise(low_balance());
  settle(*c);
  EXPECT_EQ(repo_->list(false).value().size(), 2u);
  EXPECT_EQ(delivered(), 2u);
}

TEST_F(AlertsTest, AnAlertStoredBeforeARestartIsNotDeliveredAgain) {
  auto first = center();
  first->raise(low_balance());
  settle(*first);
  EXPECT_EQ(delivered(), 1u);
  auto restarted = center();
  restarted->raise(low_balance());
  settle(*restarted);
  EXPECT_EQ(delivered(), 1u);
  EXPECT_EQ(repo_->list(false).value().size(), 1u);
}

TEST_F(AlertsTest, WithoutAPeriodTheDayInTheZoneIsUsed) {
  AlertOptions o;
  o.zone = "Pacific/Auckland";  // UTC+13 in December: already the 5th at 11:00
  auto c = center(o);
  auto a = low_balance("");
  c->raise(a);
  settle(*c);
  EXPECT_EQ(repo_->list(false).value().at(0).period_key, "2025-12-05");
}

TEST_F(AlertsTest, AcknowledgedThroughTheDesk) {
  auto c = center();
  c->raise(low_balance());
  settle(*c);
  const int64_t id = repo_->list(true).value().at(0).id;
  Desk desk(*repo_, store_->credits(), nullptr, nullptr, "openrouter", clock_);
  auto r = desk.ack(id, "console:admin").value();
  EXPECT_THAT(r["text"].get<std::string>(), HasSubstr("acknowledged"));
  EXPECT_TRUE(repo_->list(true).value().empty());
  EXPECT_EQ(repo_->list(false).value().at(0).acked_by, "console:admin");
  r = desk.ack(id, "console:other").value();
  EXPECT_THAT(r["text"].get<std::string>(), HasSubstr("already acknowledged by console:admin"));
  EXPECT_EQ(desk.ack(9999, "x").error().code, ErrorCode::not_found);
  const auto listed = desk.alerts(false).value();
  EXPECT_EQ(listed["alerts"].size(), 1u);
  EXPECT_THAT(listed["text"].get<std::string>(), HasSubstr("low_balance"));
}

TEST_F(AlertsTest, TheWebhookGetsNewAlertsAndItsUrlIsNeverLogged) {
  fakes::HttpSite site;
  site.set("/hook-SECRET-TOKEN", fakes::SitePage::text("ok"));
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto logger = std::make_shared<spdlog::logger>("capture", sink);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);

  AlertOptions o;
  o.webhook_url = site.url("/hook-SECRET-TOKEN");
  auto c = center(o);
  c->raise(low_balance());
  for (int i = 0; i < 200 && site.request_count() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(site.requested(), std::vector<std::string>{"/hook-SECRET-TOKEN"});

  // A webhook that fails is logged by its host only.
  AlertOptions broken;
  broken.webhook_url = site.url("/missing-SECRET-TOKEN");
  auto c2 = center(broken);
  c2->raise(low_balance("2026-12-07"));
  for (int i = 0; i < 200 && c2->webhook_failures() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(c2->webhook_failures(), 1u);
  spdlog::set_default_logger(previous);
  EXPECT_THAT(log.str(), HasSubstr("did not take it: HTTP 404"));
  EXPECT_THAT(log.str(), Not(HasSubstr("SECRET")));
}

}  // namespace alerts_test
}  // namespace parley::bot::money
