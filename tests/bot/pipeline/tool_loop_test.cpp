// The tool loop against the fake LLM endpoint: a real tool round trip, every kind of bad tool
// call, the iteration limit, the deadline, the circuit breaker, unsafe calls not repeated,
// permissions, and the text protocol.
#include "parley/bot/pipeline/tool_loop.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "fakes/fake_llm.h"
#include "parley/base/base64.h"
#include "parley/capabilities/builtins.h"

namespace parley::bot {
namespace tool_loop_test {

using fakes::FakeLlmServer;
using fakes::FakeReply;
using nlohmann::json;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
namespace caps = parley::capabilities;

// Fails every time, counting its calls.
class Flaky final : public caps::Capability {
 public:
  std::string_view name() const override { return "flaky"; }
  std::string_view description() const override { return "always fails"; }
  json parameters() const override { return {{"type", "object"}}; }
  std::atomic<int> calls{0};

 protected:
  Result<json> invoke_(const caps::InvokeContext&, const json&) override {
    ++calls;
    return fail(ErrorCode::unavailable, "flaky is down");
  }
};

// Never answers (an async capability whose work got lost): only a timeout ends it.
class Hang final : public caps::Capability {
 public:
  std::string_view name() const override { return "hang"; }
  std::string_view description() const override { return "never answers"; }
  json parameters() const override { return {{"type", "object"}}; }

 protected:
  void invoke_async_(const caps::InvokeContext&, const json&, caps::Done done) override {
    parked_.push_back(std::move(done));  // kept, never called
  }

 private:
  std::vector<caps::Done> parked_;
};

class Send final : public caps::Capability {
 public:
  std::string_view name() const override { return "send"; }
  std::string_view description() const override { return "sends a message (side effect)"; }
  json parameters() const override {
    return {
        {"type", "object"}, {"properties", {{"to", {{"type", "string"}}}}}, {"required", {"to"}}};
  }
  caps::Flags flags() const override { return {caps::SideEffects::unsafe, false, false}; }
  std::atomic<int> calls{0};

 protected:
  Result<json> invoke_(const caps::InvokeContext&, const json& args) override {
    ++calls;
    return json{{"sent_to", args["to"]}};
  }
};

class Root final : public caps::Capability {
 public:
  std::string_view name() const override { return "root"; }
  std::string_view description() const override { return "admin only"; }
  json parameters() const override { return {{"type", "object"}}; }
  caps::Flags flags() const override { return {caps::SideEffects::unsafe, true, false}; }

 protected:
  Result<json> invoke_(const caps::InvokeContext&, const json&) override {
    return json{{"ok", true}};
  }
};

// Draws a chart: its result carries a PNG (base64), as the records' trend commands do.
class Chart final : public caps::Capability {
 public:
  std::string_view name() const override { return "chart"; }
  std::string_view description() const override { return "draws a chart"; }
  json parameters() const override { return {{"type", "object"}}; }

 protected:
  Result<json> invoke_(const caps::InvokeContext&, const json&) override {
    return json{{"text", "drawn"},
                {"attachments",
                 {{{"filename", "chart.png"},
                   {"media_type", "image/png"},
                   {"base64", base64_encode(kPng)}}}}};
  }

