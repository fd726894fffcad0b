#include "fakes/fake_llm.h"

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
#include <ctime>
#include <deque>
#include <exception>
#include <mutex>
#include <string_view>
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

constexpr size_t kBodyLimit = 64u << 20;
constexpr const char* kDefaultModel = "fake/model";
// How long the destructor waits for connections to wind down before stopping the io_context.
constexpr auto kStopGrace = std::chrono::seconds(5);

std::string dump(const json& j) {
  // Scripted text is not validated: never throw on invalid UTF-8, replace it.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0u) == 0x80u; }

size_t count_chars(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return !is_continuation(c); }));
}

// Splits `s` into pieces of `n` UTF-8 characters (the last may be shorter), never inside a
// multibyte character. n == 0: one piece.
std::vector<std::string> split_chars(std::string_view s, size_t n) {
  std::vector<std::string> out;
  if (n == 0) n = s.size() + 1;
  size_t start = 0;
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (is_continuation(s[i])) continue;
    if (chars == n) {
      out.emplace_back(s.substr(start, i - start));
      start = i;
      chars = 0;
    }
    ++chars;
  }
  if (start < s.size()) out.emplace_back(s.substr(start));
  return out;
}

bool bool_at(const json& j, const char* key) {
  if (!j.is_object()) return false;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

json usage_json(const FakeUsage& u) {
  json j = json::object();
  j["prompt_tokens"] = u.prompt_tokens;
  j["completion_tokens"] = u.completion_tokens;
  j["total_tokens"] = u.prompt_tokens + u.completion_tokens;
  if (u.cached_tokens != 0) j["prompt_tokens_details"] = {{"cached_tokens", u.cached_tokens}};
  if (u.reasoning_tokens != 0) {
    j["completion_tokens_details"] = {{"reasoning_tokens", u.reasoning_tokens}};
  }
  if (u.cost) j["cost"] = *u.cost;
  return j;
}

json error_json(int code, const std::string& message) {
  json e = json::object();
  e["message"] = message;
  e["code"] = code;
  return json{{"error", e}};
}

// What every rendering of one reply shares.
struct Rendering {
  std::string generation_id;
  std::string model;
  int64_t created = 0;
  std::string finish_reason;
};

std::string completion_body(const FakeReply& r, const Rendering& g) {
  json message = json::object();
  message["role"] = "assistant";
  message["content"] = r.content.empty() && !r.tool_calls.empty() ? json(nullptr) : json(r.content);
  if (!r.tool_calls.empty()) {
    json calls = json::array();
    for (const auto& c : r.tool_calls) {
      json fn = json::object();
      fn["name"] = c.name;
      fn["arguments"] = c.arguments;
      json call = json::object();
      call["id"] = c.id;
      call["type"] = "function";
      call["function"] = std::move(fn);
      calls.push_back(std::move(call));
    }
    message["tool_calls"] = std::move(calls);
  }
  json choice = json::object();
  choice["index"] = 0;
  choice["message"] = std::move(message);
  choice["finish_reason"] = g.finish_reason;
  json body = json::object();
  body["id"] = g.generation_id;
  body["object"] = "chat.completion";
  body["created"] = g.created;
  body["model"] = g.model;
  body["choices"] = json::array({std::move(choice)});
  if (r.usage) body["usage"] = usage_json(*r.usage);
  return dump(body);
}

// The `data:` payloads of a streamed reply, "[DONE]" included.
std::vector<std::string> stream_payloads(const FakeReply& r, const Rendering& g,
                                         bool include_usage_requested) {
  const bool usage_chunk = r.usage && (r.usage_in_stream || include_usage_requested);
  auto chunk = [&](json delta, json finish_reason) {
    json choice = json::object();
    choice["index"] = 0;
    choice["delta"] = std::move(delta);
    choice["finish_reason"] = std::move(finish_reason);
    json c = json::object();
    c["id"] = g.generation_id;
    c["object"] = "chat.completion.chunk";
    c["created"] = g.created;
    c["model"] = g.model;
    c["choices"] = json::array({std::move(choice)});
    if (include_usage_requested) c["usage"] = nullptr;  // OpenAI: null until the last chunk
    return dump(c);
  };

  std::vector<std::string> out;
  out.push_back(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
  for (auto& piece : split_chars(r.content, r.delta_chars)) {
    out.push_back(chunk({{"content", std::move(piece)}}, nullptr));
  }
  for (size_t i = 0; i < r.tool_calls.size(); ++i) {
    const auto& call = r.tool_calls[i];
    const size_t index = r.reuse_index0 ? 0 : i;
    json first = json::object();
    first["index"] = index;
    first["id"] = call.id;
    first["type"] = "function";
    first["function"] = {{"name", call.name}, {"arguments", ""}};
    out.push_back(chunk({{"tool_calls", json::array({std::move(first)})}}, nullptr));
    // The arguments in two fragments, as real servers cut them anywhere.
    for (auto& fragment : split_chars(call.arguments, (count_chars(call.arguments) + 1) / 2)) {
      json more = json::object();
      more["index"] = index;
      more["function"] = {{"arguments", std::move(fragment)}};
      out.push_back(chunk({{"tool_calls", json::array({std::move(more)})}}, nullptr));
    }
  }
  out.push_back(chunk(json::object(), g.finish_reason));
  if (usage_chunk) {
    json c = json::object();
    c["id"] = g.generation_id;
    c["object"] = "chat.completion.chunk";
    c["created"] = g.created;
    c["model"] = g.model;
    c["choices"] = json::array();
    c["usage"] = usage_json(*r.usage);
    out.push_back(dump(c));
  }
  out.emplace_back("[DONE]");
  return out;
}

// OpenRouter's shape of an error after generation started: a chunk with `error` and a choice
// finished with "error".
std::string error_event_payload(const FakeReply& r, const Rendering& g) {
  json choice = json::object();
  choice["index"] = 0;
  choice["delta"] = {{"content", ""}};
  choice["finish_reason"] = "error";
  json c = json::object();
  c["id"] = g.generation_id;
  c["object"] = "chat.completion.chunk";
  c["created"] = g.created;
  c["model"] = g.model;
  c["error"] = error_json(r.error_event_code, r.error_message)["error"];
  c["choices"] = json::array({std::move(choice)});
  return dump(c);
}

std::string models_body() {
  json model = json::object();
  model["id"] = kDefaultModel;
  model["object"] = "model";
  model["created"] = 0;
  model["owned_by"] = "fake";
  json body = json::object();
  body["object"] = "list";
  body["data"] = json::array({std::move(model)});
  return dump(body);
}

// The completion handler of every coroutine: failures are logged, never rethrown into run().
struct LogFailure {
  const char* what;
  void operator()(const std::exception_ptr& e) const {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::warn("fake_llm: {} failed: {}", what, ex.what());
    } catch (...) {
      spdlog::warn("fake_llm: {} failed: unknown exception", what);
    }
  }
};

}  // namespace

