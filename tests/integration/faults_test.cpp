// Faults injected for real under `parley run`: another process holding the database's write lock
// longer than busy_timeout (the sqlite3 shell in a transaction). A message that cannot be stored
// is refused, clearly and with Retry-After, rather than half-stored; what was acknowledged stays;
// the bot recovers by itself when the lock goes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include <atomic>
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

  // Another process takes the write lock for 3 s (ten times busy_timeout); the test goes on
  // once it holds it (a loaded machine may take a while to start the shell).
  std::thread locker([&] {
    (void)shell(dir.path(),
                "sqlite3 data/parley.db 'BEGIN IMMEDIATE;' '.shell touch locked' '.shell sleep 3' "
                "'COMMIT;'");
  });
  for (int i = 0; i < 1000 && !std::filesystem::exists(dir / "locked"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!std::filesystem::exists(dir / "locked")) {
    locker.join();
    FAIL() << "the other process did not take the lock within 10 s";
  }
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

  auto store = parley::testing::open_bot_store(dir.path());
  auto conn = store->reads().acquire();
  auto st = conn->cached(
      "SELECT platform_id, count(*) FROM messages WHERE role = 'user' GROUP BY platform_id ORDER "
      "BY platform_id");
  std::vector<std::pair<std::string, int64_t>> rows;
  while ((*st)->step().value()) rows.emplace_back((*st)->column_text(0), (*st)->column_int64(1));
  EXPECT_EQ(rows, (std::vector<std::pair<std::string, int64_t>>{{"1", 1}, {"2", 1}}));
}

// Another process's long read transaction keeps checkpoints from resetting the WAL, which grows
// with every write: past storage.wal_alert_mib the admins are told, and nothing is lost.
TEST(Faults, AWalHeldBackByALongReaderIsReported) {
  TempDir dir;
  if (shell(dir.path(), "command -v sqlite3").code != 0) GTEST_SKIP() << "no sqlite3 shell";
  FakeLlmServer fake;
  parley::testing::write_file(dir / "parley.yaml",
                              "storage: {wal_alert_mib: 1, checkpoint_pages: 100}\n");
  ServedBot bot(dir.path(), fake.base_url(), "", "--config parley.yaml");
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";
  ASSERT_EQ(http_request(url, say("0", "/time")).status, 200);
  std::thread reader([&] {
    (void)shell(dir.path(),
                "sqlite3 data/parley.db 'BEGIN;' 'SELECT count(*) FROM messages;' "
                "'.shell sleep 4' 'COMMIT;'");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // ~1.5 MB of memories, from 150 people (one each: no rate limit), while the reader holds
  // its snapshot.
  const std::string note(3000, 'x');
  int stored = 0;
  for (int i = 1; i <= 150; ++i) {
    const std::string body = json{
        {"conversation", "w" + std::to_string(i)},
        {"user", "w" + std::to_string(i)},
        {"text", "/remember " + note + std::to_string(i)},
        {"id", "w" + std::to_string(
                         i)}}.dump();
    if (http_request(url, body).status == 200) ++stored;
  }
  EXPECT_EQ(stored, 150);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the watch's tick
  reader.join();
  EXPECT_EQ(bot.stop(), 0);
  auto store = parley::testing::open_bot_store(dir.path());
  auto conn = store->reads().acquire();
  auto alerts = conn->cached("SELECT message FROM credit_alerts WHERE kind = 'wal_large'");
  ASSERT_TRUE((*alerts)->step().value()) << "the large WAL was reported";
  EXPECT_THAT((*alerts)->column_text(0), HasSubstr("a long read transaction"));
  auto st = conn->cached("SELECT count(*) FROM messages WHERE role = 'user'");
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 1 + stored);
}

// A full disk, through libfiu (fiu-run preloads its POSIX wrappers into parley; fiu-ctrl makes
// every write and pwrite fail with ENOSPC while enabled).
TEST(Faults, AFullDiskRefusesMessagesRaisesAnAlertAndRecoversWhenSpaceReturns) {
  if (parley::testing::under_sanitizer()) {
    GTEST_SKIP() << "libfiu's preload and a sanitizer's runtime both want to come first";
  }
  TempDir dir;
  if (shell(dir.path(), "command -v fiu-run && command -v fiu-ctrl").code != 0) {
    GTEST_SKIP() << "libfiu is not installed (fiu-utils): scripts/deps --test";
  }
  FakeLlmServer fake;
  ServedBot bot(dir.path(), fake.base_url(), "", "", "fiu-run -x");
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";
  ASSERT_EQ(http_request(url, say("1", "/time")).status, 200);
  const std::string pid = std::to_string(bot.pid());
  const auto fiu = [&](const std::string& what) {
    for (const char* point : {"posix/io/rw/write", "posix/io/rw/pwrite"}) {
      auto r = shell(dir.path(), "fiu-ctrl -c '" + what + " name=" + point +
                                     (what == "enable" ? ",failinfo=28" : "") + "' " + pid);
      ASSERT_EQ(r.code, 0) << r.err;
    }
  };
  fiu("enable");  // ENOSPC from here on
  auto refused = http_request(url, say("2", "/time"));
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("database or disk is full"));
  EXPECT_THAT(refused.body, HasSubstr("the message was not kept"));
  EXPECT_EQ(http_request(bot.url() + "/readyz").status, 503);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the watch sees it
  fiu("disable");                                                // space is back
  // Nothing arrives meanwhile: the bot finds the database working by itself.
  bool ready = false;
  for (int i = 0; i < 50 && !ready; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ready = http_request(bot.url() + "/readyz").status == 200;
  }
  EXPECT_TRUE(ready) << "ready again without a message to prove it";
  auto again = http_request(url, say("2", "/time"));
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json::parse(again.body)["duplicate"], false) << "the refused one was not half-kept";
  EXPECT_EQ(bot.stop(), 0);

  auto store = parley::testing::open_bot_store(dir.path());
  EXPECT_TRUE(store->integrity_check().ok());
  auto conn = store->reads().acquire();
  auto st = conn->cached(
      "SELECT platform_id, count(*) FROM messages WHERE role = 'user' GROUP BY platform_id ORDER "
      "BY platform_id");
  std::vector<std::pair<std::string, int64_t>> rows;
  while ((*st)->step().value()) rows.emplace_back((*st)->column_text(0), (*st)->column_int64(1));
  EXPECT_EQ(rows, (std::vector<std::pair<std::string, int64_t>>{{"1", 1}, {"2", 1}}));
  // The alert of the failure could not be stored while the disk was full; its recovery's was,
  // with how long it lasted and what the error was.
  auto alerts = conn->cached("SELECT kind, message FROM credit_alerts ORDER BY id");
  std::vector<std::string> kinds;
  std::string recovered;
  while ((*alerts)->step().value()) {
    kinds.push_back((*alerts)->column_text(0));
    if (kinds.back() == "storage_recovered") recovered = (*alerts)->column_text(1);
  }
  EXPECT_THAT(kinds, ::testing::Contains("storage_recovered"));
  EXPECT_THAT(recovered, HasSubstr("database or disk is full"));
}

