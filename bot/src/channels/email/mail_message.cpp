// mail_message: GMime parses; this file walks the tree it builds. The body's text comes from the
// parts a mail client would show: in multipart/alternative the text/plain part (the HTML one
// when the plain one is missing or blank), in multipart/signed the signed content, in every
// other multipart each inline text part in order; the rest are attachments. Each text part is
// decoded here rather than by g_mime_text_part_get_text, which hands back unconverted bytes
// for a charset iconv does not know: here every byte sequence iconv rejects becomes U+FFFD, and
// unlabelled or mislabelled 8-bit text is read as windows-1252.
#include "channels/email/mail_message.h"

#include <fmt/format.h>
#include <gmime/gmime.h>
#include <iconv.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "channels/email/gmime_support.h"
#include "channels/email/mail_strings.h"
#include "parley/base/text.h"
#include "parley/capabilities/html_text.h"

namespace parley::bot::channels::email {
namespace mail_message_detail {
namespace {

// --- GMime ownership ------------------------------------------------------------------------

struct ParserOptionsFree {
  void operator()(GMimeParserOptions* o) const noexcept { g_mime_parser_options_free(o); }
};
using ParserOptionsPtr = std::unique_ptr<GMimeParserOptions, ParserOptionsFree>;

struct GCharFree {
  void operator()(char* s) const noexcept { g_free(s); }
};
using GCharPtr = std::unique_ptr<char, GCharFree>;

struct ReferencesFree {
  void operator()(GMimeReferences* r) const noexcept { g_mime_references_free(r); }
};
using ReferencesPtr = std::unique_ptr<GMimeReferences, ReferencesFree>;

// GMime's own nesting limit is lower; this one only bounds our walk should that ever change.
constexpr int kMaxDepth = 100;

ParserOptionsPtr make_parser_options() {
  ParserOptionsPtr options(g_mime_parser_options_new());
  // Raw 8-bit header bytes: UTF-8 when they are, else the likeliest legacy charset. GMime
  // advises ending with iso-8859-1, which accepts every byte.
  std::array<const char*, 4> fallback = {"utf-8", "windows-1252", "iso-8859-1", nullptr};
  g_mime_parser_options_set_fallback_charsets(options.get(), fallback.data());
  g_mime_parser_options_set_rfc2047_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_address_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_parameter_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  return options;
}

std::string_view view_of(const char* s) { return s == nullptr ? std::string_view() : s; }

// Valid UTF-8 on one line: control characters (CR and LF of a folded or hostile header
// included) become spaces; no space leads or trails.
std::string one_line(std::string_view s) {
  std::string out = valid_utf8(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '\x7f') c = ' ';
  }
  return std::string(trim_space(out));
}

// A message id, an address: valid UTF-8 without whitespace or control characters.
std::string token(std::string_view s) {
  std::string out;
  for (char c : valid_utf8(s)) {
    if (static_cast<unsigned char>(c) > 0x20 && c != '\x7f') out += c;
  }
  return out;
}

// --- Charsets -------------------------------------------------------------------------------

// The system's iconv, not g_mime_iconv_open: GMime 3.2.13 keeps every charset name it is asked
// for in a process-wide table, so that mail labelled with ever new names would grow it forever.

struct IconvClose {
  void operator()(iconv_t cd) const noexcept { iconv_close(cd); }
};
using IconvPtr = std::unique_ptr<std::remove_pointer_t<iconv_t>, IconvClose>;

// `charset` (lower case) as glibc's iconv names it: the aliases mailers use that it lacks, and
// "iso8859_1"-style spellings as "iso-8859-1". Labels with other characters than a charset name
// has (a '/' would pass options to iconv) are refused (empty).
std::string iconv_name(const std::string& charset) {
  if (charset.empty() || charset.size() > 40 ||
      charset.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.:+()") !=
          std::string::npos) {
    return {};
  }
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 9> kAliases{{
      {"x-sjis", "shift_jis"},
      {"ks_c_5601-1987", "cp949"},
      {"ks_c_5601", "cp949"},
      {"x-mac-roman", "macintosh"},
      {"x-gbk", "gbk"},
      {"gb2312", "gbk"},  // mail labelled gb2312 is often GBK, its superset
      {"x-user-defined", "windows-1252"},
      {"unicode-1-1-utf-7", "utf-7"},
      {"x-unicode20utf8", "utf-8"},
  }};
  for (const auto& [alias, name] : kAliases) {
    if (charset == alias) return std::string(name);
  }
  if (charset.starts_with("iso") && charset.size() > 3 && !charset.starts_with("iso-2022")) {
    // iso8859-1, iso_8859_1, iso-8859_15 → iso-8859-1, iso-8859-15
    std::string_view rest = std::string_view(charset).substr(3);
    const auto number = [&rest]() -> std::string_view {
      if (!rest.empty() && (rest.front() == '-' || rest.front() == '_')) rest.remove_prefix(1);
      const size_t digits = rest.find_first_not_of("0123456789");
      const std::string_view n = rest.substr(0, digits);
      rest.remove_prefix(n.size());
      return n;
    };
    const std::string_view standard = number();
    const std::string_view part = number();
    if (standard == "8859" && !part.empty()) {
      return fmt::format("iso-8859-{}{}", part, rest);  // "-i" (RFC 1556) is dealt with below
    }
  }
  return charset;
}

IconvPtr open_to_utf8(const std::string& charset) {
  const std::string name = iconv_name(charset);
  if (name.empty()) return nullptr;
  iconv_t cd = iconv_open("UTF-8", name.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) return nullptr;  // NOLINT: iconv's error value
  return IconvPtr(cd);
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// `in` through `cd`; a sequence the charset does not have becomes U+FFFD and is skipped.
std::string convert(std::string_view in, iconv_t cd) {
  std::string input(in);
  std::string out(in.size() * 2 + 16, '\0');
  char* in_p = input.data();
  size_t in_left = input.size();
  size_t done = 0;
  const auto grow = [&] { out.resize(out.size() * 2); };
  while (in_left > 0) {
    char* out_p = out.data() + done;
    size_t out_left = out.size() - done;
    const size_t rc = iconv(cd, &in_p, &in_left, &out_p, &out_left);
    done = out.size() - out_left;
    if (rc != static_cast<size_t>(-1)) break;
    if (errno == E2BIG) {
      grow();
      continue;
    }
    if (out.size() - done < kReplacement.size()) grow();
    out.replace(done, kReplacement.size(), kReplacement);
    done += kReplacement.size();
    if (errno != EILSEQ) break;  // EINVAL: cut inside a sequence at the end
    ++in_p;
    --in_left;
  }
  // A stateful charset (ISO-2022-JP) may owe a final shift sequence.
  for (;;) {
    char* out_p = out.data() + done;
    size_t out_left = out.size() - done;
    const size_t rc = iconv(cd, nullptr, nullptr, &out_p, &out_left);
    done = out.size() - out_left;
    if (rc != static_cast<size_t>(-1) || errno != E2BIG) break;
    grow();
  }
  out.resize(done);
  return out;
}

bool is_label_for_ascii_or_utf8(const std::string& charset) {
  for (std::string_view label : {"", "us-ascii", "ascii", "utf-8", "utf8", "x-unknown",
                                 "unknown-8bit", "unknown", "default", "7bit", "8bit"}) {
    if (charset == label) return true;
  }
  return false;
}

bool is_label_for_latin1(const std::string& charset) {
  for (std::string_view label :
       {"iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819"}) {
    if (charset == label) return true;
  }
  return false;
}

// Bytes labelled `charset` (a Content-Type parameter, any case) as valid UTF-8. Mail labelled
// us-ascii, utf-8 or nothing that is not valid UTF-8, and mail labelled iso-8859-1, is read as
// windows-1252 (a superset of iso-8859-1's printable characters that mailers send under its
// name); a charset iconv does not know is read as UTF-8 if it is, else as windows-1252.
std::string to_utf8(std::string_view bytes, std::string_view charset_label) {
  std::string charset = ascii_lowercase(trim_space(charset_label));
  if (is_label_for_ascii_or_utf8(charset)) {
    if (!invalid_utf8_at(bytes)) return std::string(bytes);
    charset = "windows-1252";
  } else if (is_label_for_latin1(charset)) {
    charset = "windows-1252";
  }
  IconvPtr cd = open_to_utf8(charset);
  if (!cd && (charset.ends_with("-i") || charset.ends_with("-e"))) {  // iso-8859-8-i (RFC 1556)
    cd = open_to_utf8(charset.substr(0, charset.size() - 2));
  }
  if (!cd) {
    if (!invalid_utf8_at(bytes)) return std::string(bytes);
    cd = open_to_utf8("windows-1252");
    if (!cd) return valid_utf8(bytes);
  }
  return valid_utf8(convert(bytes, cd.get()));
}

// LF line ends, no NUL, no U+FEFF (a byte-order mark, or the deprecated zero-width no-break
// space: nothing a reader sees).
std::string normalise_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (s.substr(i).starts_with("\xEF\xBB\xBF")) {
      i += 2;
    } else if (c == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else if (c != '\0') {
      out += c;
    }
  }
  return out;
}

// --- Text -----------------------------------------------------------------------------------

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (;;) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.push_back(text.substr(start));
      return lines;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
}

bool blank(std::string_view line) { return trim_space(line).empty(); }

// format=flowed (RFC 3676): lines ending in a space continue on the next line of the same
// quote depth; a leading space is stuffing; "-- " stays a line of its own.
std::string unflow(std::string_view text, bool delsp) {
  std::string out;
  std::string paragraph;
  size_t depth = 0;
  bool open = false;
  const auto emit = [&] {
    out.append(depth, '>');
    if (depth > 0) out += ' ';
    out += paragraph;
    out += '\n';
    paragraph.clear();
    open = false;
  };
  for (std::string_view line : split_lines(text)) {
    size_t d = 0;
    while (d < line.size() && line[d] == '>') ++d;
    std::string_view content = line.substr(d);
    if (content.starts_with(' ')) content.remove_prefix(1);
    const bool signature = content == "-- ";
    const bool flowed = !signature && content.ends_with(' ');
    if (open && d != depth) emit();
    depth = d;
    open = true;
    if (flowed && delsp) content.remove_suffix(1);
    paragraph += content;
    if (!flowed) emit();
  }
  if (open) emit();
  if (!text.ends_with('\n') && !out.empty()) out.pop_back();
  return out;
}

// Blank lines before the first and after the last line with text dropped; the rest verbatim.
std::string trim_blank_lines(const std::vector<std::string_view>& lines) {
  size_t first = 0;
  size_t last = lines.size();
  while (first < last && blank(lines[first])) ++first;
  while (last > first && blank(lines[last - 1])) --last;
  std::string out;
  for (size_t i = first; i < last; ++i) {
    if (i > first) out += '\n';
    out += lines[i];
  }
  return out;
}

// Runs of blank lines become one, lines lose trailing whitespace, the whole is trimmed.
std::string tidy_lines(const std::vector<std::string_view>& lines) {
  std::string out;
  bool pending_blank = false;
  for (std::string_view line : lines) {
    const auto last = line.find_last_not_of(" \t\r\f\v");
    line = last == std::string_view::npos ? std::string_view() : line.substr(0, last + 1);
    if (line.empty()) {
      pending_blank = !out.empty();
      continue;
    }
    if (!out.empty()) out += pending_blank ? "\n\n" : "\n";
    pending_blank = false;
    out += line;
  }
  return out;
}

std::string_view trim_left(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  return first == std::string_view::npos ? std::string_view() : s.substr(first);
}

bool quoted(std::string_view line) { return trim_left(line).starts_with('>'); }

bool is_letter_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (static_cast<unsigned char>(c) >= 0x80);
}

