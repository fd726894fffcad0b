// The credit_balance table: snapshots round-trip with exact nano-dollar figures and NULLs kept
// apart from zeros; latest() and since() per provider; bad input refused.
#include "parley/storage/credit_repository.h"

#include <gtest/gtest.h>

#include <future>

#include "parley/storage/store.h"
#include "parley/storage/usage_repository.h"
#include "support/temp_dir.h"

namespace parley::storage {
namespace credit_repository_test {

class CreditRepositoryTest : public ::testing::Test {
 protected:
  CreditRepositoryTest() {
    StoreOptions o;
    o.path = dir_ / "c.db";
    o.clock = &clock_;
    store_ = std::move(Store::open(o).value());
  }

  static CreditSnapshot snapshot(int64_t ts, double usage_usd,
                                 std::string provider = "openrouter") {
    CreditSnapshot s;
    s.ts = ts;
    s.provider = std::move(provider);
    s.usage_nanousd = usd_to_nanousd(usage_usd);
    return s;
  }

  testing::TempDir dir_;
  ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<Store> store_;
};

TEST_F(CreditRepositoryTest, EveryColumnRoundTripsExactly) {
  CreditSnapshot s = snapshot(1000, 0.1015644762);
  s.limit_nanousd = usd_to_nanousd(5);
  s.remaining_nanousd = usd_to_nanousd(4.8984355238);
  s.is_free_tier = true;
  s.usage_daily_nanousd = 123;
  s.usage_weekly_nanousd = 4'567;
  s.usage_monthly_nanousd = 89'012;
  s.total_credits_nanousd = 20'000'000'000;
  s.total_usage_nanousd = 0;  // zero, not unknown
  s.raw = R"({"data":{"usage":0.1015644762}})";
  auto ack = store_->credits().record(s).get();
  ASSERT_TRUE(ack.ok()) << ack.error().describe();
  EXPECT_GT(ack->row_id, 0);

  auto latest = store_->credits().latest("openrouter");
  ASSERT_TRUE(latest.ok()) << latest.error().describe();
  ASSERT_TRUE(latest->has_value());
  const CreditSnapshot& r = **latest;
  EXPECT_EQ(r.id, ack->row_id);
  EXPECT_EQ(r.ts, 1000);
  EXPECT_EQ(r.provider, "openrouter");
  EXPECT_EQ(r.limit_nanousd, 5'000'000'000);
  EXPECT_EQ(r.usage_nanousd, 101'564'476);
  EXPECT_EQ(r.remaining_nanousd, 4'898'435'524);
  EXPECT_TRUE(r.is_free_tier);
  EXPECT_EQ(r.usage_daily_nanousd, 123);
  EXPECT_EQ(r.usage_weekly_nanousd, 4'567);
  EXPECT_EQ(r.usage_monthly_nanousd, 89'012);
  EXPECT_EQ(r.total_credits_nanousd, 20'000'000'000);
  EXPECT_EQ(r.total_usage_nanousd, 0);
  EXPECT_EQ(r.raw, s.raw);
}

TEST_F(CreditRepositoryTest, UnreportedFiguresStayEmpty) {
  ASSERT_TRUE(store_->credits().record(snapshot(1000, 0)).get().ok());
  auto latest = store_->credits().latest("openrouter");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  const CreditSnapshot& r = **latest;
  EXPECT_FALSE(r.limit_nanousd.has_value());
  EXPECT_FALSE(r.remaining_nanousd.has_value());
  EXPECT_FALSE(r.usage_daily_nanousd.has_value());
  EXPECT_FALSE(r.usage_weekly_nanousd.has_value());
  EXPECT_FALSE(r.usage_monthly_nanousd.has_value());
  EXPECT_FALSE(r.total_credits_nanousd.has_value());
  EXPECT_FALSE(r.total_usage_nanousd.has_value());
  EXPECT_FALSE(r.is_free_tier);
  EXPECT_EQ(r.raw, "{}");
}

TEST_F(CreditRepositoryTest, ZeroTimestampMeansNow) {
  std::promise<Result<WriteAck>> done;
  store_->credits().record(snapshot(0, 1.5),
                           [&done](Result<WriteAck> r) { done.set_value(std::move(r)); });
  ASSERT_TRUE(done.get_future().get().ok());
  auto latest = store_->credits().latest("openrouter");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->ts, 1'700'000'000'000);
  EXPECT_EQ((*latest)->usage_nanousd, 1'500'000'000);
}

TEST_F(CreditRepositoryTest, LatestAndSinceArePerProviderAndOrdered) {
  auto& c = store_->credits();
  EXPECT_FALSE(c.latest("openrouter")->has_value());
  ASSERT_TRUE(c.record(snapshot(3000, 3)).get().ok());
  ASSERT_TRUE(c.record(snapshot(1000, 1)).get().ok());
  ASSERT_TRUE(c.record(snapshot(2000, 2)).get().ok());
  ASSERT_TRUE(c.record(snapshot(5000, 50, "other")).get().ok());

  auto latest = c.latest("openrouter");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->ts, 3000);
  EXPECT_EQ((*latest)->usage_nanousd, 3'000'000'000);

  auto all = c.since("openrouter", 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].ts, 1000);
  EXPECT_EQ((*all)[1].ts, 2000);
  EXPECT_EQ((*all)[2].ts, 3000);

  auto recent = c.since("openrouter", 2000);  // inclusive
  ASSERT_TRUE(recent.ok());
  ASSERT_EQ(recent->size(), 2u);
  EXPECT_EQ(recent->front().ts, 2000);

  auto none = c.since("nobody", 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(CreditRepositoryTest, EqualTimestampsTheLastWrittenIsLatest) {
  auto& c = store_->credits();
  ASSERT_TRUE(c.record(snapshot(1000, 1)).get().ok());
  ASSERT_TRUE(c.record(snapshot(1000, 2)).get().ok());
  auto latest = c.latest("openrouter");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->usage_nanousd, 2'000'000'000);
}

TEST_F(CreditRepositoryTest, BadInputIsRefused) {
  auto no_provider = store_->credits().record(snapshot(1000, 1, "")).get();
  ASSERT_FALSE(no_provider.ok());
  EXPECT_EQ(no_provider.error().code, ErrorCode::invalid_argument);

  bool called = false;
  store_->credits().record(snapshot(1000, 1, ""), [&called](Result<WriteAck> r) {
    called = true;
    EXPECT_FALSE(r.ok());
  });
  EXPECT_TRUE(called);  // refused at once, on this thread

  CreditSnapshot bad = snapshot(1000, 1);
  bad.raw = "{not json";
  EXPECT_FALSE(store_->credits().record(bad).get().ok());
  EXPECT_FALSE(store_->credits().latest("openrouter")->has_value());
}

}  // namespace credit_repository_test
}  // namespace parley::storage
