// spawn(): runs a coroutine on an executor and hands its result (or its exception) back through
// a std::future, for tests that drive coroutines from the test thread. kPatience: how long a
// test waits for something that should happen — reached only when the test fails.
#pragma once

#include <chrono>
#include <exception>
#include <future>
#include <memory>

#include "parley/bot/net.h"

namespace parley::testing {

inline constexpr std::chrono::seconds kPatience{10};

template <typename T>
std::future<T> spawn(const net::Executor& executor, net::asio::awaitable<T> work) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  net::asio::co_spawn(executor, std::move(work), [promise](std::exception_ptr e, T value) {
    if (e) {
      promise->set_exception(e);
    } else {
      promise->set_value(std::move(value));
    }
  });
  return future;
}

}  // namespace parley::testing
