// Dispatcher: the bot side of every channel (channels::Inbox). One message's path:
//   access policy (allowlist: a sender turned away hears the refusal once; admins marked)
//   → per-sender rate limit (over it: one clear message per window, nothing stored)
//   → its conversation's lane (lanes.h): TurnHandler::accept (stored, deduplicated, committed,
//     in arrival order: from here the message is never lost), then its turn in order (bursts
//     merged)
//   → the result, whose reply is already in the outbox.
// And the outbox bracket around a channel's send (sending/sent).
//
// OutboxPump: sends what nobody is waiting for — replies owed from before a restart, fired
// reminders — through the channels that can push, one entry at a time, oldest first; a send
// that fails for certain stays pending and is tried again after `retry`.
//
// Thread safety: every method may be called from any thread. The pump's work runs on its own
// strand; deliver() runs on the caller's executor and the turn on its lane's strand.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parley/bot/channels/channel.h"
#include "parley/bot/net.h"
#include "parley/bot/pipeline/access.h"
#include "parley/bot/pipeline/lanes.h"
#include "parley/bot/pipeline/message.h"
#include "parley/capabilities/rate_limiter.h"
#include "parley/storage/store.h"

namespace parley::bot::pipeline {

class Dispatcher : public channels::Inbox {
 public:
  Dispatcher(storage::Store& store, Lanes& lanes, AccessPolicy policy,
             capabilities::RateLimiter& limiter);

  net::asio::awaitable<TurnResult> deliver(const InboundMessage& message) override;
  net::asio::awaitable<void> sending(int64_t outbox_id) override;
  void sent(int64_t outbox_id) override;
  void push(int64_t outbox_id) override;
  // Where push() hands entries (the outbox pump); before any channel starts.
  void on_push(std::function<void(int64_t)> push) { push_ = std::move(push); }

  [[nodiscard]] const AccessPolicy& policy() const { return policy_; }

  // No message left unanswered: the messages a crash left stored but unanswered, at most
  // `window` old (MessageRepository::unanswered: the last of their conversation, nothing spent
  // or queued after them), each answered once through its lane as if redelivered
  // (InboundMessage::stored_id), its reply handed to push(). Returns how many were answered.
  // The process that owns the database runs it once at start, with `stored_through` the last
  // message id before any channel took a message in: a message of this run, stored while the
  // search had not begun yet, is its own turn's, never recovered (and answered) a second time.
  net::asio::awaitable<size_t> answer_unanswered(std::chrono::milliseconds window,
                                                 const parley::Clock& clock,
                                                 int64_t stored_through);

 private:
  storage::Store& store_;
  Lanes& lanes_;
  const AccessPolicy policy_;
  capabilities::RateLimiter& limiter_;
  std::function<void(int64_t)> push_;
};

}  // namespace parley::bot::pipeline