// `word` in `line` as a whole word, ignoring ASCII case.
bool has_word(std::string_view line, std::string_view word) {
  if (word.size() > line.size()) return false;
  for (size_t i = 0; i + word.size() <= line.size(); ++i) {
    if (!iequals(line.substr(i, word.size()), word)) continue;
    const bool start_ok = i == 0 || !is_letter_byte(line[i - 1]);
    const size_t after = i + word.size();
    if (start_ok && (after == line.size() || !is_letter_byte(line[after]))) return true;
  }
  return false;
}

bool starts_with_any(std::string_view line, std::initializer_list<std::string_view> prefixes) {
  for (std::string_view p : prefixes) {
    if (istarts_with(line, p)) return true;
  }
  return false;
}

// How an attribution line opens ("On Tue, 7 Jan 2025 …", "Am …", "Le …").
bool opens_attribution(std::string_view line) {
  return starts_with_any(trim_left(line),
                         {"On ", "Am ", "Le ", "El ", "Il ", "Em ", "Op ", "Den ", "W dniu "});
}

bool names_writing(std::string_view line) {
  for (std::string_view w : {"wrote", "writes", "schrieb", "\u00e9crit", "escribi\u00f3", "scritto",
                             "escreveu", "schreef", "skrev", "kirjoitti", "napisa\u0142"}) {
    if (has_word(line, w)) return true;
  }
  return false;
}

