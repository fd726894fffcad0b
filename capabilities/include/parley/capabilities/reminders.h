// Reminders as the bot fires them. The `reminders` built-in (capabilities/src/builtins/
// reminders.cpp) creates, lists and cancels a user's reminders; these functions are the other
// half, for the bot loop: which pending reminders are due, when the next one is (for its timer),
// and marking one fired. Reminders live in SQLite (table reminders, migrations 0001 and 0004)
// and survive restarts; a reminder goes pending → fired or pending → cancelled, never back, so
// one that fired (or was cancelled) is never returned as due again.
//
// insert_pending_reminder() and cancel_pending_reminder() are the reminders built-in's own
// statements, for capabilities that set a reminder when asked (habits): they run inside a write
// job, on the writer's connection, so the reminder commits or rolls back with the rest of it.
//
// Thread safety: every function is safe from any thread. mark_fired() waits for its commit: do
// not call it from a write-queue completion callback.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "parley/base/result.h"

namespace parley::storage {
class Connection;
class Store;
}  // namespace parley::storage

namespace parley::capabilities {

// A reminder whose time has come; the bot delivers `text` to `user_id` in `conversation_id`
// (0: the reminder was made outside a conversation) on `channel` ("" when unknown).
struct DueReminder {
  int64_t id = 0;
  int64_t user_id = 0;
  int64_t conversation_id = 0;
  std::string channel;
  std::string text;
  int64_t due_at = 0;  // Unix epoch ms, UTC
  bool late = false;   // due more than `late_after_ms` before the `now_ms` it was asked at
};

// How overdue a reminder must be to count as late (the bot says so, e.g. after a restart).
inline constexpr int64_t kLateAfterMs = 60'000;

// Pending reminders due at `now_ms` or before, the most overdue first (then by id), at most
// `limit`. Reads the last committed state.
Result<std::vector<DueReminder>> due_reminders(storage::Store& store, int64_t now_ms, size_t limit,
                                               int64_t late_after_ms = kLateAfterMs);

// The due time of the earliest pending reminder (overdue ones included), or nullopt when none
// is pending.
Result<std::optional<int64_t>> next_due_ms(storage::Store& store);

// A pending reminder to create: for `user_id`, delivered in `conversation_id` (nullopt: made
// outside a conversation) on `channel`, at `due_at` (epoch ms, UTC).
struct NewPendingReminder {
  int64_t user_id = 0;
  std::optional<int64_t> conversation_id;
  std::string channel;
  int64_t due_at = 0;
  std::string text;
  int64_t created_at = 0;
};

// The pending reminders one user may have at once unless capabilities.yaml says otherwise.
inline constexpr int64_t kDefaultMaxPendingReminders = 100;

// Inserts `r` as pending and returns its id; resource_exhausted ("reminders: you already have N
// pending reminders; …") when the user already has `max_pending`.
// REQUIRES: `conn` is the write queue's connection, inside a write job.
Result<int64_t> insert_pending_reminder(storage::Connection& conn, const NewPendingReminder& r,
                                        int64_t max_pending);

// Cancels reminder `id` of `user_id` when it is pending; true when it was.
// REQUIRES: `conn` is the write queue's connection, inside a write job.
Result<bool> cancel_pending_reminder(storage::Connection& conn, int64_t user_id, int64_t id);

// After reminder `fired_id` fired at `now_ms`: when it is an active habit's reminder, sets the
// next one (the habit's next scheduled day, at its time of day in its zone) and returns its id;
// nullopt when the reminder belongs to no habit (or to a paused or archived one).
// REQUIRES: `conn` is the write queue's connection, inside a write job (the scheduler's fire).
Result<std::optional<int64_t>> rearm_habit_reminder(storage::Connection& conn, int64_t fired_id,
                                                    int64_t now_ms);

// Marks reminder `id` fired at `now_ms`, through the write queue, and returns once committed.
// Only a pending reminder fires: one that already fired gives already_exists, a cancelled one
// cancelled, an unknown id not_found — so two callers racing to fire it cannot both succeed.
Status mark_fired(storage::Store& store, int64_t id, int64_t now_ms);

}  // namespace parley::capabilities
