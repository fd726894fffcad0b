// LlmClient::embed against the fake endpoint's /v1/embeddings: batches and their order,
// dimensions, similarity through the deterministic fake embedder, retries, fallbacks (never
// mixing two models' vectors), malformed bodies, secrets, the observer and the spend gate.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "fakes/fake_embedder.h"
#include "fakes/fake_llm.h"
#include "parley/bot/clients/llm/client.h"

namespace parley::bot::llm {
namespace client_embed_test {

using fakes::fake_embedding;
using fakes::fake_embedding_tokens;
using fakes::FakeLlmServer;
using fakes::FakeReply;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kKey = "sk-embed-SECRET-0123456789";

// Admits everything (or nothing), and remembers what it was asked and told.
class RecordingGate final : public SpendGate {
 public:
  std::string route(const CallOptions&, const std::string& role) override {
    std::lock_guard lock(mu);
    ++routes;
    return role;
  }
  [[nodiscard]] std::optional<int> default_max_tokens() const override { return std::nullopt; }
  Admission admit(const CallOptions&, const ResolvedModel&, const ChatRequest&) override {
    ADD_FAILURE() << "an embeddings call was admitted as a chat request";
    return {};
  }
  Admission admit(const CallOptions&, const ResolvedModel& model, const Bound& bound) override {
    std::lock_guard lock(mu);
    bounds.push_back(bound);
    models.push_back(model.model);
    Admission a;
    a.ok = !refuse;
    if (refuse) a.refusal = "Your daily LLM budget is used up.";
    a.reserved_nanousd = bound.prompt_tokens * 1000;
    return a;
  }
  void settle(const Admission& admission, const CallOptions&, const Attempt& attempt) override {
    std::lock_guard lock(mu);
    settled.emplace_back(admission.reserved_nanousd, attempt);
  }

  std::mutex mu;
  bool refuse = false;
  int routes = 0;
  std::vector<Bound> bounds;
  std::vector<std::string> models;
  std::vector<std::pair<int64_t, Attempt>> settled;
};

class EmbedTest : public ::testing::Test {
 protected:
  EmbedTest() : work_(net::asio::make_work_guard(ioc_)), multi_(ioc_.get_executor()) {
    thread_ = std::thread([this] { ioc_.run(); });
    settings_.provider = "fake";
    settings_.providers["fake"] =
        ProviderConfig{"fake", fake_.base_url(), "FAKE_KEY", {{"X-Title", "parley-test"}}};
    // No chat role at all: embeddings need none.
    settings_.roles["embed"] = {ModelRef{"", "emb-a"}, ModelRef{"", "emb-b"}};
    settings_.roles["solo"] = {ModelRef{"", "emb-a"}};
    settings_.timeouts.first_byte = milliseconds(5000);
    settings_.retry.base_backoff = milliseconds(20);
    settings_.retry.max_backoff = milliseconds(2000);
  }
  ~EmbedTest() override {
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
      client_ = std::make_unique<LlmClient>(
          multi_, std::move(resolved),
          [this](const CallOptions& o, const Attempt& a) {
            std::lock_guard lock(observed_mu_);
            observed_.emplace_back(o.purpose, a);
          },
          gate_);
    }
    return *client_;
  }

  EmbedResponse embed(std::vector<std::string> inputs, int dimensions = 0,
                      const std::string& role = "") {
    CallOptions options;
    options.role = role;
    options.purpose = std::string(kEmbedPurpose);
    std::promise<EmbedResponse> p;
    auto f = p.get_future();
    client().embed(EmbedRequest{std::move(inputs), dimensions}, std::move(options),
                   ioc_.get_executor(), [&p](EmbedResponse r) { p.set_value(std::move(r)); });
    return f.get();
  }

  static std::vector<std::string> numbered(size_t n) {
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) out.push_back("memory number " + std::to_string(i));
    return out;
  }

  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  http::CurlMulti multi_;
  std::thread thread_;
  FakeLlmServer fake_;
  LlmSettings settings_;
  SpendGate* gate_ = nullptr;
  std::unique_ptr<LlmClient> client_;
  std::mutex observed_mu_;
  std::vector<std::pair<std::string, Attempt>> observed_;
};

