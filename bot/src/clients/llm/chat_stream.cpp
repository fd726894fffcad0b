#include "parley/bot/clients/llm/chat_stream.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace parley::bot::llm {

namespace {

using nlohmann::json;

const std::string* string_at(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

int64_t int_at(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

std::string preview(std::string_view data) {
  constexpr size_t kMax = 120;
  return data.size() > kMax ? std::string(data.substr(0, kMax)) + "…" : std::string(data);
}

}  // namespace

Usage read_usage(const json& u) {
  Usage usage;
  usage.prompt_tokens = int_at(u, "prompt_tokens");
  usage.completion_tokens = int_at(u, "completion_tokens");
  if (auto d = u.find("prompt_tokens_details"); d != u.end() && d->is_object()) {
    usage.cached_tokens = int_at(*d, "cached_tokens");
  }
  if (auto d = u.find("completion_tokens_details"); d != u.end() && d->is_object()) {
    usage.reasoning_tokens = int_at(*d, "reasoning_tokens");
  }
  if (auto c = u.find("cost"); c != u.end() && c->is_number()) usage.cost_usd = c->get<double>();
  return usage;
}

StreamError read_error(const json& e) {
  StreamError err;
  if (e.is_object()) {
    if (auto c = e.find("code"); c != e.end()) {
      if (c->is_number_integer()) err.code = c->get<int>();
      if (c->is_string()) err.message = c->get<std::string>() + ": ";
    }
    if (const auto* m = string_at(e, "message")) err.message += *m;
  } else if (e.is_string()) {
    err.message = e.get<std::string>();
  }
  if (err.message.empty()) err.message = preview(e.dump());
  return err;
}

void ChatStream::merge_tool_call(size_t index, const std::string* id, const std::string* name,
                                 const std::string* arguments) {
  if (slot_of_index_.size() <= index) slot_of_index_.resize(index + 1);
  auto& slot = slot_of_index_[index];
  const bool new_call =
      !slot || (id != nullptr && !id->empty() && !result_.tool_calls[*slot].id.empty() &&
                result_.tool_calls[*slot].id != *id);
  if (new_call) {
    result_.tool_calls.emplace_back();
    slot = result_.tool_calls.size() - 1;
  }
  ToolCall& call = result_.tool_calls[*slot];
  if (id != nullptr && !id->empty()) call.id = *id;
  if (name != nullptr) call.name += *name;
  if (arguments != nullptr) call.arguments += *arguments;
}

Status ChatStream::on_data(std::string_view data) {
  if (data == "[DONE]") {
    done_ = true;
    return {};
  }
  const json chunk = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (chunk.is_discarded() || !chunk.is_object()) {
    return fail(ErrorCode::internal,
                fmt::format("malformed stream chunk (not a JSON object): {}", preview(data)));
  }
  if (auto e = chunk.find("error"); e != chunk.end() && !e->is_null()) {
    StreamError err = read_error(*e);
    error_ = err;
    return fail(ErrorCode::unavailable,
                fmt::format("error event in the stream (code {}): {}", err.code, err.message));
  }
  if (const auto* id = string_at(chunk, "id"); id != nullptr && result_.id.empty()) {
    result_.id = *id;
  }
  if (const auto* model = string_at(chunk, "model")) result_.model = *model;
  if (auto u = chunk.find("usage"); u != chunk.end() && u->is_object()) {
    result_.usage = read_usage(*u);
  }
  auto choices = chunk.find("choices");
  if (choices == chunk.end() || !choices->is_array()) return {};
  if (!choices->empty()) saw_choices_ = true;
  for (const auto& choice : *choices) {
    if (!choice.is_object() || int_at(choice, "index") != 0) continue;  // parley asks for n=1
    if (const auto* reason = string_at(choice, "finish_reason")) result_.finish_reason = *reason;
    auto delta = choice.find("delta");
    if (delta == choice.end()) delta = choice.find("message");  // some servers, final chunk
    if (delta == choice.end() || !delta->is_object()) continue;
    if (const auto* text = string_at(*delta, "content")) result_.content += *text;
    if (const auto* text = string_at(*delta, "reasoning")) result_.reasoning += *text;
    auto calls = delta->find("tool_calls");
    if (calls == delta->end() || !calls->is_array()) continue;
    int64_t position = 0;
    for (const auto& call : *calls) {
      const int64_t at = position++;
      if (!call.is_object()) continue;
      // Streamed deltas carry an index; a whole message's calls are in order without one.
      const int64_t index = call.contains("index") ? int_at(call, "index") : at;
      if (index < 0 || index > 1024) {
        return fail(ErrorCode::internal,
                    fmt::format("malformed stream chunk: tool call index {}", index));
      }
      const json* fn = nullptr;
      if (auto f = call.find("function"); f != call.end() && f->is_object()) fn = &*f;
      merge_tool_call(static_cast<size_t>(index), string_at(call, "id"),
                      fn != nullptr ? string_at(*fn, "name") : nullptr,
                      fn != nullptr ? string_at(*fn, "arguments") : nullptr);
    }
  }
  return {};
}

}  // namespace parley::bot::llm
