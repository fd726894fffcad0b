// mail_compose: the reply is built as a GMimeMessage and serialised with CRLF line ends; GMime
// encodes the non-ASCII display names and the subject (RFC 2047, UTF-8), folds long headers and
// writes the bodies in quoted-printable. The multipart boundary comes from the same random
// source as the Message-ID rather than from GMime's rand().
#include "channels/email/mail_compose.h"

#include <fmt/format.h>
#include <gmime/gmime.h>
#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <random>
#include <utility>

#include "channels/email/gmime_support.h"
#include "channels/email/mail_strings.h"
#include "parley/base/text.h"

namespace parley::bot::channels::email {
namespace mail_compose_detail {
namespace {

struct FormatOptionsFree {
  void operator()(GMimeFormatOptions* o) const noexcept { g_mime_format_options_free(o); }
};
using FormatOptionsPtr = std::unique_ptr<GMimeFormatOptions, FormatOptionsFree>;

struct GCharFree {
  void operator()(char* s) const noexcept { g_free(s); }
};
using GCharPtr = std::unique_ptr<char, GCharFree>;

struct DateTimeUnref {
  void operator()(GDateTime* d) const noexcept { g_date_time_unref(d); }
};
using DateTimePtr = std::unique_ptr<GDateTime, DateTimeUnref>;

// Valid UTF-8, LF line ends.
std::string lf_text(std::string_view s) {
  const std::string valid = valid_utf8(s);
  std::string out;
  out.reserve(valid.size());
  for (size_t i = 0; i < valid.size(); ++i) {
    if (valid[i] == '\r') {
      out += '\n';
      if (i + 1 < valid.size() && valid[i + 1] == '\n') ++i;
    } else {
      out += valid[i];
    }
  }
  return out;
}

// Valid UTF-8 on one line, trimmed: what a display name or a subject may hold.
std::string header_text(std::string_view s) {
  std::string out = valid_utf8(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '\x7f') c = ' ';
  }
  return std::string(trim_space(out));
}

// An addr-spec or a message id: no whitespace, control characters or the characters that would
// end it inside a header.
std::string header_token(std::string_view s) {
  std::string out;
  for (char c : valid_utf8(s)) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) continue;
    if (std::string_view("<>(),;\"\\").find(c) != std::string_view::npos) continue;
    out += c;
  }
  return out;
}

// A message id as written between <>: printable ASCII without whitespace, '<', '>', '"' or '\\'
// (those are dropped). An id with other bytes (8-bit, never valid in a 7-bit header) is dropped
// whole: it could not name the parent anyway.
std::string id_token(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x7f) return {};
    if (u <= 0x20 || c == '<' || c == '>' || c == '"' || c == '\\') continue;
    out += c;
  }
  return out;
}

void random_bytes(unsigned char* out, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = getrandom(out + got, n - got, 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
    } else if (r < 0 && errno != EINTR) {
      break;
    }
  }
  if (got == n) return;
  std::random_device device;  // getrandom(2) missing (an old kernel): the library's source
  for (size_t i = got; i < n; ++i) out[i] = static_cast<unsigned char>(device());
}

std::string random_hex(size_t bytes) {
  std::array<unsigned char, 32> buffer{};
  bytes = std::min(bytes, buffer.size());
  random_bytes(buffer.data(), bytes);
  std::string out;
  for (size_t i = 0; i < bytes; ++i) out += fmt::format("{:02x}", buffer[i]);
  return out;
}

// GMime leaves ASCII words as they are, so a word that looks like an encoded-word ("=?…?=")
// would be decoded by the reader. A subject with one is encoded whole (encoded_words); a display
// name with one is left out.
bool has_encoded_word_opener(std::string_view s) { return s.find("=?") != std::string_view::npos; }

// All of `text` (UTF-8) as RFC 2047 B-encoded words of at most 39 bytes each (64 characters, so
// that "Subject: " and the first fit in 78), folded: a header's raw value.
std::string encoded_words(std::string_view text) {
  std::string raw;
  while (!text.empty()) {
    std::string_view chunk = utf8_prefix(text, 39);
    if (chunk.empty()) chunk = text.substr(0, 1);
    const GCharPtr b64(
        g_base64_encode(reinterpret_cast<const guchar*>(chunk.data()), chunk.size()));
    raw += raw.empty() ? " " : "\n ";
    raw += fmt::format("=?UTF-8?B?{}?=", b64.get());
    text.remove_prefix(chunk.size());
  }
  return raw + "\n";
}

