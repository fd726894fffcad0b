// OutboxPump: sends the outbox entries nobody waits for — replies owed from before a restart,
// fired reminders, alerts for admin conversations — through the channels that can push, each
// bracketed like a reply (begin_send committed before the send, marked sent after), so that
// an entry is never sent twice. A failed send stays pending and is tried again after `retry`.
// Up to eight sends are under way at once, never two to the same conversation (the parts of a
// reply arrive in order).
//
// Thread safety: every public method may be called from any thread; sends run on the
// executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "parley/bot/channels/channel.h"
#include "parley/bot/net.h"
#include "parley/storage/store.h"

namespace parley::bot::pipeline {

class OutboxPump {
 public:
  OutboxPump(const net::Executor& executor, storage::Store& store,
             std::chrono::milliseconds retry = std::chrono::seconds(30));
  ~OutboxPump();
  OutboxPump(const OutboxPump&) = delete;
  OutboxPump& operator=(const OutboxPump&) = delete;

  // Channels that can push (others are ignored). Before start().
  void add(channels::Channel& channel);
  // Queues every entry still pending for those channels (owed from before this start), then
  // sends them. Entries created later are sent only when push()ed: a reply to a message is
  // sent by the channel that received it.
  void start();
  // Sends one entry nobody waits for (a fired reminder).
  void push(int64_t outbox_id);
  // Stops sending (a send under way finishes). Idempotent, never blocks.
  void stop();

  [[nodiscard]] uint64_t sent() const;
  [[nodiscard]] bool idle() const;  // nothing queued nor being sent

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace parley::bot::pipeline