// A slow disk (every fsync and fdatasync of the process delayed 400 ms by an LD_PRELOAD library,
// tests/support/slow_fsync.c) under `storage.synchronous: full`, where each commit syncs the
// WAL: messages are acknowledged late but every one is answered and kept once, the process
// stays ready, /healthz shows the commit time and the admins get a storage_slow alert; with the
// disk fast again, so are the commits.
TEST(Faults, ASlowDiskDelaysAcknowledgementsLosesNothingAndHealthShowsIt) {
#ifndef PARLEY_SLOW_FSYNC
  GTEST_SKIP() << "the slow-disk library is not built under the sanitizers";
#else
  TempDir dir;
  FakeLlmServer fake;
  parley::testing::write_file(dir / "parley.yaml",
                              "storage: {synchronous: full, slow_commit_ms: 200}\n");
  const auto delay = dir / "fsync_delay_ms";
  parley::testing::write_file(delay, "0");
  ServedBot bot(dir.path(), fake.base_url(), "", "--config parley.yaml",
                std::string("LD_PRELOAD=") + PARLEY_SLOW_FSYNC +
                    " PARLEY_TEST_FSYNC_DELAY_FILE=" + delay.string());
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";
  ASSERT_EQ(http_request(url, say("0", "/time")).status, 200);
  auto commit_ms = [&] {
    const auto h = http_request(bot.url() + "/healthz");
    const json j = json::parse(h.body, nullptr, false);
    return j.contains("storage") ? j["storage"].value("last_commit_ms", -1.0) : -1.0;
  };
  EXPECT_GE(commit_ms(), 0.0) << "/healthz has the storage figures";

  parley::testing::write_file(delay, "400");  // the disk turns slow
  std::atomic<int> answered{0};
  std::vector<std::thread> senders;
  for (int i = 1; i <= 6; ++i) {
    senders.emplace_back([&, i] {
      const std::string id = std::to_string(i);
      auto r = http_request(
          url, json{{"conversation", "s" + id}, {"user", "s" + id}, {"text", "/time"}, {"id", id}}
                   .dump());
      if (r.status == 200) ++answered;
    });
  }
  for (auto& t : senders) t.join();
  EXPECT_EQ(answered.load(), 6) << "late, but every one answered";
  EXPECT_GE(commit_ms(), 350.0) << "health shows the slow commits";
  EXPECT_EQ(http_request(bot.url() + "/readyz").status, 200) << "slow is not failing";
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the watch sees it

  parley::testing::write_file(delay, "0");  // fast again
  ASSERT_EQ(http_request(url, say("7", "/time")).status, 200);
  EXPECT_LT(commit_ms(), 350.0);
  EXPECT_EQ(bot.stop(), 0);

  auto store = parley::testing::open_bot_store(dir.path());
  auto conn = store->reads().acquire();
  auto st = conn->cached(
      "SELECT count(*), count(DISTINCT platform_id) FROM messages WHERE role = 'user'");
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 8);
  EXPECT_EQ((*st)->column_int64(1), 8);
  auto alerts = conn->cached("SELECT message FROM credit_alerts WHERE kind = 'storage_slow'");
  ASSERT_TRUE((*alerts)->step().value()) << "the admins were told";
  EXPECT_THAT((*alerts)->column_text(0), HasSubstr("storage.slow_commit_ms: 200"));
