// The usage ledger table: rows written through the queue, exact sums per user and period.
#include "parley/storage/usage_repository.h"

#include <gtest/gtest.h>

#include <map>
#include <tuple>
#include <vector>

#include "parley/storage/sqlite.h"
#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::storage {
namespace usage_repository_test {

class UsageRepositoryTest : public ::testing::Test {
 protected:
  UsageRepositoryTest() {
    StoreOptions o;
    o.path = dir_ / "u.db";
    o.clock = &clock_;
    store_ = std::move(Store::open(o).value());
    alice_ = store_->directory().ensure_user("console", "alice", "Alice").get().value().row_id;
    bob_ = store_->directory().ensure_user("console", "bob", "Bob").get().value().row_id;
  }

  UsageRecord call(int64_t user, int64_t ts, std::optional<double> cost, bool ok = true) {
    UsageRecord r;
    r.ts = ts;
    r.user_id = user;
    r.purpose = "turn";
    r.model_requested = "m";
    r.model_answered = ok ? "m" : "";
    r.prompt_tokens = 100;
    r.completion_tokens = 10;
    r.cached_tokens = 5;
    r.reasoning_tokens = 1;
    if (cost) {
      r.cost_actual_nanousd = usd_to_nanousd(*cost);
      r.cost_source = "provider";
    }
    r.success = ok;
    if (!ok) r.error_kind = "rate_limited";
    return r;
  }

  testing::TempDir dir_;
  ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<Store> store_;
  int64_t alice_ = 0;
  int64_t bob_ = 0;
};

TEST_F(UsageRepositoryTest, SumsAreExactPerUserAndPeriod) {
  auto& u = store_->usage();
  // 0.1 + 0.2 is not 0.3 in floating point; in nano-dollars it is.
  ASSERT_TRUE(u.record(call(alice_, 1000, 0.1)).get().ok());
  ASSERT_TRUE(u.record(call(alice_, 2000, 0.2)).get().ok());
  ASSERT_TRUE(u.record(call(alice_, 3000, std::nullopt, false)).get().ok());
  ASSERT_TRUE(u.record(call(bob_, 2500, 1.5)).get().ok());

  auto a = u.summary({alice_, 0, INT64_MAX});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->calls, 3);
  EXPECT_EQ(a->failed, 1);
  EXPECT_EQ(a->prompt_tokens, 300);
  EXPECT_EQ(a->completion_tokens, 30);
  EXPECT_EQ(a->cached_tokens, 15);
  EXPECT_EQ(a->reasoning_tokens, 3);
  EXPECT_EQ(a->cost_actual_nanousd, 300'000'000);
  EXPECT_EQ(a->calls_without_cost, 1);

