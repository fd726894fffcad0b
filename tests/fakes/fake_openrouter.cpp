#include "fakes/fake_openrouter.h"

// clang-format off
#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros
// clang-format on

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

namespace parley::fakes {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;
using nlohmann::json;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

constexpr std::string_view kPrefix = "/api/v1";
// How long the destructor waits for connections to wind down before stopping the io_context.
constexpr auto kStopGrace = std::chrono::seconds(5);

struct LogFailure {
  const char* what;
  void operator()(const std::exception_ptr& e) const {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::warn("fake_openrouter: {} failed: {}", what, ex.what());
    } catch (...) {
      spdlog::warn("fake_openrouter: {} failed: unknown exception", what);
    }
  }
};

json number_or_null(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

// OpenRouter's error body.
std::string error_body(int status, const std::string& message) {
  json e = json::object();
  e["code"] = status;
  e["message"] = message;
  return json{{"error", e}}.dump();
}

// What one request is answered with.
struct Reply {
  int status = 200;
  std::string body;
  milliseconds delay{0};
};

}  // namespace

FakeAnswer FakeAnswer::error(int status, std::string message) {
  FakeAnswer a;
  a.status = status;
  a.message = std::move(message);
  return a;
}

FakeAnswer FakeAnswer::malformed() { return raw(R"({"data": {"usage": 1.5, )"); }

FakeAnswer FakeAnswer::raw(std::string body, int status) {
  FakeAnswer a;
  a.status = status;
  a.body = std::move(body);
  return a;
}

FakeAnswer FakeAnswer::delayed(milliseconds delay) {
  FakeAnswer a;
  a.delay = delay;
  return a;
}

struct FakeOpenRouter::Impl {
  class Session;

  explicit Impl(Options o);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  bool add(const std::shared_ptr<Session>& session, uint64_t& id);
  void remove(uint64_t id);
  Reply answer(const http::request<http::string_body>& req);
  awaitable<void> accept_loop();

  std::atomic<bool> stopping{false};
  mutable std::mutex mu;
  std::condition_variable idle;
  Options options;                                                // GUARDED_BY(mu)
  FakeKeyInfo key;                                                // GUARDED_BY(mu)
  FakeCredits credits;                                            // GUARDED_BY(mu)
  std::map<OpenRouterEndpoint, std::deque<FakeAnswer>> scripted;  // GUARDED_BY(mu)
  std::map<OpenRouterEndpoint, size_t> counts;                    // GUARDED_BY(mu)
  std::vector<OpenRouterRequest> recorded;                        // GUARDED_BY(mu)
  std::map<uint64_t, std::weak_ptr<Session>> sessions;            // GUARDED_BY(mu)
  uint64_t next_session = 0;                                      // GUARDED_BY(mu)
  bool accept_done = false;                                       // GUARDED_BY(mu)

  // After the state above: destroying the io_context may destroy sessions, which unregister.
  asio::io_context ioc;
  asio::any_io_executor accept_ex;  // a strand
  tcp::acceptor acceptor;
  uint16_t port = 0;
  std::thread thread;
};

// One connection: reads requests one after another (keep-alive) and answers each. Runs on its
// own strand; close() is posted there by the destructor.
class FakeOpenRouter::Impl::Session {
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
  // GCC 12 miscompiles a co_await inside a condition (see net.h): every co_await here stands
  // alone in a declaration or an assignment.
  awaitable<void> serve() {
    beast::flat_buffer buffer;
    while (!closed_) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(1u << 20);
      error_code ec;
      co_await http::async_read(socket_, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec || closed_) break;
      const auto& req = parser.get();
      Reply reply = impl_.answer(req);
      const bool keep_alive = req.keep_alive();
      const bool more = co_await respond(std::move(reply), keep_alive);
      if (!more) break;
    }
    if (!closed_) {
      error_code ec;
      socket_.shutdown(tcp::socket::shutdown_send, ec);
      socket_.close(ec);
    }
  }

  awaitable<bool> respond(Reply reply, bool keep_alive) {
    if (reply.delay.count() > 0) {
      timer_.expires_after(reply.delay);
      error_code ec;
      co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    if (closed_) co_return false;
    http::response<http::string_body> res;
    res.version(11);
    res.result(static_cast<unsigned>(reply.status));
    res.set(http::field::content_type, "application/json");
    res.keep_alive(keep_alive);
    res.body() = std::move(reply.body);
    res.prepare_payload();
    error_code ec;
    co_await http::async_write(socket_, res, asio::redirect_error(use_awaitable, ec));
    co_return !ec && !closed_ && keep_alive;
  }

  Impl& impl_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  uint64_t id_ = 0;
  bool registered_ = false;
  bool closed_ = false;
};

FakeOpenRouter::Impl::Impl(Options o)
    : options(std::move(o)), accept_ex(asio::make_strand(ioc)), acceptor(accept_ex) {
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
      spdlog::error("fake_openrouter: io thread: {}", e.what());
    }
  });
}

FakeOpenRouter::Impl::~Impl() {
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
      spdlog::warn("fake_openrouter: {} connections still open after {} s; stopping",
                   sessions.size(), kStopGrace.count());
    }
  }
  ioc.stop();
  thread.join();
}

