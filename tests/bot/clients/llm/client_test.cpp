// LlmClient against the fake OpenAI-compatible endpoint: replies, streaming, tool calls,
// every fault kind, retries, fallbacks, the deadline, usage of failed calls, secrets.
#include "parley/bot/clients/llm/client.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <sstream>
#include <thread>

#include "fakes/fake_llm.h"
#include "support/temp_dir.h"

namespace parley::bot::llm {
namespace client_test {

using fakes::FakeLlmServer;
using fakes::FakeReply;
using fakes::FakeToolCall;
using fakes::FakeUsage;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kKey = "sk-test-SECRET-0123456789";

class ClientTest : public ::testing::Test {
 protected:
  ClientTest() : work_(net::asio::make_work_guard(ioc_)), multi_(ioc_.get_executor()) {
    thread_ = std::thread([this] { ioc_.run(); });
    settings_.provider = "fake";
    settings_.providers["fake"] =
        ProviderConfig{"fake", fake_.base_url(), "FAKE_KEY", {{"X-Title", "parley-test"}}};
    settings_.roles["smart"] = {ModelRef{"", "model-a"}, ModelRef{"", "model-b"}};
    settings_.roles["solo"] = {ModelRef{"", "model-a"}};
    settings_.timeouts.first_byte = milliseconds(2000);
    settings_.timeouts.idle = milliseconds(500);
    settings_.retry.base_backoff = milliseconds(20);
    settings_.retry.max_backoff = milliseconds(2000);
  }
  ~ClientTest() override {
    multi_.shutdown();
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  LlmClient& client() {
    if (!client_) {
      auto resolved =
          resolve_llm(settings_, [](const std::string& name) -> std::optional<std::string> {
            if (name == "FAKE_KEY") return std::string(kKey);
            return std::nullopt;
          });
      client_ = std::make_unique<LlmClient>(multi_, std::move(resolved),
                                            [this](const CallOptions&, const Attempt& a) {
                                              std::lock_guard lock(observed_mu_);
                                              observed_.push_back(a);
                                            });
    }
    return *client_;
  }

  LlmResponse call(ChatRequest req, CallOptions opts = {}) {
    std::promise<LlmResponse> p;
    auto f = p.get_future();
    client().call(std::move(req), std::move(opts), ioc_.get_executor(),
                  [&p](LlmResponse r) { p.set_value(std::move(r)); });
    return f.get();
  }

  static ChatRequest hello(bool stream = true) {
    ChatRequest r;
    r.messages = {Message::system("be brief"), Message::user("hello")};
    r.stream = stream;
    return r;
  }
  static CallOptions role(const std::string& name) {
    CallOptions o;
    o.role = name;
    return o;
  }

  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  http::CurlMulti multi_;
  std::thread thread_;
  FakeLlmServer fake_;
  LlmSettings settings_;
  std::unique_ptr<LlmClient> client_;
  std::mutex observed_mu_;
  std::vector<Attempt> observed_;
};

TEST_F(ClientTest, NonStreamedReplyWithUsageAndGenerationId) {
  FakeUsage u;
  u.prompt_tokens = 30;
  u.completion_tokens = 7;
  u.cached_tokens = 10;
  u.reasoning_tokens = 2;
  u.cost = 0.00042;
  auto reply = FakeReply::text("Hello there.", u);
  reply.generation_id = "gen-abc";
  reply.model = "model-a-2025";
  fake_.push(reply);
  auto r = call(hello(false));
  ASSERT_TRUE(r.ok()) << r.error->describe();
  EXPECT_EQ(r.result->content, "Hello there.");
  EXPECT_EQ(r.result->finish_reason, "stop");
  EXPECT_EQ(r.result->model, "model-a-2025");
  ASSERT_EQ(r.attempts.size(), 1u);
  const auto& a = r.answered();
  EXPECT_EQ(a.model_asked, "model-a");
  EXPECT_EQ(a.model_answered, "model-a-2025");
  EXPECT_EQ(a.generation_id, "gen-abc");
  EXPECT_EQ(a.http_status, 200);
  EXPECT_EQ(a.usage.prompt_tokens, 30);
  EXPECT_EQ(a.usage.completion_tokens, 7);
  EXPECT_EQ(a.usage.cached_tokens, 10);
  EXPECT_EQ(a.usage.reasoning_tokens, 2);
  ASSERT_TRUE(a.usage.cost_usd.has_value());
  EXPECT_DOUBLE_EQ(*a.usage.cost_usd, 0.00042);
  EXPECT_FALSE(a.usage.estimated);
  EXPECT_GT(a.latency.count(), 0);
}

TEST_F(ClientTest, StreamedReplyArrivesInPiecesAndWhole) {
  FakeUsage u;
  u.cost = 0.001;
  auto reply = FakeReply::text("The quick brown fox jumps over the lazy dog, twice.", u);
  reply.delta_chars = 3;
  reply.write_bytes = 5;  // lines and events split across reads
  fake_.push(reply);
  std::string streamed;
  CallOptions opts;
  opts.on_text = [&streamed](int attempt, std::string_view text) {
    EXPECT_EQ(attempt, 0);
    streamed += text;
  };
  auto r = call(hello(), opts);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  EXPECT_EQ(r.result->content, "The quick brown fox jumps over the lazy dog, twice.");
  EXPECT_EQ(streamed, r.result->content);
  ASSERT_TRUE(r.answered().usage.cost_usd);
  EXPECT_DOUBLE_EQ(*r.answered().usage.cost_usd, 0.001);
  EXPECT_FALSE(r.answered().usage.estimated);
}

TEST_F(ClientTest, StreamWithoutUsageGetsAnEstimateMarkedEstimated) {
  auto reply = FakeReply::text("twelve chars");
  reply.usage.reset();
  fake_.push(reply);
  auto r = call(hello());
  ASSERT_TRUE(r.ok()) << r.error->describe();
  const auto& u = r.answered().usage;
  EXPECT_TRUE(u.estimated);
  EXPECT_GT(u.prompt_tokens, 0);
  EXPECT_EQ(u.completion_tokens, 3);
  EXPECT_FALSE(u.cost_usd);
  EXPECT_TRUE(r.total_usage().estimated);
}

TEST_F(ClientTest, StreamedToolCallsAreMergedPerIndex) {
  fake_.push(FakeReply::tools({{"call_1", "calc", R"({"expr": "123*456"})"},
                               {"call_2", "memory", R"({"action": "recall", "query": "pizza"})"}}));
  auto r = call(hello());
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.result->tool_calls.size(), 2u);
  EXPECT_EQ(r.result->tool_calls[0].id, "call_1");
  EXPECT_EQ(r.result->tool_calls[0].name, "calc");
  EXPECT_EQ(r.result->tool_calls[0].arguments, R"({"expr": "123*456"})");
  EXPECT_EQ(r.result->tool_calls[1].name, "memory");
  EXPECT_EQ(r.result->finish_reason, "tool_calls");
}

TEST_F(ClientTest, ToolCallsOnIndexZeroAreSplitByTheirIds) {
  auto reply = FakeReply::tools({{"call_a", "time", R"({"zone": "UTC"})"},
                                 {"call_b", "time", R"({"zone": "Europe/Paris"})"}});
  reply.reuse_index0 = true;
  fake_.push(reply);
  auto r = call(hello());
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.result->tool_calls.size(), 2u);
  EXPECT_EQ(r.result->tool_calls[0].arguments, R"({"zone": "UTC"})");
  EXPECT_EQ(r.result->tool_calls[1].arguments, R"({"zone": "Europe/Paris"})");
}

TEST_F(ClientTest, NonStreamedToolCalls) {
  fake_.push(FakeReply::tools({{"c1", "calc", R"({"expr":"1+1"})"}, {"c2", "todo", "{}"}}));
  auto r = call(hello(false));
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.result->tool_calls.size(), 2u);
  EXPECT_EQ(r.result->tool_calls[1].id, "c2");
  EXPECT_EQ(r.result->tool_calls[1].name, "todo");
}

