// bench_llm: what parley's LLM client (LlmClient over CurlMulti) costs per call, and what it
// takes to hold many slow calls at once.
//
// Groups (all by default; pick some with --only):
//   overhead    sequential calls of one small chat request to an in-process FakeLlmServer that
//               answers at once: LlmClient non-streamed and streamed (a coroutine on the
//               io_context awaiting each call), against the same request (same URL, headers
//               and body bytes) sent with blocking curl_easy_perform on one reused easy handle.
//               Both keep their connection alive, so the difference is the client's own work:
//               the coroutine, the Asio-driven multi handle, posting, parsing the completion.
//   concurrent  N calls issued at once through one LlmClient on one io thread, each answered
//               after --delay-ms by a fake_llm_server child process (its own process, so the
//               server's threads and descriptors are not counted here); wall time, memory,
//               threads and descriptors of this process while they wait. The fake speaks
//               HTTP/1.1 without TLS, so every waiting call holds a connection of its own (a
//               provider speaking HTTP/2 multiplexes them over a few). By default the burst
//               starts cold, with no connection to the server yet; --warm makes one call first.
//
// Figures go to stdout, one per line as `name value unit` (or one JSON object with --json);
// context goes to stderr. --quick shrinks every size for a CI smoke run (a few seconds).
#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <latch>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_report.h"
#include "bench_util.h"
#include "fakes/fake_llm.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/clients/llm/client.h"
#include "parley/bot/clients/llm/provider.h"
#include "parley/bot/clients/llm/types.h"
#include "parley/bot/net.h"

#ifndef PARLEY_FAKE_LLM_SERVER
#define PARLEY_FAKE_LLM_SERVER ""
#endif

extern char** environ;  // NOLINT: posix_spawn passes this process's environment on

namespace {

namespace asio = parley::net::asio;
namespace fs = std::filesystem;
using namespace parley::bench;  // the benches' own kit: bench_report.h, bench_util.h
namespace http = parley::bot::http;
namespace llm = parley::bot::llm;
using std::chrono::milliseconds;

// ---- Parameters ----

constexpr std::string_view kModel = "bench/model";
constexpr std::string_view kKeyVariable = "PARLEY_BENCH_LLM_KEY";
constexpr std::string_view kKey = "sk-bench-0123456789abcdef";
constexpr auto kSamplePeriod = milliseconds(50);
constexpr auto kPortWait = std::chrono::seconds(10);       // for the child's "port N" line
constexpr auto kChildStopWait = std::chrono::seconds(10);  // then SIGKILL
constexpr rlim_t kSpareDescriptors = 64;                   // beyond one per concurrent call

// Every size that --quick shrinks.
struct Sizes {
  size_t warmup;      // per approach, untimed
  size_t calls;       // per approach, timed
  size_t concurrent;  // calls in flight at once
  int delay_ms;       // before the fake answers each of them
};

constexpr Sizes kFullSizes{.warmup = 100, .calls = 2'000, .concurrent = 10'000, .delay_ms = 2'000};
constexpr Sizes kQuickSizes{.warmup = 20, .calls = 200, .concurrent = 500, .delay_ms = 300};

// ---- The process: descriptors, threads, memory ----

// The names of this process's threads, e.g. "bench_llm ×1, llm-io ×1".
std::string thread_names() {
  std::map<std::string, int> names;
  std::error_code ec;
  for (fs::directory_iterator it("/proc/self/task", ec), end; !ec && it != end; it.increment(ec)) {
    std::ifstream comm(it->path() / "comm");
    std::string name;
    std::getline(comm, name);
    ++names[name.empty() ? "?" : name];
  }
  std::string out;
  for (const auto& [name, n] : names) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} x{}", name, n);
  }
  return out;
}

