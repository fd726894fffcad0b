#include "parley/bot/pipeline/tool_selection.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace parley::bot::pipeline {

namespace caps = parley::capabilities;
using nlohmann::json;

namespace {

bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

// " word word …": lowercase words, each preceded by one space, so that " " + stem found in it
// is a match at the start of a word.
std::string words_of(std::string_view text) {
  std::string out;
  bool in_word = false;
  for (const char c : text) {
    if (is_word_byte(static_cast<unsigned char>(c))) {
      if (!in_word) out += ' ';
      out += lower(c);
      in_word = true;
    } else {
      in_word = false;
    }
  }
  return out;
}

// A text prepared once for every capability's terms.
struct Haystack {
  std::string words;  // words_of(text)
  std::string raw;    // lowercase(text)
};

Haystack haystack(std::string_view text) { return {words_of(text), lowercase(text)}; }

// A keyword of letters, digits and spaces matches at the start of a word (a stem); any other
// keyword matches anywhere in the text.
bool matches(const Haystack& h, std::string_view keyword) {
  const bool word_like = std::all_of(keyword.begin(), keyword.end(), [](char c) {
    return c == ' ' || is_word_byte(static_cast<unsigned char>(c));
  });
  if (word_like) {
    const std::string stem = words_of(keyword);  // " write down"
    return !stem.empty() && h.words.find(stem) != std::string::npos;
  }
  return h.raw.find(lowercase(keyword)) != std::string::npos;
}

// Everything a capability answers to: its name and /command names (each also without a final
// 's', and by its '_'/'-' parts), then its keywords.
std::vector<std::string> terms_of(const caps::Capability& c) {
  std::vector<std::string> names{std::string(c.name())};
  for (const auto& command : c.commands()) names.push_back(command.name);
  std::vector<std::string> out;
  auto add = [&out](std::string t) {
    if (!t.empty() && std::find(out.begin(), out.end(), t) == out.end()) {
      out.push_back(std::move(t));
    }
  };
  for (const auto& n : names) {
    std::string spaced = words_of(n);  // " web fetch"
    if (!spaced.empty()) spaced.erase(0, 1);
    add(spaced);
    // A two-word command ("forget everything") is found by its phrase only, never by one of its
    // words ("forget" belongs to the memory tool).
    if (n.find(' ') != std::string::npos) continue;
    if (spaced.size() > 3 && spaced.back() == 's') add(spaced.substr(0, spaced.size() - 1));
    if (spaced.find(' ') != std::string::npos) {
      size_t at = 0;
      while (at < spaced.size()) {
        const size_t end = std::min(spaced.find(' ', at), spaced.size());
        if (end - at >= 3) add(spaced.substr(at, end - at));
        at = end + 1;
      }
    }
  }
  for (const auto& k : c.keywords()) add(lowercase(k));
  return out;
}

std::optional<std::string> first_match(const Haystack& h, const std::vector<std::string>& terms) {
  for (const auto& t : terms) {
    if (matches(h, t)) return t;
  }
  return std::nullopt;
}

}  // namespace

std::string ToolSelection::describe() const {
  std::string out;
  for (const auto& name : offered) {
    if (!out.empty()) out += ", ";
    const auto it = why.find(name);
    out += it == why.end() ? name : fmt::format("{} ({})", name, it->second);
  }
  return out.empty() ? "(none)" : out;
}

std::vector<std::string> permitted_capabilities(const caps::Registry& registry,
                                                const caps::CapabilitiesConfig& config,
                                                const caps::Caller& caller,
                                                std::string_view channel) {
  std::vector<std::string> out;
  for (const auto& name : registry.names()) {
    const caps::Capability* c = registry.find(name);  // null: an MCP tool withdrawn just now
    if (c != nullptr &&
        caps::may_use(*c, config.for_capability(*c), caller, std::string(channel)).allowed) {
      out.push_back(name);
    }
  }
  return out;
}

