// The benchmarks' child processes (bench_e2e, bench_discord): a Process with its stdout read
// into timed lines and stopped on every path (SIGTERM, then SIGKILL; SIGKILL too should the
// bench die first), the environment it gets (nothing that could send it off 127.0.0.1), its CPU
// time from /proc, and small file helpers. Header-only; a Process is used from one thread (its
// reader thread is its own).
#pragma once

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_util.h"

extern char** environ;  // NOLINT: the children's environment is this one, filtered

namespace parley::bench {

namespace process_fs = std::filesystem;

inline constexpr auto kLineWait = std::chrono::seconds(30);  // for "port N" / "ready in"
inline constexpr auto kStopWait = std::chrono::seconds(10);  // after SIGTERM, then SIGKILL

inline std::string slurp(const process_fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const process_fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) throw BenchError("cannot write " + p.string());
}

// The last `lines` lines of a log file, for a failure's message.
inline std::string tail(const process_fs::path& p, size_t lines = 15) {
  const std::string s = slurp(p);
  size_t pos = s.size();
  for (size_t n = 0; n <= lines && pos > 0; ++n) {
    const size_t nl = s.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      pos = 0;
      break;
    }
    pos = nl;
  }
  return s.substr(pos);
}

// ---- Child processes ----

struct Spawn {
  std::vector<std::string> argv;  // argv[0] is the executable's path
  std::vector<std::string> env;   // the whole environment
  process_fs::path cwd;           // empty: this process's
  process_fs::path log;           // its stderr (appended); empty: this process's stderr
  bool stdin_pipe = false;        // else /dev/null; the pipe's EOF stops fake_llm_server
};

// This environment without anything that could send a child elsewhere: PARLEY_*, DISCORD_*,
// provider keys, proxies (libcurl honours http_proxy even for 127.0.0.1 unless no_proxy says
// otherwise).
inline std::vector<std::string> clean_environment() {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view v(*e);
    const std::string name(v.substr(0, v.find('=')));
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name.starts_with("PARLEY_") || name.starts_with("DISCORD_") ||
        name == "OPENROUTER_API_KEY" || name == "OPENAI_API_KEY" || lower.ends_with("_proxy")) {
      continue;
    }
    out.emplace_back(v);
  }
  return out;
}

