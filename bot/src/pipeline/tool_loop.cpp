#include "parley/bot/pipeline/tool_loop.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>

#include "parley/base/text.h"
#include "parley/bot/pipeline/tool_selection.h"
#include "parley/capabilities/json_schema.h"
#include "pipeline/invoke_with_timeout.h"

namespace parley::bot::pipeline {

namespace asio = net::asio;
namespace caps = parley::capabilities;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

std::string_view to_string(ToolLoopResult::Stop stop) noexcept {
  switch (stop) {
    case ToolLoopResult::Stop::answered: return "answered";
    case ToolLoopResult::Stop::iteration_limit: return "iteration_limit";
    case ToolLoopResult::Stop::deadline: return "deadline";
    case ToolLoopResult::Stop::llm_error: return "llm_error";
    case ToolLoopResult::Stop::budget: return "budget";
  }
  return "unknown";
}

std::vector<std::string> ToolLoopResult::tools_used() const {
  std::vector<std::string> out;
  for (const auto& step : steps) {
    if (std::find(out.begin(), out.end(), step.capability) == out.end()) {
      out.push_back(step.capability);
    }
  }
  return out;
}

std::vector<llm::ToolCall> parse_text_tool_calls(std::string& text) {
  static constexpr std::string_view kOpen = "<tool_call>";
  static constexpr std::string_view kClose = "</tool_call>";
  std::vector<llm::ToolCall> calls;
  std::string rest;
  size_t at = 0;
  while (true) {
    const size_t open = text.find(kOpen, at);
    if (open == std::string::npos) break;
    const size_t close = text.find(kClose, open + kOpen.size());
    if (close == std::string::npos) break;
    rest += text.substr(at, open - at);
    const std::string body = text.substr(open + kOpen.size(), close - open - kOpen.size());
    llm::ToolCall call;
    call.id = fmt::format("text_call_{}", calls.size() + 1);
    const json j = json::parse(body, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("name") && j["name"].is_string()) {
      call.name = j["name"].get<std::string>();
      const json args = j.value("arguments", json::object());
      call.arguments = args.is_string() ? args.get<std::string>() : args.dump();
    } else {
      call.name = "(unreadable)";
      call.arguments = body;
    }
    calls.push_back(std::move(call));
    at = close + kClose.size();
  }
  rest += text.substr(at);
  text = std::move(rest);
  return calls;
}

namespace {

std::string cut(std::string s, size_t max) {
  if (s.size() <= max) return s;
  return std::string(utf8_prefix(s, max)) + "…(cut)";
}

std::string tool_error(const std::string& message) { return json{{"error", message}}.dump(); }

bool is_offered(const ToolLoopOptions& options, const std::string& name) {
  return !options.offered || std::find(options.offered->begin(), options.offered->end(), name) !=
                                 options.offered->end();
}

// Never repeated automatically: the operator's side_effects for the tool, else its own.
bool is_unsafe(const caps::Capability& capability, const caps::CapabilitiesConfig& config) {
  return caps::side_effects_of(capability, config.for_capability(capability)) ==
         caps::SideEffects::unsafe;
}

std::string describe_tools_for_text(const std::vector<llm::ToolDefinition>& tools) {
  std::string out =
      "You can use tools. To call one, write on its own line exactly:\n"
      "<tool_call>{\"name\": \"TOOL\", \"arguments\": {…}}</tool_call>\n"
      "and stop; the result comes back as <tool_result name=\"TOOL\">…</tool_result>. Tools:\n";
  for (const auto& t : tools) {
    out += fmt::format("- {}: {} Arguments (JSON Schema): {}\n", t.name, t.description,
                       t.parameters.text());
  }
  return out;
}

}  // namespace

asio::awaitable<ToolStep> ToolLoop::run_tool(const llm::ToolCall& call,
                                             const caps::InvokeContext& context,
                                             const caps::CapabilitiesConfig& config,
                                             const ToolLoopOptions& options, TakenFiles& files) {
  ToolStep step;
  step.call_id = call.id;
  step.capability = call.name;
  step.arguments = call.arguments;
  const auto start = SteadyClock::now();
  caps::Capability* capability = registry_.find(call.name);
  if (capability == nullptr || !is_offered(options, call.name)) {
    step.result = tool_error(fmt::format("there is no tool named '{}'", call.name));
    co_return step;
  }
  const auto cfg = config.for_capability(*capability);
  if (const auto decision = caps::may_use(*capability, cfg, context.caller, context.channel);
      !decision.allowed) {
    step.result = tool_error(decision.reason);
    co_return step;
  }
  std::chrono::seconds wait{0};
  if (limiter_ != nullptr && !limiter_->allow(context.caller.user_id, call.name, cfg.rate_limit,
                                              SteadyClock::now(), &wait)) {
    step.result = tool_error(fmt::format(
        "{} is rate limited for this user; it can be used again in {} s", call.name, wait.count()));
    co_return step;
  }
  json args = call.arguments.empty() ? json::object() : json::parse(call.arguments, nullptr, false);
  if (args.is_discarded()) {
    step.result = tool_error(fmt::format(
        "the arguments are not valid JSON: {}; send a JSON object matching the tool's schema",
        cut(call.arguments, 200)));
    co_return step;
  }
  caps::InvokeContext ctx = context;
  ctx.settings = cfg.settings;
  const auto until = std::min(options.deadline, SteadyClock::now() + cfg.timeout);
  ctx.deadline = until;
  auto result = co_await detail::invoke_with_timeout(*capability, ctx, std::move(args), until);
  step.latency = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start);
  if (result.ok()) {
    step.ok = true;
    take_attachments(*result, files);
    step.result =
        cut(result->dump(-1, ' ', false, json::error_handler_t::replace), options.max_result_bytes);
  } else {
    step.result = tool_error(result.error().message);
  }
  co_return step;
}

