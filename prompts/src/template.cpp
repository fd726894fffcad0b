#include "parley/prompts/template.h"

#include <fmt/format.h>

#include <algorithm>

namespace parley::prompts {

const std::set<std::string, std::less<>>& known_variables() {
  static const std::set<std::string, std::less<>> kKnown = {
      "user.name", "channel", "now", "capabilities", "memories", "summary", "events"};
  return kKnown;
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

Result<Template> Template::parse(std::string_view text,
                                 const std::set<std::string, std::less<>>& known) {
  Template t;
  size_t pos = 0;
  int line = 1;
  auto count_lines = [&](std::string_view chunk) {
    line += static_cast<int>(std::count(chunk.begin(), chunk.end(), '\n'));
  };
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      t.parts_.push_back({false, std::string(text.substr(pos))});
      break;
    }
    if (open > pos) {
      t.parts_.push_back({false, std::string(text.substr(pos, open - pos))});
      count_lines(text.substr(pos, open - pos));
    }
    const size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("line {}: '{{{{' is never closed with '}}}}'", line));
    }
    const std::string_view inner = text.substr(open + 2, close - open - 2);
    const std::string_view name = trim(inner);
    if (name.empty() || name.find('\n') != std::string_view::npos) {
      return fail(
          ErrorCode::invalid_argument,
          fmt::format("line {}: empty or broken template variable '{{{{{}}}}}'", line, inner));
    }
    if (known.find(name) == known.end()) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("line {}: unknown template variable '{}'", line, name));
    }
    t.parts_.push_back({true, std::string(name)});
    pos = close + 2;
  }
  for (const auto& p : t.parts_) {
    if (!p.is_variable) t.literal_bytes_ += p.text.size();
  }
  return t;
}

Result<std::string> Template::render(const Values& values) const {
  std::string out;
  out.reserve(literal_bytes_ + 256);
  for (const auto& p : parts_) {
    if (!p.is_variable) {
      out += p.text;
      continue;
    }
    auto it = values.find(p.text);
    if (it == values.end()) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("no value for template variable '{}'", p.text));
    }
    out += it->second;
  }
  return out;
}

std::vector<std::string> Template::variables() const {
  std::vector<std::string> out;
  for (const auto& p : parts_) {
    if (p.is_variable && std::find(out.begin(), out.end(), p.text) == out.end()) {
      out.push_back(p.text);
    }
  }
  return out;
}

}  // namespace parley::prompts