// ru_maxrss: the peak resident set of the whole run so far, in KiB on Linux.
long peak_rss_kib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// The kernel's counters of connections refused for a full accept queue (whole network
// namespace): the first suspect when thousands of loopback connects arrive at once.
std::map<std::string, long> listen_counters() {
  std::ifstream in("/proc/net/netstat");
  std::string names;
  std::string values;
  std::map<std::string, long> out;
  while (std::getline(in, names) && std::getline(in, values)) {
    if (!names.starts_with("TcpExt:")) continue;
    std::istringstream n(names);
    std::istringstream v(values);
    std::string name;
    std::string value;
    while (n >> name && v >> value) {
      if (name == "ListenOverflows" || name == "ListenDrops" || name == "TCPReqQFullDrop" ||
          name == "TCPReqQFullDoCookies") {
        out[name] = std::strtol(value.c_str(), nullptr, 10);
      }
    }
  }
  return out;
}

// ---- The fake server as a child process ----

// fake_llm_server --delay-ms D --threads 1, its stdin and stdout pipes to this process. stop()
// (and the destructor, on every path) closes its stdin — on which it exits — sends SIGTERM
// and reaps it, with SIGKILL after kChildStopWait. Should this process die first, the child
// sees stdin reach EOF and exits on its own.
class FakeServerProcess {
 public:
  FakeServerProcess(const std::string& path, int delay_ms) {
    if (path.empty() || ::access(path.c_str(), X_OK) != 0) {
      throw BenchError(
          fmt::format("fake_llm_server not found or not executable at '{}' "
                      "(give it with --fake-server)",
                      path));
    }
    std::array<int, 2> in = {-1, -1};
    std::array<int, 2> out = {-1, -1};
    if (::pipe2(in.data(), O_CLOEXEC) != 0) throw BenchError("pipe2 failed");
    if (::pipe2(out.data(), O_CLOEXEC) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      throw BenchError("pipe2 failed");
    }
    stdin_fd_ = in[1];
    stdout_fd_ = out[0];

    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    // dup2 leaves the new descriptors without O_CLOEXEC: only these two reach the child.
    ::posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    const std::string delay = std::to_string(delay_ms);
    std::vector<std::string> args = {path, "--delay-ms", delay, "--threads", "1"};
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    if (rc != 0) {
      pid_ = -1;
      close_pipes();
      throw BenchError(
          fmt::format("posix_spawn {}: {}", path, std::generic_category().message(rc)));
    }
    try {
      port_ = read_port();
    } catch (...) {
      stop();
      throw;
    }
  }
  ~FakeServerProcess() { stop(); }
  FakeServerProcess(const FakeServerProcess&) = delete;
  FakeServerProcess& operator=(const FakeServerProcess&) = delete;

  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

  // Idempotent; never throws.
  void stop() noexcept {
    close_pipes();  // stdin EOF: the server stops
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    const auto give_up = SteadyClock::now() + kChildStopWait;
    pid_t r = 0;
    while ((r = ::waitpid(pid_, &status, WNOHANG)) == 0 && SteadyClock::now() < give_up) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    if (r == 0) {
      note("fake_llm_server (pid {}) still running {} s after SIGTERM: SIGKILL", pid_,
           kChildStopWait.count());
      ::kill(pid_, SIGKILL);
      r = ::waitpid(pid_, &status, 0);
    }
    if (r == pid_ && WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM) {
      note("fake_llm_server (pid {}) ended by signal {}", pid_, WTERMSIG(status));
    } else if (r == pid_ && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      note("fake_llm_server (pid {}) exited with status {}", pid_, WEXITSTATUS(status));
    }
    pid_ = -1;
  }

 private:
  void close_pipes() noexcept {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
    stdin_fd_ = -1;
    stdout_fd_ = -1;
  }

