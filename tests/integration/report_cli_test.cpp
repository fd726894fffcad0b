// `parley report usage` as an operator runs it, on a database whose ledger the test wrote through
// storage::Store: the JSON totals equal the ledger's sums to the nano-dollar, CSV and the table
// print, and a bad period is a clear error with exit code 2.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "parley/storage/store.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace report_cli_test {

using parley::testing::contains;
using parley::testing::parley;
using parley::testing::TempDir;

constexpr int64_t kMar9 = 1'709'942'400'000;  // 2024-03-09T00:00:00Z
constexpr int64_t kHour = 3'600'000;

struct Ledger {
  int64_t calls = 0;
  int64_t failed = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t actual = 0;
  int64_t estimated = 0;
  int64_t cost = 0;
  int64_t without_cost = 0;
};

class ReportCli : public ::testing::Test {
 protected:
  // Writes `n` varied calls from 2024-03-09 00:00Z on, one every 37 minutes, and returns their
  // sums; plus one call now, for --since.
  Ledger write_ledger(int n) {
    parley::storage::StoreOptions o;
    o.path = db_;
    auto store = std::move(parley::storage::Store::open(o).value());
    const int64_t alice = store->directory().ensure_user("console", "alice", "Alice").get()->row_id;
    const int64_t bob =
        store->directory().ensure_user("discord", "42", "Bob, \"the builder\"").get()->row_id;
    Ledger sums;
    for (int i = 0; i < n; ++i) {
      parley::storage::UsageRecord r;
      r.ts = kMar9 + i * 37 * 60'000;
      r.user_id = i % 3 == 0 ? alice : bob;
      r.purpose = "turn";
      r.model_requested = i % 2 == 0 ? "openai/gpt-4o-mini" : "acme/model, \"large\"";
      r.model_answered = r.model_requested;
      r.prompt_tokens = 1000 + i;
      r.completion_tokens = 50 + i;
      r.latency_ms = 100 + i;
      r.success = i % 11 != 0;
      if (i % 4 != 0) r.cost_actual_nanousd = 123'457 * (i + 1);
      if (i % 5 != 0) r.cost_estimated_nanousd = 120'001 * (i + 1);
      sums.calls += 1;
      sums.failed += r.success ? 0 : 1;
      sums.prompt_tokens += r.prompt_tokens;
      sums.completion_tokens += r.completion_tokens;
      sums.actual += r.cost_actual_nanousd.value_or(0);
      sums.estimated += r.cost_estimated_nanousd.value_or(0);
      sums.cost +=
          r.cost_actual_nanousd ? *r.cost_actual_nanousd : r.cost_estimated_nanousd.value_or(0);
      sums.without_cost += !r.cost_actual_nanousd && !r.cost_estimated_nanousd ? 1 : 0;
      EXPECT_TRUE(store->usage().record(r).get().ok());
    }
    parley::storage::UsageRecord recent;
    recent.ts = 0;  // now
    recent.purpose = "turn";
    recent.model_requested = "recent/model";
    recent.cost_actual_nanousd = 5;
    EXPECT_TRUE(store->usage().record(recent).get().ok());
    return sums;
  }

  std::string db_args() const { return "--db " + parley::testing::quote(db_.string()); }

  TempDir dir_;
  std::filesystem::path db_ = dir_ / "ledger.db";
};