struct Attribution {
  size_t start = 0;         // its first line (Gmail wraps long ones onto two)
  bool cut_to_end = false;  // no ">" block follows: the history below was not quoted (HTML)
};

size_t next_non_blank(const std::vector<std::string_view>& lines, size_t i) {
  while (i < lines.size() && blank(lines[i])) ++i;
  return i;
}

// "On Tue, 7 Jan 2025 at 09:14, Kim <kim@example.org> wrote:" at lines[i] (its last line).
std::optional<Attribution> attribution_at(const std::vector<std::string_view>& lines, size_t i) {
  const std::string_view line = trim_space(lines[i]);
  if (line.empty() || quoted(line) || !line.ends_with(':') || !names_writing(line)) {
    return std::nullopt;
  }
  Attribution a{i, false};
  bool opened = opens_attribution(line);
  if (!opened && i > 0 && !blank(lines[i - 1]) && !quoted(lines[i - 1]) &&
      opens_attribution(lines[i - 1]) && !trim_space(lines[i - 1]).ends_with(':')) {
    a.start = i - 1;
    opened = true;
  }
  const size_t next = next_non_blank(lines, i + 1);
  if (next < lines.size() && quoted(lines[next])) return a;
  // Not followed by quotes: only an attribution with a date in it ("On Monday my boss wrote:"
  // followed by prose is not one).
  bool dated = false;
  for (size_t k = a.start; k <= i; ++k) {
    dated = dated || lines[k].find_first_of("0123456789") != std::string_view::npos;
  }
  if (!opened || !dated) return std::nullopt;
  a.cut_to_end = true;
  return a;
}

// Outlook's "-----Original Message-----" and its localised forms.
bool original_message_marker(std::string_view line) {
  line = trim_space(line);
  if (!line.starts_with("--") || !line.ends_with("--")) return false;
  for (std::string_view words :
       {"Original Message", "Urspr\u00fcngliche Nachricht", "Message d'origine", "Mensaje original",
        "Messaggio originale", "Oorspronkelijk bericht"}) {
    if (line.find(words) != std::string_view::npos) return true;
    if (ascii_lowercase(line).find(ascii_lowercase(words)) != std::string::npos) return true;
  }
  return false;
}

