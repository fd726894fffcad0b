// fake_llm_server: FakeLlmServer as a process of its own, for benchmarks. Every request gets the
// default reply ("ok"; streamed when the request asks), delayed by --delay-ms before headers.
// --record-last FILE writes the body of each chat-completion request to FILE (replaced whole,
// through a rename) before answering it: what a client sent, e.g. to weigh parley's prompt.
//
// Prints "port <N>" as its first stdout line, then serves until SIGINT/SIGTERM or until stdin
// reaches EOF — a parent that dies closes the pipe and takes the server down with it
// (--ignore-stdin turns that off, e.g. when started with stdin on /dev/null).
// --fault-every N turns every Nth chat-completion request into a fault, in turn: HTTP 500 with
// Retry-After 1, a stream cut after its first event, a malformed body (for soak runs).
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "fakes/fake_llm.h"
#include "parley/bot/net.h"

namespace {

namespace asio = boost::asio;

// 10,000 concurrent connections need more descriptors than the usual soft limit of 1024.
void raise_nofile_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max) return;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) std::perror("fake_llm_server: setrlimit(NOFILE)");
}

// Reads stdin until EOF or an error, then calls on_eof.
class StdinWatch {
 public:
  StdinWatch(asio::io_context& ioc, std::function<void()> on_eof)
      : in_(ioc), on_eof_(std::move(on_eof)) {}

  void start() {
    const int fd = ::dup(STDIN_FILENO);
    if (fd < 0) return;  // no stdin at all: nothing to watch
    boost::system::error_code ec;
    in_.assign(fd, ec);
    if (ec) {
      ::close(fd);
      return;
    }
    read();
  }

 private:
  void read() {
    in_.async_read_some(asio::buffer(buf_), [this](boost::system::error_code ec, size_t) {
      if (ec) {
        on_eof_();
        return;
      }
      read();
    });
  }

  asio::posix::stream_descriptor in_;
  std::function<void()> on_eof_;
  std::array<char, 256> buf_{};
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fake_llm_server: a fake OpenAI-compatible chat-completions server"};
  int port = 0;
  int threads = 1;
  int delay_ms = 0;
  bool ignore_stdin = false;
  int fault_every = 0;
  std::string record_last;
  app.add_option("--port", port, "port on 127.0.0.1 (0: any free port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--threads", threads, "io threads")->check(CLI::Range(1, 256));
  app.add_option("--delay-ms", delay_ms, "delay before every reply's headers")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--ignore-stdin", ignore_stdin, "keep serving when stdin reaches EOF");
  app.add_option("--record-last", record_last,
                 "write each chat-completion request body to this file (the last one stays)");
  app.add_option("--fault-every", fault_every,
                 "every Nth chat-completion request fails (500, cut stream, malformed body in "
                 "turn); 0: never")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);

  raise_nofile_limit();

  // Signal handlers before the server starts: a SIGTERM during start-up still shuts it down
  // in order.
  asio::io_context ioc(1);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) ioc.stop();
  });
  StdinWatch stdin_watch(ioc, [&] { ioc.stop(); });
  if (!ignore_stdin) stdin_watch.start();

  parley::fakes::FakeLlmServer::Options options;
  options.port = static_cast<uint16_t>(port);
  options.threads = threads;
  options.default_reply.delay_before_headers = std::chrono::milliseconds(delay_ms);
  std::optional<parley::fakes::FakeLlmServer> server;
  try {
    server.emplace(std::move(options));
  } catch (const std::exception& e) {
    std::cerr << "fake_llm_server: cannot listen on 127.0.0.1:" << port << ": " << e.what() << "\n";
    return 2;
  }
  if (!record_last.empty() || fault_every > 0) {
    // Written before the reply goes out: once a client has its answer, the file holds its
    // request. Returning nullopt keeps the default reply. The handler runs on the server's
    // io threads: the count is atomic.
    auto calls = std::make_shared<std::atomic<uint64_t>>(0);
    server->set_handler(
        [record_last, fault_every, calls](const parley::fakes::RecordedRequest& request)
            -> std::optional<parley::fakes::FakeReply> {
          if (!request.target.ends_with("/chat/completions")) return std::nullopt;
          if (fault_every > 0) {
            const uint64_t n = ++*calls;
            if (n % static_cast<uint64_t>(fault_every) == 0) {
              switch ((n / static_cast<uint64_t>(fault_every)) % 3) {
                case 0: return parley::fakes::FakeReply::error(500, 1);
                case 1: {
                  auto cut = parley::fakes::FakeReply::text("this reply is cut short");
                  cut.truncate_after_events = 1;
                  return cut;
                }
                default: return parley::fakes::FakeReply::malformed();
              }
            }
          }
          if (record_last.empty()) return std::nullopt;
          const std::string tmp = record_last + ".tmp";
          {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            out << request.body;
          }
          if (std::rename(tmp.c_str(), record_last.c_str()) != 0) {
            std::perror("fake_llm_server: --record-last");
          }
          return std::nullopt;
        });
  }
  std::cout << "port " << server->port() << std::endl;  // flushed: the parent waits for it

  ioc.run();
  server.reset();
  return 0;
}