TEST_F(ClientTest, RequestCarriesEveryFieldKeyAndHeaders) {
  settings_.model_options["model-a"] = {{"temperature", 0.1}, {"top_p", 0.9}};
  ChatRequest req = hello();
  req.messages.push_back(Message::assistant("", {{"call_1", "calc", R"({"expr":"2+2"})"}}));
  req.messages.push_back(Message::tool("call_1", "4"));
  req.tools.push_back(
      {"calc", "arithmetic",
       nlohmann::json{{"type", "object"}, {"properties", {{"expr", {{"type", "string"}}}}}}});
  req.tool_choice = "auto";
  req.max_tokens = 256;
  req.temperature = 0.5;
  req.stop = {"\n\n"};
  req.response_format = {{"type", "json_object"}};
  auto r = call(req);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(fake_.request_count(), 1u);
  const auto got = fake_.requests().front();
  EXPECT_EQ(got.method, "POST");
  EXPECT_EQ(got.target, "/v1/chat/completions");
  EXPECT_EQ(got.headers.at("authorization"), std::string("Bearer ") + kKey);
  EXPECT_EQ(got.headers.at("x-title"), "parley-test");
  EXPECT_EQ(got.headers.at("content-type"), "application/json");
  const auto& j = got.json;
  EXPECT_EQ(j["model"], "model-a");
  EXPECT_EQ(j["stream"], true);
  EXPECT_EQ(j["stream_options"]["include_usage"], true);
  EXPECT_EQ(j["messages"][0]["role"], "system");
  EXPECT_EQ(j["messages"][1]["content"], "hello");
  EXPECT_EQ(j["messages"][2]["tool_calls"][0]["function"]["arguments"], R"({"expr":"2+2"})");
  EXPECT_EQ(j["messages"][3]["role"], "tool");
  EXPECT_EQ(j["messages"][3]["tool_call_id"], "call_1");
  EXPECT_EQ(j["tools"][0]["function"]["parameters"]["type"], "object");
  EXPECT_EQ(j["tool_choice"], "auto");
  EXPECT_EQ(j["max_tokens"], 256);
  EXPECT_EQ(j["temperature"], 0.5);  // the request wins over the model's option
  EXPECT_EQ(j["top_p"], 0.9);        // the model's option is kept
  EXPECT_EQ(j["stop"][0], "\n\n");
  EXPECT_EQ(j["response_format"]["type"], "json_object");
}

