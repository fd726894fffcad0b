// Tests of assembling a streamed chat completion: text, tool-call deltas by index and by id,
// usage with and without cost, the model that answered, in-band errors, malformed chunks.
#include "parley/bot/clients/llm/chat_stream.h"

#include <gtest/gtest.h>

namespace parley::bot::llm {
namespace chat_stream_test {

Status feed_all(ChatStream& s, std::initializer_list<std::string_view> chunks) {
  for (auto c : chunks) PARLEY_TRY(s.on_data(c));
  return {};
}

TEST(ChatStream, AssemblesTextUsageAndModel) {
  ChatStream s;
  ASSERT_TRUE(
      feed_all(
          s,
          {R"({"id":"gen-1","model":"openai/gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]})",
           R"({"id":"gen-1","model":"openai/gpt-4o","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}],"usage":null})",
           R"({"id":"gen-1","model":"openai/gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],
          "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"cost":0.000042,
                   "prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":1}}})",
           "[DONE]"})
          .ok());
  EXPECT_TRUE(s.done());
  const auto& r = s.result();
  EXPECT_EQ(r.content, "Hello");
  EXPECT_EQ(r.id, "gen-1");
  EXPECT_EQ(r.model, "openai/gpt-4o");
  EXPECT_EQ(r.finish_reason, "stop");
  ASSERT_TRUE(r.usage);
  EXPECT_EQ(r.usage->prompt_tokens, 12);
  EXPECT_EQ(r.usage->completion_tokens, 3);
  EXPECT_EQ(r.usage->cached_tokens, 8);
  EXPECT_EQ(r.usage->reasoning_tokens, 1);
  ASSERT_TRUE(r.usage->cost_usd);
  EXPECT_DOUBLE_EQ(*r.usage->cost_usd, 0.000042);
}

TEST(ChatStream, OpenAiFinalUsageChunkWithoutChoicesAndNoCost) {
  ChatStream s;
  ASSERT_TRUE(
      feed_all(s, {R"({"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]})",
                   R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}})", "[DONE]"})
          .ok());
  ASSERT_TRUE(s.result().usage);
  EXPECT_EQ(s.result().usage->prompt_tokens, 5);
  EXPECT_FALSE(s.result().usage->cost_usd) << "no cost reported: none invented";
}

TEST(ChatStream, StreamWithoutUsageHasNone) {
  ChatStream s;
  ASSERT_TRUE(s.on_data(R"({"choices":[{"index":0,"delta":{"content":"cut"}}]})").ok());
  EXPECT_FALSE(s.done());
  EXPECT_FALSE(s.result().usage);
}

TEST(ChatStream, ToolCallDeltasMergeByIndex) {
  ChatStream s;
  ASSERT_TRUE(
      feed_all(
          s,
          {R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":""}}]}}]})",
           R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"time","arguments":"{}"}}]}}]})",
           R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]})",
           R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Porto\"}"}}]}}]})",
           R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"})
          .ok());
  const auto& calls = s.result().tool_calls;
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].id, "call_a");
  EXPECT_EQ(calls[0].name, "weather");
  EXPECT_EQ(calls[0].arguments, R"({"city":"Porto"})");
  EXPECT_EQ(calls[1].name, "time");
  EXPECT_EQ(s.result().finish_reason, "tool_calls");
}

TEST(ChatStream, ReusedIndexZeroWithANewIdStartsANewCall) {
  ChatStream s;
  ASSERT_TRUE(
      feed_all(
          s,
          {R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"a","arguments":"{\"x\":1}"}}]}}]})",
           R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c2","function":{"name":"b","arguments":"{\"y\":"}}]}}]})",
           R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"2}"}}]}}]})"})
          .ok());
  const auto& calls = s.result().tool_calls;
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].arguments, R"({"x":1})");
  EXPECT_EQ(calls[1].id, "c2");
  EXPECT_EQ(calls[1].name, "b");
  EXPECT_EQ(calls[1].arguments, R"({"y":2})");
}

TEST(ChatStream, InBandErrorAfterContentIsAnErrorAndKeepsWhatCame) {
  ChatStream s;
  ASSERT_TRUE(s.on_data(R"({"choices":[{"index":0,"delta":{"content":"partial"}}]})").ok());
  auto r = s.on_data(R"({"error":{"code":429,"message":"Rate limit exceeded upstream"}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("429"), std::string::npos);
  EXPECT_NE(r.error().message.find("Rate limit"), std::string::npos);
  ASSERT_TRUE(s.in_band_error());
  EXPECT_EQ(s.in_band_error()->code, 429);
  EXPECT_EQ(s.result().content, "partial");
}

TEST(ChatStream, MalformedChunksNameWhatArrived) {
  for (std::string_view bad : {"{\"choices\": [", "not json", "[1,2]", "42"}) {
    ChatStream s;
    auto r = s.on_data(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("malformed"), std::string::npos);
    EXPECT_NE(r.error().message.find(std::string(bad.substr(0, 3))), std::string::npos);
  }
  ChatStream s;
  EXPECT_FALSE(
      s.on_data(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":99999}]}}]})").ok());
}

TEST(ChatStream, WrongTypesAreIgnoredNotCrashing) {
  ChatStream s;
  ASSERT_TRUE(
      feed_all(
          s, {R"({"id":7,"model":null,"choices":"x"})",
              R"({"choices":[{"index":0,"delta":{"content":5,"tool_calls":{"a":1}}}]})",
              R"({"choices":[{"index":0,"delta":{"tool_calls":[5,{"index":0,"function":"f"}]}}]})",
              R"({"usage":{"prompt_tokens":"many","cost":"free"}})"})
          .ok());
  ASSERT_TRUE(s.result().usage);
  EXPECT_EQ(s.result().usage->prompt_tokens, 0);
  EXPECT_FALSE(s.result().usage->cost_usd);
}

}  // namespace chat_stream_test
}  // namespace parley::bot::llm
