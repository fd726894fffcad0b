#include "parley/bot/pipeline/reminder_scheduler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace parley::bot::pipeline {

namespace asio = net::asio;

std::string ReminderScheduler::message_for(const capabilities::DueReminder& r) {
  return r.late ? fmt::format("⏰ Reminder (late — it was due earlier): {}", r.text)
                : fmt::format("⏰ Reminder: {}", r.text);
}

Result<int64_t> ReminderScheduler::fire(storage::Store& store, const capabilities::DueReminder& r,
                                        int64_t now_ms) {
  const std::string body = message_for(r);
  auto done = store.writes().submit(
      [r, body, now_ms](storage::Connection& conn) -> Result<storage::WriteAck> {
        auto upd = conn.cached(
            "UPDATE reminders SET state = 'fired', fired_at = ? WHERE id = ? AND state = "
            "'pending'");
        if (!upd) return fail(std::move(upd).error());
        (*upd)->bind_all(now_ms, r.id);
        if (auto s = (*upd)->step(); !s) return fail(std::move(s).error());
        if (conn.changes() == 0) {
          return fail(ErrorCode::already_exists,
                      fmt::format("reminder {} is no longer pending", r.id));
        }
        std::optional<int64_t> conversation;
        if (r.conversation_id != 0) conversation = r.conversation_id;
        if (conversation) {
          auto msg = conn.cached(
              "INSERT INTO messages(conversation_id, channel, role, author, text, created_at, "
              "metadata) "
              "VALUES (?, ?, 'assistant', 'parley', ?, ?, ?)");
          if (!msg) return fail(std::move(msg).error());
          (*msg)->bind_all(*conversation, r.channel, body, now_ms,
                           nlohmann::json{{"reminder", r.id}, {"late", r.late}}.dump());
          if (auto s = (*msg)->step(); !s) return fail(std::move(s).error());
        }
        auto out = conn.cached(
            "INSERT INTO outbox(conversation_id, channel, target, body, state, created_at, "
            "updated_at) "
            "VALUES (?, ?, coalesce((SELECT external_id FROM conversations WHERE id = ?), ''), ?, "
            "'pending', ?, ?) RETURNING id");
        if (!out) return fail(std::move(out).error());
        (*out)->bind_all(conversation, r.channel, conversation, body, now_ms, now_ms);
        auto row = (*out)->step();
        if (!row) return fail(std::move(row).error());
        const int64_t entry = (*out)->column_int64(0);
        (*out)->reset();
        // A habit's reminder: the next one, in the same commit. Its failure must not stop this
        // one from firing (it would be tried again on every tick): rolled back alone, logged.
        PARLEY_TRY(conn.exec("SAVEPOINT rearm"));
        auto next = capabilities::rearm_habit_reminder(conn, r.id, now_ms);
        if (next) {
          PARLEY_TRY(conn.exec("RELEASE rearm"));
          if (*next) spdlog::info("reminder {} set for habit reminder {}", **next, r.id);
        } else {
          PARLEY_TRY(conn.exec("ROLLBACK TO rearm; RELEASE rearm"));
          spdlog::error("reminder {}: the habit's next reminder was not set: {}", r.id,
                        next.error().describe());
        }
        return storage::WriteAck{entry, true};
      },
      // The reminder is now part of its conversation: a cached history must not miss it.
      [&store, conversation = r.conversation_id](const storage::WriteAck&) {
        if (conversation != 0) {
          store.cache().invalidate(storage::CacheKey{storage::CacheKind::history, conversation});
        }
      },
      "fire reminder");
  auto ack = done.get();
  if (!ack) return fail(std::move(ack).error());
  return ack->row_id;
}

struct ReminderScheduler::Impl : std::enable_shared_from_this<Impl> {
  Impl(const net::Executor& ex, storage::Store& s, const Clock& c, OnFired f,
       std::chrono::milliseconds m)
      : strand(asio::make_strand(ex)),
        timer(strand),
        store(s),
        clock(c),
        on_fired(std::move(f)),
        max_sleep(m) {}

  asio::strand<net::Executor> strand;
  asio::steady_timer timer;
  storage::Store& store;
  const Clock& clock;
  OnFired on_fired;
  std::chrono::milliseconds max_sleep;
  bool stopped = false;
  std::atomic<uint64_t> fired{0};

  void tick() {
    if (stopped) return;
    const int64_t now = clock.now_ms();
    auto due = capabilities::due_reminders(store, now, 100);
    if (!due) {
      spdlog::error("reminders: cannot read due reminders: {}", due.error().describe());
    } else {
      for (const auto& r : *due) {
        auto fired_entry = fire(store, r, now);
        if (fired_entry) {
          fired.fetch_add(1);
          spdlog::info("reminder {} fired{} for user {}", r.id, r.late ? " (late)" : "", r.user_id);
          if (on_fired) on_fired(r, *fired_entry);
        } else if (fired_entry.error().code != ErrorCode::already_exists) {
          spdlog::error("reminder {}: {}", r.id, fired_entry.error().describe());
        }
      }
    }
    // Sleep until the next one is due (capped, so a clock change or a missed poke is noticed).
    auto sleep = max_sleep;
    if (auto next = capabilities::next_due_ms(store); next.ok() && next->has_value()) {
      const auto until = std::chrono::milliseconds(std::max<int64_t>(0, **next - clock.now_ms()));
      sleep = std::min(sleep, until);
    }
    timer.expires_after(sleep);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->tick();
    });
  }
};

ReminderScheduler::ReminderScheduler(const net::Executor& executor, storage::Store& store,
                                     const Clock& clock, OnFired on_fired,
                                     std::chrono::milliseconds max_sleep)
    : impl_(std::make_shared<Impl>(executor, store, clock, std::move(on_fired), max_sleep)) {}

ReminderScheduler::~ReminderScheduler() { stop(); }

void ReminderScheduler::start() {
  asio::post(impl_->strand, [impl = impl_] { impl->tick(); });
}

void ReminderScheduler::stop() {
  asio::post(impl_->strand, [impl = impl_] {
    impl->stopped = true;
    impl->timer.cancel();
  });
}

void ReminderScheduler::poke() {
  asio::post(impl_->strand, [impl = impl_] {
    if (impl->stopped) return;
    impl->timer.cancel();
    impl->tick();
  });
}

uint64_t ReminderScheduler::fired() const { return impl_->fired.load(); }

}  // namespace parley::bot::pipeline
