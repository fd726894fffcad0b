// OutboxPump: replies owed from before a start are sent through the channels that can push,
// oldest first, each bracketed by begin_send / mark_sent; a send that fails for certain stays
// pending (not `unknown`) and is tried again; entries of channels that cannot push stay pending;
// push() sends an entry nobody waits for; sends to different conversations are under way at
// once, never two to the same one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "parley/bot/pipeline/dispatcher.h"
#include "parley/bot/pipeline/outbox_pump.h"
#include "support/temp_dir.h"

namespace parley::bot {
namespace outbox_pump_test {

using std::chrono::milliseconds;

// A channel that records what it is asked to send; fails the first `failures` sends.
class RecordingChannel final : public channels::Channel {
 public:
  RecordingChannel(std::string name, bool push) : name_(std::move(name)), push_(push) {}
  [[nodiscard]] std::string_view name() const override { return name_; }
  [[nodiscard]] bool can_push() const override { return push_; }
  Status start(channels::Inbox&) override { return {}; }
  void stop() override {}
  void send(channels::OutboundMessage m, std::function<void(Status)> done) override {
    {
      const std::lock_guard lock(mu_);
      ++attempts_;
      if (failures_ > 0) {
        --failures_;
        done(fail(ErrorCode::unavailable, "the platform is down"));
        return;
      }
      sent_.push_back(m.target + ":" + m.text);
    }
    done({});
  }
  std::vector<std::string> sent() const {
    const std::lock_guard lock(mu_);
    return sent_;
  }
  int attempts() const {
    const std::lock_guard lock(mu_);
    return attempts_;
  }
  void fail_next(int n) {
    const std::lock_guard lock(mu_);
    failures_ = n;
  }

 private:
  std::string name_;
  bool push_;
  mutable std::mutex mu_;
  std::vector<std::string> sent_;
  int attempts_ = 0;
  int failures_ = 0;
};

// A channel that holds every send until release() (the oldest first).
class HeldChannel final : public channels::Channel {
 public:
  [[nodiscard]] std::string_view name() const override { return "console"; }
  [[nodiscard]] bool can_push() const override { return true; }
  Status start(channels::Inbox&) override { return {}; }
  void stop() override {}
  void send(channels::OutboundMessage m, std::function<void(Status)> done) override {
    const std::lock_guard lock(mu_);
    held_.emplace_back(m.target + ":" + m.text, std::move(done));
  }
  std::vector<std::string> held() const {
    const std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& h : held_) out.push_back(h.first);
    return out;
  }
  void release(const std::string& what) {
    std::function<void(Status)> done;
    {
      const std::lock_guard lock(mu_);
      for (auto it = held_.begin(); it != held_.end(); ++it) {
        if (it->first == what) {
          done = std::move(it->second);
          held_.erase(it);
          break;
        }
      }
    }
    if (done) done({});
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::function<void(Status)>>> held_;
};

class OutboxPumpTest : public ::testing::Test {
 protected:
  OutboxPumpTest() : work_(net::asio::make_work_guard(ioc_)) {
    storage::StoreOptions o;
    o.path = dir_ / "o.db";
    store_ = std::move(storage::Store::open(o).value());
    conv_ = store_->directory().ensure_conversation("console", "me").get().value().row_id;
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~OutboxPumpTest() override {
    work_.reset();
    ioc_.stop();
    thread_.join();
  }
  int64_t add(const std::string& channel, const std::string& body) {
    return store_->outbox().add(conv_, channel, "me", body).get().value().row_id;
  }
  std::string state(int64_t id) { return store_->outbox().get(id).value().state; }
  static bool eventually(const std::function<bool()>& done) {
    for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(milliseconds(10));
    return done();
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  int64_t conv_ = 0;
  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  std::thread thread_;
};

TEST_F(OutboxPumpTest, OwedEntriesOfPushChannelsAreSentOldestFirstAndMarkedSent) {
  const int64_t a = add("console", "first");
  const int64_t h = add("http", "not pushable");
  const int64_t b = add("console", "second");
  RecordingChannel console("console", true);
  RecordingChannel http("http", false);
  pipeline::OutboxPump pump(ioc_.get_executor(), *store_);
  pump.add(console);
  pump.add(http);
  pump.start();
  ASSERT_TRUE(eventually([&] { return pump.sent() == 2; }));
  EXPECT_EQ(console.sent(), (std::vector<std::string>{"me:first", "me:second"}));
  EXPECT_TRUE(eventually([&] { return state(a) == "sent" && state(b) == "sent"; }));
  EXPECT_EQ(state(h), "pending") << "HTTP cannot push: its entry waits";
  EXPECT_EQ(http.attempts(), 0);
  pump.stop();
}

TEST_F(OutboxPumpTest, AFailedSendStaysPendingIsRetriedAndIsNotUnknownAfterARestart) {
  const int64_t id = add("console", "reminder");
  RecordingChannel console("console", true);
  console.fail_next(1);
  pipeline::OutboxPump pump(ioc_.get_executor(), *store_, milliseconds(200));
  pump.add(console);
  pump.start();
  ASSERT_TRUE(eventually([&] { return console.attempts() == 1; }));
  // Between the failure and the retry: pending, and a restart would send it, not mark it unknown.
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(state(id), "pending");
  EXPECT_EQ(store_->outbox().get(id).value().attempts, 0);
  ASSERT_TRUE(eventually([&] { return pump.sent() == 1; }));
  EXPECT_EQ(console.attempts(), 2);
  EXPECT_TRUE(eventually([&] { return state(id) == "sent"; }));
  pump.stop();
}

TEST_F(OutboxPumpTest, PushSendsANewEntryAndAnEntryAlreadySentIsSkipped) {
  RecordingChannel console("console", true);
  pipeline::OutboxPump pump(ioc_.get_executor(), *store_);
  pump.add(console);
  pump.start();
  const int64_t id = add("console", "your reminder");
  pump.push(id);
  pump.push(id);  // twice: sent once
  ASSERT_TRUE(eventually([&] { return pump.sent() == 1 && pump.idle(); }));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(console.sent(), (std::vector<std::string>{"me:your reminder"}));
  pump.stop();
}

TEST_F(OutboxPumpTest, SendsToDifferentConversationsOverlapButNeverTwoToTheSameOne) {
  auto to = [&](const std::string& target, const std::string& body) {
    return store_->outbox().add(conv_, "console", target, body).get().value().row_id;
  };
  to("alice", "part 1");
  to("alice", "part 2");
  to("bob", "hello");
  to("carol", "hi");
  HeldChannel console;
  pipeline::OutboxPump pump(ioc_.get_executor(), *store_);
  pump.add(console);
  pump.start();
  // Alice's first part, Bob's and Carol's are under way together; Alice's second waits.
  ASSERT_TRUE(eventually([&] { return console.held().size() == 3; }));
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(console.held(), (std::vector<std::string>{"alice:part 1", "bob:hello", "carol:hi"}));
  console.release("bob:hello");
  ASSERT_TRUE(eventually([&] { return pump.sent() == 1; }));
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(console.held().size(), 2u) << "Alice's second part still waits for her first";
  console.release("alice:part 1");
  ASSERT_TRUE(eventually([&] { return console.held().size() == 2 && pump.sent() == 2; }));
  EXPECT_EQ(console.held(), (std::vector<std::string>{"carol:hi", "alice:part 2"}));
  console.release("carol:hi");
  console.release("alice:part 2");
  ASSERT_TRUE(eventually([&] { return pump.sent() == 4 && pump.idle(); }));
  pump.stop();
}

}  // namespace outbox_pump_test
}  // namespace parley::bot
