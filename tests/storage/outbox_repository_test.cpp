// The outbox: pending before the send, sent after; after a restart an entry whose send had
// begun becomes `unknown` (never sent twice) while one never attempted stays pending.
#include "parley/storage/outbox_repository.h"

#include <gtest/gtest.h>

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

}  // namespace outbox_repository_test
}  // namespace parley::storage