bool header_line(std::string_view line, std::initializer_list<std::string_view> names) {
  return starts_with_any(trim_left(line), names);
}

// Outlook's quoted header block: "From: …" then, within a few lines, "Sent: …" (or "Date:")
// and "To:" or "Subject:" (English, German, French, Dutch, Spanish forms).
bool outlook_header_block_at(const std::vector<std::string_view>& lines, size_t i) {
  if (!header_line(lines[i], {"From:", "Von:", "De:", "De :", "Van:", "Da:"})) return false;
  bool dated = false;
  bool addressed = false;
  for (size_t k = i + 1; k < lines.size() && k <= i + 6; ++k) {
    dated = dated || header_line(lines[k], {"Sent:", "Date:", "Gesendet:", "Datum:", "Envoy",
                                            "Verzonden:", "Enviado:", "Inviato:"});
    addressed = addressed ||
                header_line(lines[k], {"To:", "Subject:", "An:", "Betreff:", "\u00c0 :", "Objet",
                                       "Aan:", "Onderwerp:", "Para:", "Asunto:", "Cc:"});
  }
  return dated && addressed;
}

bool outlook_cut_at(const std::vector<std::string_view>& lines, size_t i) {
  if (original_message_marker(lines[i])) return true;
  const std::string_view line = trim_space(lines[i]);
  if (line.size() >= 8 && line.find_first_not_of('_') == std::string_view::npos) {
    const size_t next = next_non_blank(lines, i + 1);
    return next < lines.size() && outlook_header_block_at(lines, next);
  }
  return outlook_header_block_at(lines, i);
}

bool forward_marker(std::string_view line) {
  const std::string_view t = trim_space(line);
  return istarts_with(t, "---------- Forwarded message") ||
         istarts_with(t, "-------- Forwarded Message") ||
         istarts_with(t, "Begin forwarded message:");
}

bool forward_subject(std::string_view subject) {
  const std::string_view s = trim_space(subject);
  for (std::string_view p : {"fwd:", "fw:", "wg:", "tr:", "fwd :", "fw :"}) {
    if (istarts_with(s, p)) return true;
  }
  return false;
}

// --- GMime 3.2.13's base64 ------------------------------------------------------------------
// Its base64 decoder stops for good at the first '=' (fixed in 3.2.14, jstedfast/gmime#133 and
// #150). So a run of RFC 2047 B-words whose first is padded ("=?UTF-8?B?w7s=?= =?UTF-8?B?…?=",
// what Python's email package and GMime itself write) decodes to the first word alone, and a
// body that was base64-encoded in padded chunks to its first chunk. Headers are repaired before
// they are read; base64 bodies are decoded here.