TEST_F(EmbedTest, VectorsComeBackInInputOrderAcrossBatches) {
  const auto inputs = numbered(150);
  auto r = embed(inputs, 256);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.vectors->size(), 150u);
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_EQ((*r.vectors)[i], fake_embedding(inputs[i], 256)) << i;
  }
  EXPECT_EQ(r.dimensions, 256);
  EXPECT_EQ(r.provider, "fake");
  EXPECT_EQ(r.model_asked, "emb-a");
  EXPECT_EQ(r.model_answered, "emb-a");
  EXPECT_EQ(r.attempts.size(), 3u);

  const auto requests = fake_.requests();
  ASSERT_EQ(requests.size(), 3u);
  const std::vector<size_t> sizes = {64, 64, 22};
  size_t next = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& req = requests[i];
    EXPECT_EQ(req.target, "/v1/embeddings");
    EXPECT_EQ(req.headers.at("authorization"), std::string("Bearer ") + kKey);
    EXPECT_EQ(req.headers.at("x-title"), "parley-test");
    EXPECT_EQ(req.json["model"], "emb-a");
    EXPECT_EQ(req.json["dimensions"], 256);
    EXPECT_EQ(req.json["encoding_format"], "float");
    ASSERT_EQ(req.json["input"].size(), sizes[i]);
    for (const auto& text : req.json["input"]) EXPECT_EQ(text, inputs[next++]);
  }
}

TEST_F(EmbedTest, DimensionsAreSentOnlyWhenAsked) {
  auto r = embed({"hello world"});
  ASSERT_TRUE(r.ok()) << r.error->describe();
  EXPECT_FALSE(fake_.requests().back().json.contains("dimensions"));
  EXPECT_EQ(r.dimensions, fakes::kFakeEmbeddingDims) << "the first vector's length";
  EXPECT_EQ((*r.vectors)[0], fake_embedding("hello world"));

  r = embed({"hello world"}, 64);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  EXPECT_EQ(fake_.requests().back().json["dimensions"], 64);
  EXPECT_EQ(r.dimensions, 64);
  EXPECT_EQ((*r.vectors)[0].size(), 64u);
}

TEST_F(EmbedTest, SimilarTextsAreCloserThanUnrelatedOnes) {
  auto r = embed({"I love pizza with mushrooms", "Pizza with mushrooms is what I love most",
                  "The train to Berlin leaves at noon"},
                 512);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  const auto& v = *r.vectors;
  const double similar = fakes::dot(v[0], v[1]);
  const double unrelated = fakes::dot(v[0], v[2]);
  EXPECT_GT(similar, 0.6);
  EXPECT_LT(unrelated, 0.25);
  EXPECT_GT(similar, unrelated + 0.4);
}

TEST_F(EmbedTest, DataListedOutOfOrderIsMatchedByIndex) {
  auto reply = FakeReply::text("");
  reply.reverse_embeddings = true;
  fake_.push(reply);
  auto r = embed({"first text", "second text", "third text"}, 32);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  EXPECT_EQ((*r.vectors)[0], fake_embedding("first text", 32));
  EXPECT_EQ((*r.vectors)[2], fake_embedding("third text", 32));
}

TEST_F(EmbedTest, NoInputsIsAnEmptySuccessWithoutARequest) {
  auto r = embed({}, 128);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.vectors->empty());
  EXPECT_TRUE(r.attempts.empty());
  EXPECT_EQ(fake_.request_count(), 0u);
}

TEST_F(EmbedTest, RateLimitedIsRetriedThenSucceeds) {
  fake_.push(FakeReply::error(429));
  auto r = embed({"retry me"}, 16, "solo");
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].failure, FailureKind::rate_limited);
  EXPECT_EQ(r.attempts[0].http_status, 429);
  EXPECT_EQ(r.attempts[0].usage.prompt_tokens, 0) << "an error reply consumed nothing";
  EXPECT_EQ(r.attempts[1].failure, FailureKind::none);
  EXPECT_EQ((*r.vectors)[0], fake_embedding("retry me", 16));
}

TEST_F(EmbedTest, ABatchThatFailsOnceIsRetriedAloneWithRetryAfter) {
  // The first batch answers; the second is rate limited once, with Retry-After: 1.
  // The server copies its handler for each request: the count lives outside it.
  auto n = std::make_shared<std::atomic<int>>(0);
  fake_.set_handler([n](const fakes::RecordedRequest&) -> std::optional<FakeReply> {
    if (++*n == 2) return FakeReply::error(429, 1);
    return std::nullopt;
  });
  const auto inputs = numbered(100);
  auto r = embed(inputs, 8, "solo");
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.attempts.size(), 3u);
  EXPECT_EQ(r.attempts[1].failure, FailureKind::rate_limited);
  const auto requests = fake_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].json["input"], requests[2].json["input"]) << "the same batch again";
  EXPECT_EQ(requests[0].json["input"].size(), 64u);
  EXPECT_GE(requests[2].received - requests[1].received, milliseconds(990));
  EXPECT_EQ((*r.vectors)[99], fake_embedding(inputs[99], 8));
}