asio::awaitable<ToolLoopResult> ToolLoop::run(
    llm::ChatRequest request, caps::InvokeContext context,
    std::shared_ptr<const caps::CapabilitiesConfig> config, ToolLoopOptions options) {
  ToolLoopResult out;
  // The tools this caller may use here, narrowed to the turn's selection.
  std::vector<llm::ToolDefinition> tools;
  // The names the model calls tools by (wire_name) → the capabilities'.
  std::map<std::string, std::string> by_wire;
  for (const auto& name :
       permitted_capabilities(registry_, *config, context.caller, context.channel)) {
    if (!is_offered(options, name)) continue;
    const caps::Capability* capability = registry_.find(name);
    if (capability == nullptr) continue;  // an MCP server's tool withdrawn a moment ago
    llm::ToolDefinition t = tool_definition(*capability);
    if (auto [it, fresh] = by_wire.emplace(t.name, name); !fresh) {
      spdlog::warn("tool loop: {} and {} are both called {} by the model; {} is not offered",
                   it->second, name, t.name, name);
      continue;
    }
    tools.push_back(std::move(t));
  }
  const auto resolve = [&by_wire](const std::string& called) {
    const auto it = by_wire.find(called);
    return it != by_wire.end() ? it->second : called;
  };
  std::map<std::string, int> failures;
  std::set<std::string> withdrawn;
  std::set<std::string> unsafe_done;  // name + arguments of unsafe calls already run
  if (options.text_protocol && !tools.empty()) {
    request.messages.insert(request.messages.begin(),
                            llm::Message::system(describe_tools_for_text(tools)));
  }
  // Native tools travel in the request; one copy only (each schema is kilobytes as JSON, and
  // the request lives as long as the turn waits on the model).
  request.tools.clear();
  if (!options.text_protocol) request.tools = std::move(tools);

  std::string last_text;
  bool streamed = false;  // some text went to options.on_text
  // The calls of this turn share a key: the per-turn budget counts them together.
  static std::atomic<uint64_t> turns{0};
  const std::string turn_key =
      fmt::format("{}-{}", context.conversation_id, turns.fetch_add(1) + 1);
  std::string after_capability;  // the capabilities whose results the next call reads
  for (int iteration = 0;; ++iteration) {
    if (SteadyClock::now() >= options.deadline) {
      out.stop = ToolLoopResult::Stop::deadline;
      break;
    }
    if (iteration >= options.max_iterations) {
      out.stop = ToolLoopResult::Stop::iteration_limit;
      break;
    }
    std::erase_if(request.tools, [&withdrawn, &resolve](const llm::ToolDefinition& t) {
      return withdrawn.count(resolve(t.name)) != 0;
    });
    llm::CallOptions call_options;
    call_options.role = options.role;
    call_options.deadline = options.deadline;
    call_options.purpose = iteration == 0 ? "turn" : "tool_step";
    call_options.user_id = context.caller.user_id;
    call_options.conversation_id = context.conversation_id;
    call_options.message_id = options.message_id;
    call_options.turn_key = turn_key;
    call_options.capability = after_capability;
    // Text is streamed as the model writes it (never with the text protocol, whose tool calls
    // are written in the text). The attempt last seen is shared, not a mutable capture: the
    // client copies on_text for every piece it posts, and each copy would start again at -1 and
    // mark its piece a restart.
    if (!options.text_protocol && options.on_text) {
      auto last_attempt = std::make_shared<int>(-1);  // of this call
      call_options.on_text = [&options, &streamed, last_attempt](int attempt,
                                                                 std::string_view text) {
        const bool restart = streamed && attempt != *last_attempt;
        *last_attempt = attempt;
        streamed = true;
        options.on_text(std::string(text), restart);
      };
    }
    llm::LlmResponse response = co_await client_.call(request, call_options);
    out.llm_calls.push_back(response);
    if (!response.ok() && response.failure == llm::FailureKind::budget) {
      out.stop = ToolLoopResult::Stop::budget;
      out.error = response.error;
      break;
    }
    if (!response.ok()) {
      out.stop = response.failure == llm::FailureKind::deadline ? ToolLoopResult::Stop::deadline
                                                                : ToolLoopResult::Stop::llm_error;
      out.error = response.error;
      break;
    }
    llm::ChatResult result = *response.result;
    std::vector<llm::ToolCall> calls = result.tool_calls;
    if (options.text_protocol && calls.empty()) calls = parse_text_tool_calls(result.content);
    if (!result.content.empty()) last_text = result.content;
    if (calls.empty()) {
      out.reply = result.content;
      out.stop = ToolLoopResult::Stop::answered;
      co_return out;
    }
    if (options.text_protocol) {
      request.messages.push_back(llm::Message::assistant(response.result->content));
    } else {
      request.messages.push_back(llm::Message::assistant(result.content, calls));
    }
    after_capability.clear();
    for (const auto& called : calls) {
      llm::ToolCall call = called;
      call.name = resolve(called.name);
      if (after_capability.find(call.name) == std::string::npos) {
        after_capability += (after_capability.empty() ? "" : ",") + call.name;
      }
      ToolStep step;
      const std::string key = call.name + "\n" + call.arguments;
      // A tool not offered this turn is treated as unknown (run_tool says so).
      const caps::Capability* capability =
          is_offered(options, call.name) ? registry_.find(call.name) : nullptr;
      if (withdrawn.count(call.name) != 0) {
        step.call_id = call.id;
        step.capability = call.name;
        step.arguments = call.arguments;
        step.result = tool_error(fmt::format(
            "{} failed too often in this turn and is no longer available; answer without it",
            call.name));
      } else if (capability != nullptr && is_unsafe(*capability, *config) &&
                 unsafe_done.count(key) != 0) {
        step.call_id = call.id;
        step.capability = call.name;
        step.arguments = call.arguments;
        step.result = tool_error(
            fmt::format("{} was already run with these arguments in this turn; it is not repeated "
                        "automatically",
                        call.name));
      } else {
        step = co_await run_tool(call, context, *config, options, out.files);
        if (capability != nullptr && is_unsafe(*capability, *config)) unsafe_done.insert(key);
        if (!step.ok && capability != nullptr &&
            ++failures[call.name] >= options.breaker_failures) {
          withdrawn.insert(call.name);
          out.withdrawn.push_back(call.name);
          spdlog::warn("tool loop: {} withdrawn for the rest of the turn after {} failures",
                       call.name, failures[call.name]);
        }
      }
      if (options.text_protocol) {
        request.messages.push_back(llm::Message::user(
            fmt::format("<tool_result name=\"{}\">{}</tool_result>", called.name, step.result)));
      } else {
        request.messages.push_back(llm::Message::tool(call.id, step.result));
      }
      out.steps.push_back(std::move(step));
    }
  }
  // Stopped before a text answer: a short, clear one, with what the model said so far.
  switch (out.stop) {
    case ToolLoopResult::Stop::iteration_limit:
      out.reply =
          fmt::format("I stopped after {} steps without finishing this. {}", options.max_iterations,
                      last_text.empty() ? "Please try a simpler or more specific request."
                                        : "Where I got to: " + last_text);
      break;
    case ToolLoopResult::Stop::deadline:
      out.reply =
          last_text.empty()
              ? "I ran out of time for this request before I could answer. Please try again."
              : "I ran out of time before finishing. Where I got to: " + last_text;
      break;
    case ToolLoopResult::Stop::llm_error:
      out.reply = out.error && out.error->code == ErrorCode::billing
                      ? "I can't answer right now: the language model account is out of credit."
                      : "I can't reach the language model right now. Please try again in a minute.";
      break;
    case ToolLoopResult::Stop::budget:
      // The gate's refusal is written for the user: which budget, how much, when it resets.
      out.reply = out.error ? out.error->message : "The LLM budget is used up.";
      break;
    case ToolLoopResult::Stop::answered: break;
  }
  co_return out;
}

}  // namespace parley::bot::pipeline
