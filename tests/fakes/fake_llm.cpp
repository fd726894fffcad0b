#include "fakes/fake_llm.h"

// clang-format off
#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros
// clang-format on

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <deque>
#include <exception>
#include <mutex>
#include <string_view>
#include <utility>

#include "fakes/fake_embedder.h"
#include "fakes/http_fake_server.h"

namespace parley::fakes {

namespace {

using asio::awaitable;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr size_t kBodyLimit = 64u << 20;
constexpr const char* kDefaultModel = "fake/model";

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

// What every chunk object of one reply starts with.
json chunk_head(const Rendering& g) {
  json c = json::object();
  c["id"] = g.generation_id;
  c["object"] = "chat.completion.chunk";
  c["created"] = g.created;
  c["model"] = g.model;
  return c;
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
    json c = chunk_head(g);
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
    json c = chunk_head(g);
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
  json c = chunk_head(g);
  c["error"] = error_json(r.error_event_code, r.error_message)["error"];
  c["choices"] = json::array({std::move(choice)});
  return dump(c);
}

// The request's inputs, or a message saying why they are not acceptable.
std::optional<std::string> embedding_inputs(const json& request, std::vector<std::string>& inputs) {
  if (!request.is_object()) return "the body is not a JSON object";
  auto input = request.find("input");
  if (input == request.end()) return "'input' is required";
  if (input->is_string()) {
    inputs.push_back(input->get<std::string>());
  } else if (input->is_array() && !input->empty()) {
    for (const auto& item : *input) {
      if (!item.is_string()) return "'input' must be a string or an array of strings";
      inputs.push_back(item.get<std::string>());
    }
  } else {
    return "'input' must be a string or a non-empty array of strings";
  }
  for (const auto& text : inputs) {
    if (text.empty()) return "'input' cannot contain an empty string";
  }
  return std::nullopt;
}

// The requested dimensions (kFakeEmbeddingDims when absent), or a message saying why not.
std::optional<std::string> embedding_dims(const json& request, int& dims) {
  dims = kFakeEmbeddingDims;
  if (auto d = request.find("dimensions"); d != request.end()) {
    if (!d->is_number_integer() || d->get<int64_t>() <= 0 || d->get<int64_t>() > 65536) {
      return "'dimensions' must be a positive integer";
    }
    dims = d->get<int>();
  }
  if (auto f = request.find("encoding_format"); f != request.end() && *f != "float") {
    return "the fake supports only encoding_format \"float\"";
  }
  return std::nullopt;
}

std::string embeddings_body(const std::vector<std::string>& inputs, int dims,
                            const std::string& model, const FakeReply* reply) {
  json data = json::array();
  int64_t tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    json item = json::object();
    item["object"] = "embedding";
    item["index"] = i;
    item["embedding"] = fake_embedding(inputs[i], dims);
    data.push_back(std::move(item));
    tokens += fake_embedding_tokens(inputs[i]);
  }
  if (reply != nullptr && reply->reverse_embeddings) std::reverse(data.begin(), data.end());
  json body = json::object();
  body["object"] = "list";
  body["data"] = std::move(data);
  body["model"] = model;
  if (reply == nullptr || reply->usage) {
    json usage = json::object();
    usage["prompt_tokens"] = tokens;
    usage["total_tokens"] = tokens;
    if (reply != nullptr && reply->usage->cost) usage["cost"] = *reply->usage->cost;
    body["usage"] = std::move(usage);
  }
  return dump(body);
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

// The chunked body of a stream on one connection: pieces of `write_bytes` (0: whatever each
// add() gives), each its own HTTP chunk and socket write, `interval` between writes.
class ChunkedBody {
 public:
  ChunkedBody(FakeConnection& conn, size_t write_bytes, milliseconds interval)
      : conn_(conn), write_bytes_(write_bytes), interval_(interval) {}

  awaitable<bool> add(std::string bytes);
  awaitable<bool> flush();
  awaitable<bool> finish();  // flush, then the terminating chunk

 private:
  awaitable<bool> chunk(std::string data);

