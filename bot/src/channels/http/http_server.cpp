// clang-format off
#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros
// clang-format on

#include "parley/bot/channels/http/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <map>
#include <mutex>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "channels/http/message_request.h"
#include "parley/base/text.h"

namespace parley::bot::channels {

namespace asio = net::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;
using net::tcp;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
using Request = bhttp::request<bhttp::string_body>;

namespace http_server_internal {
class Session;
}  // namespace http_server_internal

struct HttpServer::State {
  State(net::Executor e, HttpServerOptions o, MessageHandler h, ReadyCheck r)
      : ex(std::move(e)),
        accept_ex(asio::make_strand(ex)),
        options(std::move(o)),
        handler(std::move(h)),
        ready(std::move(r)),
        acceptor(accept_ex) {}

  // Registers a new connection; false once stopping (the connection is then dropped).
  bool add(const std::shared_ptr<http_server_internal::Session>& session, uint64_t& id) {
    const std::lock_guard lock(mu);
    if (stopping) return false;
    id = ++next_session;
    sessions.emplace(id, session);
    return true;
  }
  void remove(uint64_t id) {
    const std::lock_guard lock(mu);
    sessions.erase(id);
  }

  const net::Executor ex;
  const net::Executor accept_ex;  // a strand: the acceptor lives on it
  const HttpServerOptions options;
  const MessageHandler handler;
  const ReadyCheck ready;
  tcp::acceptor acceptor;  // used on accept_ex only (and by start() before accepting)

  std::atomic<uint16_t> port{0};
  std::atomic<bool> started{false};
  std::atomic<bool> stopping{false};  // written under mu
  std::atomic<size_t> active{0};
  std::atomic<size_t> open{0};

