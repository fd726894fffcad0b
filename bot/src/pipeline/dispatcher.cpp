#include "parley/bot/pipeline/dispatcher.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "pipeline/await_write.h"

namespace parley::bot::pipeline {

namespace asio = net::asio;
namespace caps = parley::capabilities;

Dispatcher::Dispatcher(storage::Store& store, Lanes& lanes, AccessPolicy policy,
                       caps::RateLimiter& limiter)
    : store_(store), lanes_(lanes), policy_(std::move(policy)), limiter_(limiter) {}

asio::awaitable<TurnResult> Dispatcher::deliver(const InboundMessage& message) {
  const auto start = std::chrono::steady_clock::now();
  InboundMessage in = message;
  const auto decision = policy_.decide(in.channel, in.author);
  in.admin = decision.admin;
  TurnResult out;

  // 1. Access: a sender turned away is told once, ever; nothing of theirs is kept. The refusal
  //    is recorded at most once a minute per sender, so that a flood of refused messages (anyone
  //    can mention the bot in a Discord server) costs no database write each.
  if (!decision.allowed) {
    out.refused = true;
    out.stop = TurnStop::refused;
    if (!limiter_.allow(0, "refused\x1f" + in.channel + '\x1f' + in.author,
                        caps::RateLimit{1, std::chrono::seconds(60)})) {
      co_return out;
    }
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
    if (!limiter_.allow(0, "messages\x1f" + key,
                        caps::RateLimit{policy_.rate_messages, policy_.rate_window},
                        caps::RateLimiter::Clock::now(), &wait)) {
      out.refused = true;
      out.stop = TurnStop::rate_limited;
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

  // 3. Back-pressure: at the bound of messages in flight, nothing more is taken in (a burst
  //    never grows memory without bound); the channel says so, or fetches it again later.
  if (lanes_.full()) {
    out.stop = TurnStop::overloaded;
    out.error = Error{
        ErrorCode::resource_exhausted,
        fmt::format("parley is answering {} messages already; nothing was kept", lanes_.active())};
    if (limiter_.allow(0, "overloaded", caps::RateLimit{1, std::chrono::seconds(10)})) {
      spdlog::warn("lanes: {} messages in flight (lanes.max_active): refusing new ones",
                   lanes_.active());
    }
    co_return out;
  }

  // 4. Stored and committed (in arrival order, in its lane) before anything else; then its
  //    turn, in the conversation's order.
  out = co_await lanes_.submit(in);
  out.latency = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  co_return out;
}

asio::awaitable<size_t> Dispatcher::answer_unanswered(std::chrono::milliseconds window,
                                                      const parley::Clock& clock,
                                                      int64_t stored_through) {
  auto found = store_.messages().unanswered(clock.now_ms() - window.count(), stored_through);
  if (!found) {
    spdlog::error("recovery: looking for unanswered messages failed: {}", found.error().describe());
    co_return 0;
  }
  if (found->empty()) co_return 0;
  spdlog::info(
      "recovery: {} message(s) stored before the last stop were never answered; "
      "answering them",
      found->size());
  size_t answered = 0;
  for (const auto& u : *found) {
    InboundMessage in;
    in.channel = u.message.channel;
    in.platform_id = u.message.platform_id;
    in.conversation = u.conversation_key;
    in.author = u.message.author;
    in.text = u.message.text;
    in.stored_id = u.message.id;
    // Where it was asked is not known any more (a DM or a group): the answer reads no
    // memories into the prompt and writes none.
    in.private_audience = false;
    const TurnResult r = co_await deliver(in);
    if (r.error) {
      spdlog::error("recovery: answering message {} failed: {}", u.message.id, r.error->describe());
      continue;
    }
    if (r.outbox_id == 0) continue;  // not owed after all (answered meanwhile), or refused
    ++answered;
    const size_t parts = std::max<size_t>(1, r.parts.size());
    for (size_t i = 0; i < parts; ++i) push(r.outbox_id + static_cast<int64_t>(i));
  }
  co_return answered;
}

asio::awaitable<void> Dispatcher::sending(int64_t outbox_id) {
  std::function<void(storage::WriteCallback)> begin = [this, outbox_id](storage::WriteCallback cb) {
    store_.outbox().begin_send(outbox_id, std::move(cb));
  };
  auto r = co_await await_write(begin);
  if (!r) {
    spdlog::error("outbox: recording the send of entry {} failed: {}", outbox_id,
                  r.error().describe());
  }
}

void Dispatcher::sent(int64_t outbox_id) {
  store_.outbox().mark_sent(outbox_id, [outbox_id](const Result<storage::WriteAck>& r) {
    if (!r) {
      spdlog::error("outbox: marking entry {} sent failed: {}", outbox_id, r.error().describe());
    }
  });
}

void Dispatcher::push(int64_t outbox_id) {
  if (push_) {
    push_(outbox_id);
  } else {
    spdlog::warn("outbox: entry {} stays owed: this process runs no outbox pump", outbox_id);
  }
}

}  // namespace parley::bot::pipeline