struct FakeLlmServer::Impl {
  class Session;

  explicit Impl(Options o);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Registers a new session; false once stopping (the session is then dropped).
  bool add(const std::shared_ptr<Session>& session, uint64_t& id);
  void remove(uint64_t id);
  // Records the request and chooses its reply: the queue, else the handler, else the default.
  FakeReply next_reply(const RecordedRequest& request);
  awaitable<void> accept_loop();

  const Options options;
  std::atomic<size_t> accepted{0};
  std::atomic<size_t> open{0};
  std::atomic<uint64_t> generations{0};
  std::atomic<bool> stopping{false};

  mutable std::mutex mu;
  std::condition_variable idle;                         // sessions emptied / accept loop ended
  std::deque<FakeReply> queue;                          // GUARDED_BY(mu)
  Handler handler;                                      // GUARDED_BY(mu)
  std::vector<RecordedRequest> requests;                // GUARDED_BY(mu)
  std::map<uint64_t, std::weak_ptr<Session>> sessions;  // GUARDED_BY(mu)
  uint64_t next_session = 0;                            // GUARDED_BY(mu)
  bool accept_done = false;                             // GUARDED_BY(mu)

  // Declared after the state above: destroying the io_context may destroy sessions, which
  // unregister themselves.
  asio::io_context ioc;
  asio::any_io_executor accept_ex;  // a strand
  tcp::acceptor acceptor;
  uint16_t port = 0;
  std::vector<std::thread> threads;
};