  FakeConnection& conn_;
  const size_t write_bytes_;
  const milliseconds interval_;
  std::string pending_;
  bool wrote_ = false;
};

// GCC 12.2 miscompiles a co_await inside a condition whose operand is a temporary std::string
// (`if (!co_await f(std::string("x")))` crashes at -O0 and -O2, while `bool ok = co_await
// f(std::string("x"));` works): every co_await here stands alone in a declaration or an
// assignment.
awaitable<bool> ChunkedBody::chunk(std::string data) {
  if (wrote_ && interval_.count() > 0) {
    const bool ok = co_await conn_.wait(interval_);
    if (!ok) co_return false;
  }
  wrote_ = true;
  std::string framed = fmt::format("{:x}\r\n", data.size());
  framed += data;
  framed += "\r\n";
  const bool ok = co_await conn_.write_raw(std::move(framed));
  co_return ok;
}

awaitable<bool> ChunkedBody::add(std::string bytes) {
  pending_ += bytes;
  if (write_bytes_ == 0) {
    const bool ok = co_await flush();
    co_return ok;
  }
  while (pending_.size() >= write_bytes_) {
    std::string piece = pending_.substr(0, write_bytes_);
    pending_.erase(0, write_bytes_);
    const bool ok = co_await chunk(std::move(piece));
    if (!ok) co_return false;
  }
  co_return true;
}

awaitable<bool> ChunkedBody::flush() {
  if (pending_.empty()) co_return true;
  std::string piece = std::move(pending_);
  pending_.clear();
  const bool ok = co_await chunk(std::move(piece));
  co_return ok;
}

awaitable<bool> ChunkedBody::finish() {
  bool ok = co_await flush();
  if (!ok) co_return false;
  if (wrote_ && interval_.count() > 0) {
    ok = co_await conn_.wait(interval_);
    if (!ok) co_return false;
  }
  std::string last = "0\r\n\r\n";
  ok = co_await conn_.write_raw(std::move(last));
  co_return ok;
}

// A whole JSON answer with its X-Generation-Id; `reply` (may be null) adds its Retry-After and
// its own headers. Returns whether the connection may serve another request.
awaitable<bool> send_llm_json(FakeConnection& conn, unsigned status, std::string body,
                              const FakeReply* reply, const std::string& generation_id,
                              bool keep_alive) {
  FakeResponse res = make_fake_response(status, "application/json", std::move(body), keep_alive);
  res.set("X-Generation-Id", generation_id);
  if (reply != nullptr) {
    if (reply->retry_after_s) {
      res.set(http::field::retry_after, std::to_string(*reply->retry_after_s));
    }
    for (const auto& [name, value] : reply->headers) res.set(name, value);
  }
  const bool more = co_await conn.send(res);
  co_return more;
}

// A streamed answer: the event-stream head, then the events (or the verbatim body) in a chunked
// body, with the reply's faults at their boundaries.
awaitable<bool> send_llm_stream(FakeConnection& conn, const FakeReply& reply, const Rendering& g,
                                bool include_usage, bool keep_alive) {
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
  bool ok = co_await conn.write_raw(std::move(head));
  if (!ok) co_return false;

  ChunkedBody out(conn, reply.write_bytes, reply.interval);
  const std::string eol = reply.crlf ? "\r\n" : "\n";

  if (!reply.raw_body.empty()) {  // verbatim body, no events
    std::string raw = reply.raw_body;
    ok = co_await out.add(std::move(raw));
    if (ok) ok = co_await out.finish();
    co_return (ok && keep_alive);
  }

  if (reply.comment) {
    std::string comment = ": OPENROUTER PROCESSING" + eol + eol;
    ok = co_await out.add(std::move(comment));
    if (!ok) co_return false;
  }
  const std::vector<std::string> payloads = stream_payloads(reply, g, include_usage);
  // Faults act at the boundary after `sent` events: stall, then error event, then truncation.
  for (size_t sent = 0;; ++sent) {
    if (reply.stall_after_events == sent) {
      ok = co_await out.flush();
      if (ok) ok = co_await conn.wait(reply.stall);
      if (!ok) co_return false;
    }
    if (reply.error_event_after_events == sent) {
      std::string event = "data: " + error_event_payload(reply, g) + eol + eol;
      ok = co_await out.add(std::move(event));
      if (ok) ok = co_await out.finish();
      co_return (ok && keep_alive);
    }
    if (reply.truncate_after_events == sent) {
      ok = co_await out.flush();
      conn.close();
      co_return false;
    }
    if (sent == payloads.size()) break;
    std::string event = "data: " + payloads[sent] + eol + eol;
    ok = co_await out.add(std::move(event));
    if (!ok) co_return false;
  }
  ok = co_await out.finish();
  co_return (ok && keep_alive);
}

}  // namespace

struct FakeLlmServer::Impl {
  explicit Impl(Options o);

  // Records the request and chooses its reply: the queue, else the handler; nullopt when
  // neither has one.
  std::optional<FakeReply> scripted_reply(const RecordedRequest& request);
  // Each returns whether the connection may serve another request.
  awaitable<bool> respond(const FakeRequest& req, FakeConnection& conn);
  awaitable<bool> chat(const FakeRequest& req, FakeConnection& conn);
  awaitable<bool> embeddings(const FakeRequest& req, FakeConnection& conn);

  const Options options;
  std::atomic<uint64_t> generations{0};

  mutable std::mutex mu;
  std::deque<FakeReply> queue;            // GUARDED_BY(mu)
  Handler handler;                        // GUARDED_BY(mu)
  std::vector<RecordedRequest> requests;  // GUARDED_BY(mu)