ToolSelection select_tools(const caps::Registry& registry, std::span<const std::string> permitted,
                           std::string_view text, std::span<const RecentMessage> recent,
                           const ToolSelectionOptions& options) {
  // The message being answered may already be the history's last message.
  if (!recent.empty() && recent.back().role == "user" && recent.back().text == text) {
    recent = recent.first(recent.size() - 1);
  }
  const Haystack now = haystack(text);
  std::vector<Haystack> before;
  for (size_t i = recent.size() - std::min(recent.size(), options.recent_text_messages);
       i < recent.size(); ++i) {
    before.push_back(haystack(recent[i].text));
  }
  std::vector<std::string> used;
  for (size_t i = recent.size() - std::min(recent.size(), options.recent_tool_messages);
       i < recent.size(); ++i) {
    used.insert(used.end(), recent[i].tools_used.begin(), recent[i].tools_used.end());
  }

  ToolSelection out;
  for (const auto& name : registry.names()) {
    if (std::find(permitted.begin(), permitted.end(), name) == permitted.end()) continue;
    const caps::Capability* found = registry.find(name);
    if (found == nullptr) continue;  // an MCP tool withdrawn just now
    const caps::Capability& c = *found;
    std::string why;
    if (std::find(options.core.begin(), options.core.end(), name) != options.core.end()) {
      why = "core";
    }
    const auto terms = why.empty() ? terms_of(c) : std::vector<std::string>{};
    if (why.empty()) {
      if (auto t = first_match(now, terms)) why = fmt::format("'{}' in the message", *t);
    }
    for (auto it = before.rbegin(); why.empty() && it != before.rend(); ++it) {
      if (auto t = first_match(*it, terms)) why = fmt::format("'{}' in a recent message", *t);
    }
    if (why.empty() && std::find(used.begin(), used.end(), name) != used.end()) {
      why = "used recently";
    }
    if (why.empty()) continue;
    out.offered.push_back(name);
    out.why.emplace(name, std::move(why));
  }
  return out;
}

std::vector<RecentMessage> recent_messages(const storage::History& history, size_t n) {
  std::vector<RecentMessage> out;
  for (auto it = history.rbegin(); it != history.rend() && out.size() < n; ++it) {
    const storage::StoredMessage& m = **it;
    if (m.role != "user" && m.role != "assistant") continue;
    RecentMessage r;
    r.role = m.role;
    r.text = m.text;
    const json meta = json::parse(m.metadata, nullptr, false);
    if (meta.is_object()) {
      if (auto tools = meta.find("tools"); tools != meta.end() && tools->is_array()) {
        for (const auto& t : *tools) {
          if (t.is_string()) r.tools_used.push_back(t.get<std::string>());
        }
      }
    }
    out.push_back(std::move(r));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

namespace {

// Drops, from a schema and the schemas inside it, the keywords that only bound values.
void strip_bounds(json& schema) {
  if (!schema.is_object()) return;
  for (const char* key : {"minLength", "maxLength", "minItems", "maxItems", "pattern"}) {
    schema.erase(key);
  }
  if (auto a = schema.find("additionalProperties"); a != schema.end() && a->is_boolean()) {
    schema.erase(a);
  }
  if (auto p = schema.find("properties"); p != schema.end() && p->is_object()) {
    for (auto& sub : *p) strip_bounds(sub);
  }
  if (auto items = schema.find("items"); items != schema.end()) strip_bounds(*items);
}

// The schema as the model is shown it (no "$schema", no bounds), serialised.
llm::SharedJson::Value model_schema(const json& parameters) {
  json t = parameters;
  if (t.is_object()) t.erase("$schema");
  strip_bounds(t);
  return llm::SharedJson::Value(std::move(t));
}

}  // namespace

std::string wire_name(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  bool prefix = true;
  for (const char c : name) {
    if (c != '.') {
      out += c;
    } else {
      out += prefix ? "__" : "_";
      prefix = false;
    }
  }
  return out;
}

llm::ToolDefinition tool_definition(const caps::Capability& capability) {
  // Derived and serialised once per capability and shared by every request (a schema is
  // kilobytes of JSON).
  return {wire_name(capability.name()), std::string(capability.description()),
          capability.derived_schema(&model_schema)};
}

}  // namespace parley::bot::pipeline