// One connection: reads requests one after another (keep-alive) and answers each. Runs on its
// own strand; close() is posted there by the server's destructor.
class FakeLlmServer::Impl::Session {
 public:
  Session(Impl& impl, tcp::socket socket)
      : impl_(impl), socket_(std::move(socket)), timer_(socket_.get_executor()) {
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
  awaitable<void> serve();
  // Each returns whether the connection may serve another request.
  awaitable<bool> respond(const http::request<http::string_body>& req);
  awaitable<bool> chat(const http::request<http::string_body>& req);
  awaitable<bool> send_simple(unsigned status, std::string body, std::string content_type,
                              const FakeReply* reply, const std::string& generation_id,
                              bool keep_alive);
  awaitable<bool> send_stream(const FakeReply& reply, const Rendering& g, bool include_usage,
                              bool keep_alive);
  // false when closed or the wait was cancelled by close().
  awaitable<bool> wait(milliseconds d);
  awaitable<bool> write_raw(std::string bytes);

  // The chunked body of a stream: pieces of `write_bytes` (0: whatever each add() gives), each
  // its own HTTP chunk and socket write, `interval` between writes.
  struct Chunker {
    size_t write_bytes = 0;
    milliseconds interval{0};
    std::string pending;
    bool wrote = false;
  };
  awaitable<bool> add(Chunker& c, std::string bytes);
  awaitable<bool> flush(Chunker& c);
  awaitable<bool> finish(Chunker& c);  // flush, then the terminating chunk
  awaitable<bool> chunk(Chunker& c, std::string data);

  Impl& impl_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  uint64_t id_ = 0;
  bool registered_ = false;
  bool closed_ = false;
};

awaitable<bool> FakeLlmServer::Impl::Session::wait(milliseconds d) {
  if (closed_) co_return false;
  if (d.count() <= 0) co_return true;
  timer_.expires_after(d);
  error_code ec;
  co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
  co_return !closed_;
}

awaitable<bool> FakeLlmServer::Impl::Session::write_raw(std::string bytes) {
  if (closed_) co_return false;
  error_code ec;
  co_await asio::async_write(socket_, asio::buffer(bytes), asio::redirect_error(use_awaitable, ec));
  co_return !ec && !closed_;
}

// GCC 12.2 miscompiles a co_await inside a condition whose operand is a temporary std::string
// (`if (!co_await f(std::string("x")))` crashes at -O0 and -O2, while `bool ok = co_await
// f(std::string("x"));` works): every co_await here stands alone in a declaration or an
// assignment.
awaitable<bool> FakeLlmServer::Impl::Session::chunk(Chunker& c, std::string data) {
  if (c.wrote && c.interval.count() > 0) {
    const bool ok = co_await wait(c.interval);
    if (!ok) co_return false;
  }
  c.wrote = true;
  std::string framed = fmt::format("{:x}\r\n", data.size());
  framed += data;
  framed += "\r\n";
  const bool ok = co_await write_raw(std::move(framed));
  co_return ok;
}

awaitable<bool> FakeLlmServer::Impl::Session::add(Chunker& c, std::string bytes) {
  c.pending += bytes;
  if (c.write_bytes == 0) {
    const bool ok = co_await flush(c);
    co_return ok;
  }
  while (c.pending.size() >= c.write_bytes) {
    std::string piece = c.pending.substr(0, c.write_bytes);
    c.pending.erase(0, c.write_bytes);
    const bool ok = co_await chunk(c, std::move(piece));
    if (!ok) co_return false;
  }
  co_return true;
}

awaitable<bool> FakeLlmServer::Impl::Session::flush(Chunker& c) {
  if (c.pending.empty()) co_return true;
  std::string piece = std::move(c.pending);
  c.pending.clear();
  const bool ok = co_await chunk(c, std::move(piece));
  co_return ok;
}

awaitable<bool> FakeLlmServer::Impl::Session::finish(Chunker& c) {
  bool ok = co_await flush(c);
  if (!ok) co_return false;
  if (c.wrote && c.interval.count() > 0) {
    ok = co_await wait(c.interval);
    if (!ok) co_return false;
  }
  std::string last = "0\r\n\r\n";
  ok = co_await write_raw(std::move(last));
  co_return ok;
}

awaitable<void> FakeLlmServer::Impl::Session::serve() {
  beast::flat_buffer buffer;
  while (!closed_) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    error_code ec;
    co_await http::async_read(socket_, buffer, parser, asio::redirect_error(use_awaitable, ec));
    if (ec || closed_) break;
    const bool more = co_await respond(parser.get());
    if (!more) break;
  }
  if (!closed_) {
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    socket_.close(ec);
  }
}

