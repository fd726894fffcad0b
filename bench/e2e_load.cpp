// e2e_load: the load generator of bench_e2e, a process of its own so that its sockets, memory
// and CPU are not counted as parley's. One thread, one io_context, Beast HTTP/1.1 clients with
// completion handlers (no coroutines: nothing here needs them).
//
// --clients C keep-alive connections to 127.0.0.1:--port, opened all at once; together they
// send --messages N requests, each client its next one as soon as its previous answer is in
// (so --clients N --messages N puts N requests in flight at once, one per connection).
//   --mode parley  POST /v1/messages {"conversation": "<prefix>-<i>", "user": "<prefix>-<i>",
//                  "text": "hello <i>"}: a new conversation of a new user per message (parley
//                  limits messages per user per minute); ok = HTTP 200 with a JSON "reply"
//                  equal to --expect-reply.
//   --mode llm     POST /v1/chat/completions with the bytes of --body-file (the request parley
//                  sends, recorded by the fake): ok = HTTP 200 with a non-empty body.
// --warmup W first sends W untimed requests on the same connections (parley mode: in
// conversations of their own).
//
// Prints one JSON object on stdout: sent, ok, failed, wall_ms (the first timed request written
// to the last timed answer), wall_from_connect_ms (the first connect to the last answer),
// connected_ms (until every client was connected), in_flight_peak, the failures by kind, and
// per ok timed request latency_us (client-observed: request written to answer read) and —
// parley mode, when the answer has them — turn_ms (its "latency_ms") and overhead_us
// (latency_us − its "llm_latency_ms"). Exit 0 when every request was ok, 1 otherwise, 2 on bad
// usage.

// clang-format off
#include "parley/bot/net.h"  // first: Asio the one way, before Beast includes it
// clang-format on

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace asio = parley::net::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using parley::net::tcp;
using SteadyClock = std::chrono::steady_clock;
using nlohmann::json;

struct Settings {
  uint16_t port = 0;
  std::string mode = "parley";
  size_t clients = 16;
  size_t messages = 1000;
  size_t warmup = 0;
  std::string prefix = "e2e";
  std::string body;  // llm mode
  std::string expect_reply = "ok";
  int timeout_s = 120;
};

// What every client shares. Single-threaded: touched only from the io_context's one thread.
struct Shared {
  Shared(const Settings& s, asio::io_context& io)
      : settings(s), ioc(io), endpoint(asio::ip::make_address_v4("127.0.0.1"), s.port) {}

  const Settings& settings;
  asio::io_context& ioc;
  tcp::endpoint endpoint;
  size_t open_clients = 0;  // started and not yet closed
  size_t next = 0;          // the next request's index (warm-up ones first)
  size_t total = 0;         // warm-up + timed
  size_t done = 0;
  size_t connected = 0;
  size_t in_flight = 0;
  size_t in_flight_peak = 0;
  size_t ok = 0;
  std::map<std::string, size_t> failures;
  std::vector<double> latency_us;
  std::vector<double> turn_ms;
  std::vector<double> overhead_us;  // latency_us − llm_latency_ms, when the answer has it
  SteadyClock::time_point start;
  std::optional<SteadyClock::time_point> timed_start;  // the first timed request written
  SteadyClock::time_point last_done;
  SteadyClock::time_point all_connected;
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(Shared& shared, size_t id) : shared_(shared), id_(id), socket_(shared.ioc) {}

  void start() {
    ++shared_.open_clients;
    socket_.async_connect(
        shared_.endpoint,
        [self = shared_from_this()](const beast::error_code& ec) { self->on_connect(ec); });
  }

  // Idempotent.
  void close() {
    if (closed_) return;
    closed_ = true;
    --shared_.open_clients;
    beast::error_code ignored;
    socket_.close(ignored);
  }

 private:
  void on_connect(const beast::error_code& ec) {
    if (ec) {
      fail("connect: " + ec.message());
      return;
    }
    beast::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    if (++shared_.connected == shared_.settings.clients) shared_.all_connected = SteadyClock::now();
    send_next();
  }

