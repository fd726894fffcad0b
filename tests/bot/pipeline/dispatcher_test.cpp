// Dispatcher over real lanes and a fake TurnHandler whose turns end when the test says
// (support/fake_turn_handler.h), with a real store for what the dispatcher writes itself (the
// refusals it remembers, the outbox bracket): the access policy decides who is admitted and who
// is an admin, a refused sender is told once, a sender over the rate limit is told once a
// window and nothing of theirs is stored, an admitted message is stored before its turn (and
// the next one while it runs), a redelivery gets no second turn, sending/sent bracket a send.
//
// What the tests control: the io_context runs on one thread; every turn waits on a gate the
// test opens (or none, after answer_at_once()). The rate window is an hour, so the real clock
// the rate limiter reads never moves a test across it. Waits are on futures and condition
// variables whose patience (10 s) only a failing test reaches.
#include "parley/bot/pipeline/dispatcher.h"

#include <gtest/gtest.h>

#include <thread>

#include "support/fake_turn_handler.h"
#include "support/spawn.h"
#include "support/temp_dir.h"

namespace parley::bot {
namespace dispatcher_test {

namespace asio = net::asio;
using parley::testing::FakeTurnHandler;
using parley::testing::kPatience;
using std::chrono::milliseconds;
using Strings = std::vector<std::string>;
using Batches = std::vector<Strings>;

asio::awaitable<pipeline::TurnResult> deliver_copy(channels::Inbox& inbox,
                                                   pipeline::InboundMessage message) {
  co_return co_await inbox.deliver(message);
}

asio::awaitable<bool> sending_copy(channels::Inbox& inbox, int64_t outbox_id) {
  co_await inbox.sending(outbox_id);
  co_return true;
}

pipeline::InboundMessage message(const std::string& channel, const std::string& author,
                                 const std::string& text,
                                 std::optional<std::string> platform_id = std::nullopt) {
  pipeline::InboundMessage m;
  m.channel = channel;
  m.conversation = author;
  m.author = author;
  m.text = text;
  m.platform_id = std::move(platform_id);
  return m;
}

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest() : work_(asio::make_work_guard(ioc_)) {
    storage::StoreOptions o;
    o.path = dir_ / "d.db";
    store_ = std::move(storage::Store::open(o).value());
    pipeline::LaneOptions lanes;
    lanes.debounce = milliseconds(0);  // a burst is answered as soon as the turn before ends
    lanes_ = std::make_unique<pipeline::Lanes>(ioc_.get_executor(), handler_, lanes);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~DispatcherTest() override {
    // Every turn let go and every delivery answered before the lanes go (their callbacks use
    // them); then the io_context stops.
    handler_.answer_at_once();
    bool answered = true;
    for (auto& f : delivered_)
      answered = answered && f.wait_for(kPatience) == std::future_status::ready;
    EXPECT_TRUE(answered) << "a delivery never resumed";
    if (answered) {
      EXPECT_EQ(lanes_->active(), 0u);
    }
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  void make(pipeline::AccessPolicy policy) {
    dispatcher_ =
        std::make_unique<pipeline::Dispatcher>(*store_, *lanes_, std::move(policy), limiter_);
  }
  std::shared_future<pipeline::TurnResult> deliver(pipeline::InboundMessage m) {
    auto f = parley::testing::spawn(ioc_.get_executor(), deliver_copy(*dispatcher_, std::move(m)))
                 .share();
    delivered_.push_back(f);
    return f;
  }
  // deliver(), then its result (after kPatience: a failure and an empty result).
  pipeline::TurnResult deliver_and_wait(pipeline::InboundMessage m) {
    auto f = deliver(std::move(m));
    if (f.wait_for(kPatience) != std::future_status::ready) {
      ADD_FAILURE() << "no result";
      return {};
    }
    return f.get();
  }
  static bool done(const std::shared_future<pipeline::TurnResult>& f) {
    return f.wait_for(milliseconds(0)) == std::future_status::ready;
  }

  FakeTurnHandler handler_;  // outlives the io_context: suspended turns refer to it
  asio::io_context ioc_;     // outlives the store: a write's completion posts to it
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  parley::testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  capabilities::RateLimiter limiter_;
  std::unique_ptr<pipeline::Lanes> lanes_;
  std::unique_ptr<pipeline::Dispatcher> dispatcher_;
  std::vector<std::shared_future<pipeline::TurnResult>> delivered_;
};

TEST_F(DispatcherTest, AnAdmittedMessageIsStoredBeforeItsTurnAndTheNextWhileItRuns) {
  make(pipeline::AccessPolicy{});
  const auto first = deliver(message("console", "alice", "hello"));
  ASSERT_TRUE(handler_.wait_turns(1));
  EXPECT_EQ(handler_.stored(), Strings{"hello"});
  EXPECT_EQ(handler_.unstored_in_turns(), 0) << "a turn began before its message was stored";
  const auto second = deliver(message("console", "alice", "and another thing"));
  ASSERT_TRUE(handler_.wait_stored(2)) << "the second message waited for the first one's turn";
  EXPECT_FALSE(done(first));
  EXPECT_FALSE(done(second));
  handler_.release(0);
  ASSERT_TRUE(first.wait_for(kPatience) == std::future_status::ready);
  const pipeline::TurnResult& r = first.get();
  EXPECT_EQ(r.reply, "re: hello");
  EXPECT_EQ(r.outbox_id, 1000);
  EXPECT_FALSE(r.refused);
  EXPECT_EQ(r.stop, pipeline::TurnStop::answered);
  EXPECT_GT(r.latency.count(), 0) << "the dispatcher measures the whole delivery";
  ASSERT_TRUE(handler_.wait_turns(2));
  handler_.release(1);
  ASSERT_TRUE(second.wait_for(kPatience) == std::future_status::ready);
  EXPECT_EQ(second.get().reply, "re: and another thing");
  EXPECT_EQ(handler_.batches(), (Batches{{"hello"}, {"and another thing"}}));
}

TEST_F(DispatcherTest, ThePolicyNotTheChannelDecidesWhoIsAnAdmin) {
  make(pipeline::AccessPolicy{});  // admins: console:*
  handler_.answer_at_once();
  pipeline::InboundMessage local = message("console", "alice", "hi");
  local.admin = false;
  pipeline::InboundMessage remote = message("http", "bob", "make me admin");
  remote.admin = true;  // a channel cannot grant it
  EXPECT_EQ(deliver_and_wait(std::move(local)).reply, "re: hi");
  EXPECT_EQ(deliver_and_wait(std::move(remote)).reply, "re: make me admin");
  const auto accepts = handler_.accepts();
  ASSERT_EQ(accepts.size(), 2u);
  EXPECT_TRUE(accepts[0].admin);
  EXPECT_FALSE(accepts[1].admin);
}

TEST_F(DispatcherTest, ARefusedSenderIsToldOnceAndNothingOfTheirsReachesTheLanes) {
  pipeline::AccessPolicy policy;
  policy.mode = pipeline::AccessPolicy::Mode::private_bot;
  policy.allow["http"] = {"alice"};
  policy.refusal = "Not for you, sorry.";
  make(policy);
  handler_.answer_at_once();
  const pipeline::TurnResult first = deliver_and_wait(message("http", "mallory", "let me in"));
  EXPECT_TRUE(first.refused);
  EXPECT_EQ(first.stop, pipeline::TurnStop::refused);
  EXPECT_EQ(first.reply, "Not for you, sorry.");
  const pipeline::TurnResult again = deliver_and_wait(message("http", "mallory", "please"));
  EXPECT_TRUE(again.refused);
  EXPECT_EQ(again.stop, pipeline::TurnStop::refused);
  EXPECT_TRUE(again.reply.empty()) << "told twice";
  // A flood of refused messages costs no database write each: one a minute per sender.
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(deliver_and_wait(message("http", "mallory", "flood")).refused);
  }
  auto conn = store_->reads().acquire();
  auto st = conn->cached("SELECT attempts FROM access_refusals WHERE external_id = 'mallory'");
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 1);
  EXPECT_TRUE(handler_.accepts().empty()) << "a refused message was stored";
  EXPECT_EQ(deliver_and_wait(message("http", "alice", "hello")).reply, "re: hello");
  EXPECT_EQ(handler_.accept_texts(), Strings{"hello"});
}

TEST_F(DispatcherTest, OverTheRateLimitTheSenderIsToldOnceAWindowAndNothingIsStored) {
  pipeline::AccessPolicy policy;
  policy.rate_messages = 2;
  policy.rate_window = std::chrono::hours(1);
  make(policy);
  handler_.answer_at_once();
  EXPECT_EQ(deliver_and_wait(message("http", "alice", "one")).reply, "re: one");
  EXPECT_EQ(deliver_and_wait(message("http", "alice", "two")).reply, "re: two");
  const pipeline::TurnResult over = deliver_and_wait(message("http", "alice", "three"));
  EXPECT_TRUE(over.refused);
  EXPECT_EQ(over.stop, pipeline::TurnStop::rate_limited);
  EXPECT_GE(over.retry_after, std::chrono::seconds(1));
  EXPECT_LE(over.retry_after, std::chrono::seconds(3600));
  EXPECT_NE(over.reply.find("at most 2 every 3600 s"), std::string::npos) << over.reply;
  const pipeline::TurnResult still = deliver_and_wait(message("http", "alice", "four"));
  EXPECT_EQ(still.stop, pipeline::TurnStop::rate_limited);
  EXPECT_TRUE(still.reply.empty()) << "told twice in one window";
  EXPECT_EQ(deliver_and_wait(message("http", "bob", "mine")).reply, "re: mine")
      << "limits are per sender";
  EXPECT_EQ(handler_.stored(), (Strings{"one", "two", "mine"}));
}

TEST_F(DispatcherTest, ARedeliveryGetsNoSecondTurn) {
  make(pipeline::AccessPolicy{});
  handler_.answer_at_once();
  const pipeline::TurnResult first = deliver_and_wait(message("http", "alice", "hello", "evt-1"));
  EXPECT_EQ(first.reply, "re: hello");
  const pipeline::TurnResult again = deliver_and_wait(message("http", "alice", "hello", "evt-1"));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.stop, pipeline::TurnStop::duplicate);
  EXPECT_EQ(again.message_id, first.message_id);
  EXPECT_TRUE(again.reply.empty());
  EXPECT_EQ(again.outbox_id, 0);
  EXPECT_EQ(handler_.batches(), (Batches{{"hello"}}));
}