awaitable<bool> FakeLlmServer::Impl::Session::respond(const http::request<http::string_body>& req) {
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  if (req.method() == http::verb::post && ends_with(path, "/chat/completions")) {
    const bool more = co_await chat(req);
    co_return more;
  }
  const std::string generation_id = fmt::format("gen-{}", ++impl_.generations);
  unsigned status = 200;
  std::string body;
  if (req.method() == http::verb::get && ends_with(path, "/models")) {
    body = models_body();
  } else {
    status = 404;
    const std::string method(req.method_string());
    body = dump(error_json(404, fmt::format("no route for {} {}", method, target)));
  }
  std::string content_type = "application/json";
  const bool more = co_await send_simple(status, std::move(body), std::move(content_type), nullptr,
                                         generation_id, req.keep_alive());
  co_return more;
}

awaitable<bool> FakeLlmServer::Impl::Session::chat(const http::request<http::string_body>& req) {
  RecordedRequest rec;
  rec.method = std::string(req.method_string());
  rec.target = std::string(req.target());
  for (const auto& field : req) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(), [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    auto [it, inserted] = rec.headers.emplace(name, std::string(field.value()));
    if (!inserted) it->second += ", " + std::string(field.value());
  }
  rec.body = req.body();
  rec.json = json::parse(rec.body, nullptr, /*allow_exceptions=*/false);
  rec.received = std::chrono::steady_clock::now();

  const FakeReply reply = impl_.next_reply(rec);
  const bool keep_alive = req.keep_alive();

  Rendering g;
  g.generation_id = reply.generation_id.empty() ? fmt::format("gen-{}", ++impl_.generations)
                                                : reply.generation_id;
  g.model = reply.model;
  if (g.model.empty() && rec.json.is_object()) {
    if (auto m = rec.json.find("model"); m != rec.json.end() && m->is_string()) {
      g.model = m->get<std::string>();
    }
  }
  if (g.model.empty()) g.model = kDefaultModel;
  g.created = static_cast<int64_t>(std::time(nullptr));
  g.finish_reason = !reply.finish_reason.empty() ? reply.finish_reason
                    : reply.tool_calls.empty()   ? "stop"
                                                 : "tool_calls";

  const bool stream = bool_at(rec.json, "stream");
  bool include_usage = false;
  if (rec.json.is_object()) {
    if (auto so = rec.json.find("stream_options"); so != rec.json.end()) {
      include_usage = bool_at(*so, "include_usage");
    }
  }

  const bool waited = co_await wait(reply.delay_before_headers);
  if (!waited) co_return false;

  if (reply.status == 200 && stream && !reply.ignore_stream) {
    const bool more = co_await send_stream(reply, g, include_usage, keep_alive);
    co_return more;
  }
  std::string body = reply.raw_body;
  if (body.empty()) {
    body = reply.status != 200 ? dump(error_json(reply.status, reply.error_message))
                               : completion_body(reply, g);
  }
  std::string content_type = "application/json";
  const bool more =
      co_await send_simple(static_cast<unsigned>(reply.status), std::move(body),
                           std::move(content_type), &reply, g.generation_id, keep_alive);
  co_return more;
}

