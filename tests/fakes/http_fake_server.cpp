// clang-format off
#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros
// clang-format on

#include "fakes/http_fake_server.h"

#include <spdlog/spdlog.h>

#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace parley::fakes {

namespace {

using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;

// How long stop() waits for connections to wind down before stopping the io_context. Every
// operation is cancelled by then, so run() returns on its own: the grace only keeps a bug here
// from turning into a hung test.
constexpr auto kStopGrace = std::chrono::seconds(5);

// A WebSocket handshake (opening or closing) that takes longer fails.
constexpr auto kWebSocketHandshakeTimeout = std::chrono::seconds(5);

}  // namespace

FakeResponse make_fake_response(unsigned status, const std::string& content_type, std::string body,
                                bool keep_alive) {
  FakeResponse res;
  res.version(11);
  res.result(status);
  if (!content_type.empty()) res.set(http::field::content_type, content_type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  return res;
}

// --- FakeConnection ----------------------------------------------------------------------------

FakeConnection::FakeConnection(tcp::socket socket)
    : socket_(std::move(socket)), timer_(socket_.get_executor()) {}

FakeConnection::~FakeConnection() = default;

awaitable<bool> FakeConnection::wait(std::chrono::milliseconds d) {
  if (closed_) co_return false;
  if (d.count() <= 0) co_return true;
  timer_.expires_after(d);
  error_code ec;
  co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
  co_return !closed_;
}

awaitable<bool> FakeConnection::write_raw(std::string bytes) {
  if (closed_) co_return false;
  error_code ec;
  co_await asio::async_write(socket_, asio::buffer(bytes), asio::redirect_error(use_awaitable, ec));
  co_return !ec && !closed_;
}

awaitable<bool> FakeConnection::send(FakeResponse& res) {
  if (closed_) co_return false;
  res.prepare_payload();
  error_code ec;
  co_await http::async_write(socket_, res, asio::redirect_error(use_awaitable, ec));
  co_return !ec && !closed_ && res.keep_alive();
}

awaitable<bool> FakeConnection::accept_websocket(const FakeRequest& req) {
  if (closed_ || websocket_) co_return false;
  websocket_ = std::make_unique<FakeWebSocket>(socket_);
  beast::websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = kWebSocketHandshakeTimeout;
  timeouts.idle_timeout = beast::websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  websocket_->set_option(timeouts);
  error_code ec;
  co_await websocket_->async_accept(req, asio::redirect_error(use_awaitable, ec));
  co_return !ec && !closed_;
}

void FakeConnection::close() {
  closed_ = true;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  timer_.cancel();
}

// --- HttpFakeServer::Impl ----------------------------------------------------------------------

struct HttpFakeServer::Impl {
  class Session;

  // The completion handler of every coroutine: a failure is counted and logged, never rethrown
  // into run().
  struct LogFailure {
    Impl* impl;
    const char* what;
    void operator()(const std::exception_ptr& e) const;
  };

  Impl(Options o, Handler h);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void stop();
  // Registers a new session; false once stopping (the session is then dropped).
  bool add(const std::shared_ptr<Session>& session, uint64_t& id);
  void remove(uint64_t id);
  awaitable<void> accept_loop();

  const Options options;
  const Handler handler;
  std::atomic<size_t> accepted{0};
  std::atomic<size_t> open{0};
  std::atomic<size_t> failures{0};
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable idle;                         // sessions emptied / accept loop ended
  std::map<uint64_t, std::weak_ptr<Session>> sessions;  // GUARDED_BY(mu)
  uint64_t next_session = 0;                            // GUARDED_BY(mu)
  bool accept_done = false;                             // GUARDED_BY(mu)
  bool stopped = false;                                 // GUARDED_BY(mu)

  // Declared after the state above: destroying the io_context may destroy sessions, which
  // unregister themselves.
  asio::io_context ioc;
  asio::any_io_executor accept_ex;  // a strand
  tcp::acceptor acceptor;
  uint16_t port = 0;
  std::vector<std::thread> threads;
};

void HttpFakeServer::Impl::LogFailure::operator()(const std::exception_ptr& e) const {
  if (!e) return;
  ++impl->failures;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::warn("{}: {} failed: {}", impl->options.name, what, ex.what());
  } catch (...) {
    spdlog::warn("{}: {} failed: unknown exception", impl->options.name, what);
  }
}

