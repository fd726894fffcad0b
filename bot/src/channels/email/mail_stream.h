// MailStream: one connection to a mail server (IMAP or SMTP) for line protocols, on Asio: TCP,
// then TLS from the first byte (implicit) or after the protocol's STARTTLS, or none at all —
// which only a loopback address may use (a password never crosses a network in clear). Every
// read and write has a deadline. No thread of its own: used from one strand, one operation at a
// time.
#pragma once

// clang-format off
#include "parley/bot/net.h"
// clang-format on

#include <boost/asio/ssl.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "parley/base/result.h"
#include "parley/bot/channels/email/options.h"

namespace parley::bot::channels::email {

class MailStream {
 public:
  MailStream(const net::Executor& executor, net::asio::ssl::context& tls);
  ~MailStream();
  MailStream(const MailStream&) = delete;
  MailStream& operator=(const MailStream&) = delete;

  // Resolves and connects (TLS at once for MailTls::implicit). MailTls::none to an address that
  // is not loopback fails without connecting.
  net::asio::awaitable<Status> connect(const std::string& host, uint16_t port, MailTls tls);
  // The TLS handshake on the open connection (after the server accepted STARTTLS).
  net::asio::awaitable<Status> start_tls();
  // One line without its CRLF (or LF). Fails on a closed connection, the deadline, or a line
  // over 64 KiB.
  net::asio::awaitable<Result<std::string>> read_line();
  // Exactly `n` bytes (an IMAP literal).
  net::asio::awaitable<Result<std::string>> read_exact(size_t n);
  net::asio::awaitable<Status> write(const std::string& data);
  // Closes the connection: any operation under way fails at once. Any thread via post.
  void close();

  [[nodiscard]] bool tls() const { return tls_active_; }
  // Reads and writes after this call time out after `t` (default 60 s).
  void timeout(std::chrono::milliseconds t) { timeout_ = t; }
  [[nodiscard]] std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  using Tcp = boost::beast::tcp_stream;
  using Ssl = boost::beast::ssl_stream<Tcp>;
  net::asio::awaitable<Result<size_t>> fill();  // reads more into buffer_

  net::Executor executor_;
  net::asio::ssl::context& tls_context_;
  std::unique_ptr<Ssl> stream_;
  std::string host_;
  std::string buffer_;
  bool tls_active_ = false;
  std::chrono::milliseconds timeout_{60'000};
};

}  // namespace parley::bot::channels::email
