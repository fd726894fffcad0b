// Channel: how people reach the bot — console, HTTP today; Discord and email drop in beside
// them. A channel turns its platform's events into InboundMessages and hands each to the Inbox
// (the bot), and sends what the bot gives it back.
//
// The path of one message (DESIGN.md):
//   channel → Inbox::deliver(message)
//           → access policy (allowlist, rate limit) → stored, deduplicated on (channel,
//             platform id), committed → acknowledged: deliver() is past this point once the
//             turn starts → the conversation's lane (strict order; a burst that arrives while a
//             turn runs is merged into the next turn) → the reply, stored and put in the outbox
//           ← TurnResult (the reply and its outbox id)
//   channel: Inbox::sending(outbox id) → the platform send → Inbox::sent(outbox id)
// The bracket around the send is what keeps a reply from being sent twice: after a crash, an
// entry whose send had begun is marked `unknown` and never sent again; one whose send had not
// begun is sent at restart through Channel::send (push channels only).
//
// Replies nobody is waiting for (reminders, replies owed from before a restart) go through
// Channel::send, and only to channels that can push. HTTP cannot: its replies travel in the
// response to the request that asked.
//
// Thread safety: Inbox methods may be called from any thread, concurrently. A channel's send()
// may be called from any thread, never twice at once for the same outbox entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/base/result.h"
#include "parley/bot/net.h"
#include "parley/bot/pipeline/message.h"
#include "parley/storage/outbox_file.h"

namespace parley::bot::channels {

// One outbox entry to send: `target` is the channel's own conversation key (what the channel
// put in InboundMessage::conversation).
struct OutboundMessage {
  int64_t outbox_id = 0;
  std::string target;
  std::string text;
  // Files sent with the text (a chart, an export): Discord and email attach them, the console
  // writes them out and prints where; a channel that cannot carry them says so in the text.
  std::vector<storage::OutboxFile> files;
};

// A figure a channel reports on /metrics (Prometheus text format) and in /healthz: e.g.
// {"parley_discord_shard_ack_latency_ms", "…", "gauge", {{"shard", "0"}}, 41}.
struct ChannelFigure {
  std::string name;
  std::string help;
  std::string type = "gauge";  // or "counter"
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

class Inbox {
 public:
  virtual ~Inbox() = default;
  // Runs `message` through the bot (see above) and resumes with the result: a reply to send
  // (result.outbox_id != 0), a duplicate (nothing new to send), a refusal (result.refused;
  // result.reply may be empty: the sender was already told once), or a storage failure
  // (result.error and no outbox id: nothing was accepted; the channel says so, or lets its
  // platform redeliver).
  // When several messages of a burst are merged into one turn, each deliver() resumes with the
  // same reply; only the last one's result has `primary` set, and a channel that sends replies
  // itself (rather than answering a request) sends the primary one only.
  // `message` is taken by reference: the caller's named local outlives the wait (see net.h).
  virtual net::asio::awaitable<pipeline::TurnResult> deliver(
      const pipeline::InboundMessage& message) = 0;
  // The send of an outbox entry begins (recorded and committed before the coroutine resumes).
  virtual net::asio::awaitable<void> sending(int64_t outbox_id) = 0;
  // The send of an outbox entry happened. Asynchronous; never blocks.
  virtual void sent(int64_t outbox_id) = 0;
  // Hands an outbox entry to the outbox pump instead of sending it in place: the pump sends it
  // through Channel::send, bracketed, and tries again later after a send that certainly failed
  // (for channels whose server can be down for a while: email). Without a pump (a process that
  // does not own the database) the entry stays owed until one runs.
  virtual void push(int64_t outbox_id) { (void)outbox_id; }
};

class Channel {
 public:
  virtual ~Channel() = default;
  // The channel's name as stored with its messages ("console", "http", "discord", "email").
  [[nodiscard]] virtual std::string_view name() const = 0;
  // Whether the channel can send a message nobody is waiting for (see above).
  [[nodiscard]] virtual bool can_push() const = 0;
  // Starts receiving; every message goes to `inbox`, which outlives the channel's stop().
  virtual Status start(Inbox& inbox) = 0;
  // Stops receiving (idempotent, never blocks). Messages already delivered finish.
  virtual void stop() = 0;
  // Sends one message (push channels); `done` exactly once, from any thread: ok when the
  // platform took it, an error when it certainly did not (the entry stays pending and is tried
  // again later). Channels that cannot push answer unavailable.
  virtual void send(OutboundMessage message, std::function<void(Status)> done) = 0;
  // Deliveries and sends still running (after stop(), the process waits for 0 within its
  // grace period).
  [[nodiscard]] virtual size_t in_flight() const { return 0; }
  // One line for the start-up banner: where the channel listens or whom it talks to, or why
  // it is off.
  [[nodiscard]] virtual std::string banner() const { return std::string(name()); }
  // What the channel reports for /metrics and /healthz (none by default). From any thread.
  [[nodiscard]] virtual std::vector<ChannelFigure> figures() const { return {}; }
};

}  // namespace parley::bot::channels