  // Last: destroyed (stopped) first, while the state its handler reads still exists.
  HttpFakeServer server;
};

FakeLlmServer::Impl::Impl(Options o)
    : options(std::move(o)),
      server(HttpFakeServer::Options{"fake_llm", options.port, options.threads, kBodyLimit},
             [this](const FakeRequest& req, FakeConnection& conn) { return respond(req, conn); }) {}

awaitable<bool> FakeLlmServer::Impl::respond(const FakeRequest& req, FakeConnection& conn) {
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  if (req.method() == http::verb::post && ends_with(path, "/chat/completions")) {
    const bool more = co_await chat(req, conn);
    co_return more;
  }
  if (req.method() == http::verb::post && ends_with(path, "/embeddings")) {
    const bool more = co_await embeddings(req, conn);
    co_return more;
  }
  const std::string generation_id = fmt::format("gen-{}", ++generations);
  unsigned status = 200;
  std::string body;
  if (req.method() == http::verb::get && ends_with(path, "/models")) {
    body = models_body();
  } else {
    status = 404;
    const std::string method(req.method_string());
    body = dump(error_json(404, fmt::format("no route for {} {}", method, target)));
  }
  const bool keep_alive = req.keep_alive();
  const bool more =
      co_await send_llm_json(conn, status, std::move(body), nullptr, generation_id, keep_alive);
  co_return more;
}

namespace {

RecordedRequest record(const FakeRequest& req) {
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
  return rec;
}

}  // namespace

awaitable<bool> FakeLlmServer::Impl::embeddings(const FakeRequest& req, FakeConnection& conn) {
  const RecordedRequest rec = record(req);
  const std::optional<FakeReply> reply = scripted_reply(rec);
  const bool keep_alive = req.keep_alive();
  const std::string generation_id = reply && !reply->generation_id.empty()
                                        ? reply->generation_id
                                        : fmt::format("gen-{}", ++generations);
  if (reply) {
    const bool waited = co_await conn.wait(reply->delay_before_headers);
    if (!waited) co_return false;
  }

  unsigned status = 200;
  std::string body;
  if (reply && (reply->status != 200 || !reply->raw_body.empty())) {
    status = static_cast<unsigned>(reply->status);
    body = !reply->raw_body.empty() ? reply->raw_body
                                    : dump(error_json(reply->status, reply->error_message));
  } else {
    std::vector<std::string> inputs;
    int dims = kFakeEmbeddingDims;
    std::optional<std::string> problem = embedding_inputs(rec.json, inputs);
    if (!problem) problem = embedding_dims(rec.json, dims);
    std::string model = reply ? reply->model : std::string();
    if (model.empty() && rec.json.is_object()) {
      if (auto m = rec.json.find("model"); m != rec.json.end() && m->is_string()) {
        model = m->get<std::string>();
      }
    }
    if (model.empty()) problem = "'model' is required";
    if (problem) {
      status = 400;
      body = dump(error_json(400, *problem));
    } else {
      body = embeddings_body(inputs, dims, model, reply ? &*reply : nullptr);
    }
  }
  const bool more = co_await send_llm_json(conn, status, std::move(body), reply ? &*reply : nullptr,
                                           generation_id, keep_alive);
  co_return more;
}

awaitable<bool> FakeLlmServer::Impl::chat(const FakeRequest& req, FakeConnection& conn) {
  const RecordedRequest rec = record(req);
  const FakeReply reply = scripted_reply(rec).value_or(options.default_reply);
  const bool keep_alive = req.keep_alive();

  Rendering g;
  g.generation_id =
      reply.generation_id.empty() ? fmt::format("gen-{}", ++generations) : reply.generation_id;
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

  const bool waited = co_await conn.wait(reply.delay_before_headers);
  if (!waited) co_return false;

  if (reply.status == 200 && stream && !reply.ignore_stream) {
    const bool more = co_await send_llm_stream(conn, reply, g, include_usage, keep_alive);
    co_return more;
  }
  std::string body = reply.raw_body;
  if (body.empty()) {
    body = reply.status != 200 ? dump(error_json(reply.status, reply.error_message))
                               : completion_body(reply, g);
  }
  const auto status = static_cast<unsigned>(reply.status);
  const bool more =
      co_await send_llm_json(conn, status, std::move(body), &reply, g.generation_id, keep_alive);
  co_return more;
}

std::optional<FakeReply> FakeLlmServer::Impl::scripted_reply(const RecordedRequest& request) {
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
      return h(request);
    } catch (const std::exception& e) {
      spdlog::warn("fake_llm: handler threw: {}", e.what());
      FakeReply r = FakeReply::error(500);
      r.error_message = fmt::format("fake handler threw: {}", e.what());
      return r;
    }
  }
  return std::nullopt;
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

uint16_t FakeLlmServer::port() const { return impl_->server.port(); }

std::string FakeLlmServer::base_url() const {
  return fmt::format("http://127.0.0.1:{}/v1", impl_->server.port());
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

size_t FakeLlmServer::connections_accepted() const { return impl_->server.connections_accepted(); }
size_t FakeLlmServer::open_connections() const { return impl_->server.open_connections(); }

}  // namespace parley::fakes
