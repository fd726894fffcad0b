// `parley ask` end to end against the fake LLM endpoint: the real binary, a real database, the
// model calling the memory capability; recall reaching the next turn's context, per user.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>

#include "fakes/fake_llm.h"
#include "parley/storage/store.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace ask_test {

using nlohmann::json;
using parley::fakes::FakeLlmServer;
using parley::fakes::FakeReply;
using parley::testing::contains;
using parley::testing::parley;
using parley::testing::TempDir;
using ::testing::HasSubstr;

std::string env_for(const FakeLlmServer& fake) {
  return "env -u OPENROUTER_API_KEY -u OPENAI_API_KEY -u PARLEY_LLM_API_KEY PARLEY_LLM_BASE_URL=" +
         fake.base_url() + " PARLEY_LLM_MODEL=fake-model";
}

// The system message of a recorded request.
std::string system_of(const parley::fakes::RecordedRequest& r) {
  for (const auto& m : r.json["messages"]) {
    if (m["role"] == "system") return m["content"];
  }
  return "";
}

TEST(Ask, MemoryAcrossTurnsFromRecallAndOnlyForItsOwner) {
  TempDir dir;
  FakeLlmServer fake;
  // Turn 1: the model calls memory, then confirms.
  fake.push(FakeReply::tools(
      {{"call_1", "memory", R"({"action": "remember", "content": "I love pizza and tacos"})"}}));
  fake.push(FakeReply::text("Noted: you love pizza and tacos."));
  auto first = parley(dir.path(), "ask 'remember that I love pizza and tacos' --user alice --json",
                      env_for(fake));
  ASSERT_EQ(first.code, 0) << first.out << first.err;
  const auto j1 = json::parse(first.out);
  EXPECT_EQ(j1["reply"], "Noted: you love pizza and tacos.");
  EXPECT_EQ(j1["steps"], 1);
  EXPECT_EQ(j1["llm_calls"], 2);
  EXPECT_EQ(j1["model"], "fake-model");
  EXPECT_GT(j1["tokens"]["prompt"].get<int>(), 0);

  // Turn 2 (a new process): the answer can only come from what recall put in the context.
  fake.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    const std::string sys = system_of(r);
    if (sys.find("pizza") != std::string::npos && sys.find("tacos") != std::string::npos) {
      return FakeReply::text("You love pizza and tacos.");
    }
    return FakeReply::text("I don't know what you like to eat yet.");
  });
  auto second = parley(dir.path(), "ask 'what do I love to eat?' --user alice", env_for(fake));
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_THAT(second.out, HasSubstr("pizza"));
  EXPECT_THAT(second.out, HasSubstr("tacos"));

  // Another user, however they ask, never gets Alice's memories into their context.
  for (const char* q :
       {"what do I love to eat?", "what does alice love? pizza tacos", "/recall pizza"}) {
    auto bob = parley(dir.path(), std::string("ask ") + parley::testing::quote(q) + " --user bob",
                      env_for(fake));
    ASSERT_EQ(bob.code, 0) << bob.err;
    EXPECT_FALSE(contains(bob.out, "tacos")) << q << ": " << bob.out;
  }
  for (const auto& r : fake.requests()) {
    const std::string sys = system_of(r);
    if (sys.find("talking with bob") != std::string::npos) {
      EXPECT_EQ(sys.find("tacos"), std::string::npos) << sys;
    }
  }

  // The user's text is a user message, never in the system role; the system prompt says so.
  const auto req = fake.requests().front();
  EXPECT_THAT(system_of(req), HasSubstr("untrusted"));
  EXPECT_EQ(system_of(req).find("remember that I love pizza"), std::string::npos);
  EXPECT_EQ(req.json["messages"].back()["role"], "user");
  EXPECT_EQ(req.json["messages"].back()["content"], "remember that I love pizza and tacos");

  // Every model call wrote its usage row; every reply went through the outbox.
  parley::storage::StoreOptions so;
  so.path = dir / "data/parley.db";
  auto store = std::move(parley::storage::Store::open(so).value());
  const auto sum = store->usage().summary({}).value();
  EXPECT_EQ(sum.calls, static_cast<int64_t>(fake.request_count()));
  EXPECT_TRUE(store->outbox().pending().value().empty());
}

TEST(Ask, CommandsWorkWithoutAnLlmAndTheReplyExplainsHowToConfigureOne) {
  TempDir dir;
  const std::string no_llm =
      "env -u OPENROUTER_API_KEY -u OPENAI_API_KEY -u PARLEY_LLM_BASE_URL -u PARLEY_LLM_MODEL";
  auto calc = parley(dir.path(), "ask '/calc 123*456'", no_llm);
  ASSERT_EQ(calc.code, 0) << calc.err;
  EXPECT_EQ(calc.out, "56088\n");
  auto hello = parley(dir.path(), "ask hello", no_llm);
  ASSERT_EQ(hello.code, 0) << hello.err;
  EXPECT_THAT(hello.out, HasSubstr("No LLM is configured"));
}