int base64_rank(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Decodes `in`, skipping what is not base64; '=' ends a chunk and decoding goes on after it.
// Appends to `out` when it is not null; returns the bytes decoded.
size_t decode_base64(std::string_view in, std::string* out) {
  uint32_t bits = 0;
  int n = 0;
  size_t count = 0;
  const auto emit = [&](uint32_t byte) {
    ++count;
    if (out != nullptr) out->push_back(static_cast<char>(byte & 0xFFu));
  };
  const auto end_chunk = [&] {
    if (n >= 2) {
      bits <<= 6 * (4 - n);
      emit(bits >> 16);
      if (n == 3) emit(bits >> 8);
    }
    bits = 0;
    n = 0;
  };
  for (char c : in) {
    const int rank = base64_rank(c);
    if (rank >= 0) {
      bits = (bits << 6) | static_cast<uint32_t>(rank);
      if (++n == 4) {
        emit(bits >> 16);
        emit(bits >> 8);
        emit(bits);
        bits = 0;
        n = 0;
      }
    } else if (c == '=') {
      end_chunk();
    }
  }
  end_chunk();  // a last chunk without its padding
  return count;
}

struct EncodedWord {
  size_t begin = 0;
  size_t end = 0;            // one past its "?="
  std::string_view charset;  // with any "*language"
  bool base64 = false;
  std::string_view text;
};

// The RFC 2047 encoded-words of a raw header value, in order.
std::vector<EncodedWord> encoded_words(std::string_view raw) {
  std::vector<EncodedWord> words;
  size_t at = 0;
  while ((at = raw.find("=?", at)) != std::string_view::npos) {
    const size_t q1 = raw.find('?', at + 2);
    if (q1 == std::string_view::npos || q1 + 2 >= raw.size() || raw[q1 + 2] != '?') break;
    const size_t close = raw.find("?=", q1 + 3);
    if (close == std::string_view::npos) break;
    EncodedWord w;
    w.begin = at;
    w.end = close + 2;
    w.charset = raw.substr(at + 2, q1 - at - 2);
    w.base64 = raw[q1 + 1] == 'B' || raw[q1 + 1] == 'b';
    w.text = raw.substr(q1 + 3, close - q1 - 3);
    const bool sane = w.charset.find_first_of(" \t\r\n") == std::string_view::npos &&
                      w.text.find_first_of(" \t\r\n?") == std::string_view::npos;
    if (sane) words.push_back(w);
    at = sane ? w.end : at + 2;
  }
  return words;
}

// `raw` with each run of adjacent B-words of one charset in which a word before the last is
// padded merged into one word (the bytes of each decoded alone, then encoded together); nullopt
// when there is no such run.
std::optional<std::string> merge_padded_words(std::string_view raw) {
  if (raw.find("=?=") == std::string_view::npos) return std::nullopt;  // no padded B-word
  const std::vector<EncodedWord> words = encoded_words(raw);
  std::string out;
  size_t copied = 0;
  bool changed = false;
  for (size_t i = 0; i < words.size();) {
    size_t j = i + 1;
    bool padded_inside = false;
    while (j < words.size() && words[i].base64 && words[j].base64 &&
           iequals(words[j].charset, words[i].charset) &&
           trim_space(raw.substr(words[j - 1].end, words[j].begin - words[j - 1].end)).empty()) {
      padded_inside = padded_inside || words[j - 1].text.find('=') != std::string_view::npos;
      ++j;
    }
    if (padded_inside) {
      std::string bytes;
      for (size_t k = i; k < j; ++k) decode_base64(words[k].text, &bytes);
      const GCharPtr b64(
          g_base64_encode(reinterpret_cast<const guchar*>(bytes.data()), bytes.size()));
      out.append(raw.substr(copied, words[i].begin - copied));
      out += fmt::format("=?{}?B?{}?=", words[i].charset, view_of(b64.get()));
      copied = words[j - 1].end;
      changed = true;
    }
    i = j;
  }
  if (!changed) return std::nullopt;
  out.append(raw.substr(copied));
  return out;
}

// Every header of `object` (not of its parts) with merge_padded_words applied; GMime then
// decodes the changed ones again (the subject, the addresses, the content type's name…).
void repair_encoded_words(GMimeObject* object) {
  GMimeHeaderList* headers = g_mime_object_get_header_list(object);
  const int n = headers == nullptr ? 0 : g_mime_header_list_get_count(headers);
  for (int i = 0; i < n; ++i) {
    GMimeHeader* header = g_mime_header_list_get_header_at(headers, i);
    const char* raw = header == nullptr ? nullptr : g_mime_header_get_raw_value(header);
    if (raw == nullptr) continue;
    if (const auto merged = merge_padded_words(raw)) {
      g_mime_header_set_raw_value(header, merged->c_str());
    }
  }
}

// --- The MIME tree --------------------------------------------------------------------------

std::string mime_type_of(GMimeObject* object) {
  GMimeContentType* ct = g_mime_object_get_content_type(object);
  if (ct == nullptr) return "application/octet-stream";
  return ascii_lowercase(fmt::format("{}/{}", view_of(g_mime_content_type_get_media_type(ct)),
                                     view_of(g_mime_content_type_get_media_subtype(ct))));
}

std::string content_type_parameter(GMimeObject* object, const char* name) {
  return std::string(view_of(g_mime_object_get_content_type_parameter(object, name)));
}

bool disposed_as_attachment(GMimeObject* object) {
  return iequals(trim_space(view_of(g_mime_object_get_disposition(object))), "attachment");
}

std::string mem_contents(GMimeStream* mem) {
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
  if (bytes == nullptr || bytes->len == 0) return {};
  return {reinterpret_cast<const char*>(bytes->data), bytes->len};
}

// All of `source`, from its start.
std::string stream_bytes(GMimeStream* source) {
  const GObjectPtr<GMimeStream> copy(g_mime_stream_mem_new());
  if (g_mime_stream_reset(source) < 0 || g_mime_stream_write_to_stream(source, copy.get()) < 0) {
    return {};
  }
  return mem_contents(copy.get());
}

// The content of a base64 part as sent, or nullopt when the part is not base64.
std::optional<std::string> base64_text(GMimeDataWrapper* content) {
  if (g_mime_data_wrapper_get_encoding(content) != GMIME_CONTENT_ENCODING_BASE64) {
    return std::nullopt;
  }
  GMimeStream* stream = g_mime_data_wrapper_get_stream(content);
  return stream == nullptr ? std::string() : stream_bytes(stream);
}

// The part's content with its transfer encoding (base64, quoted-printable, uuencode) undone.
std::string decoded_bytes(GMimePart* part) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content == nullptr) return {};
  if (const auto b64 = base64_text(content)) {
    std::string bytes;
    decode_base64(*b64, &bytes);
    return bytes;
  }
  const GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new());
  if (g_mime_data_wrapper_write_to_stream(content, stream.get()) < 0) return {};
  return mem_contents(stream.get());
}

// What decoded_bytes would hold, counted without keeping it.
size_t decoded_size(GMimePart* part) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content == nullptr) return 0;
  if (const auto b64 = base64_text(content)) return decode_base64(*b64, nullptr);
  const GObjectPtr<GMimeStream> counter(g_mime_stream_null_new());
  if (g_mime_data_wrapper_write_to_stream(content, counter.get()) < 0) return 0;
  return GMIME_STREAM_NULL(counter.get())->written;
}