void set_subject(GMimeMessage* message, const std::string& subject) {
  g_mime_message_set_subject(message, subject.c_str(), "utf-8");
  if (!has_encoded_word_opener(subject)) return;
  GMimeHeader* header = g_mime_header_list_get_header(
      g_mime_object_get_header_list(GMIME_OBJECT(message)), "Subject");
  if (header != nullptr) g_mime_header_set_raw_value(header, encoded_words(subject).c_str());
}

InternetAddress* new_mailbox(const MailAddress& a) {
  std::string name = header_text(a.name);
  if (has_encoded_word_opener(name)) name.clear();
  const std::string address = header_token(a.address);
  InternetAddress* ia =
      internet_address_mailbox_new(name.empty() ? nullptr : name.c_str(), address.c_str());
  internet_address_set_charset(ia, "utf-8");
  return ia;
}

void add_mailboxes(GMimeMessage* message, GMimeAddressType type,
                   const std::vector<MailAddress>& addresses) {
  InternetAddressList* list = g_mime_message_get_addresses(message, type);
  for (const MailAddress& a : addresses) {
    const GObjectPtr<InternetAddress> ia(new_mailbox(a));
    internet_address_list_add(list, ia.get());
  }
}

// A text part of `subtype` holding `text` as UTF-8, in quoted-printable.
GObjectPtr<GMimeTextPart> text_part(const char* subtype, const std::string& text) {
  GObjectPtr<GMimeTextPart> part(g_mime_text_part_new_with_subtype(subtype));
  const GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(text.data(), text.size()));
  const GObjectPtr<GMimeDataWrapper> content(
      g_mime_data_wrapper_new_with_stream(stream.get(), GMIME_CONTENT_ENCODING_DEFAULT));
  g_mime_part_set_content(GMIME_PART(part.get()), content.get());
  g_mime_text_part_set_charset(part.get(), "utf-8");
  g_mime_part_set_content_encoding(GMIME_PART(part.get()), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
  return part;
}

// A file as an attachment part: its media type (application/octet-stream when GMime cannot read
// it), its name in Content-Disposition (GMime encodes a non-ASCII one by RFC 2231), base64.
GObjectPtr<GMimePart> file_part(const storage::OutboxFile& file) {
  GObjectPtr<GMimeContentType> type(g_mime_content_type_parse(nullptr, file.media_type.c_str()));
  GObjectPtr<GMimePart> part(
      type ? g_mime_part_new_with_type(g_mime_content_type_get_media_type(type.get()),
                                       g_mime_content_type_get_media_subtype(type.get()))
           : g_mime_part_new_with_type("application", "octet-stream"));
  const GObjectPtr<GMimeStream> stream(
      g_mime_stream_mem_new_with_buffer(file.content.data(), file.content.size()));
  const GObjectPtr<GMimeDataWrapper> content(
      g_mime_data_wrapper_new_with_stream(stream.get(), GMIME_CONTENT_ENCODING_DEFAULT));
  g_mime_part_set_content(part.get(), content.get());
  g_mime_object_set_disposition(GMIME_OBJECT(part.get()), GMIME_DISPOSITION_ATTACHMENT);
  g_mime_part_set_filename(part.get(), file.filename.c_str());
  g_mime_part_set_content_encoding(part.get(), GMIME_CONTENT_ENCODING_BASE64);
  return part;
}

std::string html_document(const std::string& html) {
  const std::string start = ascii_lowercase(trim_space(std::string_view(html).substr(0, 64)));
  if (start.starts_with("<!doctype") || start.starts_with("<html")) return html;
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n" + html +
         "\n</body></html>\n";
}

// --- Subjects -------------------------------------------------------------------------------

// The length of a reply prefix at the start of `s` ("Re:", "RE :", "Re[2]:", "Aw:"), else 0.
size_t reply_prefix(std::string_view s) {
  for (std::string_view word : {"re", "aw", "sv", "antw", "odp"}) {
    if (!istarts_with(s, word)) continue;
    size_t i = word.size();
    if (i < s.size() && (s[i] == '[' || s[i] == '(')) {
      const char close = s[i] == '[' ? ']' : ')';
      size_t j = i + 1;
      while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
      if (j == i + 1 || j >= s.size() || s[j] != close) continue;
      i = j + 1;
    }
    while (i < s.size() && s[i] == ' ') ++i;
    if (i < s.size() && s[i] == ':') return i + 1;
    if (s.substr(i).starts_with("\xEF\xBC\x9A")) return i + 3;  // a full-width colon
  }
  return 0;
}

