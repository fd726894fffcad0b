// HttpServer: the HTTP channel's server — listener, connections, routing, validation and auth —
// with no knowledge of the turn engine: a valid message is handed to a MessageHandler coroutine
// and its answer is sent back as JSON.
//
// Routes:
//   POST /v1/messages[?stream=1]  {"conversation", "user", "text", "id"?}  → the handler's answer
//        ?stream=1: server-sent events (text/event-stream, chunked): `data: {"delta": "…"}` for
//        each piece of text the handler emits (`event: restart` when the text so far is to be
//        discarded: a retry), then `event: reply` with the answer's JSON body
//        (or `event: error` with {"error", "status"} when the answer is not a 200 after the
//        stream began). An error answered before any text is an ordinary JSON error.
//   GET  /healthz                 200 {"status":"ok"} while serving (never needs auth)
//   GET  /readyz                  200 when ready() (and not stopping), else 503
//   GET  anything else            HttpServerOptions::pages, when set (reports, /metrics)
// Every error is JSON {"error": "..."}: 400 (bad HTTP, malformed JSON with its byte offset, a
// missing, wrong-typed or empty field; conversation, user and id are at most kMaxKeyBytes),
// 401 (with WWW-Authenticate: Bearer), 404, 405 (with Allow), 413 (body over body_limit; the
// connection closes), 431 (headers over 16 KiB), 500 (the handler threw or answered a status
// outside 200..599; logged), 504 (no answer within turn_timeout). A request not read within
// read_timeout is dropped (the connection closes without an answer).
//
// Connections: keep-alive, one request at a time each, each on its own strand. Deadlines:
// read_timeout bounds reading one request (and an idle keep-alive connection, and each response
// write); turn_timeout bounds the handler. A handler that overruns is answered 504 and left to
// finish on its own (Boost 1.74 cannot cancel a coroutine); its late result is logged and
// dropped. `Expect: 100-continue` is answered, so curl does not wait a second before sending.
// One debug log line per request (method, path, status, ms); never bodies, headers or the token.
//
// Ownership and lifetime: the server's state lives until its last connection ends, so
// destroying the HttpServer (which calls stop()) while connections drain is safe. The handler
// and ready check are kept until then: whatever they capture must outlive every request —
// wait for active_requests() == 0 after stop() (or stop the io_context) before destroying it.
// REQUIRES: the execution context outlives the HttpServer.
//
// Thread safety: all public methods may be called from any thread. The handler and ready()
// run on a connection's strand (a strand of the server's executor), several at once for
// different connections.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "parley/base/result.h"
#include "parley/bot/net.h"

namespace parley::bot::channels {

// A GET route served beside the channel's own (reports, metrics): see HttpServerOptions::pages.
struct PageRequest {
  std::string path;   // without the query
  std::string query;  // after '?', undecoded; empty when none
};
struct Page {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra (e.g. Content-Disposition)
};
// nullopt: no such page (404). Runs after authentication on HttpServerOptions::page_executor
// (or the connection's strand); it may read the database, it must not wait on the network.
using PageHandler = std::function<std::optional<Page>(const PageRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // an IPv4/IPv6 address or a name (resolved at start())
  uint16_t port = 8787;            // 0: any free port (see HttpServer::port())
  // Empty: no auth. Required when host is not a loopback address (127.0.0.0/8, ::1,
  // localhost): start() refuses otherwise. Never logged nor echoed.
  std::string bearer_token;
  size_t body_limit = size_t{64} * 1024;   // bigger bodies → 413
  std::chrono::seconds read_timeout{30};   // per request; also idle keep-alive and each write
  std::chrono::seconds turn_timeout{300};  // the handler's answer → else 504
  PageHandler pages;                       // GET (and HEAD) of any other path; empty: none
  // Where pages run: a worker beside the io threads (a report may scan the whole ledger);
  // empty: on the connection's strand.
  std::optional<net::Executor> page_executor;
  // What GET /healthz adds under "channels" (e.g. the Discord shards' states); empty: nothing.
  // Unauthenticated, like /healthz itself: no secret, no user data.
  std::function<nlohmann::json()> health;
  // What GET /healthz adds under "storage" (the write queue's figures); empty: nothing.
  std::function<nlohmann::json()> storage_health;
};

struct MessageRequest {
  std::string conversation;
  std::string user;
  std::string text;               // never empty nor only whitespace
  std::optional<std::string> id;  // the caller's message id (redelivery dedupe)
  bool stream = false;            // ?stream=1 (or true)
  // Set when stream: sends a piece of the reply's text as an event; `restart` first sends
  // `event: restart` (discard the text so far). Callable from any thread; never blocks (the
  // text is queued for the connection's strand).
  std::function<void(const std::string& text, bool restart)> emit;
};

struct MessageResponse {
  int status = 200;  // 200..599, else the client gets 500
  nlohmann::json body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra (e.g. Retry-After)
};

// Runs the turn: a coroutine started on the connection's strand. May throw (→ 500).
using MessageHandler = std::function<net::asio::awaitable<MessageResponse>(MessageRequest)>;
// Whether /readyz answers 200. Empty: always ready. Must not block.
using ReadyCheck = std::function<bool()>;

class HttpServer {
 public:
  // Longest conversation, user or id accepted (bytes).
  static constexpr size_t kMaxKeyBytes = 256;

  HttpServer(net::Executor ex, HttpServerOptions options, MessageHandler handler, ReadyCheck ready);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens, then accepts on the executor. invalid_argument: a non-loopback host
  // without a bearer token, a host that does not resolve, a second start(); unavailable: the
  // OS refused (e.g. "cannot listen on 127.0.0.1:8787: Address already in use").
  Status start();
  // The bound port (the real one when options.port was 0); 0 before start().
  [[nodiscard]] uint16_t port() const;
  // Stops accepting: no new connection is served once stop() returns (the listening socket
  // closes on the executor right after, refusing connections). Idle connections close; one in
  // the middle of a request finishes it (answered with Connection: close), then closes.
  // Idempotent; never blocks.
  void stop();
  // Requests being handled: from their headers read until their answer is written and their
  // handler has returned (a handler that overran turn_timeout counts until it returns).
  [[nodiscard]] size_t active_requests() const;
  // Connections open (accepted, not yet closed).
  [[nodiscard]] size_t open_connections() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace parley::bot::channels
