// The one way parley includes Asio (and, through it, Beast): GCC 12 with Boost 1.74 needs
// <utility> before awaitable.hpp, and clang 14 / clang-tidy need the coroutine macros defined
// explicitly. Boost 1.74 has no as_tuple: use redirect_error.
#pragma once

#include <utility>

#ifndef BOOST_ASIO_HAS_CO_AWAIT
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif
#ifndef BOOST_ASIO_HAS_STD_COROUTINE
#define BOOST_ASIO_HAS_STD_COROUTINE 1
#endif
#ifndef BOOST_ASIO_NO_DEPRECATED
#define BOOST_ASIO_NO_DEPRECATED 1
#endif

#include <boost/asio.hpp>

namespace parley::net {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Executor = asio::any_io_executor;
}  // namespace parley::net
