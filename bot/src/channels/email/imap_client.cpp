#include "channels/email/imap_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "channels/email/mail_strings.h"

namespace parley::bot::channels::email {

namespace asio = net::asio;

namespace {

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(s[i])) !=
        std::toupper(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// The number after `key` in `line` ("[UIDVALIDITY 3857529045]", "UID 17"), or 0.
uint32_t number_after(std::string_view line, std::string_view key) {
  const std::string u = upper(std::string(line));
  size_t at = u.find(key);
  if (at == std::string::npos) return 0;
  at += key.size();
  while (at < line.size() && line[at] == ' ') ++at;
  uint32_t v = 0;
  std::from_chars(line.data() + at, line.data() + line.size(), v);
  return v;
}

// A literal announced at the end of a line: "{123}" (or "{123+}"), else npos.
size_t literal_size(std::string_view line) {
  if (line.empty() || line.back() != '}') return std::string::npos;
  const size_t open = line.rfind('{');
  if (open == std::string::npos) return std::string::npos;
  std::string_view digits = line.substr(open + 1, line.size() - open - 2);
  if (!digits.empty() && digits.back() == '+') digits.remove_suffix(1);
  size_t n = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || digits.empty()) {
    return std::string::npos;
  }
  return n;
}

std::string uid_set(const std::vector<uint32_t>& uids) {
  std::string out;
  for (const uint32_t u : uids) out += (out.empty() ? "" : ",") + std::to_string(u);
  return out;
}

}  // namespace

ImapClient::ImapClient(const net::Executor& executor, asio::ssl::context& tls)
    : stream_(executor, tls), poke_(executor) {}

std::string ImapClient::quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

asio::awaitable<Result<std::string>> ImapClient::read_response(std::vector<std::string>& literals) {
  auto line = co_await stream_.read_line();
  if (!line) co_return line;
  std::string out = std::move(*line);
  // A line ending in {n} continues after n bytes of literal data.
  for (size_t n = literal_size(out); n != std::string::npos; n = literal_size(out)) {
    auto data = co_await stream_.read_exact(n);
    if (!data) co_return fail(std::move(data).error());
    literals.push_back(std::move(*data));
    auto more = co_await stream_.read_line();
    if (!more) co_return more;
    out += *more;
  }
  co_return out;
}

asio::awaitable<Result<ImapClient::Reply>> ImapClient::command(const std::string& line,
                                                               bool secret) {
  const std::string tag = fmt::format("p{}", ++tag_);
  const std::string shown = secret ? line.substr(0, line.find(' ')) + " …" : line;
  Status sent = co_await stream_.write(tag + " " + line + "\r\n");
  if (!sent.ok()) co_return fail(sent.error());
  Reply reply;
  for (;;) {
    auto response = co_await read_response(reply.literals);
    if (!response) co_return fail(std::move(response).error());
    const std::string& r = *response;
    if (r.rfind(tag + " ", 0) == 0) {
      const std::string rest = r.substr(tag.size() + 1);
      const size_t sp = rest.find(' ');
      reply.status = upper(rest.substr(0, sp));
      reply.text = sp == std::string::npos ? "" : rest.substr(sp + 1);
      if (reply.status != "OK") {
        // The connection is fine; the server refused this command (invalid_argument).
        co_return fail(ErrorCode::invalid_argument,
                       fmt::format("IMAP {}: {} {}", shown, reply.status, reply.text));
      }
      co_return reply;
    }
    if (starts_with_ci(r, "* BYE")) {
      co_return fail(ErrorCode::unavailable, fmt::format("IMAP {}: the server said {}", shown, r));
    }
    if (r.rfind("* ", 0) == 0) {
      // New mail announced in the answer to another command (it arrived after the last
      // search, before IDLE began): the server will not announce it again in IDLE, so the next
      // idle() returns at once and the caller catches up.
      if (!line.starts_with("SELECT ") && !line.starts_with("EXAMINE ") &&
          upper(r).ends_with(" EXISTS")) {
        poked_ = true;
      }
      reply.untagged.push_back(r);
    }
    // "+ …" (a continuation) is not expected by any command sent here; ignored.
  }
}