  auto everyone = u.summary({std::nullopt, 0, INT64_MAX});
  EXPECT_EQ(everyone->calls, 4);
  EXPECT_EQ(everyone->cost_actual_nanousd, 1'800'000'000);

  auto window = u.summary({std::nullopt, 2000, 3000});  // [2000, 3000)
  EXPECT_EQ(window->calls, 2);
  EXPECT_EQ(window->cost_actual_nanousd, 1'700'000'000);

  // By purpose, for one user and for everyone (each its own statement).
  UsageRecord extraction = call(alice_, 2200, 0.05);
  extraction.purpose = "extraction";
  ASSERT_TRUE(u.record(extraction).get().ok());
  EXPECT_EQ(u.summary({alice_, 0, INT64_MAX, "extraction"})->calls, 1);
  EXPECT_EQ(u.summary({alice_, 0, INT64_MAX, "turn"})->calls, 3);
  EXPECT_EQ(u.summary({bob_, 0, INT64_MAX, "extraction"})->calls, 0);
  EXPECT_EQ(u.summary({std::nullopt, 0, INT64_MAX, "turn"})->calls, 4);
  EXPECT_EQ(u.summary({std::nullopt, 0, 2300, "extraction"})->cost_actual_nanousd, 50'000'000);
  EXPECT_EQ(u.summary({alice_, 0, INT64_MAX})->calls, 4);
}

TEST_F(UsageRepositoryTest, ZeroTimestampMeansNowAndDetailsAreKept) {
  auto r = call(alice_, 0, 0.000123);
  r.tokens_estimated = true;
  r.generation_id = "gen-1";
  auto ack = store_->usage().record(r).get();
  ASSERT_TRUE(ack.ok()) << ack.error().describe();
  auto conn = store_->reads().acquire();
  auto st = conn->cached(
      "SELECT ts, tokens_estimated, generation_id, cost_actual_nanousd FROM usage WHERE id = ?");
  ASSERT_TRUE(st.ok());
  (*st)->bind_all(ack->row_id);
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 1'700'000'000'000);
  EXPECT_EQ((*st)->column_int64(1), 1);
  EXPECT_EQ((*st)->column_text(2), "gen-1");
  EXPECT_EQ((*st)->column_int64(3), 123'000);
}

// ---- reports ----

// A row with everything a report reads, each figure distinct enough to catch a swapped column.
UsageRecord row(int64_t ts, std::optional<int64_t> user, std::string model, int64_t latency,
                std::optional<int64_t> actual, std::optional<int64_t> estimate, bool ok = true) {
  UsageRecord r;
  r.ts = ts;
  r.user_id = user;
  r.purpose = "turn";
  r.model_requested = model;
  r.model_answered = ok ? model : "";
  r.prompt_tokens = 1000 + latency;
  r.completion_tokens = 100 + latency;
  r.cached_tokens = 10 + latency;
  r.reasoning_tokens = 1 + latency;
  r.latency_ms = latency;
  r.cost_actual_nanousd = actual;
  r.cost_estimated_nanousd = estimate;
  r.success = ok;
  if (!ok) r.error_kind = "unavailable";
  return r;
}

void expect_same_sums(const UsageReportRow& got, const UsageReportRow& want,
                      const std::string& what) {
  EXPECT_EQ(got.calls, want.calls) << what;
  EXPECT_EQ(got.failed, want.failed) << what;
  EXPECT_EQ(got.prompt_tokens, want.prompt_tokens) << what;
  EXPECT_EQ(got.completion_tokens, want.completion_tokens) << what;
  EXPECT_EQ(got.cached_tokens, want.cached_tokens) << what;
  EXPECT_EQ(got.reasoning_tokens, want.reasoning_tokens) << what;
  EXPECT_EQ(got.cost_actual_nanousd, want.cost_actual_nanousd) << what;
  EXPECT_EQ(got.cost_estimated_nanousd, want.cost_estimated_nanousd) << what;
  EXPECT_EQ(got.calls_without_cost, want.calls_without_cost) << what;
  EXPECT_EQ(got.cost_nanousd, want.cost_nanousd) << what;
}

void add(UsageReportRow& sum, const UsageRecord& r) {
  sum.calls += 1;
  sum.failed += r.success ? 0 : 1;
  sum.prompt_tokens += r.prompt_tokens;
  sum.completion_tokens += r.completion_tokens;
  sum.cached_tokens += r.cached_tokens;
  sum.reasoning_tokens += r.reasoning_tokens;
  sum.cost_actual_nanousd += r.cost_actual_nanousd.value_or(0);
  sum.cost_estimated_nanousd += r.cost_estimated_nanousd.value_or(0);
  sum.calls_without_cost += !r.cost_actual_nanousd && !r.cost_estimated_nanousd ? 1 : 0;
  sum.cost_nanousd +=
      r.cost_actual_nanousd ? *r.cost_actual_nanousd : r.cost_estimated_nanousd.value_or(0);
}

UsageReportRow sum_rows(const std::vector<UsageReportRow>& rows) {
  UsageReportRow s;
  for (const auto& r : rows) {
    s.calls += r.calls;
    s.failed += r.failed;
    s.prompt_tokens += r.prompt_tokens;
    s.completion_tokens += r.completion_tokens;
    s.cached_tokens += r.cached_tokens;
    s.reasoning_tokens += r.reasoning_tokens;
    s.cost_actual_nanousd += r.cost_actual_nanousd;
    s.cost_estimated_nanousd += r.cost_estimated_nanousd;
    s.calls_without_cost += r.calls_without_cost;
    s.cost_nanousd += r.cost_nanousd;
  }
  return s;
}

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kMar9_2024 = 1'709'942'400'000;  // 2024-03-09T00:00:00Z

TEST_F(UsageRepositoryTest, ReportTotalsEqualTheSumsOfInsertedRowsInEveryGrouping) {
  auto& u = store_->usage();
  const int64_t conv =
      store_->directory().ensure_conversation("console", "c1", "").get().value().row_id;
  UsageReportRow want;
  uint64_t seed = 12345;
  auto next = [&] { return seed = seed * 6364136223846793005ULL + 1442695040888963407ULL; };
  for (int i = 0; i < 200; ++i) {
    const uint64_t x = next() >> 20;
    const std::optional<int64_t> user =
        x % 3 == 0 ? std::optional<int64_t>() : (x % 3 == 1 ? alice_ : bob_);
    auto r =
        row(kMar9_2024 + static_cast<int64_t>(x % (5 * kDay)), user,
            x % 2 == 0 ? "openai/gpt-4o-mini" : "anthropic/claude", static_cast<int64_t>(x % 977),
            x % 4 == 0 ? std::optional<int64_t>() : static_cast<int64_t>(x % 9'999'999'937),
            x % 5 == 0 ? std::optional<int64_t>() : static_cast<int64_t>(x % 7'777'777'777),
            x % 7 != 0);
    if (x % 2 == 0) r.conversation_id = conv;
    if (x % 3 == 0) r.capability = "web_fetch";
    add(want, r);
    ASSERT_TRUE(u.record(r).get().ok());
  }
  // Outside the period: must not count.
  ASSERT_TRUE(u.record(row(kMar9_2024 - 1, alice_, "m", 5, 1, 1)).get().ok());
  ASSERT_TRUE(u.record(row(kMar9_2024 + 5 * kDay, alice_, "m", 5, 1, 1)).get().ok());
  ASSERT_GT(want.calls_without_cost, 0);
  ASSERT_GT(want.failed, 0);

  for (auto g : {UsageGroupBy::none, UsageGroupBy::day, UsageGroupBy::model, UsageGroupBy::user,
                 UsageGroupBy::conversation, UsageGroupBy::capability}) {
    UsageReportQuery q;
    q.from_ms = kMar9_2024;
    q.to_ms = kMar9_2024 + 5 * kDay;
    q.group_by = g;
    auto rep = u.report(q);
    ASSERT_TRUE(rep.ok()) << rep.error().describe();
    const std::string what(to_string(g));
    EXPECT_EQ(rep->totals.key, "total");
    expect_same_sums(rep->totals, want, what + " totals");
    if (g == UsageGroupBy::none) {
      EXPECT_TRUE(rep->rows.empty());
    } else {
      expect_same_sums(sum_rows(rep->rows), want, what + " rows");
    }
  }
}

TEST_F(UsageRepositoryTest, ReportGroupsByModelUserConversationAndCapability) {
  auto& u = store_->usage();
  const int64_t conv =
      store_->directory().ensure_conversation("discord", "chan-7", "").get().value().row_id;
  auto a = row(1000, alice_, "big", 10, 5'000, 4'000);
  a.conversation_id = conv;
  a.capability = "calc";
  auto b = row(2000, bob_, "small", 20, std::nullopt, 300);
  b.model_answered = "small-v2";  // answered by another model than asked
  auto c = row(3000, std::nullopt, "big", 30, std::nullopt, std::nullopt);
  for (const auto& r : {a, b, c}) ASSERT_TRUE(u.record(r).get().ok());

  UsageReportQuery q;
  q.group_by = UsageGroupBy::model;
  auto by_model = u.report(q).value();
  ASSERT_EQ(by_model.rows.size(), 2U);
  EXPECT_EQ(by_model.rows[0].key, "big");  // cost descending
  EXPECT_EQ(by_model.rows[0].calls, 2);
  EXPECT_EQ(by_model.rows[0].cost_nanousd, 5'000);  // actual preferred over estimate
  EXPECT_EQ(by_model.rows[0].cost_estimated_nanousd, 4'000);
  EXPECT_EQ(by_model.rows[0].calls_without_cost, 1);
  EXPECT_EQ(by_model.rows[1].key, "small-v2");
  EXPECT_EQ(by_model.rows[1].cost_nanousd, 300);

  q.group_by = UsageGroupBy::user;
  auto by_user = u.report(q).value();
  ASSERT_EQ(by_user.rows.size(), 3U);
  EXPECT_EQ(by_user.rows[0].key, std::to_string(alice_));
  EXPECT_EQ(by_user.rows[0].id, alice_);
  EXPECT_EQ(by_user.rows[0].label, "Alice");
  EXPECT_EQ(by_user.rows[1].label, "Bob");
  EXPECT_EQ(by_user.rows[2].key, "(none)");
  EXPECT_FALSE(by_user.rows[2].id.has_value());

  q.group_by = UsageGroupBy::conversation;
  auto by_conv = u.report(q).value();
  ASSERT_EQ(by_conv.rows.size(), 2U);
  EXPECT_EQ(by_conv.rows[0].id, conv);
  EXPECT_EQ(by_conv.rows[0].label, "discord:chan-7");
  EXPECT_EQ(by_conv.rows[1].key, "(none)");
  EXPECT_EQ(by_conv.rows[1].calls, 2);

  q.group_by = UsageGroupBy::capability;
  auto by_cap = u.report(q).value();
  ASSERT_EQ(by_cap.rows.size(), 2U);
  EXPECT_EQ(by_cap.rows[0].key, "calc");
  EXPECT_EQ(by_cap.rows[1].key, "(none)");

  // One user only.
  q.user_id = bob_;
  q.group_by = UsageGroupBy::model;
  auto bobs = u.report(q).value();
  EXPECT_EQ(bobs.totals.calls, 1);
  ASSERT_EQ(bobs.rows.size(), 1U);
  EXPECT_EQ(bobs.rows[0].key, "small-v2");
  // Their daily series too (the same filter, its own statement).
  auto bob_days = u.series(q).value();
  ASSERT_EQ(bob_days.size(), 1U);
  EXPECT_EQ(bob_days[0].calls, 1);
  EXPECT_EQ(bob_days[0].model, "small-v2");
}

TEST_F(UsageRepositoryTest, DaysAreLocalDaysOfTheZoneAcrossADstChange) {
  auto& u = store_->usage();
  // New York: 2024-03-10 starts at 05:00Z (EST, UTC-5); clocks spring forward at 07:00Z, so
  // 2024-03-11 starts at 04:00Z (EDT, UTC-4) and 2024-03-10 lasts 23 hours.
  const int64_t mar10_ny = kMar9_2024 + kDay + 5 * 3'600'000;
  const int64_t mar11_ny = kMar9_2024 + 2 * kDay + 4 * 3'600'000;
  for (int64_t ts : {mar10_ny - 1, mar10_ny, mar11_ny - 1, mar11_ny}) {
    ASSERT_TRUE(u.record(row(ts, alice_, "m", 1, 1'000, std::nullopt)).get().ok());
  }
  UsageReportQuery q;
  q.group_by = UsageGroupBy::day;
  q.zone = "America/New_York";
  auto ny = u.report(q);
  ASSERT_TRUE(ny.ok()) << ny.error().describe();
  ASSERT_EQ(ny->rows.size(), 3U);
  EXPECT_EQ(ny->rows[0].key, "2024-03-09");
  EXPECT_EQ(ny->rows[0].calls, 1);
  EXPECT_EQ(ny->rows[1].key, "2024-03-10");
  EXPECT_EQ(ny->rows[1].calls, 2);
  EXPECT_EQ(ny->rows[2].key, "2024-03-11");
  EXPECT_EQ(ny->rows[2].calls, 1);

  q.zone = "UTC";
  auto utc = u.report(q).value();
  ASSERT_EQ(utc.rows.size(), 2U);
  EXPECT_EQ(utc.rows[0].key, "2024-03-10");
  EXPECT_EQ(utc.rows[0].calls, 2);
  EXPECT_EQ(utc.rows[1].key, "2024-03-11");

  q.zone = "";  // UTC
  EXPECT_EQ(u.report(q).value().rows.size(), 2U);

  q.zone = "Asia/Kolkata";  // +05:30: 2024-03-10 05:00Z is 10:30 local, 04:00Z on the 11th 09:30
  auto kolkata = u.report(q).value();
  ASSERT_EQ(kolkata.rows.size(), 2U);
  EXPECT_EQ(kolkata.rows[0].key, "2024-03-10");
  EXPECT_EQ(kolkata.rows[1].key, "2024-03-11");

  q.zone = "Mars/Olympus_Mons";
  auto bad = u.report(q);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(bad.error().message.find("Mars/Olympus_Mons"), std::string::npos);
}

TEST_F(UsageRepositoryTest, LatencyPercentilesAreNearestRankOverSuccessfulCalls) {
  auto& u = store_->usage();
  // Model "twenty": 1..20 ms, inserted out of order; failed calls (slow) do not count.
  for (int64_t ms : {7, 3, 20, 1, 15, 9, 12, 2, 18, 5, 11, 4, 19, 6, 14, 8, 16, 10, 13, 17}) {
    ASSERT_TRUE(u.record(row(1000 + ms, alice_, "twenty", ms, 1, 1)).get().ok());
  }
  ASSERT_TRUE(u.record(row(5000, alice_, "twenty", 90'000, 1, 1, false)).get().ok());
  // "three": 5, 1, 9 → p50 = rank ceil(1.5) = 2 → 5; p95 = rank ceil(2.85) = 3 → 9.
  for (int64_t ms : {5, 1, 9})
    ASSERT_TRUE(u.record(row(2000 + ms, bob_, "three", ms, 1, 1)).get().ok());
  // "one": a single call → both percentiles are it.
  ASSERT_TRUE(u.record(row(3000, bob_, "one", 42, 1, 1)).get().ok());
  // "failing": no successful call → no percentiles.
  ASSERT_TRUE(u.record(row(4000, bob_, "failing", 7, 1, 1, false)).get().ok());

  UsageReportQuery q;
  q.group_by = UsageGroupBy::model;
  auto rep = u.report(q).value();
  std::map<std::string, UsageReportRow> by;
  for (const auto& r : rep.rows) by[r.key] = r;
  EXPECT_EQ(by["twenty"].latency_p50_ms, 10);  // rank 10 of 20
  EXPECT_EQ(by["twenty"].latency_p95_ms, 19);  // rank 19 of 20
  EXPECT_EQ(by["three"].latency_p50_ms, 5);
  EXPECT_EQ(by["three"].latency_p95_ms, 9);
  EXPECT_EQ(by["one"].latency_p50_ms, 42);
  EXPECT_EQ(by["one"].latency_p95_ms, 42);
  EXPECT_FALSE(by["failing"].latency_p50_ms.has_value());
  EXPECT_FALSE(by["failing"].latency_p95_ms.has_value());
  // Totals: 24 successful latencies 1..20, 1, 5, 9, 42 → sorted rank 12 is 9
  // (1,1,2,3,4,5,5,6,7,8,9,9), rank ceil(22.8) = 23 is 20, rank 24 is 42.
  EXPECT_EQ(rep.totals.latency_p50_ms, 9);
  EXPECT_EQ(rep.totals.latency_p95_ms, 20);

  UsageReportQuery empty;
  empty.from_ms = 1;
  empty.to_ms = 2;
  auto none = u.report(empty).value();
  EXPECT_EQ(none.totals.calls, 0);
  EXPECT_FALSE(none.totals.latency_p50_ms.has_value());
}

TEST_F(UsageRepositoryTest, SeriesIsPerLocalDayAndModelWithOneCost) {
  auto& u = store_->usage();
  const int64_t noon = kMar9_2024 + kDay / 2;
  ASSERT_TRUE(u.record(row(noon, alice_, "a", 1, 700, 500)).get().ok());            // actual 700
  ASSERT_TRUE(u.record(row(noon + 1, bob_, "a", 1, std::nullopt, 40)).get().ok());  // estimate 40
  ASSERT_TRUE(u.record(row(noon + 2, bob_, "b", 1, std::nullopt, std::nullopt)).get().ok());
  ASSERT_TRUE(u.record(row(noon + kDay, bob_, "b", 1, 9, std::nullopt)).get().ok());
  // 23:30 on the 9th in UTC is the 10th in Tokyo.
  ASSERT_TRUE(u.record(row(kMar9_2024 + kDay - 1'800'000, bob_, "b", 1, 3, 3)).get().ok());

  UsageReportQuery q;
  q.zone = "Asia/Tokyo";
  auto s = u.series(q);
  ASSERT_TRUE(s.ok()) << s.error().describe();
  ASSERT_EQ(s->size(), 3U);
  EXPECT_EQ((*s)[0].day, "2024-03-09");
  EXPECT_EQ((*s)[0].model, "a");
  EXPECT_EQ((*s)[0].calls, 2);
  EXPECT_EQ((*s)[0].cost_nanousd, 740);
  EXPECT_EQ((*s)[0].prompt_tokens, 2002);
  EXPECT_EQ((*s)[0].completion_tokens, 202);
  EXPECT_EQ((*s)[1].day, "2024-03-09");
  EXPECT_EQ((*s)[1].model, "b");
  EXPECT_EQ((*s)[1].calls_without_cost, 1);
  EXPECT_EQ((*s)[1].cost_nanousd, 0);
  EXPECT_EQ((*s)[2].day, "2024-03-10");
  EXPECT_EQ((*s)[2].model, "b");
  EXPECT_EQ((*s)[2].calls, 2);
  EXPECT_EQ((*s)[2].cost_nanousd, 12);

  q.zone = "Nowhere/Special";
  EXPECT_EQ(u.series(q).error().code, ErrorCode::invalid_argument);
}

// The report is computed in one scan (sums per group, percentiles picked in place); what it must
// agree with is SQL's own GROUP BY and nearest-rank windows over the same rows, which it used
// before. Rows with every kind of key (users and none, conversations and none, models answered
// or only requested, capabilities and none, UTC days), costs actual / estimated / both / none,
// failures, and latencies with ties, so that cost and call ties fall back to the key's order.
TEST_F(UsageRepositoryTest, ReportAndSeriesAgreeWithSqlGroupingOverManyRowsInEveryGrouping) {
  auto& u = store_->usage();
  const int64_t carol =
      store_->directory().ensure_user("discord", "carol", "Carol").get().value().row_id;
  std::vector<std::optional<int64_t>> users = {alice_, bob_, carol, std::nullopt};
  std::vector<std::optional<int64_t>> conversations = {std::nullopt};
  for (const char* c : {"c1", "c2", "c3"}) {
    conversations.push_back(
        store_->directory().ensure_conversation("discord", c, "").get().value().row_id);
  }
  uint64_t seed = 12345;
  const auto next = [&seed](uint64_t n) {  // a small LCG: the same rows on every run
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (seed >> 33) % n;
  };
  const int64_t day0 = 1'700'000'000'000;
  for (int i = 0; i < 600; ++i) {
    UsageRecord r;
    r.ts = day0 + static_cast<int64_t>(next(5)) * 86'400'000 + static_cast<int64_t>(next(1000));
    r.user_id = users[next(users.size())];
    r.conversation_id = conversations[next(conversations.size())];
    r.purpose = "turn";
    r.model_requested = next(2) == 0 ? "model-a" : "model-b-with-a-long-name";
    r.model_answered = next(3) == 0 ? "" : (next(2) == 0 ? "model-a" : "model-c");
    r.capability = next(3) == 0 ? "" : (next(2) == 0 ? "calc" : "web_fetch");
    r.prompt_tokens = static_cast<int64_t>(next(2000));
    r.completion_tokens = static_cast<int64_t>(next(500));
    r.cached_tokens = static_cast<int64_t>(next(100));
    r.reasoning_tokens = static_cast<int64_t>(next(50));
    r.latency_ms = static_cast<int64_t>(next(40)) * 10;  // ties
    const auto kind = next(4);                           // none, actual, estimated, both
    if (kind == 1 || kind == 3) r.cost_actual_nanousd = static_cast<int64_t>(next(3)) * 1000;
    if (kind == 2 || kind == 3) r.cost_estimated_nanousd = static_cast<int64_t>(next(3)) * 1000;
    r.success = next(5) != 0;
    if (!r.success) r.error_kind = "timeout";
    ASSERT_TRUE(u.record(std::move(r)).get().ok());
  }
  // Ties on cost and calls, which the key's order breaks: two users (and two capabilities, two
  // models) with one identical call each, the later id (and the smaller text) written first.
  const int64_t dave =
      store_->directory().ensure_user("discord", "dave", "Dave").get().value().row_id;
  const int64_t erin =
      store_->directory().ensure_user("discord", "erin", "Erin").get().value().row_id;
  for (const auto& [user, name] : {std::pair{erin, "tie-a"}, std::pair{dave, "tie-b"}}) {
    UsageRecord r;
    r.ts = day0 + 7 * int64_t{86'400'000};
    r.user_id = user;
    r.purpose = "turn";
    r.model_requested = name;
    r.capability = name;
    r.cost_actual_nanousd = 777;
    r.latency_ms = 5;
    ASSERT_TRUE(u.record(std::move(r)).get().ok());
  }

  auto conn = Connection::open(dir_ / "u.db", {.mode = ConnectionOptions::Mode::read_only});
  ASSERT_TRUE(conn.ok());
  // The rows SQL gives for key expression `key` (label and order as the report's), with the
  // nearest-rank percentiles of the successful calls' latencies.
  const auto by_sql = [&](const std::string& key, const std::string& label, const std::string& join,
                          bool by_key) {
    std::vector<UsageReportRow> rows;
    std::map<std::string, size_t> at;
    const std::string keyed = "CASE WHEN k IS NULL THEN '(none)' ELSE CAST(k AS TEXT) END";
    auto st = conn->prepare(
        "SELECT " + keyed + ", " + label +
        ", g.calls, g.failed, g.pt, g.ct, g.cat, g.rt, g.actual, g.est, g.nocost, g.cost FROM "
        "(SELECT " +
        key +
        " AS k, count(*) AS calls, sum(success = 0) AS failed, "
        "sum(prompt_tokens) AS pt, sum(completion_tokens) AS ct, sum(cached_tokens) AS cat, "
        "sum(reasoning_tokens) AS rt, coalesce(sum(cost_actual_nanousd), 0) AS actual, "
        "coalesce(sum(cost_estimated_nanousd), 0) AS est, "
        "sum(cost_actual_nanousd IS NULL AND cost_estimated_nanousd IS NULL) AS nocost, "
        "coalesce(sum(coalesce(cost_actual_nanousd, cost_estimated_nanousd)), 0) AS cost "
        "FROM usage GROUP BY k) AS g " +
        join + " ORDER BY " +
        (by_key ? std::string("g.k") : std::string("g.cost DESC, g.calls DESC, g.k")));
    EXPECT_TRUE(st.ok()) << st.error().describe();
    while (*st->step()) {
      UsageReportRow r;
      r.key = st->column_text(0);
      r.label = st->column_text(1);
      r.calls = st->column_int64(2);
      r.failed = st->column_int64(3);
      r.prompt_tokens = st->column_int64(4);
      r.completion_tokens = st->column_int64(5);
      r.cached_tokens = st->column_int64(6);
      r.reasoning_tokens = st->column_int64(7);
      r.cost_actual_nanousd = st->column_int64(8);
      r.cost_estimated_nanousd = st->column_int64(9);
      r.calls_without_cost = st->column_int64(10);
      r.cost_nanousd = st->column_int64(11);
      at[r.key] = rows.size();
      rows.push_back(std::move(r));
    }
    auto p = conn->prepare(
        "SELECT " + keyed +
        ", max(CASE WHEN rn = (n + 1) / 2 THEN latency_ms END), "
        "max(CASE WHEN rn = (95 * n + 99) / 100 THEN latency_ms END) FROM (SELECT k, latency_ms, "
        "row_number() OVER (PARTITION BY k ORDER BY latency_ms) AS rn, "
        "count(*) OVER (PARTITION BY k) AS n FROM (SELECT " +
        key + " AS k, latency_ms FROM usage WHERE success = 1)) GROUP BY k");
    EXPECT_TRUE(p.ok()) << p.error().describe();
    while (*p->step()) {
      auto& r = rows[at.at(p->column_text(0))];
      r.latency_p50_ms = p->column_opt_int64(1);
      r.latency_p95_ms = p->column_opt_int64(2);
    }
    return rows;
  };
  const auto figures = [](const UsageReportRow& r) {
    return std::tie(r.calls, r.failed, r.prompt_tokens, r.completion_tokens, r.cached_tokens,
                    r.reasoning_tokens, r.cost_actual_nanousd, r.cost_estimated_nanousd,
                    r.calls_without_cost, r.cost_nanousd, r.latency_p50_ms, r.latency_p95_ms);
  };
  const auto same = [&figures](const UsageReportRow& a, const UsageReportRow& b) {
    return figures(a) == figures(b);
  };

  struct Case {
    UsageGroupBy g;
    std::string key, label, join;
  };
  const std::vector<Case> cases = {
      {UsageGroupBy::day, "strftime('%Y-%m-%d', ts / 1000, 'unixepoch')", "''", ""},
      {UsageGroupBy::model, "coalesce(nullif(model_answered, ''), model_requested)", "''", ""},
      {UsageGroupBy::user, "user_id", "coalesce(x.display_name, '')",
       "LEFT JOIN users AS x ON x.id = g.k"},
      {UsageGroupBy::conversation, "conversation_id",
       "coalesce(x.channel || ':' || x.external_id, '')",
       "LEFT JOIN conversations AS x ON x.id = g.k"},
      {UsageGroupBy::capability, "coalesce(nullif(capability, ''), '(none)')", "''", ""},
  };
  const auto all = by_sql("''", "''", "", true);
  ASSERT_EQ(all.size(), 1U);
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(to_string(c.g)));
    UsageReportQuery q;
    q.group_by = c.g;
    q.zone = "UTC";
    auto report = u.report(q);
    ASSERT_TRUE(report.ok()) << report.error().describe();
    EXPECT_EQ(report->totals.key, "total");
    EXPECT_TRUE(same(report->totals, all[0]));
    EXPECT_EQ(report->totals.calls, 602);
    const auto want = by_sql(c.key, c.label, c.join, c.g == UsageGroupBy::day);
    ASSERT_EQ(report->rows.size(), want.size());
    EXPECT_GT(want.size(), 2U);
    for (size_t i = 0; i < want.size(); ++i) {
      SCOPED_TRACE("row " + std::to_string(i) + ": " + want[i].key);
      EXPECT_EQ(report->rows[i].key, want[i].key);
      EXPECT_EQ(report->rows[i].label, want[i].label);
      EXPECT_TRUE(same(report->rows[i], want[i]));
    }
  }

  // The chart's series (day × model, summed in one scan too) against SQL's GROUP BY d, m.
  UsageReportQuery q;
  q.zone = "UTC";
  auto series = u.series(q);
  ASSERT_TRUE(series.ok()) << series.error().describe();
  auto st = conn->prepare(
      "SELECT strftime('%Y-%m-%d', ts / 1000, 'unixepoch') AS d, "
      "coalesce(nullif(model_answered, ''), model_requested) AS m, count(*), "
      "coalesce(sum(coalesce(cost_actual_nanousd, cost_estimated_nanousd)), 0), "
      "sum(cost_actual_nanousd IS NULL AND cost_estimated_nanousd IS NULL), sum(prompt_tokens), "
      "sum(completion_tokens) FROM usage GROUP BY d, m ORDER BY d, m");
  ASSERT_TRUE(st.ok()) << st.error().describe();
  size_t i = 0;
  while (*st->step()) {
    ASSERT_LT(i, series->size());
    const auto& p = (*series)[i++];
    SCOPED_TRACE(p.day + " " + p.model);
    EXPECT_EQ(p.day, st->column_text(0));
    EXPECT_EQ(p.model, st->column_text(1));
    EXPECT_EQ(p.calls, st->column_int64(2));
    EXPECT_EQ(p.cost_nanousd, st->column_int64(3));
    EXPECT_EQ(p.calls_without_cost, st->column_int64(4));
    EXPECT_EQ(p.prompt_tokens, st->column_int64(5));
    EXPECT_EQ(p.completion_tokens, st->column_int64(6));
  }
  EXPECT_EQ(i, series->size());
  EXPECT_GT(i, 10U);
}

TEST(UsageGroupBy, NamesRoundTrip) {
  for (auto g : {UsageGroupBy::none, UsageGroupBy::day, UsageGroupBy::model, UsageGroupBy::user,
                 UsageGroupBy::conversation, UsageGroupBy::capability}) {
    EXPECT_EQ(parse_usage_group_by(to_string(g)), g);
  }
  EXPECT_FALSE(parse_usage_group_by("week").has_value());
}

TEST(UsdToNanousd, RoundsToNearest) {
  EXPECT_EQ(usd_to_nanousd(0.0), 0);
  EXPECT_EQ(usd_to_nanousd(1e-9), 1);
  EXPECT_EQ(usd_to_nanousd(0.00000000049), 0);
  EXPECT_EQ(usd_to_nanousd(12.345678901), 12'345'678'901);
}

}  // namespace usage_repository_test
}  // namespace parley::storage
