// UTF-8 and HTML text helpers shared by every layer: one copy each.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

// The byte offset of the first invalid UTF-8 sequence in `text` (overlong forms, surrogates and
// code points above U+10FFFF are invalid); nullopt when all of it is valid.
std::optional<size_t> invalid_utf8_at(std::string_view text);

// `text` with every invalid UTF-8 sequence replaced by U+FFFD, one per bad byte: what goes into
// JSON must be valid UTF-8 whatever a server or a user sent.
std::string valid_utf8(std::string_view text);

inline bool is_utf8_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0u) == 0x80u;
}

// Code points in valid UTF-8 `text` (a display width for monospaced, non-combining text).
size_t utf8_length(std::string_view text);

// The first `chars` code points of valid UTF-8 `text`.
std::string_view utf8_first_chars(std::string_view text, size_t chars);

// `s` without the ASCII white space (space, tab, CR, LF, FF, VT) at either end.
std::string_view trim(std::string_view s);

// The longest prefix of `text` of at most `max_bytes` bytes that does not cut a character.
std::string_view utf8_prefix(std::string_view text, size_t max_bytes);

// The words of `text` for a full-text search: the runs of ASCII letters, digits, `_` and
// non-ASCII bytes (so every UTF-8 letter). What lies between them, quotes and FTS5 operators
// included, is dropped: user text is never parsed as query syntax.
std::vector<std::string_view> search_words(std::string_view text);

// `&`, `<`, `>`, `"` and `'` as entities: text safe inside HTML elements and quoted attributes.
std::string html_escape(std::string_view text);

}  // namespace parley