TEST(Ask, AnLlmOutageGivesAClearAnswerAndExitCode1) {
  TempDir dir;
  FakeLlmServer fake;
  fake.set_handler([](const parley::fakes::RecordedRequest&) -> std::optional<FakeReply> {
    return FakeReply::error(402);
  });
  auto r = parley(dir.path(), "ask hello --json", env_for(fake));
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  const auto j = json::parse(r.out);
  EXPECT_EQ(j["stop"], "llm_error");
  EXPECT_THAT(j["reply"].get<std::string>(), HasSubstr("out of credit"));
}

// Rows of the usage ledger by purpose, e.g. {"tool_step": 7, "turn": 1}.
std::map<std::string, int64_t> usage_by_purpose(const TempDir& dir) {
  parley::storage::StoreOptions so;
  so.path = dir / "data/parley.db";
  auto store = std::move(parley::storage::Store::open(so).value());
  auto conn = store->reads().acquire();
  auto st = conn->cached("SELECT purpose, count(*) FROM usage GROUP BY purpose");
  std::map<std::string, int64_t> out;
  while ((*st)->step().value()) out[(*st)->column_text(0)] = (*st)->column_int64(1);
  return out;
}

FakeReply calc_call(const std::string& id) {
  return FakeReply::tools({{id, "calc", R"({"expression": "1+1"})"}});
}

TEST(Ask, AToolLoopAtItsIterationLimitGivesAShortClearAnswerAndRecordsEveryCall) {
  TempDir dir;
  FakeLlmServer fake;
  std::atomic<int> n{0};
  fake.set_handler([&n](const parley::fakes::RecordedRequest&) -> std::optional<FakeReply> {
    return calc_call("call_" + std::to_string(++n));  // never answers in text
  });
  auto r = parley(dir.path(), "ask 'what is 1+1, really?' --json", env_for(fake));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const auto j = json::parse(r.out);
  EXPECT_EQ(j["stop"], "iteration_limit");
  EXPECT_EQ(j["llm_calls"], 8);
  EXPECT_EQ(j["steps"], 8);
  const std::string reply = j["reply"];
  EXPECT_THAT(reply, HasSubstr("stopped after 8 steps"));
  EXPECT_LT(reply.size(), 400u) << "short";
  EXPECT_EQ(usage_by_purpose(dir), (std::map<std::string, int64_t>{{"tool_step", 7}, {"turn", 1}}));
}

TEST(Ask, AToolLoopThatReachesTheTurnDeadlineStopsWithAClearAnswerAndItsUsage) {
  TempDir dir;
  FakeLlmServer fake;
  std::atomic<int> n{0};
  fake.set_handler([&n](const parley::fakes::RecordedRequest&) -> std::optional<FakeReply> {
    auto reply = calc_call("call_" + std::to_string(++n));
    reply.delay_before_headers = std::chrono::milliseconds(400);
    return reply;
  });
  parley::testing::write_file(dir / "parley.yaml", "llm:\n  timeouts: {turn_ms: 1500}\n");
  const auto started = std::chrono::steady_clock::now();
  auto r = parley(dir.path(), "--config parley.yaml ask 'add 1+1 again and again' --json",
                  env_for(fake));
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const auto j = json::parse(r.out);
  EXPECT_EQ(j["stop"], "deadline");
  EXPECT_THAT(j["reply"].get<std::string>(), ::testing::Not(::testing::IsEmpty()));
  EXPECT_LT(took, std::chrono::seconds(6)) << "the deadline ended the turn";
  const auto usage = usage_by_purpose(dir);
  int64_t rows = 0;
  for (const auto& [purpose, count] : usage) rows += count;
  EXPECT_EQ(rows, j["llm_calls"].get<int64_t>()) << "every call of the turn, the one cut off too";
  EXPECT_GE(rows, 3);
}

}  // namespace ask_test

namespace ask_test {

// A small per-user cap ($0.01) with nothing spent: the worst case of 4,096 completion tokens
// ($0.033 at $8 per million) does not fit, so the call asks for the tokens that do instead of
// being refused, and the ledger says so.
TEST(Ask, ASmallCapLowersMaxTokensToFitAndTheLedgerSaysSo) {
  TempDir dir;
  FakeLlmServer fake;
  parley::testing::write_file(dir / "prices.yaml",
                              "version: \"t\"\nmodels:\n  - match: \"fake*\"\n    input: 1\n"
                              "    output: 8\n");
  parley::testing::write_file(
      dir / "parley.yaml",
      "money:\n  prices: prices.yaml\n  budgets:\n    user_daily_usd: 0.01\n"
      "    min_max_tokens: 256\n");
  fake.push(FakeReply::text("A short answer."));
  auto r = parley(dir.path(), "--config parley.yaml ask 'hello there' --json", env_for(fake));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(json::parse(r.out)["reply"], "A short answer.");
  ASSERT_EQ(fake.requests().size(), 1u);
  const int asked = fake.requests()[0].json.value("max_tokens", 0);
  EXPECT_GE(asked, 256);
  EXPECT_LT(asked, 1250) << "$0.01 covers about 1,250 completion tokens at $8 per million";
  parley::storage::StoreOptions so;
  so.path = dir / "data/parley.db";
  auto store = std::move(parley::storage::Store::open(so).value());
  auto conn = store->reads().acquire();
  auto st = conn->cached("SELECT max_tokens_capped FROM usage");
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), asked);
}

}  // namespace ask_test
