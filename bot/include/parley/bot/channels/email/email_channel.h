// EmailChannel: parley as a mailbox. People write to the bot's address and get an answer in the
// same thread, in their mail client.
//
// In: one IMAP connection (imap_client.h) on the channel's strand. Every (re)connect selects the
// mailbox and catches up from the cursor kept in the database (mailbox, UIDVALIDITY, last UID):
// `UID SEARCH UID last+1:*`, fetched with BODY.PEEK[] (never marking mail read by accident).
// Then IDLE (re-issued every 10 minutes; EXISTS wakes it), or NOOP polls every poll_interval_s
// without IDLE; a dropped connection reconnects with jittered back-off. The first start
// answers nothing already in the mailbox; a UIDVALIDITY change re-baselines the same way, with
// an alert, and the dedupe on Message-ID keeps mail that comes back under new UIDs from being
// answered twice.
//
// Each mail is parsed (mail_message.h), passed through the loop guard (loop_guard.h: automatic
// replies, bounces, lists, our own mail are never answered; each skip logged and counted), the
// allow-list (strangers told once a day) and a per-sender hourly cap, then delivered to the
// pipeline like any message: stored (deduplicated on its Message-ID) and committed before the
// server is told (\Seen, or a move to a folder), so a crash in between re-reads the mail at
// restart and finds it a duplicate. The cursor advances once every mail up to it is handled.
//
// Out: the reply is an outbox entry sent by the outbox pump through send() (so an SMTP server
// that is down means a retry later, and a send that may have happened is never repeated):
// SMTP (smtp_client.h) with From, To, "Re: " once, a Message-ID derived from the outbox id
// (a retry reuses it; our own mail coming back is recognised by it), In-Reply-To and References
// from the mail it answers, Auto-Submitted: auto-replied, text/plain with an HTML alternative.
//
// Passwords reach the servers only: never a log line, an error, the database or /metrics.
// Thread safety: the Channel methods from any thread; the state lives on the channel's strand.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parley/bot/channels/channel.h"
#include "parley/bot/channels/email/options.h"
#include "parley/storage/channel_state_repository.h"

namespace parley::bot::channels::email {

class EmailChannel final : public Channel {
 public:
  struct Deps {
    net::Executor executor;
    storage::ChannelStateRepository& state;
    // An operator-facing problem (a refused login, a UIDVALIDITY change): kind and one line.
    std::function<void(const std::string& kind, const std::string& line)> alert;
  };
  EmailChannel(Deps deps, EmailOptions options, std::string imap_password,
               std::string smtp_password);
  ~EmailChannel() override;
  EmailChannel(const EmailChannel&) = delete;
  EmailChannel& operator=(const EmailChannel&) = delete;

  [[nodiscard]] std::string_view name() const override { return "email"; }
  [[nodiscard]] bool can_push() const override { return true; }
  Status start(Inbox& inbox) override;
  void stop() override;
  void send(OutboundMessage message, std::function<void(Status)> done) override;
  [[nodiscard]] size_t in_flight() const override;
  [[nodiscard]] std::string banner() const override;
  // Connected or not, mail received, replies sent, and mail not answered by reason.
  [[nodiscard]] std::vector<ChannelFigure> figures() const override;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace parley::bot::channels::email
