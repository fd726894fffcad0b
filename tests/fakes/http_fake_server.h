// HttpFakeServer: the HTTP/1.1 server under every test fake (fake_llm.h, fake_openrouter.h,
// http_site.h). Beast on 127.0.0.1 only (port 0: any free port), keep-alive, one session per
// connection on a strand of its own, io_context threads of its own. Each request (read with a
// body limit) goes to the fake's Handler, a coroutine that answers it on the FakeConnection it
// is given: a whole Beast response (send), or raw bytes (write_raw) with pauses (wait) for the
// fakes that stream, stall or cut a connection short (close). A handler may also turn the
// connection into a WebSocket (accept_websocket, for a request with websocket::is_upgrade) and
// serve it until it returns. stop() closes the acceptor and every connection (cancelling their
// waits and WebSocket operations) and gives them a bounded grace to wind down.
// Failures (accept errors, a handler or session that throws) are counted and logged, never
// rethrown into the io_context.
//
// Ownership: the server owns its sockets, threads and handler; a fake holds it as its last
// member so it stops before the state its handler reads is destroyed.
// Thread safety: the public methods of HttpFakeServer may be called from any thread (stop()
// and the destructor not from a handler); a FakeConnection only on its own strand, i.e. from
// the handler it was given to.
//
// GCC 12 miscompiles a co_await inside a condition and double-destroys prvalue arguments of
// coroutines (see net.h): write every co_await alone in a declaration or an assignment, and
// pass named variables.
#pragma once

// clang-format off
#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros
// clang-format on

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/stream_fwd.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace parley::fakes {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using FakeRequest = http::request<http::string_body>;
using FakeResponse = http::response<http::string_body>;
// A connection turned WebSocket (server role). It reads and writes through the connection's
// own socket, so FakeConnection::close() and HttpFakeServer::stop() drop it (no close frame).
// Users include <boost/beast/websocket.hpp>.
using FakeWebSocket = beast::websocket::stream<tcp::socket&>;

// HTTP/1.1 `status` with a Content-Type (none when empty), a body and keep-alive as asked;
// send() prepares the payload (Content-Length).
FakeResponse make_fake_response(unsigned status, const std::string& content_type, std::string body,
                                bool keep_alive);

// One accepted connection, as the handler of a request sees it. Each coroutine returns false
// once the connection is closed (by close() or the server's stop()) or a write failed.
class FakeConnection {
 public:
  FakeConnection(const FakeConnection&) = delete;
  FakeConnection& operator=(const FakeConnection&) = delete;

  // Nothing happens for `d` (nothing at all when d <= 0); stop() cuts the wait short.
  asio::awaitable<bool> wait(std::chrono::milliseconds d);
  // `bytes` as they are (a hand-made head, chunks of a chunked body, …).
  asio::awaitable<bool> write_raw(std::string bytes);
  // A whole response; true when it went out and the connection may serve another request.
  asio::awaitable<bool> send(FakeResponse& res);
  // Drops the connection now (both directions), e.g. a stream cut short.
  void close();
  [[nodiscard]] bool closed() const { return closed_; }

  // Answers the WebSocket upgrade `req` (REQUIRES: websocket::is_upgrade(req), and nothing sent
  // on this connection yet); true when the handshake succeeded: the connection is a WebSocket
  // from then on, read and written through websocket() until the handler returns (its return
  // value is then ignored: the connection ends). Handshakes time out after 5 s; no idle
  // timeout, no pings (set other options on websocket() if needed). Bytes a client sends after
  // the upgrade request and before the answer are lost (clients wait for the 101).
  asio::awaitable<bool> accept_websocket(const FakeRequest& req);
  // REQUIRES: accept_websocket() returned true.
  [[nodiscard]] FakeWebSocket& websocket() { return *websocket_; }

 protected:
  explicit FakeConnection(tcp::socket socket);
  ~FakeConnection();

  tcp::socket socket_;
  asio::steady_timer timer_;
  bool closed_ = false;
  std::unique_ptr<FakeWebSocket> websocket_;  // after accept_websocket()
};

class HttpFakeServer {
 public:
  // Answers one request on `conn`; returns whether the connection may serve another.
  using Handler = std::function<asio::awaitable<bool>(const FakeRequest&, FakeConnection& conn)>;

  struct Options {
    std::string name = "fake";  // in log lines
    uint16_t port = 0;          // 0: any free port
    int threads = 1;            // io_context threads (at least 1)
    size_t body_limit = 1u << 20;
  };

  // Listening and serving on return; throws boost::system::system_error when it cannot bind.
  HttpFakeServer(Options options, Handler handler);
  ~HttpFakeServer();  // stop()
  HttpFakeServer(const HttpFakeServer&) = delete;
  HttpFakeServer& operator=(const HttpFakeServer&) = delete;

  // Stops accepting, closes every connection (waiting or stalled ones too), waits for them a
  // bounded grace and joins the threads. Idempotent. REQUIRES: not called from a handler.
  void stop();

  [[nodiscard]] uint16_t port() const;
  [[nodiscard]] size_t connections_accepted() const;
  [[nodiscard]] size_t open_connections() const;
  [[nodiscard]] size_t failures() const;  // accept errors and sessions that threw

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::fakes
