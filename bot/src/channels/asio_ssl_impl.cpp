// Asio's TLS (asio/ssl) compiled once, as clients/asio_impl.cpp does for the rest of Asio and
// Beast: the channels are the only area that uses it (the Discord gateway's wss://, IMAP and
// SMTP over TLS) and links OpenSSL.
#include "parley/bot/net.h"

#include <boost/asio/ssl/impl/src.hpp>
