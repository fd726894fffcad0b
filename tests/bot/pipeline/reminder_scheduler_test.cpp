// Reminders fire on time, overdue ones at once marked late, each exactly once — also across a
// restart — into the conversation they came from, through the outbox.
#include "parley/bot/pipeline/reminder_scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "support/temp_dir.h"

namespace parley::bot {
namespace reminder_scheduler_test {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

class ReminderSchedulerTest : public ::testing::Test {
 protected:
  ReminderSchedulerTest() : work_(net::asio::make_work_guard(ioc_)) {
    open();
    user_ = store_->directory().ensure_user("http", "alice", "Alice").get().value().row_id;
    conv_ = store_->directory().ensure_conversation("http", "c1").get().value().row_id;
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~ReminderSchedulerTest() override {
    work_.reset();
    ioc_.stop();
    thread_.join();
  }
  void open() {
    storage::StoreOptions o;
    o.path = dir_ / "r.db";
    store_ = std::move(storage::Store::open(o).value());
  }
  int64_t add(int64_t due_at, const std::string& text, const std::string& state = "pending") {
    return store_->writes()
        .submit([=, this](storage::Connection& c) -> Result<storage::WriteAck> {
          auto st = c.cached(
              "INSERT INTO reminders(user_id, conversation_id, due_at, text, state, created_at, "
              "channel) "
              "VALUES (?,?,?,?,?,?, 'http') RETURNING id");
          if (!st) return fail(std::move(st).error());
          (*st)->bind_all(user_, conv_, due_at, text, state, int64_t{0});
          auto row = (*st)->step();
          if (!row) return fail(std::move(row).error());
          return storage::WriteAck{(*st)->column_int64(0), true};
        })
        .get()
        .value()
        .row_id;
  }
  bool wait_fired(const pipeline::ReminderScheduler& s, uint64_t n) {
    for (int i = 0; i < 300 && s.fired() < n; ++i) std::this_thread::sleep_for(milliseconds(10));
    return s.fired() >= n;
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  std::thread thread_;
  int64_t user_ = 0;
  int64_t conv_ = 0;
};

TEST_F(ReminderSchedulerTest, FiresOnTimeLateOnesAtOnceEachExactlyOnce) {
  const int64_t now = SystemClock::instance().now_ms();
  add(now - 5 * 60'000, "was due five minutes ago");
  add(now + 300, "stretch");
  add(now + 3'600'000, "next hour");
  add(now - 1000, "cancelled one", "cancelled");
  {
    pipeline::ReminderScheduler s(ioc_.get_executor(), *store_, SystemClock::instance(), {},
                                  milliseconds(100));
    s.start();
    ASSERT_TRUE(wait_fired(s, 2));
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_EQ(s.fired(), 2u);
    s.stop();
  }
  const auto pending = store_->outbox().pending().value();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_THAT(pending[0].body, HasSubstr("late"));
  EXPECT_THAT(pending[0].body, HasSubstr("was due five minutes ago"));
  EXPECT_EQ(pending[1].body, "⏰ Reminder: stretch");
  EXPECT_EQ(pending[1].channel, "http");
  EXPECT_EQ(pending[1].target, "c1");
  const auto history = store_->messages().recent(conv_).value();
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ(history->back()->role, "assistant");

  // A restart: nothing fires twice.
  pipeline::ReminderScheduler again(ioc_.get_executor(), *store_, SystemClock::instance(), {},
                                    milliseconds(100));
  again.start();
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(again.fired(), 0u);
  again.stop();
  EXPECT_EQ(store_->outbox().pending().value().size(), 2u);
}

// The wall clock jumps (an NTP step, a VM resumed): forward over a reminder, it fires at once,
// marked late, without waiting out the sleep it had planned; back again, nothing fires twice;
// forward past the next one, that one fires, once.
TEST_F(ReminderSchedulerTest, ClockJumpsForwardAndBackFireEachReminderOnce) {
  ManualClock clock(SystemClock::instance().now_ms());
  const int64_t start = clock.now_ms();
  add(start + 3'600'000, "in an hour");
  add(start + 7'200'000, "in two hours");
  pipeline::ReminderScheduler s(ioc_.get_executor(), *store_, clock, {}, milliseconds(100));
  s.start();
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(s.fired(), 0u);
  clock.advance_ms(90 * 60'000);  // +1 h 30
  ASSERT_TRUE(wait_fired(s, 1));
  clock.advance_ms(-120 * 60'000);  // back to 30 min before the start
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_EQ(s.fired(), 1u) << "going back fires nothing again";
  clock.set_ms(start + 7'200'000 + 1'000);
  ASSERT_TRUE(wait_fired(s, 2));
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(s.fired(), 2u);
  s.stop();
  const auto pending = store_->outbox().pending().value();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_THAT(pending[0].body, HasSubstr("in an hour"));
  EXPECT_THAT(pending[0].body, HasSubstr("late")) << "it fired half an hour after it was due";
  EXPECT_THAT(pending[1].body, HasSubstr("in two hours"));
}

TEST_F(ReminderSchedulerTest, FiringIsOneTransactionAndOnlyOnce) {
  const int64_t id = add(SystemClock::instance().now_ms() - 10, "once");
  capabilities::DueReminder r{id, user_, conv_, "http", "once", 0, false};
  ASSERT_TRUE(pipeline::ReminderScheduler::fire(*store_, r, 1).ok());
  const auto second = pipeline::ReminderScheduler::fire(*store_, r, 2);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::already_exists);
  EXPECT_EQ(store_->outbox().pending().value().size(), 1u);
}

}  // namespace reminder_scheduler_test
}  // namespace parley::bot