awaitable<bool> FakeLlmServer::Impl::Session::send_simple(unsigned status, std::string body,
                                                          std::string content_type,
                                                          const FakeReply* reply,
                                                          const std::string& generation_id,
                                                          bool keep_alive) {
  if (closed_) co_return false;
  http::response<http::string_body> res;
  res.version(11);
  res.result(status);
  res.set(http::field::content_type, content_type);
  res.set("X-Generation-Id", generation_id);
  if (reply != nullptr) {
    if (reply->retry_after_s) {
      res.set(http::field::retry_after, std::to_string(*reply->retry_after_s));
    }
    for (const auto& [name, value] : reply->headers) res.set(name, value);
  }
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  error_code ec;
  co_await http::async_write(socket_, res, asio::redirect_error(use_awaitable, ec));
  co_return !ec && !closed_ && keep_alive;
}

awaitable<bool> FakeLlmServer::Impl::Session::send_stream(const FakeReply& reply,
                                                          const Rendering& g, bool include_usage,
                                                          bool keep_alive) {
  std::string head =
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/event-stream\r\n"
      "Cache-Control: no-cache\r\n"
      "Transfer-Encoding: chunked\r\n";
  head += fmt::format("X-Generation-Id: {}\r\n", g.generation_id);
  if (reply.retry_after_s) head += fmt::format("Retry-After: {}\r\n", *reply.retry_after_s);
  for (const auto& [name, value] : reply.headers) head += fmt::format("{}: {}\r\n", name, value);
  if (!keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
  bool ok = co_await write_raw(std::move(head));
  if (!ok) co_return false;

  Chunker out;
  out.write_bytes = reply.write_bytes;
  out.interval = reply.interval;
  const std::string eol = reply.crlf ? "\r\n" : "\n";

  if (!reply.raw_body.empty()) {  // verbatim body, no events
    ok = co_await add(out, reply.raw_body);
    if (ok) ok = co_await finish(out);
    co_return (ok && keep_alive);
  }

  if (reply.comment) {
    std::string comment = ": OPENROUTER PROCESSING" + eol + eol;
    ok = co_await add(out, std::move(comment));
    if (!ok) co_return false;
  }
  const std::vector<std::string> payloads = stream_payloads(reply, g, include_usage);
  // Faults act at the boundary after `sent` events: stall, then error event, then truncation.
  for (size_t sent = 0;; ++sent) {
    if (reply.stall_after_events == sent) {
      ok = co_await flush(out);
      if (ok) ok = co_await wait(reply.stall);
      if (!ok) co_return false;
    }
    if (reply.error_event_after_events == sent) {
      std::string event = "data: " + error_event_payload(reply, g) + eol + eol;
      ok = co_await add(out, std::move(event));
      if (ok) ok = co_await finish(out);
      co_return (ok && keep_alive);
    }
    if (reply.truncate_after_events == sent) {
      ok = co_await flush(out);
      close();
      co_return false;
    }
    if (sent == payloads.size()) break;
    std::string event = "data: " + payloads[sent] + eol + eol;
    ok = co_await add(out, std::move(event));
    if (!ok) co_return false;
  }
  ok = co_await finish(out);
  co_return (ok && keep_alive);
}

FakeLlmServer::Impl::Impl(Options o)
    : options(std::move(o)),
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
    LogFailure{"accept loop"}(e);
    const std::lock_guard lock(mu);
    accept_done = true;
    idle.notify_all();
  });
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    threads.emplace_back([this] {
      try {
        ioc.run();
      } catch (const std::exception& e) {
        spdlog::error("fake_llm: io thread: {}", e.what());
      }
    });
  }
}

FakeLlmServer::Impl::~Impl() {
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
    // Every operation was cancelled: the threads' run() returns on its own. The grace period
    // only guards against a bug here turning into a hung test.
    std::unique_lock lock(mu);
    if (!idle.wait_for(lock, kStopGrace, [this] { return sessions.empty() && accept_done; })) {
      spdlog::warn("fake_llm: {} connections still open after {} s; stopping", sessions.size(),
                   kStopGrace.count());
    }
  }
  ioc.stop();
  for (auto& t : threads) t.join();
}

