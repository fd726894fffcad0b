// html_text: an HTML document reduced to readable text with libxml2's HTML parser, for a model
// to read (web_fetch's pages, the email channel's HTML-only mails). Scripts, styles, the head and
// other non-text elements are dropped, the title kept apart, block elements become line breaks
// (paragraphs a blank line), list items start with "- ", <pre> keeps its whitespace, and every
// other run of whitespace becomes one space. Broken HTML is recovered as browsers would; a
// deeply nested page cannot exhaust the stack.
//
// Thread safety: html_to_text may be called from any number of threads at once (libxml2 is
// initialised once, behind std::call_once).
#pragma once

#include <string>
#include <string_view>

#include "parley/base/result.h"

namespace parley::capabilities {

struct HtmlText {
  std::string title;  // the first <title>, whitespace collapsed; empty when there is none
  std::string text;   // the readable text; valid UTF-8 (bad bytes become U+FFFD)
};

// `html` decoded from `charset` (the Content-Type's, e.g. "iso-8859-1"; empty when none was
// given: the parser then reads <meta charset> or guesses; a charset libxml2 does not know is
// treated as none). `url` only names the document for the parser and may be empty. Nothing
// parseable gives an empty HtmlText; resource_exhausted when `html` is over INT_MAX bytes.
[[nodiscard]] Result<HtmlText> html_to_text(std::string_view html, const std::string& charset,
                                            const std::string& url = {});

}  // namespace parley::capabilities
