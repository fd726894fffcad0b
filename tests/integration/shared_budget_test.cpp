// Budgets across processes on one database, through the real binary: `parley run` answering 25
// HTTP messages at once while 25 `parley ask` processes ask beside it, all against one daily
// cap that covers about 30 calls. Each process holds its calls' worst cases in the database,
// so together they never pass the cap; before, each saw the others' spend only at its next
// start, and the 50 calls spent half as much again as the cap.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "fakes/fake_llm.h"
#include "parley/storage/store.h"
#include "served_bot.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace shared_budget_test {

using nlohmann::json;
using parley::fakes::FakeLlmServer;
using parley::fakes::FakeReply;
using parley::testing::http_request;
using parley::testing::ServedBot;
using parley::testing::TempDir;

TEST(SharedBudget, ABotAndTwentyFiveAsksOnOneDatabaseNeverPassTheDailyCapTogether) {
  TempDir dir;
  FakeLlmServer fake;
  fake.set_handler([](const parley::fakes::RecordedRequest&) -> std::optional<FakeReply> {
    parley::fakes::FakeUsage u;
    u.prompt_tokens = 500;
    u.completion_tokens = 300;
    u.cost = 0.0029;  // just below a call's worst case (~600 prompt, 300 completion tokens)
    auto reply = FakeReply::text("answered", u);
    reply.delay_before_headers = std::chrono::milliseconds(400);  // all in flight together
    return reply;
  });
  parley::testing::write_file(dir / "prices.yaml",
                              "version: \"t\"\nmodels:\n  - match: \"fake*\"\n    input: 1\n"
                              "    output: 8\n");
  // Absolute paths: each `parley ask` runs in a directory of its own (the test helper keeps a
  // process's output in its working directory), all on the bot's database.
  const std::string root = dir.path().string();
  parley::testing::write_file(dir / "parley.yaml",
                              "storage:\n  path: " + root +
                                  "/data/parley.db\n"
                                  "money:\n  prices: " +
                                  root +
                                  "/prices.yaml\n  budgets:\n"
                                  "    daily_usd: 0.09\n    default_max_tokens: 300\n"
                                  "    min_max_tokens: 300\n"
                                  "memory:\n  extraction:\n    enabled: false\n");
  ServedBot bot(dir.path(), fake.base_url(), "", "--config parley.yaml");
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";
  const std::string env =
      "env -u OPENROUTER_API_KEY -u OPENAI_API_KEY -u PARLEY_LLM_API_KEY PARLEY_LLM_BASE_URL=" +
      fake.base_url() + " PARLEY_LLM_MODEL=fake-model";

  std::atomic<int> answered{0};
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  auto count = [&](const std::string& reply) {
    if (reply == "answered") {
      ++answered;
    } else if (reply.find("daily LLM budget") != std::string::npos) {
      ++refused;
    } else {
      ++other;
      ADD_FAILURE() << "unexpected reply: " << reply;
    }
  };
  std::atomic<int> served_answered{0};
  std::atomic<int> asked_answered{0};
  std::vector<std::thread> calls;
  for (int i = 0; i < 25; ++i) {
    calls.emplace_back([&, i] {
      const std::string id = std::to_string(i);
      auto r = http_request(
          url, json{{"conversation", "c" + id}, {"user", "h" + id}, {"text", "hello"}}.dump());
      if (r.status != 200) {
        ++other;
        ADD_FAILURE() << r.status << " " << r.body;
        return;
      }
      const json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      const std::string reply = j.is_object() ? j.value("reply", "") : r.body;
      if (reply == "answered") ++served_answered;
      count(reply);
    });
    calls.emplace_back([&, i] {
      const auto cwd = dir / ("ask" + std::to_string(i));
      std::filesystem::create_directories(cwd);
      auto r = parley::testing::parley(
          cwd, "--config ../parley.yaml ask hello --json --user a" + std::to_string(i), env);
      if (r.code != 0) {
        ++other;
        ADD_FAILURE() << r.code << " " << r.out << r.err;
        return;
      }
      const json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
      const std::string reply = j.is_object() ? j.value("reply", "") : r.out;
      if (reply == "answered") ++asked_answered;
      count(reply);
    });
  }
  for (auto& t : calls) t.join();
  EXPECT_EQ(bot.stop(), 0);

  std::cerr << "answered " << answered << " (" << served_answered << " by parley run, "
            << asked_answered << " by parley ask), refused " << refused << "\n";
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(answered.load() + refused.load(), 50);
  EXPECT_GT(served_answered.load(), 0);
  EXPECT_GT(asked_answered.load(), 0);
  EXPECT_GT(refused.load(), 0) << "the cap was reached";
  EXPECT_GT(answered.load(), 0);
  auto store = parley::testing::open_bot_store(dir.path());
  const auto sum = store->usage().summary({std::nullopt, 0, INT64_MAX}).value();
  EXPECT_EQ(sum.calls, answered.load()) << "a refused call was never sent";
  EXPECT_LE(sum.cost_actual_nanousd, 90'000'000)
      << answered.load() << " calls (" << served_answered.load() << " served, "
      << asked_answered.load() << " asked) spent past the $0.09 cap together";
  auto conn = store->reads().acquire();
  auto st = conn->cached("SELECT count(*) FROM spend_holds");
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 0) << "every call's usage row dropped its hold";
}

}  // namespace shared_budget_test
