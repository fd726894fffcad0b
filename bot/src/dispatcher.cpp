#include "parley/bot/dispatcher.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <algorithm>
#include <map>
#include <set>

#include "await_write.h"

namespace parley::bot {

namespace asio = net::asio;
namespace caps = parley::capabilities;

Dispatcher::Dispatcher(storage::Store& store, Lanes& lanes, AccessPolicy policy, caps::RateLimiter& limiter)
    : store_(store), lanes_(lanes), policy_(std::move(policy)), limiter_(limiter) {}

asio::awaitable<TurnResult> Dispatcher::deliver(const InboundMessage& message) {
  const auto start = std::chrono::steady_clock::now();
  InboundMessage in = message;
  const auto decision = policy_.decide(in.channel, in.author);
  in.admin = decision.admin;
  TurnResult out;

  // 1. Access: a sender turned away is told once, ever; nothing of theirs is kept.
  if (!decision.allowed) {
    out.refused = true;
    out.stop = "refused";
    std::function<void(storage::WriteCallback)> note = [this, &in](storage::WriteCallback cb) {
      store_.directory().note_refusal(in.channel, in.author, std::move(cb));
    };
    auto noted = co_await await_write(note);
    if (!noted) {
      spdlog::error("access: recording a refusal failed: {}", noted.error().describe());
    } else if (noted->inserted) {
      out.reply = policy_.refusal;
      spdlog::info("access: turned away a sender on {} (told once)", in.channel);
    }
    co_return out;
  }

  // 2. Rate limit per sender: over it, one clear message per window; the message is not kept.
  if (policy_.rate_messages > 0) {
    const std::string key = in.channel + '\x1f' + in.author;
    std::chrono::seconds wait{0};
    if (!limiter_.allow(0, "messages\x1f" + key, caps::RateLimit{policy_.rate_messages, policy_.rate_window},
                        caps::RateLimiter::Clock::now(), &wait)) {
      out.refused = true;
      out.stop = "rate_limited";
      out.retry_after = std::max<std::chrono::seconds>(wait, std::chrono::seconds(1));
      if (limiter_.allow(0, "told\x1f" + key, caps::RateLimit{1, policy_.rate_window})) {
        out.reply = fmt::format(
            "You are sending messages faster than I can answer them (at most {} every {} s). "
            "Please wait {} s and send it again; I have not kept this one.",
            policy_.rate_messages, policy_.rate_window.count(), out.retry_after.count());
      }
      co_return out;
    }
  }

  // 3. Stored and committed (in arrival order, in its lane) before anything else; then its
  //    turn, in the conversation's order.
  out = co_await lanes_.submit(in);
  out.latency = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
  co_return out;
}

asio::awaitable<void> Dispatcher::sending(int64_t outbox_id) {
  std::function<void(storage::WriteCallback)> begin = [this, outbox_id](storage::WriteCallback cb) {
    store_.outbox().begin_send(outbox_id, std::move(cb));
  };
  auto r = co_await await_write(begin);
  if (!r) spdlog::error("outbox: recording the send of entry {} failed: {}", outbox_id, r.error().describe());
}

void Dispatcher::sent(int64_t outbox_id) {
  store_.outbox().mark_sent(outbox_id, [outbox_id](Result<storage::WriteAck> r) {
    if (!r) spdlog::error("outbox: marking entry {} sent failed: {}", outbox_id, r.error().describe());
  });
}

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
  std::set<int64_t> queued;  // in `queue` or being sent
  bool busy = false;
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
    if (busy || stopped) return;
    if (queue.empty()) {
      idle = retries.empty();
      return;
    }
    const int64_t id = queue.front();
    queue.pop_front();
    auto entry = store.outbox().get(id);
    auto it = entry ? channels.find(entry->channel) : channels.end();
    // Not pending any more, or its channel is not here (or cannot push: it stays pending).
    if (!entry || entry->state != "pending" || it == channels.end()) {
      queued.erase(id);
      return next();
    }
    busy = true;
    channels::Channel* channel = it->second;
    auto self = shared_from_this();
    channels::OutboundMessage msg{entry->id, entry->target, entry->body};
    // Recorded before the send: after a crash from here on, it may have happened.
    store.outbox().begin_send(id, [self, channel, msg](Result<storage::WriteAck> begun) {
      if (!begun) {
        // not_found: no longer pending (sent or settled meanwhile) — nothing to do. Otherwise
        // the database refused: try again later.
        const bool gone = begun.error().code == ErrorCode::not_found;
        if (!gone) {
          spdlog::error("outbox: cannot record the send of entry {}: {}", msg.outbox_id, begun.error().describe());
        }
        asio::post(self->strand, [self, id = msg.outbox_id, gone] { self->finished(id, gone); });
        return;
      }
      channel->send(msg, [self, id = msg.outbox_id](Status st) {
        if (!st.ok()) {
          spdlog::warn("outbox: sending entry {} failed: {}", id, st.error().describe());
          (void)self->store.outbox().mark_failed(id, st.error().message);
        } else {
          self->store.outbox().mark_sent(id, [id](Result<storage::WriteAck> r) {
            if (!r) spdlog::error("outbox: marking entry {} sent failed: {}", id, r.error().describe());
          });
          self->sent.fetch_add(1);
        }
        asio::post(self->strand, [self, id, ok = st.ok()] { self->finished(id, ok); });
      });
    });
  }

  // `done`: nothing more to do for this entry; else it is tried again after `retry`.
  void finished(int64_t id, bool done) {
    busy = false;
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

OutboxPump::OutboxPump(net::Executor executor, storage::Store& store, std::chrono::milliseconds retry)
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
        spdlog::error("outbox: listing pending {} entries failed: {}", name, page.error().describe());
        break;
      }
      for (const auto& e : *page) owed.push_back(e.id);
      if (page->size() < 200) break;
      after = page->back().id;
    }
  }
  std::sort(owed.begin(), owed.end());
  if (!owed.empty()) spdlog::info("outbox: {} message(s) owed from before; sending them", owed.size());
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

}  // namespace parley::bot
