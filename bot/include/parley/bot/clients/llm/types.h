// The request side of an OpenAI-compatible /chat/completions call, and its serialisation.
// The response side (ChatResult, ToolCall, Usage) is in chat_stream.h; a non-streamed response
// body is read by parse_completion() into the same types.
//
// Value types; no thread-safety concerns.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <memory>
#include <nlohmann/json.hpp>

#include "parley/base/result.h"
#include "parley/bot/clients/llm/chat_stream.h"

namespace parley::bot::llm {

enum class Role { system, user, assistant, tool };
std::string_view to_string(Role role) noexcept;

struct Message {
  Role role = Role::user;
  std::string content;
  std::vector<ToolCall> tool_calls;  // assistant messages that called tools
  std::string tool_call_id;          // tool messages: the call they answer
  std::string name;                  // optional participant name

  static Message system(std::string text) { return {Role::system, std::move(text), {}, {}, {}}; }
  static Message user(std::string text) { return {Role::user, std::move(text), {}, {}, {}}; }
  static Message assistant(std::string text, std::vector<ToolCall> calls = {}) {
    return {Role::assistant, std::move(text), std::move(calls), {}, {}};
  }
  static Message tool(std::string call_id, std::string result) {
    return {Role::tool, std::move(result), {}, std::move(call_id), {}};
  }
};

// A JSON value shared read-only, with its serialised text: a tool's schema is built and
// serialised once per capability and shared by every request that offers it — neither copied
// into each (a waiting call holds its request) nor serialised again per call (the request body
// splices the text in: request_body()).
class SharedJson {
 public:
  struct Value {
    explicit Value(nlohmann::json v);
    nlohmann::json value;
    std::string text;  // value, compact; invalid UTF-8 replaced by U+FFFD
  };

  SharedJson() : value_(empty_object()) {}
  // NOLINTNEXTLINE(google-explicit-constructor): a schema written in place
  SharedJson(nlohmann::json value) : value_(std::make_shared<const Value>(std::move(value))) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  SharedJson(std::shared_ptr<const Value> value)
      : value_(value ? std::move(value) : empty_object()) {}
  [[nodiscard]] const nlohmann::json& get() const { return value_->value; }
  [[nodiscard]] const std::string& text() const { return value_->text; }
  // NOLINTNEXTLINE(google-explicit-constructor): reads as the JSON it holds
  operator const nlohmann::json&() const { return value_->value; }
  const nlohmann::json* operator->() const { return &value_->value; }

 private:
  static const std::shared_ptr<const Value>& empty_object();
  std::shared_ptr<const Value> value_;
};

struct ToolDefinition {
  std::string name;
  std::string description;
  SharedJson parameters;  // JSON Schema of the arguments (an empty object by default)
};

struct ChatRequest {
  std::vector<Message> messages;
  std::vector<ToolDefinition> tools;
  // "auto" | "none" | "required" | {"type": "function", "function": {"name": …}}; empty: unset.
  nlohmann::json tool_choice;
  std::optional<int> max_tokens;
  std::optional<double> temperature;
  std::vector<std::string> stop;
  nlohmann::json response_format;  // e.g. {"type": "json_object"}; empty: unset
  bool stream = true;

  static nlohmann::json force_tool(const std::string& name) {
    return {{"type", "function"}, {"function", {{"name", name}}}};
  }
};

// The request body for `model`. `model_options` (an object from the configuration) is merged
// in first, so that a field the request sets explicitly wins.
nlohmann::json to_json(const ChatRequest& request, const std::string& model,
                       const nlohmann::json& model_options = nlohmann::json::object());
// to_json() serialised (compact, invalid UTF-8 replaced by U+FFFD), what a call sends: the same
// members, with "tools" last and each tool's schema spliced in from its SharedJson::text().
std::string request_body(const ChatRequest& request, const std::string& model,
                         const nlohmann::json& model_options = nlohmann::json::object());

// Reads a non-streamed chat.completion body. An {"error": …} body (some providers answer
// errors with HTTP 200) gives in_band (when not null) and an error.
Result<ChatResult> parse_completion(std::string_view body, StreamError* in_band = nullptr);

// A rough token count for text (about four bytes per token), for estimates only.
int64_t estimate_tokens(std::string_view text) noexcept;
int64_t estimate_prompt_tokens(const ChatRequest& request) noexcept;

}  // namespace parley::bot::llm
