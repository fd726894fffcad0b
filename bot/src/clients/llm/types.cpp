#include "parley/bot/clients/llm/types.h"

namespace parley::bot::llm {

using nlohmann::json;

namespace {
std::string compact(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}
}  // namespace

SharedJson::Value::Value(json v) : value(std::move(v)), text(compact(value)) {}

const std::shared_ptr<const SharedJson::Value>& SharedJson::empty_object() {
  static const auto empty = std::make_shared<const Value>(json::object());
  return empty;
}

std::string_view to_string(Role role) noexcept {
  switch (role) {
    case Role::system: return "system";
    case Role::user: return "user";
    case Role::assistant: return "assistant";
    case Role::tool: return "tool";
  }
  return "user";
}

namespace {

// Every member of the body but "tools".
json body_without_tools(const ChatRequest& request, const std::string& model,
                        const json& model_options) {
  json body = model_options.is_object() ? model_options : json::object();
  body["model"] = model;
  json messages = json::array();
  for (const auto& m : request.messages) {
    json msg = {{"role", to_string(m.role)}};
    if (m.role == Role::assistant && !m.tool_calls.empty()) {
      // content may be null beside tool calls; an empty string is accepted everywhere.
      msg["content"] = m.content.empty() ? json(nullptr) : json(m.content);
      json calls = json::array();
      for (const auto& c : m.tool_calls) {
        calls.push_back({{"id", c.id},
                         {"type", "function"},
                         {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
      }
      msg["tool_calls"] = std::move(calls);
    } else {
      msg["content"] = m.content;
    }
    if (m.role == Role::tool) msg["tool_call_id"] = m.tool_call_id;
    if (!m.name.empty()) msg["name"] = m.name;
    messages.push_back(std::move(msg));
  }
  body["messages"] = std::move(messages);
  // The request's tools replace any the configuration names; without any, the configuration's
  // stand.
  if (!request.tools.empty()) body.erase("tools");
  if (!request.tool_choice.is_null()) body["tool_choice"] = request.tool_choice;
  if (request.max_tokens) body["max_tokens"] = *request.max_tokens;
  if (request.temperature) body["temperature"] = *request.temperature;
  if (!request.stop.empty()) body["stop"] = request.stop;
  if (!request.response_format.is_null()) body["response_format"] = request.response_format;
  body["stream"] = request.stream;
  if (request.stream) {
    body["stream_options"] = {{"include_usage", true}};
  } else {
    body.erase("stream_options");
  }
  return body;
}

}  // namespace

json to_json(const ChatRequest& request, const std::string& model, const json& model_options) {
  json body = body_without_tools(request, model, model_options);
  if (!request.tools.empty()) {
    json tools = json::array();
    for (const auto& t : request.tools) {
      tools.push_back({{"type", "function"},
                       {"function",
                        {{"name", t.name},
                         {"description", t.description},
                         {"parameters", t.parameters.get()}}}});
    }
    body["tools"] = std::move(tools);
  }
  return body;
}

std::string request_body(const ChatRequest& request, const std::string& model,
                         const json& model_options) {
  std::string out = compact(body_without_tools(request, model, model_options));
  if (request.tools.empty()) return out;
  size_t size = out.size() + 16;
  for (const auto& t : request.tools) {
    size += t.name.size() + t.description.size() + t.parameters.text().size() + 80;
  }
  out.reserve(size);
  out.pop_back();  // the body's closing brace: "tools" goes last
  out += out.size() > 1 ? ",\"tools\":[" : "\"tools\":[";
  bool first = true;
  for (const auto& t : request.tools) {
    out += first ? "" : ",";
    first = false;
    out += R"({"type":"function","function":{"name":)";
    out += compact(t.name);
    out += R"(,"description":)";
    out += compact(t.description);
    out += R"(,"parameters":)";
    out += t.parameters.text();
    out += "}}";
  }
  out += "]}";
  return out;
}

Result<ChatResult> parse_completion(std::string_view body, StreamError* in_band) {
  ChatStream assembler;
  if (auto st = assembler.on_data(body); !st.ok()) {
    if (in_band != nullptr && assembler.in_band_error()) *in_band = *assembler.in_band_error();
    return fail(std::move(st).error());
  }
  if (!assembler.saw_choices()) {  // on_data() read the body as one chunk
    return fail(ErrorCode::internal, "malformed completion: no choices");
  }
  return assembler.take();
}

int64_t estimate_tokens(std::string_view text) noexcept {
  return static_cast<int64_t>((text.size() + 3) / 4);
}

int64_t estimate_prompt_tokens(const ChatRequest& request) noexcept {
  int64_t tokens = 3;  // reply priming
  for (const auto& m : request.messages) {
    tokens += 4 + estimate_tokens(m.content);  // per-message framing
    for (const auto& c : m.tool_calls) {
      tokens += estimate_tokens(c.name) + estimate_tokens(c.arguments);
    }
  }
  for (const auto& t : request.tools) {
    tokens += estimate_tokens(t.name) + estimate_tokens(t.description) +
              estimate_tokens(t.parameters.text());
  }
  return tokens;
}

}  // namespace parley::bot::llm
