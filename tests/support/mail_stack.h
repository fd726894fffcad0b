// A real mail server pair on loopback for one test: Dovecot (IMAP with IDLE/UIDPLUS/MOVE, LMTP)
// and Exim (SMTP with AUTH PLAIN/LOGIN over plain TCP, delivering to Dovecot over LMTP), started
// by tests/mail/mailstack on three free ports of 127.0.0.1 with everything under a temporary
// folder, and stopped (no process left) when destroyed.
//
// Users (MailStack::bot(), alice(), carol()): bot/botpass, alice/alicepass and carol/carolpass
// (a stranger to the bot), addresses NAME@parley.test; both servers take "bot" or
// "bot@parley.test" as the login. Exim takes mail only from an authenticated user and only for
// these three (550 otherwise; a wrong password: 535). Mail is Maildir under dir()/mailboxes.
//
// Needs the Debian packages dovecot-imapd, dovecot-lmtpd, exim4-daemon-light (scripts/deps
// --test) and PARLEY_SOURCE_DIR (a compile definition of the test executable). Root or not: as
// root both servers run as nobody.
//
// Ownership: owns the servers and the folder. Thread safety: the const reads (messages(),
// wait_messages(), ports) may run on any thread; the rest on one thread at a time.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/tcp_line_client.h"
#include "support/temp_dir.h"

#ifndef PARLEY_MAILSTACK_SCRIPT
#define PARLEY_MAILSTACK_SCRIPT PARLEY_SOURCE_DIR "/tests/mail/mailstack"
#endif

namespace parley::testing {

inline constexpr const char* kMailDomain = "parley.test";

struct MailUser {
  std::string name;      // the login (and the mailbox's folder)
  std::string password;  // the name + "pass"
  std::string address;   // name@parley.test
};

// One message in a mailbox, as stored: LF line ends (Dovecot stores them so), and the trace
// headers the delivery prepended (Return-Path, Delivered-To, Received; Exim adds its Received).
struct MailMessage {
  std::string raw;
  // Maildir flags: D draft, F flagged, R answered, S seen, T deleted (a–z: Dovecot's keywords)
  std::string flags;
  std::uint32_t uid = 0;  // the IMAP UID, 0 until Dovecot has given one
  std::filesystem::path path;

  [[nodiscard]] bool has_flag(char f) const { return flags.find(f) != std::string::npos; }
  [[nodiscard]] bool seen() const { return has_flag('S'); }
  // The first header called `name` (any case), unfolded, without surrounding blanks; "" if none.
  [[nodiscard]] std::string header(std::string_view name) const {
    std::istringstream in(raw);
    std::string line;
    std::string value;
    bool in_it = false;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) break;
      if (line[0] == ' ' || line[0] == '\t') {
        if (in_it) value += line;
        continue;
      }
      if (in_it) break;
      const size_t colon = line.find(':');
      const auto same = [](char a, char b) { return lower(a) == lower(b); };
      if (colon != name.size() || !std::equal(name.begin(), name.end(), line.begin(), same)) {
        continue;
      }
      in_it = true;
      value = line.substr(colon + 1);
    }
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t") + 1);
    return value;
  }
  // Everything after the header's blank line.
  [[nodiscard]] std::string body() const {
    const size_t lf = raw.find("\n\n");
    const size_t crlf = raw.find("\r\n\r\n");
    if (lf == std::string::npos && crlf == std::string::npos) return "";
    return lf <= crlf ? raw.substr(lf + 2) : raw.substr(crlf + 4);
  }

 private:
  static char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
};

// What the SMTP server said to a submission.
struct SubmitResult {
  bool ok = false;
  int code = 0;      // the reply code of the last command (0: no connection)
  std::string line;  // the last reply line (the refusal when !ok)
};

