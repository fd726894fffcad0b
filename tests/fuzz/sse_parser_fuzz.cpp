// sse_parser_fuzz: a libFuzzer target for SseParser and the ChatStream fed by its events.
//
// The whole input is the HTTP body, so the seed corpus (tests/fuzz/corpus/sse/) holds plain SSE
// streams. A FuzzedDataProvider over the same bytes (it takes integers from the end) chooses a
// small max_event_bytes and where the body is cut into pieces.
//
// Invariants (a violation aborts, and libFuzzer keeps the input):
// - Without a size limit, the parser agrees with a naive model of its header's contract (split
//   the whole body into lines, then interpret them) on the events (type, data, id), comments()
//   and finish_clean(), whether the body arrives whole, a byte at a time or cut at random.
// - With a small max_event_bytes, whole or cut at random, it either agrees too, or fails with
//   invalid_argument having dispatched a prefix of those events, none larger than the limit;
//   after the error, feed returns it again and dispatches nothing.
// - ChatStream, fed the data of every event, never throws; an in-band error shows in
//   in_band_error(); done() iff "[DONE]" came; it never assembles more text than it was given.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.h"
#include "parley/bot/clients/llm/chat_stream.h"
#include "parley/bot/clients/llm/sse_parser.h"

namespace {

using parley::Error;
using parley::ErrorCode;
using parley::Status;
using parley::bot::llm::ChatStream;
using parley::bot::llm::SseEvent;
using parley::bot::llm::SseParser;

using parley::fuzz::violated;

constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

struct Outcome {
  std::vector<SseEvent> events;
  size_t comments = 0;
  bool clean = false;
  std::optional<Error> error;
};

bool same(const SseEvent& a, const SseEvent& b) {
  return a.type == b.type && a.data == b.data && a.id == b.id;
}

// The contract of sse_parser.h done the naive way; shares no code with SseParser.
Outcome model(std::string_view body) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < body.size();) {
    if (body[i] != '\r' && body[i] != '\n') {
      ++i;
      continue;
    }
    lines.push_back(body.substr(start, i - start));
    i += body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n' ? 2 : 1;
    start = i;
  }
  Outcome out;
  std::string type;
  std::string data;
  std::string id;
  bool has_data = false;
  bool pending = false;
  for (std::string_view l : lines) {
    if (l.empty()) {
      if (has_data) out.events.push_back(SseEvent{type.empty() ? "message" : type, data, id});
      type.clear();
      data.clear();
      has_data = false;
      pending = false;
    } else if (l.front() == ':') {
      ++out.comments;
    } else {
      pending = true;
      const size_t colon = l.find(':');
      const std::string_view field = l.substr(0, colon);
      std::string_view value = colon == std::string_view::npos ? "" : l.substr(colon + 1);
      if (value.starts_with(' ')) value.remove_prefix(1);
      if (field == "data") {
        if (has_data) data += '\n';
        data += value;
        has_data = true;
      } else if (field == "event") {
        type = value;
      } else if (field == "id" && value.find('\0') == std::string_view::npos) {
        id = value;
      }
    }
  }
  out.clean = start == body.size() && !pending;
  return out;
}

// Feeds `body` to a parser in pieces of the given sizes (empty pieces included), then the rest.
Outcome parse(std::string_view body, size_t max_event_bytes, const std::vector<size_t>& pieces) {
  SseParser p(max_event_bytes);
  Outcome out;
  const SseParser::OnEvent on_event = [&](SseEvent&& e) { out.events.push_back(std::move(e)); };
  size_t at = 0;
  for (size_t k = 0; k <= pieces.size(); ++k) {
    const size_t n = k < pieces.size() ? pieces[k] : body.size() - at;
    Status st = p.feed(body.substr(at, n), on_event);
    at += std::min(n, body.size() - at);
    if (!st.ok()) {
      out.error = std::move(st).error();
      break;
    }
  }
  PARLEY_FUZZ_CHECK(p.events() == out.events.size());
  if (out.error) {
    const size_t dispatched = out.events.size();
    for (std::string_view more : {body.substr(at), std::string_view("\n\ndata: x\n\n")}) {
      const Status again = p.feed(more, on_event);
      PARLEY_FUZZ_CHECK(!again.ok());
      PARLEY_FUZZ_CHECK(again.error().code == out.error->code);
      PARLEY_FUZZ_CHECK(again.error().message == out.error->message);
    }
    PARLEY_FUZZ_CHECK(out.events.size() == dispatched);
    PARLEY_FUZZ_CHECK(p.events() == dispatched);
  } else {
    PARLEY_FUZZ_CHECK(at == body.size());
  }
  out.comments = p.comments();
  out.clean = p.finish_clean();
  return out;
}

