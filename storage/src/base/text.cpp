#include "parley/base/text.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace parley {

namespace {

// The length of the well-formed UTF-8 sequence at text[i], 0 when there is none (a stray
// continuation byte, a truncated sequence, an overlong form, a surrogate, above U+10FFFF).
size_t sequence_at(std::string_view text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return 1;
  size_t len = 0;
  uint32_t cp = 0;
  uint32_t min = 0;
  if ((c & 0xE0u) == 0xC0u) {
    len = 2, cp = c & 0x1Fu, min = 0x80;
  } else if ((c & 0xF0u) == 0xE0u) {
    len = 3, cp = c & 0x0Fu, min = 0x800;
  } else if ((c & 0xF8u) == 0xF0u) {
    len = 4, cp = c & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(text[i + k]);
    if ((cc & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (cc & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Calls on_char(sequence) for each well-formed character and on_bad() for each byte that
// starts none.
template <typename OnChar, typename OnBad>
void decode(std::string_view text, OnChar on_char, OnBad on_bad) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t len = sequence_at(text, i);
    if (len == 0) {
      on_bad(i);
      ++i;
    } else {
      on_char(text.substr(i, len));
      i += len;
    }
  }
}

}  // namespace

std::optional<size_t> invalid_utf8_at(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t len = sequence_at(text, i);
    if (len == 0) return i;
    i += len;
  }
  return std::nullopt;
}

std::string valid_utf8(std::string_view text) {
  if (!invalid_utf8_at(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  decode(
      text, [&](std::string_view ch) { out.append(ch); },
      [&](size_t) { out.append(kReplacement); });
  return out;
}

size_t utf8_length(std::string_view text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return !is_utf8_continuation(c); }));
}

std::string_view utf8_first_chars(std::string_view text, size_t chars) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (is_utf8_continuation(text[i])) continue;
    if (seen == chars) return text.substr(0, i);
    ++seen;
  }
  return text;
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\f\v";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

std::string_view utf8_prefix(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t n = max_bytes;
  while (n > 0 && is_utf8_continuation(text[n])) --n;
  return text.substr(0, n);
}

std::vector<std::string_view> search_words(std::string_view text) {
  const auto is_word_byte = [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '_' || c >= 0x80;
  };
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !is_word_byte(static_cast<unsigned char>(text[i]))) ++i;
    const size_t start = i;
    while (i < text.size() && is_word_byte(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  decode(
      text,
      [&](std::string_view ch) {
        switch (ch.front()) {
          case '&': out += "&amp;"; break;
          case '<': out += "&lt;"; break;
          case '>': out += "&gt;"; break;
          case '"': out += "&quot;"; break;
          case '\'': out += "&#39;"; break;
          default: out.append(ch);
        }
      },
      [&](size_t) { out.append(kReplacement); });
  return out;
}

}  // namespace parley