// --- Markdown -------------------------------------------------------------------------------

bool link_allowed(std::string_view url) {
  if (!(istarts_with(url, "http://") || istarts_with(url, "https://") ||
        istarts_with(url, "mailto:"))) {
    return false;
  }
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '<' || c == '>' || c == '"') return false;
  }
  return true;
}

std::string inline_markdown(std::string_view s, bool links);

void append_escaped(std::string& out, std::string_view plain) { out += html_escape(plain); }

// How far a closing mark is looked for: a text full of unclosed marks stays linear.
constexpr size_t kMarkReach = 2048;

size_t find_near(std::string_view s, std::string_view what, size_t from) {
  if (from >= s.size()) return std::string_view::npos;
  const size_t at = s.substr(from, kMarkReach).find(what);
  return at == std::string_view::npos ? at : from + at;
}

std::string inline_markdown(std::string_view s, bool links) {
  std::string out;
  size_t plain_start = 0;
  size_t i = 0;
  const auto flush = [&](size_t upto) {
    append_escaped(out, s.substr(plain_start, upto - plain_start));
  };
  while (i < s.size()) {
    if (s[i] == '`') {
      size_t run = 0;
      while (i + run < s.size() && s[i + run] == '`') ++run;
      const std::string fence(run, '`');
      size_t close = find_near(s, fence, i + run);
      while (close != std::string_view::npos && close + run < s.size() && s[close + run] == '`') {
        close = find_near(s, fence, close + run + 1);
      }
      if (close == std::string_view::npos) {
        i += run;
        continue;
      }
      flush(i);
      std::string_view code = s.substr(i + run, close - i - run);
      if (code.size() >= 2 && code.front() == ' ' && code.back() == ' ') {
        code = code.substr(1, code.size() - 2);
      }
      out += "<code>";
      append_escaped(out, code);
      out += "</code>";
      i = close + run;
      plain_start = i;
      continue;
    }
    if (s.substr(i).starts_with("**")) {
      const size_t close = find_near(s, "**", i + 2);
      if (close != std::string_view::npos && close > i + 2 && s[i + 2] != ' ' &&
          s[close - 1] != ' ') {
        flush(i);
        out += "<strong>" + inline_markdown(s.substr(i + 2, close - i - 2), links) + "</strong>";
        i = close + 2;
        plain_start = i;
        continue;
      }
    }
    if (s[i] == '[' && links) {
      const size_t close = find_near(s, "]", i + 1);
      if (close != std::string_view::npos && close + 1 < s.size() && s[close + 1] == '(') {
        const size_t end = find_near(s, ")", close + 2);
        if (end != std::string_view::npos) {
          const std::string_view url = trim_space(s.substr(close + 2, end - close - 2));
          const std::string_view label = s.substr(i + 1, close - i - 1);
          if (link_allowed(url) && !trim_space(label).empty()) {
            flush(i);
            out += "<a href=\"" + html_escape(url) + "\">" + inline_markdown(label, false) + "</a>";
            i = end + 1;
            plain_start = i;
            continue;
          }
        }
      }
    }
    ++i;
  }
  flush(s.size());
  return out;
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (;;) {
    const size_t nl = text.find('\n', start);
    lines.push_back(text.substr(start, nl == std::string_view::npos ? nl : nl - start));
    if (nl == std::string_view::npos) return lines;
    start = nl + 1;
  }
}

std::string_view without_indent(std::string_view s) {
  const size_t first = s.find_first_not_of(" \t");
  return first == std::string_view::npos ? std::string_view() : s.substr(first);
}

enum class ListKind { none, bullets, numbers };

struct ListItem {
  ListKind kind = ListKind::none;
  std::string_view content;
  long number = 1;
};

ListItem list_item(std::string_view line) {
  const std::string_view s = without_indent(line);
  if (s.size() >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && s[1] == ' ') {
    return {ListKind::bullets, trim_space(s.substr(2)), 1};
  }
  size_t digits = 0;
  while (digits < s.size() && digits < 9 && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits > 0 && digits + 1 < s.size() && (s[digits] == '.' || s[digits] == ')') &&
      s[digits + 1] == ' ') {
    return {ListKind::numbers, trim_space(s.substr(digits + 2)),
            std::stol(std::string(s.substr(0, digits)))};
  }
  return {};
}

// "## Heading" → its level (1-6) and text; level 0 when the line is no heading.
std::pair<int, std::string_view> heading(std::string_view line) {
  size_t level = 0;
  while (level < line.size() && line[level] == '#') ++level;
  if (level == 0 || level > 6 || level >= line.size() || line[level] != ' ') return {0, {}};
  return {static_cast<int>(level), trim_space(line.substr(level))};
}