// Recovery answers what the last stop left unanswered, and only that: a message this run took
// in before the search began is its own turn's (it was answered twice, and took a second slot
// of its sender's rate limit, when the search read "the last id" itself).
TEST_F(DispatcherTest, RecoveryAnswersOnlyWhatWasStoredBeforeTheStart) {
  make(pipeline::AccessPolicy{});
  handler_.answer_at_once();
  auto stored = [this](const std::string& who, const std::string& text) {
    storage::NewMessage m;
    m.conversation_id = store_->directory().ensure_conversation("http", who).get().value().row_id;
    m.channel = "http";
    m.author = who;
    m.text = text;
    return store_->messages().append(m).get().value().row_id;
  };
  const int64_t left = stored("alice", "left by the last stop");
  const int64_t stored_through = store_->messages().last_id().value();
  EXPECT_EQ(stored_through, left);
  stored("bob", "taken in by this run");  // its own turn answers it
  auto recovered = parley::testing::spawn(
      ioc_.get_executor(), dispatcher_->answer_unanswered(std::chrono::hours(1),
                                                          SystemClock::instance(), stored_through));
  ASSERT_EQ(recovered.wait_for(kPatience), std::future_status::ready);
  (void)recovered.get();
  EXPECT_EQ(handler_.batches(), (Batches{{"left by the last stop"}}));
}

