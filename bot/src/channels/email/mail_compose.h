// mail_compose: the email channel's reply as RFC 5322 bytes, and the pieces it is made of: the
// subject ("Re: " once), the threading headers (RFC 5322 §3.6.4), a fresh Message-ID, and a
// small, safe Markdown-to-HTML rendering of what models write. Pure apart from make_message_id,
// which reads the system's random source.
//
// Built with GMime (RFC 2047 encoding, header folding, quoted-printable); no GMime type shows
// here.
//
// Thread safety: every function may be called from any number of threads at once.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "channels/email/mail_message.h"
#include "parley/storage/outbox_file.h"

namespace parley::bot::channels::email {

// What compose_mail writes. Addresses are addr-specs ("bot@example.org"); names, the subject
// and the bodies are UTF-8 (invalid bytes become U+FFFD); ids are without their <>.
struct OutgoingMail {
  MailAddress from;  // `address` and `name` are used; `lowercase` is not
  std::vector<MailAddress> to;
  std::vector<MailAddress> cc;
  std::string subject;
  std::chrono::system_clock::time_point date;  // written in UTC (+0000)
  std::string message_id;                      // make_message_id's
  std::string in_reply_to;                     // empty: no In-Reply-To
  std::vector<std::string> references;         // empty: no References
  std::string text;                            // the text/plain body
  std::optional<std::string> html;             // set: multipart/alternative, text then this HTML
  // Files sent with it: multipart/mixed, the body first, then each file as a base64
  // attachment under its name (RFC 2231 when it is not ASCII).
  std::vector<storage::OutboxFile> files;
};

// "Re: " and `subject` without its reply prefixes ("Re:", "RE:", "Re[2]:", "Re(2):", "Aw:",
// "Sv:", "Antw:", "Odp:", repeated or not); a forward's "Fwd:" stays ("Re: Fwd: x"). Blank →
// "Re: (no subject)". Control characters become spaces.
[[nodiscard]] std::string reply_subject(std::string_view subject);

// The References of a reply to `parent` (RFC 5322 §3.6.4): the parent's References, or its
// In-Reply-To when it has no References, then the parent's Message-ID (when it has one and it
// is not already last). Over 21 ids, the first and the last 20 are kept, as mail clients do.
[[nodiscard]] std::vector<std::string> reply_references(const ParsedMail& parent);

// A new, globally unique Message-ID for `domain`: "<128 random bits as hex>.<ms clock>@domain",
// returned WITHOUT the angle brackets (compose_mail adds them). The bits come from getrandom(2)
// (std::random_device should it fail). `domain` is lower-cased and reduced to letters, digits,
// '-' and '.'; when nothing is left, "localhost".
[[nodiscard]] std::string make_message_id(std::string_view domain);

// The message: From (display name RFC 2047-encoded when not ASCII), To, Cc, Subject (RFC 2047
// when needed), Date (RFC 5322), Message-ID, In-Reply-To, References (folded), MIME-Version,
// Auto-Submitted: auto-replied; a text/plain; charset=utf-8 body in quoted-printable, or with
// `html` a multipart/alternative of that part and a text/html one (likewise encoded). CRLF line
// ends throughout. Control characters in names and the subject become spaces and whitespace and
// control characters leave addresses and ids, so that nothing given can add a header; an id
// that is not ASCII is left out (In-Reply-To, References), and so is a display name holding
// "=?" (a reader would take it for an encoded-word; a subject holding it is encoded whole). The
// result is 7-bit, except for an address whose local part is not ASCII, written as UTF-8 (RFC 6532:
// the SMTP server must offer SMTPUTF8); a non-ASCII domain is written in punycode.
[[nodiscard]] std::string compose_mail(const OutgoingMail& mail);

// A fragment of HTML for model-written Markdown, every piece of text HTML-escaped: paragraphs
// (a single line break is <br>), "#" headings, "-"/"*" and "1."/"1)" lists, ``` code blocks,
// `inline code`, **bold**, and [text](url) links whose url is http:, https: or mailto: (any
// other link stays as written, escaped). Invalid UTF-8 becomes U+FFFD.
[[nodiscard]] std::string markdown_to_html(std::string_view text);

}  // namespace parley::bot::channels::email
