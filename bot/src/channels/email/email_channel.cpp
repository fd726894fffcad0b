#include "parley/bot/channels/email/email_channel.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "channels/email/imap_client.h"
#include "channels/email/loop_guard.h"
#include "channels/email/mail_compose.h"
#include "channels/email/mail_message.h"
#include "channels/email/mail_strings.h"
#include "channels/email/smtp_client.h"
#include "parley/base/time_format.h"

namespace parley::bot::channels::email {

namespace asio = net::asio;
using SteadyClock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

constexpr auto kIdleFor = std::chrono::minutes(10);  // re-IDLE well before servers' 30 min
constexpr size_t kFetchBatch = 20;
constexpr auto kMaxBackoff = std::chrono::minutes(5);
constexpr auto kRetryStoreAfter = std::chrono::seconds(10);

int64_t email_wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string domain_of(const std::string& address) {
  const size_t at = address.rfind('@');
  return at == std::string::npos ? std::string("localhost") : address.substr(at + 1);
}

// Whether `address` is on the allow-list (an address, or "@domain").
bool allowed_sender(const std::vector<std::string>& allow, const std::string& address) {
  if (allow.empty()) return true;
  const std::string a = ascii_lowercase(address);
  const std::string domain = "@" + domain_of(a);
  return std::any_of(allow.begin(), allow.end(),
                     [&](const std::string& e) { return e == a || e == domain; });
}

}  // namespace

struct EmailChannel::Impl : std::enable_shared_from_this<Impl> {
  Impl(Deps d, EmailOptions o, std::string imap_pw, std::string smtp_pw)
      : deps(std::move(d)),
        options(std::move(o)),
        imap_password(std::move(imap_pw)),
        smtp_password(std::move(smtp_pw)),
        strand(asio::make_strand(deps.executor)),
        tls(asio::ssl::context::tls_client),
        imap(strand, tls),
        wait_timer(strand),
        retry_timer(strand) {
    tls.set_default_verify_paths();
    tls.set_verify_mode(asio::ssl::verify_peer);
  }

  void alert(const std::string& kind, const std::string& line) const {
    if (deps.alert) {
      deps.alert(kind, line);
    } else {
      spdlog::error("{}", line);
    }
  }

  ImapEndpoint imap_endpoint() const {
    return ImapEndpoint{options.imap.host, options.imap.port, options.imap.tls, options.imap.user,
                        imap_password};
  }
  SmtpEndpoint smtp_endpoint() const {
    return SmtpEndpoint{options.smtp.host, options.smtp.port, options.smtp.tls,
                        options.smtp.user, smtp_password,     domain_of(options.smtp.from)};
  }
  std::string cursor_key() const { return "cursor:" + options.imap.mailbox; }

  Deps deps;
  EmailOptions options;
  std::string imap_password;
  std::string smtp_password;
  asio::strand<net::Executor> strand;
  asio::ssl::context tls;
  ImapClient imap;
  asio::steady_timer wait_timer;   // back-off and polling waits
  asio::steady_timer retry_timer;  // when mail that could not be stored is fetched again
  Inbox* inbox = nullptr;
  std::string salt;  // in our Message-IDs: "parley.<outbox id>.<salt>@domain"

  // On the strand.
  uint32_t uidvalidity = 0;
  uint32_t fetched = 0;          // the highest UID handed on
  uint32_t cursor = 0;           // persisted: every UID up to it is handled
  std::set<uint32_t> pending;    // handed on, not yet handled
  std::set<uint32_t> handled;    // handled above the cursor
  std::deque<uint32_t> to_mark;  // handled: \Seen or move, on the connection
  std::set<uint32_t> retry;      // pending, not stored (a storage error): fetched again
  std::map<std::string, std::deque<SteadyClock::time_point>> replies_by_sender;
  bool stopping = false;
  bool connected_flag = false;

  // Figures, from any thread.
  std::atomic<bool> connected{false};
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> sent{0};
  std::atomic<size_t> in_flight{0};
  mutable std::mutex skip_mu;
  std::map<std::string, uint64_t> skipped;  // by reason (guarded by skip_mu)

  void count_skip(const std::string& reason) {
    const std::lock_guard lock(skip_mu);
    ++skipped[reason.substr(0, reason.find(':'))];
  }