size_t serialised_size(GMimeObject* object) {
  const GObjectPtr<GMimeStream> counter(g_mime_stream_null_new());
  if (g_mime_object_write_to_stream(object, nullptr, counter.get()) < 0) return 0;
  return GMIME_STREAM_NULL(counter.get())->written;
}

struct Body {
  std::vector<std::string> pieces;  // the text of each part read, in order
  bool from_html = false;
  std::vector<MailAttachment> attachments;
};

// A text/plain or text/html leaf as UTF-8 text.
std::string leaf_text(GMimePart* part, const std::string& mime_type, bool& from_html) {
  GMimeObject* object = GMIME_OBJECT(part);
  std::string text =
      normalise_text(to_utf8(decoded_bytes(part), content_type_parameter(object, "charset")));
  if (mime_type == "text/html") {
    from_html = true;
    auto reduced = capabilities::html_to_text(text, "utf-8");
    return reduced ? std::move(reduced->text) : std::string();
  }
  if (iequals(trim_space(content_type_parameter(object, "format")), "flowed")) {
    return unflow(text, iequals(trim_space(content_type_parameter(object, "delsp")), "yes"));
  }
  return text;
}

bool is_body_type(const std::string& mime_type) {
  return mime_type == "text/plain" || mime_type == "text/html";
}

void visit(GMimeObject* object, int depth, bool top, Body& body);

void add_text(Body& body, std::string text, bool from_html) {
  if (blank(text)) return;
  body.pieces.push_back(std::move(text));
  body.from_html = body.from_html || from_html;
}

// multipart/alternative: the plain text when it says something, else the HTML, else a nested
// multipart (multipart/related around the HTML). The other alternatives are the same content.
void visit_alternative(GMimeMultipart* multipart, int depth, Body& body) {
  GMimePart* plain = nullptr;
  GMimePart* html = nullptr;
  GMimeObject* nested = nullptr;
  const int n = g_mime_multipart_get_count(multipart);
  for (int i = 0; i < n; ++i) {
    GMimeObject* child = g_mime_multipart_get_part(multipart, i);
    if (child == nullptr) continue;
    if (GMIME_IS_MULTIPART(child)) {
      if (nested == nullptr) nested = child;
      continue;
    }
    if (!GMIME_IS_PART(child) || GMIME_IS_MESSAGE_PART(child) || disposed_as_attachment(child)) {
      continue;
    }
    const std::string type = mime_type_of(child);
    if (type == "text/plain" && plain == nullptr) plain = GMIME_PART(child);
    if (type == "text/html" && html == nullptr) html = GMIME_PART(child);
  }
  for (GMimePart* part : {plain, html}) {
    if (part == nullptr) continue;
    bool from_html = false;
    std::string text = leaf_text(part, mime_type_of(GMIME_OBJECT(part)), from_html);
    if (blank(text)) continue;
    add_text(body, std::move(text), from_html);
    return;
  }
  if (nested != nullptr) visit(nested, depth + 1, false, body);
}

bool is_signature_type(const std::string& mime_type) {
  return mime_type == "application/pgp-signature" || mime_type == "application/pkcs7-signature" ||
         mime_type == "application/x-pkcs7-signature";
}

void visit(GMimeObject* object, int depth, bool top, Body& body) {
  if (object == nullptr || depth > kMaxDepth) return;
  repair_encoded_words(object);
  if (GMIME_IS_MULTIPART(object)) {
    GMimeMultipart* multipart = GMIME_MULTIPART(object);
    const std::string type = mime_type_of(object);
    if (type == "multipart/alternative") {
      visit_alternative(multipart, depth, body);
      return;
    }
    const int n = g_mime_multipart_get_count(multipart);
    for (int i = 0; i < n; ++i) {
      GMimeObject* child = g_mime_multipart_get_part(multipart, i);
      // multipart/signed: the second part is the signature, not content.
      if (type == "multipart/signed" && i > 0 && is_signature_type(mime_type_of(child))) continue;
      visit(child, depth + 1, false, body);
    }
    return;
  }
  if (GMIME_IS_MESSAGE_PART(object)) {  // a forwarded or returned message: described only
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
    if (inner != nullptr) repair_encoded_words(GMIME_OBJECT(inner));
    MailAttachment a;
    a.name = one_line(view_of(g_mime_object_get_content_disposition_parameter(object, "filename")));
    if (a.name.empty() && inner != nullptr) {
      a.name = one_line(view_of(g_mime_message_get_subject(inner)));
    }
    a.content_type = mime_type_of(object);
    a.size = inner == nullptr ? 0 : serialised_size(GMIME_OBJECT(inner));
    body.attachments.push_back(std::move(a));
    return;
  }
  if (!GMIME_IS_PART(object)) return;
  GMimePart* part = GMIME_PART(object);
  const std::string type = mime_type_of(object);
  const std::string_view filename = view_of(g_mime_part_get_filename(part));
  if (is_body_type(type) && !disposed_as_attachment(object) && (top || filename.empty())) {
    bool from_html = false;
    std::string text = leaf_text(part, type, from_html);
    add_text(body, std::move(text), from_html);
    return;
  }
  body.attachments.push_back(MailAttachment{one_line(filename), type, decoded_size(part)});
}