  // The registry only lets stop() reach every connection; the message path never locks it.
  std::mutex mu;
  std::map<uint64_t, std::weak_ptr<http_server_internal::Session>> sessions;  // GUARDED_BY(mu)
  uint64_t next_session = 0;                                                  // GUARDED_BY(mu)
};

namespace http_server_internal {
namespace {

using State = HttpServer::State;

constexpr uint32_t kHeaderLimit = 16 * 1024;
// After an error answered before the request was read to its end: how long and how much of the
// rest is read and discarded, so that closing does not reset the connection (and lose the
// answer) while the client is still sending.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 1u << 20;

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

// Time depends on the length of `expected` only, never on where the two differ.
bool constant_time_equal(std::string_view given, std::string_view expected) {
  unsigned diff = given.size() == expected.size() ? 0u : 1u;
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto g = static_cast<unsigned char>(i < given.size() ? given[i] : 0);
    diff |= static_cast<unsigned>(g ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

// The completion of every coroutine spawned here: failures are logged, never rethrown into
// run().
struct LogFailure {
  const char* what;
  void operator()(const std::exception_ptr& e) const {
    if (e) spdlog::error("http: {} failed: {}", what, describe(e));
  }
};

// What to answer: always JSON.
struct Reply {
  unsigned status = 200;
  json body;
  std::vector<std::pair<std::string, std::string>> headers;
  // The answer to a ?stream=1 request: the body goes out as the last server-sent event
  // (`event: reply`, or `event: error` when the status is not 200 after the stream began).
  bool sse = false;
  bool client_gone = false;  // a streamed answer's client closed the connection: nothing to write
  std::optional<std::string> raw;  // a page: this body as it is, with content_type
  std::string content_type;
  std::optional<PageRequest> page;  // precheck(): the page to render (render_page()) first
};

Reply error_reply(unsigned status, std::string message) {
  Reply r;
  r.status = status;
  r.body = json::object();
  r.body["error"] = std::move(message);
  return r;
}

// 404, naming the routes there are (`pages`: the pages of HttpServerOptions::pages too).
Reply no_route(std::string_view path, bool pages) {
  return error_reply(
      404,
      fmt::format("no route for {}; routes: POST /v1/messages, GET /healthz, GET /readyz{}", path,
                  pages ? ", GET /api/usage, /api/credits, /api/alerts, /reports, /metrics, "
                          "/files/…"
                        : ""));
}

Reply method_not_allowed(std::string_view method, std::string_view path, const char* allow) {
  Reply r = error_reply(405, fmt::format("{} is not allowed on {}; use {}", method, path, allow));
  r.headers.emplace_back("Allow", allow);
  return r;
}

// The answer to a request that could not be read, if one can still be sent.
std::optional<Reply> read_error_reply(const error_code& ec, size_t body_limit) {
  if (ec == bhttp::error::body_limit) {
    return error_reply(413, fmt::format("the body exceeds {} bytes", body_limit));
  }
  if (ec == bhttp::error::header_limit) {
    return error_reply(431, fmt::format("the headers exceed {} bytes", kHeaderLimit));
  }
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) return {};
  if (ec.category() ==
      bhttp::make_error_code(bhttp::error::bad_target).category()) {  // any other parse error
    return error_reply(400, fmt::format("malformed HTTP request: {}", ec.message()));
  }
  return {};  // socket errors, timeout (the stream closed the socket), stop()
}

// Validates POST /v1/messages: a MessageRequest, or the 400 that says what is wrong.
std::variant<Reply, MessageRequest> parse_message(const Request& req) {
  auto msg = parse_message_request(sv(req.target()), req.body());
  if (!msg) return error_reply(400, std::move(msg).error().message);
  return std::move(*msg);
}

// Counts one request in State::active for as long as any holder keeps it: the connection until
// the answer is written, the handler's completion until the handler returns.
class RequestToken {
 public:
  explicit RequestToken(std::shared_ptr<State> st) : st_(std::move(st)) { ++st_->active; }
  ~RequestToken() { --st_->active; }
  RequestToken(const RequestToken&) = delete;
  RequestToken& operator=(const RequestToken&) = delete;

 private:
  std::shared_ptr<State> st_;
};

}  // namespace

// One connection: reads requests one after another (keep-alive), answers each, on its own
// strand. stop() is posted there by HttpServer::stop().
class Session {
 public:
  Session(std::shared_ptr<State> st, tcp::socket socket)
      : st_(std::move(st)), ex_(socket.get_executor()), stream_(std::move(socket)) {
    ++st_->open;
  }
  ~Session() {
    if (registered_) st_->remove(id_);
    --st_->open;
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void set_id(uint64_t id) {
    id_ = id;
    registered_ = true;
  }
  // The connection's strand.
  [[nodiscard]] const net::Executor& executor() const { return ex_; }

  // A page of options.pages, or the 404 listing the routes.
  static awaitable<Reply> render_page(std::shared_ptr<HttpServer::State> st, PageRequest pr);

  static awaitable<void> run(std::shared_ptr<Session> self) {
    Session& s = *self;
    co_await s.serve();
  }

  // REQUIRES: on the connection's strand. A connection waiting for a request that has not begun
  // closes now; one inside a request finishes it first.
  void stop() {
    stopping_ = true;
    const bool begun = buffer_.size() != 0 || (parser_ && parser_->got_some());
    if (waiting_ && !begun) close();
  }

 private:
  awaitable<void> serve();
  // nullopt: the request may go to the handler.
  [[nodiscard]] std::optional<Reply> precheck(const Request& req) const;
  [[nodiscard]] bool authorized(const Request& req) const;
  [[nodiscard]] Reply readiness() const;
  awaitable<Reply> answer(MessageRequest msg, const std::shared_ptr<RequestToken>& token,
                          bool keep_alive, unsigned version);
  awaitable<bool> write(const Reply& reply, bool keep_alive, bool head, unsigned version);
  // Server-sent events: the headers (chunked text/event-stream), one event per chunk, the end.
  awaitable<bool> sse_begin(bool keep_alive, unsigned version);
  awaitable<bool> sse_event(const std::string& event);
  awaitable<bool> sse_end();
  // Closes after an answer sent before the request was read to its end.
  awaitable<void> linger_close();
  void close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  std::shared_ptr<State> st_;
  const net::Executor ex_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  uint64_t id_ = 0;
  bool registered_ = false;
  bool stopping_ = false;
  bool waiting_ = true;       // between requests (or before the first)
  bool sse_started_ = false;  // the current request's event stream has begun
};

awaitable<void> Session::serve() {
  const HttpServerOptions& o = st_->options;
  while (!stopping_) {
    waiting_ = true;
    parser_.emplace();
    parser_->body_limit(o.body_limit);
    parser_->header_limit(kHeaderLimit);
    const auto deadline = SteadyClock::now() + o.read_timeout;
    stream_.expires_at(deadline);
    error_code ec;
    co_await bhttp::async_read_header(stream_, buffer_, *parser_,
                                      asio::redirect_error(use_awaitable, ec));
    const auto started = SteadyClock::now();
    waiting_ = false;
    const std::optional<Reply> read_error =
        ec ? read_error_reply(ec, o.body_limit) : std::optional<Reply>{};
    if (ec && !read_error) break;  // closed, timed out, stopped: nothing to answer
    auto token = std::make_shared<RequestToken>(st_);

    std::string method = "-";
    std::string path = "-";
    if (parser_->is_header_done()) {
      const Request& head = parser_->get();
      method = std::string(head.method_string());
      const std::string_view target = sv(head.target());
      path = std::string(target.substr(0, target.find('?')));
    }
    const auto log = [&](unsigned status) {
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
      spdlog::debug("http: {} {} {} {} ms", method, path, status, ms.count());
    };

    if (read_error) {
      const unsigned version = parser_->is_header_done() ? parser_->get().version() : 11;
      co_await write(*read_error, /*keep_alive=*/false, /*head=*/false, version);
      log(read_error->status);
      co_await linger_close();
      co_return;
    }

    const Request& req = parser_->get();
    const bool head = req.method() == bhttp::verb::head;
    std::optional<Reply> early = precheck(req);
    if (!early && !parser_->is_done()) {
      // The body is wanted: say so to a client that waits for it, then read it.
      const auto expect = req.find(bhttp::field::expect);
      if (expect != req.end() && iequals(sv(expect->value()), "100-continue")) {
        bhttp::response<bhttp::empty_body> proceed{bhttp::status::continue_, req.version()};
        stream_.expires_after(o.read_timeout);
        co_await bhttp::async_write(stream_, proceed, asio::redirect_error(use_awaitable, ec));
        if (ec) break;
      }
      stream_.expires_at(deadline);
      co_await bhttp::async_read(stream_, buffer_, *parser_,
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) {
        const auto reply = read_error_reply(ec, o.body_limit);
        if (!reply) break;
        co_await write(*reply, /*keep_alive=*/false, head, req.version());
        log(reply->status);
        co_await linger_close();
        co_return;
      }
    }

    if (early && early->page) {
      auto st = st_;
      auto pr = std::move(*early->page);
      if (st->options.page_executor) {
        // Off the io threads: a report may scan the whole ledger.
        early = co_await asio::co_spawn(*st->options.page_executor, render_page(st, std::move(pr)),
                                        use_awaitable);
      } else {
        early = co_await render_page(st, std::move(pr));
      }
    }
    Reply reply;
    if (early) {
      reply = std::move(*early);
    } else {
      auto parsed = parse_message(req);
      if (auto* bad = std::get_if<Reply>(&parsed)) {
        reply = std::move(*bad);
      } else {
        MessageRequest msg = std::move(std::get<MessageRequest>(parsed));
        reply =
            co_await answer(std::move(msg), token, req.keep_alive() && !stopping_, req.version());
      }
    }

    // A body left unread (an early answer) cannot be skipped reliably: close after answering.
    const bool read_all = parser_->is_done();
    const bool keep_alive = req.keep_alive() && read_all && !stopping_;
    const bool written = co_await write(reply, keep_alive, head, req.version());
    sse_started_ = false;
    log(reply.status);
    token.reset();
    if (!written) co_return;
    if (!keep_alive) {
      if (!read_all) {
        co_await linger_close();
        co_return;
      }
      break;
    }
  }
  close();
}

std::optional<Reply> Session::precheck(const Request& req) const {
  const std::string_view target = sv(req.target());
  const std::string_view path = target.substr(0, target.find('?'));
  const std::string_view method = sv(req.method_string());
  if (path == "/healthz") {
    if (req.method() != bhttp::verb::get) return method_not_allowed(method, path, "GET");
    Reply r;
    r.body = {{"status", "ok"}};
    if (st_->options.health) r.body["channels"] = st_->options.health();
    if (st_->options.storage_health) r.body["storage"] = st_->options.storage_health();
    return r;
  }
  if (!authorized(req)) {
    Reply r = error_reply(401, "missing or invalid bearer token (Authorization: Bearer <token>)");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  if (path == "/readyz") {
    if (req.method() != bhttp::verb::get) return method_not_allowed(method, path, "GET");
    return readiness();
  }
  if (path == "/v1/messages") {
    if (req.method() != bhttp::verb::post) return method_not_allowed(method, path, "POST");
    return std::nullopt;
  }
  if (st_->options.pages &&
      (req.method() == bhttp::verb::get || req.method() == bhttp::verb::head)) {
    const size_t q = target.find('?');
    PageRequest pr{std::string(path),
                   q == std::string_view::npos ? std::string() : std::string(target.substr(q + 1))};
    Reply r;
    r.page = std::move(pr);  // rendered by serve(), on options.page_executor when given
    return r;
  }
  return no_route(path, static_cast<bool>(st_->options.pages));
}

awaitable<Reply> Session::render_page(std::shared_ptr<HttpServer::State> st, PageRequest pr) {
  std::optional<Page> page;
  try {
    page = st->options.pages(pr);
  } catch (const std::exception& e) {
    spdlog::error("http: GET {} failed: {}", pr.path, e.what());
    co_return error_reply(500, fmt::format("GET {} failed", pr.path));
  }
  if (!page) {
    co_return no_route(pr.path, true);
  }
  Reply r;
  r.status = page->status >= 200 && page->status <= 599 ? static_cast<unsigned>(page->status) : 500;
  r.raw = std::move(page->body);
  r.content_type = std::move(page->content_type);
  r.headers = std::move(page->headers);
  co_return r;
}

bool Session::authorized(const Request& req) const {
  const std::string& token = st_->options.bearer_token;
  if (token.empty()) return true;
  const auto it = req.find(bhttp::field::authorization);
  if (it == req.end()) return false;
  const std::string_view value = trim(sv(it->value()));
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() || !iequals(value.substr(0, kScheme.size()), kScheme) ||
      (value[kScheme.size()] != ' ' && value[kScheme.size()] != '\t')) {
    return false;
  }
  return constant_time_equal(trim(value.substr(kScheme.size())), token);
}

Reply Session::readiness() const {
  bool ready = !st_->stopping;
  if (ready && st_->ready) {
    try {
      ready = st_->ready();
    } catch (const std::exception& e) {
      spdlog::error("http: the readiness check threw: {}", e.what());
      ready = false;
    }
  }
  Reply r;
  r.status = ready ? 200 : 503;
  r.body = {{"status", ready ? "ready" : "not ready"}};
  return r;
}

awaitable<Reply> Session::answer(MessageRequest msg, const std::shared_ptr<RequestToken>& token,
                                 bool keep_alive, unsigned version) {
  // Shared with the handler's completion, which may come after the 504.
  struct Pending {
    explicit Pending(const net::Executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    bool done = false;
    bool abandoned = false;  // answered 504: the late result is only logged
    std::exception_ptr error;
    MessageResponse response;
    std::vector<std::string> events;  // streamed events not yet written (only on the strand)
  };
  const net::Executor& ex = ex_;
  auto p = std::make_shared<Pending>(ex);
  const auto turn_timeout = st_->options.turn_timeout;
  p->timer.expires_after(turn_timeout);
  const bool streaming = msg.stream;
  if (streaming) {
    // The handler's text arrives on its own strand: brought here, then written by the wait
    // loop below (woken by cancelling its timer wait).
    msg.emit = [p, ex](const std::string& text, bool restart) {
      asio::post(ex, [p, text, restart] {
        if (p->abandoned) return;
        if (restart) p->events.emplace_back("event: restart\ndata: {}\n\n");
        p->events.push_back("data: " + dump(json{{"delta", text}}) + "\n\n");
        p->timer.cancel();
      });
    };
  }

  std::optional<awaitable<MessageResponse>> work;
  try {
    work.emplace(st_->handler(std::move(msg)));
  } catch (...) {
    p->error = std::current_exception();
  }
  if (!work) {
    spdlog::error("http: the message handler failed: {}", describe(p->error));
    co_return error_reply(500, "internal error");
  }

  // The completion runs on this strand (the handler's executor), so it meets the wait below in
  // order.
  asio::co_spawn(
      ex, std::move(*work), [p, token, turn_timeout](std::exception_ptr e, MessageResponse r) {
        p->done = true;
        if (p->abandoned) {
          if (e) {
            spdlog::error("http: the message handler failed after its 504: {}", describe(e));
          } else {
            spdlog::warn(
                "http: the message handler answered {} after the {} s turn timeout; "
                "the answer was dropped",
                r.status, turn_timeout.count());
          }
          return;
        }
        p->error = std::move(e);
        p->response = std::move(r);
        p->timer.cancel();
      });

  for (;;) {
    error_code ec;
    co_await p->timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (!p->events.empty()) {
      // Text to stream: the headers first, then the events queued, one chunk per batch.
      bool ok = sse_started_;
      if (!ok) {
        ok = co_await sse_begin(keep_alive, version);
      }
      while (ok && !p->events.empty()) {
        std::string batch;
        for (auto& e : std::exchange(p->events, {})) batch += e;
        ok = co_await sse_event(batch);
      }
      if (!ok) {
        // The client went away: the turn goes on (its reply is stored); nothing more to write.
        p->abandoned = true;
        Reply gone = error_reply(499, "the client closed the connection");  // logged as 499
        gone.client_gone = true;
        co_return gone;
      }
      if (!p->done) continue;
    }
    if (p->done || SteadyClock::now() >= p->timer.expiry()) break;
  }
  if (!p->done) {
    p->abandoned = true;
    spdlog::warn("http: the message handler did not answer within {} s (504)",
                 turn_timeout.count());
    Reply late =
        error_reply(504, fmt::format("the turn did not finish within {} s", turn_timeout.count()));
    late.sse = sse_started_;
    co_return late;
  }
  if (p->error) {
    spdlog::error("http: the message handler failed: {}", describe(p->error));
    co_return error_reply(500, "internal error");
  }
  if (p->response.status < 200 || p->response.status > 599) {
    spdlog::error("http: the message handler answered status {}, outside 200..599",
                  p->response.status);
    co_return error_reply(500, "internal error");
  }
  Reply r;
  r.status = static_cast<unsigned>(p->response.status);
  r.body = std::move(p->response.body);
  // A streamed request answers in events when it succeeded or its stream had begun; an error
  // before any text is an ordinary JSON error with its status.
  r.sse = streaming && (r.status == 200 || sse_started_);
  for (auto& [field, value] : p->response.headers) r.headers.emplace_back(field, std::move(value));
  co_return r;
}

awaitable<bool> Session::sse_begin(bool keep_alive, unsigned version) {
  bhttp::response<bhttp::empty_body> res{bhttp::status::ok, version};
  res.set(bhttp::field::content_type, "text/event-stream");
  res.set(bhttp::field::cache_control, "no-store");
  res.set("X-Accel-Buffering", "no");
  res.keep_alive(keep_alive);
  res.chunked(true);
  bhttp::response_serializer<bhttp::empty_body> sr{res};
  stream_.expires_after(st_->options.read_timeout);
  error_code ec;
  co_await bhttp::async_write_header(stream_, sr, asio::redirect_error(use_awaitable, ec));
  sse_started_ = !ec;
  co_return !ec;
}

awaitable<bool> Session::sse_event(const std::string& event) {
  stream_.expires_after(st_->options.read_timeout);
  error_code ec;
  co_await asio::async_write(stream_, bhttp::make_chunk(asio::buffer(event)),
                             asio::redirect_error(use_awaitable, ec));
  co_return !ec;
}

awaitable<bool> Session::sse_end() {
  stream_.expires_after(st_->options.read_timeout);
  error_code ec;
  co_await asio::async_write(stream_, bhttp::make_chunk_last(),
                             asio::redirect_error(use_awaitable, ec));
  co_return !ec;
}

awaitable<bool> Session::write(const Reply& reply, bool keep_alive, bool head, unsigned version) {
  if (reply.client_gone) co_return false;
  if (reply.sse && !head) {
    bool ok = sse_started_;
    if (!ok) {
      ok = co_await sse_begin(keep_alive, version);
    }
    const char* kind = reply.status == 200 ? "reply" : "error";
    json body = reply.body;
    if (reply.status != 200) body["status"] = reply.status;
    if (ok) {
      ok = co_await sse_event(fmt::format("event: {}\ndata: {}\n\n", kind, dump(body)));
    }
    if (ok) {
      ok = co_await sse_end();
    }
    co_return ok;
  }
  bhttp::response<bhttp::string_body> res;
  res.version(version);
  res.result(reply.status);
  res.set(bhttp::field::content_type,
          reply.raw ? reply.content_type : std::string("application/json"));
  res.set(bhttp::field::cache_control, "no-store");
  for (const auto& [field, value] : reply.headers) res.set(field, value);
  res.keep_alive(keep_alive);
  std::string body = reply.raw ? *reply.raw : dump(reply.body);
  if (head) {
    res.content_length(body.size());  // a HEAD answer has the headers of the GET, no body
  } else {
    res.body() = std::move(body);
    res.prepare_payload();
  }
  stream_.expires_after(st_->options.read_timeout);
  error_code ec;
  co_await bhttp::async_write(stream_, res, asio::redirect_error(use_awaitable, ec));
  co_return !ec;
}

awaitable<void> Session::linger_close() {
  error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream_.expires_after(kLingerTime);
  std::string scratch(4096, '\0');
  size_t total = 0;
  while (!ec && total < kLingerBytes) {
    const size_t n = co_await stream_.async_read_some(asio::buffer(scratch),
                                                      asio::redirect_error(use_awaitable, ec));
    total += n;
  }
  stream_.close();
}

namespace {

awaitable<void> accept_loop(std::shared_ptr<State> st) {
  size_t failures = 0;  // accept errors since the last warning
  auto last_warning = SteadyClock::time_point{};
  for (;;) {
    error_code ec;
    const net::Executor session_ex = asio::make_strand(st->ex);
    tcp::socket socket =
        co_await st->acceptor.async_accept(session_ex, asio::redirect_error(use_awaitable, ec));
    if (st->stopping || !st->acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: back off instead of spinning or giving up, and warn at
      // most once a second.
      ++failures;
      if (const auto now = SteadyClock::now(); now - last_warning >= std::chrono::seconds(1)) {
        spdlog::warn("http: accept failed {} time(s), last: {}", failures, ec.message());
        failures = 0;
        last_warning = now;
      }
      asio::steady_timer backoff(st->accept_ex, std::chrono::milliseconds(10));
      co_await backoff.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto session = std::make_shared<Session>(st, std::move(socket));
    uint64_t id = 0;
    if (!st->add(session, id)) co_return;
    session->set_id(id);
    asio::co_spawn(session_ex, Session::run(std::move(session)), LogFailure{"connection"});
  }
}

std::string endpoint_text(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return a.is_v6() ? fmt::format("[{}]:{}", a.to_string(), ep.port())
                   : fmt::format("{}:{}", a.to_string(), ep.port());
}

bool is_loopback(const asio::ip::address& a) {
  if (a.is_v4()) return a.to_v4().is_loopback();
  const auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).is_loopback();
  return v6.is_loopback();
}

}  // namespace
}  // namespace http_server_internal

using http_server_internal::Session;

HttpServer::HttpServer(net::Executor ex, HttpServerOptions options, MessageHandler handler,
                       ReadyCheck ready)
    : state_(std::make_shared<State>(std::move(ex), std::move(options), std::move(handler),
                                     std::move(ready))) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start() {
  State& st = *state_;
  const HttpServerOptions& o = st.options;
  if (st.stopping) return fail(ErrorCode::invalid_argument, "http: start() after stop()");
  if (st.started.exchange(true)) return fail(ErrorCode::invalid_argument, "http: already started");
  bool ok = false;
  struct ResetUnlessOk {
    State& st;
    bool& ok;
    ~ResetUnlessOk() {
      if (!ok) st.started = false;
    }
  } reset{st, ok};

  std::string host = o.host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  error_code ec;
  asio::ip::address address;
  if (host == "localhost") {
    address = asio::ip::address(asio::ip::address_v4::loopback());
  } else {
    address = asio::ip::make_address(host, ec);
    if (ec) {
      tcp::resolver resolver(st.ex);
      const auto results = resolver.resolve(host, "", ec);
      if (ec || results.empty()) {
        return fail(ErrorCode::invalid_argument,
                    fmt::format("http: cannot resolve host {}: {}", o.host,
                                ec ? ec.message() : "no address"));
      }
      address = results.begin()->endpoint().address();
    }
  }
  if (!http_server_internal::is_loopback(address) && o.bearer_token.empty()) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("http: host {} is not a loopback address: set a bearer token to "
                            "listen on it (or listen on 127.0.0.1)",
                            o.host));
  }

