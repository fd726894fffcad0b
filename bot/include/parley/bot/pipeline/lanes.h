// Lanes: strict order per conversation. The turns of one conversation run one after another,
// in arrival order; different conversations run concurrently. A conversation's lane lives on
// one of a fixed set of strands (chosen by hashing its key), so no lock guards the lanes: each
// shard's map is touched only on its strand.
//
// The lanes drive a TurnHandler (turn_handler.h; in the bot, the TurnEngine), which they do
// not own and which must outlive them. They have no stop: their callbacks and debounce timers
// refer to them, so the owner destroys them only when none of those can run any more — after
// the io_context's threads are joined (App first waits, within its grace period, for active()
// to reach 0).
//
// Acceptance: each message is first stored (TurnHandler::accept: deduplicated, committed) in
// its lane, one after another in arrival order — so the stored order is the order the channel
// delivered, even when two messages of one conversation arrive at once — while the lane's
// current turn goes on.
//
// Bursts: a message that finds its lane idle starts its turn at once. Messages that arrive
// while a turn runs wait; when it ends, the lane waits until `debounce` has passed since the
// last of them arrived (at most `max_wait` after the turn ended), then answers them together
// in one turn (TurnHandler::respond with the batch): a user who sends three lines in a row gets
// one answer to all three, not three answers to fragments. A /command is never merged: it is
// a turn of its own. debounce 0: no waiting (what queued is still answered together).
//
// Thread safety: submit() may be called from any thread; the turn runs on the lane's strand
// (TurnHandler::respond requires one); the result resumes the caller on its own executor.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "parley/bot/net.h"
#include "parley/bot/pipeline/message.h"
#include "parley/bot/pipeline/options.h"
#include "parley/bot/pipeline/turn_handler.h"

namespace parley::bot::pipeline {

class Lanes {
 public:
  Lanes(const net::Executor& executor, TurnHandler& engine, LaneOptions options = {});
  ~Lanes();
  Lanes(const Lanes&) = delete;
  Lanes& operator=(const Lanes&) = delete;

  // Stores `message` after every message delivered before it in the same conversation, then
  // answers it after every turn queued before it. Merged into a burst, it resumes with the
  // burst's reply and `primary` false unless it is the burst's last message. A duplicate or a
  // storage failure resumes at once (result.duplicate / result.error). `message` by
  // reference: see net.h.
  net::asio::awaitable<TurnResult> submit(const InboundMessage& message);

  [[nodiscard]] size_t active() const { return active_.load(); }  // queued or running messages
  // At LaneOptions::max_active: a new message is to be refused (Dispatcher).
  [[nodiscard]] bool full() const {
    return options_.max_active > 0 && active_.load() >= options_.max_active;
  }

 private:
  struct Pending;
  struct Lane;
  struct Shard;

  void accept_next(Shard& shard, const std::string& key);
  void drain(Shard& shard, const std::string& key, bool after_turn);
  static void release(Shard& shard, const std::string& key);
  void start_turn(Shard& shard, const std::string& key);

  TurnHandler& engine_;
  LaneOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<size_t> active_{0};
};

}  // namespace parley::bot::pipeline