  // The child's first stdout line, "port N".
  uint16_t read_port() {
    std::string line;
    const auto give_up = SteadyClock::now() + kPortWait;
    while (line.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<milliseconds>(give_up - SteadyClock::now());
      if (left.count() <= 0) throw BenchError("fake_llm_server did not print its port in time");
      pollfd p{stdout_fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) continue;
      std::array<char, 128> buf{};
      const ssize_t n = ::read(stdout_fd_, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw BenchError("fake_llm_server exited before printing its port");
      line.append(buf.data(), static_cast<size_t>(n));
    }
    line.resize(line.find('\n'));
    unsigned port = 0;
    if (!line.starts_with("port ") ||
        (port = static_cast<unsigned>(std::strtoul(line.c_str() + 5, nullptr, 10))) == 0 ||
        port > 65535) {
      throw BenchError(fmt::format("fake_llm_server's first line is not 'port N': '{}'", line));
    }
    return static_cast<uint16_t>(port);
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;   // our end of its stdin
  int stdout_fd_ = -1;  // our end of its stdout
  uint16_t port_ = 0;
};

// ---- The client ----

// An io_context run by one thread (named llm-io) and the CurlMulti on it. stop() shuts the
// multi down, stops the thread and destroys the multi (in that order: a CurlMulti may only be
// destroyed once no thread runs its io_context).
class ClientRig {
 public:
  ClientRig()
      : work_(asio::make_work_guard(ioc_)),
        multi_(std::in_place, ioc_.get_executor()),
        thread_([this] { ioc_.run(); }) {
    ::pthread_setname_np(thread_.native_handle(), "llm-io");
  }
  ~ClientRig() { stop(); }
  ClientRig(const ClientRig&) = delete;
  ClientRig& operator=(const ClientRig&) = delete;

  asio::io_context& ioc() { return ioc_; }
  http::CurlMulti& multi() { return *multi_; }

  void stop() {
    if (!multi_) return;
    multi_->shutdown();
    work_.reset();
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
    multi_.reset();
  }

 private:
  asio::io_context ioc_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::optional<http::CurlMulti> multi_;
  std::thread thread_;
};

llm::Timeouts generous_timeouts(milliseconds delay) {
  llm::Timeouts t;
  t.connect = milliseconds(60'000);
  t.first_byte = delay + milliseconds(60'000);
  t.idle = milliseconds(60'000);
  t.call = delay + milliseconds(120'000);
  t.turn = delay + milliseconds(180'000);
  return t;
}

// The fake as the default provider, one model for the default role, the key from a lookup
// that reads no real environment (so no PARLEY_LLM_* variable can redirect the bench).
llm::ResolvedLlm bench_settings(const std::string& base_url, const llm::Timeouts& timeouts) {
  llm::LlmSettings s;
  s.provider = "fake";
  s.providers["fake"] = llm::ProviderConfig{"fake", base_url, std::string(kKeyVariable), {}};
  s.roles[s.default_role] = {llm::ModelRef{"", std::string(kModel)}};
  s.timeouts = timeouts;
  auto resolved = llm::resolve_llm(s, [](const std::string& name) -> std::optional<std::string> {
    if (name == kKeyVariable) return std::string(kKey);
    return std::nullopt;
  });
  if (!resolved.configured()) throw BenchError("LLM settings: " + resolved.not_configured);
  return resolved;
}

llm::ChatRequest small_request(bool stream) {
  llm::ChatRequest r;
  r.messages = {llm::Message::system("You are a terse assistant. Answer in one word."),
                llm::Message::user("Say ok.")};
  r.max_tokens = 16;
  r.stream = stream;
  return r;
}

// ---- Group: overhead ----

// The approaches take turns in blocks of this many calls, so that a noisy neighbour on a small
// machine slows each of them alike instead of whichever ran at the time.
constexpr size_t kBlock = 100;

// Latencies (µs) of `count` sequential calls, timed inside a coroutine on the client's io
// thread: what a caller on that executor waits.
std::vector<double> time_client_calls(ClientRig& rig, llm::LlmClient& client, bool stream,
                                      size_t count) {
  auto loop = [&]() -> asio::awaitable<std::vector<double>> {
    std::vector<double> us;
    us.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      // Named, not temporaries: GCC 12 miscompiles temporaries passed to a coroutine inside a
      // co_await expression (they are destroyed twice; see tests/fakes/fake_llm.cpp).
      llm::ChatRequest request = small_request(stream);
      llm::CallOptions options;
      const auto t0 = SteadyClock::now();
      const llm::LlmResponse r = co_await client.call(std::move(request), std::move(options));
      const auto t1 = SteadyClock::now();
      if (!r.ok()) {
        throw BenchError(fmt::format("LlmClient ({}) failed: {}",
                                     stream ? "streamed" : "non-streamed", r.error->describe()));
      }
      if (r.result->content != "ok" || r.attempts.size() != 1) {
        throw BenchError(fmt::format("LlmClient: unexpected reply '{}' after {} attempts",
                                     r.result->content, r.attempts.size()));
      }
      us.push_back(micros(t1 - t0));
    }
    co_return us;
  };
  std::promise<std::vector<double>> done;
  auto result = done.get_future();
  asio::co_spawn(rig.ioc(), loop(), [&done](const std::exception_ptr& e, std::vector<double> us) {
    if (e) {
      done.set_exception(e);
    } else {
      done.set_value(std::move(us));
    }
  });
  return result.get();
}

struct EasyDeleter {
  void operator()(CURL* e) const noexcept { curl_easy_cleanup(e); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const noexcept { curl_slist_free_all(s); }
};

size_t append_body(char* data, size_t size, size_t n, void* userp) noexcept {
  try {
    static_cast<std::string*>(userp)->append(data, size * n);
  } catch (...) {
    return 0;
  }
  return size * n;
}

// The same request as LlmClient's non-streamed attempt — URL, headers, body bytes and the
// options CurlMulti sets that change what goes on the wire (Accept-Encoding, no Expect) — with
// blocking curl_easy_perform on one reused handle (keep-alive, like the multi's connection
// cache). It only receives the body: parsing it is part of what the client's figure pays for.
class EasyBaseline {
 public:
  explicit EasyBaseline(const std::string& base_url)
      : url_(base_url + "/chat/completions"),
        body_(llm::request_body(small_request(false), std::string(kModel))),
        easy_(curl_easy_init()) {
    const std::vector<std::string> lines = {
        "Content-Type: application/json", "Accept: application/json",
        fmt::format("Authorization: Bearer {}", kKey), "Expect:"};  // as CurlMulti: no 100-continue
    for (const auto& h : lines) {
      curl_slist* next = curl_slist_append(headers_.get(), h.c_str());
      if (next == nullptr) throw BenchError("curl_slist_append failed");
      (void)headers_.release();  // `next` is the same list, grown
      headers_.reset(next);
    }
    if (!easy_) throw BenchError("curl_easy_init failed");
    CURL* e = easy_.get();
    curl_easy_setopt(e, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_.get());
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body_.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_.size()));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &append_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &received_);
  }

  // Latencies (µs) of `count` sequential requests.
  std::vector<double> run(size_t count) {
    std::vector<double> us;
    us.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      received_.clear();
      const auto t0 = SteadyClock::now();
      const CURLcode rc = curl_easy_perform(easy_.get());
      const auto t1 = SteadyClock::now();
      long status = 0;
      curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &status);
      if (rc != CURLE_OK || status != 200 || received_.empty()) {
        throw BenchError(
            fmt::format("curl_easy_perform: {} (HTTP {})", curl_easy_strerror(rc), status));
      }
      us.push_back(micros(t1 - t0));
    }
    return us;
  }

 private:
  std::string url_;
  std::string body_;
  std::string received_;
  std::unique_ptr<curl_slist, SlistDeleter> headers_;
  std::unique_ptr<CURL, EasyDeleter> easy_;  // after what it points to: cleaned up first
};

// The bench compares like with like only if both sent the same request: the same target,
// body bytes and headers, as the fake recorded them.
void check_same_request(const parley::fakes::RecordedRequest& client,
                        const parley::fakes::RecordedRequest& easy) {
  std::string differences;
  if (client.target != easy.target) differences += " target";
  if (client.body != easy.body) differences += " body";
  std::set<std::string> names;
  for (const auto& [name, _] : client.headers) names.insert(name);
  for (const auto& [name, _] : easy.headers) names.insert(name);
  for (const auto& name : names) {
    const auto a = client.headers.find(name);
    const auto b = easy.headers.find(name);
    if (a == client.headers.end() || b == easy.headers.end() || a->second != b->second) {
      differences += " header:" + name;
    }
  }
  if (!differences.empty()) {
    throw BenchError("LlmClient and curl_easy sent different requests:" + differences);
  }
  std::string shown;
  for (const auto& [name, _] : client.headers) shown += (shown.empty() ? "" : ", ") + name;
  note("overhead: both send the same request: POST {}, {} body bytes, headers: {}", client.target,
       client.body.size(), shown);
}

void append(std::vector<double>& to, const std::vector<double>& more) {
  to.insert(to.end(), more.begin(), more.end());
}

void bench_overhead(const Sizes& sizes, Report& report) {
  parley::fakes::FakeLlmServer fake;  // answers "ok" at once, non-streamed or streamed
  ClientRig rig;
  llm::LlmClient client(rig.multi(), bench_settings(fake.base_url(), llm::Timeouts{}));
  EasyBaseline baseline(fake.base_url());

  // Warm-up: connections, caches, allocator; and the first request of each for the check.
  (void)time_client_calls(rig, client, false, sizes.warmup);
  const size_t first_easy_request = fake.request_count();
  (void)baseline.run(sizes.warmup);
  (void)time_client_calls(rig, client, true, sizes.warmup);
  {
    const auto requests = fake.requests();
    check_same_request(requests.front(), requests.at(first_easy_request));
  }

  std::vector<double> call;
  std::vector<double> easy;
  std::vector<double> stream;
  for (size_t done = 0; done < sizes.calls; done += kBlock) {
    const size_t count = std::min(kBlock, sizes.calls - done);
    append(call, time_client_calls(rig, client, false, count));
    append(easy, baseline.run(count));
    append(stream, time_client_calls(rig, client, true, count));
  }
  const size_t connections = fake.connections_accepted();
  rig.stop();
  std::sort(call.begin(), call.end());
  std::sort(easy.begin(), easy.end());
  std::sort(stream.begin(), stream.end());

  note(
      "overhead: {} sequential calls per approach after {} warm-up, taking turns in blocks of "
      "{}, to an in-process fake answering at once; {} connections for {} requests (keep-alive)",
      sizes.calls, sizes.warmup, kBlock, connections, 3 * (sizes.warmup + sizes.calls));
  note("overhead: max LlmClient {:.0f} us, streamed {:.0f} us, curl_easy {:.0f} us", call.back(),
       stream.back(), easy.back());
  const double call_p50 = percentile_sorted(call, 0.50);
  const double easy_p50 = percentile_sorted(easy, 0.50);
  report.add("llm_client_call_p50_us", call_p50, "us", 1);
  report.add("llm_client_call_p99_us", percentile_sorted(call, 0.99), "us", 1);
  report.add("llm_client_stream_p50_us", percentile_sorted(stream, 0.50), "us", 1);
  report.add("llm_client_stream_p99_us", percentile_sorted(stream, 0.99), "us", 1);
  report.add("curl_easy_p50_us", easy_p50, "us", 1);
  report.add("curl_easy_p99_us", percentile_sorted(easy, 0.99), "us", 1);
  report.add("client_overhead_p50_us", call_p50 - easy_p50, "us", 1);
  report.add("client_vs_curl_p50_ratio", call_p50 / easy_p50, "x", 2);
}

// ---- Group: concurrent ----

struct Outcome {
  bool ok = false;
  size_t attempts = 0;
  double latency_ms = 0;
  SteadyClock::time_point done;
  std::string error;                         // failures only
  std::vector<std::string> failed_attempts;  // the error of every failed attempt
};

// Returns whether every call succeeded.
bool bench_concurrent(const Sizes& sizes, const std::string& server_path, bool stream, bool warm,
                      Report& report) {
  const size_t n = sizes.concurrent;
  const milliseconds delay(sizes.delay_ms);
  const rlim_t nofile = raise_nofile_limit();
  if (nofile < n + kSpareDescriptors) {
    note("concurrent: RLIMIT_NOFILE is {} for {} connections: expect failed calls", nofile, n);
  }

  // Before the rig: the completions write here until the rig's thread is stopped, also when
  // an exception leaves this function early.
  std::vector<Outcome> outcomes(n);
  std::latch all_done(static_cast<std::ptrdiff_t>(n));
  FakeServerProcess server(server_path, sizes.delay_ms);
  ClientRig rig;
  llm::LlmClient client(rig.multi(),
                        bench_settings(fmt::format("http://127.0.0.1:{}/v1", server.port()),
                                       generous_timeouts(delay)));
  if (warm) {
    // One call first, so that the burst finds a connection in curl's cache and curl already
    // knows the server speaks HTTP/1.1 (see --warm).
    std::promise<llm::LlmResponse> warmed;
    auto f = warmed.get_future();
    client.call(small_request(stream), llm::CallOptions{}, rig.ioc().get_executor(),
                [&warmed](llm::LlmResponse r) { warmed.set_value(std::move(r)); });
    const llm::LlmResponse r = f.get();
    if (!r.ok()) throw BenchError("concurrent: the warm-up call failed: " + r.error->describe());
  }
  const auto listen_before = listen_counters();
  const long rss_before = proc_status(kThisProcess).rss_kib;
  const size_t fds_before = open_fds(kThisProcess);
  const long threads_before = proc_status(kThisProcess).threads;
  note(
      "concurrent: {} {} calls{}, each answered after {} ms by fake_llm_server (pid {}, port {}, "
      "1 thread); RLIMIT_NOFILE {}; before: {} threads ({}), {} descriptors",
      n, stream ? "streamed" : "non-streamed", warm ? " after one warm-up call" : "",
      sizes.delay_ms, server.pid(), server.port(), nofile, threads_before, thread_names(),
      fds_before);

  // Besides the process's figures: the multi's transfers and sockets, and the names of the
  // threads when there were the most of them. Written by the sampler's thread; read after
  // stop().
  struct {
    size_t active = 0;
    size_t sockets = 0;
    long threads = 0;
    std::string names;
  } peaks;
  ProcessSampler sampler(kThisProcess, kSamplePeriod,
                         [&peaks, &rig](const ProcessSampler::Sample& s) {
                           if (s.threads > peaks.threads) {
                             peaks.threads = s.threads;
                             peaks.names = thread_names();
                           }
                           const http::MultiStats m = rig.multi().stats();
                           peaks.active = std::max(peaks.active, m.active);
                           peaks.sockets = std::max(peaks.sockets, m.sockets);
                         });
  const auto start = SteadyClock::now();
  for (size_t i = 0; i < n; ++i) {
    client.call(small_request(stream), llm::CallOptions{}, rig.ioc().get_executor(),
                [&outcomes, &all_done, i](llm::LlmResponse r) {
                  Outcome& o = outcomes[i];
                  o.done = SteadyClock::now();
                  o.ok = r.ok() && r.result->content == "ok";
                  o.attempts = r.attempts.size();
                  o.latency_ms = static_cast<double>(r.latency.count()) / 1000.0;
                  if (!r.ok()) {
                    o.error = r.error->describe();
                  } else if (!o.ok) {
                    o.error = fmt::format("unexpected reply '{}'", r.result->content);
                  }
                  for (const auto& a : r.attempts) {
                    if (a.failure != llm::FailureKind::none) o.failed_attempts.push_back(a.error);
                  }
                  all_done.count_down();
                });
  }
  const double issue_ms = millis(SteadyClock::now() - start);
  all_done.wait();
  sampler.stop();
  const long threads_peak = sampler.threads_peak() - 1;  // besides the sampler's own
  const long rss_peak = peak_rss_kib();
  const auto listen_after = listen_counters();

  SteadyClock::time_point last = start;
  size_t ok = 0;
  size_t attempts = 0;
  std::vector<double> latencies;
  latencies.reserve(n);
  std::map<std::string, size_t> failures;  // first error → count
  std::map<std::string, size_t> attempt_failures;
  std::string first_failure;
  for (const Outcome& o : outcomes) {
    last = std::max(last, o.done);
    attempts += o.attempts;
    latencies.push_back(o.latency_ms);
    if (o.ok) {
      ++ok;
    } else if (first_failure.empty()) {
      first_failure = o.error;
    }
    for (const auto& e : o.failed_attempts) {
      // The kind of failure without the endpoint, which differs only by port.
      ++attempt_failures[e.substr(e.find("): ") == std::string::npos ? 0 : e.find("): ") + 3)];
    }
  }
  std::sort(latencies.begin(), latencies.end());
  const double wall_ms = millis(last - start);
  {
    // When the calls completed, in tenths of the wall time: shows whether they finished
    // together (one wave after the delay) or in several waves.
    constexpr size_t kBuckets = 10;
    std::vector<size_t> buckets(kBuckets, 0);
    for (const Outcome& o : outcomes) {
      const double at = millis(o.done - start);
      const auto b = static_cast<size_t>(at / std::max(wall_ms, 1.0) * kBuckets);
      ++buckets[std::min(b, kBuckets - 1)];
    }
    std::string timeline;
    for (size_t b = 0; b < kBuckets; ++b) {
      timeline +=
          fmt::format(" {:.0f}:{}", wall_ms * static_cast<double>(b + 1) / kBuckets, buckets[b]);
    }
    note("concurrent: completions by time (up to ms: count):{}", timeline);
  }

  note(
      "concurrent: issuing the {} calls took {:.0f} ms; call latency min {:.0f} ms, p50 {:.0f} ms, "
      "p99 {:.0f} ms, max {:.0f} ms",
      n, issue_ms, latencies.front(), percentile_sorted(latencies, 0.5),
      percentile_sorted(latencies, 0.99), latencies.back());
  note(
      "concurrent: peaks over {} samples: {} transfers and {} sockets in the multi; {} threads "
      "besides the sampler (with it: {}: {}); VmRSS {:.1f} MiB",
      sampler.samples(), peaks.active, peaks.sockets, threads_peak, threads_peak + 1, peaks.names,
      mib_from_kib(sampler.rss_peak_kib()));
  {
    std::string deltas;
    for (const auto& [name, after] : listen_after) {
      const auto before = listen_before.find(name);
      deltas += fmt::format(" {} +{}", name,
                            after - (before == listen_before.end() ? 0 : before->second));
    }
    note("concurrent: kernel TcpExt counters during the phase:{}", deltas);
  }
  if (!attempt_failures.empty()) {
    note("concurrent: {} failed attempts ({} retries):", attempts - ok, attempts - n);
    for (const auto& [what, count] : attempt_failures) note("  {} x {}", count, what);
  }
  if (ok != n) {
    note("concurrent: {} of {} calls FAILED; first: {}", n - ok, n, first_failure);
  }

  report.add("concurrent_calls", static_cast<double>(n), "calls", 0);
  report.add("concurrent_ok", static_cast<double>(ok), "calls", 0);
  report.add("concurrent_retries", static_cast<double>(attempts - n), "attempts", 0);
  report.add("concurrent_wall_ms", wall_ms, "ms", 0);
  report.add("concurrent_over_delay_ms", wall_ms - static_cast<double>(sizes.delay_ms), "ms", 0);
  report.add("rss_before_concurrent_mib", mib_from_kib(rss_before), "MiB", 1);
  report.add("peak_rss_mib", mib_from_kib(rss_peak), "MiB", 1);
  report.add("rss_per_call_kib",
             static_cast<double>(rss_peak - rss_before) / static_cast<double>(n), "KiB", 1);
  report.add("threads_peak", static_cast<double>(threads_peak), "threads", 0);
  report.add("open_fds_peak", static_cast<double>(sampler.fds_peak()), "fds", 0);

  rig.stop();
  server.stop();
  return ok == n;
}

// ---- Main ----

struct Options {
  bool quick = false;
  bool json = false;
  bool plain = false;
  bool warm = false;
  std::string fake_server = PARLEY_FAKE_LLM_SERVER;
  std::optional<size_t> calls;
  std::optional<size_t> concurrent;
  std::optional<int> delay_ms;
  std::vector<std::string> only;

  [[nodiscard]] bool wants(std::string_view group) const {
    return only.empty() || std::find(only.begin(), only.end(), group) != only.end();
  }
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Per-call overhead of parley's LLM client, and many slow calls at once."};
  app.add_flag("--quick", options.quick, "Small sizes for a smoke run (a few seconds)");
  app.add_flag("--json", options.json, "Print the figures as one JSON object");
  app.add_option("--fake-server", options.fake_server, "Path of the fake_llm_server executable")
      ->capture_default_str();
  app.add_option("--calls", options.calls, "Timed sequential calls per approach (overhead)")
      ->check(CLI::PositiveNumber);
  app.add_option("--concurrent", options.concurrent, "Calls in flight at once")
      ->check(CLI::PositiveNumber);
  app.add_option("--delay-ms", options.delay_ms, "The fake's delay before each answer (concurrent)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--concurrent-plain", options.plain,
               "Non-streamed calls in the concurrent group (default: streamed, the bot's path)");
  app.add_flag("--warm", options.warm,
               "Make one call before the concurrent burst, so that it starts with a connection "
               "in curl's cache (default: a cold start, where CURLOPT_PIPEWAIT holds the burst "
               "until the first response says whether the server multiplexes)");
  app.add_option("--only", options.only, "Groups to run: overhead, concurrent")
      ->delimiter(',')
      ->check(CLI::IsMember(std::vector<std::string>{"overhead", "concurrent"}));
  CLI11_PARSE(app, argc, argv);

  // The client logs every failed attempt; the bench summarises them instead.
  spdlog::set_default_logger(spdlog::stderr_color_mt("bench"));
  spdlog::set_level(spdlog::level::err);
  // A write to the fake's closed stdin must be an error, not the end of the bench.
  (void)std::signal(SIGPIPE, SIG_IGN);

  bool all_ok = true;
  try {
    Sizes sizes = options.quick ? kQuickSizes : kFullSizes;
    if (options.calls) sizes.calls = *options.calls;
    if (options.concurrent) sizes.concurrent = *options.concurrent;
    if (options.delay_ms) sizes.delay_ms = *options.delay_ms;
    note("bench_llm: {} run, {} hardware threads, libcurl {}", options.quick ? "quick" : "full",
         std::thread::hardware_concurrency(), curl_version_info(CURLVERSION_NOW)->version);
    Report report(options.json);
    const auto start = SteadyClock::now();
    if (options.wants("overhead")) bench_overhead(sizes, report);
    if (options.wants("concurrent")) {
      all_ok = bench_concurrent(sizes, options.fake_server, !options.plain, options.warm, report);
    }
    report.finish();
    note("bench_llm: done in {:.1f} s", seconds_since(start));
  } catch (const std::exception& e) {
    std::cerr << "bench_llm: " << e.what() << '\n';
    return 1;
  }
  return all_ok ? 0 : 1;
}
