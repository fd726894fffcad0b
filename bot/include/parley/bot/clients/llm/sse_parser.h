// SseParser: a Server-Sent Events parser (WHATWG "event stream interpretation") fed with the
// bytes of an HTTP body as they arrive, in pieces of any size.
//
// - Lines end with CRLF, LF or CR, also when a CR and its LF arrive in different pieces.
// - `data:` lines accumulate (joined with "\n") until a blank line dispatches the event; an
//   event with no data is not dispatched. One space after the colon is dropped.
// - Comment lines (starting with ':', e.g. OpenRouter's ": OPENROUTER PROCESSING") are counted
//   and otherwise ignored. Unknown fields are ignored.
// - A partial event when the body ends is dropped (finish() says whether there was one).
// - An event larger than max_event_bytes is an error: the parser refuses further input.
//
// Value type; not thread-safe (one parser per response, used by one strand).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "parley/base/result.h"

namespace parley::bot::llm {

struct SseEvent {
  std::string type = "message";  // the `event:` field
  std::string data;
  std::string id;  // the last `id:` seen (persists across events, as the spec says)
};

class SseParser {
 public:
  using OnEvent = std::function<void(SseEvent&&)>;

  explicit SseParser(size_t max_event_bytes = 8u << 20) : max_event_bytes_(max_event_bytes) {}

  // Parses `bytes`, calling on_event for every complete event. After an error, returns it again
  // without parsing.
  Status feed(std::string_view bytes, const OnEvent& on_event);
  // The body ended: true when nothing was left half-received (a partial line or an event
  // without its blank line).
  [[nodiscard]] bool finish_clean() const;

  [[nodiscard]] size_t comments() const { return comments_; }
  [[nodiscard]] size_t events() const { return events_; }

 private:
  void line(std::string_view l, const OnEvent& on_event);

  size_t max_event_bytes_;
  std::string partial_;   // bytes of the current line not yet terminated
  bool skip_lf_ = false;  // the last piece ended with CR: a leading LF belongs to it
  std::string data_;      // data of the current event
  bool has_data_ = false;
  std::string type_;
  std::string last_id_;
  bool pending_fields_ = false;  // the current event has some field but no blank line yet
  size_t comments_ = 0;
  size_t events_ = 0;
  Status error_;
};

}  // namespace parley::bot::llm
