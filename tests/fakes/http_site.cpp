#include "fakes/http_site.h"

// clang-format off
#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros
// clang-format on

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

namespace parley::fakes {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

// How long the destructor waits for connections to wind down before stopping the io_context.
constexpr auto kStopGrace = std::chrono::seconds(5);

struct LogFailure {
  const char* what;
  void operator()(const std::exception_ptr& e) const {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::warn("http_site: {} failed: {}", what, ex.what());
    } catch (...) {
      spdlog::warn("http_site: {} failed: unknown exception", what);
    }
  }
};

}  // namespace

SitePage SitePage::html(std::string body) {
  SitePage p;
  p.body = std::move(body);
  return p;
}

SitePage SitePage::text(std::string body, std::string content_type) {
  SitePage p;
  p.body = std::move(body);
  p.content_type = std::move(content_type);
  return p;
}

SitePage SitePage::bytes(std::string body, std::string content_type) {
  return text(std::move(body), std::move(content_type));
}

SitePage SitePage::redirect(std::string location, int status) {
  SitePage p;
  p.status = status;
  p.content_type = "text/plain";
  p.body = "moved";
  p.headers.emplace_back("Location", std::move(location));
  return p;
}

struct HttpSite::Impl {
  class Session;

  Impl();
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  bool add(const std::shared_ptr<Session>& session, uint64_t& id);
  void remove(uint64_t id);
  SitePage page_for(const std::string& target);
  awaitable<void> accept_loop();

  std::atomic<bool> stopping{false};
  mutable std::mutex mu;
  std::condition_variable idle;
  std::map<std::string, SitePage> pages;                // GUARDED_BY(mu)
  std::vector<std::string> requested;                   // GUARDED_BY(mu)
  std::map<uint64_t, std::weak_ptr<Session>> sessions;  // GUARDED_BY(mu)
  uint64_t next_session = 0;                            // GUARDED_BY(mu)
  bool accept_done = false;                             // GUARDED_BY(mu)

  // After the state above: destroying the io_context may destroy sessions, which unregister.
  asio::io_context ioc;
  asio::any_io_executor accept_ex;  // a strand
  tcp::acceptor acceptor;
  uint16_t port = 0;
  std::thread thread;
};