// One connection: reads requests one after another (keep-alive) and hands each to the handler.
// Runs on its own strand; close() is posted there by stop().
class HttpFakeServer::Impl::Session : public FakeConnection {
 public:
  Session(Impl& impl, tcp::socket socket) : FakeConnection(std::move(socket)), impl_(impl) {
    ++impl_.open;
  }
  ~Session() {
    --impl_.open;
    if (registered_) impl_.remove(id_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void set_id(uint64_t id) {
    id_ = id;
    registered_ = true;
  }
  [[nodiscard]] asio::any_io_executor executor() { return socket_.get_executor(); }

  static awaitable<void> run(std::shared_ptr<Session> self) {
    Session& s = *self;
    co_await s.serve();
  }

 private:
  awaitable<void> serve() {
    beast::flat_buffer buffer;
    while (!closed_) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(impl_.options.body_limit);
      error_code ec;
      co_await http::async_read(socket_, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec || closed_) break;
      const FakeRequest& req = parser.get();
      FakeConnection& conn = *this;
      const bool more = co_await impl_.handler(req, conn);
      if (!more || websocket_) break;  // a WebSocket ends with its handler
    }
    if (!closed_) {
      error_code ec;
      socket_.shutdown(tcp::socket::shutdown_send, ec);
      socket_.close(ec);
    }
  }

  Impl& impl_;
  uint64_t id_ = 0;
  bool registered_ = false;
};

HttpFakeServer::Impl::Impl(Options o, Handler h)
    : options(std::move(o)),
      handler(std::move(h)),
      ioc(std::max(1, options.threads)),
      accept_ex(asio::make_strand(ioc)),
      acceptor(accept_ex) {
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), options.port);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  port = acceptor.local_endpoint().port();
  asio::co_spawn(accept_ex, accept_loop(), [this](const std::exception_ptr& e) {
    LogFailure{this, "accept loop"}(e);
    const std::lock_guard lock(mu);
    accept_done = true;
    idle.notify_all();
  });
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    threads.emplace_back([this] {
      try {
        ioc.run();
      } catch (const std::exception& e) {
        ++failures;
        spdlog::error("{}: io thread: {}", options.name, e.what());
      }
    });
  }
}

HttpFakeServer::Impl::~Impl() { stop(); }

void HttpFakeServer::Impl::stop() {
  std::vector<std::shared_ptr<Session>> live;
  {
    const std::lock_guard lock(mu);
    if (stopped) return;
    stopped = true;
    stopping = true;
    for (auto& [id, weak] : sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  asio::post(accept_ex, [this] {
    error_code ec;
    acceptor.close(ec);
  });
  for (auto& s : live) {
    auto ex = s->executor();
    asio::post(ex, [s = std::move(s)] { s->close(); });
  }
  live.clear();
  {
    std::unique_lock lock(mu);
    if (!idle.wait_for(lock, kStopGrace, [this] { return sessions.empty() && accept_done; })) {
      spdlog::warn("{}: {} connections still open after {} s; stopping", options.name,
                   sessions.size(), kStopGrace.count());
    }
  }
  ioc.stop();
  for (auto& t : threads) t.join();
}

bool HttpFakeServer::Impl::add(const std::shared_ptr<Session>& session, uint64_t& id) {
  const std::lock_guard lock(mu);
  if (stopping) return false;
  id = ++next_session;
  sessions.emplace(id, session);
  return true;
}

void HttpFakeServer::Impl::remove(uint64_t id) {
  const std::lock_guard lock(mu);
  sessions.erase(id);
  if (sessions.empty()) idle.notify_all();
}

awaitable<void> HttpFakeServer::Impl::accept_loop() {
  size_t unreported = 0;  // accept errors since the last warning
  auto last_warning = std::chrono::steady_clock::time_point{};
  for (;;) {
    error_code ec;
    const asio::any_io_executor session_ex = asio::make_strand(ioc);
    tcp::socket socket =
        co_await acceptor.async_accept(session_ex, asio::redirect_error(use_awaitable, ec));
    if (stopping || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: back off instead of spinning or giving up, and warn
      // at most once a second.
      ++failures;
      ++unreported;
      if (const auto now = std::chrono::steady_clock::now();
          now - last_warning >= std::chrono::seconds(1)) {
        spdlog::warn("{}: accept failed {} time(s), last: {}", options.name, unreported,
                     ec.message());
        unreported = 0;
        last_warning = now;
      }
      asio::steady_timer backoff(accept_ex, std::chrono::milliseconds(10));
      co_await backoff.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    ++accepted;
    socket.set_option(tcp::no_delay(true), ec);  // streamed pieces must not wait for Nagle
    auto session = std::make_shared<Session>(*this, std::move(socket));
    uint64_t id = 0;
    if (!add(session, id)) co_return;
    session->set_id(id);
    asio::co_spawn(session_ex, Session::run(std::move(session)), LogFailure{this, "session"});
  }
}

// --- HttpFakeServer ----------------------------------------------------------------------------

HttpFakeServer::HttpFakeServer(Options options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}
HttpFakeServer::~HttpFakeServer() = default;

void HttpFakeServer::stop() { impl_->stop(); }
uint16_t HttpFakeServer::port() const { return impl_->port; }
size_t HttpFakeServer::connections_accepted() const { return impl_->accepted; }
size_t HttpFakeServer::open_connections() const { return impl_->open; }
size_t HttpFakeServer::failures() const { return impl_->failures; }

}  // namespace parley::fakes
