// ChatStream: assembles a streamed OpenAI-compatible chat completion from the `data:` payloads
// of its SSE events (chat.completion.chunk objects, then "[DONE]").
//
// - Text deltas are concatenated; `reasoning` deltas (OpenRouter) kept apart.
// - Tool-call deltas are merged per `index`: id and name first, then argument fragments. Some
//   Ollama-compatible servers reuse index 0 for parallel calls: a delta with a *new* id at an
//   index that already has a call starts a new call.
// - `usage` (the final chunk, or OpenAI's extra `choices: []` chunk) is kept with the
//   provider's `cost` when present; the model that answered and the generation id too.
// - An in-band `{"error": …}` event (HTTP 200, then an error) and malformed JSON are errors
//   that name what arrived; what was assembled before them is kept (the caller still records
//   the usage it can).
//
// Value type; not thread-safe (one per response).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "parley/base/result.h"

namespace parley::bot::llm {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text as the model sent it: validate before use
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t reasoning_tokens = 0;
  std::optional<double> cost_usd;  // the provider's usage.cost, when reported
  bool estimated = false;          // no usage arrived; counted by the client
};

struct ChatResult {
  std::string id;     // the generation id
  std::string model;  // the model that answered
  std::string content;
  std::string reasoning;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;
  std::optional<Usage> usage;
};

// What an in-band error event carried.
struct StreamError {
  int code = 0;  // the error's code (an HTTP-like status), 0 when absent
  std::string message;
};

// Reads a `usage` object (a chunk's, a completion's, an embeddings response's).
Usage read_usage(const nlohmann::json& usage);
// Reads the value of an `error` field: {"code", "message"} or a bare string.
StreamError read_error(const nlohmann::json& error);

class ChatStream {
 public:
  // Feeds one event's data. Returns an error for malformed JSON or an in-band error event
  // (then in_band_error() holds it). "[DONE]" marks the stream complete.
  Status on_data(std::string_view data);

  [[nodiscard]] bool done() const { return done_; }
  // Whether a chunk fed so far had a non-empty "choices" array.
  [[nodiscard]] bool saw_choices() const { return saw_choices_; }
  [[nodiscard]] const ChatResult& result() const { return result_; }
  ChatResult take() { return std::move(result_); }
  [[nodiscard]] const std::optional<StreamError>& in_band_error() const { return error_; }

 private:
  void merge_tool_call(size_t index, const std::string* id, const std::string* name,
                       const std::string* arguments);

  ChatResult result_;
  // For each index, the position in result_.tool_calls of its current call.
  std::vector<std::optional<size_t>> slot_of_index_;
  std::optional<StreamError> error_;
  bool done_ = false;
  bool saw_choices_ = false;
};

}  // namespace parley::bot::llm