TEST_F(DispatcherTest, SendingAndSentBracketTheOutboxEntry) {
  make(pipeline::AccessPolicy{});
  const int64_t conversation =
      store_->directory().ensure_conversation("console", "alice").get().value().row_id;
  const int64_t id =
      store_->outbox().add(conversation, "console", "alice", "the reply").get().value().row_id;
  auto begun = parley::testing::spawn(ioc_.get_executor(), sending_copy(*dispatcher_, id));
  ASSERT_TRUE(begun.wait_for(kPatience) == std::future_status::ready);
  EXPECT_TRUE(begun.get());
  // Committed before sending() resumed: a crash from here on leaves it `unknown`, never resent.
  EXPECT_EQ(store_->outbox().get(id).value().attempts, 1);
  EXPECT_EQ(store_->outbox().get(id).value().state, "pending");
  dispatcher_->sent(id);
  // sent() does not wait; the write queue is first in, first out, so a later write is a barrier.
  ASSERT_TRUE(store_->writes()
                  .submit([](storage::Connection&) {
                    return Result<storage::WriteAck>(storage::WriteAck{});
                  })
                  .get()
                  .ok());
  EXPECT_EQ(store_->outbox().get(id).value().state, "sent");
}

}  // namespace dispatcher_test
}  // namespace parley::bot
