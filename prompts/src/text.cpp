#include "parley/prompts/text.h"

#include <fmt/format.h>

#include <cstdint>
#include <dtl/dtl.hpp>
#include <vector>

namespace parley::prompts {

namespace {
std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.emplace_back(text.substr(start));
      break;
    }
    lines.emplace_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}
}  // namespace

std::string unified_diff(std::string_view a, std::string_view b, std::string_view a_name,
                         std::string_view b_name) {
  if (a == b) return {};
  const auto la = split_lines(a);
  const auto lb = split_lines(b);
  dtl::Diff<std::string, std::vector<std::string>> diff(la, lb);
  diff.compose();
  diff.composeUnifiedHunks();
  std::string out = fmt::format("--- {}\n+++ {}\n", a_name, b_name);
  auto emit = [&out](char prefix, const std::string& line) {
    out += prefix;
    out += line;
    out += '\n';
  };
  for (const auto& hunk : diff.getUniHunks()) {
    out += fmt::format("@@ -{},{} +{},{} @@\n", hunk.a, hunk.b, hunk.c, hunk.d);
    for (const auto& e : hunk.common[0]) emit(' ', e.first);
    for (const auto& e : hunk.change) {
      const char prefix = e.second.type == dtl::SES_DELETE ? '-'
                          : e.second.type == dtl::SES_ADD  ? '+'
                                                           : ' ';
      emit(prefix, e.first);
    }
    for (const auto& e : hunk.common[1]) emit(' ', e.first);
  }
  // A final line without a newline differs from one with: say so, as diff(1) does.
  if (!a.empty() && a.back() != '\n') out += "\\ (version A has no newline at end)\n";
  if (!b.empty() && b.back() != '\n') out += "\\ (version B has no newline at end)\n";
  return out;
}

std::string content_hash(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return fmt::format("{:016x}", h);
}

}  // namespace parley::prompts
