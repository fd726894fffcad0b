// Lanes over a fake TurnHandler whose turns end when the test says (support/fake_turn_handler.h):
// one turn at a time per conversation in arrival order, conversations concurrent, acceptance in
// arrival order and during a turn, a burst answered by one batch (at most max_batch messages, a
// /command alone), the debounce and its max_wait bound, redeliveries and failures resumed at
// once, and active() counting until the last result.
//
// What the tests control: the io_context runs on one thread, so messages submitted one after
// another reach the lanes in that order, and a result handed back means the lanes' bookkeeping
// for it is done; every turn (and, after hold_accepts(), every accept) waits on a gate the test
// opens. Waits are on futures and condition variables whose patience (10 s) only a failing test
// reaches. The debounce is real time (Lanes arms an asio steady_timer): the tests use windows of
// 0 (none), 1 h (never waited for: a test that needed it would time out) or 50 ms, and assert
// only lower bounds, which a timer guarantees (it never fires early).
#include "parley/bot/pipeline/lanes.h"

#include <gtest/gtest.h>

#include <thread>

#include "support/fake_turn_handler.h"
#include "support/spawn.h"

namespace parley::bot {
namespace lanes_test {

namespace asio = net::asio;
using parley::testing::FakeTurnHandler;
using parley::testing::kAcceptThrows;
using parley::testing::kPatience;
using parley::testing::kStoreFails;
using parley::testing::kTurnThrows;
using std::chrono::milliseconds;
using Strings = std::vector<std::string>;
using Batches = std::vector<Strings>;
using Future = std::shared_future<pipeline::TurnResult>;

constexpr milliseconds kNever{3'600'000};  // a window no test waits for
constexpr milliseconds kShort{50};

asio::awaitable<pipeline::TurnResult> submit_copy(pipeline::Lanes& lanes,
                                                  pipeline::InboundMessage message) {
  co_return co_await lanes.submit(message);
}

pipeline::LaneOptions options(milliseconds debounce, milliseconds max_wait, size_t max_batch = 16,
                              size_t shards = 64) {
  pipeline::LaneOptions o;
  o.shards = shards;
  o.debounce = debounce;
  o.max_wait = max_wait;
  o.max_batch = max_batch;
  return o;
}

class LanesTest : public ::testing::Test {
 protected:
  LanesTest() : work_(asio::make_work_guard(ioc_)) {
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~LanesTest() override {
    // Every turn let go and every message answered before the lanes go: their callbacks use
    // them. Only then is the io_context stopped.
    handler_.answer_at_once();
    bool answered = true;
    for (auto& f : submitted_)
      answered = answered && f.wait_for(kPatience) == std::future_status::ready;
    EXPECT_TRUE(answered) << "a message was never answered";
    if (lanes_ && answered) {
      EXPECT_EQ(lanes_->active(), 0u);
    }
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  void start(pipeline::LaneOptions o) {
    lanes_ = std::make_unique<pipeline::Lanes>(ioc_.get_executor(), handler_, o);
  }

  Future submit(const std::string& conversation, const std::string& text,
                std::optional<std::string> platform_id = std::nullopt) {
    pipeline::InboundMessage m;
    m.channel = "console";
    m.conversation = conversation;
    m.author = "alice";
    m.text = text;
    m.platform_id = std::move(platform_id);
    Future f =
        parley::testing::spawn(ioc_.get_executor(), submit_copy(*lanes_, std::move(m))).share();
    submitted_.push_back(f);
    return f;
  }

  // The result, or (after kPatience) a failure and an empty result.
  static pipeline::TurnResult result(const Future& f) {
    if (f.wait_for(kPatience) != std::future_status::ready) {
      ADD_FAILURE() << "no result";
      return {};
    }
    return f.get();
  }
  static bool done(const Future& f) {
    return f.wait_for(milliseconds(0)) == std::future_status::ready;
  }

  // The index (in start order) of the turn whose batch holds `text`.
  size_t turn_of(const std::string& text) {
    const auto batches = handler_.batches();
    for (size_t i = 0; i < batches.size(); ++i) {
      if (std::find(batches[i].begin(), batches[i].end(), text) != batches[i].end()) return i;
    }
    ADD_FAILURE() << "no turn has " << text;
    return batches.size();
  }

  FakeTurnHandler handler_;  // outlives the io_context: suspended turns refer to it
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<pipeline::Lanes> lanes_;
  std::vector<Future> submitted_;
};

TEST_F(LanesTest, AMessageOnAnIdleLaneIsStoredThenAnsweredAtOnceWithoutWaitingForTheDebounce) {
  start(options(kNever, kNever));
  const Future f = submit("a", "hello");
  ASSERT_TRUE(handler_.wait_turns(1)) << "the first message of an idle lane waited";
  EXPECT_EQ(handler_.batches(), (Batches{{"hello"}}));
  EXPECT_EQ(handler_.unstored_in_turns(), 0) << "a turn was given a message not stored first";
  EXPECT_FALSE(done(f));
  handler_.release(0);
  const pipeline::TurnResult r = result(f);
  EXPECT_EQ(r.reply, "re: hello");
  EXPECT_TRUE(r.primary);
  EXPECT_EQ(r.message_id, 1);
  EXPECT_EQ(r.outbox_id, 1000);
  EXPECT_FALSE(r.error.has_value());
}

TEST_F(LanesTest, TheTurnsOfOneConversationRunOneAtATimeInArrivalOrder) {
  start(options(milliseconds(0), milliseconds(0), /*max_batch=*/1));  // a turn per message
  const Strings texts{"one", "two", "three", "four"};
  std::vector<Future> f;
  for (const auto& t : texts) f.push_back(submit("a", t));
  ASSERT_TRUE(handler_.wait_stored(4));
  EXPECT_EQ(handler_.stored(), texts);
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_TRUE(handler_.wait_turns(i + 1));
    EXPECT_EQ(handler_.turns().size(), i + 1)
        << "turn " << i + 1 << " began before turn " << i << " ended";
    for (size_t j = i; j < texts.size(); ++j) EXPECT_FALSE(done(f[j])) << texts[j];
    handler_.release(i);
    EXPECT_EQ(result(f[i]).reply, "re: " + texts[i]);
  }
  EXPECT_EQ(handler_.batches(), (Batches{{"one"}, {"two"}, {"three"}, {"four"}}));
  EXPECT_EQ(handler_.max_running_in_conversation(), 1);
}

TEST_F(LanesTest, ConversationsRunConcurrentlyEvenOnOneShard) {
  start(options(milliseconds(0), milliseconds(0), 16, /*shards=*/1));
  const Future a = submit("a", "from a");
  const Future b = submit("b", "from b");
  ASSERT_TRUE(handler_.wait_turns(2)) << "b's turn waited for a's";
  EXPECT_EQ(handler_.max_running(), 2);
  handler_.release(turn_of("from b"));
  EXPECT_EQ(result(b).reply, "re: from b");
  EXPECT_FALSE(done(a)) << "a's turn is still running";
  handler_.release(turn_of("from a"));
  EXPECT_EQ(result(a).reply, "re: from a");
  EXPECT_NE(result(a).conversation_id, result(b).conversation_id);
}

TEST_F(LanesTest, AcceptanceIsInArrivalOrderOneAtATimePerLaneAndGoesOnDuringATurn) {
  start(options(milliseconds(0), milliseconds(0), /*max_batch=*/1, /*shards=*/1));
  handler_.hold_accepts();
  const Future a1 = submit("a", "a1");
  const Future a2 = submit("a", "a2");
  const Future b1 = submit("b", "b1");
  ASSERT_TRUE(handler_.wait_accepts(2));
  // One shard: the three arrivals reach its strand in this order, so had a2's accept begun
  // beside a1's, it would have begun before b1's.
  EXPECT_EQ(handler_.accept_texts(), (Strings{"a1", "b1"}));
  handler_.release_accept(1);  // b1 stored: its lane does not wait for a's
  ASSERT_TRUE(handler_.wait_turns(1));
  EXPECT_EQ(handler_.batches(), (Batches{{"b1"}}));
  handler_.release_accept(0);  // a1 stored: its turn begins, and a2's accept beside it
  ASSERT_TRUE(handler_.wait_turns(2));
  ASSERT_TRUE(handler_.wait_accepts(3));
  EXPECT_EQ(handler_.accept_texts(), (Strings{"a1", "b1", "a2"}));
  handler_.release_accept(2);
  ASSERT_TRUE(handler_.wait_stored(3)) << "a2 was not stored while a1's turn ran";
  EXPECT_EQ(handler_.stored(), (Strings{"b1", "a1", "a2"}));
  EXPECT_EQ(handler_.max_accepting_in_conversation(), 1);
  EXPECT_EQ(handler_.turns().size(), 2u);
  handler_.release(0);
  handler_.release(1);
  ASSERT_TRUE(handler_.wait_turns(3));
  handler_.release(2);
  EXPECT_EQ(result(a1).reply, "re: a1");
  EXPECT_EQ(result(a2).reply, "re: a2");
  EXPECT_EQ(result(b1).reply, "re: b1");
  EXPECT_EQ(handler_.batches(), (Batches{{"b1"}, {"a1"}, {"a2"}}));
}

TEST_F(LanesTest, ABurstDuringATurnIsAnsweredByOneTurnAndEveryMessageResumesWithItsReply) {
  start(options(milliseconds(0), milliseconds(0)));
  const Future first = submit("a", "hi");
  ASSERT_TRUE(handler_.wait_turns(1));
  const Future m2 = submit("a", "I mean");
  const Future m3 = submit("a", "the other one");
  const Future m4 = submit("a", "thanks");
  ASSERT_TRUE(handler_.wait_stored(4));
  EXPECT_EQ(handler_.turns().size(), 1u);
  handler_.release(0);
  EXPECT_EQ(result(first).reply, "re: hi");
  ASSERT_TRUE(handler_.wait_turns(2));
  EXPECT_EQ(handler_.batches()[1], (Strings{"I mean", "the other one", "thanks"}));
  handler_.release(1);
  const std::string reply = "re: I mean|the other one|thanks";
  const pipeline::TurnResult r2 = result(m2);
  const pipeline::TurnResult r3 = result(m3);
  const pipeline::TurnResult r4 = result(m4);
  EXPECT_EQ(r2.reply, reply);
  EXPECT_EQ(r3.reply, reply);
  EXPECT_EQ(r4.reply, reply);
  // Only the last one carries the reply for a channel that sends; each keeps its own message.
  EXPECT_FALSE(r2.primary);
  EXPECT_FALSE(r3.primary);
  EXPECT_TRUE(r4.primary);
  EXPECT_EQ(r2.message_id, 2);
  EXPECT_EQ(r3.message_id, 3);
  EXPECT_EQ(r4.message_id, 4);
  EXPECT_EQ(r4.outbox_id, 1001);
  EXPECT_EQ(handler_.turns().size(), 2u);
}

TEST_F(LanesTest, ATurnAnswersAtMostMaxBatchMessages) {
  start(options(milliseconds(0), milliseconds(0), /*max_batch=*/2));
  const Future first = submit("a", "0");
  ASSERT_TRUE(handler_.wait_turns(1));
  std::vector<Future> f;
  for (const char* t : {"1", "2", "3", "4", "5"}) f.push_back(submit("a", t));
  ASSERT_TRUE(handler_.wait_stored(6));
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(handler_.wait_turns(i + 1));
    handler_.release(i);
  }
  EXPECT_EQ(handler_.batches(), (Batches{{"0"}, {"1", "2"}, {"3", "4"}, {"5"}}));
  const std::vector<bool> primary{false, true, false, true, true};
  for (size_t i = 0; i < f.size(); ++i) EXPECT_EQ(result(f[i]).primary, primary[i]) << i;
  EXPECT_EQ(result(f[3]).reply, "re: 3|4");
}

TEST_F(LanesTest, ACommandIsATurnOfItsOwn) {
  start(options(milliseconds(0), milliseconds(0)));
  const Future first = submit("a", "hello");
  ASSERT_TRUE(handler_.wait_turns(1));
  std::vector<Future> f;
  for (const char* t : {"x", "y", "/help", "/time", "z"}) f.push_back(submit("a", t));
  ASSERT_TRUE(handler_.wait_stored(6));
  for (size_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(handler_.wait_turns(i + 1));
    handler_.release(i);
  }
  EXPECT_EQ(handler_.batches(), (Batches{{"hello"}, {"x", "y"}, {"/help"}, {"/time"}, {"z"}}));
  EXPECT_EQ(result(f[2]).reply, "re: /help");
  EXPECT_TRUE(result(f[2]).primary);
}

TEST_F(LanesTest, ABurstAfterATurnWaitsForTheDebounceAfterItsLastMessage) {
  start(options(kShort, kNever));
  const Future first = submit("a", "first");
  ASSERT_TRUE(handler_.wait_turns(1));
  const Future second = submit("a", "second");
  const auto before_last = std::chrono::steady_clock::now();
  const Future third = submit("a", "third");
  ASSERT_TRUE(handler_.wait_stored(3));
  handler_.release(0);
  ASSERT_TRUE(handler_.wait_turns(2));
  EXPECT_GE(handler_.turns()[1].started - before_last, kShort)
      << "the burst's turn began before it settled";
  EXPECT_EQ(handler_.batches()[1], (Strings{"second", "third"}));
  handler_.release(1);
  EXPECT_EQ(result(third).reply, "re: second|third");
}

TEST_F(LanesTest, MaxWaitBoundsTheDebounce) {
  start(options(kNever, kShort));
  const Future first = submit("a", "first");
  ASSERT_TRUE(handler_.wait_turns(1));
  const Future second = submit("a", "second");
  ASSERT_TRUE(handler_.wait_stored(2));
  const auto released = std::chrono::steady_clock::now();  // the turn ends after this
  handler_.release(0);
  ASSERT_TRUE(handler_.wait_turns(2)) << "the burst waited for the debounce, not max_wait";
  EXPECT_GE(handler_.turns()[1].started - released, kShort) << "the burst did not wait at all";
  handler_.release(1);
  EXPECT_EQ(result(second).reply, "re: second");
}

TEST_F(LanesTest, ARedeliveryResumesAtOnceWithoutATurnWhileTheLaneIsBusy) {
  start(options(milliseconds(0), milliseconds(0)));
  const Future first = submit("a", "hello", "p1");
  ASSERT_TRUE(handler_.wait_turns(1));
  const Future again = submit("a", "hello", "p1");
  const pipeline::TurnResult r = result(again);
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.stop, pipeline::TurnStop::duplicate);
  EXPECT_EQ(r.message_id, 1);
  EXPECT_TRUE(r.reply.empty());
  EXPECT_FALSE(done(first));
  handler_.release(0);
  EXPECT_EQ(result(first).reply, "re: hello");
  const Future after = submit("a", "after");
  ASSERT_TRUE(handler_.wait_turns(2));
  handler_.release(1);
  EXPECT_EQ(result(after).reply, "re: after");
  EXPECT_EQ(handler_.batches(), (Batches{{"hello"}, {"after"}})) << "the redelivery got a turn";
}

TEST_F(LanesTest, AStorageFailureResumesAtOnceAndTheLaneGoesOn) {
  start(options(milliseconds(0), milliseconds(0)));
  const Future first = submit("a", "first");
  ASSERT_TRUE(handler_.wait_turns(1));
  const pipeline::TurnResult failed = result(submit("a", kStoreFails));
  ASSERT_TRUE(failed.error.has_value());
  EXPECT_EQ(failed.error->code, ErrorCode::unavailable);
  EXPECT_EQ(failed.stop, pipeline::TurnStop::storage_error);
  EXPECT_FALSE(failed.duplicate);
  const pipeline::TurnResult threw = result(submit("a", kAcceptThrows));
  ASSERT_TRUE(threw.error.has_value());
  EXPECT_EQ(threw.error->code, ErrorCode::internal);
  EXPECT_NE(threw.error->message.find("the fake accept threw"), std::string::npos);
  EXPECT_EQ(threw.stop, pipeline::TurnStop::storage_error);
  const Future next = submit("a", "still here");
  ASSERT_TRUE(handler_.wait_stored(2));
  handler_.release(0);
  ASSERT_TRUE(handler_.wait_turns(2));
  handler_.release(1);
  EXPECT_EQ(result(next).reply, "re: still here");
  EXPECT_EQ(handler_.batches(), (Batches{{"first"}, {"still here"}}));
}

TEST_F(LanesTest, AFailedTurnResumesItsMessagesWithAnErrorAndTheLaneGoesOn) {
  start(options(milliseconds(0), milliseconds(0)));
  const Future bad = submit("a", kTurnThrows);
  ASSERT_TRUE(handler_.wait_turns(1));
  const Future next = submit("a", "next");
  ASSERT_TRUE(handler_.wait_stored(2));
  handler_.release(0);
  const pipeline::TurnResult r = result(bad);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->code, ErrorCode::internal);
  EXPECT_NE(r.error->message.find("the fake turn threw"), std::string::npos);
  ASSERT_TRUE(handler_.wait_turns(2)) << "the lane stopped after a failed turn";
  handler_.release(1);
  const pipeline::TurnResult ok = result(next);
  EXPECT_EQ(ok.reply, "re: next");
  EXPECT_FALSE(ok.error.has_value());
}

