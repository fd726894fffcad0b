// Spend holds: a call's worst case checked and held against its caps in one transaction, from
// what every process spent (usage rows) and holds; dropped by the call's usage row; expired
// when its process died. Two stores on one file stand for two processes.
#include "parley/storage/spend_repository.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::storage {
namespace spend_repository_test {

constexpr int64_t kDay0 = 1'764'892'800'000;  // 2025-12-05 00:00 UTC
constexpr int64_t kDayMs = 86'400'000;

class SpendRepositoryTest : public ::testing::Test {
 protected:
  SpendRepositoryTest() {
    StoreOptions o;
    o.path = dir_ / "s.db";
    store_ = std::move(Store::open(o).value());
    other_ = std::move(Store::open(o).value());  // a second process on the same database
    alice_ = store_->directory().ensure_user("console", "alice", "Alice").get().value().row_id;
    bob_ = store_->directory().ensure_user("console", "bob", "Bob").get().value().row_id;
  }

  static Result<SpendHoldResult> hold(Store& store, SpendHoldRequest r) {
    std::promise<Result<SpendHoldResult>> p;
    store.spend().hold(std::move(r),
                       [&p](Result<SpendHoldResult> res) { p.set_value(std::move(res)); });
    return p.get_future().get();
  }

  SpendHoldRequest request(int64_t amount, int64_t cap, std::optional<int64_t> user = {}) {
    SpendHoldRequest r;
    const std::string who = user ? "u" + std::to_string(*user) : "g";
    r.scopes.push_back({who + "/d/2025-12-05", user, kDay0, kDay0 + kDayMs, cap});
    r.amount = amount;
    r.now_ms = kDay0 + 1000;
    r.expires_ms = kDay0 + 60'000;
    r.owner = "pid 1";
    return r;
  }

  UsageRecord spent(std::optional<int64_t> user, int64_t ts, int64_t cost,
                    std::optional<int64_t> hold = {}) {
    UsageRecord r;
    r.ts = ts;
    r.user_id = user;
    r.purpose = "turn";
    r.model_requested = "m";
    r.cost_estimated_nanousd = cost;
    r.spend_hold = hold;
    return r;
  }