#endif
}

// A burst beyond what the bot holds in flight (lanes.max_active), under a memory limit (1 GiB of
// address space, without the sanitizers, whose shadow memory needs more): the surplus is refused
// with 503 and Retry-After before anything of it is stored; what was taken in is answered; the
// process goes on.
TEST(Faults, ABurstPastMaxActiveIsRefusedClearlyUnderAMemoryLimitAndNothingIsHalfKept) {
  TempDir dir;
  FakeLlmServer fake;
  fake.set_handler(
      [](const parley::fakes::RecordedRequest&) -> std::optional<parley::fakes::FakeReply> {
        auto reply = parley::fakes::FakeReply::text("answered");
        reply.delay_before_headers = std::chrono::milliseconds(1500);
        return reply;
      });
  parley::testing::write_file(dir / "parley.yaml", "lanes: {max_active: 10}\n");
  std::string limit = parley::testing::under_sanitizer() ? "" : "prlimit --as=1073741824";
  if (!limit.empty() && shell(dir.path(), "command -v prlimit").code != 0) limit.clear();
  ServedBot bot(dir.path(), fake.base_url(), "", "--config parley.yaml", limit);
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";
  std::atomic<int> ok{0};
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  std::vector<std::thread> burst;
  for (int i = 0; i < 40; ++i) {
    burst.emplace_back([&, i] {
      const std::string body = json{
          {"conversation", "b" + std::to_string(i)},
          {"user", "u" + std::to_string(i)},
          {"text", "hello"},
          {"id", "b" + std::to_string(
                           i)}}.dump();
      auto r = http_request(url, body);
      if (r.status == 200) {
        ++ok;
      } else if (r.status == 503 && r.body.find("nothing was kept") != std::string::npos &&
                 r.headers.find("Retry-After") != std::string::npos) {
        ++refused;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : burst) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GE(ok.load(), 10);
  EXPECT_GT(refused.load(), 0) << "past max_active, refused";
  EXPECT_EQ(ok.load() + refused.load(), 40);
  EXPECT_EQ(
      http_request(url, json{{"conversation", "after"}, {"user", "z"}, {"text", "/time"}}.dump())
          .status,
      200)
      << "the process goes on";
  EXPECT_EQ(bot.stop(), 0);
  auto store = parley::testing::open_bot_store(dir.path());
  auto conn = store->reads().acquire();
  auto st = conn->cached("SELECT count(*) FROM messages WHERE role = 'user' AND text = 'hello'");
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), ok.load()) << "a refused message was not half-kept";
  EXPECT_TRUE(store->messages().unanswered(0, INT64_MAX)->empty());
}

}  // namespace faults_test
