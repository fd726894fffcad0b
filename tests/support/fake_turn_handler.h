// FakeTurnHandler: a TurnHandler (bot/pipeline/turn_handler.h) for the tests of the lanes and
// the dispatcher, where the test decides when each turn ends — so ordering, merging and
// concurrency are checked without sleeping.
//
// accept() "stores" in memory: ids count from 1 in the order accepts complete; a platform id
// seen before on the channel is a duplicate (with the first one's id); the text
// kStoreFails fails with `unavailable`, kAcceptThrows throws. With hold_accepts(), each accept
// first waits until the test calls release_accept(n).
// respond() records the batch, then waits until the test calls release(n) for it (n: the
// turn's index in start order) or answer_at_once() was called; it answers "re: a|b|c" (the
// batch's texts) for the batch's last message, and throws when the batch holds kTurnThrows.
// It also counts what the lanes promise never happens: two turns (or accepts) of one
// conversation at once, a turn given a message that was not stored first.
//
// Gate: a one-shot latch a coroutine awaits without blocking a thread, opened from any thread.
//
// Waits (wait_turns, wait_accepts, …) give up after kPatience, which matters only when a test
// fails. Thread safety: every public method may be called from any thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "parley/bot/net.h"
#include "parley/bot/pipeline/message.h"
#include "parley/bot/pipeline/turn_handler.h"
#include "support/spawn.h"

namespace parley::testing {

inline constexpr const char* kStoreFails = "!store-fails";
inline constexpr const char* kAcceptThrows = "!accept-throws";
inline constexpr const char* kTurnThrows = "!turn-throws";

class Gate {
 public:
  // Resumes the awaiting coroutine on its own executor once open() has been called (at once if
  // it was). One waiter at a time.
  net::asio::awaitable<void> wait() {
    namespace asio = net::asio;
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [this](auto handler) {
          using Handler = decltype(handler);
          net::Executor ex = asio::get_associated_executor(handler);
          auto slot = std::make_shared<std::optional<Handler>>(std::move(handler));
          std::function<void()> resume = [slot, ex] {
            asio::post(ex, [slot] {
              Handler h = std::move(**slot);  // moved out and emptied first: see net.h
              slot->reset();
              std::move(h)();
            });
          };
          std::unique_lock lock(mu_);
          if (!open_) {
            waiter_ = std::move(resume);
            return;
          }
          lock.unlock();
          resume();
        },
        asio::use_awaitable);
  }

  void open() {
    std::function<void()> resume;
    {
      const std::lock_guard lock(mu_);
      open_ = true;
      resume = std::move(waiter_);
      waiter_ = nullptr;
    }
    if (resume) resume();
  }

 private:
  std::mutex mu_;
  bool open_ = false;             // GUARDED_BY(mu_)
  std::function<void()> waiter_;  // GUARDED_BY(mu_)
};

class FakeTurnHandler final : public bot::pipeline::TurnHandler {
 public:
  struct Turn {
    std::string conversation;  // channel/conversation
    std::vector<std::string> texts;
    std::vector<int64_t> message_ids;
    std::chrono::steady_clock::time_point started;
  };
  struct Accept {
    std::string text;
    bool admin = false;  // as the message arrived (the dispatcher sets it)
  };

  net::asio::awaitable<bot::pipeline::Accepted> accept(
      const bot::pipeline::InboundMessage& message) override {
    bot::pipeline::Accepted out;
    out.message = message;  // copied before the first suspension
    const std::string key = conversation_key(message);
    std::shared_ptr<Gate> gate;
    {
      const std::lock_guard lock(mu_);
      const size_t index = accepts_.size();
      accepts_.push_back({message.text, message.admin});
      max_accepting_ = std::max(max_accepting_, ++accepting_[key]);
      if (hold_accepts_) gate = gate_for(accept_gates_, index);
    }
    cv_.notify_all();
    if (gate) co_await gate->wait();
    {
      const std::lock_guard lock(mu_);
      --accepting_[key];
      const auto& in = out.message;
      if (in.text == kStoreFails) {
        out.error = Error{ErrorCode::unavailable, "the fake store is down"};
      } else if (in.text != kAcceptThrows) {
        out.conversation_id = id_of(conversations_, key);
        out.user_id = id_of(users_, in.channel + '/' + in.author);
        const auto seen = in.platform_id ? platform_ids_.find(in.channel + '/' + *in.platform_id)
                                         : platform_ids_.end();
        if (seen != platform_ids_.end()) {
          out.duplicate = true;
          out.message_id = seen->second;
        } else {
          out.message_id = static_cast<int64_t>(stored_.size()) + 1;
          stored_.push_back(in.text);
          stored_ids_.insert(out.message_id);
          if (in.platform_id) platform_ids_[in.channel + '/' + *in.platform_id] = out.message_id;
        }
      }
    }
    cv_.notify_all();
    if (out.message.text == kAcceptThrows) throw std::runtime_error("the fake accept threw");
    co_return out;
  }