asio::awaitable<Status> ImapClient::refresh_capabilities() {
  auto reply = co_await command("CAPABILITY");
  if (!reply) co_return fail(std::move(reply).error());
  caps_.clear();
  for (const auto& line : reply->untagged) {
    if (!starts_with_ci(line, "* CAPABILITY ")) continue;
    std::string words = line.substr(13);
    size_t at = 0;
    while (at < words.size()) {
      const size_t end = std::min(words.find(' ', at), words.size());
      if (end > at) caps_.insert(upper(words.substr(at, end - at)));
      at = end + 1;
    }
  }
  co_return Status{};
}

asio::awaitable<Status> ImapClient::open(const ImapEndpoint& e) {
  host_ = e.host;
  idling_ = false;
  const uint16_t port = e.port != 0 ? e.port : (e.tls == MailTls::implicit ? 993 : 143);
  Status st = co_await stream_.connect(e.host, port, e.tls);
  if (!st.ok()) co_return st;
  auto greeting = co_await stream_.read_line();
  if (!greeting) co_return fail(std::move(greeting).error());
  if (!starts_with_ci(*greeting, "* OK") && !starts_with_ci(*greeting, "* PREAUTH")) {
    co_return fail(ErrorCode::unavailable,
                   fmt::format("IMAP {}: greeted with '{}'", e.host, greeting->substr(0, 200)));
  }
  st = co_await refresh_capabilities();
  if (!st.ok()) co_return st;
  if (e.tls == MailTls::starttls) {
    if (!has("STARTTLS")) {
      co_return fail(ErrorCode::unavailable,
                     fmt::format("IMAP {}: the server offers no STARTTLS (tls: starttls)", e.host));
    }
    auto ok = co_await command("STARTTLS");
    if (!ok) co_return fail(std::move(ok).error());
    st = co_await stream_.start_tls();
    if (!st.ok()) co_return st;
    st = co_await refresh_capabilities();  // they may change after TLS (RFC 3501 §6.2.1)
    if (!st.ok()) co_return st;
  }
  if (has("LOGINDISABLED") && !has("AUTH=PLAIN")) {
    co_return fail(ErrorCode::unavailable,
                   fmt::format("IMAP {}: the server refuses to log in on this connection", e.host));
  }
  Result<Reply> login = fail(ErrorCode::internal, "");
  if (has("AUTH=PLAIN")) {
    login = co_await command(
        "AUTHENTICATE PLAIN " + base64_encode(std::string(1, '\0') + e.user + '\0' + e.password),
        true);
  } else {
    login = co_await command("LOGIN " + quoted(e.user) + " " + quoted(e.password), true);
  }
  if (!login) {
    co_return fail(
        ErrorCode::permission_denied,
        fmt::format("IMAP {}: login as {} refused: {}", e.host, e.user, login.error().message));
  }
  st = co_await refresh_capabilities();
  co_return st;
}

void ImapClient::note_mailbox(const std::string& line, ImapMailbox& m) {
  const std::string u = upper(line);
  if (u.find("UIDVALIDITY") != std::string::npos) m.uidvalidity = number_after(line, "UIDVALIDITY");
  if (u.find("UIDNEXT") != std::string::npos) m.uidnext = number_after(line, "UIDNEXT");
  if (u.size() > 2 && u.ends_with(" EXISTS")) {
    uint32_t n = 0;
    std::from_chars(line.data() + 2, line.data() + line.size(), n);
    m.exists = n;
  }
}

asio::awaitable<Result<ImapMailbox>> ImapClient::select(const std::string& mailbox) {
  auto reply = co_await command("SELECT " + quoted(mailbox));
  if (!reply) co_return fail(std::move(reply).error());
  ImapMailbox m;
  for (const auto& line : reply->untagged) note_mailbox(line, m);
  if (m.uidvalidity == 0) {
    co_return fail(ErrorCode::unavailable,
                   fmt::format("IMAP SELECT {}: no UIDVALIDITY in the answer", mailbox));
  }
  co_return m;
}