  void send_next() {
    if (shared_.next >= shared_.total) {
      close();
      return;
    }
    index_ = shared_.next++;
    timed_ = index_ >= shared_.settings.warmup;
    request_ = {};
    request_.version(11);
    request_.method(http::verb::post);
    request_.set(http::field::host, "127.0.0.1");
    request_.set(http::field::content_type, "application/json");
    if (shared_.settings.mode == "parley") {
      request_.target("/v1/messages");
      request_.body() = json{{"conversation", conversation_key()},
                             {"user", conversation_key()},
                             {"text", "hello " + std::to_string(index_)}}
                            .dump();
    } else {
      request_.target("/v1/chat/completions");
      request_.set(http::field::authorization, "Bearer sk-bench");
      request_.body() = shared_.settings.body;
    }
    request_.prepare_payload();
    response_.emplace();
    response_->body_limit(16u * 1024 * 1024);
    sent_ = SteadyClock::now();
    if (timed_ && !shared_.timed_start) shared_.timed_start = sent_;
    shared_.in_flight_peak = std::max(shared_.in_flight_peak, ++shared_.in_flight);
    in_flight_ = true;
    http::async_write(socket_, request_,
                      [self = shared_from_this()](const beast::error_code& ec, size_t) {
                        if (ec) {
                          self->fail("write: " + ec.message());
                          return;
                        }
                        self->read();
                      });
  }

  [[nodiscard]] std::string conversation_key() const {
    return shared_.settings.prefix + (timed_ ? "-" : "-w") + std::to_string(index_);
  }

  void read() {
    http::async_read(
        socket_, buffer_, *response_,
        [self = shared_from_this()](const beast::error_code& ec, size_t) { self->on_read(ec); });
  }

  void on_read(const beast::error_code& ec) {
    if (ec) {
      fail("read: " + ec.message());
      return;
    }
    const auto now = SteadyClock::now();
    --shared_.in_flight;
    in_flight_ = false;
    const auto& res = response_->get();
    std::string problem;
    std::optional<double> turn;
    std::optional<double> llm;
    if (res.result_int() != 200) {
      problem = "HTTP " + std::to_string(res.result_int());
    } else if (shared_.settings.mode == "parley") {
      const json j = json::parse(res.body(), nullptr, false);
      if (!j.is_object() || !j.contains("reply")) {
        problem = "no reply in the answer";
      } else if (j["reply"] != shared_.settings.expect_reply) {
        problem = "unexpected reply";
      } else {
        if (j.contains("latency_ms") && j["latency_ms"].is_number())
          turn = j["latency_ms"].get<double>();
        if (j.contains("llm_latency_ms") && j["llm_latency_ms"].is_number()) {
          llm = j["llm_latency_ms"].get<double>();
        }
      }
    } else if (res.body().empty()) {
      problem = "empty body";
    }
    if (timed_) {
      ++shared_.done;
      shared_.last_done = now;
      if (problem.empty()) {
        ++shared_.ok;
        const double us = std::chrono::duration<double, std::micro>(now - sent_).count();
        shared_.latency_us.push_back(us);
        if (turn) shared_.turn_ms.push_back(*turn);
        if (llm) shared_.overhead_us.push_back(us - *llm * 1000.0);
      } else {
        ++shared_.failures[problem];
      }
    } else if (!problem.empty()) {
      ++shared_.failures["warm-up: " + problem];
    }
    if (!res.keep_alive()) {
      close();
      return;
    }
    send_next();
  }

  // The request in hand (or, before it has one, the client) failed; the client stops, and the
  // other clients take the rest of the requests.
  void fail(const std::string& what) {
    if (in_flight_) {
      --shared_.in_flight;
      in_flight_ = false;
      if (timed_) {
        ++shared_.done;
        shared_.last_done = SteadyClock::now();
      }
    }
    ++shared_.failures[what];
    close();
  }

