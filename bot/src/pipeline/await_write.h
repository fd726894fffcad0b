// await_write: a write through the storage queue, awaited without blocking a thread. The
// acknowledgement (after the commit) resumes the coroutine on its own executor.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "parley/bot/net.h"
#include "parley/storage/write_queue.h"

namespace parley::bot::pipeline {

// `submit` starts the write and hands it the callback. It is taken by reference (the caller's
// named local outlives the wait): GCC 12 mishandles a by-value std::function parameter of a
// coroutine and destroys it twice (see net.h).
inline net::asio::awaitable<Result<storage::WriteAck>> await_write(
    const std::function<void(storage::WriteCallback)>& submit) {
  namespace asio = net::asio;
  struct Outcome {
    std::optional<Result<storage::WriteAck>> result;
  };
  auto outcome = co_await asio::async_initiate<decltype(asio::use_awaitable), void(Outcome)>(
      [&submit](auto handler) {
        using Handler = decltype(handler);
        net::Executor ex = asio::get_associated_executor(handler);
        auto slot = std::make_shared<std::optional<Handler>>(std::move(handler));
        submit([slot, ex](Result<storage::WriteAck> r) {
          asio::post(ex, [slot, r = std::move(r)]() mutable {
            Handler h = std::move(**slot);  // moved out and emptied first: see net.h
            slot->reset();
            std::move(h)(Outcome{std::move(r)});
          });
        });
      },
      asio::use_awaitable);
  co_return std::move(*outcome.result);
}

}  // namespace parley::bot::pipeline
