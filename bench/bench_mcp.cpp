// bench_mcp: what an MCP tool costs parley. One tools/call round trip through the whole
// capability path (schema check, McpClient, the server, the result read back) against the MCP
// reference server's trivial `echo`, over stdio (a child process) and over Streamable HTTP (the
// same server in its HTTP mode, on 127.0.0.1), beside a direct call of a built-in capability
// (calc) in the same run; then what each running server costs: parley's resident memory and
// threads, and the server process's own memory.
//
// Needs Node and the pinned servers (scripts/deps --test: npm ci --prefix tests/mcp).
// Figures are printed (`name value unit`), never asserted; --quick is the smoke test's size.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <optional>

#include "bench_util.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/clients/mcp/mcp_servers.h"
#include "parley/capabilities/builtins.h"

extern char** environ;

namespace parley::bench {
namespace {

namespace asio = parley::net::asio;
namespace mcp = bot::mcp;
namespace http = bot::http;
namespace caps = parley::capabilities;
namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kModules = fs::path(PARLEY_SOURCE_DIR) / "tests/mcp/node_modules";

// The everything server listens on every interface and has no option for it: this preload puts
// each listening socket on 127.0.0.1.
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

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw BenchError("no free port on 127.0.0.1");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

bool port_open(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// The everything server in Streamable HTTP mode, a child of the bench (SIGTERM and reaped).
class HttpServer {
 public:
  explicit HttpServer(const fs::path& dir) : port_(free_port()) {
    std::ofstream(dir / "loopback.cjs") << kLoopbackOnly;
    std::vector<std::string> args{
        "node", "--require", (dir / "loopback.cjs").string(),
        (kModules / "@modelcontextprotocol/server-everything/dist/index.js").string(),
        "streamableHttp"};
    std::vector<std::string> env{"PORT=" + std::to_string(port_),
                                 std::string("PATH=") + std::getenv("PATH")};  // NOLINT
    std::vector<char*> argv;
    std::vector<char*> envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const std::string log = (dir / "http.log").string();
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT, 0600);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (::posix_spawnp(&pid_, "node", &fa, nullptr, argv.data(), envp.data()) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 300 && pid_ > 0 && !port_open(port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (pid_ <= 0 || !port_open(port_))
      throw BenchError("the everything server (HTTP) did not start");
  }
  ~HttpServer() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/mcp";
  }
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  int port_;
  pid_t pid_ = 0;
};

struct Options {
  bool quick = false;
  bool json = false;
  int calls = 0;
};

caps::McpServerSpec stdio_spec() {
  caps::McpServerSpec s;
  s.name = "local";
  s.tool_prefix = "local";
  s.command = (kModules / ".bin/mcp-server-everything").string();
  s.args = {"stdio"};
  return s;
}

caps::McpServerSpec http_spec(const std::string& url) {
  caps::McpServerSpec s;
  s.name = "remote";
  s.tool_prefix = "remote";
  s.transport = "http";
  s.url = url;
  return s;
}

// Waits until `name` is a capability.
void wait_for(const caps::Registry& registry, const std::string& name) {
  for (int i = 0; i < 1500; ++i) {
    if (registry.find(name) != nullptr) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw BenchError(name + " did not appear within 15 s");
}

// `n` sequential calls of `name` with `args` (after 20 not timed), each its latency in µs,
// sorted.
std::vector<double> time_calls(const caps::Registry& registry, const std::string& name,
                               const json& args, int n) {
  caps::Capability* c = registry.find(name);
  if (c == nullptr) throw BenchError(name + " is not a capability");
  caps::InvokeContext ctx;
  std::vector<double> us;
  us.reserve(static_cast<size_t>(n));
  for (int i = -20; i < n; ++i) {
    ctx.deadline = SteadyClock::now() + std::chrono::seconds(10);
    const auto start = SteadyClock::now();
    auto r = c->invoke(ctx, args);
    const auto took = SteadyClock::now() - start;
    if (!r.ok()) throw BenchError(name + " failed: " + r.error().message);
    if (i >= 0) us.push_back(micros(took));
  }
  std::sort(us.begin(), us.end());
  return us;
}

pid_t stdio_child(const mcp::McpServers& servers) {
  for (const auto& s : servers.status()) {
    if (s.server == "local") return s.pid;
  }
  return 0;
}

void run(const Options& options, Report& report) {
  const int n = options.calls > 0 ? options.calls : (options.quick ? 200 : 2000);
  TempDir dir("parley-bench-mcp-");
  caps::Registry registry;
  if (auto st = caps::register_builtins(registry); !st.ok()) throw BenchError(st.error().message);

  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  // As the bot runs: one io thread per core, at least two.
  std::vector<std::thread> threads;
  const unsigned nthreads = std::max(2u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < nthreads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  http::CurlMulti multi(ioc.get_executor());
  std::optional<mcp::McpServers> servers;
  servers.emplace(ioc.get_executor(), multi, registry);

  // Warm the process (the curl multi, the allocator) before the baseline.
  (void)time_calls(registry, "calc", {{"expression", "1+1"}}, 100);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const ProcStatus base = proc_status(kThisProcess);

  caps::CapabilitiesConfig config;
  config.mcp_servers["local"] = stdio_spec();
  servers->apply(config);
  wait_for(registry, "local.echo");
  (void)time_calls(registry, "local.echo", {{"message", "warm"}}, 50);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const ProcStatus with_stdio = proc_status(kThisProcess);
  const ProcStatus stdio_server = proc_status(stdio_child(*servers));

  HttpServer http(dir.path());
  config.mcp_servers["remote"] = http_spec(http.url());
  servers->apply(config);
  wait_for(registry, "remote.echo");
  (void)time_calls(registry, "remote.echo", {{"message", "warm"}}, 50);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const ProcStatus with_both = proc_status(kThisProcess);
  const ProcStatus http_server = proc_status(http.pid());

  // The three in turns of 100, so that a slow moment of the machine falls on each alike.
  std::vector<double> builtin;
  std::vector<double> stdio;
  std::vector<double> remote;
  for (int done = 0; done < n; done += 100) {
    const int k = std::min(100, n - done);
    for (auto [out, name, args] :
         {std::tuple{&builtin, "calc", json{{"expression", "1+1"}}},
          std::tuple{&stdio, "local.echo", json{{"message", "hello"}}},
          std::tuple{&remote, "remote.echo", json{{"message", "hello"}}}}) {
      auto v = time_calls(registry, name, args, k);
      out->insert(out->end(), v.begin(), v.end());
    }
  }
  for (auto* v : {&builtin, &stdio, &remote}) std::sort(v->begin(), v->end());
  const double b50 = percentile_sorted(builtin, 0.5);
  const double s50 = percentile_sorted(stdio, 0.5);
  const double h50 = percentile_sorted(remote, 0.5);
  report.add("calls_each", n, "calls", 0);
  report.add("builtin_call_p50_us", b50, "us", 1);
  report.add("builtin_call_p99_us", percentile_sorted(builtin, 0.99), "us", 1);
  report.add("mcp_stdio_call_p50_us", s50, "us", 1);
  report.add("mcp_stdio_call_p99_us", percentile_sorted(stdio, 0.99), "us", 1);
  report.add("mcp_http_call_p50_us", h50, "us", 1);
  report.add("mcp_http_call_p99_us", percentile_sorted(remote, 0.99), "us", 1);
  report.add("mcp_stdio_over_builtin_p50_us", s50 - b50, "us", 1);
  report.add("mcp_http_over_stdio_p50_ratio", h50 / s50, "x", 2);
  report.add("parley_rss_per_stdio_server_kib",
             static_cast<double>(with_stdio.rss_kib - base.rss_kib), "KiB", 0);
  report.add("parley_threads_per_stdio_server",
             static_cast<double>(with_stdio.threads - base.threads), "threads", 0);
  report.add("parley_rss_per_http_server_kib",
             static_cast<double>(with_both.rss_kib - with_stdio.rss_kib), "KiB", 0);
  report.add("parley_threads_per_http_server",
             static_cast<double>(with_both.threads - with_stdio.threads), "threads", 0);
  report.add("stdio_server_process_rss_mib", mib_from_kib(stdio_server.rss_kib), "MiB", 1);
  report.add("http_server_process_rss_mib", mib_from_kib(http_server.rss_kib), "MiB", 1);
  report.add("parley_threads_total", static_cast<double>(with_both.threads), "threads", 0);

  servers->stop(std::chrono::seconds(10));
  servers.reset();
  multi.shutdown();
  work.reset();
  for (auto& t : threads) t.join();
}

}  // namespace
}  // namespace parley::bench

int main(int argc, char** argv) {
  using namespace parley::bench;
  Options options;
  CLI::App app{"What an MCP tool call and a running MCP server cost parley."};
  app.add_flag("--quick", options.quick, "Small sizes for a smoke run");
  app.add_flag("--json", options.json, "Print the figures as one JSON object");
  app.add_option("--calls", options.calls, "Timed calls of each kind")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("bench"));
  spdlog::set_level(spdlog::level::err);
  (void)std::signal(SIGPIPE, SIG_IGN);
  try {
    // Without Node or the pinned servers there is nothing to measure: said, and exit 77 (the
    // smoke test counts it as skipped, as the MCP tests skip themselves).
    if (!std::filesystem::exists(kModules / ".bin/mcp-server-everything") ||
        std::system("command -v node >/dev/null 2>&1") != 0) {  // NOLINT(concurrency-mt-unsafe)
      note("bench_mcp: skipped: Node or the MCP servers are not installed (scripts/deps --test)");
      return 77;
    }
    note("bench_mcp: {} run, {} hardware threads", options.quick ? "quick" : "full",
         std::thread::hardware_concurrency());
    Report report(options.json);
    run(options, report);
    report.finish();
  } catch (const std::exception& e) {
    note("bench_mcp: {}", e.what());
    return 1;
  }
  return 0;
}
