// loop_guard: the rules of loop_guard.h, and a reader of RFC 8601's header:
//   Authentication-Results: authserv-id [version] ( ";" method[/version] "=" result
//                           [reason=…] *(ptype.property "=" value) )* | ";" "none"
// with comments ("(…)", nested) anywhere and quoted strings as values.
#include "channels/email/loop_guard.h"

#include <fmt/format.h>

#include <string_view>
#include <utility>
#include <vector>

#include "channels/email/mail_strings.h"

namespace parley::bot::channels::email {
namespace loop_guard_detail {
namespace {

// --- Authentication-Results -----------------------------------------------------------------

// The value with every comment replaced by a space; quoted strings kept, quotes and all.
std::string drop_comments(std::string_view s) {
  std::string out;
  int depth = 0;
  bool in_quotes = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_quotes) {
      out += c;
      if (c == '\\' && i + 1 < s.size()) {
        out += s[++i];
      } else if (c == '"') {
        in_quotes = false;
      }
    } else if (depth > 0) {
      if (c == '\\') {
        ++i;
      } else if (c == '(') {
        ++depth;
      } else if (c == ')' && --depth == 0) {
        out += ' ';
      }
    } else if (c == '(') {
      depth = 1;
    } else {
      if (c == '"') in_quotes = true;
      out += c;
    }
  }
  return out;
}

// `s` cut at each `sep` outside quoted strings.
std::vector<std::string_view> split_outside_quotes(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  bool in_quotes = false;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (in_quotes && s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      in_quotes = !in_quotes;
    } else if (!in_quotes && s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Words, "=" and quoted strings (unquoted) of one result.
std::vector<std::string> tokens_of(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    if (is_space(s[i])) {
      ++i;
    } else if (s[i] == '=') {
      out.emplace_back("=");
      ++i;
    } else if (s[i] == '"') {
      std::string word;
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        word += s[i];
      }
      ++i;
      out.push_back(std::move(word));
    } else {
      const size_t start = i;
      while (i < s.size() && !is_space(s[i]) && s[i] != '=' && s[i] != '"') ++i;
      out.emplace_back(s.substr(start, i - start));
    }
  }
  return out;
}

struct MethodResult {
  std::string method;  // "dkim", lower case, without a version
  std::string result;  // "pass", lower case
  std::vector<std::pair<std::string, std::string>> properties;  // "header.d" (lower) → value
};

struct AuthenticationResults {
  std::string authserv_id;
  std::vector<MethodResult> results;
};

AuthenticationResults parse_authentication_results(std::string_view value) {
  AuthenticationResults ar;
  const std::string plain = drop_comments(value);
  const std::vector<std::string_view> parts = split_outside_quotes(plain, ';');
  if (const auto id = tokens_of(parts.front()); !id.empty() && id.front() != "=") {
    ar.authserv_id = id.front();
  }
  for (size_t p = 1; p < parts.size(); ++p) {
    const std::vector<std::string> t = tokens_of(parts[p]);
    if (t.size() < 3 || t[1] != "=") continue;  // "none", or not a result
    MethodResult r;
    const std::string_view method = t[0];
    r.method = ascii_lowercase(method.substr(0, method.find('/')));
    r.result = ascii_lowercase(t[2]);
    for (size_t i = 3; i + 2 < t.size();) {
      if (t[i] != "=" && t[i + 1] == "=" && t[i + 2] != "=") {
        r.properties.emplace_back(ascii_lowercase(t[i]), t[i + 2]);
        i += 3;
      } else {
        ++i;
      }
    }
    ar.results.push_back(std::move(r));
  }
  return ar;
}

std::string_view property(const MethodResult& r, std::string_view name) {
  for (const auto& [key, value] : r.properties) {
    if (key == name) return value;
  }
  return {};
}

std::string domain_of(std::string_view address_or_domain) {
  std::string_view d = address_or_domain;
  if (const auto at = d.rfind('@'); at != std::string_view::npos) d = d.substr(at + 1);
  d = trim_space(d);
  while (d.ends_with('.')) d.remove_suffix(1);
  return ascii_lowercase(d);
}

// RFC 7489 relaxed alignment as the issue puts it: the same domain, or From's below the signer's.
// A signer of one label ("com") aligns with nothing.
bool aligned(const std::string& from_domain, const std::string& signer) {
  if (from_domain.empty() || signer.find('.') == std::string::npos) return false;
  return from_domain == signer ||
         (from_domain.size() > signer.size() && from_domain.ends_with(signer) &&
          from_domain[from_domain.size() - signer.size() - 1] == '.');
}

// --- Loops ----------------------------------------------------------------------------------

std::string local_part(const std::string& lowercase_address) {
  std::string_view local(lowercase_address);
  local = local.substr(0, local.rfind('@'));
  return std::string(local.substr(0, local.find('+')));  // noreply+tag@ is noreply@
}

bool robot_local_part(const std::string& lowercase_address) {
  if (lowercase_address.find('@') == std::string::npos) return false;
  const std::string local = local_part(lowercase_address);
  for (std::string_view robot : {"mailer-daemon", "postmaster", "no-reply", "noreply",
                                 "do-not-reply", "donotreply", "no_reply", "do_not_reply"}) {
    if (local == robot) return true;
  }
  return false;
}

}  // namespace
}  // namespace loop_guard_detail