  Shared& shared_;
  size_t id_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::optional<http::response_parser<http::string_body>> response_;
  size_t index_ = 0;
  bool timed_ = false;
  bool in_flight_ = false;
  bool closed_ = false;
  SteadyClock::time_point sent_;
};

// The soft RLIMIT_NOFILE up to the hard one: one descriptor per client.
void raise_nofile_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max) return;
  rl.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) std::perror("e2e_load: setrlimit(NOFILE)");
}

double ms_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  std::string body_file;
  CLI::App app{"e2e_load: HTTP load on parley's /v1/messages or a chat-completions endpoint"};
  app.add_option("--port", s.port, "port on 127.0.0.1")->required()->check(CLI::Range(1, 65535));
  app.add_option("--mode", s.mode, "parley or llm")
      ->check(CLI::IsMember(std::vector<std::string>{"parley", "llm"}))
      ->capture_default_str();
  app.add_option("--clients", s.clients, "connections at once")->check(CLI::PositiveNumber);
  app.add_option("--messages", s.messages, "timed requests in all")->check(CLI::PositiveNumber);
  app.add_option("--warmup", s.warmup, "untimed requests first");
  app.add_option("--prefix", s.prefix, "conversation keys start with this (parley mode)");
  app.add_option("--body-file", body_file, "the request body (llm mode)");
  app.add_option("--expect-reply", s.expect_reply, "the reply every answer must carry (parley)")
      ->capture_default_str();
  app.add_option("--timeout-s", s.timeout_s, "give up on what is left after this")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (s.mode == "llm") {
    if (body_file.empty()) {
      std::cerr << "e2e_load: --mode llm needs --body-file\n";
      return 2;
    }
    std::ifstream in(body_file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    s.body = ss.str();
    if (s.body.empty()) {
      std::cerr << "e2e_load: " << body_file << " is empty or unreadable\n";
      return 2;
    }
  }
  raise_nofile_limit();

  asio::io_context ioc(1);
  Shared shared(s, ioc);
  shared.total = s.warmup + s.messages;
  shared.latency_us.reserve(s.messages);
  std::vector<std::shared_ptr<Client>> clients;
  clients.reserve(s.clients);
  for (size_t i = 0; i < s.clients; ++i) clients.push_back(std::make_shared<Client>(shared, i));

  bool timed_out = false;
  asio::steady_timer deadline(ioc, std::chrono::seconds(s.timeout_s));
  deadline.async_wait([&](const beast::error_code& ec) {
    if (ec) return;
    timed_out = true;
    for (auto& c : clients) c->close();
  });
  shared.start = SteadyClock::now();
  for (auto& c : clients) c->start();
  // Until every client has closed: then only the deadline is left, and it goes too.
  while (ioc.run_one() > 0) {
    if (shared.open_clients == 0) deadline.cancel();
  }

  const size_t failed = s.messages - shared.ok;
  json failures = json::object();
  for (const auto& [what, n] : shared.failures) failures[what] = n;
  if (timed_out)
    failures["timed out after " + std::to_string(s.timeout_s) + " s"] = s.messages - shared.done;
  const auto timed_start = shared.timed_start.value_or(shared.start);
  const json out = {
      {"sent", s.messages},
      {"ok", shared.ok},
      {"failed", failed},
      {"wall_ms", shared.done > 0 ? ms_between(timed_start, shared.last_done) : 0.0},
      {"wall_from_connect_ms", shared.done > 0 ? ms_between(shared.start, shared.last_done) : 0.0},
      {"connected_ms",
       shared.connected == s.clients ? ms_between(shared.start, shared.all_connected) : -1.0},
      {"connected", shared.connected},
      {"in_flight_peak", shared.in_flight_peak},
      {"failures", failures},
      {"latency_us", shared.latency_us},
      {"turn_ms", shared.turn_ms},
      {"overhead_us", shared.overhead_us}};
  std::cout << out.dump() << std::endl;
  return failed == 0 ? 0 : 1;
}
