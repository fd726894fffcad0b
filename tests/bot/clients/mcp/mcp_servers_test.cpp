// McpServers and the MCP tools as capabilities: against the real everything server (tests/mcp,
// pinned) and a small scripted Node server written into the test's directory for what the
// reference servers cannot be made to do (a tool whose schema the validator cannot check, a
// tool without annotations that counts its calls, a crash mid-call). The tool loop is driven
// by the fake LLM endpoint, as a model would call the tools.
#include "parley/bot/clients/mcp/mcp_servers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <thread>

#include "fakes/fake_llm.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/clients/mcp/mcp_capability.h"
#include "parley/bot/pipeline/tool_loop.h"
#include "parley/bot/pipeline/tool_selection.h"
#include "parley/capabilities/builtins.h"
#include "support/temp_dir.h"

namespace parley::bot::mcp {
namespace mcp_servers_test {

using fakes::FakeLlmServer;
using fakes::FakeReply;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;
namespace caps = parley::capabilities;
namespace fs = std::filesystem;

const fs::path kModules = fs::path(PARLEY_SOURCE_DIR) / "tests/mcp/node_modules";

bool node_in_path() {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && fs::exists(fs::path(dir) / "node")) return true;
  }
  return false;
}

// Tools: `add` (read-only; its schema names its dialect and uses oneOf), `write` (no
// annotations: unsafe; counts its calls), `count` (how many writes), `fail` (an isError
// result), `crash` (exits mid-call), `v2.lookup` (a '.' in its name), `strict` (a schema using
// unevaluatedProperties, which the validator does not read), and, with MODE=more, `extra`.
constexpr const char* kToolServer = R"JS(
const readline = require('readline');
const annotated = {readOnlyHint: true, idempotentHint: true};
const tools = [
  {name: 'add', title: 'Add numbers', description: 'Adds\n two numbers.\t' + 'x'.repeat(400),
   annotations: annotated,
   inputSchema: {$schema: 'http://json-schema.org/draft-07/schema#', type: 'object',
                 properties: {a: {type: 'number'}, b: {oneOf: [{type: 'number'}, {type: 'string', pattern: '^[0-9]+$'}]}},
                 required: ['a', 'b'], additionalProperties: false}},
  {name: 'write', description: 'Writes a note', inputSchema: {type: 'object', properties: {text: {type: 'string'}}}},
  {name: 'count', description: 'How many writes', annotations: annotated, inputSchema: {type: 'object'}},
  {name: 'fail', description: 'Always fails', annotations: annotated, inputSchema: {type: 'object'}},
  {name: 'crash', description: 'Crashes', inputSchema: {type: 'object'}},
  {name: 'v2.lookup', description: 'Looks up', annotations: annotated, inputSchema: {type: 'object'}},
  {name: 'strict', description: 'Strict', inputSchema: {type: 'object', unevaluatedProperties: false}},
];
if (process.env.MODE === 'more') tools.push({name: 'extra', description: 'Extra', inputSchema: {type: 'object'}});
let writes = 0;
const out = m => process.stdout.write(JSON.stringify(m) + '\n');
readline.createInterface({input: process.stdin}).on('line', line => {
  const m = JSON.parse(line);
  if (m.id === undefined || m.method === undefined) return;
  const reply = result => out({jsonrpc: '2.0', id: m.id, result});
  const text = t => reply({content: [{type: 'text', text: t}]});
  if (m.method === 'initialize') {
    return reply({protocolVersion: '2025-06-18', capabilities: {tools: {}},
                  serverInfo: {name: 'tools', version: '1'}});
  }
  if (m.method === 'tools/list') return reply({tools});
  if (m.method === 'tools/call') {
    const n = m.params.name, a = m.params.arguments || {};
    if (n === 'add') return text(String(Number(a.a) + Number(a.b)));
    if (n === 'write') { ++writes; return text('written: ' + a.text); }
    if (n === 'count') return text('writes: ' + writes);
    if (n === 'fail') return reply({isError: true, content: [{type: 'text', text: 'the disk is on fire'}]});
    if (n === 'crash') process.exit(3);
    return text(n + ' ok');
  }
  out({jsonrpc: '2.0', id: m.id, error: {code: -32601, message: 'no ' + m.method}});
});
)JS";

class McpServersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!node_in_path()) GTEST_SKIP() << "node is not in PATH: the MCP tests run Node servers";
    ASSERT_TRUE(fs::exists(kModules / ".bin/mcp-server-everything"))
        << kModules << " has no MCP servers: run scripts/deps --test (npm ci --prefix tests/mcp)";
    std::ofstream(dir_ / "tools.js") << kToolServer;
    ASSERT_TRUE(caps::register_builtins(registry_).ok());
    thread_ = std::thread([this] { ioc_.run(); });
    servers_.emplace(ioc_.get_executor(), multi_, registry_);
  }
  void TearDown() override {
    if (servers_) servers_->stop(std::chrono::seconds(10));
    servers_.reset();
    multi_.shutdown();
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }

  caps::McpServerSpec everything() const {
    caps::McpServerSpec s;
    s.name = "everything";
    s.tool_prefix = "everything";
    s.command = (kModules / ".bin/mcp-server-everything").string();
    s.args = {"stdio"};
    return s;
  }
  caps::McpServerSpec scripted(const std::string& prefix = "tools") const {
    caps::McpServerSpec s;
    s.name = "tools";
    s.tool_prefix = prefix;
    s.command = "node";
    s.args = {(dir_ / "tools.js").string()};
    return s;
  }
  static caps::CapabilitiesConfig config_of(std::vector<caps::McpServerSpec> specs) {
    caps::CapabilitiesConfig c;
    c.source = "test";
    for (auto& s : specs) c.mcp_servers[s.name] = std::move(s);
    return c;
  }
  // Waits until `name` is in the registry (or, with `present` false, is not).
  bool wait_for(const std::string& name, bool present = true,
                milliseconds patience = milliseconds(15'000)) {
    const auto until = steady_clock::now() + patience;
    while (steady_clock::now() < until) {
      if ((registry_.find(name) != nullptr) == present) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }
  std::optional<McpServers::ServerStatus> status_of(const std::string& server) {
    for (auto& s : servers_->status()) {
      if (s.server == server) return s;
    }
    return std::nullopt;
  }
  Result<json> invoke(const std::string& name, const json& args,
                      milliseconds timeout = milliseconds(10'000)) {
    caps::Capability* c = registry_.find(name);
    if (c == nullptr) return fail(ErrorCode::not_found, name + " is not in the registry");
    caps::InvokeContext ctx;
    ctx.deadline = steady_clock::now() + timeout;
    return c->invoke(ctx, args);
  }

  parley::testing::TempDir dir_;
  caps::Registry registry_;
  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_ =
      net::asio::make_work_guard(ioc_);
  http::CurlMulti multi_{ioc_.get_executor()};
  std::thread thread_;
  std::optional<McpServers> servers_;
};

TEST_F(McpServersTest, EverythingsToolsAreCapabilitiesCheckedBeforeTheCallAndCalled) {
  servers_->apply(config_of({everything()}));
  ASSERT_TRUE(wait_for("everything.echo"));
  ASSERT_TRUE(servers_->wait_settled(milliseconds(15'000)));
  const auto st = status_of("everything");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, "ready");
  EXPECT_EQ(st->transport, "stdio");
  EXPECT_GE(st->tools.size(), 10u);
  EXPECT_TRUE(st->refused.empty())
      << st->refused.front().first << ": " << st->refused.front().second;
  EXPECT_EQ(registry_.group_of("everything.echo"), "everything");

  // Side effects from the annotations: read-only, idempotent, and neither (unsafe).
  const auto effects = [this](const std::string& n) {
    return registry_.find(n)->flags().side_effects;
  };
  EXPECT_EQ(effects("everything.echo"), caps::SideEffects::none);
  EXPECT_EQ(effects("everything.gzip-file-as-resource"), caps::SideEffects::idempotent);
  EXPECT_EQ(effects("everything.toggle-simulated-logging"), caps::SideEffects::unsafe);
  EXPECT_TRUE(registry_.find("everything.echo")->commands().empty()) << "no /command";
  EXPECT_EQ(mcp::mcp_server_of(*registry_.find("everything.echo")), "everything");
  EXPECT_EQ(mcp::mcp_server_of(*registry_.find("calc")), "");

  auto echo = invoke("everything.echo", {{"message", "hi there"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_EQ((*echo)["text"], "Echo: hi there");
  auto sum = invoke("everything.get-sum", {{"a", 2}, {"b", 3.5}});
  ASSERT_TRUE(sum.ok()) << sum.error().message;
  EXPECT_THAT((*sum)["text"].get<std::string>(), HasSubstr("5.5"));
  // The server's own schema is checked before anything is sent.
  auto bad = invoke("everything.echo", {{"message", 5}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);
  EXPECT_THAT(bad.error().message, HasSubstr("arguments.message: expected string"));
  auto missing = invoke("everything.get-sum", {{"a", 2}});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr("arguments.b: required but missing"));
  // An image is summarised, never passed on as data.
  auto image = invoke("everything.get-tiny-image", json::object());
  ASSERT_TRUE(image.ok()) << image.error().message;
  EXPECT_THAT((*image)["text"].get<std::string>(), HasSubstr("[image image/png"));
}

TEST_F(McpServersTest, ALongCallEndsAtTheCallsDeadline) {
  servers_->apply(config_of({everything()}));
  ASSERT_TRUE(wait_for("everything.trigger-long-running-operation"));
  const auto start = steady_clock::now();
  auto r = invoke("everything.trigger-long-running-operation", {{"duration", 20}, {"steps", 4}},
                  milliseconds(600));
  const auto took = steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::deadline_exceeded) << r.error().message;
  EXPECT_THAT(r.error().message, HasSubstr("everything.trigger-long-running-operation"));
  EXPECT_LT(took, milliseconds(3'000));
  // The server is still there for the next call.
  auto echo = invoke("everything.echo", {{"message", "after"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
}

TEST_F(McpServersTest, WhatAServerSaysIsCheckedRefusedOrCut) {
  servers_->apply(config_of({scripted()}));
  ASSERT_TRUE(wait_for("tools.add"));
  ASSERT_TRUE(servers_->wait_settled(milliseconds(15'000)));
  const auto st = status_of("tools");
  ASSERT_TRUE(st);
  // The tool whose schema the validator cannot check is not offered, with the reason.
  EXPECT_EQ(registry_.find("tools.strict"), nullptr);
  ASSERT_EQ(st->refused.size(), 1u);
  EXPECT_EQ(st->refused[0].first, "tools.strict");
  EXPECT_THAT(st->refused[0].second, HasSubstr("unevaluatedProperties"));
  // A '.' in a tool's name: offered to a model under a name the APIs take.
  ASSERT_NE(registry_.find("tools.v2.lookup"), nullptr);
  EXPECT_EQ(pipeline::wire_name("tools.v2.lookup"), "tools__v2_lookup");
  EXPECT_EQ(pipeline::tool_definition(*registry_.find("tools.v2.lookup")).name, "tools__v2_lookup");
  EXPECT_FALSE(
      pipeline::tool_definition(*registry_.find("tools.add")).parameters->contains("$schema"));

  // The description: one line, cut.
  const std::string d(registry_.find("tools.add")->description());
  EXPECT_EQ(d.find('\n'), std::string::npos);
  EXPECT_THAT(d, ::testing::StartsWith("Adds two numbers. xxx"));
  EXPECT_LE(d.size(), mcp::kMaxToolDescriptionBytes);
  // Without annotations: unsafe.
  EXPECT_EQ(registry_.find("tools.write")->flags().side_effects, caps::SideEffects::unsafe);

  // oneOf, as the server gave it.
  auto three = invoke("tools.add", {{"a", 1}, {"b", "2"}});
  ASSERT_TRUE(three.ok()) << three.error().message;
  EXPECT_EQ((*three)["text"], "3");
  auto bad = invoke("tools.add", {{"a", 1}, {"b", "two"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("arguments.b"));
  // isError: the tool's own words, as an error.
  auto fire = invoke("tools.fail", json::object());
  ASSERT_FALSE(fire.ok());
  EXPECT_EQ(fire.error().message, "the disk is on fire");
}

TEST_F(McpServersTest, ACrashMidCallIsAClearErrorAndTheServerComesBack) {
  servers_->apply(config_of({scripted()}));
  ASSERT_TRUE(wait_for("tools.crash"));
  const auto start = steady_clock::now();
  auto r = invoke("tools.crash", json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_THAT(r.error().message, HasSubstr("tools.crash"));
  EXPECT_LT(steady_clock::now() - start, milliseconds(3'000));
  // Withdrawn while down, back after the back-off (1 s).
  ASSERT_TRUE(wait_for("tools.add", true, milliseconds(15'000)));
  auto three = invoke("tools.add", {{"a", 1}, {"b", 2}});
  ASSERT_TRUE(three.ok()) << three.error().message;
}

TEST_F(McpServersTest, ApplyStartsStopsAndRestartsServersByTheirSettings) {
  servers_->apply(config_of({scripted()}));
  ASSERT_TRUE(wait_for("tools.add"));
  caps::Capability* before = registry_.find("tools.add");
  // The same settings again: nothing restarts.
  servers_->apply(config_of({scripted()}));
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(registry_.find("tools.add"), before);

  // Disabled: its tools are gone at once, and one held by a turn answers `unavailable`.
  auto off = scripted();
  off.enabled = false;
  servers_->apply(config_of({off}));
  EXPECT_EQ(registry_.find("tools.add"), nullptr);
  EXPECT_EQ(status_of("tools")->state, "disabled");
  caps::InvokeContext ctx;
  auto held = before->invoke(ctx, {{"a", 1}, {"b", 2}});
  ASSERT_FALSE(held.ok());
  EXPECT_EQ(held.error().code, ErrorCode::unavailable);

  // Changed settings (another prefix, another tool): restarted under the new names.
  auto renamed = scripted("notes");
  servers_->apply(config_of({renamed}));
  ASSERT_TRUE(wait_for("notes.add"));
  EXPECT_EQ(registry_.find("tools.add"), nullptr);

  // A variable it needs that is not set: broken, naming the variable and not starting.
  auto needs = scripted("notes");
  needs.env = {{"API_TOKEN", "PARLEY_TEST_UNSET_VARIABLE"}};
  servers_->apply(config_of({needs, everything()}));
  ASSERT_TRUE(wait_for("notes.add", false));
  const auto st = status_of("tools");
  EXPECT_EQ(st->state, "broken");
  EXPECT_THAT(st->why, HasSubstr("PARLEY_TEST_UNSET_VARIABLE, which is not set"));
  ASSERT_TRUE(wait_for("everything.echo")) << "another server is not held up";

  // Removed from the configuration: stopped, its tools gone.
  servers_->apply(config_of({}));
  EXPECT_EQ(registry_.find("everything.echo"), nullptr);
  EXPECT_TRUE(servers_->status().empty());
}

// ---- the tool loop: a model calling MCP tools ----

class McpToolLoopTest : public McpServersTest {
 protected:
  void SetUp() override {
    McpServersTest::SetUp();
    if (IsSkipped()) return;
    llm::LlmSettings s;
    s.provider = "fake";
    s.providers["fake"] = llm::ProviderConfig{"fake", fake_.base_url(), "", {}};
    s.roles["smart"] = {llm::ModelRef{"", "model-a"}};
    s.retry.max_attempts = 1;
    client_ = std::make_unique<llm::LlmClient>(multi_, llm::resolve_llm(s, [](const std::string&) {
                                                 return std::optional<std::string>();
                                               }));
    loop_ = std::make_unique<pipeline::ToolLoop>(*client_, registry_, &limiter_);
  }
  void TearDown() override {
    loop_.reset();
    client_.reset();
    McpServersTest::TearDown();
  }

  pipeline::ToolLoopResult run(const caps::CapabilitiesConfig& config, caps::Caller caller) {
    llm::ChatRequest req;
    req.messages = {llm::Message::system("sys"), llm::Message::user("question")};
    caps::InvokeContext ctx;
    ctx.caller = std::move(caller);
    ctx.channel = "console";
    auto shared = std::make_shared<const caps::CapabilitiesConfig>(config);
    std::promise<pipeline::ToolLoopResult> p;
    net::asio::co_spawn(
        net::asio::make_strand(ioc_), loop_->run(req, ctx, shared, pipeline::ToolLoopOptions{}),
        [&p](const std::exception_ptr&, pipeline::ToolLoopResult r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  std::vector<std::string> tool_names(size_t n) {
    std::vector<std::string> names;
    for (const auto& t : fake_.requests().at(n).json.value("tools", json::array())) {
      names.push_back(t["function"]["name"]);
    }
    return names;
  }

  FakeLlmServer fake_;
  std::unique_ptr<llm::LlmClient> client_;
  caps::RateLimiter limiter_;
  std::unique_ptr<pipeline::ToolLoop> loop_;
};

TEST_F(McpToolLoopTest, AModelCallsMcpToolsUnsafeOnesOnceAndACrashIsAToolError) {
  auto config = config_of({scripted()});
  servers_->apply(config);
  ASSERT_TRUE(wait_for("tools.add"));
  fake_.push(FakeReply::tools({{"c1", "tools__add", R"({"a": 2, "b": 40})"}}));
  fake_.push(FakeReply::tools({{"c2", "tools__write", R"({"text": "milk"})"},
                               {"c3", "tools__write", R"({"text": "milk"})"}}));
  // `count` asks the server how often it wrote, before `crash` restarts it.
  fake_.push(FakeReply::tools({{"c4", "tools__count", "{}"},
                               {"c5", "tools__crash", "{}"},
                               {"c6", "calc", R"({"expression": "6*7"})"}}));
  fake_.push(FakeReply::text("Done."));
  const auto r = run(config, {7, "alice", "UTC", false, {}});
  EXPECT_EQ(r.stop, pipeline::ToolLoopResult::Stop::answered);
  EXPECT_EQ(r.reply, "Done.");
  ASSERT_EQ(r.steps.size(), 6u);
  EXPECT_EQ(r.steps[0].capability, "tools.add");
  EXPECT_TRUE(r.steps[0].ok);
  EXPECT_THAT(r.steps[0].result, HasSubstr("42"));
  EXPECT_TRUE(r.steps[1].ok);
  EXPECT_FALSE(r.steps[2].ok);
  EXPECT_THAT(r.steps[2].result, HasSubstr("not repeated automatically"));
  EXPECT_THAT(r.steps[3].result, HasSubstr("writes: 1")) << "the server ran the write once";
  EXPECT_FALSE(r.steps[4].ok);
  EXPECT_THAT(r.steps[4].result, HasSubstr("tools.crash"));
  EXPECT_TRUE(r.steps[5].ok) << "other tools keep working: " << r.steps[5].result;
  // The model saw the tools under their wire names.
  const auto names = tool_names(0);
  EXPECT_NE(std::find(names.begin(), names.end(), "tools__add"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "tools.add"), names.end());
}

TEST_F(McpToolLoopTest, AccessRulesAndTheOperatorsSideEffectsApplyToMcpTools) {
  auto config = config_of({scripted()});
  // The server's tools are for alice; `count` is overridden as unsafe.
  config.mcp_servers["tools"].defaults.allow.users = {"alice"};
  caps::CapabilityConfig count = config.mcp_servers["tools"].defaults;
  count.side_effects = caps::SideEffects::unsafe;
  count.configured = true;
  config.by_name["tools.count"] = count;
  servers_->apply(config);
  ASSERT_TRUE(wait_for("tools.add"));

  fake_.push(FakeReply::tools({{"c1", "tools__add", R"({"a": 1, "b": 1})"}}));
  fake_.push(FakeReply::text("No."));
  const auto bob = run(config, {8, "bob", "UTC", false, {}});
  const auto offered = tool_names(0);
  EXPECT_EQ(std::find(offered.begin(), offered.end(), "tools__add"), offered.end())
      << "a user not allowed never sees the tool";
  ASSERT_EQ(bob.steps.size(), 1u);
  EXPECT_FALSE(bob.steps[0].ok);

  fake_.push(FakeReply::tools({{"c1", "tools__count", "{}"}, {"c2", "tools__count", "{}"}}));
  fake_.push(FakeReply::text("Yes."));
  const auto alice = run(config, {7, "alice", "UTC", false, {}});
  ASSERT_EQ(alice.steps.size(), 2u);
  EXPECT_TRUE(alice.steps[0].ok) << alice.steps[0].result;
  EXPECT_THAT(alice.steps[1].result, HasSubstr("not repeated automatically"));
}

// The filesystem reference server over a temporary directory: a read inside, a path outside
// refused by the server and said cleanly, and its write tool (idempotent but destructive, by its
// own annotations) never run twice with the same arguments in a turn.
TEST_F(McpToolLoopTest, FilesystemReadsInsideRefusesOutsideAndItsWriteIsNeverRepeated) {
  const fs::path root = dir_ / "shared";
  fs::create_directories(root);
  std::ofstream(root / "note.txt") << "buy milk";
  caps::McpServerSpec files;
  files.name = "files";
  files.tool_prefix = "files";
  files.command = (kModules / ".bin/mcp-server-filesystem").string();
  files.args = {root.string()};
  auto config = config_of({files});
  servers_->apply(config);
  ASSERT_TRUE(wait_for("files.write_file"));
  EXPECT_EQ(registry_.find("files.read_text_file")->flags().side_effects, caps::SideEffects::none);
  EXPECT_EQ(registry_.find("files.write_file")->flags().side_effects, caps::SideEffects::unsafe);
  EXPECT_EQ(registry_.find("files.create_directory")->flags().side_effects,
            caps::SideEffects::idempotent);

  const std::string note = json{{"path", (root / "note.txt").string()}}.dump();
  const std::string outside = json{{"path", "/etc/hostname"}}.dump();
  const std::string write =
      json{{"path", (root / "list.txt").string()}, {"content", "eggs"}}.dump();
  fake_.push(FakeReply::tools(
      {{"c1", "files__read_text_file", note}, {"c2", "files__read_text_file", outside}}));
  fake_.push(
      FakeReply::tools({{"c3", "files__write_file", write}, {"c4", "files__write_file", write}}));
  fake_.push(FakeReply::text("Done."));
  const auto r = run(config, {7, "alice", "UTC", false, {}});
  ASSERT_EQ(r.steps.size(), 4u);
  EXPECT_TRUE(r.steps[0].ok) << r.steps[0].result;
  EXPECT_THAT(r.steps[0].result, HasSubstr("buy milk"));
  EXPECT_FALSE(r.steps[1].ok);
  EXPECT_THAT(r.steps[1].result, HasSubstr("outside allowed directories"));
  EXPECT_TRUE(r.steps[2].ok) << r.steps[2].result;
  EXPECT_FALSE(r.steps[3].ok);
  EXPECT_THAT(r.steps[3].result, HasSubstr("not repeated automatically"));
  std::ifstream written(root / "list.txt");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(written), {}), "eggs");
}

}  // namespace mcp_servers_test
}  // namespace parley::bot::mcp
