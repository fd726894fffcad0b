// The money pages over a real store: /api/usage totals equal the ledger's sums, /api/alerts
// and /api/credits as the desk answers, /reports and /api/reports, /metrics in Prometheus text,
// 400 for a bad parameter (named), nothing for another path.
#include "parley/bot/app/money_pages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::bot {
namespace money_pages_test {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

class MoneyPagesTest : public ::testing::Test {
 protected:
  MoneyPagesTest() : work_(net::asio::make_work_guard(ioc_)) {
    storage::StoreOptions so;
    so.path = dir_ / "m.db";
    so.clock = &clock_;
    store_ = std::move(storage::Store::open(so).value());
    money::MoneyOptions money;
    money.daily = 5'000'000'000;
    money_ = std::move(
        money::Treasury::open(money, *store_, nullptr, ioc_.get_executor(), clock_).value());
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~MoneyPagesTest() override {
    money_.reset();
    work_.reset();
    ioc_.stop();
    thread_.join();
  }
  channels::Page get(const std::string& path, const std::string& query = "") {
    auto p = app::money_page({path, query}, *money_, *store_, clock_);
    EXPECT_TRUE(p.has_value()) << path;
    return p.value_or(channels::Page{});
  }
  void usage_row(const std::string& model, int64_t cost_nanousd, int64_t prompt) {
    storage::UsageRecord r;
    r.ts = clock_.now_ms() - 3'600'000;
    r.purpose = "turn";
    r.model_requested = r.model_answered = model;
    r.prompt_tokens = prompt;
    r.completion_tokens = 10;
    r.cost_actual_nanousd = cost_nanousd;
    ASSERT_TRUE(store_->usage().record(r).get().ok());
  }

  testing::TempDir dir_;
  ManualClock clock_{1'764'936'000'000};  // 2025-12-05 12:00 UTC
  std::unique_ptr<storage::Store> store_;
  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  std::unique_ptr<money::Treasury> money_;
  std::thread thread_;
};

TEST_F(MoneyPagesTest, UsageTotalsAreTheLedgersSums) {
  usage_row("a", 1'000, 100);
  usage_row("a", 2'500, 200);
  usage_row("b", 7, 5);
  const auto page = get("/api/usage", "since=1d&by=model");
  ASSERT_EQ(page.status, 200) << page.body;
  const auto j = json::parse(page.body);
  EXPECT_EQ(j["totals"]["calls"], 3);
  EXPECT_EQ(j["totals"]["prompt_tokens"], 305);
  EXPECT_EQ(j["totals"]["cost_actual"]["nanousd"], 3'507);
  EXPECT_EQ(j["rows"].size(), 2u);
  const auto csv = get("/api/usage", "since=1d&by=model&format=csv");
  EXPECT_THAT(csv.content_type, HasSubstr("text/csv"));
  const auto bad = get("/api/usage", "by=planet");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("planet"));
}

TEST_F(MoneyPagesTest, AlertsAndCreditsAreTheDesks) {
  money_->alerts().raise({"unknown_price", money::Severity::warning, "m", "",
                          "model m has no price", std::nullopt, std::nullopt, ""});
  for (int i = 0; i < 200 && money_->alert_store().list(true).value().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto alerts = json::parse(get("/api/alerts").body);
  ASSERT_EQ(alerts["alerts"].size(), 1u);
  EXPECT_EQ(alerts["alerts"][0]["kind"], "unknown_price");
  auto credits = json::parse(get("/api/credits").body);
  EXPECT_EQ(credits["open_alerts"], 1);
  ASSERT_EQ(credits["budgets"].size(), 1u);  // the capped global day; the month has no cap
  EXPECT_EQ(credits["budgets"][0]["cap_usd"], "5.000000000");
}

TEST_F(MoneyPagesTest, ReportsPageAndItsJsonCarryTheSameTotals) {
  usage_row("a", 1'234'567, 100);
  const auto html = get("/reports", "since=7d");
  ASSERT_EQ(html.status, 200);
  EXPECT_THAT(html.content_type, HasSubstr("text/html"));
  EXPECT_THAT(html.body, HasSubstr("<svg"));
  EXPECT_THAT(html.body, Not(HasSubstr("<script")));
  const auto j = json::parse(get("/api/reports", "since=7d").body);
  EXPECT_EQ(j["totals"]["cost"]["nanousd"], 1'234'567);
  EXPECT_THAT(html.body, HasSubstr("1234567"));
  EXPECT_THAT(html.body, HasSubstr("global daily"));
}

TEST_F(MoneyPagesTest, MetricsAreInPrometheusTextFormat) {
  const auto page = get("/metrics");
  EXPECT_THAT(page.content_type, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(page.body, HasSubstr("# TYPE parley_llm_calls_total counter"));
  EXPECT_THAT(page.body, HasSubstr("parley_budget_remaining_usd{budget=\"global "
                                   "daily\",period=\"2025-12-05\"} 5.000000000"));
  EXPECT_THAT(page.body, HasSubstr("parley_store_queue_depth "));
  EXPECT_THAT(page.body, HasSubstr("parley_up 1"));
  EXPECT_FALSE(app::money_page({"/elsewhere", ""}, *money_, *store_, clock_).has_value());
}

}  // namespace money_pages_test
}  // namespace parley::bot