bool rule(std::string_view line) {
  const std::string_view t = trim_space(line);
  if (t.size() < 3) return false;
  return t.find_first_not_of(t.front()) == std::string_view::npos &&
         (t.front() == '-' || t.front() == '*' || t.front() == '_');
}

bool is_fence(std::string_view line) { return without_indent(line).starts_with("```"); }

class MarkdownRenderer {
 public:
  std::string render(std::string_view text) {
    const std::string normal = lf_text(text);
    const std::vector<std::string_view> lines = lines_of(normal);
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string_view line = lines[i];
      if (is_fence(line)) {
        end_blocks();
        std::string code;
        size_t k = i + 1;
        for (; k < lines.size() && !is_fence(lines[k]); ++k) {
          if (k > i + 1) code += '\n';
          code += lines[k];
        }
        out_ += "<pre><code>" + html_escape(code) + "</code></pre>\n";
        i = k;  // the closing fence (or the end)
        continue;
      }
      if (trim_space(line).empty()) {
        end_paragraph();
        // A list goes on past blank lines while its items do.
        size_t next = i + 1;
        while (next < lines.size() && trim_space(lines[next]).empty()) ++next;
        if (next >= lines.size() || list_item(lines[next]).kind != list_) end_list();
        continue;
      }
      if (const auto [level, title] = heading(line); level > 0) {
        end_blocks();
        out_ += fmt::format("<h{0}>{1}</h{0}>\n", level, inline_markdown(title, true));
        continue;
      }
      if (rule(line) && list_item(line).kind == ListKind::none) {
        end_blocks();
        out_ += "<hr>\n";
        continue;
      }
      if (const ListItem item = list_item(line); item.kind != ListKind::none) {
        end_paragraph();
        if (item.kind != list_) {
          end_list();
          list_ = item.kind;
          if (list_ == ListKind::bullets) {
            out_ += "<ul>\n";
          } else {
            out_ += item.number == 1 ? "<ol>\n" : fmt::format("<ol start=\"{}\">\n", item.number);
          }
        } else {
          out_ += "</li>\n";
        }
        out_ += "<li>" + inline_markdown(item.content, true);
        continue;
      }
      if (list_ != ListKind::none && (line.starts_with(' ') || line.starts_with('\t'))) {
        out_ += "<br>" + inline_markdown(trim_space(line), true);  // the item goes on
        continue;
      }
      end_list();
      paragraph_.push_back(line);
    }
    end_blocks();
    if (!out_.empty() && out_.back() == '\n') out_.pop_back();
    return std::move(out_);
  }

 private:
  void end_paragraph() {
    if (paragraph_.empty()) return;
    out_ += "<p>";
    for (size_t i = 0; i < paragraph_.size(); ++i) {
      if (i > 0) out_ += "<br>\n";
      out_ += inline_markdown(trim_space(paragraph_[i]), true);
    }
    out_ += "</p>\n";
    paragraph_.clear();
  }
  void end_list() {
    if (list_ == ListKind::none) return;
    out_ += list_ == ListKind::bullets ? "</li>\n</ul>\n" : "</li>\n</ol>\n";
    list_ = ListKind::none;
  }
  void end_blocks() {
    end_paragraph();
    end_list();
  }

  std::string out_;
  std::vector<std::string_view> paragraph_;
  ListKind list_ = ListKind::none;
};

}  // namespace
}  // namespace mail_compose_detail

std::string reply_subject(std::string_view subject) {
  using namespace mail_compose_detail;  // NOLINT(google-build-using-namespace): this file's own
  const std::string line = header_text(subject);
  std::string_view rest = line;
  for (;;) {
    rest = trim_space(rest);
    const size_t n = reply_prefix(rest);
    if (n == 0) break;
    rest.remove_prefix(n);
  }
  return rest.empty() ? "Re: (no subject)" : "Re: " + std::string(rest);
}

std::vector<std::string> reply_references(const ParsedMail& parent) {
  constexpr size_t kKeptLast = 20;
  std::vector<std::string> refs = parent.references;
  if (refs.empty() && !parent.in_reply_to.empty()) refs.push_back(parent.in_reply_to);
  if (!parent.message_id.empty() && (refs.empty() || refs.back() != parent.message_id)) {
    refs.push_back(parent.message_id);
  }
  if (refs.size() > kKeptLast + 1) {
    refs.erase(refs.begin() + 1, refs.end() - static_cast<std::ptrdiff_t>(kKeptLast));
  }
  return refs;
}