TEST_F(LanesTest, ActiveCountsEveryMessageUntilItsResultIsHandedBack) {
  // What a shutdown drains on (App::shutdown waits for active() == 0).
  start(options(milliseconds(0), milliseconds(0)));
  EXPECT_EQ(lanes_->active(), 0u);
  const Future a1 = submit("a", "a1", "p1");
  ASSERT_TRUE(handler_.wait_turns(1));
  const Future a2 = submit("a", "a2");
  const Future a3 = submit("a", "a3");
  const Future b1 = submit("b", "b1");
  ASSERT_TRUE(handler_.wait_turns(2));
  ASSERT_TRUE(handler_.wait_stored(4));
  EXPECT_EQ(lanes_->active(), 4u);  // two running, two queued
  const Future dup = submit("a", "a1", "p1");
  ASSERT_TRUE(dup.wait_for(kPatience) == std::future_status::ready);
  EXPECT_EQ(lanes_->active(), 4u) << "a redelivery is counted until it resumes, not after";
  handler_.release(turn_of("b1"));
  ASSERT_TRUE(b1.wait_for(kPatience) == std::future_status::ready);
  EXPECT_EQ(lanes_->active(), 3u);
  handler_.release(turn_of("a1"));
  ASSERT_TRUE(a1.wait_for(kPatience) == std::future_status::ready);
  EXPECT_EQ(lanes_->active(), 2u);
  ASSERT_TRUE(handler_.wait_turns(3));
  handler_.release(2);
  EXPECT_EQ(result(a2).reply, "re: a2|a3");
  EXPECT_EQ(result(a3).reply, "re: a2|a3");
  EXPECT_EQ(lanes_->active(), 0u);
}

}  // namespace lanes_test
}  // namespace parley::bot