std::optional<std::string> never_answer(const ParsedMail& mail, const LoopContext& context) {
  using namespace loop_guard_detail;  // NOLINT(google-build-using-namespace): this file's own
  if (mail.from.lowercase.empty()) return "no sender address";
  const std::string own = ascii_lowercase(trim_space(context.own_address));
  if (!own.empty()) {
    if (mail.from.lowercase == own) return fmt::format("sent from our own address {}", own);
    for (const MailAddress& a : mail.reply_to) {
      if (a.lowercase == own) return fmt::format("Reply-To is our own address {}", own);
    }
  }
  if (context.sent_by_us) {
    if (!mail.message_id.empty() && context.sent_by_us(mail.message_id)) {
      return fmt::format("our own message <{}> came back", mail.message_id);
    }
    if (!context.answer_replies_to_us && !mail.in_reply_to.empty() &&
        context.sent_by_us(mail.in_reply_to)) {
      return fmt::format("In-Reply-To <{}> is a message we sent", mail.in_reply_to);
    }
  }
  const AutomationHeaders& a = mail.automation;
  if (a.auto_submitted && *a.auto_submitted != "no") {
    return fmt::format("Auto-Submitted: {}",
                       a.auto_submitted->empty() ? "(empty)" : *a.auto_submitted);
  }
  if (a.precedence &&
      (*a.precedence == "bulk" || *a.precedence == "list" || *a.precedence == "junk")) {
    return fmt::format("Precedence: {}", *a.precedence);
  }
  if (a.list_id) return "mailing list (List-Id)";
  if (a.list_unsubscribe) return "mailing list (List-Unsubscribe)";
  if (a.list_post) return "mailing list (List-Post)";
  if (a.x_auto_response_suppress) return "X-Auto-Response-Suppress";
  if (a.x_autoreply) return "X-Autoreply";
  if (a.x_autorespond) return "X-Autorespond";
  if (a.x_autogenerated) return "X-Autogenerated";
  if (mail.null_return_path) return "null Return-Path <>";
  if (mail.content_type == "multipart/report") {
    return mail.report_type.empty() ? "multipart/report"
                                    : fmt::format("multipart/report ({})", mail.report_type);
  }
  if (robot_local_part(mail.from.lowercase)) {
    return fmt::format("sender {} is a robot", mail.from.lowercase);
  }
  if (const std::string rp = ascii_lowercase(mail.return_path); robot_local_part(rp)) {
    return fmt::format("Return-Path {} is a robot", rp);
  }
  return std::nullopt;
}

bool sender_authenticated(const ParsedMail& mail, const std::string& trusted_authserv_id) {
  using namespace loop_guard_detail;  // NOLINT(google-build-using-namespace): this file's own
  const std::string_view trusted = trim_space(trusted_authserv_id);
  if (trusted.empty() || mail.from_count != 1) return false;
  const std::string from_domain = domain_of(mail.from.lowercase);
  if (from_domain.empty() || mail.from.lowercase.find('@') == std::string::npos) return false;
  for (const std::string& header : mail.authentication_results) {
    const AuthenticationResults ar = parse_authentication_results(header);
    if (!iequals(ar.authserv_id, trusted)) continue;
    for (const MethodResult& r : ar.results) {
      if (r.result != "pass") continue;
      if (r.method == "dmarc") {
        const std::string_view header_from = property(r, "header.from");
        if (header_from.empty() || domain_of(header_from) == from_domain) return true;
      } else if (r.method == "dkim") {
        std::string signer = domain_of(property(r, "header.d"));
        if (signer.empty()) signer = domain_of(property(r, "header.i"));
        if (aligned(from_domain, signer)) return true;
      }
    }
    return false;  // only the first header of our server counts
  }
  return false;
}

}  // namespace parley::bot::channels::email
