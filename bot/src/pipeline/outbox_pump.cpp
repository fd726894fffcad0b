#include "parley/bot/pipeline/outbox_pump.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace parley::bot::pipeline {

namespace asio = net::asio;

namespace {
// Sends under way at once (a slow SMTP server or REST route does not hold up the others); never
// two to the same conversation, so the parts of a reply arrive in order.
constexpr size_t kMaxInFlight = 8;
// How far down the queue next() looks for an entry whose conversation is free.
constexpr size_t kScanDepth = 64;
}  // namespace

// ---------------------------------------------------------------------------------------------

struct OutboxPump::State : std::enable_shared_from_this<OutboxPump::State> {
  State(const net::Executor& ex, storage::Store& s, std::chrono::milliseconds r)
      : strand(asio::make_strand(ex)), store(s), retry(r) {}
  asio::strand<net::Executor> strand;
  storage::Store& store;
  const std::chrono::milliseconds retry;
  std::map<std::string, channels::Channel*> channels;  // set before start()
  // Only on `strand`:
  std::deque<int64_t> queue;
  std::set<int64_t> queued;       // in `queue` or being sent
  std::set<std::string> sending;  // channel + '\n' + target of each send under way
  size_t in_flight = 0;
  bool stopped = false;
  std::vector<std::unique_ptr<asio::steady_timer>> retries;
  std::atomic<uint64_t> sent{0};
  std::atomic<bool> idle{true};

  void enqueue(int64_t id) {
    if (!queued.insert(id).second) return;  // already queued or being sent
    queue.push_back(id);
    idle = false;
    next();
  }

  void next() {
    size_t scanned = 0;
    for (auto it = queue.begin();
         it != queue.end() && !stopped && in_flight < kMaxInFlight && scanned < kScanDepth;) {
      ++scanned;
      const int64_t id = *it;
      auto entry = store.outbox().get(id);
      auto channel = entry ? channels.find(entry->channel) : channels.end();
      // Not pending any more, or its channel is not here (or cannot push: it stays pending).
      if (!entry || entry->state != "pending" || channel == channels.end()) {
        queued.erase(id);
        it = queue.erase(it);
        continue;
      }
      std::string key = entry->channel + '\n' + entry->target;
      if (sending.count(key) != 0) {
        ++it;  // its conversation has a send under way: after that one
        continue;
      }
      it = queue.erase(it);
      sending.insert(key);
      ++in_flight;
      send(
          channels::OutboundMessage{entry->id, entry->target, entry->body, std::move(entry->files)},
          channel->second, std::move(key));
    }
    if (queue.empty() && in_flight == 0) idle = retries.empty();
  }

  void send(channels::OutboundMessage msg, channels::Channel* channel, std::string key) {
    auto self = shared_from_this();
    // Recorded before the send: after a crash from here on, it may have happened.
    const int64_t id = msg.outbox_id;
    store.outbox().begin_send(id, [self, channel, msg = std::move(msg),
                                   key = std::move(key)](const Result<storage::WriteAck>& begun) {
      if (!begun) {
        // not_found: no longer pending (sent or settled meanwhile) — nothing to do. Otherwise
        // the database refused: try again later.
        const bool gone = begun.error().code == ErrorCode::not_found;
        if (!gone) {
          spdlog::error("outbox: cannot record the send of entry {}: {}", msg.outbox_id,
                        begun.error().describe());
        }
        asio::post(self->strand,
                   [self, id = msg.outbox_id, gone, key] { self->finished(id, gone, key); });
        return;
      }
      channel->send(msg, [self, id = msg.outbox_id, key](const Status& st) {
        if (!st.ok()) {
          spdlog::warn("outbox: sending entry {} failed: {}", id, st.error().describe());
          (void)self->store.outbox().mark_failed(id, st.error().message);
        } else {
          self->store.outbox().mark_sent(id, [id](const Result<storage::WriteAck>& r) {
            if (!r) {
              spdlog::error("outbox: marking entry {} sent failed: {}", id, r.error().describe());
            }
          });
          self->sent.fetch_add(1);
        }
        asio::post(self->strand, [self, id, ok = st.ok(), key] { self->finished(id, ok, key); });
      });
    });
  }

  // `done`: nothing more to do for this entry; else it is tried again after `retry`.
  void finished(int64_t id, bool done, const std::string& key) {
    --in_flight;
    sending.erase(key);
    queued.erase(id);
    if (!done && !stopped) {
      auto timer = std::make_unique<asio::steady_timer>(strand, retry);
      auto* raw = timer.get();
      retries.push_back(std::move(timer));
      raw->async_wait([self = shared_from_this(), id, raw](const boost::system::error_code& ec) {
        std::erase_if(self->retries, [raw](const auto& t) { return t.get() == raw; });
        if (!ec) self->enqueue(id);
      });
    }
    next();
  }
};

OutboxPump::OutboxPump(const net::Executor& executor, storage::Store& store,
                       std::chrono::milliseconds retry)
    : state_(std::make_shared<State>(executor, store, retry)) {}

OutboxPump::~OutboxPump() { stop(); }

void OutboxPump::add(channels::Channel& channel) {
  if (channel.can_push()) state_->channels[std::string(channel.name())] = &channel;
}

void OutboxPump::start() {
  std::vector<int64_t> owed;
  for (const auto& [name, channel] : state_->channels) {
    int64_t after = 0;
    for (;;) {
      auto page = state_->store.outbox().pending_for(name, after, 200);
      if (!page) {
        spdlog::error("outbox: listing pending {} entries failed: {}", name,
                      page.error().describe());
        break;
      }
      for (const auto& e : *page) owed.push_back(e.id);
      if (page->size() < 200) break;
      after = page->back().id;
    }
  }
  std::sort(owed.begin(), owed.end());
  if (!owed.empty()) {
    spdlog::info("outbox: {} message(s) owed from before; sending them", owed.size());
  }
  for (int64_t id : owed) push(id);
}

void OutboxPump::push(int64_t outbox_id) {
  state_->idle = false;
  asio::post(state_->strand, [s = state_, outbox_id] { s->enqueue(outbox_id); });
}

void OutboxPump::stop() {
  asio::post(state_->strand, [s = state_] {
    s->stopped = true;
    s->queue.clear();
    s->queued.clear();
    for (auto& t : s->retries) t->cancel();
  });
}

uint64_t OutboxPump::sent() const { return state_->sent.load(); }
bool OutboxPump::idle() const { return state_->idle.load(); }

}  // namespace parley::bot::pipeline