asio::awaitable<Result<ImapMailbox>> ImapClient::status(const std::string& mailbox) {
  auto reply = co_await command("STATUS " + quoted(mailbox) + " (UIDVALIDITY UIDNEXT MESSAGES)");
  if (!reply) co_return fail(std::move(reply).error());
  ImapMailbox m;
  for (const auto& line : reply->untagged) {
    if (!starts_with_ci(line, "* STATUS")) continue;
    m.uidvalidity = number_after(line, "UIDVALIDITY");
    m.uidnext = number_after(line, "UIDNEXT");
    m.exists = number_after(line, "MESSAGES");
  }
  co_return m;
}

asio::awaitable<Result<std::vector<uint32_t>>> ImapClient::uids_after(uint32_t after) {
  auto reply = co_await command(fmt::format("UID SEARCH UID {}:*", after + 1));
  if (!reply) co_return fail(std::move(reply).error());
  std::vector<uint32_t> out;
  for (const auto& line : reply->untagged) {
    if (!starts_with_ci(line, "* SEARCH")) continue;
    std::string_view rest = std::string_view(line).substr(8);
    while (!rest.empty()) {
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      uint32_t v = 0;
      const auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
      if (ec != std::errc()) break;
      if (v > after) out.push_back(v);
      rest.remove_prefix(static_cast<size_t>(ptr - rest.data()));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  co_return out;
}

asio::awaitable<Result<std::vector<ImapMessage>>> ImapClient::fetch(
    const std::vector<uint32_t>& uids) {
  std::vector<ImapMessage> out;
  if (uids.empty()) co_return out;
  auto reply = co_await command("UID FETCH " + uid_set(uids) + " (UID BODY.PEEK[])");
  if (!reply) co_return fail(std::move(reply).error());
  // Each "* n FETCH (UID u BODY[] {size}" line owns the next literal, in order.
  size_t literal = 0;
  for (const auto& line : reply->untagged) {
    const size_t literals_here = static_cast<size_t>(std::count(line.begin(), line.end(), '}'));
    if (upper(line).find(" FETCH ") == std::string::npos) continue;
    const uint32_t uid = number_after(line, "UID");
    if (upper(line).find("BODY[]") != std::string::npos && literal < reply->literals.size() &&
        uid != 0) {
      out.push_back(ImapMessage{uid, reply->literals[literal]});
    }
    literal += std::max<size_t>(literals_here, 1);
  }
  co_return out;
}

asio::awaitable<Status> ImapClient::flag_seen(uint32_t uid) {
  auto reply = co_await command(fmt::format("UID STORE {} +FLAGS.SILENT (\\Seen)", uid));
  if (!reply) co_return fail(std::move(reply).error());
  co_return Status{};
}

asio::awaitable<Status> ImapClient::move(uint32_t uid, const std::string& mailbox) {
  Status st = co_await move_once(uid, mailbox);
  // "NO [TRYCREATE]": the folder does not exist yet (RFC 9051 §7.1): created, then again.
  if (!st.ok() && st.error().message.find("[TRYCREATE]") != std::string::npos) {
    auto created = co_await command("CREATE " + quoted(mailbox));
    if (!created) co_return fail(std::move(created).error());
    st = co_await move_once(uid, mailbox);
  }
  co_return st;
}

asio::awaitable<Status> ImapClient::move_once(uint32_t uid, const std::string& mailbox) {
  if (has("MOVE")) {
    auto reply = co_await command(fmt::format("UID MOVE {} {}", uid, quoted(mailbox)));
    if (!reply) co_return fail(std::move(reply).error());
    co_return Status{};
  }
  auto copied = co_await command(fmt::format("UID COPY {} {}", uid, quoted(mailbox)));
  if (!copied) co_return fail(std::move(copied).error());
  auto deleted = co_await command(fmt::format("UID STORE {} +FLAGS.SILENT (\\Deleted)", uid));
  if (!deleted) co_return fail(std::move(deleted).error());
  if (has("UIDPLUS")) {  // else left \Deleted: a plain EXPUNGE would purge others' too
    auto expunged = co_await command(fmt::format("UID EXPUNGE {}", uid));
    if (!expunged) co_return fail(std::move(expunged).error());
  }
  co_return Status{};
}

asio::awaitable<Status> ImapClient::noop() {
  auto reply = co_await command("NOOP");
  if (!reply) co_return fail(std::move(reply).error());
  co_return Status{};
}

void ImapClient::wake() {
  asio::post(poke_.get_executor(), [this] {
    poked_ = true;
    poke_.cancel();
  });
}

asio::awaitable<Result<IdleEnd>> ImapClient::idle(std::chrono::milliseconds max) {
  if (poked_) {  // woken before it began
    poked_ = false;
    co_return IdleEnd::poked;
  }
  const std::string tag = fmt::format("p{}", ++tag_);
  Status sent = co_await stream_.write(tag + " IDLE\r\n");
  if (!sent.ok()) co_return fail(sent.error());
  const auto saved_timeout = stream_.timeout();
  stream_.timeout(max + std::chrono::seconds(60));  // the server's answer to DONE, with slack
  // DONE ends it: sent on the first change (here), or by the timer (max, or wake()). A DONE the
  // timer sent must have finished writing before the next command is written: one write at a
  // time on the stream.
  struct Done {
    explicit Done(const net::Executor& ex) : written(ex) {}
    bool ended = false;    // idle() is past its reads: the timer does nothing more
    bool sent = false;     // DONE was (being) written
    bool writing = false;  // the timer's write is under way
    IdleEnd why = IdleEnd::timed_out;
    asio::steady_timer written;  // cancelled when the timer's write completes
  };
  auto done = std::make_shared<Done>(poke_.get_executor());
  poke_.expires_after(max);
  poke_.async_wait([this, done](boost::system::error_code) {
    if (done->ended || done->sent) return;
    done->why = poked_ ? IdleEnd::poked : IdleEnd::timed_out;
    poked_ = false;
    done->sent = true;
    done->writing = true;
    asio::co_spawn(
        poke_.get_executor(),
        [this, done]() -> asio::awaitable<void> {
          const std::string line = "DONE\r\n";
          (void)co_await stream_.write(line);
          done->writing = false;
          done->written.cancel();
        },
        asio::detached);
  });
  if (poked_) poke_.cancel();  // woken while IDLE was being sent
  std::vector<std::string> literals;
  Result<IdleEnd> out = fail(ErrorCode::internal, "");
  for (;;) {
    auto line = co_await read_response(literals);
    if (!line) {
      out = fail(std::move(line).error());
      break;
    }
    const std::string& r = *line;
    if (r.rfind(tag + " ", 0) == 0) {
      out = done->why;
      break;
    }
    if (starts_with_ci(r, "* BYE")) {
      out = fail(ErrorCode::unavailable, fmt::format("IMAP IDLE: the server said {}", r));
      break;
    }
    const std::string u = upper(r);
    if (u.ends_with(" EXISTS") || u.ends_with(" EXPUNGE") ||
        u.find(" FETCH ") != std::string::npos || u.find("VANISHED") != std::string::npos) {
      if (!done->sent) {
        done->sent = true;
        done->why = IdleEnd::changed;
        const std::string line_done = "DONE\r\n";
        Status st = co_await stream_.write(line_done);
        if (!st.ok()) {
          out = fail(st.error());
          break;
        }
      }
    }
  }
  done->ended = true;
  poke_.cancel();
  if (done->writing) {
    // The server can answer DONE before our write's completion has run.
    done->written.expires_after(stream_.timeout());
    boost::system::error_code ec;
    co_await done->written.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (done->writing) out = fail(ErrorCode::unavailable, "IMAP IDLE: DONE was not written");
  }
  stream_.timeout(saved_timeout);
  co_return out;
}

asio::awaitable<void> ImapClient::logout() {
  auto bye = co_await command("LOGOUT");
  (void)bye;
  stream_.close();
}

}  // namespace parley::bot::channels::email
