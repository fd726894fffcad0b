// Tests of the SSE parser: events split across reads at every byte, all three line endings,
// multi-line data, comments, ids and types, partial events at the end, and the size limit.
#include "parley/bot/clients/llm/sse_parser.h"

#include <gtest/gtest.h>

#include <vector>

namespace parley::bot::llm {
namespace sse_parser_test {

std::vector<SseEvent> parse_in_pieces(std::string_view body, size_t piece,
                                      SseParser* out = nullptr) {
  SseParser local;
  SseParser& p = out != nullptr ? *out : local;
  std::vector<SseEvent> events;
  for (size_t i = 0; i < body.size(); i += piece) {
    EXPECT_TRUE(
        p.feed(body.substr(i, piece), [&](SseEvent&& e) { events.push_back(std::move(e)); }).ok());
  }
  return events;
}

// An OpenRouter-like stream: a comment, JSON chunks, [DONE].
constexpr std::string_view kStream =
    ": OPENROUTER PROCESSING\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n"
    ": keep-alive\r\r"
    "event: note\rid: 7\rdata: line one\rdata: line two\r\r"
    "data: [DONE]\n\n";

TEST(SseParser, SameEventsWhateverTheReadSizes) {
  const auto whole = parse_in_pieces(kStream, kStream.size());
  ASSERT_EQ(whole.size(), 4u);
  EXPECT_EQ(whole[0].data, R"({"choices":[{"index":0,"delta":{"content":"Hel"}}]})");
  EXPECT_EQ(whole[2].type, "note");
  EXPECT_EQ(whole[2].id, "7");
  EXPECT_EQ(whole[2].data, "line one\nline two");
  EXPECT_EQ(whole[3].data, "[DONE]");
  for (size_t piece = 1; piece < kStream.size(); ++piece) {
    SseParser p;
    const auto events = parse_in_pieces(kStream, piece, &p);
    ASSERT_EQ(events.size(), whole.size()) << "piece size " << piece;
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].data, whole[i].data) << "piece size " << piece;
      EXPECT_EQ(events[i].type, whole[i].type) << "piece size " << piece;
    }
    EXPECT_EQ(p.comments(), 2u);
    EXPECT_TRUE(p.finish_clean());
  }
}

TEST(SseParser, FieldSyntax) {
  const auto events = parse_in_pieces(
      "data:no space\n\n"
      "data:  two spaces\n\n"
      "data\n\n"  // a field with no colon: empty data
      "event: ignored-without-data\n\n"
      "retry: 1000\nunknown: x\ndata: kept\n\n",
      1000);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].data, "no space");
  EXPECT_EQ(events[1].data, " two spaces") << "only one space is dropped";
  EXPECT_EQ(events[2].data, "");
  EXPECT_EQ(events[3].data, "kept");
  EXPECT_EQ(events[3].type, "message") << "the event type resets after each dispatch";
}

TEST(SseParser, PartialEventAtTheEndIsNotDispatched) {
  SseParser p;
  std::vector<SseEvent> events;
  ASSERT_TRUE(p.feed("data: {\"truncated\":", [&](SseEvent&& e) { events.push_back(e); }).ok());
  EXPECT_TRUE(events.empty());
  EXPECT_FALSE(p.finish_clean());
  SseParser q;
  ASSERT_TRUE(q.feed("data: whole line\n", [&](SseEvent&& e) { events.push_back(e); }).ok());
  EXPECT_TRUE(events.empty()) << "no blank line yet";
  EXPECT_FALSE(q.finish_clean());
}

TEST(SseParser, OversizedEventIsAnErrorAndStopsTheParser) {
  SseParser p(64);
  int n = 0;
  auto on = [&](SseEvent&&) { ++n; };
  auto r = p.feed("data: " + std::string(100, 'x'), on);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("64"), std::string::npos);
  EXPECT_FALSE(p.feed("\n\ndata: x\n\n", on).ok());
  EXPECT_EQ(n, 0);
  // Many short data lines add up too.
  SseParser q(64);
  std::string many;
  for (int i = 0; i < 20; ++i) many += "data: 0123456789\n";
  EXPECT_FALSE(q.feed(many, on).ok());
}

}  // namespace sse_parser_test
}  // namespace parley::bot::llm