// A child process: stdout read by a thread of ours into lines (each with its arrival time),
// stderr to a log file. stop() — also the destructor, on every path — closes its stdin, sends
// SIGTERM, and SIGKILL after kStopWait. The child gets SIGKILL should this process die first.
class Process {
 public:
  Process(std::string name, const Spawn& spec) : name_(std::move(name)) {
    std::array<int, 2> out = {-1, -1};
    std::array<int, 2> in = {-1, -1};
    if (::pipe2(out.data(), O_CLOEXEC) != 0) throw BenchError("pipe2 failed");
    if (spec.stdin_pipe && ::pipe2(in.data(), O_CLOEXEC) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      throw BenchError("pipe2 failed");
    }
    // Everything the child needs, made before fork: after it, only async-signal-safe calls.
    std::vector<char*> argv;
    std::vector<std::string> args = spec.argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env = spec.env;
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string cwd = spec.cwd.string();
    const std::string log = spec.log.string();
    const pid_t parent = ::getpid();

    started_ = SteadyClock::now();
    pid_ = ::fork();
    if (pid_ == 0) {
      // The child. Only async-signal-safe calls from here to execve.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      const int null_fd = ::open("/dev/null", O_RDONLY);
      ::dup2(spec.stdin_pipe ? in[0] : null_fd, STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      if (!log.empty()) {
        const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
      }
      if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
      // The soft descriptor limit up to the hard one (also done in this process, whose limits
      // the child inherits; repeated here so that the child's limit never depends on that).
      rlimit rl{};
      if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
      }
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    const int fork_errno = errno;
    ::close(out[1]);
    if (spec.stdin_pipe) ::close(in[0]);
    stdout_fd_ = out[0];
    stdin_fd_ = spec.stdin_pipe ? in[1] : -1;
    if (pid_ < 0) {
      close_fds();
      throw BenchError(fmt::format("fork for {}: {}", name_, std::strerror(fork_errno)));
    }
    reader_ = std::thread([this] { read_stdout(); });
  }
  ~Process() { stop(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] SteadyClock::time_point started() const { return started_; }

  struct Line {
    std::string text;
    SteadyClock::time_point at;
  };

  // The first stdout line that contains `needle`; throws after `wait`, or when stdout closes.
  Line wait_line(std::string_view needle, SteadyClock::duration wait = kLineWait) {
    std::unique_lock lock(mu_);
    const auto give_up = SteadyClock::now() + wait;
    for (size_t seen = 0;;) {
      for (; seen < lines_.size(); ++seen) {
        if (lines_[seen].text.find(needle) != std::string::npos) return lines_[seen];
      }
      if (eof_) {
        throw BenchError(
            fmt::format("{} closed its stdout (exited?) before printing '{}'", name_, needle));
      }
      if (cv_.wait_until(lock, give_up) == std::cv_status::timeout && seen == lines_.size()) {
        throw BenchError(fmt::format("{} did not print '{}' in time", name_, needle));
      }
    }
  }

  // Waits for the child to exit on its own; its exit code (128+N for a signal N), or nullopt
  // after `wait`. Then everything it printed is in stdout_text().
  std::optional<int> wait_exit(SteadyClock::duration wait) {
    const auto give_up = SteadyClock::now() + wait;
    while (!reap(false)) {
      if (SteadyClock::now() >= give_up) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (reader_.joinable()) reader_.join();
    return code_;
  }

  [[nodiscard]] std::string stdout_text() {
    const std::lock_guard lock(mu_);
    return text_;
  }

  // Idempotent; never throws. Returns the exit code (nullopt when it had to be killed).
  std::optional<int> stop() noexcept {
    if (stdin_fd_ >= 0) {
      ::close(stdin_fd_);
      stdin_fd_ = -1;
    }
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGTERM);
      const auto give_up = SteadyClock::now() + kStopWait;
      while (!reap(false) && SteadyClock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (!reaped_) {
        note("{} (pid {}) still running {} s after SIGTERM: SIGKILL", name_, pid_,
             kStopWait.count());
        ::kill(pid_, SIGKILL);
        reap(true);
        code_.reset();
      }
    }
    if (reader_.joinable()) reader_.join();
    close_fds();
    return code_;
  }

 private:
  bool reap(bool block) noexcept {
    if (reaped_) return true;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r != pid_) return false;
    reaped_ = true;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }

  void read_stdout() {
    std::array<char, 4096> buf{};
    std::string partial;
    for (;;) {
      const ssize_t n = ::read(stdout_fd_, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      const auto now = SteadyClock::now();
      const std::lock_guard lock(mu_);
      if (n <= 0) {
        if (!partial.empty()) lines_.push_back({partial, now});
        eof_ = true;
        cv_.notify_all();
        return;
      }
      text_.append(buf.data(), static_cast<size_t>(n));
      partial.append(buf.data(), static_cast<size_t>(n));
      for (size_t nl = partial.find('\n'); nl != std::string::npos; nl = partial.find('\n')) {
        lines_.push_back({partial.substr(0, nl), now});
        partial.erase(0, nl + 1);
      }
      cv_.notify_all();
    }
  }

  void close_fds() noexcept {
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdout_fd_ = -1;
    stdin_fd_ = -1;
  }

  std::string name_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::optional<int> code_;
  int stdout_fd_ = -1;
  int stdin_fd_ = -1;
  SteadyClock::time_point started_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Line> lines_;  // GUARDED_BY(mu_)
  std::string text_;         // GUARDED_BY(mu_)
  bool eof_ = false;         // GUARDED_BY(mu_)
  std::thread reader_;       // last: reads the fields above
};

// ---- What a process holds, from /proc/PID ----

// User plus system CPU time the process has used so far, in ms (from /proc/PID/stat).
inline double cpu_ms(pid_t pid) {
  const std::string stat = slurp(fmt::format("/proc/{}/stat", pid));
  const size_t close = stat.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  unsigned long utime = 0;
  unsigned long stime = 0;
  // Fields 3.. of stat(5): utime is the 14th, stime the 15th.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::strtoul(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoul(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace parley::bench
