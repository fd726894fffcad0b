// McpClient: parley's side of one Model Context Protocol server connection (protocol revision
// 2025-06-18; 2025-03-26 and 2024-11-05 accepted when the server answers with them). It starts
// the server (a child process over stdio, or a Streamable HTTP endpoint through the process's
// CurlMulti), runs the lifecycle (initialize → notifications/initialized → tools/list, every
// page), keeps the server's tool list current (notifications/tools/list_changed), and calls
// tools with a deadline: when it passes, the server is sent notifications/cancelled and the
// caller gets deadline_exceeded at once.
//
// A server that crashes (stdio: EOF or exit; HTTP: session gone), or stops answering the pings
// sent to a ready server every ping_interval, fails the calls in flight with
// `unavailable`, withdraws its tools (on_tools_changed with an empty list, state down) and is
// restarted with a doubling back-off; too many crashes in a window trip a breaker (state
// broken) until reset().
//
// Ownership: the client owns its child process (killed and reaped at the latest when the
// client is destroyed) and borrows the CurlMulti, which must outlive it.
//
// Thread safety: all state lives on one strand of the executor given at construction; no
// thread per server. start(), stop(), reset(), call(), ping() and state() may be used from
// any thread. tools() reads the strand's state: call it from on_tools_changed / on_state
// (which run on the strand) or when no thread runs the io_context. Callbacks run on the
// strand and must not block.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "parley/base/result.h"
#include "parley/bot/net.h"

namespace parley::bot::http {
class CurlMulti;
}

namespace parley::bot::mcp {

// The protocol revisions this client speaks, newest first; the first is the one offered.
inline constexpr std::array<std::string_view, 3> kProtocolVersions{"2025-06-18", "2025-03-26",
                                                                   "2024-11-05"};

struct McpServerConfig {
  enum class Transport { stdio, http };

  std::string name;  // names the server in every log line and error
  Transport transport = Transport::stdio;

