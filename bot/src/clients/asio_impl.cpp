// Asio's and Beast's compiled parts, once for the whole program: every target compiles with
// BOOST_ASIO_SEPARATE_COMPILATION and BOOST_BEAST_SEPARATE_COMPILATION (CMakeLists.txt), so the
// files that include them see declarations only, rather than each compiling its own inline copy
// of the reactor, the scheduler, Beast's parsers and the rest (a tenth of the heaviest unity
// batch's compile time). TLS (asio/ssl) has its own file in the channels, the only area that
// links OpenSSL: channels/asio_ssl_impl.cpp.
#include "parley/bot/net.h"

#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
