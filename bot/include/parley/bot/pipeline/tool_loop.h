// ToolLoop: one LLM turn with capabilities as tools. The model's tool calls are checked (known
// tool, allowed for this caller, arguments valid JSON matching the tool's schema) and run, each
// with its own timeout; results (or clear tool errors) go back as tool messages; the model is
// asked again, until it answers in text.
//
// Bounded by: a maximum number of model calls (default 8), the turn's absolute deadline, and a
// circuit breaker — a capability that fails `breaker_failures` times in a turn is withdrawn for
// the rest of it. Nothing is retried automatically: a failed tool call is reported to the
// model, which decides; a capability whose side effects are `unsafe` (its flags, or the
// operator's `side_effects` for an MCP tool) is never run twice with the same arguments in one
// turn.
//
// Tools are offered as tool_selection.h's tool_definition() builds them, under their wire_name()
// (the model's calls are mapped back); ToolLoopOptions::offered narrows them to a turn's
// selection.
//
// Models without native tool calls: when a model's options say `"tools": "text"`, the tools are
// described in a system message instead, and the model calls one by writing
//   <tool_call>{"name": "calc", "arguments": {"expression": "2+2"}}</tool_call>
// in its text (the Hermes/Qwen convention); results come back as user messages
//   <tool_result name="calc">{…}</tool_result>.
//
// Thread safety: run() may be called concurrently for different turns; each turn's coroutine
// runs on the executor it was started on.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parley/bot/clients/llm/client.h"
#include "parley/bot/net.h"
#include "parley/bot/pipeline/attachments.h"
#include "parley/capabilities/capability.h"
#include "parley/capabilities/config.h"
#include "parley/capabilities/rate_limiter.h"

namespace parley::bot::pipeline {

struct ToolLoopOptions {
  int max_iterations = 8;    // model calls in one turn
  int breaker_failures = 3;  // failures of one capability before it is withdrawn
  // A tool result is cut to this before the model sees it.
  size_t max_result_bytes = size_t{16} * 1024;
  std::string role;        // LLM role; empty: the default
  int64_t message_id = 0;  // the user message the turn answers (kept with its usage rows)
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  bool text_protocol = false;  // describe tools in text instead of native tool calls
  // The capabilities offered this turn (see tool_selection.h); nullopt: every permitted one.
  // Permission is still checked: a name here that the caller may not use is not offered. A call
  // to a tool not offered gets the same error as a call to an unknown one.
  std::optional<std::vector<std::string>> offered;
  // Receives the model's text as it is generated (the call is streamed); empty: not streamed.
  // `restart`: a new model call or a retry starts over — discard the text received so far.
  // Text written before a tool call reaches it too; the result's reply is the final word.
  std::function<void(const std::string& text, bool restart)> on_text;
};

struct ToolStep {
  std::string call_id;
  std::string capability;
  std::string arguments;  // as the model sent them
  bool ok = false;
  std::string result;  // the JSON given back to the model (a result, or {"error": …})
  std::chrono::microseconds latency{0};
};

struct ToolLoopResult {
  // budget: the spend gate refused a model call (the reply is its refusal, for the user).
  enum class Stop { answered, iteration_limit, deadline, llm_error, budget };
  Stop stop = Stop::answered;
  std::string reply;                        // always something to tell the user
  std::vector<llm::LlmResponse> llm_calls;  // every model call, with its attempts and usage
  std::vector<ToolStep> steps;
  std::vector<std::string> withdrawn;  // capabilities the breaker withdrew
  std::optional<Error> error;          // llm_error: what failed
  // Files the tools' results carried (the model saw only what each is), for the reply, and
  // those that could not go (a note for the user).
  TakenFiles files;

  // The distinct capabilities the steps called, in first-call order (for the reply's metadata:
  // tools used recently stay offered, see tool_selection.h).
  [[nodiscard]] std::vector<std::string> tools_used() const;
};
std::string_view to_string(ToolLoopResult::Stop stop) noexcept;

// Parses <tool_call>{…}</tool_call> blocks out of model text (the text protocol). Returns the
// calls (ids "text_call_N") and the text with the blocks removed.
std::vector<llm::ToolCall> parse_text_tool_calls(std::string& text);

class ToolLoop {
 public:
  // `limiter`, when given, applies each capability's rate limit per user (shared with
  // /commands so that one cannot dodge the other).
  ToolLoop(llm::LlmClient& client, const capabilities::Registry& registry,
           capabilities::RateLimiter* limiter = nullptr)
      : client_(client), registry_(registry), limiter_(limiter) {}

  // `request` holds the conversation so far (system prompt, history, the user's message);
  // its tools are replaced by the capabilities this caller may use under `config` (of those,
  // only options.offered when set). `context` is the base for every capability call (caller,
  // conversation, channel, data, services).
  net::asio::awaitable<ToolLoopResult> run(
      llm::ChatRequest request, capabilities::InvokeContext context,
      std::shared_ptr<const capabilities::CapabilitiesConfig> config, ToolLoopOptions options);

 private:
  net::asio::awaitable<ToolStep> run_tool(const llm::ToolCall& call,
                                          const capabilities::InvokeContext& context,
                                          const capabilities::CapabilitiesConfig& config,
                                          const ToolLoopOptions& options, TakenFiles& files);

  llm::LlmClient& client_;
  const capabilities::Registry& registry_;
  capabilities::RateLimiter* limiter_;
};

}  // namespace parley::bot::pipeline
