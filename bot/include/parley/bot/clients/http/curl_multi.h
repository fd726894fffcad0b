// CurlMulti: every outgoing HTTP request of the process (LLM calls, credit polls, later Discord
// REST and web fetches) goes through one libcurl multi handle driven by Asio: curl's sockets
// are watched with async_wait on the io_context (CURLMOPT_SOCKETFUNCTION) and its timeouts are
// one steady_timer (CURLMOPT_TIMERFUNCTION). No thread per request: ten thousand waiting
// transfers cost memory (an easy handle, a timer, buffers), not threads. Connections are kept
// in the multi's cache and reused; HTTP/2 is negotiated where the server offers it.
//
// Deadlines, each its own failure kind: connect (curl's), first byte (transfer start → first
// response header byte), idle (longest gap between body bytes), and the absolute deadline of
// the whole transfer. A transfer always completes exactly once.
//
// Thread safety: start() and shutdown() may be called from any thread; everything else runs
// on the multi's own strand. The body callback runs on that strand too; the completion is
// posted to the executor given to start(). Destroy a CurlMulti only after shutdown() or when
// no thread runs its io_context.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parley/bot/net.h"

namespace parley::bot::http {

using Clock = std::chrono::steady_clock;

struct Request {
  std::string method = "GET";  // GET, POST, PUT, PATCH, DELETE (the last three: any verb)
  std::string url;
  std::vector<std::string> headers;  // "Name: value"; may hold secrets: never logged
  std::string body;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds first_byte_timeout{60'000};
  std::chrono::milliseconds idle_timeout{30'000};
  Clock::time_point deadline = Clock::time_point::max();
  // Buffered bodies only. A longer body fails with Failure::too_large, Response::body holding
  // its first max_body_bytes bytes.
  size_t max_body_bytes = 16u << 20;
  // When set, consulted for every socket curl opens for this transfer — each address tried,
  // each happy-eyeballs attempt — with the address about to be connected to. false refuses that
  // address; if none is left the transfer fails with Failure::connect and the error
  // "refused: <why>" (e.g. "refused: 127.0.0.1 is a loopback address"). Such a transfer never
  // uses a cached connection or a proxy (this check would not see the address connected to),
  // and its connection is not kept. Runs on the multi's strand; must not block.
  std::function<bool(const sockaddr* address, std::string& why)> allow_address;
};

enum class Failure {
  none,
  connect_timeout,
  first_byte_timeout,
  idle_timeout,
  deadline,
  connect,    // refused, unreachable, name not resolved
  transport,  // reset, truncated, protocol errors after connecting
  tls,        // the server's certificate is not trusted, or the TLS handshake failed
  too_large,  // buffered body over max_body_bytes
  aborted,    // the body callback asked to stop
  cancelled,  // shutdown()
};
std::string_view to_string(Failure f) noexcept;

struct Response {
  Failure failure = Failure::none;
  std::string error;  // what went wrong, in words (curl's message or ours); empty when none
  long status = 0;    // HTTP status, 0 when no response arrived
  std::map<std::string, std::string> headers;  // names lower-cased; the final response's
  std::string body;                            // when no body callback was given
  size_t body_bytes = 0;
  bool got_first_byte = false;
  std::chrono::microseconds first_byte{0};  // from start to the first response byte
  std::chrono::microseconds total{0};

  [[nodiscard]] std::string header(const std::string& lower_name) const;
};

// Called on the multi's strand for each piece of the body, after the headers (`status` is the
// final response's). Return false to abort the transfer (Failure::aborted).
using OnBody = std::function<bool(long status, std::string_view piece)>;
using OnDone = std::function<void(Response)>;

struct MultiStats {
  size_t active = 0;     // transfers in flight
  size_t sockets = 0;    // sockets being watched
  uint64_t started = 0;  // transfers ever started
};

class CurlMulti {
 public:
  struct Options {
    long max_connects = 0;  // connection cache size; 0: curl's default (4 × handles)
  };

  explicit CurlMulti(const net::Executor& executor) : CurlMulti(executor, Options{}) {}
  CurlMulti(const net::Executor& executor, Options options);
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  // Starts a transfer. `on_body` may be empty (the body is buffered into Response::body).
  // `done` is posted to `completion` exactly once.
  void start(Request request, OnBody on_body, net::Executor completion, OnDone done);

  // Aborts every transfer (each completes with Failure::cancelled) and refuses new ones.
  void shutdown();
  // The same, done now on the calling thread: only once no thread runs the executor any more
  // (the io threads joined), when a shutdown() posted to it may never have run. The
  // completions are posted, for the io_context's owner to destroy while what they refer to
  // still exists.
  void close_now();

  // Approximate figures, read from any thread.
  [[nodiscard]] MultiStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Coroutine form of CurlMulti::start: resumes on the caller's executor.
net::asio::awaitable<Response> async_fetch(CurlMulti& multi, Request request, OnBody on_body = {});

}  // namespace parley::bot::http