TEST_F(ClientTest, RateLimitedRetriesAfterRetryAfter) {
  fake_.push(FakeReply::error(429, 1));
  fake_.push(FakeReply::text("after the wait"));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call(hello(), role("solo"));
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << r.error->describe();
  EXPECT_EQ(r.result->content, "after the wait");
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].failure, FailureKind::rate_limited);
  EXPECT_EQ(r.attempts[0].http_status, 429);
  ASSERT_TRUE(r.attempts[0].retry_after);
  EXPECT_EQ(r.attempts[0].retry_after->count(), 1000);
  EXPECT_GE(waited, milliseconds(990));
  const auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_GE(reqs[1].received - reqs[0].received, milliseconds(990));
}

TEST_F(ClientTest, RateLimitedWithoutRetryAfterBacksOffAndIsBounded) {
  settings_.retry.max_attempts = 3;
  for (int i = 0; i < 3; ++i) fake_.push(FakeReply::error(429));
  auto r = call(hello(), role("solo"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.attempts.size(), 3u);
  EXPECT_EQ(r.failure, FailureKind::rate_limited);
  EXPECT_EQ(r.error->code, ErrorCode::resource_exhausted);
  EXPECT_THAT(r.error->message, HasSubstr("429"));
  EXPECT_THAT(r.error->message, HasSubstr("model-a"));
  EXPECT_THAT(r.error->message, HasSubstr("127.0.0.1"));
  const auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  // Back-off: base 20 ms, then 40 ms, each at least half of it.
  EXPECT_GE(reqs[1].received - reqs[0].received, milliseconds(10));
  EXPECT_GE(reqs[2].received - reqs[1].received, milliseconds(20));
}

TEST_F(ClientTest, ServerErrorsAreRetriedThenTheNextModelAnswers) {
  settings_.retry.max_attempts = 2;
  fake_.set_handler([](const fakes::RecordedRequest& req) -> std::optional<FakeReply> {
    if (req.json["model"] == "model-a") return FakeReply::error(503);
    return FakeReply::text("from b");
  });
  auto r = call(hello());
  ASSERT_TRUE(r.ok()) << r.error->describe();
  EXPECT_EQ(r.result->content, "from b");
  ASSERT_EQ(r.attempts.size(), 3u);
  EXPECT_EQ(r.attempts[0].failure, FailureKind::server_error);
  EXPECT_EQ(r.attempts[1].failure, FailureKind::server_error);
  EXPECT_EQ(r.attempts[2].model_asked, "model-b");
  EXPECT_EQ(r.answered().model_answered, "model-b");
}

TEST_F(ClientTest, EachServerErrorStatusIsRetried) {
  for (int status : {500, 502, 503}) {
    fake_.push(FakeReply::error(status));
    fake_.push(FakeReply::text("ok"));
    auto r = call(hello(), role("solo"));
    ASSERT_TRUE(r.ok()) << status;
    ASSERT_EQ(r.attempts.size(), 2u) << status;
    EXPECT_EQ(r.attempts[0].failure, FailureKind::server_error) << status;
    EXPECT_EQ(r.attempts[0].usage.prompt_tokens, 0) << "an error reply consumed nothing";
    EXPECT_FALSE(r.attempts[0].usage.estimated);
  }
}

TEST_F(ClientTest, BillingIsNotRetriedButFallsBack) {
  fake_.push(FakeReply::error(402));
  fake_.push(FakeReply::text("b pays"));
  auto r = call(hello());
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].failure, FailureKind::billing);
  EXPECT_EQ(r.attempts[0].model_asked, "model-a");
  EXPECT_EQ(r.attempts[1].model_asked, "model-b");

  fake_.push(FakeReply::error(402));
  auto solo = call(hello(), role("solo"));
  ASSERT_FALSE(solo.ok());
  EXPECT_EQ(solo.attempts.size(), 1u);
  EXPECT_EQ(solo.error->code, ErrorCode::billing);
  EXPECT_EQ(solo.failure, FailureKind::billing);
}