void check_agrees(const Outcome& expected, const Outcome& got) {
  PARLEY_FUZZ_CHECK(!got.error);
  PARLEY_FUZZ_CHECK(got.events.size() == expected.events.size());
  for (size_t i = 0; i < got.events.size(); ++i) {
    PARLEY_FUZZ_CHECK(same(got.events[i], expected.events[i]));
  }
  PARLEY_FUZZ_CHECK(got.comments == expected.comments);
  PARLEY_FUZZ_CHECK(got.clean == expected.clean);
}

void check_within_limit(const Outcome& expected, const Outcome& got, size_t max_event_bytes) {
  for (const SseEvent& e : got.events) PARLEY_FUZZ_CHECK(e.data.size() <= max_event_bytes);
  if (!got.error) {
    check_agrees(expected, got);
    return;
  }
  PARLEY_FUZZ_CHECK(got.error->code == ErrorCode::invalid_argument);
  PARLEY_FUZZ_CHECK(got.events.size() <= expected.events.size());
  for (size_t i = 0; i < got.events.size(); ++i) {
    PARLEY_FUZZ_CHECK(same(got.events[i], expected.events[i]));
  }
}

// The client stops at the first error; feeding on past errors only widens what gets exercised.
void check_chat_stream(const std::vector<SseEvent>& events) {
  ChatStream s;
  size_t given = 0;
  bool saw_done = false;
  for (const SseEvent& e : events) {
    given += e.data.size();
    saw_done = saw_done || e.data == "[DONE]";
    const Status st = s.on_data(e.data);
    if (st.ok()) continue;
    PARLEY_FUZZ_CHECK(!st.error().message.empty());
    PARLEY_FUZZ_CHECK(st.error().code == ErrorCode::unavailable ||
                      st.error().code == ErrorCode::internal);
    if (st.error().code == ErrorCode::unavailable) PARLEY_FUZZ_CHECK(s.in_band_error());
  }
  PARLEY_FUZZ_CHECK(s.done() == saw_done);
  // JSON escapes only ever shrink a string, and each assembled byte comes from its own place in
  // the input.
  const auto& r = s.result();
  size_t assembled = r.content.size() + r.reasoning.size();
  for (const auto& call : r.tool_calls) assembled += call.name.size() + call.arguments.size();
  PARLEY_FUZZ_CHECK(assembled <= given);
  const auto taken = s.take();
  PARLEY_FUZZ_CHECK(taken.tool_calls.size() <= given);
}

void test_one_input(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  FuzzedDataProvider fdp(data, size);
  const size_t max_event_bytes = fdp.ConsumeIntegralInRange<size_t>(1, 1024);
  // Mostly tiny pieces (a CR and its LF apart, a field name cut), some larger ones.
  std::vector<size_t> pieces;
  for (size_t total = 0; total < size && fdp.remaining_bytes() > 0;) {
    const auto b = fdp.ConsumeIntegral<uint8_t>();
    pieces.push_back(b < 160 ? b % 8 : b - 160u);
    total += pieces.back();
  }
  const std::vector<size_t> bytes(size, 1);

  const Outcome expected = model(body);
  check_agrees(expected, parse(body, kNoLimit, {}));
  check_agrees(expected, parse(body, kNoLimit, bytes));
  check_agrees(expected, parse(body, kNoLimit, pieces));
  check_within_limit(expected, parse(body, max_event_bytes, {}), max_event_bytes);
  check_within_limit(expected, parse(body, max_event_bytes, pieces), max_event_bytes);
  check_chat_stream(expected.events);
}

}  // namespace

PARLEY_FUZZ_MAIN(test_one_input)
