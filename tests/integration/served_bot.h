// A `parley run` child process for integration tests: started against a fake LLM endpoint on a
// free port, its stdout read line by line (the first line says where it listens), its stdin a
// pipe the test may write to; stopped with SIGTERM (stop()) or SIGKILL (kill(), and when
// destroyed). Plus small curl helpers for its HTTP channel.
#pragma once

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "run_parley.h"

extern char** environ;

namespace parley::testing {

class ServedBot {
 public:
  // `args` go after `run` (e.g. "--console on"); `global` before it (e.g. "--config FILE").
  ServedBot(const std::filesystem::path& cwd, const std::string& llm_url, const std::string& args = "",
            const std::string& global = "") {
    int out[2];
    int in[2];
    if (::pipe(out) != 0 || ::pipe(in) != 0) return;
    const std::string script = "cd " + quote(cwd.string()) +
                               " && exec env -u OPENROUTER_API_KEY -u OPENAI_API_KEY -u PARLEY_LLM_API_KEY "
                               "PARLEY_LLM_BASE_URL=" +
                               llm_url + " PARLEY_LLM_MODEL=fake-model " + quote(PARLEY_BINARY) + " " + global +
                               " run --http 127.0.0.1:0 --grace 5 " + args;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    const char* argv[] = {"sh", "-c", script.c_str(), nullptr};
    if (posix_spawn(&pid_, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    ::close(in[0]);
    out_fd_ = out[0];
    in_fd_ = in[1];
    // The first line says where it listens: "parley … ready in N ms: http://127.0.0.1:PORT/…".
    ready_line_ = read_line(std::chrono::seconds(30));
    std::smatch m;
    if (std::regex_search(ready_line_, m, std::regex(R"(http://127\.0\.0\.1:(\d+)/)"))) {
      url_ = "http://127.0.0.1:" + m[1].str();
    }
  }
  ~ServedBot() {
    kill();
    if (out_fd_ >= 0) ::close(out_fd_);
    if (in_fd_ >= 0) ::close(in_fd_);
  }
  ServedBot(const ServedBot&) = delete;
  ServedBot& operator=(const ServedBot&) = delete;

  // SIGTERM, then the exit code (-1 if it had to be killed after 15 s).
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 1500; ++i) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
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
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
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
  long status = 0;
  std::string body;
  std::string headers;
};

inline size_t collect_into(char* p, size_t s, size_t n, void* u) {
  static_cast<std::string*>(u)->append(p, s * n);
  return s * n;
}

// A GET (empty body) or a JSON POST.
inline Http http_request(const std::string& url, const std::string& body = "") {
  Http r;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_into);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_into);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_slist* h = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!body.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  }
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}

}  // namespace parley::testing
