// html_text: see html_text.h. The reduction walks libxml2's tree once, iteratively; the text is
// built by TextBuilder (whitespace and line breaks) as HtmlReducer opens and closes elements.
#include "parley/capabilities/html_text.h"

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <initializer_list>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "parley/base/text.h"

namespace parley::capabilities {
namespace {

struct DocDeleter {
  void operator()(xmlDoc* doc) const noexcept { xmlFreeDoc(doc); }
};
using DocPtr = std::unique_ptr<xmlDoc, DocDeleter>;

struct XmlCharDeleter {
  void operator()(xmlChar* p) const noexcept { xmlFree(p); }
};
using XmlString = std::unique_ptr<xmlChar, XmlCharDeleter>;

std::string_view view(const xmlChar* s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

void init_libxml() {
  // "Call once before processing in case of use in multithreaded programs" (libxml2).
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

// Accumulates readable text: runs of whitespace become one space, block boundaries become
// line breaks (at most a blank line), nothing leads or trails.
class TextBuilder {
 public:
  // Text as it appears in the page; whitespace collapsed unless `preformatted`.
  void text(std::string_view s, bool preformatted) {
    if (preformatted) {
      if (s.empty()) return;
      flush();
      out_.append(s);
      return;
    }
    size_t i = 0;
    while (i < s.size()) {
      if (const size_t n = space_at(s, i); n > 0) {
        pending_space_ = true;
        i += n;
        continue;
      }
      size_t j = i;
      while (j < s.size() && space_at(s, j) == 0) ++j;
      flush();
      out_.append(s.substr(i, j - i));
      i = j;
    }
  }
  void space() { pending_space_ = true; }
  // `lines` == 1: a line break; 2: a blank line (a new paragraph).
  void line_break(int lines) { pending_breaks_ = std::max(pending_breaks_, lines); }
  void forced_break() { pending_breaks_ = std::min(pending_breaks_ + 1, 2); }  // <br>
  // A marker such as a list bullet, placed after any pending break.
  void marker(std::string_view s) {
    flush();
    out_.append(s);
    pending_space_ = false;
  }
  std::string finish() {
    while (!out_.empty() && (out_.back() == ' ' || out_.back() == '\n')) out_.pop_back();
    return std::move(out_);
  }

 private:
  // Length of the whitespace character at s[i] (ASCII whitespace or U+00A0), else 0.
  static size_t space_at(std::string_view s, size_t i) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') return 1;
    if (c == '\xC2' && i + 1 < s.size() && s[i + 1] == '\xA0') return 2;
    return 0;
  }
  void flush() {
    if (!out_.empty()) {
      if (pending_breaks_ > 0) {
        while (!out_.empty() && out_.back() == ' ') out_.pop_back();
        out_.append(static_cast<size_t>(pending_breaks_), '\n');
      } else if (pending_space_ && out_.back() != '\n' && out_.back() != ' ') {
        out_ += ' ';
      }
    }
    pending_breaks_ = 0;
    pending_space_ = false;
  }

  std::string out_;
  int pending_breaks_ = 0;
  bool pending_space_ = false;
};

bool element_is(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

class HtmlReducer {
 public:
  HtmlText reduce(xmlDoc* doc) {
    HtmlText page;
    xmlNode* root = xmlDocGetRootElement(doc);
    if (root == nullptr) return page;
    page.title = find_title(root);
    walk(root);
    page.text = out_.finish();
    return page;
  }

 private:
  static std::string collapse(std::string_view s) {
    TextBuilder b;
    b.text(s, false);
    return b.finish();
  }

  // The first <title> of the head (where the parser puts it), else of the whole page outside
  // <svg> (whose own <title> elements are tooltips).
  static std::string find_title(xmlNode* root) {
    std::vector<xmlNode*> stack{root};
    while (!stack.empty()) {
      xmlNode* n = stack.back();
      stack.pop_back();
      if (n->type != XML_ELEMENT_NODE) continue;
      const std::string_view name = view(n->name);
      if (name == "title") {
        const XmlString content(xmlNodeGetContent(n));
        return collapse(view(content.get()));
      }
      if (name == "svg" || name == "math") continue;
      // Children pushed in reverse, so that the document order is kept.
      std::vector<xmlNode*> children;
      for (xmlNode* c = n->children; c != nullptr; c = c->next) children.push_back(c);
      stack.insert(stack.end(), children.rbegin(), children.rend());
    }
    return {};
  }

  // Iterative, so that a deeply nested page cannot exhaust the stack.
  void walk(xmlNode* top) {
    xmlNode* n = top;
    for (;;) {
      const bool entered = open(n);
      if (entered && n->children != nullptr) {
        n = n->children;
        continue;
      }
      if (entered) close(n);
      for (;;) {
        if (n == top) return;
        if (n->next != nullptr) {
          n = n->next;
          break;
        }
        n = n->parent;
        close(n);
      }
    }
  }

  static bool skipped(std::string_view name) {
    return element_is(name, {"head", "script", "style", "noscript", "template", "svg", "math",
                             "iframe", "object", "embed", "canvas", "video", "audio", "map"});
  }
  static bool paragraph(std::string_view name) {
    return element_is(
        name,
        {"p",      "h1",     "h2",   "h3",  "h4",     "h5",      "h6",      "blockquote", "pre",
         "table",  "ul",     "ol",   "dl",  "figure", "address", "hr",      "section",    "article",
         "header", "footer", "main", "nav", "aside",  "form",    "fieldset"});
  }
  static bool block(std::string_view name) {
    return element_is(name,
                      {"div",     "li",      "tr",     "dt",     "dd",     "caption", "figcaption",
                       "details", "summary", "dialog", "legend", "option", "center",  "body",
                       "html",    "hgroup",  "menu",   "tbody",  "thead",  "tfoot"});
  }

  // Returns whether `n` is an element whose children are to be walked.
  bool open(xmlNode* n) {
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
      out_.text(view(n->content), pre_depth_ > 0);
      return false;
    }
    if (n->type != XML_ELEMENT_NODE) return false;
    const std::string_view name = view(n->name);
    if (skipped(name) || xmlHasProp(n, reinterpret_cast<const xmlChar*>("hidden")) != nullptr) {
      return false;
    }
    if (name == "br") {
      out_.forced_break();
      return false;
    }
    if (paragraph(name)) {
      out_.line_break(2);
    } else if (block(name)) {
      out_.line_break(1);
    } else if (name == "td" || name == "th") {
      out_.space();
    }
    if (name == "li") out_.marker("- ");
    if (name == "pre") ++pre_depth_;
    return true;
  }

  void close(xmlNode* n) {
    const std::string_view name = view(n->name);
    if (paragraph(name)) {
      out_.line_break(2);
    } else if (block(name)) {
      out_.line_break(1);
    } else if (name == "td" || name == "th") {
      out_.space();
    }
    if (name == "pre" && pre_depth_ > 0) --pre_depth_;
  }

  TextBuilder out_;
  int pre_depth_ = 0;
};

}  // namespace

Result<HtmlText> html_to_text(std::string_view html, const std::string& charset,
                              const std::string& url) {
  init_libxml();
  if (html.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return fail(ErrorCode::resource_exhausted, "the page is too large to read");
  }
  constexpr int kOptions =
      HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET | HTML_PARSE_RECOVER;
  const char* encoding = charset.empty() ? nullptr : charset.c_str();
  const char* name = url.empty() ? nullptr : url.c_str();
  const int size = static_cast<int>(html.size());
  DocPtr doc(htmlReadMemory(html.data(), size, name, encoding, kOptions));
  if (!doc && encoding != nullptr) {  // a charset libxml2 does not know: let it guess
    doc.reset(htmlReadMemory(html.data(), size, name, nullptr, kOptions));
  }
  if (!doc) return HtmlText{};  // nothing parseable: an empty page
  HtmlReducer reducer;
  HtmlText page = reducer.reduce(doc.get());
  page.title = valid_utf8(page.title);
  page.text = valid_utf8(page.text);
  return page;
}

}  // namespace parley::capabilities
