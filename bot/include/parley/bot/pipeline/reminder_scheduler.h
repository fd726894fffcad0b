// ReminderScheduler: fires the reminders the `reminders` capability stored, on time, also after
// a restart (overdue ones fire at once and say they are late). Firing a reminder is one
// transaction: the reminder goes pending → fired, and the reminder message is written into the
// conversation it came from with its outbox entry, so a reminder is delivered exactly once even
// if the process dies at any moment. The channel's sender then sends the outbox entry.
//
// Thread safety: start()/stop() from any thread; the work runs on the scheduler's strand; the
// store's writes are awaited on the io threads (one short commit per fired reminder).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include "parley/base/clock.h"
#include "parley/bot/net.h"
#include "parley/capabilities/reminders.h"
#include "parley/storage/store.h"

namespace parley::bot::pipeline {

class ReminderScheduler {
 public:
  // `on_fired` (optional) is told of each reminder fired, with its outbox entry id.
  using OnFired = std::function<void(const capabilities::DueReminder&, int64_t outbox_id)>;

  ReminderScheduler(const net::Executor& executor, storage::Store& store,
                    const parley::Clock& clock, OnFired on_fired = {},
                    std::chrono::milliseconds max_sleep = std::chrono::seconds(30));
  ~ReminderScheduler();

  void start();
  void stop();
  // Looks again now (a reminder was created or cancelled).
  void poke();

  [[nodiscard]] uint64_t fired() const;

  // The text delivered for a reminder.
  static std::string message_for(const capabilities::DueReminder& r);
  // Fires one due reminder in one transaction (see above); already_exists when it was not
  // pending any more. Returns the outbox entry id.
  static Result<int64_t> fire(storage::Store& store, const capabilities::DueReminder& r,
                              int64_t now_ms);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace parley::bot::pipeline