TEST_F(ClientTest, ClientErrorsAreNeitherRetriedNorFallenBack) {
  const std::vector<std::pair<int, ErrorCode>> cases = {{400, ErrorCode::invalid_argument},
                                                        {401, ErrorCode::unauthenticated},
                                                        {403, ErrorCode::permission_denied},
                                                        {404, ErrorCode::not_found}};
  for (const auto& [status, code] : cases) {
    const size_t before = fake_.request_count();
    fake_.push(FakeReply::error(status));
    auto r = call(hello());
    ASSERT_FALSE(r.ok()) << status;
    EXPECT_EQ(r.attempts.size(), 1u) << status;
    EXPECT_EQ(fake_.request_count(), before + 1) << status;
    EXPECT_EQ(r.error->code, code) << status;
    EXPECT_THAT(r.error->message, HasSubstr(std::to_string(status)));
    EXPECT_THAT(r.error->message, HasSubstr("scripted error"));  // the provider's message
  }
}

TEST_F(ClientTest, StallBeforeHeadersIsAFirstByteTimeoutThenRetried) {
  settings_.timeouts.first_byte = milliseconds(300);
  auto stall = FakeReply::text("too late");
  stall.delay_before_headers = milliseconds(3000);
  fake_.push(stall);
  fake_.push(FakeReply::text("in time"));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call(hello(), role("solo"));
  ASSERT_TRUE(r.ok()) << r.error->describe();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(2500));
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].failure, FailureKind::first_byte_timeout);
  // The request reached the server: its prompt is counted, as an estimate.
  EXPECT_TRUE(r.attempts[0].usage.estimated);
  EXPECT_GT(r.attempts[0].usage.prompt_tokens, 0);
  EXPECT_EQ(r.result->content, "in time");
}

TEST_F(ClientTest, StallMidStreamIsAnIdleTimeoutWithPartialUsage) {
  settings_.retry.max_attempts = 1;
  auto reply = FakeReply::text("0123456789abcdefghij");
  reply.stall_after_events = 3;
  reply.stall = milliseconds(5000);
  fake_.push(reply);
  std::vector<int> attempts_seen;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call(hello(), role("solo"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(3000));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure, FailureKind::idle_timeout);
  EXPECT_EQ(r.error->code, ErrorCode::deadline_exceeded);
  const auto& u = r.attempts[0].usage;
  EXPECT_TRUE(u.estimated);
  EXPECT_GT(u.prompt_tokens, 0);
  EXPECT_GT(u.completion_tokens, 0);  // some text had arrived
}

TEST_F(ClientTest, TruncatedStreamIsRetriedAndTheRestartIsVisible) {
  auto cut = FakeReply::text("partial answer that never ends");
  cut.truncate_after_events = 3;
  fake_.push(cut);
  fake_.push(FakeReply::text("complete"));
  std::vector<std::pair<int, std::string>> pieces;
  CallOptions opts;
  opts.role = "solo";
  opts.on_text = [&pieces](int attempt, std::string_view t) { pieces.emplace_back(attempt, t); };
  auto r = call(hello(), opts);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].failure, FailureKind::connection);
  EXPECT_TRUE(r.attempts[0].usage.estimated);
  EXPECT_EQ(r.result->content, "complete");
  std::string second;
  for (const auto& [n, t] : pieces) {
    if (n == 1) second += t;
  }
  EXPECT_EQ(second, "complete");
  ASSERT_FALSE(pieces.empty());
  EXPECT_EQ(pieces.front().first, 0);
}