  bool ours(const std::string& message_id) const {
    // "parley.<digits>.<salt>@…"
    if (message_id.rfind("parley.", 0) != 0) return false;
    const size_t at = message_id.find('@');
    return at != std::string::npos &&
           message_id.compare(at - salt.size() - 1, salt.size() + 1, "." + salt) == 0;
  }

  // The persisted cursor {uidvalidity, last}; nullopt when none.
  std::optional<std::pair<uint32_t, uint32_t>> load_cursor() {
    auto saved = deps.state.get("email", cursor_key());
    if (!saved.ok() || !*saved) return std::nullopt;
    const json j = json::parse(**saved, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    return std::make_pair(j.value("uidvalidity", uint32_t{0}), j.value("last", uint32_t{0}));
  }
  void save_cursor() {
    deps.state.put("email", cursor_key(),
                   json{{"uidvalidity", uidvalidity}, {"last", cursor}}.dump(),
                   [](const Result<storage::WriteAck>& r) {
                     if (!r) spdlog::warn("email: the cursor was not saved: {}", r.error().message);
                   });
  }

  // `uid` is handled (stored, or skipped for good): the cursor moves past every handled UID
  // with nothing pending below it; the server is told at the next pause of the watcher.
  void done(uint32_t uid, bool mark) {
    pending.erase(uid);
    handled.insert(uid);
    if (mark) {
      to_mark.push_back(uid);
      imap.wake();
    }
    const uint32_t limit = pending.empty() ? fetched : *pending.begin() - 1;
    const uint32_t before = cursor;
    while (!handled.empty() && *handled.begin() <= limit) {
      cursor = std::max(cursor, *handled.begin());
      handled.erase(handled.begin());
    }
    if (cursor != before) save_cursor();
  }

  // The watcher: connect, select, catch up, IDLE (or poll), again; reconnect with back-off.
  static asio::awaitable<void> watch(std::shared_ptr<Impl> self) {
    std::mt19937 rng{std::random_device{}()};
    auto backoff = std::chrono::milliseconds(500);
    bool alerted_login = false;
    while (!self->stopping) {
      const ImapEndpoint endpoint = self->imap_endpoint();
      Status st = co_await self->imap.open(endpoint);
      if (st.ok()) st = co_await self->session();
      self->connected = false;
      self->imap.close();
      if (self->stopping) break;
      if (!st.ok()) {
        const bool login = st.error().code == ErrorCode::permission_denied;
        if (login && !alerted_login) {
          alerted_login = true;
          self->alert("email_login", fmt::format("email: {}", st.error().message));
        }
        spdlog::warn("email: IMAP: {}; connecting again in {} ms", st.error().message,
                     backoff.count());
      }
      std::uniform_int_distribution<int64_t> jitter(backoff.count() / 2, backoff.count());
      self->wait_timer.expires_after(std::chrono::milliseconds(jitter(rng)));
      boost::system::error_code ec;
      co_await self->wait_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
      if (st.ok()) backoff = std::chrono::milliseconds(500);
    }
  }

  // One connection's life after login: select, the cursor, then catch-up and wait, in turn.
  asio::awaitable<Status> session() {
    auto box = co_await imap.select(options.imap.mailbox);
    if (!box) co_return fail(std::move(box).error());
    connected = true;
    const auto saved = load_cursor();
    if (!saved || saved->first != box->uidvalidity) {
      const uint32_t base = box->uidnext > 0 ? box->uidnext - 1 : 0;
      if (saved) {
        alert("email_uidvalidity",
              fmt::format("email: the mailbox {} changed its UIDVALIDITY ({} → {}): every stored "
                          "UID is void; starting again after UID {} without answering the "
                          "mail already there",
                          options.imap.mailbox, saved->first, box->uidvalidity, base));
      } else {
        spdlog::info("email: first start on {}: the {} mail(s) already there are left alone",
                     options.imap.mailbox, box->exists);
      }
      uidvalidity = box->uidvalidity;
      cursor = base;
      fetched = base;
      pending.clear();
      retry.clear();
      handled.clear();
      to_mark.clear();
      save_cursor();
    } else if (uidvalidity != box->uidvalidity) {
      // The first connection of this process: from the persisted cursor. (A reconnect keeps
      // what it knows: mail handed on is still being answered.)
      uidvalidity = saved->first;
      cursor = saved->second;
      fetched = cursor;
    }
    const bool push = options.imap.idle && imap.has("IDLE");
    spdlog::info("email: watching {} on {} ({})", options.imap.mailbox, options.imap.host,
                 push ? "IDLE" : fmt::format("polled every {} s", options.poll_interval_s));
    while (!stopping) {
      Status st = co_await catch_up();
      if (!st.ok()) co_return st;
      st = co_await mark_handled();
      if (!st.ok()) co_return st;
      if (push) {
        auto ended = co_await imap.idle(kIdleFor);
        if (!ended) co_return fail(std::move(ended).error());
        if (*ended == IdleEnd::timed_out) {
          st = co_await imap.noop();  // the watchdog: a dead connection fails here
          if (!st.ok()) co_return st;
        }
      } else {
        wait_timer.expires_after(std::chrono::seconds(options.poll_interval_s));
        boost::system::error_code ec;
        co_await wait_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (stopping) break;
        st = co_await imap.noop();
        if (!st.ok()) co_return st;
      }
    }
    co_await imap.logout();
    co_return Status{};
  }

  // Mail that could not be stored (a full disk, a locked database) is fetched again a little
  // later; it stays pending meanwhile, so the cursor never passes it.
  void store_failed(uint32_t uid) {
    retry.insert(uid);
    retry_timer.expires_after(kRetryStoreAfter);
    retry_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopping) return;
      self->imap.wake();
      self->wait_timer.cancel();  // a poll's wait
    });
  }

  // Every mail above `fetched`, in batches; first any mail to fetch again.
  asio::awaitable<Status> catch_up() {
    if (!retry.empty()) {
      const std::vector<uint32_t> again(retry.begin(), retry.end());
      auto mails = co_await imap.fetch(again);
      if (!mails) co_return fail(std::move(mails).error());
      retry.clear();
      std::set<uint32_t> got;
      for (auto& m : *mails) {
        got.insert(m.uid);
        take(m.uid, std::move(m.raw));
      }
      for (const uint32_t uid : again) {
        if (got.count(uid) == 0) done(uid, false);  // expunged meanwhile
      }
    }
    auto uids = co_await imap.uids_after(fetched);
    if (!uids) co_return fail(std::move(uids).error());
    for (size_t at = 0; at < uids->size() && !stopping; at += kFetchBatch) {
      const std::vector<uint32_t> batch(
          uids->begin() + static_cast<std::ptrdiff_t>(at),
          uids->begin() + static_cast<std::ptrdiff_t>(std::min(uids->size(), at + kFetchBatch)));
      auto mails = co_await imap.fetch(batch);
      if (!mails) co_return fail(std::move(mails).error());
      for (const uint32_t uid : batch) {
        fetched = std::max(fetched, uid);
        pending.insert(uid);
      }
      std::set<uint32_t> got;
      for (auto& m : *mails) {
        got.insert(m.uid);
        take(m.uid, std::move(m.raw));
      }
      for (const uint32_t uid : batch) {
        if (got.count(uid) == 0) done(uid, false);  // expunged meanwhile
      }
    }
    co_return Status{};
  }

  // \Seen (or the move) for the mail handled since the last time.
  asio::awaitable<Status> mark_handled() {
    while (!to_mark.empty()) {
      const uint32_t uid = to_mark.front();
      Status st;
      if (options.imap.processed == EmailOptions::Imap::Processed::move) {
        st = co_await imap.move(uid, options.imap.move_to);
      } else {
        st = co_await imap.flag_seen(uid);
      }
      if (!st.ok() && st.error().code == ErrorCode::invalid_argument) {
        // Refused by the server (a folder it will not create, a read-only mailbox): the mail
        // is handled all the same; telling the server again would fail again, forever.
        spdlog::warn("email: UID {} is handled but the server was not told: {}", uid,
                     st.error().message);
      } else if (!st.ok()) {
        co_return st;  // the connection: marked after the reconnect
      }
      to_mark.pop_front();
    }
    co_return Status{};
  }

  // One fetched mail: answered, or skipped with its reason.
  void take(uint32_t uid, std::string raw) {
    received.fetch_add(1);
    auto mail = parse_mail(raw, options.max_message_bytes);
    if (!mail) {
      spdlog::warn("email: UID {} not answered: {}", uid, mail.error().message);
      count_skip("unreadable");
      done(uid, false);
      return;
    }
    LoopContext loop;
    loop.own_address = ascii_lowercase(options.smtp.from);
    loop.sent_by_us = [this](const std::string& id) { return ours(id); };
    // People answer the bot's replies: that is the conversation. (A machine that answers us
    // without saying so meets the hourly cap below.)
    loop.answer_replies_to_us = true;
    if (auto why = never_answer(*mail, loop)) {
      spdlog::info("email: UID {} from {} not answered: {}", uid, mail->from.address, *why);
      count_skip(*why);
      done(uid, true);
      return;
    }
    const std::string sender =
        mail->reply_to.empty() ? mail->from.lowercase : mail->reply_to.front().lowercase;
    const bool authentic = options.trusted_authserv_id.empty() ||
                           sender_authenticated(*mail, options.trusted_authserv_id);
    if (!allowed_sender(options.allow, sender) || !authentic) {
      refuse_stranger(uid, *mail, sender, authentic);
      return;
    }
    // A cap per sender and hour: never an endless exchange with another machine.
    auto& recent = replies_by_sender[sender];
    const auto now = SteadyClock::now();
    while (!recent.empty() && now - recent.front() > std::chrono::hours(1)) recent.pop_front();
    if (recent.size() >= static_cast<size_t>(options.replies_per_hour)) {
      spdlog::warn("email: UID {} from {} not answered: over {} replies this hour", uid, sender,
                   options.replies_per_hour);
      count_skip("hourly cap");
      done(uid, true);
      return;
    }
    recent.push_back(now);
    if (replies_by_sender.size() > 10'000) replies_by_sender.clear();

    // The thread: its first message names the conversation (per sender: nobody joins another
    // person's conversation by quoting its ids).
    const std::string root = !mail->references.empty()    ? mail->references.front()
                             : !mail->in_reply_to.empty() ? mail->in_reply_to
                                                          : mail->message_id;
    const std::string conversation =
        sender + " " + (root.empty() ? fmt::format("uid-{}-{}", uidvalidity, uid) : root);
    // What a reply needs, kept where send() finds it (also after a restart).
    const json thread = {{"to", sender},
                         {"to_name", mail->from.name},
                         {"subject", reply_subject(mail->subject)},
                         {"in_reply_to", mail->message_id},
                         {"references", reply_references(*mail)}};
    deps.state.put("email", "thread:" + conversation, thread.dump(),
                   [](const Result<storage::WriteAck>& r) {
                     if (!r) spdlog::warn("email: thread not saved: {}", r.error().message);
                   });

    pipeline::InboundMessage in;
    in.channel = "email";
    in.platform_id =
        mail->message_id.empty() ? fmt::format("uid-{}-{}", uidvalidity, uid) : mail->message_id;
    in.conversation = conversation;
    in.author = sender;
    in.author_name = mail->from.name;
    std::string text;
    if (mail->in_reply_to.empty() && !mail->subject.empty()) {
      text = "Subject: " + mail->subject + "\n\n";
    }
    text += mail->text;
    if (!mail->attachments.empty()) {
      text += "\n\n(Attached, not opened:";
      for (const auto& a : mail->attachments) {
        text += fmt::format(" {} ({}, {} bytes);", a.name.empty() ? "(no name)" : a.name,
                            a.content_type, a.size);
      }
      text.back() = ')';
    }
    in.text = std::move(text);
    // Others in copy read the answer too.
    in.private_audience = mail->cc.empty();
    in_flight.fetch_add(1);
    asio::co_spawn(asio::make_strand(deps.executor), answer(shared_from_this(), uid, std::move(in)),
                   asio::detached);
  }

  static asio::awaitable<void> answer(std::shared_ptr<Impl> self, uint32_t uid,
                                      pipeline::InboundMessage in) {
    const pipeline::InboundMessage& message = in;
    const pipeline::TurnResult r = co_await self->inbox->deliver(message);
    if (r.error) {
      spdlog::error("email: UID {} could not be stored: {}; it is fetched again in {} s", uid,
                    r.error->message, kRetryStoreAfter.count());
      asio::dispatch(self->strand, [self, uid] { self->store_failed(uid); });
    } else {
      if (r.duplicate) spdlog::info("email: UID {} was already taken in", uid);
      if (r.refused && !r.reply.empty()) {
        spdlog::info("email: {} is not allowed here (access policy)", in.author);
      }
      // The reply goes through the outbox pump: retried if SMTP is down, never sent twice.
      if (r.outbox_id != 0 && r.primary) self->inbox->push(r.outbox_id);
      asio::dispatch(self->strand, [self, uid] { self->done(uid, true); });
    }
    self->in_flight.fetch_sub(1);
  }

  // A sender not on the allow-list (or whose From is not authenticated): one polite refusal a
  // day, by mail straight away (nothing of theirs is kept).
  void refuse_stranger(uint32_t uid, const ParsedMail& mail, const std::string& sender,
                       bool authentic) {
    spdlog::info("email: UID {} from {} not answered: {}", uid, sender,
                 authentic ? "not on channels.email.allow" : "its From is not authenticated");
    count_skip("stranger");
    done(uid, true);
    if (!authentic) return;  // a forged From: telling "them" would mail someone else
    const std::string key = "refused:" + sender;
    const std::string today = utc_day(email_wall_ms());
    if (auto last = deps.state.get("email", key); last.ok() && *last && **last == today) return;
    deps.state.put("email", key, today, [](const Result<storage::WriteAck>&) {});
    OutgoingMail out;
    out.from =
        MailAddress{options.smtp.from, options.smtp.from_name, ascii_lowercase(options.smtp.from)};
    out.to = {MailAddress{sender, mail.from.name, sender}};
    out.subject = reply_subject(mail.subject);
    out.message_id = make_message_id(domain_of(options.smtp.from));
    out.in_reply_to = mail.message_id;
    out.references = reply_references(mail);
    out.date = std::chrono::system_clock::now();
    out.text =
        "Hello,\n\nthis address answers only the people it was set up for, so your message "
        "was not read. This is the only notice you will get today.\n";
    in_flight.fetch_add(1);
    asio::co_spawn(
        asio::make_strand(deps.executor),
        [self = shared_from_this(), data = compose_mail(out),
         to = sender]() -> asio::awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          SmtpClient smtp(ex, self->tls);
          const SmtpEndpoint endpoint = self->smtp_endpoint();
          const std::string from = self->options.smtp.from;
          const std::vector<std::string> rcpt{to};
          const SmtpResult r = co_await smtp.send(endpoint, from, rcpt, data);
          if (r.outcome == SmtpOutcome::refused) {
            spdlog::warn("email: the refusal to {} was not sent: {}", to, r.error);
          }
          self->in_flight.fetch_sub(1);
        },
        asio::detached);
  }

  // One outbox entry to the address of its thread.
  static asio::awaitable<void> deliver_out(std::shared_ptr<Impl> self, OutboundMessage message,
                                           std::function<void(Status)> done) {
    auto thread = self->deps.state.get("email", "thread:" + message.target);
    json t = thread.ok() && *thread ? json::parse(**thread, nullptr, false) : json();
    if (!t.is_object() || t.value("to", "").empty()) {
      self->in_flight.fetch_sub(1);
      done(fail(ErrorCode::not_found,
                fmt::format("email: no thread {} to answer (its mail was never stored here)",
                            message.target)));
      co_return;
    }
    OutgoingMail out;
    out.from = MailAddress{self->options.smtp.from, self->options.smtp.from_name,
                           ascii_lowercase(self->options.smtp.from)};
    out.to = {MailAddress{t.value("to", ""), t.value("to_name", ""), t.value("to", "")}};
    out.subject = t.value("subject", "Re: (no subject)");
    // The same id at every try: a retry of a send that failed is the same mail.
    out.message_id = fmt::format("parley.{}.{}@{}", message.outbox_id, self->salt,
                                 domain_of(self->options.smtp.from));
    out.in_reply_to = t.value("in_reply_to", "");
    out.references = t.value("references", std::vector<std::string>{});
    out.date = std::chrono::system_clock::now();
    out.text = message.text;
    out.html = markdown_to_html(message.text);
    out.files = std::move(message.files);
    const std::string data = compose_mail(out);
    auto ex = co_await asio::this_coro::executor;
    SmtpClient smtp(ex, self->tls);
    const SmtpEndpoint endpoint = self->smtp_endpoint();
    const std::string from = self->options.smtp.from;
    const std::vector<std::string> rcpt{out.to.front().address};
    const SmtpResult r = co_await smtp.send(endpoint, from, rcpt, data);
    self->in_flight.fetch_sub(1);
    switch (r.outcome) {
      case SmtpOutcome::sent:
        self->sent.fetch_add(1);
        done(Status{});
        break;
      case SmtpOutcome::uncertain:
        // It may have gone: never sent again (the outbox records it as sent).
        spdlog::warn(
            "email: the reply to {} may or may not have been delivered ({}); not sent "
            "again",
            out.to.front().address, r.error);
        done(Status{});
        break;
      case SmtpOutcome::refused: done(fail(ErrorCode::unavailable, r.error)); break;
    }
  }
};