// One connection: reads requests one after another (keep-alive) and answers each. Runs on its
// own strand; close() is posted there by the site's destructor.
class HttpSite::Impl::Session {
 public:
  Session(Impl& impl, tcp::socket socket)
      : impl_(impl), socket_(std::move(socket)), timer_(socket_.get_executor()) {}
  ~Session() {
    if (registered_) impl_.remove(id_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void set_id(uint64_t id) {
    id_ = id;
    registered_ = true;
  }
  [[nodiscard]] asio::any_io_executor executor() { return socket_.get_executor(); }

  // REQUIRES: on the session's strand.
  void close() {
    closed_ = true;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    timer_.cancel();
  }

  static awaitable<void> run(std::shared_ptr<Session> self) {
    Session& s = *self;
    co_await s.serve();
  }

 private:
  // GCC 12 miscompiles a co_await inside a condition (see fake_llm.cpp): every co_await here
  // stands alone in a declaration or an assignment.
  awaitable<void> serve() {
    beast::flat_buffer buffer;
    while (!closed_) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(1u << 20);
      error_code ec;
      co_await http::async_read(socket_, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec || closed_) break;
      const auto& req = parser.get();
      const SitePage page = impl_.page_for(std::string(req.target()));
      const bool more = co_await respond(page, req.keep_alive());
      if (!more) break;
    }
    if (!closed_) {
      error_code ec;
      socket_.shutdown(tcp::socket::shutdown_send, ec);
      socket_.close(ec);
    }
  }

  awaitable<bool> wait(milliseconds d) {
    if (closed_) co_return false;
    if (d.count() <= 0) co_return true;
    timer_.expires_after(d);
    error_code ec;
    co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    co_return !closed_;
  }

  awaitable<bool> write_raw(std::string bytes) {
    if (closed_) co_return false;
    error_code ec;
    co_await asio::async_write(socket_, asio::buffer(bytes),
                               asio::redirect_error(use_awaitable, ec));
    co_return !ec && !closed_;
  }

  awaitable<bool> respond(const SitePage& page, bool keep_alive) {
    bool ok = co_await wait(page.delay_before_headers);
    if (!ok) co_return false;
    const auto status = static_cast<unsigned>(page.status);
    const auto reason = http::obsolete_reason(http::int_to_status(status));
    std::string head =
        fmt::format("HTTP/1.1 {} {}\r\n", status, std::string_view(reason.data(), reason.size()));
    if (!page.content_type.empty()) head += fmt::format("Content-Type: {}\r\n", page.content_type);
    for (const auto& [name, value] : page.headers) head += fmt::format("{}: {}\r\n", name, value);
    head += fmt::format("Content-Length: {}\r\n", page.body.size());
    if (!keep_alive) head += "Connection: close\r\n";
    head += "\r\n";
    if (page.write_bytes == 0) {
      head += page.body;
      ok = co_await write_raw(std::move(head));
      co_return ok&& keep_alive;
    }
    ok = co_await write_raw(std::move(head));
    if (!ok) co_return false;
    for (size_t at = 0; at < page.body.size(); at += page.write_bytes) {
      if (at > 0) {
        ok = co_await wait(page.interval);
        if (!ok) co_return false;
      }
      std::string piece = page.body.substr(at, page.write_bytes);
      ok = co_await write_raw(std::move(piece));
      if (!ok) co_return false;
    }
    co_return keep_alive;
  }

  Impl& impl_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  uint64_t id_ = 0;
  bool registered_ = false;
  bool closed_ = false;
};

HttpSite::Impl::Impl() : accept_ex(asio::make_strand(ioc)), acceptor(accept_ex) {
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  port = acceptor.local_endpoint().port();
  asio::co_spawn(accept_ex, accept_loop(), [this](const std::exception_ptr& e) {
    LogFailure{"accept loop"}(e);
    const std::lock_guard lock(mu);
    accept_done = true;
    idle.notify_all();
  });
  thread = std::thread([this] {
    try {
      ioc.run();
    } catch (const std::exception& e) {
      spdlog::error("http_site: io thread: {}", e.what());
    }
  });
}

HttpSite::Impl::~Impl() {
  std::vector<std::shared_ptr<Session>> live;
  {
    const std::lock_guard lock(mu);
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
      spdlog::warn("http_site: {} connections still open after {} s; stopping", sessions.size(),
                   kStopGrace.count());
    }
  }
  ioc.stop();
  thread.join();
}

bool HttpSite::Impl::add(const std::shared_ptr<Session>& session, uint64_t& id) {
  const std::lock_guard lock(mu);
  if (stopping) return false;
  id = ++next_session;
  sessions.emplace(id, session);
  return true;
}

void HttpSite::Impl::remove(uint64_t id) {
  const std::lock_guard lock(mu);
  sessions.erase(id);
  if (sessions.empty()) idle.notify_all();
}

SitePage HttpSite::Impl::page_for(const std::string& target) {
  const std::string path = target.substr(0, target.find('?'));
  const std::lock_guard lock(mu);
  requested.push_back(target);
  if (auto it = pages.find(path); it != pages.end()) return it->second;
  SitePage missing = SitePage::text(fmt::format("no page at {}", path));
  missing.status = 404;
  return missing;
}

awaitable<void> HttpSite::Impl::accept_loop() {
  for (;;) {
    error_code ec;
    const asio::any_io_executor session_ex = asio::make_strand(ioc);
    tcp::socket socket =
        co_await acceptor.async_accept(session_ex, asio::redirect_error(use_awaitable, ec));
    if (stopping || !acceptor.is_open()) co_return;
    if (ec) {
      asio::steady_timer backoff(accept_ex, milliseconds(10));
      co_await backoff.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto session = std::make_shared<Session>(*this, std::move(socket));
    uint64_t id = 0;
    if (!add(session, id)) co_return;
    session->set_id(id);
    asio::co_spawn(session_ex, Session::run(std::move(session)), LogFailure{"session"});
  }
}

HttpSite::HttpSite() : impl_(std::make_unique<Impl>()) {}
HttpSite::~HttpSite() = default;

uint16_t HttpSite::port() const { return impl_->port; }

std::string HttpSite::url(std::string_view path) const {
  return fmt::format("http://127.0.0.1:{}{}", impl_->port, path);
}

void HttpSite::set(std::string path, SitePage page) {
  const std::lock_guard lock(impl_->mu);
  impl_->pages[std::move(path)] = std::move(page);
}

std::vector<std::string> HttpSite::requested() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->requested;
}

size_t HttpSite::request_count() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->requested.size();
}

}  // namespace parley::fakes
