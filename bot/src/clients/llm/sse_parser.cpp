#include "parley/bot/clients/llm/sse_parser.h"

#include <fmt/format.h>

namespace parley::bot::llm {

Status SseParser::feed(std::string_view bytes, const OnEvent& on_event) {
  if (!error_.ok()) return error_;
  size_t i = 0;
  if (skip_lf_ && !bytes.empty()) {
    if (bytes[0] == '\n') i = 1;
    skip_lf_ = false;
  }
  while (i < bytes.size()) {
    const size_t end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      partial_.append(bytes.substr(i));
      if (partial_.size() + data_.size() > max_event_bytes_) {
        error_ = fail(ErrorCode::invalid_argument,
                      fmt::format("SSE event larger than {} bytes", max_event_bytes_));
        return error_;
      }
      break;
    }
    if (partial_.empty()) {
      line(bytes.substr(i, end - i), on_event);
    } else {
      partial_.append(bytes.substr(i, end - i));
      line(partial_, on_event);
      partial_.clear();
    }
    if (bytes[end] == '\r') {
      if (end + 1 < bytes.size()) {
        i = bytes[end + 1] == '\n' ? end + 2 : end + 1;
      } else {
        skip_lf_ = true;
        i = end + 1;
      }
    } else {
      i = end + 1;
    }
    if (data_.size() > max_event_bytes_) {
      error_ = fail(ErrorCode::invalid_argument,
                    fmt::format("SSE event larger than {} bytes", max_event_bytes_));
      return error_;
    }
  }
  return {};
}

void SseParser::line(std::string_view l, const OnEvent& on_event) {
  if (l.empty()) {  // dispatch
    pending_fields_ = false;
    if (has_data_) {
      SseEvent e;
      e.type = type_.empty() ? "message" : type_;
      e.data = std::move(data_);
      e.id = last_id_;
      ++events_;
      on_event(std::move(e));
    }
    data_.clear();
    has_data_ = false;
    type_.clear();
    return;
  }
  if (l.front() == ':') {
    ++comments_;
    return;
  }
  pending_fields_ = true;
  const size_t colon = l.find(':');
  const std::string_view field = colon == std::string_view::npos ? l : l.substr(0, colon);
  std::string_view value =
      colon == std::string_view::npos ? std::string_view() : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) data_ += '\n';
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    type_ = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_ = std::string(value);
  }
  // "retry" and unknown fields: ignored (the client has its own retry policy).
}

bool SseParser::finish_clean() const { return partial_.empty() && !pending_fields_; }

}  // namespace parley::bot::llm