EmailChannel::EmailChannel(Deps deps, EmailOptions options, std::string imap_password,
                           std::string smtp_password)
    : impl_(std::make_shared<Impl>(std::move(deps), std::move(options), std::move(imap_password),
                                   std::move(smtp_password))) {}

EmailChannel::~EmailChannel() { stop(); }

Status EmailChannel::start(Inbox& inbox) {
  if (impl_->inbox != nullptr) return {};
  auto salt = impl_->deps.state.get("email", "message_id_salt");
  if (!salt) return fail(salt.error());
  if (*salt) {
    impl_->salt = **salt;
  } else {
    std::random_device rd;
    static constexpr std::string_view kAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
    for (int i = 0; i < 8; ++i) impl_->salt += kAlphabet[rd() % kAlphabet.size()];
    if (auto put = impl_->deps.state.put("email", "message_id_salt", impl_->salt).get(); !put) {
      return fail(put.error());
    }
  }
  impl_->inbox = &inbox;
  asio::co_spawn(impl_->strand, Impl::watch(impl_), asio::detached);
  return {};
}

void EmailChannel::stop() {
  asio::dispatch(impl_->strand, [impl = impl_] {
    if (impl->stopping) return;
    impl->stopping = true;
    impl->wait_timer.cancel();
    impl->retry_timer.cancel();
    impl->imap.close();
  });
}

