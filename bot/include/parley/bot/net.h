// The one way parley includes Asio (and, through it, Beast): GCC 12 with Boost 1.74 needs
// <utility> before awaitable.hpp, and clang 14 / clang-tidy need the coroutine macros defined
// explicitly. Boost 1.74 has no as_tuple: use redirect_error.
//
// GCC 12 coroutine bugs seen here (write around them):
// - `if (!co_await f(std::string("x")))` crashes: put every co_await on its own line, in a
//   declaration or an assignment (`bool ok = co_await f(…);`).
// - `co_await g(make_request(), Options{})` destroys the temporary arguments twice: pass named
//   variables (or std::move of them) to a coroutine, never prvalues of non-trivial types.
// - A use_awaitable handler must be moved out of its storage, and that storage emptied, before
//   it is invoked (see http::async_fetch): a moved-from handler left behind touches freed
//   memory when the coroutine completes inside the call (Boost 1.74, strand executors).
#pragma once

#include <utility>

#ifndef BOOST_ASIO_HAS_CO_AWAIT
#define BOOST_ASIO_HAS_CO_AWAIT 1  // NOLINT(readability-identifier-naming): Boost's name
#endif
#ifndef BOOST_ASIO_HAS_STD_COROUTINE
#define BOOST_ASIO_HAS_STD_COROUTINE 1  // NOLINT(readability-identifier-naming): Boost's name
#endif
#ifndef BOOST_ASIO_NO_DEPRECATED
#define BOOST_ASIO_NO_DEPRECATED 1  // NOLINT(readability-identifier-naming): Boost's name
#endif

#include <boost/asio.hpp>
#include <functional>
#include <memory>
#include <optional>

namespace parley::net {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Executor = asio::any_io_executor;

// An io_context whose pending handlers (coroutine frames among them) can be destroyed before
// the objects they refer to: a stopped io_context keeps them until its own destructor, which
// runs after every member declared after it (the owner's services) is gone. Call
// destroy_pending() once the threads that ran it are joined; the io objects of the owner can
// still be destroyed afterwards (Asio's own shutdown order: services shut down, then
// destroyed).
class IoContext : public asio::io_context {  // not final: Asio derives from it to probe it
 public:
  using asio::io_context::io_context;
  void destroy_pending() { shutdown(); }
};

// Awaits a callback API without blocking a thread: `start(done)` begins the work and calls
// `done(value)` once, from any thread; the coroutine resumes on its own executor. `start` is
// taken by reference (the caller's named local outlives the wait): GCC 12 mishandles a
// by-value std::function parameter of a coroutine.
template <class T>
asio::awaitable<T> await_callback(const std::function<void(std::function<void(T)>)>& start) {
  struct Outcome {
    std::optional<T> value;
  };
  auto outcome = co_await asio::async_initiate<decltype(asio::use_awaitable), void(Outcome)>(
      [&start](auto handler) {
        using Handler = decltype(handler);
        Executor ex = asio::get_associated_executor(handler);
        auto slot = std::make_shared<std::optional<Handler>>(std::move(handler));
        start([slot, ex](T value) {
          asio::post(ex, [slot, value = std::move(value)]() mutable {
            Handler h = std::move(**slot);  // moved out and emptied first (see above)
            slot->reset();
            std::move(h)(Outcome{std::move(value)});
          });
        });
      },
      asio::use_awaitable);
  co_return std::move(*outcome.value);
}

}  // namespace parley::net
