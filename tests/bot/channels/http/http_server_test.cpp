// clang-format off
#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros
// clang-format on

#include "parley/bot/channels/http/http_server.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.h"

namespace parley::bot::channels {
namespace http_server_test {

namespace asio = net::asio;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "s3cret-T0ken";

// --- the handlers -----------------------------------------------------------------------------

MessageResponse echo(const MessageRequest& m) {
  MessageResponse r;
  r.body = json::object();
  r.body["conversation"] = m.conversation;
  r.body["user"] = m.user;
  r.body["reply"] = "echo: " + m.text;
  r.body["stream"] = m.stream;
  if (m.id) r.body["id"] = *m.id;
  return r;
}

MessageHandler echo_handler(std::atomic<int>* calls = nullptr) {
  return [calls](MessageRequest m) -> asio::awaitable<MessageResponse> {
    if (calls != nullptr) ++*calls;
    co_return echo(m);
  };
}

// Waits (without blocking the executor) until `flag` is set or `max` has passed.
asio::awaitable<void> wait_for_flag(const std::atomic<bool>& flag, milliseconds max) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  const auto until = SteadyClock::now() + max;
  while (!flag && SteadyClock::now() < until) {
    timer.expires_after(milliseconds(5));
    co_await timer.async_wait(asio::use_awaitable);
  }
}

// Answers once `release` is set (at most 20 s).
MessageHandler gated_handler(const std::atomic<bool>& release) {
  return [&release](MessageRequest m) -> asio::awaitable<MessageResponse> {
    co_await wait_for_flag(release, milliseconds(20'000));
    co_return echo(m);
  };
}

// --- the server under test ----------------------------------------------------------------------

bool wait_until(const std::function<bool()>& done, milliseconds max = milliseconds(5000)) {
  const auto until = SteadyClock::now() + max;
  while (!done()) {
    if (SteadyClock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

HttpServerOptions local_options() {
  HttpServerOptions o;
  o.port = 0;
  return o;
}

// An io_context on two threads and an HttpServer on it.
class Harness {
 public:
  explicit Harness(HttpServerOptions options, MessageHandler handler = echo_handler(),
                   ReadyCheck ready = {})
      : guard_(asio::make_work_guard(ioc_)) {
    server_ = std::make_unique<HttpServer>(ioc_.get_executor(), std::move(options),
                                           std::move(handler), std::move(ready));
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~Harness() {
    server_->stop();
    const bool idle = wait_until(
        [this] { return server_->active_requests() == 0 && server_->open_connections() == 0; });
    EXPECT_TRUE(idle) << "requests or connections left at the end";
    server_.reset();
    guard_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  HttpServer& server() { return *server_; }
  net::Executor executor() { return ioc_.get_executor(); }
  uint16_t port() const { return server_->port(); }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::unique_ptr<HttpServer> server_;
  std::vector<std::thread> threads_;
};

// Captures spdlog's default logger (debug level) until destroyed. Read text() only once the
// server is gone: the io threads may still be writing before that.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()), level_(spdlog::get_level()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)));
    spdlog::set_level(spdlog::level::debug);
  }
  ~LogCapture() {
    spdlog::set_default_logger(previous_);
    spdlog::set_level(level_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
  spdlog::level::level_enum level_;
};

// --- a plain curl_easy client -------------------------------------------------------------------

using parley::testing::HttpResult;

// The message of the channel's JSON error body ({"error": "…"}); "<no error>" without one.
std::string error_of(const HttpResult& r) {
  const json j = r.json();
  if (!j.is_object() || !j.contains("error") || !j["error"].is_string()) return "<no error>";
  return j["error"].get<std::string>();
}

struct Call {
  std::string method = "GET";
  std::string path = "/healthz";
  std::optional<std::string> body;
  std::vector<std::string> headers;
};

// One request; `reuse` keeps the connection between calls (keep-alive).
HttpResult fetch(uint16_t port, const Call& call, CURL* reuse = nullptr) {
  parley::testing::HttpRequest request;
  request.method = call.method;
  request.url = fmt::format("http://127.0.0.1:{}{}", port, call.path);
  request.body = call.body;
  request.headers = call.headers;
  return parley::testing::http_perform(request, reuse);
}

Call post_message(const json& body, const std::string& path = "/v1/messages") {
  Call c;
  c.method = "POST";
  c.path = path;
  c.body = body.dump();
  c.headers = {"Content-Type: application/json"};
  return c;
}

json valid_message() {
  return json{{"conversation", "c-1"}, {"user", "u-1"}, {"text", "hello there"}};
}

// Sends raw bytes on a new connection and reads until the server closes it (or `max` passes).
struct RawResult {
  std::string received;
  bool closed = false;
  milliseconds elapsed{0};
};

RawResult raw_exchange(uint16_t port, const std::string& bytes, milliseconds max) {
  asio::io_context io;
  net::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(socket, asio::buffer(bytes));
  RawResult r;
  const auto start = SteadyClock::now();
  asio::async_read(socket, asio::dynamic_buffer(r.received),
                   [&](const boost::system::error_code& ec, size_t /*n*/) {
                     r.closed = ec == asio::error::eof || ec == asio::error::connection_reset;
                     r.elapsed =
                         std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
                   });
  io.run_for(max);
  return r;
}

// --- tests ------------------------------------------------------------------------------------

TEST(HttpServerTest, AValidMessageReachesTheHandlerAndItsAnswerComesBackAsJson) {
  std::atomic<int> calls{0};
  Harness h(local_options(), echo_handler(&calls));
  ASSERT_TRUE(h.server().start().ok());
  ASSERT_NE(h.port(), 0);

  json body = valid_message();
  body["id"] = "m-42";
  const auto r = fetch(h.port(), post_message(body));
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  const json j = r.json();
  EXPECT_EQ(j["reply"], "echo: hello there");
  EXPECT_EQ(j["conversation"], "c-1");
  EXPECT_EQ(j["user"], "u-1");
  EXPECT_EQ(j["id"], "m-42");
  EXPECT_EQ(j["stream"], false);
  EXPECT_EQ(calls, 1);

  // Without an id; unknown fields are ignored; null id is no id.
  json plain = valid_message();
  plain["id"] = nullptr;
  plain["extra"] = 1;
  const auto r2 = fetch(h.port(), post_message(plain));
  EXPECT_EQ(r2.status, 200);
  EXPECT_FALSE(r2.json().contains("id"));
}

// The JSON of a streamed answer's last event (`event: reply` or `event: error`).
json last_event(const std::string& body, const std::string& kind = "reply") {
  const std::string marker = "event: " + kind + "\ndata: ";
  const auto at = body.rfind(marker);
  if (at == std::string::npos) return nullptr;
  const auto end = body.find("\n\n", at);
  return json::parse(body.substr(at + marker.size(), end - at - marker.size()), nullptr, false);
}

TEST(HttpServerTest, StreamQueryParameterIsParsed) {
  Harness h(local_options());
  ASSERT_TRUE(h.server().start().ok());
  const auto streamed = fetch(h.port(), post_message(valid_message(), "/v1/messages?stream=1"));
  EXPECT_EQ(streamed.header("content-type"), "text/event-stream");
  EXPECT_EQ(last_event(streamed.body)["stream"], true);
  EXPECT_EQ(
      last_event(fetch(h.port(), post_message(valid_message(), "/v1/messages?x=y&stream=true"))
                     .body)["stream"],
      true);
  EXPECT_EQ(
      fetch(h.port(), post_message(valid_message(), "/v1/messages?stream=0")).json()["stream"],
      false);
  const auto bad = fetch(h.port(), post_message(valid_message(), "/v1/messages?stream=maybe"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(error_of(bad), HasSubstr("stream"));
}

TEST(HttpServerTest, StreamedTextArrivesAsDeltaEventsThenTheReply) {
  Harness h(local_options(), [](MessageRequest m) -> asio::awaitable<MessageResponse> {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex);
    for (const char* piece : {"Hel", "lo"}) {
      m.emit(piece, false);
      timer.expires_after(milliseconds(20));
      co_await timer.async_wait(asio::use_awaitable);
    }
    m.emit("Hello", true);  // a retry: start over
    co_return MessageResponse{200, {{"reply", "Hello"}}, {}};
  });
  ASSERT_TRUE(h.server().start().ok());
  const auto r = fetch(h.port(), post_message(valid_message(), "/v1/messages?stream=1"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/event-stream");
  const auto restart = r.body.find("event: restart\n");
  ASSERT_NE(restart, std::string::npos) << r.body;
  EXPECT_LT(r.body.find("data: {\"delta\":\"Hel\"}"), restart);
  EXPECT_GT(r.body.find("data: {\"delta\":\"Hello\"}"), restart);
  EXPECT_EQ(last_event(r.body)["reply"], "Hello");
}

TEST(HttpServerTest, AStreamedErrorBeforeAnyTextIsAPlainJsonError) {
  Harness h(local_options(), [](MessageRequest) -> asio::awaitable<MessageResponse> {
    co_return MessageResponse{429, {{"error", "slow down"}}, {{"Retry-After", "7"}}};
  });
  ASSERT_TRUE(h.server().start().ok());
  const auto r = fetch(h.port(), post_message(valid_message(), "/v1/messages?stream=1"));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("retry-after"), "7");
  EXPECT_EQ(error_of(r), "slow down");
}

TEST(HttpServerTest, AnErrorAfterTheStreamBeganIsAnErrorEvent) {
  Harness h(local_options(), [](MessageRequest m) -> asio::awaitable<MessageResponse> {
    m.emit("partial", false);
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex);
    timer.expires_after(milliseconds(50));
    co_await timer.async_wait(asio::use_awaitable);
    co_return MessageResponse{500, {{"error", "storage failed"}}, {}};
  });
  ASSERT_TRUE(h.server().start().ok());
  const auto r = fetch(h.port(), post_message(valid_message(), "/v1/messages?stream=1"));
  EXPECT_EQ(r.status, 200) << "the status went out with the first text";
  const json e = last_event(r.body, "error");
  EXPECT_EQ(e["error"], "storage failed");
  EXPECT_EQ(e["status"], 500);
}

TEST(HttpServerTest, EachBadFieldIsA400NamingIt) {
  std::atomic<int> calls{0};
  Harness h(local_options(), echo_handler(&calls));
  ASSERT_TRUE(h.server().start().ok());

  struct Case {
    std::string what;
    json body;
    std::vector<std::string> expected;  // substrings of the error
  };
  auto without = [](const char* key) {
    json j = valid_message();
    j.erase(key);
    return j;
  };
  auto with = [](const char* key, json value) {
    json j = valid_message();
    j[key] = std::move(value);
    return j;
  };
  const std::vector<Case> cases = {
      {"no conversation", without("conversation"), {"\"conversation\"", "required"}},
      {"numeric conversation", with("conversation", 7), {"\"conversation\"", "string", "number"}},
      {"empty conversation", with("conversation", ""), {"\"conversation\"", "empty"}},
      {"long conversation",
       with("conversation", std::string(300, 'c')),
       {"\"conversation\"", "at most 256"}},
      {"no user", without("user"), {"\"user\"", "required"}},
      {"array user", with("user", json::array({"u"})), {"\"user\"", "string", "array"}},
      {"no text", without("text"), {"\"text\"", "required"}},
      {"null text", with("text", nullptr), {"\"text\"", "string", "null"}},
      {"object text", with("text", json::object()), {"\"text\"", "string", "object"}},
      {"empty text", with("text", ""), {"\"text\"", "empty"}},
      {"blank text", with("text", " \n\t "), {"\"text\"", "empty"}},
      {"numeric id", with("id", 5), {"\"id\"", "string", "number"}},
      {"empty id", with("id", ""), {"\"id\"", "empty"}},
      {"an array body", json::array({1, 2}), {"JSON object", "array"}},
      {"a string body", json("hi"), {"JSON object", "string"}},
      {"two bad fields",
       json{{"conversation", 1}, {"user", "u"}},
       {"\"conversation\"", "\"text\""}},
  };
  for (const auto& c : cases) {
    const auto r = fetch(h.port(), post_message(c.body));
    EXPECT_EQ(r.status, 400) << c.what;
    EXPECT_EQ(r.header("content-type"), "application/json") << c.what;
    for (const auto& s : c.expected) EXPECT_THAT(error_of(r), HasSubstr(s)) << c.what;
  }
  Call empty = post_message(json());
  empty.body = "";
  const auto r = fetch(h.port(), empty);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(error_of(r), HasSubstr("empty"));
  // Nesting as deep as the body limit allows: no recursion on the server's stack.
  Call deep = post_message(json());
  deep.body = std::string(32000, '[') + std::string(32000, ']');
  const auto d = fetch(h.port(), deep);
  EXPECT_EQ(d.status, 400);
  EXPECT_THAT(error_of(d), HasSubstr("array"));
  EXPECT_EQ(calls, 0);
}

TEST(HttpServerTest, MalformedJsonIsA400NamingTheByteOffset) {
  Harness h(local_options());
  ASSERT_TRUE(h.server().start().ok());
  for (const std::string text :
       {R"({"conversation": "c", "user": tru})", R"({"a": 1,)", "{\"text\": \"\xff\"}"}) {
    size_t expected_byte = 0;
    try {
      const json parsed = json::parse(text);
      FAIL() << "parses: " << parsed.dump();
    } catch (const json::parse_error& e) {
      expected_byte = e.byte;
    }
    Call c = post_message(json());
    c.body = text;
    const auto r = fetch(h.port(), c);
    EXPECT_EQ(r.status, 400) << text;
    EXPECT_THAT(error_of(r), HasSubstr(fmt::format("malformed JSON at byte {}", expected_byte)))
        << text;
    EXPECT_THAT(error_of(r), Not(HasSubstr("last read"))) << error_of(r);
  }
}

TEST(HttpServerTest, OversizeBodyIs413) {
  HttpServerOptions o = local_options();
  o.body_limit = 4096;
  std::atomic<int> calls{0};
  Harness h(o, echo_handler(&calls));
  ASSERT_TRUE(h.server().start().ok());

  json big = valid_message();
  big["text"] = std::string(8000, 'x');
  // curl sends `Expect: 100-continue` for a body this size: the 413 comes before the body.
  const auto with_expect = fetch(h.port(), post_message(big));
  EXPECT_EQ(with_expect.code, CURLE_OK);
  EXPECT_EQ(with_expect.status, 413);
  EXPECT_THAT(error_of(with_expect), HasSubstr("4096"));
  EXPECT_LT(with_expect.elapsed, milliseconds(900));  // curl did not wait for a 100

  // The body sent at once (no Expect).
  Call no_expect = post_message(big);
  no_expect.headers.emplace_back("Expect:");
  const auto sent = fetch(h.port(), no_expect);
  EXPECT_EQ(sent.code, CURLE_OK);
  EXPECT_EQ(sent.status, 413);

  // Just under the limit: accepted, and quickly (100-continue answered).
  json fits = valid_message();
  fits["text"] = std::string(3000, 'y');
  const auto ok = fetch(h.port(), post_message(fits));
  EXPECT_EQ(ok.status, 200);
  EXPECT_LT(ok.elapsed, milliseconds(900));
  EXPECT_EQ(calls, 1);
}

TEST(HttpServerTest, BearerTokenGuardsEveryRouteButHealthz) {
  LogCapture logs;
  std::vector<HttpResult> all;
  {
    HttpServerOptions o = local_options();
    o.bearer_token = kToken;
    std::atomic<int> calls{0};
    Harness h(o, echo_handler(&calls));
    ASSERT_TRUE(h.server().start().ok());
    const std::string good = fmt::format("Authorization: Bearer {}", kToken);

    Call none = post_message(valid_message());
    all.push_back(fetch(h.port(), none));
    EXPECT_EQ(all.back().status, 401);
    EXPECT_EQ(all.back().header("www-authenticate"), "Bearer");

    for (const std::string& bad :
         {fmt::format("Authorization: Bearer {}x", kToken),
          std::string("Authorization: Bearer wrong"),
          fmt::format("Authorization: Basic {}", kToken), fmt::format("Authorization: {}", kToken),
          std::string("Authorization: Bearer ")}) {
      Call c = post_message(valid_message());
      c.headers.push_back(bad);
      all.push_back(fetch(h.port(), c));
      EXPECT_EQ(all.back().status, 401) << bad;
      EXPECT_EQ(all.back().header("www-authenticate"), "Bearer") << bad;
    }
    EXPECT_EQ(calls, 0);

    Call right = post_message(valid_message());
    right.headers.push_back(good);
    all.push_back(fetch(h.port(), right));
    EXPECT_EQ(all.back().status, 200);
    Call lower = post_message(valid_message());
    lower.headers.push_back(fmt::format("authorization: bearer {}", kToken));
    all.push_back(fetch(h.port(), lower));
    EXPECT_EQ(all.back().status, 200);
    EXPECT_EQ(calls, 2);

    all.push_back(fetch(h.port(), Call{"GET", "/healthz", {}, {}}));
    EXPECT_EQ(all.back().status, 200);
    all.push_back(fetch(h.port(), Call{"GET", "/readyz", {}, {}}));
    EXPECT_EQ(all.back().status, 401);
    all.push_back(fetch(h.port(), Call{"GET", "/readyz", {}, {good}}));
    EXPECT_EQ(all.back().status, 200);
    // An unknown path does not say it is unknown to a stranger.
    all.push_back(fetch(h.port(), Call{"GET", "/admin", {}, {}}));
    EXPECT_EQ(all.back().status, 401);
  }
  for (const auto& r : all) {
    EXPECT_THAT(r.body, Not(HasSubstr(kToken)));
    for (const auto& [name, value] : r.headers) EXPECT_THAT(value, Not(HasSubstr(kToken)));
  }
  const std::string text = logs.text();
  EXPECT_THAT(text, HasSubstr("POST /v1/messages 401"));
  EXPECT_THAT(text, HasSubstr("POST /v1/messages 200"));
  EXPECT_THAT(text, HasSubstr("GET /healthz 200"));
  EXPECT_THAT(text, HasSubstr("(bearer token required)"));
  EXPECT_THAT(text, Not(HasSubstr(kToken)));
  EXPECT_THAT(text, Not(HasSubstr("hello there")));  // no bodies either
}

TEST(HttpServerTest, HealthzAlwaysOkReadyzFollowsTheReadyCheck) {
  std::atomic<bool> ready{false};
  Harness h(local_options(), echo_handler(), [&ready] { return ready.load(); });
  ASSERT_TRUE(h.server().start().ok());
  const auto health = fetch(h.port(), Call{"GET", "/healthz", {}, {}});
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.json(), json({{"status", "ok"}}));
  const auto not_ready = fetch(h.port(), Call{"GET", "/readyz", {}, {}});
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_EQ(not_ready.header("content-type"), "application/json");
  ready = true;
  const auto now_ready = fetch(h.port(), Call{"GET", "/readyz", {}, {}});
  EXPECT_EQ(now_ready.status, 200);
  EXPECT_EQ(now_ready.json()["status"], "ready");
}

TEST(HttpServerTest, ReadyzIs503WhenTheCheckThrows) {
  Harness h(local_options(), echo_handler(), []() -> bool { throw std::runtime_error("db gone"); });
  ASSERT_TRUE(h.server().start().ok());
  EXPECT_EQ(fetch(h.port(), Call{"GET", "/readyz", {}, {}}).status, 503);
}

TEST(HttpServerTest, UnknownPathIs404Json) {
  Harness h(local_options());
  ASSERT_TRUE(h.server().start().ok());
  for (const std::string path :
       {"/", "/v1/message", "/v1/messages/", "/healthz/x", "/v2/messages"}) {
    const auto r = fetch(h.port(), Call{"GET", path, {}, {}});
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_THAT(error_of(r), HasSubstr("no route")) << path;
  }
  EXPECT_EQ(fetch(h.port(), post_message(valid_message(), "/v1/nope")).status, 404);
}

TEST(HttpServerTest, WrongMethodIs405WithAllow) {
  Harness h(local_options());
  ASSERT_TRUE(h.server().start().ok());
  struct Case {
    const char* method;
    const char* path;
    const char* allow;
  };
  for (const auto& c : {Case{"GET", "/v1/messages", "POST"}, Case{"PUT", "/v1/messages", "POST"},
                        Case{"POST", "/healthz", "GET"}, Case{"DELETE", "/readyz", "GET"}}) {
    const auto r = fetch(h.port(), Call{c.method, c.path, {}, {}});
    EXPECT_EQ(r.status, 405) << c.method << " " << c.path;
    EXPECT_EQ(r.header("allow"), c.allow) << c.method << " " << c.path;
    EXPECT_THAT(error_of(r), HasSubstr(c.method));
  }
}

asio::awaitable<MessageResponse> failing_turn(MessageRequest m) {
  if (m.text == "throw") throw std::runtime_error("boom in the turn");
  MessageResponse r;
  r.status = 42;  // not an HTTP status
  co_return r;
}

TEST(HttpServerTest, AHandlerThatThrowsIs500AndLogged) {
  LogCapture logs;
  {
    MessageHandler handler = [](MessageRequest m) -> asio::awaitable<MessageResponse> {
      if (m.text == "throw before") throw std::logic_error("boom before the coroutine");
      return failing_turn(std::move(m));
    };
    Harness h(local_options(), std::move(handler));
    ASSERT_TRUE(h.server().start().ok());
    for (const std::string text : {"throw", "throw before", "bad status"}) {
      json body = valid_message();
      body["text"] = text;
      const auto r = fetch(h.port(), post_message(body));
      EXPECT_EQ(r.status, 500) << text;
      EXPECT_EQ(r.json(), json({{"error", "internal error"}})) << text;
    }
    EXPECT_EQ(fetch(h.port(), Call{"GET", "/healthz", {}, {}}).status, 200);  // still serving
  }
  const std::string text = logs.text();
  EXPECT_THAT(text, HasSubstr("boom in the turn"));
  EXPECT_THAT(text, HasSubstr("boom before the coroutine"));
  EXPECT_THAT(text, HasSubstr("status 42"));
}

TEST(HttpServerTest, AHandlerBeyondTurnTimeoutIs504) {
  HttpServerOptions o = local_options();
  o.turn_timeout = seconds(1);
  std::atomic<bool> release{false};
  Harness h(o, gated_handler(release));
  ASSERT_TRUE(h.server().start().ok());
  const parley::testing::CurlEasy conn = parley::testing::make_curl_easy();
  const auto r = fetch(h.port(), post_message(valid_message()), conn.get());
  EXPECT_EQ(r.status, 504);
  EXPECT_THAT(error_of(r), HasSubstr("1 s"));
  EXPECT_GE(r.elapsed, milliseconds(900));
  EXPECT_LT(r.elapsed, milliseconds(5000));
  // The late handler still counts until it returns; the connection keeps serving meanwhile.
  EXPECT_EQ(h.server().active_requests(), 1u);
  const auto next = fetch(h.port(), Call{"GET", "/healthz", {}, {}}, conn.get());
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.new_connections, 0);
  release = true;
  EXPECT_TRUE(wait_until([&] { return h.server().active_requests() == 0; }));
}

TEST(HttpServerTest, KeepAliveServesRequestsOnOneConnection) {
  Harness h(local_options());
  ASSERT_TRUE(h.server().start().ok());
  parley::testing::CurlEasy conn = parley::testing::make_curl_easy();
  const auto a = fetch(h.port(), post_message(valid_message()), conn.get());
  const auto b = fetch(h.port(), post_message(valid_message()), conn.get());
  const auto c = fetch(h.port(), Call{"GET", "/nope", {}, {}}, conn.get());
  const auto d = fetch(h.port(), Call{"GET", "/healthz", {}, {}}, conn.get());
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(c.status, 404);
  EXPECT_EQ(d.status, 200);
  EXPECT_EQ(a.new_connections, 1);
  EXPECT_EQ(b.new_connections, 0);
  EXPECT_EQ(c.new_connections, 0);
  EXPECT_EQ(d.new_connections, 0);
  EXPECT_EQ(h.server().open_connections(), 1u);
  conn.reset();
  EXPECT_TRUE(wait_until([&] { return h.server().open_connections() == 0; }));
}

TEST(HttpServerTest, StopLetsTheRequestInFlightFinishAndRefusesNewConnections) {
  std::atomic<bool> release{false};
  Harness h(local_options(), gated_handler(release));
  ASSERT_TRUE(h.server().start().ok());
  const uint16_t port = h.port();

  // An idle keep-alive connection: closed by stop().
  const parley::testing::CurlEasy idle = parley::testing::make_curl_easy();
  EXPECT_EQ(fetch(port, Call{"GET", "/healthz", {}, {}}, idle.get()).status, 200);
  // (The answer reaches curl before the server counts the request done.)
  ASSERT_TRUE(wait_until(
      [&] { return h.server().open_connections() == 1 && h.server().active_requests() == 0; }));

  HttpResult in_flight;
  std::thread client([&] { in_flight = fetch(port, post_message(valid_message())); });
  ASSERT_TRUE(wait_until([&] { return h.server().active_requests() == 1; }));
  EXPECT_EQ(h.server().open_connections(), 2u);

  h.server().stop();
  h.server().stop();  // idempotent

  // No new request is served; soon connections are refused outright.
  bool refused = false;
  const auto until = SteadyClock::now() + seconds(5);
  while (!refused && SteadyClock::now() < until) {
    const auto r = fetch(port, Call{"GET", "/healthz", {}, {}});
    EXPECT_NE(r.code, CURLE_OK) << "served after stop(): " << r.status;
    refused = r.code == CURLE_COULDNT_CONNECT;
  }
  EXPECT_TRUE(refused);
  EXPECT_TRUE(wait_until([&] { return h.server().open_connections() == 1; }))
      << "the idle connection is still open";
  EXPECT_EQ(h.server().active_requests(), 1u);

  release = true;
  client.join();
  EXPECT_EQ(in_flight.code, CURLE_OK);
  EXPECT_EQ(in_flight.status, 200);
  EXPECT_EQ(in_flight.json().value("reply", ""), "echo: hello there");
  EXPECT_EQ(in_flight.header("connection"), "close");
  EXPECT_TRUE(wait_until(
      [&] { return h.server().open_connections() == 0 && h.server().active_requests() == 0; }));
}

TEST(HttpServerTest, ANonLoopbackHostWithoutATokenRefusesToStart) {
  asio::io_context ioc;
  for (const std::string host : {"0.0.0.0", "::", "192.0.2.1"}) {
    HttpServerOptions o = local_options();
    o.host = host;
    HttpServer server(ioc.get_executor(), o, echo_handler(), {});
    const Status s = server.start();
    ASSERT_FALSE(s.ok()) << host;
    EXPECT_EQ(s.error().code, ErrorCode::invalid_argument) << host;
    EXPECT_THAT(s.error().message, HasSubstr(host));
    EXPECT_THAT(s.error().message, HasSubstr("loopback"));
    EXPECT_THAT(s.error().message, HasSubstr("bearer token"));
  }
  // With a token the check passes (here the bind then fails: 192.0.2.1 is no local address).
  {
    HttpServerOptions o = local_options();
    o.host = "192.0.2.1";
    o.bearer_token = kToken;
    HttpServer server(ioc.get_executor(), o, echo_handler(), {});
    const Status s = server.start();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::unavailable);
    EXPECT_THAT(s.error().message, HasSubstr("192.0.2.1"));
    EXPECT_THAT(s.error().message, Not(HasSubstr(kToken)));
  }
  // Loopback in every spelling needs no token.
  for (const std::string host : {"127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"}) {
    HttpServerOptions o = local_options();
    o.host = host;
    HttpServer server(ioc.get_executor(), o, echo_handler(), {});
    const Status s = server.start();
    EXPECT_TRUE(s.ok()) << host << ": " << (s.ok() ? "" : s.error().message);
    EXPECT_NE(server.port(), 0) << host;
  }
}

TEST(HttpServerTest, APortInUseIsAClearError) {
  Harness first(local_options());
  ASSERT_TRUE(first.server().start().ok());
  HttpServerOptions o = local_options();
  o.port = first.port();
  HttpServer second(first.executor(), o, echo_handler(), {});
  const Status s = second.start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::unavailable);
  EXPECT_THAT(s.error().message, HasSubstr(fmt::format("127.0.0.1:{}", first.port())));
  EXPECT_THAT(s.error().message, HasSubstr("in use"));
  EXPECT_EQ(fetch(first.port(), Call{"GET", "/healthz", {}, {}}).status, 200);
}

TEST(HttpServerTest, StartTwiceOrAfterStopFails) {
  asio::io_context ioc;
  HttpServer a(ioc.get_executor(), local_options(), echo_handler(), {});
  ASSERT_TRUE(a.start().ok());
  EXPECT_FALSE(a.start().ok());
  HttpServer b(ioc.get_executor(), local_options(), echo_handler(), {});
  b.stop();
  EXPECT_FALSE(b.start().ok());
}

TEST(HttpServerTest, ARequestNotReadWithinReadTimeoutIsDropped) {
  HttpServerOptions o = local_options();
  o.read_timeout = seconds(1);
  std::atomic<int> calls{0};
  Harness h(o, echo_handler(&calls));
  ASSERT_TRUE(h.server().start().ok());
  // Headers promise 100 bytes; 1 arrives.
  const auto partial = raw_exchange(
      h.port(), "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
      milliseconds(5000));
  EXPECT_TRUE(partial.closed);
  EXPECT_GE(partial.elapsed, milliseconds(900));
  EXPECT_EQ(partial.received, "");
  // An idle connection too.
  const auto idle = raw_exchange(h.port(), "", milliseconds(5000));
  EXPECT_TRUE(idle.closed);
  EXPECT_GE(idle.elapsed, milliseconds(900));
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(wait_until([&] { return h.server().open_connections() == 0; }));
}

TEST(HttpServerTest, MalformedHttpIs400AndCloses) {
  Harness h(local_options());
  ASSERT_TRUE(h.server().start().ok());
  const auto r = raw_exchange(h.port(), "GARBAGE\r\n\r\n", milliseconds(5000));
  EXPECT_TRUE(r.closed);
  EXPECT_THAT(r.received, HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(r.received, HasSubstr("malformed HTTP request"));
  EXPECT_THAT(r.received, HasSubstr("application/json"));
}

TEST(HttpServerTest, ManyConcurrentRequests) {
  Harness h(local_options());
  ASSERT_TRUE(h.server().start().ok());
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      json body = valid_message();
      body["conversation"] = fmt::format("c-{}", i);
      for (int k = 0; k < 10; ++k) {
        const auto r = fetch(h.port(), post_message(body));
        if (r.status == 200 && r.json()["conversation"] == body["conversation"]) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok, 80);
}

}  // namespace http_server_test
}  // namespace parley::bot::channels