void EmailChannel::send(OutboundMessage message, std::function<void(Status)> done) {
  impl_->in_flight.fetch_add(1);
  asio::co_spawn(asio::make_strand(impl_->deps.executor),
                 Impl::deliver_out(impl_, std::move(message), std::move(done)), asio::detached);
}

size_t EmailChannel::in_flight() const { return impl_->in_flight.load(); }

std::string EmailChannel::banner() const {
  return fmt::format("email ({}@{} → {}, replies from {})", impl_->options.imap.user,
                     impl_->options.imap.host, impl_->options.imap.mailbox,
                     impl_->options.smtp.from);
}

std::vector<ChannelFigure> EmailChannel::figures() const {
  std::vector<ChannelFigure> out;
  out.push_back({"parley_email_connected",
                 "1 while the IMAP connection is up",
                 "gauge",
                 {},
                 impl_->connected.load() ? 1.0 : 0.0});
  out.push_back({"parley_email_received_total",
                 "Mail fetched",
                 "counter",
                 {},
                 static_cast<double>(impl_->received.load())});
  out.push_back({"parley_email_sent_total",
                 "Replies handed to SMTP",
                 "counter",
                 {},
                 static_cast<double>(impl_->sent.load())});
  const std::lock_guard lock(impl_->skip_mu);
  for (const auto& [reason, n] : impl_->skipped) {
    out.push_back({"parley_email_not_answered_total",
                   "Mail not answered, by reason",
                   "counter",
                   {{"reason", reason}},
                   static_cast<double>(n)});
  }
  return out;
}

}  // namespace parley::bot::channels::email