  int64_t holds() {
    auto conn = store_->reads().acquire();
    auto st = conn->cached("SELECT count(*) FROM spend_holds");
    (void)(*st)->step();
    return (*st)->column_int64(0);
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Store> other_;
  int64_t alice_ = 0;
  int64_t bob_ = 0;
};

TEST_F(SpendRepositoryTest, HoldsOfEveryProcessCountAgainstTheCapUntilTheirUsageRowsSettleThem) {
  // 100 of 250 spent already (yesterday's and bob's calls do not count for alice's day).
  ASSERT_TRUE(store_->usage().record(spent(alice_, kDay0 + 10, 100)).get().ok());
  ASSERT_TRUE(store_->usage().record(spent(alice_, kDay0 - 10, 1000)).get().ok());
  ASSERT_TRUE(store_->usage().record(spent(bob_, kDay0 + 20, 1000)).get().ok());

  auto first = hold(*store_, request(100, 250, alice_)).value();
  ASSERT_TRUE(first.ok);
  ASSERT_EQ(first.figures.size(), 1u);
  EXPECT_EQ(first.figures[0].spent, 100);
  EXPECT_EQ(first.figures[0].held, 0);

  // The other process sees that hold: 100 spent + 100 held + 100 > 250.
  auto second = hold(*other_, request(100, 250, alice_)).value();
  EXPECT_FALSE(second.ok);
  EXPECT_EQ(second.refused_by, 0u);
  EXPECT_EQ(second.figures[0].spent, 100);
  EXPECT_EQ(second.figures[0].held, 100);
  EXPECT_EQ(second.hold, 0);

  // The first call costs 40 in the end; its row drops the hold in the same transaction.
  ASSERT_TRUE(store_->usage().record(spent(alice_, kDay0 + 2000, 40, first.hold)).get().ok());
  EXPECT_EQ(holds(), 0);
  auto third = hold(*other_, request(100, 250, alice_)).value();
  EXPECT_TRUE(third.ok);
  EXPECT_EQ(third.figures[0].spent, 140) << "the counter caught up with the new row";
  EXPECT_EQ(third.figures[0].held, 0);
}

TEST_F(SpendRepositoryTest, ASpentOutCapRefusesWhateverTheSizeAndShrinkFitsTheRoomLeft) {
  ASSERT_TRUE(store_->usage().record(spent(std::nullopt, kDay0 + 10, 200)).get().ok());
  auto r = request(100, 250);
  r.shrink = [](int64_t room) -> std::optional<std::pair<int64_t, int>> {
    if (room < 20) return std::nullopt;
    return std::pair<int64_t, int>{room, static_cast<int>(room) * 10};
  };
  auto fitted = hold(*store_, r).value();
  ASSERT_TRUE(fitted.ok);
  EXPECT_EQ(fitted.amount, 50);
  EXPECT_EQ(fitted.shrunk_to, 500);
  // 200 spent + 50 held: the room left (0) is below the floor.
  auto refused = hold(*other_, r).value();
  EXPECT_FALSE(refused.ok);
  EXPECT_FALSE(refused.shrunk_to);

  ASSERT_TRUE(store_->usage().record(spent(std::nullopt, kDay0 + 20, 60, fitted.hold)).get().ok());
  auto out = hold(*other_, request(1, 250)).value();
  EXPECT_FALSE(out.ok) << "260 of 250 spent: refused even for a call of 1";
  EXPECT_EQ(out.figures[0].spent, 260);
}

TEST_F(SpendRepositoryTest, AHoldWhoseProcessDiedStopsCountingWhenItExpires) {
  auto orphan = hold(*store_, request(200, 250)).value();  // its process dies: never settled
  ASSERT_TRUE(orphan.ok);
  auto before = request(100, 250);
  before.now_ms = kDay0 + 59'000;
  EXPECT_FALSE(hold(*other_, before).value().ok);
  auto after = request(100, 250);
  after.now_ms = kDay0 + 61'000;  // past the orphan's expiry
  auto r = hold(*other_, after).value();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.figures[0].held, 0);
}

TEST_F(SpendRepositoryTest, CountersOfPeriodsLongOverAreDroppedAndSummedAfreshIfNeeded) {
  ASSERT_TRUE(store_->usage().record(spent(std::nullopt, kDay0 + 10, 70)).get().ok());
  ASSERT_TRUE(hold(*store_, request(1, 250)).value().ok);
  auto counters = [&] {
    auto conn = store_->reads().acquire();
    auto st = conn->cached("SELECT count(*) FROM spend_counters");
    (void)(*st)->step();
    return (*st)->column_int64(0);
  };
  EXPECT_EQ(counters(), 1);
  // Three days on, another day's hold drops that day's counter.
  auto later = request(1, 250);
  later.scopes[0] = {"g/d/2025-12-08", std::nullopt, kDay0 + 3 * kDayMs, kDay0 + 4 * kDayMs, 250};
  later.now_ms = kDay0 + 3 * kDayMs + 1000;
  later.expires_ms = later.now_ms + 60'000;
  ASSERT_TRUE(hold(*store_, later).value().ok);
  EXPECT_EQ(counters(), 1);
  // A clock set back to the first day sums it again from the usage rows.
  auto back = request(1, 250);
  back.expires_ms = kDay0 + 4 * kDayMs;
  auto r = hold(*store_, back).value();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.figures[0].spent, 70);
}

TEST_F(SpendRepositoryTest, ReleaseDropsAHoldWithoutAUsageRow) {
  auto h = hold(*store_, request(200, 250)).value();
  ASSERT_TRUE(h.ok);
  std::promise<Result<WriteAck>> p;
  store_->spend().release(h.hold, [&p](Result<WriteAck> a) { p.set_value(std::move(a)); });
  auto ack = p.get_future().get();
  ASSERT_TRUE(ack.ok());
  EXPECT_TRUE(ack->inserted);
  EXPECT_EQ(holds(), 0);
}

TEST_F(SpendRepositoryTest, TwoProcessesHoldingAtOnceNeverPassTheCapTogether) {
  // 2 × 40 holds of 10 against a cap of 255: 25 fit, whichever process asks.
  std::atomic<int> ok{0};
  auto run = [&](Store& s) {
    for (int i = 0; i < 40; ++i) {
      if (hold(s, request(10, 255)).value().ok) ++ok;
    }
  };
  std::thread a([&] { run(*store_); });
  std::thread b([&] { run(*other_); });
  a.join();
  b.join();
  EXPECT_EQ(ok.load(), 25);
  EXPECT_EQ(holds(), 25);
}

}  // namespace spend_repository_test
}  // namespace parley::storage