TEST_F(EmbedTest, NotFoundFallsBackToTheNextModel) {
  fake_.set_handler([](const fakes::RecordedRequest& req) -> std::optional<FakeReply> {
    if (req.json["model"] == "emb-a") return FakeReply::error(404);
    return std::nullopt;
  });
  auto r = embed({"fall back"}, 16);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].failure, FailureKind::not_found);
  EXPECT_EQ(r.attempts[1].model_asked, "emb-b");
  EXPECT_EQ(r.model_asked, "emb-b");
  EXPECT_EQ(r.model_answered, "emb-b");
}

TEST_F(EmbedTest, AFallbackStartsOverSoVectorsNeverMixTwoModels) {
  // emb-a answers the first batch, then fails the second for good: every vector comes from
  // emb-b, the first batch asked again.
  auto n = std::make_shared<std::atomic<int>>(0);
  fake_.set_handler([n](const fakes::RecordedRequest& req) -> std::optional<FakeReply> {
    if (req.json["model"] == "emb-a" && ++*n == 2) return FakeReply::error(402);
    return std::nullopt;
  });
  auto r = embed(numbered(70), 16);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  const auto requests = fake_.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0].json["model"], "emb-a");
  EXPECT_EQ(requests[1].json["model"], "emb-a");
  EXPECT_EQ(requests[2].json["model"], "emb-b");
  EXPECT_EQ(requests[2].json["input"].size(), 64u);
  EXPECT_EQ(requests[3].json["model"], "emb-b");
  EXPECT_EQ(r.model_asked, "emb-b");
  EXPECT_EQ(r.vectors->size(), 70u);
  EXPECT_EQ(r.attempts.size(), 4u);
}

TEST_F(EmbedTest, MalformedBodiesAreMalformedErrorsNamingEndpointAndModel) {
  settings_.retry.max_attempts = 1;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"data": [{"index": 0, "embedding": [0.1, 0.2, 0.3]},
                    {"index": 1, "embedding": [0.1, 0.2, 0.3, 0.4]}]})",
       "data[0]: 3 dimensions, expected 4"},
      {R"({"data": [{"embedding": [1, 0, 0, 0]}, {"index": 1, "embedding": [1, 0, 0, 0]}]})",
       "data[0]: no index"},
      {R"({"data": [{"index": 1, "embedding": [1, 0, 0, 0]},
                    {"index": 1, "embedding": [0, 1, 0, 0]}]})",
       "index 1 appears twice"},
      {R"({"data": [{"index": 0, "embedding": [1, 0, 0, 0]}]})", "1 embeddings for 2 inputs"},
      {R"({"data": [{"index": 0, "embedding": [1, "x", 0, 0]},
                    {"index": 1, "embedding": [1, 0, 0, 0]}]})",
       "element 1 is not a finite number"},
      {R"({"data": [{"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": "AAAA"}]})",
       "not an array of numbers"},
      {R"({"data": [)", "not a JSON object"},
  };
  for (const auto& [body, what] : cases) {
    SCOPED_TRACE(what);
    FakeReply reply;
    reply.raw_body = body;
    fake_.push(reply);
    auto r = embed({"one", "two"}, 4, "solo");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.failure, FailureKind::malformed);
    EXPECT_EQ(r.error->code, ErrorCode::internal);
    EXPECT_THAT(r.error->message, HasSubstr(what));
    EXPECT_THAT(r.error->message, HasSubstr("embeddings call to 127.0.0.1"));
    EXPECT_THAT(r.error->message, HasSubstr("(model emb-a)"));
    EXPECT_EQ(r.error->message.find('\n'), std::string::npos) << "one line";
    ASSERT_EQ(r.attempts.size(), 1u);
    EXPECT_TRUE(r.attempts[0].usage.estimated) << "a 200 reached the model";
  }
}

TEST_F(EmbedTest, MalformedIsRetriedLikeAChatCall) {
  FakeReply bad;
  bad.raw_body = R"({"data": []})";
  fake_.push(bad);
  auto r = embed({"again"}, 8, "solo");
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].failure, FailureKind::malformed);
}

TEST_F(EmbedTest, AnErrorInsideA200IsClassifiedByItsCode) {
  settings_.retry.max_attempts = 2;
  FakeReply in_band;
  in_band.raw_body = R"({"error": {"code": 402, "message": "Insufficient credits"}})";
  fake_.push(in_band);
  auto r = embed({"credits"}, 8);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].failure, FailureKind::billing);
  EXPECT_THAT(r.attempts[0].error, HasSubstr("Insufficient credits"));
  EXPECT_EQ(r.model_asked, "emb-b");
}

