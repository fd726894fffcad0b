#include "parley/bot/lanes.h"

#include <spdlog/spdlog.h>

#include <optional>

namespace parley::bot {

namespace asio = net::asio;

struct Lanes::Pending {
  InboundMessage message;
  std::function<void(TurnResult)> done;
};

struct Lanes::Lane {
  std::deque<Pending> queue;
  bool running = false;
};

struct Lanes::Shard {
  explicit Shard(const net::Executor& ex) : strand(asio::make_strand(ex)) {}
  asio::strand<net::Executor> strand;
  std::unordered_map<std::string, Lane> lanes;  // only on `strand`
};

Lanes::Lanes(net::Executor executor, TurnEngine& engine, size_t shards) : engine_(engine) {
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>(executor));
}

Lanes::~Lanes() = default;

void Lanes::drain(Shard& shard, const std::string& key) {
  // Runs on shard.strand: takes the lane's next message and runs its turn; when the turn ends,
  // comes back for the next one, until the lane is empty.
  auto& lane = shard.lanes[key];
  if (lane.queue.empty()) {
    shard.lanes.erase(key);
    return;
  }
  auto pending = std::make_shared<Pending>(std::move(lane.queue.front()));
  lane.queue.pop_front();
  asio::co_spawn(shard.strand, engine_.run(pending->message),
                 [this, &shard, key, pending](std::exception_ptr e, TurnResult r) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       spdlog::error("turn failed: {}", ex.what());
                       r.error = Error{ErrorCode::internal, ex.what()};
                     }
                   }
                   pending->done(std::move(r));
                   active_.fetch_sub(1);
                   drain(shard, key);
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
        Pending p{message, [slot, ex](TurnResult r) {
                    asio::post(ex, [slot, r = std::move(r)]() mutable {
                      Handler h = std::move(**slot);  // moved out and emptied first: see net.h
                      slot->reset();
                      std::move(h)(std::move(r));
                    });
                  }};
        asio::post(shard.strand, [this, &shard, key, p = std::move(p)]() mutable {
          auto& lane = shard.lanes[key];
          lane.queue.push_back(std::move(p));
          if (lane.running) return;
          lane.running = true;
          drain(shard, key);
        });
      },
      asio::use_awaitable);
}

}  // namespace parley::bot