bool FakeOpenRouter::Impl::add(const std::shared_ptr<Session>& session, uint64_t& id) {
  const std::lock_guard lock(mu);
  if (stopping) return false;
  id = ++next_session;
  sessions.emplace(id, session);
  return true;
}

void FakeOpenRouter::Impl::remove(uint64_t id) {
  const std::lock_guard lock(mu);
  sessions.erase(id);
  if (sessions.empty()) idle.notify_all();
}

Reply FakeOpenRouter::Impl::answer(const http::request<http::string_body>& req) {
  const std::string target(req.target());
  const std::string path = target.substr(0, target.find('?'));
  const auto auth_it = req.find(http::field::authorization);
  const std::string authorization =
      auth_it == req.end() ? std::string() : std::string(auth_it->value());

  const std::lock_guard lock(mu);
  recorded.push_back(OpenRouterRequest{std::string(req.method_string()), target, authorization});

  std::optional<OpenRouterEndpoint> endpoint;
  if (path == fmt::format("{}/key", kPrefix) || path == fmt::format("{}/auth/key", kPrefix)) {
    endpoint = OpenRouterEndpoint::key;
  } else if (path == fmt::format("{}/credits", kPrefix)) {
    endpoint = OpenRouterEndpoint::credits;
  }
  if (!endpoint) return Reply{404, error_body(404, fmt::format("Not Found: {}", path))};
  ++counts[*endpoint];

  milliseconds delay{0};
  auto& queue = scripted[*endpoint];
  if (!queue.empty()) {
    FakeAnswer a = std::move(queue.front());
    queue.pop_front();
    delay = a.delay;
    if (a.status != 200 || !a.body.empty()) {
      std::string body = a.body.empty() ? error_body(a.status, a.message) : std::move(a.body);
      return Reply{a.status, std::move(body), delay};
    }
  }
  if (req.method() != http::verb::get) {
    return Reply{405, error_body(405, "Method Not Allowed"), delay};
  }

  constexpr std::string_view kBearer = "Bearer ";
  const std::string presented =
      authorization.rfind(kBearer, 0) == 0 ? authorization.substr(kBearer.size()) : std::string();
  const bool is_api = !presented.empty() && presented == options.api_key;
  const bool is_management =
      !presented.empty() && !options.management_key.empty() && presented == options.management_key;
  if (!is_api && !is_management) {
    return Reply{
        401, error_body(401, presented.empty() ? "No auth credentials found" : "User not found."),
        delay};
  }

  json data = json::object();
  if (*endpoint == OpenRouterEndpoint::key) {
    data["label"] = key.label;
    data["limit"] = number_or_null(key.limit);
    data["limit_reset"] = key.limit_reset ? json(*key.limit_reset) : json(nullptr);
    data["limit_remaining"] = number_or_null(key.limit_remaining);
    data["include_byok_in_limit"] = false;
    data["usage"] = key.usage;
    data["usage_daily"] = key.usage_daily;
    data["usage_weekly"] = key.usage_weekly;
    data["usage_monthly"] = key.usage_monthly;
    data["byok_usage"] = 0;
    data["byok_usage_daily"] = 0;
    data["byok_usage_weekly"] = 0;
    data["byok_usage_monthly"] = 0;
    data["is_free_tier"] = key.is_free_tier;
    data["is_management_key"] = is_management;
    data["expires_at"] = nullptr;
    data["rate_limit"] = {{"requests", -1}, {"interval", "10s"}};
  } else {
    if (options.credits_need_management_key && !is_management) {
      return Reply{403, error_body(403, "Only management keys can perform this operation"), delay};
    }
    data["total_credits"] = credits.total_credits;
    data["total_usage"] = credits.total_usage;
  }
  return Reply{200, json{{"data", std::move(data)}}.dump(), delay};
}

awaitable<void> FakeOpenRouter::Impl::accept_loop() {
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

FakeOpenRouter::FakeOpenRouter() : FakeOpenRouter(Options{}) {}
FakeOpenRouter::FakeOpenRouter(Options options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
FakeOpenRouter::~FakeOpenRouter() = default;

uint16_t FakeOpenRouter::port() const { return impl_->port; }

std::string FakeOpenRouter::base_url() const {
  return fmt::format("http://127.0.0.1:{}{}", impl_->port, kPrefix);
}

void FakeOpenRouter::set_key(FakeKeyInfo info) {
  const std::lock_guard lock(impl_->mu);
  impl_->key = std::move(info);
}

void FakeOpenRouter::set_credits(FakeCredits credits) {
  const std::lock_guard lock(impl_->mu);
  impl_->credits = credits;
}

void FakeOpenRouter::set_credits_need_management_key(bool need) {
  const std::lock_guard lock(impl_->mu);
  impl_->options.credits_need_management_key = need;
}

void FakeOpenRouter::push(OpenRouterEndpoint endpoint, FakeAnswer answer) {
  const std::lock_guard lock(impl_->mu);
  impl_->scripted[endpoint].push_back(std::move(answer));
}

std::vector<OpenRouterRequest> FakeOpenRouter::requests() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->recorded;
}

size_t FakeOpenRouter::request_count(OpenRouterEndpoint endpoint) const {
  const std::lock_guard lock(impl_->mu);
  auto it = impl_->counts.find(endpoint);
  return it == impl_->counts.end() ? 0 : it->second;
}

size_t FakeOpenRouter::request_count() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->recorded.size();
}

}  // namespace parley::fakes
