// Text helpers for prompts: UTF-8 validation and a line-based unified diff.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace parley::prompts {

// The byte offset of the first invalid UTF-8 sequence, or nullopt when `text` is valid
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
std::optional<size_t> invalid_utf8_at(std::string_view text);

// A unified diff (3 lines of context) between two texts, line by line, with `---`/`+++`
// headers naming them. Empty when the texts are equal.
std::string unified_diff(std::string_view a, std::string_view b, std::string_view a_name,
                         std::string_view b_name);

// A stable 64-bit FNV-1a hash as 16 hex digits (change detection, not security).
std::string content_hash(std::string_view text);

}  // namespace parley::prompts
