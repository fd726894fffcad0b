#include "channels/email/smtp_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "channels/email/mail_strings.h"

namespace parley::bot::channels::email {

namespace asio = net::asio;

namespace {

std::string smtp_upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

}  // namespace

std::string smtp_dot_stuff(const std::string& data) {
  std::string out;
  out.reserve(data.size() + data.size() / 50 + 8);
  bool line_start = true;
  for (size_t i = 0; i < data.size(); ++i) {
    const char c = data[i];
    if (line_start && c == '.') out += '.';
    if (c == '\n' && (i == 0 || data[i - 1] != '\r')) out += '\r';
    out += c;
    line_start = c == '\n';
  }
  if (!line_start) out += "\r\n";
  return out + ".\r\n";
}

std::string SmtpClient::Reply::text() const {
  std::string out = std::to_string(code);
  for (const auto& l : lines) out += " " + l;
  return out;
}

SmtpClient::SmtpClient(const net::Executor& executor, asio::ssl::context& tls)
    : stream_(executor, tls) {}

asio::awaitable<Result<SmtpClient::Reply>> SmtpClient::read_reply() {
  Reply r;
  for (;;) {
    auto line = co_await stream_.read_line();
    if (!line) co_return fail(std::move(line).error());
    if (line->size() < 3 || !std::isdigit(static_cast<unsigned char>((*line)[0]))) {
      co_return fail(ErrorCode::unavailable,
                     fmt::format("SMTP {}: not an SMTP reply: '{}'", host_, line->substr(0, 100)));
    }
    r.code = std::stoi(line->substr(0, 3));
    r.lines.push_back(line->size() > 4 ? line->substr(4) : "");
    if (line->size() < 4 || (*line)[3] != '-') co_return r;
  }
}

asio::awaitable<Result<SmtpClient::Reply>> SmtpClient::exchange(const std::string& line,
                                                                bool secret) {
  Status st = co_await stream_.write(line + "\r\n");
  if (!st.ok()) co_return fail(st.error());
  auto r = co_await read_reply();
  (void)secret;  // the reply never echoes the credentials; the command is never logged
  co_return r;
}

asio::awaitable<Result<SmtpSession>> SmtpClient::ehlo(const SmtpEndpoint& e) {
  auto r = co_await exchange("EHLO " + e.helo_name);
  if (!r) co_return fail(std::move(r).error());
  if (r->code != 250) {
    co_return fail(ErrorCode::unavailable, fmt::format("SMTP {}: EHLO: {}", host_, r->text()));
  }
  SmtpSession s;
  for (size_t i = 1; i < r->lines.size(); ++i) {
    const std::string u = smtp_upper(r->lines[i]);
    const std::string keyword = u.substr(0, u.find_first_of(" ="));
    s.extensions.insert(keyword);
    if (keyword == "AUTH") {
      std::string rest = u.size() > 5 ? u.substr(5) : "";
      size_t at = 0;
      while (at < rest.size()) {
        const size_t end = std::min(rest.find(' ', at), rest.size());
        if (end > at) s.mechanisms.insert(rest.substr(at, end - at));
        at = end + 1;
      }
    }
  }
  s.tls = stream_.tls();
  co_return s;
}

asio::awaitable<Result<SmtpSession>> SmtpClient::open(const SmtpEndpoint& e) {
  host_ = e.host;
  const uint16_t port = e.port != 0 ? e.port : (e.tls == MailTls::implicit ? 465 : 587);
  Status st = co_await stream_.connect(e.host, port, e.tls);
  if (!st.ok()) co_return fail(st.error());
  auto greeting = co_await read_reply();
  if (!greeting) co_return fail(std::move(greeting).error());
  if (greeting->code != 220) {
    co_return fail(ErrorCode::unavailable,
                   fmt::format("SMTP {}: greeted with {}", host_, greeting->text()));
  }
  auto session = co_await ehlo(e);
  if (!session) co_return session;
  if (e.tls == MailTls::starttls) {
    if (session->extensions.count("STARTTLS") == 0) {
      co_return fail(ErrorCode::unavailable,
                     fmt::format("SMTP {}: the server offers no STARTTLS (tls: starttls)", host_));
    }
    auto go = co_await exchange("STARTTLS");
    if (!go) co_return fail(std::move(go).error());
    if (go->code != 220) {
      co_return fail(ErrorCode::unavailable,
                     fmt::format("SMTP {}: STARTTLS: {}", host_, go->text()));
    }
    st = co_await stream_.start_tls();
    if (!st.ok()) co_return fail(st.error());
    session = co_await ehlo(e);
    if (!session) co_return session;
  }
  session->greeting = greeting->lines.empty() ? "" : greeting->lines.front();
  if (!e.user.empty()) {
    // libcurl would send the mail without AUTH here; parley refuses.
    if (session->extensions.count("AUTH") == 0) {
      co_return fail(ErrorCode::permission_denied,
                     fmt::format("SMTP {}: the server offers no AUTH on this connection, but a "
                                 "user is configured: not sending unauthenticated",
                                 host_));
    }
    Result<Reply> auth = fail(ErrorCode::internal, "");
    if (session->mechanisms.count("PLAIN") != 0) {
      auth = co_await exchange(
          "AUTH PLAIN " + base64_encode(std::string(1, '\0') + e.user + '\0' + e.password), true);
    } else if (session->mechanisms.count("LOGIN") != 0) {
      auth = co_await exchange("AUTH LOGIN");
      if (auth && auth->code == 334) auth = co_await exchange(base64_encode(e.user), true);
      if (auth && auth->code == 334) auth = co_await exchange(base64_encode(e.password), true);
    } else {
      co_return fail(ErrorCode::permission_denied,
                     fmt::format("SMTP {}: no AUTH mechanism parley speaks (PLAIN, LOGIN) is "
                                 "offered",
                                 host_));
    }
    if (!auth) co_return fail(std::move(auth).error());
    if (auth->code != 235) {
      co_return fail(ErrorCode::permission_denied,
                     fmt::format("SMTP {}: login as {} refused: {}", host_, e.user, auth->text()));
    }
    session->authenticated = true;
  }
  co_return session;
}

asio::awaitable<SmtpResult> SmtpClient::send(const SmtpEndpoint& e, const std::string& from,
                                             const std::vector<std::string>& to,
                                             const std::string& data) {
  SmtpResult out;
  auto session = co_await open(e);
  if (!session) {
    stream_.close();
    out.error = session.error().message;
    out.permanent = session.error().code == ErrorCode::permission_denied;
    co_return out;
  }
  const auto refused = [&](const std::string& what, const Reply& r) {
    out.outcome = SmtpOutcome::refused;
    out.permanent = r.code >= 500;
    out.error = fmt::format("SMTP {}: {}: {}", host_, what, r.text());
  };
  auto mail = co_await exchange("MAIL FROM:<" + from + ">");
  if (!mail || mail->code != 250) {
    if (mail) {
      refused("MAIL FROM", *mail);
    } else {
      out.error = mail.error().message;
    }
    stream_.close();
    co_return out;
  }
  for (const auto& rcpt : to) {
    auto r = co_await exchange("RCPT TO:<" + rcpt + ">");
    if (!r || (r->code != 250 && r->code != 251)) {
      if (r) {
        refused("RCPT TO " + rcpt, *r);
      } else {
        out.error = r.error().message;
      }
      stream_.close();
      co_return out;
    }
  }
  auto go = co_await exchange("DATA");
  if (!go || go->code != 354) {
    if (go) {
      refused("DATA", *go);
    } else {
      out.error = go.error().message;
    }
    stream_.close();
    co_return out;
  }
  const std::string stuffed = smtp_dot_stuff(data);
  Status st = co_await stream_.write(stuffed);
  if (!st.ok()) {
    // Not all of it went out, so not the final ".": the server drops what it got.
    out.error = st.error().message;
    stream_.close();
    co_return out;
  }
  auto done = co_await read_reply();
  if (!done) {
    // The data (or part of it) went out and no answer came: it may have been taken.
    out.outcome = SmtpOutcome::uncertain;
    out.error = done.error().message;
    stream_.close();
    co_return out;
  }
  if (done->code != 250) {
    refused("after the data", *done);
    stream_.close();
    co_return out;
  }
  out.outcome = SmtpOutcome::sent;
  out.error.clear();
  co_await quit();
  co_return out;
}

asio::awaitable<void> SmtpClient::quit() {
  auto bye = co_await exchange("QUIT");
  (void)bye;
  stream_.close();
}

}  // namespace parley::bot::channels::email
