// Faults injected for real under `parley run`: another process holding the database's write lock
// longer than busy_timeout (the sqlite3 shell in a transaction). A message that cannot be stored
// is refused, clearly and with Retry-After, rather than half-stored; what was acknowledged stays;
// the bot recovers by itself when the lock goes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "fakes/fake_llm.h"
#include "parley/storage/store.h"
#include "served_bot.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace faults_test {

using nlohmann::json;
using parley::fakes::FakeLlmServer;
using parley::testing::http_request;
using parley::testing::ServedBot;
using parley::testing::shell;
using parley::testing::TempDir;
using ::testing::HasSubstr;

std::string say(const std::string& id, const std::string& text) {
  return json{{"conversation", "f"}, {"user", "fay"}, {"text", text}, {"id", id}}.dump();
}

TEST(Faults, ALockedDatabaseRefusesWithRetryAfterKeepsWhatWasAcknowledgedAndRecovers) {
  TempDir dir;
  if (shell(dir.path(), "command -v sqlite3").code != 0) GTEST_SKIP() << "no sqlite3 shell";
  FakeLlmServer fake;
  parley::testing::write_file(dir / "parley.yaml", "storage: {busy_timeout_ms: 300}\n");
  ServedBot bot(dir.path(), fake.base_url(), "", "--config parley.yaml");
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";
  ASSERT_EQ(http_request(url, say("1", "/time")).status, 200);

  // Another process takes the write lock for 3 s (ten times busy_timeout).
  std::thread locker([&] {
    (void)shell(dir.path(), "sqlite3 data/parley.db 'BEGIN IMMEDIATE;' '.shell sleep 3' 'COMMIT;'");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto refused = http_request(url, say("2", "/time"));
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_THAT(refused.headers, HasSubstr("Retry-After: 5"));
  EXPECT_THAT(refused.body, HasSubstr("the message was not kept"));
  EXPECT_THAT(refused.body, HasSubstr("database is locked"));
  EXPECT_EQ(http_request(bot.url() + "/readyz").status, 503) << "health shows it";
  locker.join();

  // The lock gone, the same message is taken and answered once; the bot is ready again.
  auto again = http_request(url, say("2", "/time"));
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json::parse(again.body)["duplicate"], false);
  EXPECT_EQ(http_request(bot.url() + "/readyz").status, 200);
  EXPECT_EQ(bot.stop(), 0);

  parley::storage::StoreOptions so;
  so.path = dir / "data/parley.db";
  auto store = std::move(parley::storage::Store::open(so).value());
  auto conn = store->reads().acquire();
  auto st = conn->cached(
      "SELECT platform_id, count(*) FROM messages WHERE role = 'user' GROUP BY platform_id ORDER "
      "BY platform_id");
  std::vector<std::pair<std::string, int64_t>> rows;
  while ((*st)->step().value()) rows.emplace_back((*st)->column_text(0), (*st)->column_int64(1));
  EXPECT_EQ(rows, (std::vector<std::pair<std::string, int64_t>>{{"1", 1}, {"2", 1}}));
}

}  // namespace faults_test