TEST_F(ClientTest, MalformedBodiesAreTheirOwnKind) {
  settings_.retry.max_attempts = 1;
  fake_.push(FakeReply::malformed());
  auto r = call(hello(false), role("solo"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure, FailureKind::malformed);
  EXPECT_THAT(r.error->message, HasSubstr("model-a"));

  auto bad_stream = FakeReply::malformed();  // the same bytes sent as a stream's body
  fake_.push(bad_stream);
  auto s = call(hello(true), role("solo"));
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.failure == FailureKind::malformed || s.failure == FailureKind::connection)
      << to_string(s.failure);
}

// A server that ignores "stream": true answers one application/json completion: it is read as
// one, its text reaching on_text once, instead of "the stream ended without any event" and a
// retry.
TEST_F(ClientTest, AServerThatIgnoresStreamTrueIsReadAsAPlainCompletion) {
  FakeUsage u;
  u.prompt_tokens = 21;
  u.completion_tokens = 4;
  auto reply = FakeReply::text("Plain, not streamed.", u);
  reply.ignore_stream = true;
  reply.headers["Content-Type"] = "application/json; charset=utf-8";
  fake_.push(reply);
  std::vector<std::string> pieces;
  CallOptions opts = role("solo");
  opts.on_text = [&pieces](int attempt, std::string_view text) {
    EXPECT_EQ(attempt, 0);
    pieces.emplace_back(text);
  };
  auto r = call(hello(true), opts);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  EXPECT_EQ(r.result->content, "Plain, not streamed.");
  EXPECT_EQ(r.result->finish_reason, "stop");
  EXPECT_EQ(pieces, std::vector<std::string>{"Plain, not streamed."});
  ASSERT_EQ(r.attempts.size(), 1u) << "not retried";
  EXPECT_EQ(r.answered().usage.prompt_tokens, 21);
  EXPECT_FALSE(r.answered().usage.estimated);
  EXPECT_EQ(fake_.requests().at(0).json["stream"], true) << "it did ask for a stream";

  // Tool calls come through the same way.
  auto tools = FakeReply::tools({{"call_1", "calc", R"({"expression": "2+2"})"}});
  tools.ignore_stream = true;
  fake_.push(tools);
  auto t = call(hello(true), role("solo"));
  ASSERT_TRUE(t.ok()) << t.error->describe();
  ASSERT_EQ(t.result->tool_calls.size(), 1u);
  EXPECT_EQ(t.result->tool_calls[0].name, "calc");
}

TEST_F(ClientTest, AnHtmlPageWithStatus200IsMalformedAndNamesItsContentType) {
  settings_.retry.max_attempts = 1;
  FakeReply page;
  page.ignore_stream = true;
  page.raw_body = "<!DOCTYPE html><html><body>Welcome to nginx!</body></html>";
  page.headers["Content-Type"] = "text/html; charset=utf-8";
  fake_.push(page);
  auto r = call(hello(true), role("solo"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure, FailureKind::malformed);
  EXPECT_THAT(r.error->message, HasSubstr("Content-Type 'text/html'"));
  EXPECT_THAT(r.error->message, HasSubstr("Welcome to nginx"));
  EXPECT_THAT(r.error->message, Not(HasSubstr("without any event")));
}

TEST_F(ClientTest, InBandErrorAfter200IsRetried) {
  auto reply = FakeReply::text("partial then boom");
  reply.error_event_after_events = 2;
  reply.error_event_code = 502;
  fake_.push(reply);
  fake_.push(FakeReply::text("recovered"));
  auto r = call(hello(), role("solo"));
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].failure, FailureKind::server_error);
  EXPECT_THAT(r.attempts[0].error, HasSubstr("error event in the stream"));
  EXPECT_EQ(r.attempts[0].http_status, 200);
  EXPECT_EQ(r.result->content, "recovered");
}

