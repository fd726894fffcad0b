// Channel state: a value per (channel, key) that survives a restart, replaced whole; counters
// that add up; keys of one channel never seen by another.
#include "parley/storage/channel_state_repository.h"

#include <gtest/gtest.h>

#include <future>

#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::storage {
namespace channel_state_repository_test {

std::unique_ptr<Store> open_store(const std::filesystem::path& path) {
  StoreOptions o;
  o.path = path;
  return std::move(Store::open(o).value());
}

int64_t add(ChannelStateRepository& s, const std::string& key, int64_t delta) {
  std::promise<Result<WriteAck>> p;
  s.add("discord", key, delta, [&p](Result<WriteAck> r) { p.set_value(std::move(r)); });
  return p.get_future().get().value().row_id;
}

TEST(ChannelState, PutReplacesAndSurvivesARestart) {
  testing::TempDir dir;
  {
    auto store = open_store(dir / "s.db");
    auto& s = store->channel_state();
    EXPECT_FALSE(s.get("discord", "session:0").value().has_value());
    ASSERT_TRUE(s.put("discord", "session:0", R"({"seq":1})").get().ok());
    ASSERT_TRUE(s.put("discord", "session:0", R"({"seq":42})").get().ok());
    ASSERT_TRUE(s.put("email", "session:0", "other").get().ok());
  }
  auto store = open_store(dir / "s.db");
  auto& s = store->channel_state();
  EXPECT_EQ(s.get("discord", "session:0").value(), std::optional<std::string>(R"({"seq":42})"));
  EXPECT_EQ(s.get("email", "session:0").value(), std::optional<std::string>("other"));
  ASSERT_TRUE(s.erase("discord", "session:0").get().ok());
  EXPECT_FALSE(s.get("discord", "session:0").value().has_value());
  EXPECT_TRUE(s.erase("discord", "never-there").get().ok());
}

TEST(ChannelState, CountersAddUp) {
  testing::TempDir dir;
  auto store = open_store(dir / "s.db");
  auto& s = store->channel_state();
  EXPECT_EQ(add(s, "identifies:2026-12-06", 1), 1);
  EXPECT_EQ(add(s, "identifies:2026-12-06", 1), 2);
  EXPECT_EQ(add(s, "identifies:2026-12-06", 5), 7);
  EXPECT_EQ(add(s, "identifies:2026-12-07", 1), 1);
  EXPECT_EQ(s.get("discord", "identifies:2026-12-06").value(), std::optional<std::string>("7"));
}

}  // namespace channel_state_repository_test
}  // namespace parley::storage
