// await_write: a write through the storage queue, awaited without blocking a thread. The
// acknowledgement (after the commit) resumes the coroutine on its own executor.
#pragma once

#include <functional>

#include "parley/bot/net.h"
#include "parley/storage/write_queue.h"

namespace parley::bot::pipeline {

// `submit` starts the write and hands it the callback. It is taken by reference (the caller's
// named local outlives the wait): GCC 12 mishandles a by-value std::function parameter of a
// coroutine and destroys it twice (see net.h).
inline net::asio::awaitable<Result<storage::WriteAck>> await_write(
    const std::function<void(storage::WriteCallback)>& submit) {
  return net::await_callback<Result<storage::WriteAck>>(submit);
}

}  // namespace parley::bot::pipeline