  // stdio: the program (looked up in PATH when it has no '/'), its arguments, and variables
  // passed to the child on top of PATH, HOME and LANG (values already resolved; may hold
  // secrets: never logged). The child runs in `cwd` when set, in its own process group.
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::string cwd;
  // How long a stopping child has after SIGTERM before SIGKILL.
  std::chrono::milliseconds stop_grace{2'000};

  // http: the MCP endpoint (e.g. http://127.0.0.1:3001/mcp) and an optional bearer token
  // (secret: never logged, never in an error).
  std::string url;
  std::string bearer_token;

  std::chrono::milliseconds init_timeout{10'000};  // initialize and each tools/list page
  std::chrono::milliseconds call_timeout{60'000};  // for callers without their own deadline
  // Liveness: a ready server is sent a ping every ping_interval (0: never); one not answered
  // within ping_timeout is taken for hung, closed (a child is stopped) and restarted as after a
  // crash.
  std::chrono::milliseconds ping_interval{60'000};
  std::chrono::milliseconds ping_timeout{10'000};

  // Restarts after a crash wait restart_initial, doubling to restart_max. `breaker_crashes`
  // crashes within `breaker_window` leave the server broken until reset().
  std::chrono::milliseconds restart_initial{1'000};
  std::chrono::milliseconds restart_max{60'000};
  int breaker_crashes = 5;
  std::chrono::milliseconds breaker_window{5 * 60'000};

  size_t max_result_bytes = 64u << 10;   // a call's text is cut here, with a marker
  size_t max_message_bytes = 16u << 20;  // a longer stdio line or HTTP body is refused
  int max_tool_pages = 50;               // tools/list pages followed before giving up
  int max_stderr_lines_per_minute = 60;  // stderr lines and log messages; more are counted
};

struct McpTool {
  std::string name;
  std::string title;
  std::string description;
  nlohmann::json input_schema = nlohmann::json::object();
  // The server's hints (untrusted: a server may lie about them).
  std::optional<bool> read_only;
  std::optional<bool> destructive;
  std::optional<bool> idempotent;
  std::optional<bool> open_world;
};

struct McpCallResult {
  bool is_error = false;  // the tool ran and reported a failure (isError)
  // Text content joined with "\n"; images, audio and resources appear as summaries such as
  // "[image image/png, 12,345 bytes]" (their data is never decoded or executed). Cut at
  // max_result_bytes with a marker saying how much there was.
  std::string text;
  nlohmann::json structured;          // structuredContent, or null
  std::vector<std::string> progress;  // notifications/progress for this call, in order
};

// Lets another coroutine or thread cancel a call() in flight (Boost 1.74 has no cancellation
// slots). One token may serve several calls; cancel() is sticky.
class McpCancel {
 public:
  // Thread-safe, idempotent: each call in flight with this token gets `cancelled` and its
  // server notifications/cancelled.
  void cancel();
  [[nodiscard]] bool cancelled() const { return cancelled_.load(); }

  // For McpClient: registers what cancel() runs (it must not block: it posts to the client's
  // strand); runs it at once when already cancelled. Returns a key for forget().
  uint64_t watch(std::function<void()> on_cancel);
  void forget(uint64_t key);

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mutex_;  // guards watchers_ and next_; never held while a watcher runs
  std::map<uint64_t, std::function<void()>> watchers_;
  uint64_t next_ = 0;
};

class McpClient {
 public:
  enum class State { starting, ready, down, broken };

  using OnToolsChanged = std::function<void(std::vector<McpTool>)>;
  using OnState = std::function<void(State, std::string why)>;

  McpClient(const net::Executor& executor, http::CurlMulti& multi, McpServerConfig config,
            OnToolsChanged on_tools_changed = {}, OnState on_state = {});
  // Kills (SIGKILL) and reaps a child still running; prefer stop() for a graceful end.
  // REQUIRES: stop() has completed, or no thread runs the io_context (it touches the strand's
  // state).
  ~McpClient();
  McpClient(const McpClient&) = delete;
  McpClient& operator=(const McpClient&) = delete;

  // Connects (spawns the child or opens the HTTP session) and initializes; progress is
  // reported through on_state. Idempotent while running.
  void start();
  // Graceful stop, done when it returns: calls in flight get `cancelled`; a stdio child gets
  // its stdin closed, then SIGTERM, then SIGKILL after stop_grace, and is reaped; an HTTP
  // session is ended with DELETE. No restart follows.
  net::asio::awaitable<void> stop();
  // Clears the breaker and the back-off and starts again (also from broken).
  void reset();

  [[nodiscard]] State state() const;
  // The tools of the server while ready (see thread safety above).
  [[nodiscard]] const std::vector<McpTool>& tools() const;
  // The running child's process id (stdio), for diagnostics; 0 when none.
  [[nodiscard]] pid_t child_pid() const;

  // Calls a tool; a `deadline` of time_point::max() means config.call_timeout from now.
  // Errors: unavailable (not ready, or the server went away during the call), not_found (no
  // such tool), deadline_exceeded, cancelled (token or stop()), invalid_argument / internal (a
  // JSON-RPC error from the server). A tool that ran and failed is a success with is_error set.
  // `struct Impl` below is public only for the implementation's helpers.
  net::asio::awaitable<Result<McpCallResult>> call(std::string tool, nlohmann::json arguments,
                                                   std::chrono::steady_clock::time_point deadline,
                                                   std::shared_ptr<McpCancel> cancel = nullptr);
  // Round trip of a JSON-RPC ping, within `timeout`.
  net::asio::awaitable<Status> ping(std::chrono::milliseconds timeout);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

std::string_view to_string(McpClient::State s) noexcept;

// Reads a tools/call result (exposed for tests): joins text, summarises the rest, cuts at
// max_bytes.
McpCallResult read_call_result(const nlohmann::json& result, size_t max_bytes);

}  // namespace parley::bot::mcp