TEST_F(ClientTest, InBandRateLimitIsRateLimited) {
  settings_.retry.max_attempts = 1;
  auto reply = FakeReply::text("x");
  reply.error_event_after_events = 0;
  reply.error_event_code = 429;
  fake_.push(reply);
  auto r = call(hello(), role("solo"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure, FailureKind::rate_limited);
}

TEST_F(ClientTest, OneDeadlineCoversEveryRetryAndFallback) {
  settings_.retry.max_attempts = 5;
  settings_.retry.max_backoff = milliseconds(5000);
  fake_.set_handler([](const fakes::RecordedRequest&) -> std::optional<FakeReply> {
    return FakeReply::error(429, 1);
  });
  CallOptions opts;
  opts.deadline = std::chrono::steady_clock::now() + milliseconds(1500);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call(hello(), opts);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_LT(took, milliseconds(2500));
  // model-a at 0 s and 1 s; a third wait would pass the deadline, so model-b once.
  EXPECT_LE(r.attempts.size(), 4u);
}

TEST_F(ClientTest, DeadlineCutsALongStream) {
  auto slow = FakeReply::text("a slow answer arriving piece by piece");
  slow.delta_chars = 1;
  slow.interval = milliseconds(100);
  fake_.push(slow);
  CallOptions opts;
  opts.role = "solo";
  opts.deadline = std::chrono::steady_clock::now() + milliseconds(400);
  auto r = call(hello(), opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure, FailureKind::deadline);
  EXPECT_EQ(r.error->code, ErrorCode::deadline_exceeded);
  EXPECT_TRUE(r.attempts[0].usage.estimated);
}

TEST_F(ClientTest, RetryAfterLongerThanWeWaitMovesToTheNextModel) {
  settings_.retry.max_backoff = milliseconds(500);
  fake_.push(FakeReply::error(429, 120));
  fake_.push(FakeReply::text("b"));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call(hello());
  ASSERT_TRUE(r.ok()) << r.error->describe();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(1000));
  EXPECT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.answered().model_asked, "model-b");
}

TEST_F(ClientTest, ConnectionRefusedIsAConnectionFailure) {
  uint16_t closed_port = 0;
  {
    FakeLlmServer gone;
    closed_port = gone.port();
  }
  settings_.providers["fake"].base_url = "http://127.0.0.1:" + std::to_string(closed_port) + "/v1";
  settings_.retry.max_attempts = 2;
  auto r = call(hello(), role("solo"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure, FailureKind::connection);
  EXPECT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].usage.prompt_tokens, 0);
  EXPECT_THAT(r.error->message, HasSubstr(std::to_string(closed_port)));
}

// A TLS server whose certificate is not trusted (self-signed, as a man in the middle would
// present): refused, said clearly, never retried, no hang.
TEST_F(ClientTest, AnUntrustedCertificateIsRefusedClearlyAndNotRetried) {
  parley::testing::TempDir dir;
  const auto sh = [&](const std::string& cmd) {
    return std::system(("cd " + dir.path().string() + " && " + cmd).c_str());  // NOLINT
  };
  if (sh("command -v openssl >/dev/null") != 0) GTEST_SKIP() << "no openssl command";
  ASSERT_EQ(sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 "
               "-subj /CN=127.0.0.1 >/dev/null 2>&1"),
            0);
  uint16_t port = 0;
  {
    FakeLlmServer gone;
    port = gone.port();
  }
  const std::string server = "{ openssl s_server -quiet -accept 127.0.0.1:" + std::to_string(port) +
                             " -cert cert.pem -key key.pem -www >/dev/null 2>&1 & echo $! > pid; }";
  ASSERT_EQ(sh(server), 0);
  const auto listening = [port] {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  };
  for (int i = 0; i < 100 && !listening(); ++i) std::this_thread::sleep_for(milliseconds(50));
  settings_.providers["fake"].base_url = "https://127.0.0.1:" + std::to_string(port) + "/v1";
  settings_.retry.max_attempts = 3;
  const auto start = std::chrono::steady_clock::now();
  auto r = call(hello(), role("solo"));
  const auto took = std::chrono::steady_clock::now() - start;
  sh("kill $(cat pid)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure, FailureKind::tls);
  EXPECT_EQ(r.attempts.size(), 1u) << "a certificate does not get better by asking again";
  EXPECT_THAT(r.error->message, HasSubstr("certificate"));
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST_F(ClientTest, NotConfiguredSaysSoWithoutCallingAnything) {
  settings_.provider.clear();
  settings_.providers.clear();
  settings_.roles.clear();
  client_ = std::make_unique<LlmClient>(multi_, resolve_llm(settings_, [](const std::string&) {
                                          return std::optional<std::string>();
                                        }));
  auto r = call(hello());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure, FailureKind::not_configured);
  EXPECT_THAT(r.error->message, HasSubstr("OPENROUTER_API_KEY"));
  EXPECT_THAT(r.error->message, HasSubstr("PARLEY_LLM_BASE_URL"));
  EXPECT_TRUE(r.attempts.empty());
}