class MailStack {
 public:
  static constexpr std::chrono::milliseconds kPatience{10'000};

  // Starts both servers (up to three tries, on fresh ports each: another process may take a port
  // between its choice and the servers' bind). Throws std::runtime_error with the script's output
  // when they do not come up.
  MailStack() {
    std::string output;
    for (int attempt = 0; attempt < 3; ++attempt) {
      ports_ = free_ports();
      const Ran r = script("up", std::to_string(ports_[0]) + " " + std::to_string(ports_[1]) + " " +
                                     std::to_string(ports_[2]));
      if (r.code == 0) return;
      output = r.out;
      std::ignore = script("down");
    }
    throw std::runtime_error("mail stack did not start: " + output);
  }
  // Stops both servers; a failure to stop is a test failure.
  ~MailStack() {
    const Ran r = script("down");
    if (r.code != 0) ADD_FAILURE() << "mail stack did not stop cleanly: " << r.out;
  }
  MailStack(const MailStack&) = delete;
  MailStack& operator=(const MailStack&) = delete;

  [[nodiscard]] std::uint16_t imap_port() const { return ports_[0]; }
  [[nodiscard]] std::uint16_t smtp_port() const { return ports_[1]; }
  [[nodiscard]] std::uint16_t lmtp_port() const { return ports_[2]; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_.path(); }

  static MailUser user(const std::string& name) {
    return {name, name + "pass", name + "@" + kMailDomain};
  }
  static MailUser bot() { return user("bot"); }
  static MailUser alice() { return user("alice"); }
  static MailUser carol() { return user("carol"); }

  // Puts `raw` (an RFC 5322 message; LF or CRLF line ends) into `user`'s INBOX through Dovecot's
  // LMTP, as if it had come from `envelope_from`. Throws with the server's line on any refusal.
  void deliver(const std::string& user, const std::string& raw,
               const std::string& envelope_from = "sender@example.test") const {
    TcpLineClient c(lmtp_port());
    expect(c, 220, "greeting");
    c.send_line("LHLO client.test");
    expect(c, 250, "LHLO");
    c.send_line("MAIL FROM:<" + envelope_from + ">");
    expect(c, 250, "MAIL FROM");
    c.send_line("RCPT TO:<" + address_of(user) + ">");
    expect(c, 250, "RCPT TO");
    c.send_line("DATA");
    expect(c, 354, "DATA");
    c.send(dot_stuffed(raw));
    expect(c, 250, "the message");
    c.send_line("QUIT");
    expect(c, 221, "QUIT");
  }

  // Sends `raw` from `from` to `to` through Exim on the SMTP port, logged in as
  // `login`/`password` with AUTH PLAIN (no AUTH when `login` is empty). Delivery to the
  // mailboxes follows within a moment: wait_messages().
  SubmitResult submit(const std::string& login, const std::string& password,
                      const std::string& from, const std::vector<std::string>& to,
                      const std::string& raw) const {
    SubmitResult r;
    try {
      TcpLineClient c(smtp_port());
      const auto step = [&](const std::string& command, int want) {
        if (!command.empty()) c.send_line(command);
        std::tie(r.code, r.line) = read_reply(c);
        return r.code == want;
      };
      if (!step("", 220) || !step("EHLO client.test", 250)) return r;
      if (!login.empty() &&
          !step("AUTH PLAIN " + base64(std::string(1, '\0') + login + '\0' + password), 235)) {
        return r;
      }
      if (!step("MAIL FROM:<" + from + ">", 250)) return r;
      for (const auto& rcpt : to) {
        if (!step("RCPT TO:<" + rcpt + ">", 250)) return r;
      }
      if (!step("DATA", 354)) return r;
      c.send(dot_stuffed(raw));
      if (!step("", 250)) return r;
      r.ok = true;
      // Not waiting for the 221: Exim holds it back some 200 ms.
      c.send_line("QUIT");
    } catch (const std::exception& e) {
      if (!r.ok) {
        r.code = 0;
        r.line = e.what();
      }
    }
    return r;
  }

  // The messages in `user`'s `mailbox` (INBOX, or a folder such as "Archive"), in arrival (UID)
  // order, read from the Maildir.
  [[nodiscard]] std::vector<MailMessage> messages(const std::string& user,
                                                  const std::string& mailbox = "INBOX") const {
    // IMAP sessions rename files (new/ → cur/, flag changes) under our feet, and a directory
    // listing taken meanwhile may show a message twice or not at all: read again until a message
    // did not vanish between listing and reading, and a second listing names the same messages.
    for (int attempt = 0;; ++attempt) {
      std::vector<MailMessage> out;
      if (read_maildir(maildir(user, mailbox), out) || attempt == 20) return out;
    }
  }

  // messages() once there are at least `n` (or when `timeout` is over: the caller's assertion on
  // the count then says what is missing); polls every 50 ms.
  [[nodiscard]] std::vector<MailMessage> wait_messages(
      const std::string& user, size_t n, std::chrono::milliseconds timeout = kPatience,
      const std::string& mailbox = "INBOX") const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto found = messages(user, mailbox);
      if (found.size() >= n || std::chrono::steady_clock::now() >= deadline) return found;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // Stops Dovecot alone (IMAP and LMTP; sessions get "* BYE"), mail kept; Exim queues what it
  // takes meanwhile, and hands it over as start_imap() returns (wait_messages()).
  void stop_imap() { run_or_throw("imap-down", ""); }
  // Starts Dovecot again, on the same ports and mail; returns once they listen.
  void start_imap() { run_or_throw("imap-up", ""); }

  // Stops Exim alone: submissions find nothing listening until start_smtp().
  void stop_smtp() { run_or_throw("smtp-down", ""); }
  // Starts Exim again on the same port; returns once it listens.
  void start_smtp() { run_or_throw("smtp-up", ""); }

  // Gives `user`'s `mailbox` a new UIDVALIDITY (UIDs unchanged), whether Dovecot runs or not. A
  // session that has the mailbox selected is told "* BYE IMAP session state is inconsistent" at
  // its next command (IDLE alone does not notice).
  void set_uidvalidity(const std::string& user, const std::string& mailbox, std::uint32_t value) {
    doveadm(user, "mailbox update --uid-validity " + std::to_string(value) + " " + quote(mailbox));
  }

  // A doveadm mail command as `user`, straight on the mail store (e.g. "mailbox create Archive",
  // "flags add '\\Seen' mailbox INBOX all"); its output. Throws when it fails.
  std::string doveadm(const std::string& user, const std::string& args) {
    return run_or_throw("doveadm", quote(user) + " " + args);
  }

 private:
  struct Ran {
    int code = -1;
    std::string out;  // stdout and stderr
  };

  static std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  }

