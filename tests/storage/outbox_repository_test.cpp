// The outbox: pending before the send, sent after; after a restart an entry whose send had
// begun becomes `unknown` (never sent twice) while one never attempted stays pending.
#include "parley/storage/outbox_repository.h"

#include <gtest/gtest.h>

#include <future>

#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::storage {
namespace outbox_repository_test {

std::unique_ptr<Store> open_store(const std::filesystem::path& path) {
  StoreOptions o;
  o.path = path;
  return std::move(Store::open(o).value());
}

TEST(Outbox, PendingThenSent) {
  testing::TempDir dir;
  auto store = open_store(dir / "o.db");
  auto& o = store->outbox();
  const int64_t id = o.add(std::nullopt, "console", "session-1", "hello").get().value().row_id;
  EXPECT_EQ(o.get(id)->state, "pending");
  ASSERT_EQ(o.pending()->size(), 1u);
  ASSERT_TRUE(o.begin_send(id).get().ok());
  ASSERT_TRUE(o.mark_sent(id).get().ok());
  EXPECT_EQ(o.get(id)->state, "sent");
  EXPECT_EQ(o.get(id)->attempts, 1);
  EXPECT_TRUE(o.pending()->empty());
  EXPECT_EQ(o.mark_sent(id).get().error().code, ErrorCode::not_found) << "only pending entries";
}

TEST(Outbox, AfterARestartABegunSendIsUnknownNeverResent) {
  testing::TempDir dir;
  int64_t begun = 0;
  int64_t untouched = 0;
  {
    auto store = open_store(dir / "o.db");
    auto& o = store->outbox();
    begun = o.add(std::nullopt, "http", "c", "maybe sent").get().value().row_id;
    untouched = o.add(std::nullopt, "http", "c", "never tried").get().value().row_id;
    ASSERT_TRUE(o.begin_send(begun).get().ok());
    // The process dies here, between the send and mark_sent.
  }
  auto store = open_store(dir / "o.db");
  auto& o = store->outbox();
  EXPECT_EQ(o.settle_after_restart().value(), 1);
  EXPECT_EQ(o.get(begun)->state, "unknown");
  const auto pending = o.pending().value();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, untouched);
  EXPECT_EQ(o.settle_after_restart().value(), 0);
}

Result<WriteAck> add_parts(OutboxRepository& o, std::vector<std::string> bodies) {
  std::promise<Result<WriteAck>> p;
  auto f = p.get_future();
  o.add_parts(std::nullopt, "discord", "channel-1", std::move(bodies),
              [&p](Result<WriteAck> r) { p.set_value(std::move(r)); });
  return f.get();
}

TEST(Outbox, APartedReplyIsOneEntryPerPartAndACrashBetweenPartsOwesTheRest) {
  testing::TempDir dir;
  int64_t first = 0;
  {
    auto store = open_store(dir / "o.db");
    auto& o = store->outbox();
    (void)o.add(std::nullopt, "http", "c", "another reply").get().value();
    auto added = add_parts(o, {"part one", "part two", "part three"});
    ASSERT_TRUE(added.ok()) << added.error().describe();
    first = added->row_id;
    for (int64_t i = 0; i < 3; ++i) {
      const auto e = o.get(first + i).value();
      EXPECT_EQ(e.state, "pending");
      EXPECT_EQ(e.target, "channel-1");
    }
    EXPECT_EQ(o.get(first + 1)->body, "part two");
    ASSERT_TRUE(o.begin_send(first).get().ok());
    ASSERT_TRUE(o.mark_sent(first).get().ok());
    ASSERT_TRUE(o.begin_send(first + 1).get().ok());
    // The process dies during the second part's send.
  }
  auto store = open_store(dir / "o.db");
  auto& o = store->outbox();
  EXPECT_EQ(o.settle_after_restart().value(), 1);
  EXPECT_EQ(o.get(first)->state, "sent");
  EXPECT_EQ(o.get(first + 1)->state, "unknown");
  const auto owed = o.pending_for("discord").value();
  ASSERT_EQ(owed.size(), 1u);
  EXPECT_EQ(owed[0].body, "part three");
  EXPECT_EQ(add_parts(o, {}).error().code, ErrorCode::invalid_argument);
}

}  // namespace outbox_repository_test
}  // namespace parley::storage
