// `parley mcp list | tools | call` as an operator runs them, against the MCP reference server
// (server-everything, pinned in tests/mcp, installed by scripts/deps --test) named in
// capabilities.yaml: the tools as the bot names them, a call and its result, a tool's error,
// and the mistakes an operator makes (an unknown server, arguments that are not an object, a
// variable not set, a server not there) each said clearly. (That every child is reaped at stop is
// the client's own test: McpClientTest.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace mcp_cli_test {

using parley::testing::parley;
using parley::testing::shell;
using parley::testing::TempDir;
using parley::testing::write_file;
using ::testing::HasSubstr;

const std::filesystem::path kEverything =
    std::filesystem::path(PARLEY_SOURCE_DIR) / "tests/mcp/node_modules/.bin/mcp-server-everything";

class McpCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (shell(dir_.path(), "command -v node").code != 0) {
      GTEST_SKIP() << "node is not in PATH: the MCP servers are Node programs";
    }
    ASSERT_TRUE(std::filesystem::exists(kEverything))
        << kEverything << " is missing: run scripts/deps --test (npm ci --prefix tests/mcp)";
    write_file(dir_ / "parley.yaml", "capabilities: {file: capabilities.yaml}\n");
    write_file(dir_ / "capabilities.yaml",
               "mcp_servers:\n"
               "  everything:\n"
               "    command: " +
                   kEverything.string() +
                   "\n"
                   "    args: [stdio]\n"
                   "    tool_prefix: demo\n"
                   "  remote:\n"
                   "    transport: http\n"
                   "    url: http://127.0.0.1:9/mcp\n"
                   "    token_env: PARLEY_TEST_MCP_TOKEN\n");
  }
  TempDir dir_;
};

TEST_F(McpCli, ListToolsAndCallAgainstTheReferenceServer) {
  auto list = parley(dir_.path(), "--config parley.yaml mcp list --json");
  ASSERT_EQ(list.code, 0) << list.err;
  const auto servers = nlohmann::json::parse(list.out);
  ASSERT_EQ(servers.size(), 2u);
  EXPECT_EQ(servers[0]["name"], "everything");
  EXPECT_EQ(servers[0]["tool_prefix"], "demo");
  EXPECT_EQ(servers[1]["transport"], "http");

  auto tools = parley(dir_.path(), "--config parley.yaml mcp tools everything --json");
  ASSERT_EQ(tools.code, 0) << tools.err;
  bool echo = false;
  for (const auto& t : nlohmann::json::parse(tools.out)) {
    if (t["name"] == "demo.echo") {
      echo = true;
      EXPECT_EQ(t["hints"], "read-only, idempotent");
      EXPECT_EQ(t["input_schema"]["properties"]["message"]["type"], "string");
    }
  }
  EXPECT_TRUE(echo) << tools.out;

  auto call = parley(
      dir_.path(), "--config parley.yaml mcp call everything echo --json '{\"message\": \"hi\"}'");
  ASSERT_EQ(call.code, 0) << call.err;
  EXPECT_EQ(call.out, "Echo: hi\n");

  // The tool refuses its arguments: its error, and exit 1.
  auto refused = parley(dir_.path(),
                        "--config parley.yaml mcp call everything echo --json '{\"message\": 5}'");
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.out, HasSubstr("expected string"));
  EXPECT_THAT(refused.err, HasSubstr("the tool reported an error"));
}

// `parley capabilities` starts the servers as the bot would and lists their tools with the
// server, and says why a server gives none.
TEST_F(McpCli, CapabilitiesListsEachServersToolsAndWhyAServerHasNone) {
  auto text =
      parley(dir_.path(), "--config parley.yaml capabilities", "env -u PARLEY_TEST_MCP_TOKEN");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("demo.echo"));
  EXPECT_THAT(text.out, HasSubstr("MCP server everything; side effects none (its annotations)"));
  EXPECT_THAT(text.out, HasSubstr("MCP server remote is broken: mcp server remote: token_env names "
                                  "the variable PARLEY_TEST_MCP_TOKEN, which is not set"));
  auto listed = parley(dir_.path(), "--config parley.yaml capabilities --json",
                       "env -u PARLEY_TEST_MCP_TOKEN");
  ASSERT_EQ(listed.code, 0) << listed.err;
  bool echo = false;
  bool calc = false;
  for (const auto& c : nlohmann::json::parse(listed.out)) {
    if (c.value("name", "") == "demo.echo") {
      echo = true;
      EXPECT_EQ(c["mcp_server"], "everything");
      EXPECT_EQ(c["side_effects"], "none");
      EXPECT_TRUE(c["commands"].empty());
    }
    calc = calc || c.value("name", "") == "calc";
  }
  EXPECT_TRUE(echo) << listed.out;
  EXPECT_TRUE(calc) << "the built-ins are listed too";
}

TEST_F(McpCli, MistakesAreSaidClearly) {
  auto unknown = parley(dir_.path(), "--config parley.yaml mcp tools nope");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("no server 'nope' in capabilities.yaml (configured: "
                                     "everything, remote)"));
  auto not_object =
      parley(dir_.path(), "--config parley.yaml mcp call everything echo --json '[1]'");
  EXPECT_EQ(not_object.code, 2);
  EXPECT_THAT(not_object.err, HasSubstr("--json must be a JSON object"));
  auto no_token =
      parley(dir_.path(), "--config parley.yaml mcp tools remote", "env -u PARLEY_TEST_MCP_TOKEN");
  EXPECT_EQ(no_token.code, 2);
  EXPECT_THAT(no_token.err, HasSubstr("token_env names the variable PARLEY_TEST_MCP_TOKEN, which "
                                      "is not set"));
  // A token set but nothing listening: the server is down, said, exit 1; the token is not shown.
  auto down = parley(dir_.path(), "--config parley.yaml mcp tools remote",
                     "PARLEY_TEST_MCP_TOKEN=s3cret-token-value");
  EXPECT_EQ(down.code, 1) << down.out;
  EXPECT_THAT(down.err, HasSubstr("mcp server remote is"));
  EXPECT_THAT(down.out + down.err, ::testing::Not(HasSubstr("s3cret-token-value")));
  // A mistake in the file: FILE:LINE:COLUMN, exit 2.
  write_file(dir_ / "capabilities.yaml", "mcp_servers:\n  x:\n    transport: pigeon\n");
  auto bad = parley(dir_.path(), "--config parley.yaml mcp list");
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("capabilities.yaml:3:16: mcp_servers.x.transport: expected stdio "
                                 "or http"));
}

}  // namespace mcp_cli_test
