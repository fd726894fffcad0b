// The usage ledger table: rows written through the queue, exact sums per user and period.
#include "parley/storage/usage_repository.h"

#include <gtest/gtest.h>

#include "parley/storage/store.h"
#include "temp_dir.h"

namespace parley::storage {
namespace {

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
      r.cost_source = "actual";
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
}

TEST_F(UsageRepositoryTest, ZeroTimestampMeansNowAndDetailsAreKept) {
  auto r = call(alice_, 0, 0.000123);
  r.tokens_estimated = true;
  r.generation_id = "gen-1";
  auto ack = store_->usage().record(r).get();
  ASSERT_TRUE(ack.ok()) << ack.error().describe();
  auto conn = store_->reads().acquire();
  auto st = conn->cached("SELECT ts, tokens_estimated, generation_id, cost_actual_nanousd FROM usage WHERE id = ?");
  ASSERT_TRUE(st.ok());
  (*st)->bind_all(ack->row_id);
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 1'700'000'000'000);
  EXPECT_EQ((*st)->column_int64(1), 1);
  EXPECT_EQ((*st)->column_text(2), "gen-1");
  EXPECT_EQ((*st)->column_int64(3), 123'000);
}

TEST(UsdToNanousd, RoundsToNearest) {
  EXPECT_EQ(usd_to_nanousd(0.0), 0);
  EXPECT_EQ(usd_to_nanousd(1e-9), 1);
  EXPECT_EQ(usd_to_nanousd(0.00000000049), 0);
  EXPECT_EQ(usd_to_nanousd(12.345678901), 12'345'678'901);
}

}  // namespace
}  // namespace parley::storage
