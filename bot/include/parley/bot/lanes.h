// Lanes: strict order per conversation. The turns of one conversation run one after another,
// in arrival order; different conversations run concurrently. A conversation's lane lives on
// one of a fixed set of strands (chosen by hashing its key), so no lock guards the lanes: each
// shard's map is touched only on its strand.
//
// Thread safety: submit() may be called from any thread; the turn runs on the lane's strand
// (TurnEngine::run requires one); the result resumes the caller on its own executor.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "parley/bot/net.h"
#include "parley/bot/turn.h"

namespace parley::bot {

class Lanes {
 public:
  Lanes(net::Executor executor, TurnEngine& engine, size_t shards = 64);
  ~Lanes();
  Lanes(const Lanes&) = delete;
  Lanes& operator=(const Lanes&) = delete;

  // Runs the message's turn after every turn queued before it in the same conversation.
  // `message` is taken by reference: the caller's named local outlives the wait (see net.h).
  net::asio::awaitable<TurnResult> submit(const InboundMessage& message);

  [[nodiscard]] size_t active() const { return active_.load(); }  // queued or running turns

 private:
  struct Pending;
  struct Lane;
  struct Shard;

  void drain(Shard& shard, const std::string& key);

  TurnEngine& engine_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<size_t> active_{0};
};

}  // namespace parley::bot
