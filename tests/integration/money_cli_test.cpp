// `parley alerts` and `parley report credits` as an operator runs them: over a database that
// holds alerts, a credit poll and usage rows; numbers as stored; acks by id; clear errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "parley/storage/alert_repository.h"
#include "parley/storage/credit_repository.h"
#include "parley/storage/store.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace money_cli_test {

using parley::testing::contains;
using parley::testing::parley;
using parley::testing::TempDir;

void seed(const std::filesystem::path& db) {
  parley::storage::StoreOptions so;
  so.path = db;
  auto store = std::move(parley::storage::Store::open(so).value());
  parley::storage::AlertRepository alerts(store->writes(), store->reads(),
                                          parley::SystemClock::instance());
  parley::storage::AlertRecord a;
  a.kind = "low_balance";
  a.severity = "warning";
  a.subject = "openrouter";
  a.period_key = "2026-12-05";
  a.message = "balance $4.00 under $5.00";
  ASSERT_TRUE(alerts.raise(a).get().ok());
  a.kind = "unknown_price";
  a.subject = "mystery-model";
  a.message = "model mystery-model has no price in prices.yaml";
  ASSERT_TRUE(alerts.raise(a).get().ok());
  parley::storage::CreditSnapshot s;
  s.provider = "openrouter";
  s.limit_nanousd = 50'000'000'000;
  s.remaining_nanousd = 4'000'000'000;
  s.usage_nanousd = 46'000'000'000;
  s.usage_daily_nanousd = 1'250'000'000;
  ASSERT_TRUE(store->credits().record(s).get().ok());
}

TEST(MoneyCli, AlertsListsOpenOnesAndAcksById) {
  TempDir dir;
  seed(dir / "m.db");
  auto r = parley(dir.path(), "--db m.db alerts --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["alerts"].size(), 2u);
  EXPECT_EQ(j["alerts"][0]["kind"], "unknown_price");  // newest first
  const int64_t id = j["alerts"][1]["id"];

  r = parley(dir.path(), "--db m.db alerts ack " + std::to_string(id));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "acknowledged")) << r.out;
  r = parley(dir.path(), "--db m.db alerts");
  EXPECT_TRUE(contains(r.out, "unknown_price")) << r.out;
  EXPECT_FALSE(contains(r.out, "low_balance")) << r.out;
  r = parley(dir.path(), "--db m.db alerts all");
  EXPECT_TRUE(contains(r.out, "low_balance")) << r.out;
  EXPECT_TRUE(contains(r.out, "acknowledged by cli:")) << r.out;

  r = parley(dir.path(), "--db m.db alerts ack 999");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "there is no alert #999")) << r.err;
  r = parley(dir.path(), "--db m.db alerts ack nine");
  EXPECT_EQ(r.code, 2);
}

TEST(MoneyCli, ReportCreditsShowsTheLastPollAndTheOpenAlerts) {
  TempDir dir;
  seed(dir / "m.db");
  auto r = parley(dir.path(), "--db m.db report credits --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["balance_usd"], "4.000000000");
  EXPECT_EQ(j["limit_usd"], "50.000000000");
  EXPECT_EQ(j["usage_daily_usd"], "1.250000000");
  EXPECT_EQ(j["open_alerts"], 2);
  r = parley(dir.path(), "--db m.db report credits");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "balance $4.00 (key limit $50.00)")) << r.out;
  EXPECT_TRUE(contains(r.out, "2 open alerts")) << r.out;
}

TEST(MoneyCli, WithoutADatabaseItSaysSo) {
  TempDir dir;
  auto r = parley(dir.path(), "--db none.db alerts");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "no database at none.db")) << r.err;
}

}  // namespace money_cli_test