  net::asio::awaitable<bot::pipeline::TurnResult> respond(
      const std::vector<bot::pipeline::Accepted>& batch) override {
    Turn turn;
    turn.conversation = conversation_key(batch.back().message);
    turn.started = std::chrono::steady_clock::now();
    bool throws = false;
    for (const auto& a : batch) {
      turn.texts.push_back(a.message.text);
      turn.message_ids.push_back(a.message_id);
      throws = throws || a.message.text == kTurnThrows;
    }
    bot::pipeline::TurnResult out;  // made before the wait: `batch` is read only before it
    out.reply = "re:";
    for (size_t i = 0; i < turn.texts.size(); ++i)
      out.reply += (i == 0 ? " " : "|") + turn.texts[i];
    out.user_id = batch.back().user_id;
    out.conversation_id = batch.back().conversation_id;
    out.message_id = batch.back().message_id;
    const std::string key = turn.conversation;
    std::shared_ptr<Gate> gate;
    size_t index = 0;
    {
      const std::lock_guard lock(mu_);
      index = turns_.size();
      for (const auto id : turn.message_ids) {
        if (stored_ids_.count(id) == 0) ++unstored_in_turns_;
      }
      turns_.push_back(turn);
      max_running_in_conversation_ = std::max(max_running_in_conversation_, ++running_[key]);
      max_running_ = std::max(max_running_, ++running_all_);
      if (!answer_at_once_) gate = gate_for(turn_gates_, index);
    }
    out.outbox_id = 1000 + static_cast<int64_t>(index);
    cv_.notify_all();
    if (gate) co_await gate->wait();
    {
      const std::lock_guard lock(mu_);
      --running_[key];
      --running_all_;
    }
    if (throws) throw std::runtime_error("the fake turn threw");
    co_return out;
  }

  // Lets the n-th turn (0-based, in the order turns started) end; it may not have started yet.
  void release(size_t n) { open(turn_gates_, n); }
  // Every accept waits for release_accept(n) (n: 0-based, in the order accepts began).
  void hold_accepts() {
    const std::lock_guard lock(mu_);
    hold_accepts_ = true;
  }
  void release_accept(size_t n) { open(accept_gates_, n); }
  // No turn waits any more, and no accept; those waiting now end.
  void answer_at_once() {
    std::vector<std::shared_ptr<Gate>> waiting;
    {
      const std::lock_guard lock(mu_);
      answer_at_once_ = true;
      hold_accepts_ = false;
      for (const auto& entry : turn_gates_) waiting.push_back(entry.second);
      for (const auto& entry : accept_gates_) waiting.push_back(entry.second);
    }
    for (auto& g : waiting) g->open();
  }

  // Until `n` turns (accepts) have started, or `n` messages are stored; false after kPatience.
  bool wait_turns(size_t n) {
    return wait_until([&] { return turns_.size() >= n; });
  }
  bool wait_accepts(size_t n) {
    return wait_until([&] { return accepts_.size() >= n; });
  }
  bool wait_stored(size_t n) {
    return wait_until([&] { return stored_.size() >= n; });
  }

  std::vector<Turn> turns() const {
    const std::lock_guard lock(mu_);
    return turns_;
  }
  // The texts of the turns' batches, in the order the turns started.
  std::vector<std::vector<std::string>> batches() const {
    const std::lock_guard lock(mu_);
    std::vector<std::vector<std::string>> out;
    for (const auto& t : turns_) out.push_back(t.texts);
    return out;
  }
  std::vector<Accept> accepts() const {  // in the order accepts began
    const std::lock_guard lock(mu_);
    return accepts_;
  }
  std::vector<std::string> accept_texts() const {
    const std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& a : accepts_) out.push_back(a.text);
    return out;
  }
  std::vector<std::string> stored() const {  // texts in the order they were stored
    const std::lock_guard lock(mu_);
    return stored_;
  }
  int max_running_in_conversation() const {
    const std::lock_guard lock(mu_);
    return max_running_in_conversation_;
  }
  int max_running() const {
    const std::lock_guard lock(mu_);
    return max_running_;
  }
  int max_accepting_in_conversation() const {
    const std::lock_guard lock(mu_);
    return max_accepting_;
  }
  int unstored_in_turns() const {
    const std::lock_guard lock(mu_);
    return unstored_in_turns_;
  }

 private:
  static std::string conversation_key(const bot::pipeline::InboundMessage& m) {
    return m.channel + '/' + m.conversation;
  }
  static int64_t id_of(std::map<std::string, int64_t>& ids, const std::string& key) {
    return ids.try_emplace(key, static_cast<int64_t>(ids.size()) + 1).first->second;
  }
  // REQUIRES: mu_ held.
  static std::shared_ptr<Gate> gate_for(std::map<size_t, std::shared_ptr<Gate>>& gates, size_t n) {
    auto& g = gates[n];
    if (!g) g = std::make_shared<Gate>();
    return g;
  }
  void open(std::map<size_t, std::shared_ptr<Gate>>& gates, size_t n) {
    std::shared_ptr<Gate> g;
    {
      const std::lock_guard lock(mu_);
      g = gate_for(gates, n);
    }
    g->open();
  }
  bool wait_until(const std::function<bool()>& done) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kPatience, done);
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // All GUARDED_BY(mu_):
  std::vector<Accept> accepts_;
  std::vector<std::string> stored_;
  std::set<int64_t> stored_ids_;
  std::map<std::string, int64_t> platform_ids_;  // channel/platform id -> message id
  std::map<std::string, int64_t> conversations_;
  std::map<std::string, int64_t> users_;
  std::vector<Turn> turns_;
  std::map<size_t, std::shared_ptr<Gate>> turn_gates_;
  std::map<size_t, std::shared_ptr<Gate>> accept_gates_;
  bool hold_accepts_ = false;
  bool answer_at_once_ = false;
  std::map<std::string, int> accepting_;  // accepts in progress per conversation
  std::map<std::string, int> running_;    // turns in progress per conversation
  int running_all_ = 0;
  int max_accepting_ = 0;
  int max_running_in_conversation_ = 0;
  int max_running_ = 0;
  int unstored_in_turns_ = 0;
};

}  // namespace parley::testing
