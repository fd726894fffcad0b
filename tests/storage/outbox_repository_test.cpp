// The outbox: pending before the send, sent after; after a restart an entry whose send had
// begun becomes `unknown` (never sent twice) while one never attempted stays pending.
#include "parley/storage/outbox_repository.h"

#include <gtest/gtest.h>

#include <future>
#include <limits>

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

// Files travel with their entry: stored in the same transaction, read back byte for byte (a PNG
// holds NULs), found by their token, with the last part of a multi-part reply, and gone with
// the entry.
TEST(Outbox, FilesAreKeptWithTheirEntryAndFoundByToken) {
  testing::TempDir dir;
  int64_t single = 0;
  int64_t first = 0;
  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  {
    auto store = open_store(dir / "o.db");
    auto& o = store->outbox();
    std::promise<Result<WriteAck>> one;
    o.add(std::nullopt, "http", "c", "here is your chart",
          [&one](Result<WriteAck> r) { one.set_value(std::move(r)); },
          {OutboxFile{"mood.png", "image/png", png, ""},
           OutboxFile{"notes.txt", "text/plain", "a\nb", ""}});
    single = one.get_future().get().value().row_id;
    std::promise<Result<WriteAck>> parts;
    o.add_parts(std::nullopt, "discord", "channel-1", {"one", "two"},
                [&parts](Result<WriteAck> r) { parts.set_value(std::move(r)); },
                {OutboxFile{"events.ics", "text/calendar", "BEGIN:VCALENDAR", ""}});
    first = parts.get_future().get().value().row_id;
  }
  // After a restart, as the outbox pump reads an owed entry.
  auto store = open_store(dir / "o.db");
  auto& o = store->outbox();
  const auto e = o.get(single).value();
  ASSERT_EQ(e.files.size(), 2u);
  EXPECT_EQ(e.files[0].filename, "mood.png");
  EXPECT_EQ(e.files[0].media_type, "image/png");
  EXPECT_EQ(e.files[0].content, png);
  EXPECT_EQ(e.files[1].content, "a\nb");
  EXPECT_EQ(e.files[0].token.size(), 32u);
  EXPECT_NE(e.files[0].token, e.files[1].token);
  EXPECT_TRUE(o.get(first)->files.empty()) << "the files go with the last part";
  ASSERT_EQ(o.get(first + 1)->files.size(), 1u);

  const auto found = o.file(e.files[0].token).value();
  EXPECT_EQ(found.file.content, png);
  EXPECT_EQ(found.outbox_id, single);
  EXPECT_EQ(found.channel, "http");
  EXPECT_EQ(o.file("0123456789abcdef0123456789abcdef").error().code, ErrorCode::not_found);
  EXPECT_EQ(o.file("").error().code, ErrorCode::not_found);

  // Pruning: only the files of entries no longer owed, made before the cut.
  ASSERT_TRUE(o.begin_send(single).get().ok());
  ASSERT_TRUE(o.mark_sent(single).get().ok());
  EXPECT_EQ(o.prune_files(0).get().value().row_id, 0) << "nothing made before the epoch";
  EXPECT_EQ(o.prune_files(std::numeric_limits<int64_t>::max()).get().value().row_id, 2)
      << "the sent entry's two files; the owed part's file stays";
  EXPECT_TRUE(o.get(single)->files.empty());
  EXPECT_EQ(o.get(first + 1)->files.size(), 1u);
  EXPECT_EQ(o.file(e.files[0].token).error().code, ErrorCode::not_found);
}

}  // namespace outbox_repository_test
}  // namespace parley::storage