// --- Headers --------------------------------------------------------------------------------

MailAddress make_address(std::string_view address, std::string_view name) {
  MailAddress a;
  a.address = token(address);
  a.name = one_line(name);
  a.lowercase = ascii_lowercase(a.address);
  return a;
}

void add_addresses(InternetAddressList* list, std::vector<MailAddress>& out, int depth = 0) {
  if (list == nullptr || depth > 2) return;
  const int n = internet_address_list_length(list);
  for (int i = 0; i < n; ++i) {
    InternetAddress* ia = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
      out.push_back(
          make_address(view_of(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia))),
                       view_of(internet_address_get_name(ia))));
    } else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
      add_addresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), out, depth + 1);
    }
  }
}

std::vector<std::string> message_ids(GMimeParserOptions* options, const char* value) {
  std::vector<std::string> ids;
  if (value == nullptr) return ids;
  const ReferencesPtr refs(g_mime_references_parse(options, value));
  if (!refs) return ids;
  const int n = g_mime_references_length(refs.get());
  for (int i = 0; i < n; ++i) {
    std::string id = token(view_of(g_mime_references_get_message_id(refs.get(), i)));
    if (!id.empty()) ids.push_back(std::move(id));
  }
  return ids;
}

// A header value without its RFC 5322 comments ("(…)", nested, with \-escapes).
std::string without_comments(std::string_view s) {
  std::string out;
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\' && depth > 0) {
      ++i;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')' && depth > 0) {
      --depth;
    } else if (depth == 0) {
      out += c;
    }
  }
  return out;
}

// "auto-replied; owner=…" → "auto-replied".
std::string keyword_of(std::string_view value) {
  const std::string plain = without_comments(value);
  const std::string_view v(plain);
  return ascii_lowercase(trim_space(v.substr(0, v.find(';'))));
}

void read_return_path(std::string_view raw, ParsedMail& mail) {
  const std::string plain = without_comments(raw);
  std::string_view v = trim_space(plain);
  if (const auto open = v.find('<'); open != std::string_view::npos) {
    v = v.substr(open + 1);
    v = v.substr(0, v.find('>'));
  }
  mail.has_return_path = true;
  mail.return_path = token(v);
  mail.null_return_path = mail.return_path.empty();
}

void read_headers(GMimeObject* message, ParsedMail& mail) {
  GMimeHeaderList* headers = g_mime_object_get_header_list(message);
  const int n = headers == nullptr ? 0 : g_mime_header_list_get_count(headers);
  AutomationHeaders& a = mail.automation;
  for (int i = 0; i < n; ++i) {
    GMimeHeader* header = g_mime_header_list_get_header_at(headers, i);
    if (header == nullptr) continue;
    const std::string_view name = trim_space(view_of(g_mime_header_get_name(header)));
    const auto value = [&] { return view_of(g_mime_header_get_value(header)); };
    if (iequals(name, "Auto-Submitted")) {
      // Several: any value but "no" makes the mail automatic.
      if (!a.auto_submitted || *a.auto_submitted == "no") a.auto_submitted = keyword_of(value());
    } else if (iequals(name, "Precedence")) {
      if (!a.precedence) a.precedence = keyword_of(value());
    } else if (iequals(name, "List-Id")) {
      a.list_id = true;
    } else if (iequals(name, "List-Unsubscribe")) {
      a.list_unsubscribe = true;
    } else if (iequals(name, "List-Post")) {
      a.list_post = true;
    } else if (iequals(name, "X-Auto-Response-Suppress")) {
      a.x_auto_response_suppress = true;
    } else if (iequals(name, "X-Autoreply")) {
      a.x_autoreply = true;
    } else if (iequals(name, "X-Autorespond")) {
      a.x_autorespond = true;
    } else if (iequals(name, "X-Autogenerated")) {
      a.x_autogenerated = true;
    } else if (iequals(name, "Authentication-Results")) {
      const GCharPtr unfolded(
          g_mime_utils_header_unfold(view_of(g_mime_header_get_raw_value(header)).data()));
      mail.authentication_results.push_back(one_line(view_of(unfolded.get())));
    } else if (iequals(name, "Return-Path")) {
      if (!mail.has_return_path) {
        read_return_path(view_of(g_mime_header_get_raw_value(header)), mail);
      }
    }
  }
}

}  // namespace
}  // namespace mail_message_detail