TEST_F(ClientTest, TheKeyNeverReachesALogLineOrAnError) {
  std::ostringstream logs;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logs);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  spdlog::set_level(spdlog::level::trace);
  fake_.push(FakeReply::error(401));
  fake_.push(FakeReply::error(429));
  fake_.push(FakeReply::malformed());
  std::vector<LlmResponse> all;
  all.push_back(call(hello()));
  all.push_back(call(hello(false), role("solo")));
  spdlog::set_default_logger(previous);
  EXPECT_THAT(logs.str(), HasSubstr("model-a"));  // something was logged
  EXPECT_THAT(logs.str(), Not(HasSubstr(kKey)));
  for (const auto& r : all) {
    if (r.error) {
      EXPECT_THAT(r.error->message, Not(HasSubstr(kKey)));
    }
    for (const auto& a : r.attempts) EXPECT_THAT(a.error, Not(HasSubstr(kKey)));
  }
}

TEST_F(ClientTest, EveryAttemptIsObservedWithItsUsage) {
  settings_.retry.max_attempts = 2;
  fake_.push(FakeReply::error(503));
  auto cut = FakeReply::text("cut short");
  cut.truncate_after_events = 2;
  fake_.push(cut);
  fake_.push(FakeReply::text("done"));
  auto r = call(hello());
  ASSERT_TRUE(r.ok()) << r.error->describe();
  std::lock_guard lock(observed_mu_);
  ASSERT_EQ(observed_.size(), 3u);
  EXPECT_EQ(observed_[0].failure, FailureKind::server_error);
  EXPECT_EQ(observed_[1].failure, FailureKind::connection);
  EXPECT_TRUE(observed_[1].usage.estimated);
  EXPECT_EQ(observed_[2].failure, FailureKind::none);
  EXPECT_EQ(observed_[2].model_asked, "model-b");
}

TEST_F(ClientTest, CompletionRunsOnTheCallersStrand) {
  auto strand = net::asio::make_strand(ioc_);
  std::promise<bool> on_strand;
  std::atomic<bool> text_on_strand{true};
  std::string text;
  CallOptions opts;
  opts.on_text = [&](int, std::string_view t) {
    if (!strand.running_in_this_thread()) text_on_strand = false;
    text += t;
  };
  client().call(hello(), opts, strand, [&](LlmResponse r) {
    EXPECT_TRUE(r.ok());
    on_strand.set_value(strand.running_in_this_thread());
  });
  EXPECT_TRUE(on_strand.get_future().get());
  EXPECT_TRUE(text_on_strand.load());
  EXPECT_EQ(text, "ok");
}

TEST_F(ClientTest, SequentialCallsReuseOneConnection) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(call(hello()).ok());
  EXPECT_EQ(fake_.connections_accepted(), 1u);
}

TEST_F(ClientTest, ManyConcurrentCallsAllComplete) {
  // What is tested is that all complete, not how fast: a sanitizer build with a compiler
  // running alongside takes longer than 2 s to start 300 transfers.
  settings_.timeouts.first_byte = milliseconds(30'000);
  settings_.timeouts.idle = milliseconds(30'000);
  fake_.set_handler([](const fakes::RecordedRequest&) -> std::optional<FakeReply> {
    auto r = FakeReply::text("slow");
    r.delay_before_headers = milliseconds(200);
    return r;
  });
  constexpr int kCalls = 300;
  std::atomic<int> ok{0};
  std::promise<void> all;
  std::atomic<int> left{kCalls};
  for (int i = 0; i < kCalls; ++i) {
    client().call(hello(), {}, ioc_.get_executor(), [&](LlmResponse r) {
      if (r.ok()) ++ok;
      if (--left == 0) all.set_value();
    });
  }
  all.get_future().wait();
  EXPECT_EQ(ok.load(), kCalls);
  EXPECT_EQ(multi_.stats().active, 0u);
}

}  // namespace client_test
}  // namespace parley::bot::llm
