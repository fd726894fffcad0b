#include "parley/bot/clients/llm/types.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace parley::bot::llm {
namespace {

using nlohmann::json;

ChatRequest full_request() {
  ChatRequest r;
  r.messages = {Message::system("Be brief."), Message::user("What is 2+2? \"quote\" \\ \n tab\t"),
                Message::assistant("", {ToolCall{"call_1", "calc", R"({"expr":"2+2"})"}}),
                Message::tool("call_1", "4"), Message::assistant("It is 4.")};
  r.messages[1].name = "ana";
  r.tools.push_back(ToolDefinition{
      "calc", "Evaluates arithmetic.",
      json{{"type", "object"},
           {"properties", {{"expr", {{"type", "string"}, {"description", "e.g. 2+2"}}}}},
           {"required", {"expr"}}}});
  r.tools.push_back(ToolDefinition{"time", "Tells the time in a zone.", json::object()});
  r.tool_choice = "auto";
  r.max_tokens = 64;
  r.temperature = 0.5;
  r.stop = {"\n\n"};
  r.response_format = {{"type", "json_object"}};
  return r;
}

TEST(RequestBody, ReadsAsTheSameJsonAsToJsonWithToolsSplicedIn) {
  const json options = {{"top_p", 0.9},
                        {"tools", json::array({"from the configuration"})},
                        {"stream_options", {{"include_usage", false}}},
                        {"model", "overridden"}};
  for (const bool stream : {true, false}) {
    ChatRequest r = full_request();
    r.stream = stream;
    const std::string body = request_body(r, "m-1", options);
    const json parsed = json::parse(body);
    EXPECT_EQ(parsed, to_json(r, "m-1", options)) << body;
    EXPECT_EQ(parsed["model"], "m-1");
    EXPECT_EQ(parsed["top_p"], 0.9);
    ASSERT_EQ(parsed["tools"].size(), 2u);  // the request's, not the configuration's
    EXPECT_EQ(parsed["tools"][0]["function"]["parameters"]["required"][0], "expr");
    EXPECT_EQ(parsed.contains("stream_options"), stream);
  }
}

TEST(RequestBody, WithoutToolsIsToJsonDumpedByteForByteAndKeepsTheConfiguredTools) {
  ChatRequest r = full_request();
  r.tools.clear();
  const json options = {{"tools", json::array({"configured"})}};
  EXPECT_EQ(request_body(r, "m", options), to_json(r, "m", options).dump());
  EXPECT_EQ(json::parse(request_body(r, "m", options))["tools"][0], "configured");
}

TEST(RequestBody, InvalidUtf8BecomesReplacementCharactersNotABrokenBody) {
  ChatRequest r;
  r.messages = {Message::user("bad \xff\xfe byte")};
  r.tools.push_back(ToolDefinition{"t\xc3", "desc \xe2\x82", json{{"enum", {"x\xff"}}}});
  const std::string body = request_body(r, "m");
  const json parsed = json::parse(body);  // throws on invalid UTF-8
  EXPECT_NE(parsed["messages"][0]["content"].get<std::string>().find("\xEF\xBF\xBD"),
            std::string::npos);
  EXPECT_NE(parsed["tools"][0]["function"]["name"].get<std::string>().find("\xEF\xBF\xBD"),
            std::string::npos);
  EXPECT_NE(parsed["tools"][0]["function"]["parameters"].dump().find("\xEF\xBF\xBD"),
            std::string::npos);
}

TEST(SharedJson, SerialisesOnceAndCopiesShareTheValueAndItsText) {
  const SharedJson a(json{{"b", 1}, {"a", "x"}});
  const SharedJson b = a;  // NOLINT(performance-unnecessary-copy-initialization): the point
  EXPECT_EQ(a.text(), R"({"a":"x","b":1})");
  EXPECT_EQ(&a.text(), &b.text());
  EXPECT_EQ(&a.get(), &b.get());
  EXPECT_EQ(SharedJson().text(), "{}");
}

TEST(ParseCompletion, NeedsChoicesAndReadsAnInBandError) {
  const auto ok = parse_completion(
      R"({"id":"g1","model":"m","choices":[{"index":0,"message":{"content":"hi"},"finish_reason":"stop"}]})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value().content, "hi");
  EXPECT_EQ(ok.value().finish_reason, "stop");

  for (const char* body : {R"({"id":"g1","choices":[]})", R"({"id":"g1"})", "[DONE]", "[]"}) {
    const auto r = parse_completion(body);
    EXPECT_FALSE(r.ok()) << body;
  }
  const auto none = parse_completion(R"({"id":"g1"})");
  EXPECT_NE(none.error().message.find("no choices"), std::string::npos);

  StreamError in_band;
  const auto err = parse_completion(R"({"error":{"code":402,"message":"no credits"}})", &in_band);
  EXPECT_FALSE(err.ok());
  EXPECT_EQ(in_band.code, 402);
  EXPECT_EQ(in_band.message, "no credits");
}

}  // namespace
}  // namespace parley::bot::llm
