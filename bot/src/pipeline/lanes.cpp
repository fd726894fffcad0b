#include "parley/bot/pipeline/lanes.h"

#include <spdlog/spdlog.h>

#include <deque>
#include <functional>
#include <optional>
#include <unordered_map>

#include "parley/bot/pipeline/command_router.h"

namespace parley::bot::pipeline {

namespace asio = net::asio;
using SteadyClock = std::chrono::steady_clock;

struct Lanes::Pending {
  Accepted message;  // message.message: the inbound message; the rest once accepted
  SteadyClock::time_point arrived;
  std::function<void(TurnResult)> done;
};

struct Lanes::Lane {
  std::deque<Pending> accepting;  // delivered, not yet stored (in arrival order)
  bool accept_running = false;
  std::deque<Pending> queue;  // stored, waiting for their turn
  bool running = false;       // a turn runs or is about to (debounce)
  SteadyClock::time_point turn_ended;
  std::unique_ptr<asio::steady_timer> timer;  // the debounce wait, on the shard's strand
};

struct Lanes::Shard {
  explicit Shard(const net::Executor& ex) : strand(asio::make_strand(ex)) {}
  asio::strand<net::Executor> strand;
  std::unordered_map<std::string, Lane> lanes;  // only on `strand`
};

Lanes::Lanes(const net::Executor& executor, TurnHandler& engine, LaneOptions options)
    : engine_(engine), options_(options) {
  const size_t n = std::max<size_t>(1, options_.shards);
  shards_.reserve(n);
  for (size_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>(executor));
}

Lanes::~Lanes() = default;

void Lanes::release(Shard& shard, const std::string& key) {
  auto it = shard.lanes.find(key);
  if (it == shard.lanes.end()) return;
  const Lane& lane = it->second;
  if (!lane.running && !lane.accept_running && lane.queue.empty() && lane.accepting.empty()) {
    shard.lanes.erase(it);
  }
}

void Lanes::accept_next(Shard& shard, const std::string& key) {
  // On shard.strand: stores the lane's delivered messages one at a time, in arrival order.
  auto& lane = shard.lanes[key];
  if (lane.accepting.empty()) {
    lane.accept_running = false;
    release(shard, key);
    return;
  }
  lane.accept_running = true;
  auto pending = std::make_shared<Pending>(std::move(lane.accepting.front()));
  lane.accepting.pop_front();
  asio::co_spawn(shard.strand, engine_.accept(pending->message.message),
                 [this, &shard, key, pending](const std::exception_ptr& e, Accepted a) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       a.error = Error{ErrorCode::internal, ex.what()};
                     }
                   }
                   if (a.error || a.duplicate) {
                     pending->done(result_without_turn(a));
                     active_.fetch_sub(1);
                   } else {
                     a.message = std::move(pending->message.message);
                     pending->message = std::move(a);
                     auto& here = shard.lanes[key];
                     here.queue.push_back(std::move(*pending));
                     if (!here.running) {
                       here.running = true;
                       drain(shard, key, false);
                     }
                   }
                   accept_next(shard, key);
                 });
}

void Lanes::drain(Shard& shard, const std::string& key, bool after_turn) {
  // On shard.strand. `running` stays set from the first queued message until the queue is
  // empty.
  auto& lane = shard.lanes[key];
  if (lane.queue.empty()) {
    lane.running = false;
    release(shard, key);
    return;
  }
  if (after_turn && options_.debounce.count() > 0) {
    // Wait for the burst to settle: `debounce` after its last message, within max_wait.
    const auto now = SteadyClock::now();
    const auto settle = lane.queue.back().arrived + options_.debounce;
    const auto limit = lane.turn_ended + options_.max_wait;
    const auto until = std::min(settle, limit);
    if (until > now) {
      if (!lane.timer) lane.timer = std::make_unique<asio::steady_timer>(shard.strand);
      lane.timer->expires_at(until);
      lane.timer->async_wait(
          [this, &shard, key](const boost::system::error_code&) { drain(shard, key, true); });
      return;
    }
  }
  start_turn(shard, key);
}

void Lanes::start_turn(Shard& shard, const std::string& key) {
  auto& lane = shard.lanes[key];
  // The batch: a /command alone; else the queued plain messages in order, up to a command.
  auto batch = std::make_shared<std::vector<Pending>>();
  do {
    const bool command = is_command(lane.queue.front().message.message.text);
    if (command && !batch->empty()) break;
    batch->push_back(std::move(lane.queue.front()));
    lane.queue.pop_front();
    if (command) break;
  } while (!lane.queue.empty() && batch->size() < options_.max_batch &&
           !is_command(lane.queue.front().message.message.text));
  auto accepted = std::make_shared<std::vector<Accepted>>();
  accepted->reserve(batch->size());
  for (const auto& p : *batch) accepted->push_back(p.message);
  asio::co_spawn(shard.strand, engine_.respond(*accepted),
                 [this, &shard, key, batch, accepted](const std::exception_ptr& e, TurnResult r) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       spdlog::error("turn failed: {}", ex.what());
                       r.error = Error{ErrorCode::internal, ex.what()};
                     }
                   }
                   for (size_t i = 0; i < batch->size(); ++i) {
                     TurnResult each = r;
                     each.primary = i + 1 == batch->size();
                     if (!each.primary) each.message_id = (*batch)[i].message.message_id;
                     (*batch)[i].done(std::move(each));
                     active_.fetch_sub(1);
                   }
                   shard.lanes[key].turn_ended = SteadyClock::now();
                   drain(shard, key, true);
                 });
}

asio::awaitable<TurnResult> Lanes::submit(const InboundMessage& message) {
  const std::string key = message.channel + '\x1f' + message.conversation;
  Shard& shard = *shards_[std::hash<std::string>{}(key) % shards_.size()];
  active_.fetch_add(1);
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(TurnResult)>(
      [this, &shard, &key, &message](auto handler) {
        using Handler = decltype(handler);
        net::Executor ex = asio::get_associated_executor(handler);
        auto slot = std::make_shared<std::optional<Handler>>(std::move(handler));
        Accepted delivered;
        delivered.message = message;
        Pending p{std::move(delivered), SteadyClock::now(), [slot, ex](TurnResult r) {
                    asio::post(ex, [slot, r = std::move(r)]() mutable {
                      Handler h = std::move(**slot);  // moved out and emptied first: see net.h
                      slot->reset();
                      std::move(h)(std::move(r));
                    });
                  }};
        asio::post(shard.strand, [this, &shard, key, p = std::move(p)]() mutable {
          auto& lane = shard.lanes[key];
          lane.accepting.push_back(std::move(p));
          if (!lane.accept_running) accept_next(shard, key);
        });
      },
      asio::use_awaitable);
}

}  // namespace parley::bot::pipeline
