// `channels.email` in parley.yaml (read by config/), with the PARLEY_IMAP_URL family of
// variables over it (app/). Plain data. Passwords are never here: they come from the variables
// named by password_env (or PARLEY_IMAP_PASSWORD / PARLEY_SMTP_PASSWORD).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace parley::bot::channels::email {

// How a connection is protected: TLS from the first byte, STARTTLS after the greeting, or
// nothing at all (loopback only: refused for any other address).
enum class MailTls { implicit, starttls, none };

struct MailServer {
  std::string host;
  uint16_t port = 0;  // 0: the protocol's default for `tls` (993/143, 465/587)
  MailTls tls = MailTls::starttls;
  std::string user;
  std::string password_env;  // the variable holding the password
};

struct EmailOptions {
  bool configured = false;  // channels.email was given (or PARLEY_IMAP_URL)
  struct Imap : MailServer {
    std::string mailbox = "INBOX";
    // What is done to a mail once stored: \Seen, or moved to `move_to`.
    enum class Processed { flag, move } processed = Processed::flag;
    std::string move_to;
    // IDLE (push) when the server offers it; false polls every poll_interval_s instead (for a
    // server whose IDLE is broken, or to compare the two).
    bool idle = true;
  } imap;
  struct Smtp : MailServer {
    std::string from;       // the bot's address
    std::string from_name;  // its display name
  } smtp;
  // Addresses and "@domain"s parley answers; deny-by-default once given (strangers are told
  // once a day).
  std::vector<std::string> allow;
  std::vector<std::string> admins;  // addresses; merged into access.admins as email:ADDRESS
  int poll_interval_s = 60;         // when the server has no IDLE
  size_t max_message_bytes = size_t{10} << 20;
  // When set, a sender is trusted only when this server's Authentication-Results shows
  // dmarc=pass or aligned dkim=pass; otherwise the mail is from a stranger.
  std::string trusted_authserv_id;
  int replies_per_hour = 20;  // per sender
};

// Whether `host` names a loopback address (127.0.0.0/8, ::1, "localhost"): the only places a
// connection without TLS is allowed.
bool loopback_address(const std::string& host);

}  // namespace parley::bot::channels::email