bool FakeLlmServer::Impl::add(const std::shared_ptr<Session>& session, uint64_t& id) {
  const std::lock_guard lock(mu);
  if (stopping) return false;
  id = ++next_session;
  sessions.emplace(id, session);
  return true;
}

void FakeLlmServer::Impl::remove(uint64_t id) {
  const std::lock_guard lock(mu);
  sessions.erase(id);
  if (sessions.empty()) idle.notify_all();
}

FakeReply FakeLlmServer::Impl::next_reply(const RecordedRequest& request) {
  Handler h;
  {
    const std::lock_guard lock(mu);
    requests.push_back(request);
    if (!queue.empty()) {
      FakeReply r = std::move(queue.front());
      queue.pop_front();
      return r;
    }
    h = handler;  // called unlocked: it may call back into the server
  }
  if (h) {
    try {
      if (auto r = h(request)) return std::move(*r);
    } catch (const std::exception& e) {
      spdlog::warn("fake_llm: handler threw: {}", e.what());
      FakeReply r = FakeReply::error(500);
      r.error_message = fmt::format("fake handler threw: {}", e.what());
      return r;
    }
  }
  return options.default_reply;
}

awaitable<void> FakeLlmServer::Impl::accept_loop() {
  size_t failures = 0;  // accept errors since the last warning
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
      if (const auto now = std::chrono::steady_clock::now();
          now - last_warning >= std::chrono::seconds(1)) {
        spdlog::warn("fake_llm: accept failed {} time(s), last: {}", failures, ec.message());
        failures = 0;
        last_warning = now;
      }
      asio::steady_timer backoff(accept_ex, milliseconds(10));
      co_await backoff.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    ++accepted;
    socket.set_option(tcp::no_delay(true), ec);  // SSE events must not wait for Nagle
    auto session = std::make_shared<Session>(*this, std::move(socket));
    uint64_t id = 0;
    if (!add(session, id)) co_return;
    session->set_id(id);
    asio::co_spawn(session_ex, Session::run(std::move(session)), LogFailure{"session"});
  }
}

// --- FakeReply builders ----------------------------------------------------------------------

FakeReply FakeReply::text(std::string content, FakeUsage usage) {
  FakeReply r;
  r.content = std::move(content);
  r.usage = usage;
  return r;
}

FakeReply FakeReply::tools(std::vector<FakeToolCall> calls, FakeUsage usage) {
  FakeReply r;
  r.tool_calls = std::move(calls);
  r.usage = usage;
  return r;
}

FakeReply FakeReply::error(int status, std::optional<int> retry_after_s) {
  FakeReply r;
  r.status = status;
  r.retry_after_s = retry_after_s;
  r.usage.reset();
  return r;
}

FakeReply FakeReply::malformed() {
  FakeReply r;
  r.raw_body = "{\"choices\": [";
  return r;
}

// --- FakeLlmServer ---------------------------------------------------------------------------

FakeLlmServer::FakeLlmServer() : FakeLlmServer(Options{}) {}
FakeLlmServer::FakeLlmServer(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
FakeLlmServer::~FakeLlmServer() = default;

uint16_t FakeLlmServer::port() const { return impl_->port; }

std::string FakeLlmServer::base_url() const {
  return fmt::format("http://127.0.0.1:{}/v1", impl_->port);
}

void FakeLlmServer::push(FakeReply reply) {
  const std::lock_guard lock(impl_->mu);
  impl_->queue.push_back(std::move(reply));
}

void FakeLlmServer::set_handler(Handler handler) {
  const std::lock_guard lock(impl_->mu);
  impl_->handler = std::move(handler);
}

std::vector<RecordedRequest> FakeLlmServer::requests() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->requests;
}

size_t FakeLlmServer::request_count() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->requests.size();
}

size_t FakeLlmServer::connections_accepted() const { return impl_->accepted; }
size_t FakeLlmServer::open_connections() const { return impl_->open; }

}  // namespace parley::fakes
