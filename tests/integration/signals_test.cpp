// Signals a production bot gets, through the real binary: SIGTERM in the middle of a burst
// (every message accepted is answered before the process ends), SIGHUP (the configuration is
// read again; the process goes on), and SIGPIPE (a reader that went away is no reason to end).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "fakes/fake_llm.h"
#include "parley/storage/store.h"
#include "served_bot.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace signals_test {

using nlohmann::json;
using parley::fakes::FakeLlmServer;
using parley::fakes::FakeReply;
using parley::testing::http_request;
using parley::testing::ServedBot;
using parley::testing::TempDir;
using ::testing::HasSubstr;

std::string say(const std::string& conversation, const std::string& text) {
  return json{{"conversation", conversation},
              {"user", "u-" + conversation},
              {"text", text},
              {"id", conversation + "/" + text}}
      .dump();
}

TEST(Signals, SigtermDuringABurstAnswersEveryAcceptedMessageBeforeTheEnd) {
  TempDir dir;
  FakeLlmServer fake;
  fake.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    auto reply = FakeReply::text("ok");
    reply.delay_before_headers = std::chrono::milliseconds(400);  // turns are running at SIGTERM
    (void)r;
    return reply;
  });
  ServedBot bot(dir.path(), fake.base_url());
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";
  std::atomic<int> answered{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> senders;
  for (int c = 0; c < 6; ++c) {
    senders.emplace_back([&, c] {
      for (int i = 0; i < 4; ++i) {
        auto r = http_request(url, say("c" + std::to_string(c), "m" + std::to_string(i)));
        if (r.status == 200) {
          ++answered;
        } else {
          ++refused;  // after SIGTERM: not accepted (503) or the connection closed
        }
      }
    });
  }
  for (int i = 0; i < 500 && fake.request_count() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(fake.request_count(), 3u) << "turns are running";
  EXPECT_EQ(bot.stop(), 0) << "a graceful stop";
  for (auto& t : senders) t.join();
  EXPECT_GT(answered.load(), 0);

  // Every message the bot took in has its answer: none left for a restart to find.
  auto store = parley::testing::open_bot_store(dir.path());
  auto conn = store->reads().acquire();
  auto st = conn->cached(
      "SELECT count(*), sum(NOT EXISTS (SELECT 1 FROM messages r WHERE r.conversation_id = "
      "m.conversation_id AND r.id > m.id AND r.role = 'assistant')) FROM messages m WHERE "
      "m.role = 'user'");
  ASSERT_TRUE((*st)->step().value());
  const int64_t stored = (*st)->column_int64(0);
  EXPECT_GE(stored, answered.load());
  EXPECT_EQ((*st)->column_int64(1), 0) << stored << " stored, some never answered";
  auto owed = store->messages().unanswered(0, INT64_MAX);
  ASSERT_TRUE(owed.ok());
  EXPECT_TRUE(owed->empty());
}

TEST(Signals, SighupReadsTheConfigurationAgainAndThePipeOfAGoneReaderEndsNothing) {
  TempDir dir;
  FakeLlmServer fake;
  fake.set_handler([](const parley::fakes::RecordedRequest&) -> std::optional<FakeReply> {
    return FakeReply::text("still here");
  });
  parley::testing::write_file(dir / "parley.yaml", "capabilities: {file: capabilities.yaml}\n");
  parley::testing::write_file(dir / "capabilities.yaml",
                              "capabilities:\n  calc: {enabled: true}\n");
  ServedBot bot(dir.path(), fake.base_url(), "", "--config parley.yaml");
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";
  ASSERT_EQ(http_request(url, say("h", "before")).status, 200);
  // SIGHUP: once the default action ended the process.
  ASSERT_EQ(::kill(bot.pid(), SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto after = http_request(url, say("h", "after the hangup"));
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(json::parse(after.body)["reply"], "still here");
  // SIGPIPE: as a write to a closed pipe raises it.
  ASSERT_EQ(::kill(bot.pid(), SIGPIPE), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(http_request(url, say("h", "after the pipe")).status, 200);
  EXPECT_EQ(bot.stop(), 0);
}

}  // namespace signals_test
