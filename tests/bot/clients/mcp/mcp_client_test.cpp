// McpClient against the real MCP reference servers (tests/mcp/package.json pins them; scripts/deps
// --test installs them with npm ci) and against small scripted Node servers written into each
// test's temporary directory for what the reference servers cannot be made to do (pages of
// tools, crashes, silence, old or unknown protocol revisions, a child that ignores SIGTERM).
#include "parley/bot/clients/mcp/mcp_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "parley/bot/clients/http/curl_multi.h"
#include "support/spawn.h"
#include "support/temp_dir.h"

namespace parley::bot::mcp {
namespace mcp_client_test {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using State = McpClient::State;
namespace fs = std::filesystem;

const fs::path kBin = fs::path(PARLEY_SOURCE_DIR) / "tests/mcp/node_modules/.bin";

std::optional<fs::path> find_node() {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    fs::path p = fs::path(dir) / "node";
    if (!dir.empty() && ::access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

bool process_gone(pid_t pid) { return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH; }

template <typename T>
net::asio::awaitable<std::optional<T>> wrap(net::asio::awaitable<T> a) {
  T value = co_await std::move(a);
  co_return std::optional<T>(std::move(value));
}

net::asio::awaitable<bool> wrap_void(net::asio::awaitable<void> a) {
  co_await std::move(a);
  co_return true;
}

// What the client reported through its callbacks, for the test thread to wait on.
struct Watch {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::pair<State, std::string>> states;
  std::vector<std::vector<McpTool>> tool_lists;

  McpClient::OnState on_state() {
    return [this](State s, std::string why) {
      std::lock_guard lock(m);
      states.emplace_back(s, std::move(why));
      cv.notify_all();
    };
  }
  McpClient::OnToolsChanged on_tools() {
    return [this](std::vector<McpTool> t) {
      std::lock_guard lock(m);
      tool_lists.push_back(std::move(t));
      cv.notify_all();
    };
  }
  // Waits until the latest state is `s`; false after `patience`.
  bool wait_state(State s, milliseconds patience = milliseconds(15'000)) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, patience, [&] { return !states.empty() && states.back().first == s; });
  }
  // Waits until a state reported after the first `after` ones is `s` (a restart, not the ready
  // state from before).
  bool wait_state_after(size_t after, State s, milliseconds patience = milliseconds(15'000)) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, patience, [&] {
      for (size_t i = after; i < states.size(); ++i) {
        if (states[i].first == s) return true;
      }
      return false;
    });
  }
  bool wait_tools(const std::function<bool(const std::vector<McpTool>&)>& pred,
                  milliseconds patience = milliseconds(15'000)) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, patience,
                       [&] { return !tool_lists.empty() && pred(tool_lists.back()); });
  }
  std::vector<McpTool> tools() {
    std::lock_guard lock(m);
    return tool_lists.empty() ? std::vector<McpTool>{} : tool_lists.back();
  }
  std::string last_why() {
    std::lock_guard lock(m);
    return states.empty() ? std::string() : states.back().second;
  }
  size_t state_count() {
    std::lock_guard lock(m);
    return states.size();
  }
};

const McpTool* find_tool(const std::vector<McpTool>& tools, const std::string& name) {
  for (const auto& t : tools) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// A scripted stdio MCP server, driven by environment variables: MODE (hang_init: never answers;
// stubborn: ignores SIGTERM and the end of stdin; deaf: answers everything but ping), VERSION (the
// protocol revision it answers with), BANNER (prints a non-JSON line first), NOISY (50 lines on
// stderr). Nine tools in pages of two (`env` shows what of its environment came through); `crash`
// exits with status 3, `slow` never answers, `cancelled` lists the notifications/cancelled
// received, `change` adds `delta` and sends list_changed, `ask` sends the client a ping and a
// sampling request and reports how each was answered.
constexpr const char* kScriptedServer = R"JS(
const readline = require('readline');
const mode = process.env.MODE || '';
const version = process.env.VERSION || '2025-06-18';
const tools = ['alpha', 'beta', 'gamma', 'crash', 'change', 'ask', 'slow', 'cancelled', 'env'].map(
    n => ({name: n, description: 'scripted ' + n, inputSchema: {type: 'object'}}));
const out = m => process.stdout.write(JSON.stringify(m) + '\n');
if (process.env.BANNER) process.stdout.write('a banner that is not JSON\n');
if (process.env.NOISY) for (let i = 0; i < 50; ++i) process.stderr.write('noise ' + i + '\n');
if (mode === 'stubborn') {
  process.on('SIGTERM', () => {});
  setInterval(() => {}, 1000);
}
let nextId = 1000;
const waiting = new Map();
const cancelled = [];
readline.createInterface({input: process.stdin}).on('line', line => {
  const m = JSON.parse(line);
  if (m.method === undefined) {
    const w = waiting.get(m.id);
    if (w) { waiting.delete(m.id); w(m); }
    return;
  }
  if (m.method === 'notifications/cancelled') cancelled.push(m.params.requestId + ' ' + m.params.reason);
  if (m.id === undefined || mode === 'hang_init') return;
  if (m.method === 'ping' && mode === 'deaf') return;
  const reply = result => out({jsonrpc: '2.0', id: m.id, result});
  if (m.method === 'initialize') {
    return reply({protocolVersion: version, capabilities: {tools: {listChanged: true}},
                  serverInfo: {name: 'scripted', version: '1'}});
  }
  if (m.method === 'tools/list') {
    const start = m.params && m.params.cursor ? Number(m.params.cursor) : 0;
    const r = {tools: tools.slice(start, start + 2)};
    if (start + 2 < tools.length) r.nextCursor = String(start + 2);
    return reply(r);
  }
  if (m.method === 'tools/call') {
    const n = m.params.name;
    if (n === 'crash') process.exit(3);
    if (n === 'slow') return;
    if (n === 'env') {
      return reply({content: [{type: 'text', text: [process.env.API_TOKEN, process.env.LEAK,
          process.env.PATH ? 'path' : 'no path', process.cwd()].join(' ')}]});
    }
    if (n === 'cancelled') return reply({content: [{type: 'text', text: cancelled.join(',')}]});
    if (n === 'change') {
      tools.push({name: 'delta', inputSchema: {type: 'object'}});
      reply({content: [{type: 'text', text: 'changed'}]});
      return out({jsonrpc: '2.0', method: 'notifications/tools/list_changed'});
    }
    if (n === 'ask') {
      const ask = (method, then) => {
        const id = nextId++;
        waiting.set(id, then);
        out({jsonrpc: '2.0', id, method, params: {}});
      };
      return ask('ping', p => ask('sampling/createMessage', s => reply({content: [{type: 'text',
          text: 'ping ' + (p.result ? 'ok' : 'error') + '; sampling ' +
                (s.error ? 'error ' + s.error.code : 'ok')}]})));
    }
    return reply({content: [{type: 'text', text: n + ' ' + JSON.stringify(m.params.arguments)}]});
  }
  out({jsonrpc: '2.0', id: m.id, error: {code: -32601, message: 'no ' + m.method}});
});
)JS";

// Forces every listening socket of a Node process onto 127.0.0.1 (the everything server's HTTP
// mode listens on all interfaces and has no option for it).
constexpr const char* kLoopbackOnly = R"JS(
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...a) {
  if ((typeof a[0] === 'number' || typeof a[0] === 'string') && typeof a[1] !== 'string') {
    a.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, a);
};
)JS";

// A scripted Streamable HTTP server answering with plain JSON bodies (the everything server
// always streams): sessions s1, s2, …; `expire` forgets the session, so that the next request
// gets 404; `whoami` reports the session, the MCP-Protocol-Version header and whether the bearer
// token came; `change` adds `delta` and says so on the session's GET event stream; GET and
// DELETE are logged to stdout.
constexpr const char* kScriptedHttpServer = R"JS(
const http = require('http');
let sessions = new Set();
const streams = new Map();
const tools = [{name: 'whoami', inputSchema: {type: 'object'}},
               {name: 'expire', inputSchema: {type: 'object'}},
               {name: 'change', inputSchema: {type: 'object'}}];
let next = 1;
const endStream = sid => {
  const s = streams.get(sid);
  if (s) s.end();
  streams.delete(sid);
};
http.createServer((req, res) => {
  let body = '';
  req.on('data', c => body += c);
  req.on('end', () => {
    const sid = req.headers['mcp-session-id'];
    if (req.method === 'DELETE') {
      console.log('DELETE ' + sid);
      sessions.delete(sid);
      endStream(sid);
      res.writeHead(200).end();
      return;
    }
    if (req.method === 'GET') {
      if (!sessions.has(sid)) { res.writeHead(404).end(); return; }
      console.log('GET ' + sid);
      res.writeHead(200, {'Content-Type': 'text/event-stream'});
      res.write(': stream open\n\n');
      streams.set(sid, res);
      return;
    }
    const m = JSON.parse(body);
    if (m.method !== 'initialize' && !sessions.has(sid)) {
      res.writeHead(404).end();
      return;
    }
    if (m.id === undefined) { res.writeHead(202).end(); return; }
    const headers = {'Content-Type': 'application/json'};
    let result;
    if (m.method === 'initialize') {
      const id = 's' + next++;
      sessions.add(id);
      headers['Mcp-Session-Id'] = id;
      result = {protocolVersion: '2025-06-18', capabilities: {tools: {}},
                serverInfo: {name: 'scripted-http', version: '1'}};
    } else if (m.method === 'tools/list') {
      result = {tools};
    } else if (m.params.name === 'expire') {
      sessions.delete(sid);
      endStream(sid);
      result = {content: [{type: 'text', text: 'forgotten'}]};
    } else if (m.params.name === 'change') {
      tools.push({name: 'delta', inputSchema: {type: 'object'}});
      const s = streams.get(sid);
      if (s) s.write('event: message\ndata: ' +
                     JSON.stringify({jsonrpc: '2.0', method: 'notifications/tools/list_changed'}) +
                     '\n\n');
      result = {content: [{type: 'text', text: s ? 'told' : 'no stream'}]};
    } else {
      result = {content: [{type: 'text', text: sid + ' ' + req.headers['mcp-protocol-version'] +
          ' ' + (req.headers['authorization'] === 'Bearer sekrit' ? 'bearer' : 'anonymous')}]};
    }
    res.writeHead(200, headers).end(JSON.stringify({jsonrpc: '2.0', id: m.id, result}));
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
)JS";

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

// The everything server in Streamable HTTP mode (or, with `scripted`, kScriptedHttpServer) as a
// child of the test (SIGTERM and reaped at the end); its output goes to a log file the test
// reads.
class HttpServer {
 public:
  HttpServer(const fs::path& node, const fs::path& dir, bool scripted = false)
      : port_(free_port()), log_(dir / "http.log") {
    std::ofstream(dir / "loopback.cjs") << kLoopbackOnly;
    std::ofstream(dir / "http_server.js") << kScriptedHttpServer;
    std::string preload = (dir / "loopback.cjs").string();
    std::string script = (fs::path(PARLEY_SOURCE_DIR) /
                          "tests/mcp/node_modules/@modelcontextprotocol/server-everything/dist/"
                          "index.js")
                             .string();
    std::vector<std::string> args{node.string(), "--require", preload, script, "streamableHttp"};
    if (scripted) args = {node.string(), (dir / "http_server.js").string()};
    std::vector<std::string> env{"PORT=" + std::to_string(port_),
                                 std::string("PATH=") + std::getenv("PATH")};
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (::posix_spawn(&pid_, node.c_str(), &fa, nullptr, argv.data(), envp.data()) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~HttpServer() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  bool wait_listening() const {
    for (int i = 0; i < 300 && pid_ > 0; ++i) {
      if (port_open(port_)) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }
  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/mcp";
  }
  [[nodiscard]] std::string log() const {
    std::ifstream in(log_);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  int port_;
  fs::path log_;
  pid_t pid_ = 0;
};

class McpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = find_node();
    if (!node_) GTEST_SKIP() << "node is not in PATH: the MCP client tests run Node servers";
    ASSERT_TRUE(fs::exists(kBin / "mcp-server-everything"))
        << kBin << " has no MCP servers: run scripts/deps --test (npm ci --prefix tests/mcp)";
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    multi_.shutdown();
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }

  McpServerConfig everything() const {
    McpServerConfig c;
    c.name = "everything";
    c.command = (kBin / "mcp-server-everything").string();
    c.args = {"stdio"};
    return c;
  }
  McpServerConfig scripted(std::map<std::string, std::string> env = {}) {
    std::ofstream(dir_ / "server.js") << kScriptedServer;
    McpServerConfig c;
    c.name = "scripted";
    c.command = node_->string();
    c.args = {(dir_ / "server.js").string()};
    c.env = std::move(env);
    c.restart_initial = milliseconds(200);
    return c;
  }

  template <typename T>
  T run(net::asio::awaitable<T> a) {
    auto f = testing::spawn(ioc_.get_executor(), wrap(std::move(a)));
    EXPECT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    return std::move(*f.get());
  }
  void stop(McpClient& c) {
    auto f = testing::spawn(ioc_.get_executor(), wrap_void(c.stop()));
    ASSERT_EQ(f.wait_for(std::chrono::seconds(15)), std::future_status::ready);
    f.get();
  }
  Result<McpCallResult> call(McpClient& c, std::string tool, json args,
                             milliseconds timeout = milliseconds(10'000),
                             std::shared_ptr<McpCancel> cancel = nullptr) {
    // milliseconds::max(): no deadline of the caller's own.
    auto deadline = timeout == milliseconds::max() ? steady_clock::time_point::max()
                                                   : steady_clock::now() + timeout;
    return run(c.call(std::move(tool), std::move(args), deadline, std::move(cancel)));
  }

  std::optional<fs::path> node_;
  parley::testing::TempDir dir_;
  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_ =
      net::asio::make_work_guard(ioc_);
  http::CurlMulti multi_{ioc_.get_executor()};
  std::thread thread_;
};

// ---- the everything server over stdio ----

TEST_F(McpClientTest, EverythingStdioInitializesListsAndCalls) {
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, everything(), w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why();
  EXPECT_NE(w.last_why().find("MCP 2025-06-18"), std::string::npos) << w.last_why();
  pid_t pid = client.child_pid();
  EXPECT_GT(pid, 0);

  auto tools = w.tools();
  const McpTool* echo = find_tool(tools, "echo");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->read_only, std::optional<bool>(true));
  EXPECT_EQ(echo->destructive, std::optional<bool>(false));
  EXPECT_EQ(echo->input_schema["properties"]["message"]["type"], "string");
  EXPECT_NE(find_tool(tools, "get-tiny-image"), nullptr);
  EXPECT_NE(find_tool(tools, "trigger-long-running-operation"), nullptr);

  auto r = call(client, "echo", json{{"message", "hello from parley"}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_FALSE(r->is_error);
  EXPECT_EQ(r->text, "Echo: hello from parley");

  auto image = call(client, "get-tiny-image", json::object());
  ASSERT_TRUE(image.ok()) << image.error().describe();
  EXPECT_NE(image->text.find("[image image/png, "), std::string::npos) << image->text;
  EXPECT_NE(image->text.find("The image above is the MCP logo."), std::string::npos);
  EXPECT_EQ(image->text.find("iVBOR"), std::string::npos) << "the base64 never reaches the text";

  // Arguments the tool's schema refuses: the tool ran and failed (isError), not a transport
  // failure.
  auto bad = call(client, "echo", json::object());
  ASSERT_TRUE(bad.ok()) << bad.error().describe();
  EXPECT_TRUE(bad->is_error);
  EXPECT_NE(bad->text.find("message"), std::string::npos) << bad->text;

  auto missing = call(client, "no-such-tool", json::object());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  EXPECT_NE(missing.error().message.find("no-such-tool"), std::string::npos);

  Status pong = run(client.ping(milliseconds(5'000)));
  EXPECT_TRUE(pong.ok()) << pong.error().describe();

  stop(client);
  EXPECT_EQ(client.state(), State::down);
  EXPECT_TRUE(w.tools().empty()) << "stop withdraws the tools";
  EXPECT_TRUE(process_gone(pid)) << "the child " << pid << " was stopped and reaped";
}

TEST_F(McpClientTest, EverythingLongRunningCallCancelledAtItsDeadline) {
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, everything(), w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why();

  auto t0 = steady_clock::now();
  auto r = call(client, "trigger-long-running-operation", json{{"duration", 10}, {"steps", 10}},
                milliseconds(700));
  auto took = steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::deadline_exceeded) << r.error().describe();
  EXPECT_NE(r.error().message.find("trigger-long-running-operation"), std::string::npos);
  EXPECT_GE(took, milliseconds(650));
  EXPECT_LT(took, milliseconds(700 + 500)) << "the caller is freed at the deadline";

  // Cancelled by the caller's token from another thread.
  auto token = std::make_shared<McpCancel>();
  std::thread canceller([token] {
    std::this_thread::sleep_for(milliseconds(300));
    token->cancel();
  });
  t0 = steady_clock::now();
  auto c = call(client, "trigger-long-running-operation", json{{"duration", 10}, {"steps", 10}},
                milliseconds(10'000), token);
  took = steady_clock::now() - t0;
  canceller.join();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::cancelled) << c.error().describe();
  EXPECT_LT(took, milliseconds(300 + 500));

  // With time enough, the progress notifications come with the result.
  auto done = call(client, "trigger-long-running-operation", json{{"duration", 1}, {"steps", 4}},
                   milliseconds(10'000));
  ASSERT_TRUE(done.ok()) << done.error().describe();
  EXPECT_NE(done->text.find("completed"), std::string::npos) << done->text;
  ASSERT_EQ(done->progress.size(), 4u);
  EXPECT_EQ(done->progress.front(), "1/4");
  EXPECT_EQ(done->progress.back(), "4/4");

  auto echo = call(client, "echo", json{{"message", "still here"}});
  ASSERT_TRUE(echo.ok()) << echo.error().describe();
  EXPECT_EQ(echo->text, "Echo: still here");
  stop(client);
}

// ---- the everything server over Streamable HTTP ----

TEST_F(McpClientTest, EverythingStreamableHttpSessionListCallDelete) {
  HttpServer server(*node_, dir_.path());
  ASSERT_TRUE(server.wait_listening()) << server.log();
  McpServerConfig c;
  c.name = "everything-http";
  c.transport = McpServerConfig::Transport::http;
  c.url = server.url();
  c.bearer_token = "not-a-real-token";
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, c, w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why() << "\n" << server.log();
  EXPECT_NE(find_tool(w.tools(), "echo"), nullptr);
  EXPECT_NE(server.log().find("Session initialized with ID"), std::string::npos);

  auto r = call(client, "echo", json{{"message", "over http"}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->text, "Echo: over http");

  auto progress =
      call(client, "trigger-long-running-operation", json{{"duration", 1}, {"steps", 2}});
  ASSERT_TRUE(progress.ok()) << progress.error().describe();
  EXPECT_EQ(progress->progress.size(), 2u) << "progress streams over SSE";

  stop(client);
  EXPECT_NE(server.log().find("Received session termination request"), std::string::npos)
      << "stop() ends the session with DELETE\n"
      << server.log();
}

TEST_F(McpClientTest, HttpJsonAnswersBearerAndExpiredSessionRenewed) {
  HttpServer server(*node_, dir_.path(), true);
  ASSERT_TRUE(server.wait_listening()) << server.log();
  McpServerConfig c;
  c.name = "scripted-http";
  c.transport = McpServerConfig::Transport::http;
  c.url = server.url();
  c.bearer_token = "sekrit";
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, c, w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why() << "\n" << server.log();
  auto who = call(client, "whoami", json::object());
  ASSERT_TRUE(who.ok()) << who.error().describe();
  EXPECT_EQ(who->text, "s1 2025-06-18 bearer");

  // Server-initiated messages come on the GET stream opened after initialization.
  for (int i = 0; i < 100 && server.log().find("GET s1") == std::string::npos; ++i) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  auto change = call(client, "change", json::object());
  ASSERT_TRUE(change.ok()) << change.error().describe();
  EXPECT_EQ(change->text, "told");
  EXPECT_TRUE(w.wait_tools([](const auto& t) { return find_tool(t, "delta") != nullptr; }))
      << "list_changed on the event stream re-lists the tools";

  auto forgotten = call(client, "expire", json::object());
  ASSERT_TRUE(forgotten.ok()) << forgotten.error().describe();
  size_t before = w.state_count();
  auto refused = call(client, "whoami", json::object());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::unavailable);
  EXPECT_NE(refused.error().message.find("expired (HTTP 404)"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(refused.error().message.find("sekrit"), std::string::npos);
  ASSERT_TRUE(w.wait_state_after(before, State::ready)) << w.last_why();
  auto renewed = call(client, "whoami", json::object());
  ASSERT_TRUE(renewed.ok()) << renewed.error().describe();
  EXPECT_EQ(renewed->text, "s2 2025-06-18 bearer") << "a new session after the 404";
  stop(client);
  EXPECT_NE(server.log().find("DELETE s2"), std::string::npos) << server.log();
}

// ---- the filesystem server ----

TEST_F(McpClientTest, FilesystemReadsInsideAndRefusesOutside) {
  fs::create_directories(dir_ / "files");
  std::ofstream(dir_ / "files" / "note.txt") << "hello, file\n";
  McpServerConfig c;
  c.name = "filesystem";
  c.command = (kBin / "mcp-server-filesystem").string();
  c.args = {(dir_ / "files").string()};
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, c, w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why();
  ASSERT_NE(find_tool(w.tools(), "read_text_file"), nullptr);

  auto inside =
      call(client, "read_text_file", json{{"path", (dir_ / "files" / "note.txt").string()}});
  ASSERT_TRUE(inside.ok()) << inside.error().describe();
  EXPECT_FALSE(inside->is_error);
  EXPECT_EQ(inside->text, "hello, file\n");

  auto outside = call(client, "read_text_file", json{{"path", "/etc/passwd"}});
  ASSERT_TRUE(outside.ok()) << outside.error().describe();
  EXPECT_TRUE(outside->is_error);
  EXPECT_NE(outside->text.find("outside allowed directories"), std::string::npos) << outside->text;
  pid_t pid = client.child_pid();
  stop(client);
  EXPECT_TRUE(process_gone(pid));
}

// ---- scripted servers ----

TEST_F(McpClientTest, ScriptedPagesOfToolsListChangedAndServerRequests) {
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, scripted({{"BANNER", "1"}}), w.on_tools(),
                   w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why();
  EXPECT_EQ(w.tools().size(), 9u) << "five pages of tools/list followed";

  auto changed = call(client, "change", json::object());
  ASSERT_TRUE(changed.ok()) << changed.error().describe();
  EXPECT_TRUE(w.wait_tools([](const auto& t) { return find_tool(t, "delta") != nullptr; }))
      << "list_changed re-lists the tools";
  EXPECT_EQ(w.tools().size(), 10u);
  auto delta = call(client, "delta", json{{"x", 1}});
  ASSERT_TRUE(delta.ok()) << delta.error().describe();
  EXPECT_EQ(delta->text, "delta {\"x\":1}");

  auto ask = call(client, "ask", json::object());
  ASSERT_TRUE(ask.ok()) << ask.error().describe();
  EXPECT_EQ(ask->text, "ping ok; sampling error -32601");
  stop(client);
}

TEST_F(McpClientTest, ScriptedCrashMidCallFailsItAndRestartsWithBackOff) {
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, scripted(), w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why();
  pid_t first = client.child_pid();
  size_t before = w.state_count();

  auto t0 = steady_clock::now();
  auto r = call(client, "crash", json::object(), milliseconds(20'000));
  auto took = steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_NE(r.error().message.find("exited with status 3"), std::string::npos) << r.error().message;
  EXPECT_LT(took, milliseconds(2'000)) << "the call fails when the child dies, not at its deadline";
  EXPECT_TRUE(process_gone(first));

  ASSERT_TRUE(w.wait_state_after(before, State::ready)) << w.last_why();
  auto restarted_after = steady_clock::now() - t0;
  EXPECT_GE(restarted_after, milliseconds(200)) << "the restart waits for the back-off";
  {
    std::lock_guard lock(w.m);
    bool withdrawn = false;
    for (const auto& list : w.tool_lists) withdrawn = withdrawn || list.empty();
    EXPECT_TRUE(withdrawn) << "the tools were withdrawn while the server was down";
  }
  EXPECT_NE(client.child_pid(), first);
  auto next = call(client, "alpha", json{{"n", 2}});
  ASSERT_TRUE(next.ok()) << next.error().describe();
  EXPECT_EQ(next->text, "alpha {\"n\":2}");
  pid_t second = client.child_pid();
  stop(client);
  EXPECT_TRUE(process_gone(second));
}

// Liveness: a server that is there but does not answer (hung) is found by its pings and
// restarted; one that answers them is left alone.
TEST_F(McpClientTest, ScriptedServerNotAnsweringPingsIsRestartedAsHung) {
  auto alive = scripted();
  alive.ping_interval = milliseconds(100);
  alive.ping_timeout = milliseconds(3'000);  // generous: a loaded machine is not a hung server
  Watch w_alive;
  McpClient answering(ioc_.get_executor(), multi_, alive, w_alive.on_tools(), w_alive.on_state());
  answering.start();
  ASSERT_TRUE(w_alive.wait_state(State::ready)) << w_alive.last_why();

  auto deaf = scripted({{"MODE", "deaf"}});
  deaf.ping_interval = milliseconds(100);
  deaf.ping_timeout = milliseconds(300);
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, deaf, w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why();
  const pid_t first = client.child_pid();
  const size_t before = w.state_count();
  ASSERT_TRUE(w.wait_state_after(before, State::down)) << w.last_why();
  {
    std::lock_guard lock(w.m);
    bool said = false;
    for (size_t i = before; i < w.states.size(); ++i) {
      said = said ||
             w.states[i].second.find("did not answer a ping within 300 ms") != std::string::npos;
    }
    EXPECT_TRUE(said) << w.last_why();
  }
  ASSERT_TRUE(w.wait_state_after(before, State::ready)) << w.last_why();
  EXPECT_NE(client.child_pid(), first) << "restarted";
  // Meanwhile the answering one stayed up through several pings.
  EXPECT_EQ(answering.state(), State::ready);
  EXPECT_EQ(w_alive.state_count(), 2u) << "starting, ready, and nothing since";
  stop(client);
  stop(answering);
  EXPECT_TRUE(process_gone(first));
}

TEST_F(McpClientTest, ScriptedBreakerStopsRestartsUntilReset) {
  auto c = scripted();
  c.breaker_crashes = 2;
  c.restart_initial = milliseconds(50);
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, c, w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why();
  size_t before = w.state_count();
  auto first = call(client, "crash", json::object());
  ASSERT_FALSE(first.ok());
  ASSERT_TRUE(w.wait_state_after(before, State::ready)) << w.last_why();
  auto second = call(client, "crash", json::object());
  ASSERT_FALSE(second.ok());
  ASSERT_TRUE(w.wait_state(State::broken)) << w.last_why();
  EXPECT_NE(w.last_why().find("not restarted until reset"), std::string::npos) << w.last_why();
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(client.state(), State::broken) << "no restart while broken";
  auto refused = call(client, "alpha", json::object());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::unavailable);

  before = w.state_count();
  client.reset();
  ASSERT_TRUE(w.wait_state_after(before, State::ready)) << w.last_why();
  auto works = call(client, "alpha", json::object());
  EXPECT_TRUE(works.ok());
  stop(client);
}

TEST_F(McpClientTest, ScriptedSilentServerIsDownWithinInitTimeoutOthersUnaffected) {
  auto silent_config = scripted({{"MODE", "hang_init"}});
  silent_config.name = "silent";
  silent_config.init_timeout = milliseconds(500);
  silent_config.restart_initial = milliseconds(5'000);
  Watch silent_watch, healthy_watch;
  McpClient healthy(ioc_.get_executor(), multi_, scripted(), healthy_watch.on_tools(),
                    healthy_watch.on_state());
  McpClient silent(ioc_.get_executor(), multi_, silent_config, silent_watch.on_tools(),
                   silent_watch.on_state());
  auto t0 = steady_clock::now();
  silent.start();
  healthy.start();
  ASSERT_TRUE(healthy_watch.wait_state(State::ready)) << healthy_watch.last_why();
  auto r = call(healthy, "beta", json::object());
  ASSERT_TRUE(r.ok()) << r.error().describe();

  ASSERT_TRUE(silent_watch.wait_state(State::down, milliseconds(3'000))) << silent_watch.last_why();
  auto took = steady_clock::now() - t0;
  EXPECT_GE(took, milliseconds(450));
  EXPECT_LT(took, milliseconds(500 + 1'000));
  EXPECT_NE(silent_watch.last_why().find("initialize got no answer"), std::string::npos)
      << silent_watch.last_why();
  EXPECT_NE(silent_watch.last_why().find("silent"), std::string::npos);
  EXPECT_EQ(healthy.state(), State::ready);

  stop(silent);
  pid_t healthy_pid = healthy.child_pid();
  stop(healthy);
  EXPECT_TRUE(process_gone(healthy_pid));
}

TEST_F(McpClientTest, MissingProgramIsDownWithTheReasonAndRetried) {
  McpServerConfig c;
  c.name = "missing";
  c.command = (dir_ / "no-such-server").string();
  c.restart_initial = milliseconds(50);
  c.breaker_crashes = 3;
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, c, w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::broken)) << w.last_why();
  EXPECT_NE(w.last_why().find("could not start '" + c.command + "': No such file or directory"),
            std::string::npos)
      << w.last_why();
  EXPECT_NE(w.last_why().find("3 failures"), std::string::npos) << w.last_why();
  stop(client);
}

TEST_F(McpClientTest, ScriptedProtocolRevisionsOldAcceptedUnknownRefused) {
  Watch old_watch;
  McpClient old(ioc_.get_executor(), multi_, scripted({{"VERSION", "2024-11-05"}}),
                old_watch.on_tools(), old_watch.on_state());
  old.start();
  ASSERT_TRUE(old_watch.wait_state(State::ready)) << old_watch.last_why();
  EXPECT_NE(old_watch.last_why().find("MCP 2024-11-05"), std::string::npos);
  stop(old);

  Watch future_watch;
  McpClient future(ioc_.get_executor(), multi_, scripted({{"VERSION", "2099-01-01"}}),
                   future_watch.on_tools(), future_watch.on_state());
  future.start();
  ASSERT_TRUE(future_watch.wait_state(State::broken)) << future_watch.last_why();
  EXPECT_NE(future_watch.last_why().find("'2099-01-01'"), std::string::npos);
  EXPECT_NE(future_watch.last_why().find("2025-06-18"), std::string::npos);
  stop(future);
}

TEST_F(McpClientTest, ScriptedStubbornChildIsKilledAfterTheGrace) {
  auto c = scripted({{"MODE", "stubborn"}});
  c.stop_grace = milliseconds(300);
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, c, w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why();
  pid_t pid = client.child_pid();
  auto t0 = steady_clock::now();
  stop(client);
  auto took = steady_clock::now() - t0;
  EXPECT_TRUE(process_gone(pid));
  EXPECT_GE(took, milliseconds(300)) << "SIGKILL only after the grace";
  EXPECT_LT(took, milliseconds(3'000));
}

TEST_F(McpClientTest, ScriptedDeadlineSendsCancelledNotification) {
  auto c = scripted();
  c.call_timeout = milliseconds(400);
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, c, w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why();
  auto t0 = steady_clock::now();
  auto slow = call(client, "slow", json::object(), milliseconds(300));
  auto took = steady_clock::now() - t0;
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().code, ErrorCode::deadline_exceeded);
  EXPECT_LT(took, milliseconds(300 + 500));
  auto seen = call(client, "cancelled", json::object());
  ASSERT_TRUE(seen.ok()) << seen.error().describe();
  // Requests 1 to 6 were initialize and tools/list (five pages: 2..6); the slow call is 7.
  EXPECT_EQ(seen->text, "7 deadline passed") << "the server was told, with the request's id";

  // No deadline of its own: the configured call_timeout applies.
  t0 = steady_clock::now();
  auto unbounded = call(client, "slow", json::object(), milliseconds::max());
  took = steady_clock::now() - t0;
  ASSERT_FALSE(unbounded.ok());
  EXPECT_EQ(unbounded.error().code, ErrorCode::deadline_exceeded);
  EXPECT_GE(took, milliseconds(400));
  EXPECT_LT(took, milliseconds(400 + 500));
  stop(client);
}

TEST_F(McpClientTest, ScriptedSlowCallInFlightFailsCancelledAtStop) {
  Watch w;
  McpClient client(ioc_.get_executor(), multi_, scripted(), w.on_tools(), w.on_state());
  client.start();
  ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why();
  auto deadline = steady_clock::now() + milliseconds(20'000);
  std::string tool = "slow";
  json args = json::object();
  auto pending = testing::spawn(ioc_.get_executor(),
                                wrap(client.call(std::move(tool), std::move(args), deadline)));
  std::this_thread::sleep_for(milliseconds(200));
  stop(client);
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto r = std::move(*pending.get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::cancelled) << r.error().describe();
}

TEST_F(McpClientTest, ScriptedChildGetsAMinimalEnvironmentAndItsStderrIsRateLimited) {
  std::ostringstream logs;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(logs)));
  ::setenv("LEAK", "from the test process", 1);  // NOLINT(concurrency-mt-unsafe): one thread
  fs::create_directories(dir_ / "work");
  auto c = scripted({{"API_TOKEN", "sekrit-env"}, {"NOISY", "1"}});
  c.cwd = (dir_ / "work").string();
  c.max_stderr_lines_per_minute = 5;
  Watch w;
  {
    McpClient client(ioc_.get_executor(), multi_, c, w.on_tools(), w.on_state());
    client.start();
    ASSERT_TRUE(w.wait_state(State::ready)) << w.last_why();
    auto env = call(client, "env", json::object());
    ASSERT_TRUE(env.ok()) << env.error().describe();
    EXPECT_EQ(env->text, "sekrit-env  path " + fs::canonical(dir_ / "work").string())
        << "configured variables and PATH reach the child, the rest of parley's do not";
    stop(client);
  }
  ::unsetenv("LEAK");  // NOLINT(concurrency-mt-unsafe): one thread
  spdlog::set_default_logger(previous);
  std::string text = logs.str();
  size_t noise = 0;
  for (size_t at = text.find("stderr: noise"); at != std::string::npos;
       at = text.find("stderr: noise", at + 1)) {
    ++noise;
  }
  EXPECT_EQ(noise, 5u) << text;
  EXPECT_EQ(text.find("sekrit-env"), std::string::npos) << "a variable's value is never logged";
}

// ---- reading results ----

TEST(McpCallResultTest, SummarisesNonTextAndCutsAtTheLimit) {
  json result = {
      {"content",
       {{{"type", "text"}, {"text", "héllo"}},
        {{"type", "audio"}, {"mimeType", "audio/wav"}, {"data", "AAAA"}},
        {{"type", "resource"},
         {"resource", {{"uri", "file:///x"}, {"mimeType", "text/plain"}, {"text", "12345"}}}},
        {{"type", "resource_link"}, {"uri", "file:///y"}, {"name", "y"}}}},
      {"isError", true},
      {"structuredContent", {{"a", 1}}}};
  auto r = read_call_result(result, 1 << 20);
  EXPECT_TRUE(r.is_error);
  EXPECT_EQ(r.text,
            "héllo\n[audio audio/wav, 3 bytes]\n[resource file:///x text/plain, 5 bytes]\n"
            "[resource link file:///y y]");
  EXPECT_EQ(r.structured["a"], 1);

  // Cut inside "é" (two bytes at 1..2): the cut backs off to a character boundary.
  auto cut = read_call_result(json{{"content", {{{"type", "text"}, {"text", "héllo world"}}}}}, 2);
  EXPECT_EQ(cut.text.substr(0, 2), "h\n");
  EXPECT_NE(cut.text.find("[… cut: the result was 12 bytes, showing the first 1]"),
            std::string::npos)
      << cut.text;

  json big = {
      {"content",
       {{{"type", "image"}, {"mimeType", "image/png"}, {"data", std::string(16460, 'A')}}}}};
  EXPECT_EQ(read_call_result(big, 1 << 20).text, "[image image/png, 12,345 bytes]");
  // A lying server: isError not a boolean, content not an array.
  EXPECT_FALSE(read_call_result(json{{"isError", "yes"}, {"content", 3}}, 100).is_error);
}

}  // namespace mcp_client_test
}  // namespace parley::bot::mcp