std::string make_message_id(std::string_view domain) {
  using namespace mail_compose_detail;  // NOLINT(google-build-using-namespace): this file's own
  std::string host;
  for (char c : domain) {
    c = ascii_lower(c);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.') host += c;
  }
  while (!host.empty() && host.front() == '.') host.erase(host.begin());
  while (!host.empty() && host.back() == '.') host.pop_back();
  if (host.empty()) host = "localhost";
  return fmt::format("parley.{}@{}", random_hex(16), host);
}

std::string compose_mail(const OutgoingMail& mail) {
  using namespace mail_compose_detail;  // NOLINT(google-build-using-namespace): this file's own
  init_gmime();
  const GObjectPtr<GMimeMessage> message(g_mime_message_new(FALSE));
  GMimeObject* object = GMIME_OBJECT(message.get());

  add_mailboxes(message.get(), GMIME_ADDRESS_TYPE_FROM, {mail.from});
  add_mailboxes(message.get(), GMIME_ADDRESS_TYPE_TO, mail.to);
  add_mailboxes(message.get(), GMIME_ADDRESS_TYPE_CC, mail.cc);
  set_subject(message.get(), header_text(mail.subject));
  const auto seconds =
      std::chrono::floor<std::chrono::seconds>(mail.date).time_since_epoch().count();
  const DateTimePtr date(g_date_time_new_from_unix_utc(static_cast<gint64>(seconds)));
  if (date) g_mime_message_set_date(message.get(), date.get());
  if (const std::string id = id_token(mail.message_id); !id.empty()) {
    g_mime_message_set_message_id(message.get(), id.c_str());
  }
  if (const std::string id = id_token(mail.in_reply_to); !id.empty()) {
    g_mime_object_set_header(object, "In-Reply-To", fmt::format("<{}>", id).c_str(), nullptr);
  }
  std::string references;
  for (const std::string& ref : mail.references) {
    const std::string id = id_token(ref);
    if (id.empty()) continue;
    if (!references.empty()) references += ' ';
    references += fmt::format("<{}>", id);
  }
  if (!references.empty()) {
    g_mime_object_set_header(object, "References", references.c_str(), nullptr);
  }
  g_mime_object_set_header(object, "Auto-Submitted", "auto-replied", nullptr);

  const GObjectPtr<GMimeTextPart> plain = text_part("plain", lf_text(mail.text));
  GObjectPtr<GMimeObject> body(GMIME_OBJECT(g_object_ref(plain.get())));
  if (mail.html) {
    const GObjectPtr<GMimeMultipart> alternative(g_mime_multipart_new_with_subtype("alternative"));
    g_mime_multipart_set_boundary(alternative.get(),
                                  fmt::format("=_parley_{}", random_hex(12)).c_str());
    g_mime_multipart_add(alternative.get(), GMIME_OBJECT(plain.get()));
    const GObjectPtr<GMimeTextPart> html = text_part("html", lf_text(html_document(*mail.html)));
    g_mime_multipart_add(alternative.get(), GMIME_OBJECT(html.get()));
    body.reset(GMIME_OBJECT(g_object_ref(alternative.get())));
  }
  if (!mail.files.empty()) {
    const GObjectPtr<GMimeMultipart> mixed(g_mime_multipart_new_with_subtype("mixed"));
    g_mime_multipart_set_boundary(mixed.get(), fmt::format("=_parley_{}", random_hex(12)).c_str());
    g_mime_multipart_add(mixed.get(), body.get());
    for (const auto& f : mail.files) {
      const GObjectPtr<GMimePart> part(file_part(f));
      g_mime_multipart_add(mixed.get(), GMIME_OBJECT(part.get()));
    }
    body.reset(GMIME_OBJECT(g_object_ref(mixed.get())));
  }
  g_mime_message_set_mime_part(message.get(), body.get());

  const FormatOptionsPtr format(g_mime_format_options_new());
  g_mime_format_options_set_newline_format(format.get(), GMIME_NEWLINE_FORMAT_DOS);
  const GCharPtr bytes(g_mime_object_to_string(object, format.get()));
  return bytes ? std::string(bytes.get()) : std::string();
}

std::string markdown_to_html(std::string_view text) {
  using namespace mail_compose_detail;  // NOLINT(google-build-using-namespace): this file's own
  return MarkdownRenderer().render(text);
}

}  // namespace parley::bot::channels::email
