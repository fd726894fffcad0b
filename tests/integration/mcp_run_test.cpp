// An MCP server's tools inside `parley run`: the reference server (server-everything, pinned in
// tests/mcp) started by the bot from capabilities.yaml, its tool called by the model (the fake
// LLM) in a turn, the access rules of the file applied to it, /help listing it with its server,
// and hot reload removing and adding the server while the bot serves.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "fakes/fake_llm.h"
#include "served_bot.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace mcp_run_test {

using nlohmann::json;
using parley::fakes::FakeLlmServer;
using parley::fakes::FakeReply;
using parley::testing::http_request;
using parley::testing::parley;
using parley::testing::ServedBot;
using parley::testing::shell;
using parley::testing::TempDir;
using parley::testing::write_file;
using ::testing::HasSubstr;
using ::testing::Not;

const std::filesystem::path kEverythingServer =
    std::filesystem::path(PARLEY_SOURCE_DIR) / "tests/mcp/node_modules/.bin/mcp-server-everything";

std::string say(const std::string& user, const std::string& text) {
  return json{{"conversation", "c-" + user}, {"user", user}, {"text", text}}.dump();
}

std::string with_server() {
  return "mcp_servers:\n"
         "  everything:\n"
         "    command: " +
         kEverythingServer.string() +
         "\n"
         "    args: [stdio]\n"
         "capabilities:\n"
         "  everything.get-sum:\n"
         "    allow: {users: [fay]}\n";
}

// The names of the tools the fake LLM was offered in request `r`.
std::vector<std::string> offered(const parley::fakes::RecordedRequest& r) {
  std::vector<std::string> names;
  for (const auto& t : r.json.value("tools", json::array())) names.push_back(t["function"]["name"]);
  return names;
}

// The requests of turns answering `text` (with tools: not the memory extraction's, which read
// the conversation too).
std::vector<parley::fakes::RecordedRequest> asking(const FakeLlmServer& fake,
                                                   const std::string& text) {
  std::vector<parley::fakes::RecordedRequest> out;
  for (const auto& r : fake.requests()) {
    const json& last = r.json["messages"].back();
    if (r.json.contains("tools") && last["role"] == "user" &&
        last["content"].dump().find(text) != std::string::npos) {
      out.push_back(r);
    }
  }
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(McpRun, AModelCallsAServersToolUnderTheFilesRulesAndReloadAddsAndRemovesIt) {
  TempDir dir;
  if (shell(dir.path(), "command -v node").code != 0) {
    GTEST_SKIP() << "node is not in PATH: the MCP servers are Node programs";
  }
  ASSERT_TRUE(std::filesystem::exists(kEverythingServer))
      << kEverythingServer << " is missing: run scripts/deps --test";
  write_file(dir / "parley.yaml", "capabilities: {file: capabilities.yaml}\n");
  write_file(dir / "capabilities.yaml", with_server());
  FakeLlmServer fake;
  // Calls get-sum when it is offered; reads the tool's result back as its answer.
  fake.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    const json& last = r.json["messages"].back();
    if (last["role"] == "tool") return FakeReply::text("Tool said: " + last["content"].dump());
    if (has(offered(r), "everything__get-sum")) {
      return FakeReply::tools({{"call_1", "everything__get-sum", R"({"a": 2, "b": 3})"}});
    }
    return FakeReply::text("No sum tool here.");
  });
  ServedBot bot(dir.path(), fake.base_url(), "", "--config parley.yaml");
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";
  const auto help = [&](const std::string& user) {
    auto r = http_request(url, say(user, "/help"));
    return r.status == 200 ? json::parse(r.body)["reply"].get<std::string>() : r.body;
  };
  // Waits until /help does, or does not, list the server (asked by a new user each time: one
  // user's messages are rate limited).
  int probe = 0;
  const auto wait_help = [&](bool listed) {
    for (int i = 0; i < 300; ++i) {
      const bool now =
          help("probe" + std::to_string(++probe)).find("everything: ") != std::string::npos;
      if (now == listed) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  ASSERT_TRUE(wait_help(true)) << help("fay");
  EXPECT_THAT(help("fay"), HasSubstr("everything.get-sum"));
  EXPECT_THAT(help("gus"), Not(HasSubstr("everything.get-sum"))) << "gus is not allowed";
  EXPECT_THAT(help("gus"), HasSubstr("everything.echo")) << "the server's other tools are";

  // Fay asks; the model calls the server's tool and reads its answer.
  auto turn = http_request(url, say("fay", "What is the sum of 2 and 3?"));
  ASSERT_EQ(turn.status, 200) << turn.body;
  EXPECT_THAT(json::parse(turn.body)["reply"].get<std::string>(), HasSubstr("5"));
  auto requests = asking(fake, "What is the sum of 2 and 3?");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(has(offered(requests[0]), "everything__get-sum"));
  // The server's description reaches the model in the tool's definition only.
  for (const auto& m : requests[0].json["messages"]) {
    if (m["role"] == "system") {
      EXPECT_THAT(m["content"].dump(), Not(HasSubstr("Returns the sum of two numbers")));
    }
  }

  // Gus asks the same: the tool is never offered to him.
  auto refused = http_request(url, say("gus", "What is the sum of 2 and 3?"));
  ASSERT_EQ(refused.status, 200) << refused.body;
  EXPECT_EQ(json::parse(refused.body)["reply"], "No sum tool here.");
  requests = asking(fake, "What is the sum of 2 and 3?");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_FALSE(has(offered(requests[1]), "everything__get-sum"));

  // The server removed from the file while the bot runs: its tools go; added back: they return.
  write_file(dir / "capabilities.yaml", "capabilities:\n  calc: {enabled: true}\n");
  ASSERT_TRUE(wait_help(false)) << help("fay");
  auto without = http_request(url, say("fay", "And the sum of 2 and 3 now?"));
  EXPECT_EQ(json::parse(without.body)["reply"], "No sum tool here.");
  write_file(dir / "capabilities.yaml", with_server());
  ASSERT_TRUE(wait_help(true)) << help("fay");
  EXPECT_EQ(bot.stop(), 0);
}

// `parley ask` answers one message: it waits for the servers to be ready before it asks.
TEST(McpRun, AskWaitsForTheServersAndUsesTheirTools) {
  TempDir dir;
  if (shell(dir.path(), "command -v node").code != 0) {
    GTEST_SKIP() << "node is not in PATH: the MCP servers are Node programs";
  }
  write_file(dir / "parley.yaml", "capabilities: {file: capabilities.yaml}\n");
  write_file(dir / "capabilities.yaml", with_server());
  FakeLlmServer fake;
  fake.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    const json& last = r.json["messages"].back();
    if (last["role"] == "tool") return FakeReply::text("Tool said: " + last["content"].dump());
    if (has(offered(r), "everything__get-sum")) {
      return FakeReply::tools({{"call_1", "everything__get-sum", R"({"a": 20, "b": 22})"}});
    }
    return FakeReply::text("No sum tool here.");
  });
  auto r = parley(dir.path(), "--config parley.yaml ask 'the sum of 20 and 22?' --user fay",
                  "env -u OPENROUTER_API_KEY -u OPENAI_API_KEY -u PARLEY_LLM_API_KEY "
                  "PARLEY_LLM_BASE_URL=" +
                      fake.base_url() + " PARLEY_LLM_MODEL=fake-model");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("42")) << r.out;
}

}  // namespace mcp_run_test