  const tcp::endpoint endpoint(address, o.port);
  const std::string where = http_server_internal::endpoint_text(endpoint);
  auto failed = [&](const char* step) {
    error_code ignored;
    st.acceptor.close(ignored);
    return fail(ErrorCode::unavailable,
                fmt::format("http: cannot listen on {}: {} ({})", where, ec.message(), step));
  };
  st.acceptor.open(endpoint.protocol(), ec);
  if (ec) return failed("socket");
  st.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return failed("SO_REUSEADDR");
  st.acceptor.bind(endpoint, ec);
  if (ec) return failed("bind");
  st.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return failed("listen");
  const auto local = st.acceptor.local_endpoint(ec);
  if (ec) return failed("getsockname");
  st.port = local.port();

  asio::co_spawn(st.accept_ex, http_server_internal::accept_loop(state_),
                 http_server_internal::LogFailure{"accept loop"});
  spdlog::info("http: listening on {}{}", http_server_internal::endpoint_text(local),
               o.bearer_token.empty() ? "" : " (bearer token required)");
  ok = true;
  return {};
}

uint16_t HttpServer::port() const { return state_->port; }

void HttpServer::stop() {
  const std::shared_ptr<State> st = state_;
  std::vector<std::shared_ptr<Session>> live;
  {
    const std::lock_guard lock(st->mu);
    if (st->stopping) return;
    st->stopping = true;
    for (auto& [id, weak] : st->sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  asio::post(st->accept_ex, [st] {
    error_code ec;
    st->acceptor.close(ec);
  });
  for (auto& s : live) {
    const net::Executor ex = s->executor();
    asio::post(ex, [s = std::move(s)] { s->stop(); });
  }
  if (st->started) spdlog::info("http: stopped accepting; {} connection(s) closing", live.size());
}

size_t HttpServer::active_requests() const { return state_->active; }
size_t HttpServer::open_connections() const { return state_->open; }

}  // namespace parley::bot::channels
