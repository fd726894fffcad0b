// ImapClient: the IMAP4rev1 commands a bot needs (RFC 3501, IDLE RFC 2177, UIDPLUS, MOVE), over a
// MailStream, on Asio: log in (AUTHENTICATE PLAIN when offered, else LOGIN; STARTTLS first when
// asked), SELECT, UID SEARCH, UID FETCH of whole messages with BODY.PEEK[] (never marking mail
// read by accident), UID STORE \Seen, UID MOVE (COPY + \Deleted + UID EXPUNGE without MOVE),
// NOOP, IDLE/DONE, LOGOUT. Literals ({n}) are read whole. One command at a time; used from one
// strand. The password goes to the server only: never into a log line or an error.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "channels/email/mail_stream.h"

namespace parley::bot::channels::email {

struct ImapEndpoint {
  std::string host;
  uint16_t port = 0;
  MailTls tls = MailTls::starttls;
  std::string user;
  std::string password;
};

struct ImapMailbox {
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 0;  // 0: the server did not say
  uint32_t exists = 0;
};

struct ImapMessage {
  uint32_t uid = 0;
  std::string raw;  // the whole RFC 5322 message
};

// Why IDLE ended.
enum class IdleEnd {
  changed,   // new mail (EXISTS) or an expunge: look again
  poked,     // the caller asked (wake())
  timed_out  // `max` passed with nothing: re-issue it (servers drop idle clients after 30 min)
};

class ImapClient {
 public:
  ImapClient(const net::Executor& executor, net::asio::ssl::context& tls);

  // Connects, reads the greeting, upgrades with STARTTLS when asked, logs in.
  net::asio::awaitable<Status> open(const ImapEndpoint& endpoint);
  // The capabilities after login, upper-cased ("IDLE", "UIDPLUS", "MOVE", "AUTH=PLAIN", …).
  [[nodiscard]] const std::set<std::string>& capabilities() const { return caps_; }
  [[nodiscard]] bool has(const std::string& capability) const {
    return caps_.count(capability) != 0;
  }

  net::asio::awaitable<Result<ImapMailbox>> select(const std::string& mailbox);
  // STATUS of a mailbox other than the selected one (UIDVALIDITY, UIDNEXT).
  net::asio::awaitable<Result<ImapMailbox>> status(const std::string& mailbox);
  // The UIDs above `after`, ascending (a range's "*" may match the highest UID even when it is
  // not above `after`: such UIDs are dropped).
  net::asio::awaitable<Result<std::vector<uint32_t>>> uids_after(uint32_t after);
  // The messages with these UIDs (BODY.PEEK[]); those gone meanwhile are missing.
  net::asio::awaitable<Result<std::vector<ImapMessage>>> fetch(const std::vector<uint32_t>& uids);
  net::asio::awaitable<Status> flag_seen(uint32_t uid);
  // MOVE (or COPY, \Deleted, UID EXPUNGE); the folder is created when the server says
  // TRYCREATE. A command the server refuses fails with invalid_argument (the connection is
  // fine), a broken connection with unavailable.
  net::asio::awaitable<Status> move(uint32_t uid, const std::string& mailbox);
  net::asio::awaitable<Status> noop();
  // IDLE until something changes, wake() is called, or `max` passes; then DONE.
  net::asio::awaitable<Result<IdleEnd>> idle(std::chrono::milliseconds max);
  // Ends an idle() under way early (any thread: posted to the client's executor).
  void wake();
  net::asio::awaitable<void> logout();
  void close() { stream_.close(); }

  // A mailbox name or a password as an IMAP quoted string.
  static std::string quoted(const std::string& s);

 private:
  struct Reply {
    std::string status;                 // OK, NO or BAD (or BYE)
    std::string text;                   // the tagged line's text
    std::vector<std::string> untagged;  // "* …" lines, literals replaced by "{n}"
    std::vector<std::string> literals;  // the literals, in order
  };
  net::asio::awaitable<Result<Reply>> command(const std::string& line, bool secret = false);
  net::asio::awaitable<Result<std::string>> read_response(std::vector<std::string>& literals);
  net::asio::awaitable<Status> refresh_capabilities();
  net::asio::awaitable<Status> move_once(uint32_t uid, const std::string& mailbox);
  static void note_mailbox(const std::string& line, ImapMailbox& m);

  MailStream stream_;
  net::asio::steady_timer poke_;
  std::set<std::string> caps_;
  std::string host_;
  uint32_t tag_ = 0;
  bool idling_ = false;
  bool poked_ = false;
};

}  // namespace parley::bot::channels::email