  // mailstack COMMAND DIR ARGS; the watchdog it starts stops the servers if this process dies.
  [[nodiscard]] Ran script(const std::string& command, const std::string& args = "") const {
    const std::string cmd = "PARLEY_MAIL_OWNER=" + std::to_string(::getpid()) + " " +
                            quote(PARLEY_MAILSTACK_SCRIPT) + " " + command + " " +
                            quote(dir().string()) + " " + args + " 2>&1";
    Ran r;
    FILE* p = ::popen(cmd.c_str(), "re");  // NOLINT(cert-env33-c): test driver
    if (p == nullptr) return r;
    std::array<char, 4096> buf{};
    size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    const int status = ::pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
  }

  std::string run_or_throw(const std::string& command, const std::string& args) {
    Ran r = script(command, args);
    if (r.code != 0) throw std::runtime_error("mailstack " + command + " failed: " + r.out);
    return r.out;
  }

  // Three distinct ports the kernel had free a moment ago.
  static std::array<std::uint16_t, 3> free_ports() {
    std::array<UniqueFd, 3> fds;
    std::array<std::uint16_t, 3> ports{};
    for (size_t i = 0; i < fds.size(); ++i) {
      fds[i] = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in a = loopback_address(0);
      socklen_t len = sizeof a;
      if (!fds[i].valid() || ::bind(fds[i].get(), reinterpret_cast<sockaddr*>(&a), len) != 0 ||
          ::getsockname(fds[i].get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        throw std::runtime_error("no free port on 127.0.0.1");
      }
      ports[i] = ntohs(a.sin_port);
    }
    return ports;
  }

  static std::string address_of(const std::string& user) {
    return user.find('@') == std::string::npos ? user + "@" + kMailDomain : user;
  }

  std::filesystem::path maildir(const std::string& user, const std::string& mailbox) const {
    std::string name = user.substr(0, user.find('@'));
    auto path = dir() / "mailboxes" / name / "Maildir";
    // Maildir++: folder "A.B" is the directory ".A.B"; INBOX (any case) is the top.
    std::string upper = mailbox;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return upper == "INBOX" ? path : path / ("." + mailbox);
  }

  // The messages' base names (without ":2,FLAGS") in new/ and cur/, each once.
  static std::set<std::string> maildir_names(const std::filesystem::path& maildir) {
    std::set<std::string> names;
    for (const char* sub : {"new", "cur"}) {
      std::error_code ec;
      for (std::filesystem::directory_iterator it(maildir / sub, ec), end; !ec && it != end;
           it.increment(ec)) {
        const std::string file = it->path().filename().string();
        names.insert(file.substr(0, file.find(":2,")));
      }
    }
    return names;
  }

  // Reads every message of the Maildir into `out`, sorted; false when the messages changed
  // meanwhile (see messages()).
  static bool read_maildir(const std::filesystem::path& maildir, std::vector<MailMessage>& out) {
    // dovecot-uidlist: a header line, then "UID [EXTENSIONS] :BASENAME" in UID order.
    std::map<std::string, std::uint32_t> uids;
    std::ifstream list(maildir / "dovecot-uidlist");
    std::string line;
    std::getline(list, line);
    while (std::getline(list, line)) {
      const size_t colon = line.find(" :");
      if (colon != std::string::npos) {
        uids[line.substr(colon + 2)] =
            static_cast<std::uint32_t>(std::strtoul(line.c_str(), nullptr, 10));
      }
    }
    // By UID; without one yet (for the moment between Dovecot's writing the file and the list),
    // last, by name ("SECONDS.MMICROSECONDSPPID.HOST…": roughly arrival order). A name seen in
    // both new/ and cur/ (moved meanwhile) counts once, as in cur/.
    std::map<std::pair<std::uint32_t, std::string>, MailMessage> sorted;
    for (const char* sub : {"new", "cur"}) {
      std::error_code ec;
      for (std::filesystem::directory_iterator it(maildir / sub, ec), end; !ec && it != end;
           it.increment(ec)) {
        const std::string file = it->path().filename().string();
        const size_t info = file.find(":2,");
        const std::string base = file.substr(0, info);
        MailMessage m;
        m.path = it->path();
        m.flags = info == std::string::npos ? "" : file.substr(info + 3);
        const auto uid = uids.find(base);
        m.uid = uid == uids.end() ? 0 : uid->second;
        std::ifstream in(m.path, std::ios::binary);
        if (!in) return false;
        std::ostringstream bytes;
        bytes << in.rdbuf();
        m.raw = bytes.str();
        sorted[{m.uid == 0 ? UINT32_MAX : m.uid, base}] = std::move(m);
      }
    }
    std::set<std::string> names;
    for (auto& [key, m] : sorted) {
      names.insert(key.second);
      out.push_back(std::move(m));
    }
    return names.size() == out.size() && names == maildir_names(maildir);
  }

  // An SMTP/LMTP reply: "NNN-…" lines, then "NNN …"; its code and last line.
  static std::pair<int, std::string> read_reply(TcpLineClient& c) {
    for (;;) {
      std::string line = c.read_line();
      if (line.size() < 3) return {0, line};
      if (line.size() == 3 || line[3] != '-') return {std::atoi(line.substr(0, 3).c_str()), line};
    }
  }

  static void expect(TcpLineClient& c, int code, const std::string& after) {
    const auto [got, line] = read_reply(c);
    if (got != code) {
      throw std::runtime_error("LMTP: after " + after + ", expected " + std::to_string(code) +
                               ", got: " + line);
    }
  }

  // `raw` with CRLF line ends and leading dots doubled, then the lone dot that ends DATA.
  static std::string dot_stuffed(const std::string& raw) {
    std::string out;
    bool line_start = true;
    for (size_t i = 0; i < raw.size(); ++i) {
      const char c = raw[i];
      if (line_start && c == '.') out += '.';
      if (c == '\n') {
        if (i == 0 || raw[i - 1] != '\r') out += '\r';
      }
      out += c;
      line_start = c == '\n';
    }
    if (!out.empty() && !line_start) out += "\r\n";
    return out + ".\r\n";
  }

  static std::string base64(const std::string& in) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < in.size(); i += 3) {
      const size_t n = std::min<size_t>(3, in.size() - i);  // bytes in this group
      unsigned v = 0;
      for (size_t k = 0; k < 3; ++k) {
        v <<= 8;
        if (k < n) v |= static_cast<unsigned>(static_cast<unsigned char>(in[i + k]));
      }
      for (size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=';
    }
    return out;
  }

  TempDir dir_;
  std::array<std::uint16_t, 3> ports_{};  // IMAP, SMTP, LMTP
};

}  // namespace parley::testing
