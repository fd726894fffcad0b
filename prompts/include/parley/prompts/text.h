// Text helpers for prompts: a line-based unified diff and a content hash (UTF-8 checks are
// parley/base/text.h).
#pragma once

#include <string>
#include <string_view>

namespace parley::prompts {

// A unified diff (3 lines of context) between two texts, line by line, with `---`/`+++`
// headers naming them. Empty when the texts are equal.
std::string unified_diff(std::string_view a, std::string_view b, std::string_view a_name,
                         std::string_view b_name);

// A stable 64-bit FNV-1a hash as 16 hex digits (change detection, not security).
std::string content_hash(std::string_view text);

}  // namespace parley::prompts