TEST_F(EmbedTest, TheKeyNeverReachesALogLineOrAnError) {
  std::ostringstream logs;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logs);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  spdlog::set_level(spdlog::level::trace);
  settings_.retry.max_attempts = 1;
  fake_.push(FakeReply::error(401));
  fake_.push(FakeReply::error(429));
  FakeReply bad;
  bad.raw_body = "{";
  fake_.push(bad);
  std::vector<EmbedResponse> all;
  all.push_back(embed({"a"}, 8));  // 401: ends the call
  all.push_back(embed({"b"}, 8));  // 429 on emb-a, then malformed on emb-b
  spdlog::set_default_logger(previous);
  EXPECT_THAT(logs.str(), HasSubstr("emb-a"));  // something was logged
  EXPECT_THAT(logs.str(), Not(HasSubstr(kKey)));
  for (const auto& r : all) {
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error->message, Not(HasSubstr(kKey)));
    for (const auto& a : r.attempts) EXPECT_THAT(a.error, Not(HasSubstr(kKey)));
  }
  EXPECT_EQ(all[0].failure, FailureKind::unauthorized);
  EXPECT_EQ(all[0].attempts.size(), 1u);
}

TEST_F(EmbedTest, EveryAttemptIsObservedWithItsPromptTokensAndCost) {
  fake_.push(FakeReply::error(503));
  FakeReply priced;  // OpenRouter's usage.cost
  priced.usage->cost = 0.0000021;
  fake_.push(priced);
  const std::vector<std::string> inputs = {"the cat sat on the mat", "dogs bark"};
  auto r = embed(inputs, 8, "solo");
  ASSERT_TRUE(r.ok()) << r.error->describe();
  std::lock_guard lock(observed_mu_);
  ASSERT_EQ(observed_.size(), 2u);
  EXPECT_EQ(observed_[0].first, "memory");
  EXPECT_EQ(observed_[0].second.failure, FailureKind::server_error);
  EXPECT_EQ(observed_[0].second.usage.prompt_tokens, 0);
  const Attempt& ok = observed_[1].second;
  EXPECT_EQ(observed_[1].first, "memory");
  EXPECT_EQ(ok.failure, FailureKind::none);
  EXPECT_EQ(ok.usage.prompt_tokens,
            fake_embedding_tokens(inputs[0]) + fake_embedding_tokens(inputs[1]));
  EXPECT_EQ(ok.usage.completion_tokens, 0);
  EXPECT_FALSE(ok.usage.estimated);
  ASSERT_TRUE(ok.usage.cost_usd);
  EXPECT_DOUBLE_EQ(*ok.usage.cost_usd, 0.0000021);
  EXPECT_EQ(ok.model_answered, "emb-a");
  EXPECT_EQ(r.total_usage().prompt_tokens, 8);
}

TEST_F(EmbedTest, TheSpendGateAdmitsEveryBatchAndIsToldTheRealUsage) {
  RecordingGate gate;
  gate_ = &gate;
  const auto inputs = numbered(100);
  auto r = embed(inputs, 8);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  std::lock_guard lock(gate.mu);
  EXPECT_EQ(gate.routes, 0) << "a cheaper role would answer in another vector space";
  ASSERT_EQ(gate.bounds.size(), 2u);
  const std::span<const std::string> all(inputs);
  EXPECT_EQ(gate.bounds[0].prompt_tokens, estimate_embedding_tokens(all.subspan(0, 64)));
  EXPECT_EQ(gate.bounds[1].prompt_tokens, estimate_embedding_tokens(all.subspan(64)));
  EXPECT_EQ(gate.bounds[0].completion_tokens, 0);
  ASSERT_EQ(gate.settled.size(), 2u);
  EXPECT_EQ(gate.settled[0].first, gate.bounds[0].prompt_tokens * 1000);
  int64_t tokens = 0;
  for (size_t i = 0; i < 64; ++i) tokens += fake_embedding_tokens(inputs[i]);
  EXPECT_EQ(gate.settled[0].second.usage.prompt_tokens, tokens);
}

TEST_F(EmbedTest, ARefusalOfTheGateSendsNothing) {
  RecordingGate gate;
  gate.refuse = true;
  gate_ = &gate;
  auto r = embed({"too dear"}, 8);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure, FailureKind::budget);
  EXPECT_EQ(r.error->code, ErrorCode::resource_exhausted);
  EXPECT_THAT(r.error->message, HasSubstr("budget"));
  EXPECT_EQ(fake_.request_count(), 0u);
  std::lock_guard lock(gate.mu);
  EXPECT_EQ(gate.models, (std::vector<std::string>{"emb-a", "emb-b"})) << "each model asked";
  EXPECT_TRUE(gate.settled.empty());
}

TEST_F(EmbedTest, NoEmbedRoleSaysSo) {
  settings_.roles.erase("embed");
  settings_.roles["smart"] = {ModelRef{"", "chat-model"}};
  auto r = embed({"anything"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure, FailureKind::not_configured);
  EXPECT_THAT(r.error->message, HasSubstr("'embed'"));
  EXPECT_EQ(fake_.request_count(), 0u);
}

}  // namespace client_embed_test
}  // namespace parley::bot::llm