 public:
  static inline const std::string kPng{"\x89PNG\r\n\x1a\nchart-bytes", 19};
};

FakeReply call_tool(const std::string& name, const std::string& args,
                    const std::string& id = "c1") {
  return FakeReply::tools({{id, name, args}});
}

class ToolLoopTest : public ::testing::Test {
 protected:
  ToolLoopTest() : work_(net::asio::make_work_guard(ioc_)), multi_(ioc_.get_executor()) {
    thread_ = std::thread([this] { ioc_.run(); });
    EXPECT_TRUE(caps::register_builtins(registry_).ok());
    auto flaky = std::make_unique<Flaky>();
    flaky_ = flaky.get();
    EXPECT_TRUE(registry_.add(std::move(flaky)).ok());
    EXPECT_TRUE(registry_.add(std::make_unique<Hang>()).ok());
    auto send = std::make_unique<Send>();
    send_ = send.get();
    EXPECT_TRUE(registry_.add(std::move(send)).ok());
    EXPECT_TRUE(registry_.add(std::make_unique<Root>()).ok());
    EXPECT_TRUE(registry_.add(std::make_unique<Chart>()).ok());
    config_ =
        std::make_shared<caps::CapabilitiesConfig>(caps::default_capabilities_config(registry_));

    llm::LlmSettings s;
    s.provider = "fake";
    s.providers["fake"] = llm::ProviderConfig{"fake", fake_.base_url(), "", {}};
    s.roles["smart"] = {llm::ModelRef{"", "model-a"}};
    s.retry.max_attempts = 1;
    client_ = std::make_unique<llm::LlmClient>(multi_, llm::resolve_llm(s, [](const std::string&) {
                                                 return std::optional<std::string>();
                                               }));
    loop_ = std::make_unique<pipeline::ToolLoop>(*client_, registry_, &limiter_);
  }
  ~ToolLoopTest() override {
    multi_.shutdown();
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  pipeline::ToolLoopResult run(pipeline::ToolLoopOptions options = {},
                               caps::Caller caller = {7, "alice", "UTC", false, {}}) {
    llm::ChatRequest req;
    req.messages = {llm::Message::system("sys"), llm::Message::user("question")};
    caps::InvokeContext ctx;
    ctx.caller = std::move(caller);
    ctx.channel = "console";
    std::promise<pipeline::ToolLoopResult> p;
    net::asio::co_spawn(net::asio::make_strand(ioc_), loop_->run(req, ctx, config_, options),
                        [&p](std::exception_ptr e, pipeline::ToolLoopResult r) {
                          if (e) {
                            try {
                              std::rethrow_exception(e);
                            } catch (const std::exception& ex) {
                              ADD_FAILURE() << ex.what();
                            }
                          }
                          p.set_value(std::move(r));
                        });
    return p.get_future().get();
  }

  // The messages of the n-th request the fake received.
  json messages(size_t n) { return fake_.requests().at(n).json["messages"]; }
  std::vector<std::string> tool_names(size_t n) {
    std::vector<std::string> names;
    for (const auto& t : fake_.requests().at(n).json.value("tools", json::array())) {
      names.push_back(t["function"]["name"]);
    }
    return names;
  }

  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  http::CurlMulti multi_;
  std::thread thread_;
  FakeLlmServer fake_;
  caps::Registry registry_;
  Flaky* flaky_ = nullptr;
  Send* send_ = nullptr;
  std::shared_ptr<caps::CapabilitiesConfig> config_;
  std::unique_ptr<llm::LlmClient> client_;
  caps::RateLimiter limiter_;
  std::unique_ptr<pipeline::ToolLoop> loop_;
};

TEST_F(ToolLoopTest, CalcRoundTrip) {
  fake_.push(call_tool("calc", R"({"expression": "123*456"})", "call_9"));
  fake_.push(FakeReply::text("It is 56088."));
  const auto r = run();
  EXPECT_EQ(r.stop, pipeline::ToolLoopResult::Stop::answered);
  EXPECT_EQ(r.reply, "It is 56088.");
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_TRUE(r.steps[0].ok);
  EXPECT_THAT(r.steps[0].result, HasSubstr("56088"));
  EXPECT_EQ(r.llm_calls.size(), 2u);
  // The second request repeats the assistant's call, then the tool's answer.
  const auto m = messages(1);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[2]["role"], "assistant");
  EXPECT_EQ(m[2]["tool_calls"][0]["id"], "call_9");
  EXPECT_EQ(m[3]["role"], "tool");
  EXPECT_EQ(m[3]["tool_call_id"], "call_9");
  EXPECT_THAT(m[3]["content"].get<std::string>(), HasSubstr("56088"));
  // Tools offered: what this caller may use; the admin-only one is not.
  const auto names = tool_names(0);
  EXPECT_NE(std::find(names.begin(), names.end(), "calc"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "root"), names.end());
}

// A tool's file goes to the user with the reply; the model reads only what it is.
TEST_F(ToolLoopTest, AToolsFileGoesWithTheReplyAndTheModelSeesOnlyWhatItIs) {
  fake_.push(call_tool("chart", "{}"));
  fake_.push(call_tool("chart", "{}", "c2"));
  fake_.push(FakeReply::text("Here are your charts."));
  const auto r = run();
  EXPECT_EQ(r.reply, "Here are your charts.");
  ASSERT_EQ(r.files.files.size(), 2u) << "each call's file";
  EXPECT_EQ(r.files.files[0].filename, "chart.png");
  EXPECT_EQ(r.files.files[0].content, Chart::kPng);
  EXPECT_TRUE(r.files.problems.empty());
  const std::string seen = messages(1).back()["content"];
  EXPECT_THAT(seen, HasSubstr("sent to the user with the reply"));
  EXPECT_THAT(seen, HasSubstr("\"bytes\":19"));
  EXPECT_THAT(seen, ::testing::Not(HasSubstr(base64_encode(Chart::kPng))));
}

TEST_F(ToolLoopTest, BadToolCallsGoBackToTheModelAsClearToolErrors) {
  fake_.push(FakeReply::tools({{"a", "calc", R"({"expression": )"},
                               {"b", "calc", R"({"expression": 5})"},
                               {"c", "weather", "{}"},
                               {"d", "root", "{}"}}));
  fake_.push(FakeReply::text("Sorry."));
  const auto r = run();
  EXPECT_EQ(r.stop, pipeline::ToolLoopResult::Stop::answered);
  ASSERT_EQ(r.steps.size(), 4u);
  for (const auto& s : r.steps) EXPECT_FALSE(s.ok) << s.result;
  EXPECT_THAT(r.steps[0].result, HasSubstr("not valid JSON"));
  EXPECT_THAT(r.steps[1].result,
              HasSubstr("arguments.expression: expected string, got the number 5"));
  EXPECT_THAT(r.steps[2].result, HasSubstr("there is no tool named 'weather'"));
  EXPECT_THAT(r.steps[3].result, HasSubstr("root is for administrators only"));
  const auto m = messages(1);
  EXPECT_THAT(m[3]["content"].get<std::string>(), HasSubstr("\"error\""));
}

TEST_F(ToolLoopTest, IterationLimitGivesAShortClearAnswer) {
  fake_.set_handler([](const fakes::RecordedRequest&) -> std::optional<FakeReply> {
    return call_tool("time", "{}");
  });
  pipeline::ToolLoopOptions o;
  o.max_iterations = 3;
  const auto r = run(o);
  EXPECT_EQ(r.stop, pipeline::ToolLoopResult::Stop::iteration_limit);
  EXPECT_EQ(r.llm_calls.size(), 3u);
  EXPECT_EQ(r.steps.size(), 3u);
  EXPECT_THAT(r.reply, HasSubstr("stopped after 3 steps"));
  EXPECT_EQ(fake_.request_count(), 3u);
}

TEST_F(ToolLoopTest, ACapabilityThatNeverAnswersIsCutByTheDeadline) {
  fake_.push(call_tool("hang", "{}"));
  pipeline::ToolLoopOptions o;
  o.deadline = std::chrono::steady_clock::now() + milliseconds(400);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run(o);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(5000));
  EXPECT_EQ(r.stop, pipeline::ToolLoopResult::Stop::deadline);
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_THAT(r.steps[0].result, HasSubstr("did not answer in time"));
  EXPECT_THAT(r.reply, HasSubstr("ran out of time"));
  EXPECT_EQ(r.llm_calls.size(), 1u) << "the usage of the call that was made is kept";
}

TEST_F(ToolLoopTest, ACapabilityTimeoutFromTheConfigurationEndsOnlyThatCall) {
  config_->by_name["hang"].timeout = milliseconds(100);
  fake_.push(call_tool("hang", "{}"));
  fake_.push(FakeReply::text("It did not answer."));
  const auto r = run();
  EXPECT_EQ(r.stop, pipeline::ToolLoopResult::Stop::answered);
  EXPECT_THAT(r.steps.at(0).result, HasSubstr("did not answer in time"));
}

TEST_F(ToolLoopTest, TheBreakerWithdrawsACapabilityThatKeepsFailing) {
  for (int i = 0; i < 4; ++i) fake_.push(call_tool("flaky", "{}", "f" + std::to_string(i)));
  fake_.push(FakeReply::text("Gave up on flaky."));
  pipeline::ToolLoopOptions o;
  o.breaker_failures = 2;
  const auto r = run(o);
  EXPECT_EQ(r.stop, pipeline::ToolLoopResult::Stop::answered);
  EXPECT_EQ(flaky_->calls.load(), 2) << "not run again once withdrawn";
  EXPECT_EQ(r.withdrawn, std::vector<std::string>{"flaky"});
  EXPECT_THAT(r.steps.at(2).result, HasSubstr("no longer available"));
  const auto after = tool_names(2);
  EXPECT_EQ(std::find(after.begin(), after.end(), "flaky"), after.end()) << "no longer offered";
  const auto before = tool_names(0);
  EXPECT_NE(std::find(before.begin(), before.end(), "flaky"), before.end());
}

TEST_F(ToolLoopTest, AnUnsafeCallIsNeverRepeatedWithTheSameArguments) {
  fake_.push(call_tool("send", R"({"to": "bob"})", "s1"));
  fake_.push(call_tool("send", R"({"to": "bob"})", "s2"));
  fake_.push(call_tool("send", R"({"to": "carol"})", "s3"));
  fake_.push(FakeReply::text("Sent."));
  const auto r = run();
  EXPECT_EQ(send_->calls.load(), 2);
  EXPECT_TRUE(r.steps.at(0).ok);
  EXPECT_FALSE(r.steps.at(1).ok);
  EXPECT_THAT(r.steps.at(1).result, HasSubstr("not repeated automatically"));
  EXPECT_TRUE(r.steps.at(2).ok);
}

TEST_F(ToolLoopTest, AdminsGetAdminOnlyTools) {
  fake_.push(call_tool("root", "{}"));
  fake_.push(FakeReply::text("done"));
  const auto r = run({}, caps::Caller{1, "ops", "UTC", true, {}});
  EXPECT_TRUE(r.steps.at(0).ok) << r.steps.at(0).result;
  const auto names = tool_names(0);
  EXPECT_NE(std::find(names.begin(), names.end(), "root"), names.end());
}

TEST_F(ToolLoopTest, DisabledCapabilitiesAreNotOffered) {
  config_->by_name["calc"].enabled = false;
  fake_.push(FakeReply::text("no tools needed"));
  (void)run();
  const auto names = tool_names(0);
  EXPECT_EQ(std::find(names.begin(), names.end(), "calc"), names.end());
}

TEST_F(ToolLoopTest, TextProtocolForModelsWithoutNativeToolCalls) {
  fake_.push(
      FakeReply::text("Let me compute.\n<tool_call>{\"name\": \"calc\", \"arguments\": "
                      "{\"expression\": \"6*7\"}}</tool_call>"));
  fake_.push(FakeReply::text("The answer is 42."));
  pipeline::ToolLoopOptions o;
  o.text_protocol = true;
  const auto r = run(o);
  EXPECT_EQ(r.reply, "The answer is 42.");
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_TRUE(r.steps[0].ok);
  EXPECT_FALSE(fake_.requests()[0].json.contains("tools")) << "no native tools sent";
  const auto m0 = messages(0);
  EXPECT_THAT(m0[0]["content"].get<std::string>(), HasSubstr("<tool_call>"));
  const auto m1 = messages(1);
  EXPECT_EQ(m1.back()["role"], "user");
  EXPECT_THAT(m1.back()["content"].get<std::string>(), HasSubstr("<tool_result name=\"calc\">"));
  EXPECT_THAT(m1.back()["content"].get<std::string>(), HasSubstr("42"));
}

TEST_F(ToolLoopTest, RateLimitsApplyToTheModelToo) {
  config_->by_name["calc"].rate_limit = {1, std::chrono::seconds(60)};
  fake_.push(FakeReply::tools(
      {{"a", "calc", R"({"expression": "1+1"})"}, {"b", "calc", R"({"expression": "2+2"})"}}));
  fake_.push(FakeReply::text("ok"));
  const auto r = run();
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_TRUE(r.steps[0].ok);
  EXPECT_FALSE(r.steps[1].ok);
  EXPECT_THAT(r.steps[1].result, HasSubstr("rate limited"));
}

TEST_F(ToolLoopTest, ParseTextToolCalls) {
  std::string text =
      "a<tool_call>{\"name\":\"x\",\"arguments\":{\"k\":1}}</tool_call>b<tool_call>junk</"
      "tool_call>c";
  const auto calls = pipeline::parse_text_tool_calls(text);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].name, "x");
  EXPECT_EQ(calls[0].arguments, R"({"k":1})");
  EXPECT_EQ(calls[1].name, "(unreadable)");
  EXPECT_EQ(text, "abc");
}

TEST_F(ToolLoopTest, AnLlmFailureStillAnswersTheUser) {
  fake_.push(FakeReply::error(402));
  const auto r = run();
  EXPECT_EQ(r.stop, pipeline::ToolLoopResult::Stop::llm_error);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, ErrorCode::billing);
  EXPECT_THAT(r.reply, HasSubstr("out of credit"));
  EXPECT_EQ(r.llm_calls.size(), 1u);
}

}  // namespace tool_loop_test
}  // namespace parley::bot
