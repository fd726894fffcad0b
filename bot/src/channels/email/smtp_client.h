// SmtpClient: one mail handed to a submission server (RFC 5321 / 6409) over a MailStream:
// EHLO, STARTTLS when asked (and EHLO again), AUTH PLAIN or LOGIN when a user is configured,
// MAIL FROM, RCPT TO, DATA (dot-stuffed), QUIT. It checks what libcurl does not: with
// credentials configured, a server that offers no AUTH is refused with a clear error instead of
// sending the mail unauthenticated. The password goes to the server only.
//
// The outcome tells a send that certainly failed (nothing was accepted: try again later) from
// one that may have happened (the connection broke after the final "."): the outbox never
// sends the second kind twice.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "channels/email/mail_stream.h"

namespace parley::bot::channels::email {

struct SmtpEndpoint {
  std::string host;
  uint16_t port = 0;
  MailTls tls = MailTls::starttls;
  std::string user;  // empty: no AUTH
  std::string password;
  std::string helo_name = "parley.localhost";
};

struct SmtpSession {
  std::string greeting;
  std::set<std::string> extensions;  // upper-cased EHLO keywords ("STARTTLS", "SIZE", …)
  std::set<std::string> mechanisms;  // AUTH mechanisms offered ("PLAIN", "LOGIN", …)
  bool tls = false;
  bool authenticated = false;
};

enum class SmtpOutcome {
  sent,       // the server took it (250 after DATA)
  refused,    // certainly not taken: nothing was accepted (retry later, or give up on a 5xx)
  uncertain,  // the connection broke after the data was sent: may have been taken
};

struct SmtpResult {
  SmtpOutcome outcome = SmtpOutcome::refused;
  bool permanent = false;  // a 5xx answer: trying again will not help
  std::string error;       // what happened, in words (the server's line); empty when sent
};

class SmtpClient {
 public:
  SmtpClient(const net::Executor& executor, net::asio::ssl::context& tls);

  // Connects and logs in (what `parley email check` shows); the connection stays open for
  // send_open() or is closed by quit().
  net::asio::awaitable<Result<SmtpSession>> open(const SmtpEndpoint& endpoint);
  // `data`: the whole RFC 5322 message (CRLF line ends). `from` may be empty (the null sender).
  net::asio::awaitable<SmtpResult> send(const SmtpEndpoint& endpoint, const std::string& from,
                                        const std::vector<std::string>& to,
                                        const std::string& data);
  net::asio::awaitable<void> quit();

 private:
  struct Reply {
    int code = 0;
    std::vector<std::string> lines;
    [[nodiscard]] std::string text() const;
  };
  net::asio::awaitable<Result<Reply>> read_reply();
  net::asio::awaitable<Result<Reply>> exchange(const std::string& line, bool secret = false);
  net::asio::awaitable<Result<SmtpSession>> ehlo(const SmtpEndpoint& e);

  MailStream stream_;
  std::string host_;
};

// `data` with every line starting with "." doubled and CRLF line ends, then "\r\n.\r\n".
std::string smtp_dot_stuff(const std::string& data);

}  // namespace parley::bot::channels::email