std::string strip_quoted(std::string_view text, std::string_view subject) {
  using namespace mail_message_detail;  // NOLINT(google-build-using-namespace): this file's own
  const std::vector<std::string_view> lines = split_lines(text);
  std::string whole = trim_blank_lines(lines);
  if (forward_subject(subject)) return whole;
  for (std::string_view line : lines) {
    if (!quoted(line) && forward_marker(line)) return whole;
  }
  // Quoted lines and the attributions above them go; Outlook's history, unquoted, is cut with
  // all that follows, as is an attribution above history that lost its ">" (HTML mail).
  size_t end = lines.size();
  std::vector<bool> dropped(lines.size(), false);
  for (size_t i = 0; i < end; ++i) {
    if (quoted(lines[i])) {
      dropped[i] = true;
    } else if (outlook_cut_at(lines, i)) {
      end = i;
    } else if (const auto a = attribution_at(lines, i)) {
      if (a->cut_to_end) {
        end = a->start;
      } else {
        for (size_t k = a->start; k <= i; ++k) dropped[k] = true;
      }
    }
  }
  // The signature: "-- " (RFC 3676), or "--" with at most 10 lines below it.
  std::vector<size_t> filled_below(end + 1, 0);  // lines with text in (i, end)
  for (size_t i = end; i-- > 1;) filled_below[i - 1] = filled_below[i] + (blank(lines[i]) ? 0 : 1);
  for (size_t i = 0; i < end; ++i) {
    if (dropped[i]) continue;
    const bool dashes = trim_space(lines[i]) == "--" && lines[i].starts_with("--");
    if (lines[i] == "-- " || (dashes && filled_below[i] <= 10)) {
      end = i;
      break;
    }
  }
  std::vector<std::string_view> kept;
  for (size_t i = 0; i < end; ++i) {
    if (!dropped[i]) kept.push_back(lines[i]);
  }
  // A mobile client's footer as the last line.
  while (!kept.empty() && blank(kept.back())) kept.pop_back();
  if (!kept.empty()) {
    const std::string_view last = trim_space(kept.back());
    if (last.size() < 80 &&
        (istarts_with(last, "Sent from ") || istarts_with(last, "Get Outlook for "))) {
      kept.pop_back();
    }
  }
  std::string own = tidy_lines(kept);
  return own.empty() ? whole : own;
}

Result<ParsedMail> parse_mail(std::string_view raw, size_t max_bytes) {
  using namespace mail_message_detail;  // NOLINT(google-build-using-namespace): this file's own
  if (raw.size() > max_bytes) {
    return fail(
        ErrorCode::invalid_argument,
        fmt::format("the mail is {} bytes, over the limit of {} bytes", raw.size(), max_bytes));
  }
  init_gmime();
  // Declared first, destroyed last: the message's headers keep a pointer to the options.
  const ParserOptionsPtr options = make_parser_options();
  const GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(raw.data(), raw.size()));
  const GObjectPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  const GObjectPtr<GMimeMessage> message(
      g_mime_parser_construct_message(parser.get(), options.get()));
  GMimeObject* object = message ? GMIME_OBJECT(message.get()) : nullptr;
  GMimeHeaderList* headers = object == nullptr ? nullptr : g_mime_object_get_header_list(object);
  if (headers == nullptr || g_mime_header_list_get_count(headers) == 0) {
    return fail(
        ErrorCode::invalid_argument,
        fmt::format("not a mail message: no header could be read from its {} bytes", raw.size()));
  }

  repair_encoded_words(object);

  ParsedMail mail;
  mail.raw_size = raw.size();
  mail.message_id = token(view_of(g_mime_message_get_message_id(message.get())));
  if (auto ids = message_ids(options.get(), g_mime_object_get_header(object, "In-Reply-To"));
      !ids.empty()) {
    mail.in_reply_to = std::move(ids.front());
  }
  mail.references = message_ids(options.get(), g_mime_object_get_header(object, "References"));
  mail.subject = one_line(view_of(g_mime_message_get_subject(message.get())));
  if (GDateTime* date = g_mime_message_get_date(message.get()); date != nullptr) {
    const int64_t ms = g_date_time_to_unix(date) * 1000 + g_date_time_get_microsecond(date) / 1000;
    mail.date_ms = ms > 0 ? ms : 0;
  }

  std::vector<MailAddress> from;
  add_addresses(g_mime_message_get_from(message.get()), from);
  mail.from_count = from.size();
  if (!from.empty()) mail.from = std::move(from.front());
  add_addresses(g_mime_message_get_to(message.get()), mail.to);
  add_addresses(g_mime_message_get_cc(message.get()), mail.cc);
  add_addresses(g_mime_message_get_reply_to(message.get()), mail.reply_to);
  read_headers(object, mail);

  GMimeObject* top = g_mime_message_get_mime_part(message.get());
  if (top != nullptr) {
    mail.content_type = mime_type_of(top);
    mail.report_type = ascii_lowercase(trim_space(content_type_parameter(top, "report-type")));
  }
  Body body;
  visit(top, 0, true, body);
  std::string joined;
  for (const std::string& piece : body.pieces) {
    if (!joined.empty()) joined += "\n\n";
    joined += piece;
  }
  mail.full_text = trim_blank_lines(split_lines(joined));
  mail.text = strip_quoted(mail.full_text, mail.subject);
  mail.text_from_html = body.from_html;
  mail.attachments = std::move(body.attachments);
  return mail;
}

}  // namespace parley::bot::channels::email