TEST_F(ReportCli, JsonTotalsEqualTheLedgerSums) {
  const Ledger want = write_ledger(120);  // 2024-03-09 00:00Z … 2024-03-12 01:23Z
  for (const char* by : {"day", "model", "user", "conversation", "capability"}) {
    auto r =
        parley(dir_.path(), db_args() + " report usage --from 2024-03-09 --to 2024-03-12 --by " +
                                by + " --format json");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    const auto& t = j["totals"];
    EXPECT_EQ(t["calls"], want.calls) << by;
    EXPECT_EQ(t["failed"], want.failed) << by;
    EXPECT_EQ(t["prompt_tokens"], want.prompt_tokens) << by;
    EXPECT_EQ(t["completion_tokens"], want.completion_tokens) << by;
    EXPECT_EQ(t["cost_actual"]["nanousd"], want.actual) << by;
    EXPECT_EQ(t["cost_estimated"]["nanousd"], want.estimated) << by;
    EXPECT_EQ(t["cost"]["nanousd"], want.cost) << by;
    EXPECT_EQ(t["calls_without_cost"], want.without_cost) << by;
    EXPECT_EQ(j["group_by"], by);
    // The rows add up to the totals.
    int64_t calls = 0;
    int64_t cost = 0;
    for (const auto& row : j["rows"]) {
      calls += row["calls"].get<int64_t>();
      cost += row["cost"]["nanousd"].get<int64_t>();
    }
    EXPECT_EQ(calls, want.calls) << by;
    EXPECT_EQ(cost, want.cost) << by;
  }
  // The usd string is the exact decimal of the integer.
  auto r = parley(dir_.path(),
                  db_args() + " report usage --from 2024-03-09 --to 2024-03-12 --format json");
  const auto j = nlohmann::json::parse(r.out);
  const int64_t n = want.cost;
  EXPECT_EQ(
      j["totals"]["cost"]["usd"], std::to_string(n / 1'000'000'000) + "." + [&] {
        std::string frac = std::to_string(n % 1'000'000'000);
        return std::string(9 - frac.size(), '0') + frac;
      }());
  ASSERT_EQ(j["rows"].size(), 4U);  // four UTC days
  EXPECT_EQ(j["rows"][0]["key"], "2024-03-09");
}

TEST_F(ReportCli, SinceCountsBackFromNow) {
  write_ledger(10);
  auto r = parley(dir_.path(), db_args() + " report usage --since 24h --by model --format json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["totals"]["calls"], 1);
  ASSERT_EQ(j["rows"].size(), 1U);
  EXPECT_EQ(j["rows"][0]["key"], "recent/model");
}

TEST_F(ReportCli, CsvAndTablePrint) {
  write_ledger(30);
  auto csv =
      parley(dir_.path(),
             db_args() + " report usage --from 2024-03-09 --to 2024-03-10 --by user --format csv");
  ASSERT_EQ(csv.code, 0) << csv.err;
  EXPECT_EQ(csv.out.rfind("kind,key,label,id,calls,", 0), 0U) << csv.out;
  EXPECT_TRUE(contains(csv.out, ",\"Bob, \"\"the builder\"\"\",")) << csv.out;
  EXPECT_TRUE(contains(csv.out, "\r\ntotal,total,")) << csv.out;

  auto table = parley(
      dir_.path(),
      db_args() + " report usage --from 2024-03-09 --to 2024-03-10 --by model --tz Europe/Paris");
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_TRUE(contains(table.out, "openai/gpt-4o-mini")) << table.out;
  EXPECT_TRUE(contains(table.out, "acme/model, \"large\"")) << table.out;
  EXPECT_TRUE(contains(table.out, "\ntotal ")) << table.out;
  EXPECT_TRUE(contains(table.out, "Europe/Paris")) << table.out;
  EXPECT_TRUE(contains(table.out, "p95 ms")) << table.out;
}

TEST_F(ReportCli, BadPeriodIsAClearErrorAndExitCode2) {
  write_ledger(1);
  auto since = parley(dir_.path(), db_args() + " report usage --since 7x");
  EXPECT_EQ(since.code, 2);
  EXPECT_TRUE(contains(since.err, "--since")) << since.err;
  EXPECT_TRUE(contains(since.err, "'7x'")) << since.err;
  EXPECT_TRUE(since.out.empty()) << since.out;

  auto from = parley(dir_.path(), db_args() + " report usage --from 2024-02-30 --to 2024-03-01");
  EXPECT_EQ(from.code, 2);
  EXPECT_TRUE(contains(from.err, "--from: '2024-02-30'")) << from.err;

  auto tz = parley(dir_.path(), db_args() + " report usage --tz Mars/Base");
  EXPECT_EQ(tz.code, 2);
  EXPECT_TRUE(contains(tz.err, "--tz: unknown time zone 'Mars/Base'")) << tz.err;

  auto by = parley(dir_.path(), db_args() + " report usage --by week");
  EXPECT_EQ(by.code, 2);
  EXPECT_TRUE(contains(by.err, "--by")) << by.err;

  auto none = parley(dir_.path(), "--db missing.db report usage");
  EXPECT_EQ(none.code, 2);
  EXPECT_TRUE(contains(none.err, "no database at missing.db")) << none.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "missing.db"));
}

}  // namespace report_cli_test
