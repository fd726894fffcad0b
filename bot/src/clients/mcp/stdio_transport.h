// StdioTransport: an MCP server as a child process speaking newline-delimited JSON-RPC on its
// stdin/stdout (see transport.h). The child is started with posix_spawn in its own process
// group, with a minimal environment (PATH, HOME, LANG plus the configured variables); its
// stderr lines are logged under the server's name, rate-limited. The pipes are Asio
// stream_descriptors on the client's strand; the child is reaped by polling waitpid once its
// stdout closes (no SIGCHLD handler: the process has other children, and a signal_set would
// take the signal from them).
//
// Thread safety: the client's strand only (transport.h).
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "clients/mcp/transport.h"
#include "parley/bot/clients/mcp/mcp_client.h"
#include "parley/bot/net.h"

namespace parley::bot::mcp {

// A child process id that is killed (SIGKILL to its process group) and reaped when destroyed
// unless reaped before.
class ChildProcess {
 public:
  ChildProcess() = default;
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ~ChildProcess() { kill_and_reap(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Takes charge of a newly started child (none may be held).
  void adopt(pid_t pid) { pid_ = pid; }
  // SIGKILL to the group and a blocking reap (short after SIGKILL).
  void kill_and_reap();
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool running() const { return pid_ > 0; }
  // Sends `signal` to the child's process group (it leads its own).
  void signal_group(int signal) const;
  // waitpid without blocking: true once the child has exited (then `status` describes how,
  // e.g. "exited with status 3" or "killed by signal 9", and the pid is forgotten).
  bool try_reap(std::string& status);

 private:
  pid_t pid_ = 0;
};

class StdioTransport : public Transport, public std::enable_shared_from_this<StdioTransport> {
 public:
  StdioTransport(net::asio::strand<net::Executor> strand, McpServerConfig config,
                 TransportEvents events);

  Status open() override;
  void send(nlohmann::json message, std::chrono::steady_clock::time_point deadline) override;
  void close(std::function<void()> closed) override;
  void kill_now() override;
  [[nodiscard]] pid_t pid() const override { return child_.pid(); }

 private:
  void read_stdout();
  void read_stderr();
  void on_stdout(std::string_view bytes);
  void on_stderr(std::string_view bytes);
  void stderr_line(std::string_view line);
  void write_next();
  // The child's stdout closed (EOF or error) or close() asked: wait for the child to exit,
  // escalating to SIGTERM and SIGKILL, then report.
  void begin_reap();
  void poll_reap();
  void finish(const std::string& status);

  net::asio::strand<net::Executor> strand_;
  const McpServerConfig config_;  // a copy: pending handlers may outlive the client
  TransportEvents events_;
  ChildProcess child_;
  net::asio::posix::stream_descriptor in_, out_, err_;
  std::array<char, size_t{64} * 1024> out_buf_{};
  std::array<char, size_t{8} * 1024> err_buf_{};
  std::string out_line_, err_line_;
  bool discarding_ = false;  // the current stdout line is over max_message_bytes
  std::deque<std::string> writes_;
  bool writing_ = false;

  bool closing_ = false;  // close() was called: report to closed_, not on_closed
  bool reaping_ = false;
  bool finished_ = false;
  std::function<void()> closed_;
  net::asio::steady_timer reap_timer_;
  std::chrono::steady_clock::time_point reap_started_;
  int escalation_ = 0;  // 0: waiting, 1: SIGTERM sent, 2: SIGKILL sent

  // stderr rate limit: lines logged in the current minute, and lines dropped.
  std::chrono::steady_clock::time_point stderr_window_;
  int stderr_logged_ = 0;
  size_t stderr_dropped_ = 0;
};

}  // namespace parley::bot::mcp
