// A `parley run` child process for integration tests: started against a fake LLM endpoint on a
// free port, its stdout read line by line (the first line says where it listens), its stdin a
// pipe the test may write to; stopped with SIGTERM (stop()) or SIGKILL (kill(), and when
// destroyed). Plus http_request() for its HTTP channel (support/http_client.h underneath).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "parley/storage/store.h"
#include "support/http_client.h"
#include "support/run_parley.h"

extern char** environ;

namespace parley::testing {

class ServedBot {
 public:
  // `args` go after `run` (e.g. "--console on"; "--grace 5" unless they give one); `global`
  // before it (e.g. "--config FILE");
  // `env`: more NAME=value words for its environment (e.g. "DISCORD_TOKEN=t").
  ServedBot(const std::filesystem::path& cwd, const std::string& llm_url,
            const std::string& args = "", const std::string& global = "",
            const std::string& env = "") {
    int out[2];
    int in[2];
    if (::pipe(out) != 0 || ::pipe(in) != 0) return;
    const std::string script =
        "cd " + quote(cwd.string()) +
        " && exec env -u OPENROUTER_API_KEY -u OPENAI_API_KEY -u PARLEY_LLM_API_KEY "
        "-u DISCORD_TOKEN PARLEY_LLM_BASE_URL=" +
        llm_url + " PARLEY_LLM_MODEL=fake-model " + env + " " + quote(PARLEY_BINARY) + " " +
        global + " run --http 127.0.0.1:0 " +
        (args.find("--grace") == std::string::npos ? "--grace 5 " : "") + args;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    const char* argv[] = {"sh", "-c", script.c_str(), nullptr};
    if (posix_spawn(&pid_, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), environ) != 0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    ::close(in[0]);
    out_fd_ = out[0];
    in_fd_ = in[1];
    // The first line says it is ready ("parley … ready in N ms …"); where it listens
    // ("http://127.0.0.1:PORT/…") is on that line or on one of the channel lines after it.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    ready_line_ = read_line(std::chrono::seconds(30));
    const std::regex where(R"(http://127\.0\.0\.1:(\d+)/)");
    std::string line = ready_line_;
    for (int i = 0; i < 4 && !line.empty(); ++i) {
      std::smatch m;
      if (std::regex_search(line, m, where)) {
        url_ = "http://127.0.0.1:" + m[1].str();
        break;
      }
      line = read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
    }
  }
  ~ServedBot() {
    kill();
    if (out_fd_ >= 0) ::close(out_fd_);
    if (in_fd_ >= 0) ::close(in_fd_);
  }
  ServedBot(const ServedBot&) = delete;
  ServedBot& operator=(const ServedBot&) = delete;

  // SIGTERM, then the exit code: 128 + N when signal N ended it (the shell's convention, so a
  // crash reads as 139 or 134), -1 if it had to be killed after 15 s.
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 1500; ++i) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        if (WIFEXITED(st)) return WEXITSTATUS(st);
        return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill();
    return -1;
  }
  // SIGKILL (the exec'd shell is parley itself), and reaped.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  // The next line of its stdout, without the newline; empty on timeout or end.
  std::string read_line(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto nl = pending_.find('\n'); nl != std::string::npos) {
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0 || out_fd_ < 0) return {};
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
      char buf[4096];
      const ssize_t n = ::read(out_fd_, buf, sizeof buf);
      if (n <= 0) return {};
      pending_.append(buf, static_cast<size_t>(n));
    }
  }
  // Reads lines until one contains `needle` (returned) or the time is up (empty).
  std::string wait_for_line(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      std::string line = read_line(left);
      if (line.find(needle) != std::string::npos) return line;
      seen_.push_back(line);
    }
  }
  bool write_stdin(const std::string& text) {
    return ::write(in_fd_, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  }
  const std::string& url() const { return url_; }
  pid_t pid() const { return pid_; }  // parley itself (the shell exec'd it)
  const std::string& ready_line() const { return ready_line_; }
  const std::vector<std::string>& seen() const { return seen_; }  // lines skipped by wait_for_line

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int in_fd_ = -1;
  std::string pending_;
  std::string ready_line_;
  std::string url_;
  std::vector<std::string> seen_;
};

struct Http {
  long status = 0;  // 0 when the exchange failed
  std::string body;
  std::string headers;  // every header line as received
};

// The database a bot run in `dir` keeps (data/parley.db), opened as another process would.
inline std::unique_ptr<parley::storage::Store> open_bot_store(const std::filesystem::path& dir) {
  parley::storage::StoreOptions so;
  so.path = dir / "data/parley.db";
  return std::move(parley::storage::Store::open(so).value());
}

// Whether this build runs under AddressSanitizer or ThreadSanitizer, whose runtimes must come
// first: the tests that preload a library of their own into parley (libfiu, libfaketime, a slow
// disk) skip then.
constexpr bool under_sanitizer() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

// A GET (empty body) or a JSON POST.
inline Http http_request(const std::string& url, const std::string& body = "") {
  const HttpResult r = body.empty() ? http_get(url) : http_post(url, body);
  return Http{r.ok() ? r.status : 0, r.body, r.raw_headers};
}

}  // namespace parley::testing
