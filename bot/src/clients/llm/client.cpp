#include "parley/bot/clients/llm/client.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <random>

#include "parley/bot/clients/llm/sse_parser.h"

namespace parley::bot::llm {

namespace asio = net::asio;
using nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

std::string_view to_string(FailureKind kind) noexcept {
  switch (kind) {
    case FailureKind::none: return "ok";
    case FailureKind::connect_timeout: return "connect timeout";
    case FailureKind::first_byte_timeout: return "no response in time";
    case FailureKind::idle_timeout: return "stream stalled";
    case FailureKind::deadline: return "deadline exceeded";
    case FailureKind::connection: return "connection failed";
    case FailureKind::tls: return "TLS failure (certificate not trusted)";
    case FailureKind::rate_limited: return "rate limited";
    case FailureKind::server_error: return "server error";
    case FailureKind::billing: return "billing (out of credits)";
    case FailureKind::bad_request: return "bad request";
    case FailureKind::unauthorized: return "unauthorized";
    case FailureKind::forbidden: return "forbidden";
    case FailureKind::not_found: return "not found";
    case FailureKind::malformed: return "malformed response";
    case FailureKind::stream_error: return "error in the stream";
    case FailureKind::cancelled: return "cancelled";
    case FailureKind::not_configured: return "not configured";
    case FailureKind::budget: return "over budget";
  }
  return "unknown";
}

ErrorCode error_code(FailureKind kind) noexcept {
  switch (kind) {
    case FailureKind::none: return ErrorCode::internal;
    case FailureKind::connect_timeout:
    case FailureKind::first_byte_timeout:
    case FailureKind::idle_timeout:
    case FailureKind::deadline: return ErrorCode::deadline_exceeded;
    case FailureKind::connection:
    case FailureKind::tls:
    case FailureKind::server_error:
    case FailureKind::stream_error:
    case FailureKind::not_configured: return ErrorCode::unavailable;
    case FailureKind::rate_limited:
    case FailureKind::budget: return ErrorCode::resource_exhausted;
    case FailureKind::billing: return ErrorCode::billing;
    case FailureKind::bad_request: return ErrorCode::invalid_argument;
    case FailureKind::unauthorized: return ErrorCode::unauthenticated;
    case FailureKind::forbidden: return ErrorCode::permission_denied;
    case FailureKind::not_found: return ErrorCode::not_found;
    case FailureKind::malformed: return ErrorCode::internal;
    case FailureKind::cancelled: return ErrorCode::cancelled;
  }
  return ErrorCode::internal;
}

bool retry_same_model(FailureKind kind) noexcept {
  switch (kind) {
    case FailureKind::connect_timeout:
    case FailureKind::first_byte_timeout:
    case FailureKind::idle_timeout:
    case FailureKind::connection:
    case FailureKind::rate_limited:
    case FailureKind::server_error:
    case FailureKind::malformed:
    case FailureKind::stream_error: return true;
    default: return false;
  }
}

bool try_next_model(FailureKind kind) noexcept {
  // A budget refusal is priced per model: a cheaper fallback may still fit.
  return retry_same_model(kind) || kind == FailureKind::billing || kind == FailureKind::budget ||
         kind == FailureKind::tls;
}

Usage LlmResponse::total_usage() const { return llm::total_usage(attempts); }

Usage total_usage(const std::vector<Attempt>& attempts) {
  Usage total;
  bool any_cost = false;
  double cost = 0;
  for (const auto& a : attempts) {
    total.prompt_tokens += a.usage.prompt_tokens;
    total.completion_tokens += a.usage.completion_tokens;
    total.cached_tokens += a.usage.cached_tokens;
    total.reasoning_tokens += a.usage.reasoning_tokens;
    total.estimated = total.estimated || a.usage.estimated;
    if (a.usage.cost_usd) {
      any_cost = true;
      cost += *a.usage.cost_usd;
    }
  }
  if (any_cost) total.cost_usd = cost;
  return total;
}

namespace {

FailureKind kind_for_status(long status) {
  switch (status) {
    case 400:
    case 413:
    case 422: return FailureKind::bad_request;
    case 401: return FailureKind::unauthorized;
    case 402: return FailureKind::billing;
    case 403: return FailureKind::forbidden;
    case 404: return FailureKind::not_found;
    case 408:
    case 500:
    case 502:
    case 503:
    case 504: return FailureKind::server_error;
    case 429: return FailureKind::rate_limited;
    default: return status >= 500 ? FailureKind::server_error : FailureKind::bad_request;
  }
}

FailureKind kind_for_transport(http::Failure f) {
  switch (f) {
    case http::Failure::none: return FailureKind::none;
    case http::Failure::connect_timeout: return FailureKind::connect_timeout;
    case http::Failure::first_byte_timeout: return FailureKind::first_byte_timeout;
    case http::Failure::idle_timeout: return FailureKind::idle_timeout;
    case http::Failure::deadline: return FailureKind::deadline;
    case http::Failure::connect:
    case http::Failure::transport: return FailureKind::connection;
    case http::Failure::tls: return FailureKind::tls;
    case http::Failure::too_large:
    case http::Failure::aborted: return FailureKind::malformed;
    case http::Failure::cancelled: return FailureKind::cancelled;
  }
  return FailureKind::connection;
}

// The message of an OpenAI-style error body, else a short printable preview of it.
std::string error_text(std::string_view body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    if (auto e = j.find("error"); e != j.end()) {
      if (e->is_string()) return e->get<std::string>();
      if (e->is_object()) {
        if (auto m = e->find("message"); m != e->end() && m->is_string()) {
          return m->get<std::string>();
        }
      }
    }
    if (auto m = j.find("message"); m != j.end() && m->is_string()) return m->get<std::string>();
  }
  std::string out;
  for (char c : body.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  return out.empty() ? "(empty body)" : out;
}

// Retry-After: delta-seconds or an HTTP date.
std::optional<milliseconds> parse_retry_after(const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return milliseconds(std::numeric_limits<int32_t>::max());
    return milliseconds(std::stoll(value) * 1000);
  }
  const time_t when = curl_getdate(value.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  const time_t now = std::time(nullptr);
  return milliseconds(std::max<int64_t>(0, static_cast<int64_t>(when - now)) * 1000);
}

milliseconds backoff(const RetryPolicy& policy, int retry) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const int64_t base = policy.base_backoff.count();
  const int64_t cap = policy.max_backoff.count();
  const int64_t exp = std::min<int64_t>(cap, base << std::min(retry, 20));
  // "Equal jitter": half fixed, half random, so retries of many calls spread out.
  std::uniform_int_distribution<int64_t> dist(0, std::max<int64_t>(0, exp / 2));
  return milliseconds(exp / 2 + dist(rng));
}

// "application/json" from "Application/JSON; charset=utf-8".
std::string media_type(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && content_type.back() == ' ') content_type.remove_suffix(1);
  while (!content_type.empty() && content_type.front() == ' ') content_type.remove_prefix(1);
  std::string out(content_type);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_json_media(std::string_view media) {
  return media == "application/json" || media.ends_with("+json");
}

// Records a failure in `a` as one line naming the endpoint and the model (never the key).
void fail_attempt(Attempt& a, std::string_view call, FailureKind kind, const std::string& what) {
  a.failure = kind;
  a.error = fmt::format("{} to {} (model {}): {}", call,
                        a.endpoint.empty() ? a.provider : a.endpoint, a.model_asked, what);
}

// A POST of `body` to {base_url}{path} with the provider's key and headers and the timeouts.
http::Request make_request(const ResolvedProvider& provider, std::string_view path,
                           std::string body, bool stream, const Timeouts& t,
                           http::Clock::time_point deadline) {
  http::Request req;
  req.method = "POST";
  req.url = provider.config.base_url + std::string(path);
  req.headers.emplace_back("Content-Type: application/json");
  req.headers.emplace_back(stream ? "Accept: text/event-stream" : "Accept: application/json");
  if (!provider.api_key.empty()) req.headers.push_back("Authorization: Bearer " + provider.api_key);
  for (const auto& [name, value] : provider.config.headers) {
    req.headers.push_back(fmt::format("{}: {}", name, value));
  }
  req.body = std::move(body);
  req.connect_timeout = t.connect;
  req.first_byte_timeout = t.first_byte;
  req.idle_timeout = t.idle;
  req.deadline = std::min(deadline, http::Clock::now() + t.call);
  return req;
}

// The error of a call none of whose attempts succeeded.
std::string failure_message(const std::vector<Attempt>& attempts, FailureKind last,
                            size_t models_tried) {
  std::string message = attempts.back().error;
  if (last == FailureKind::deadline && attempts.back().failure != FailureKind::deadline) {
    message = "deadline passed after: " + message;
  }
  if (attempts.size() > 1 && last != FailureKind::budget) {
    message += fmt::format(" ({} attempts on {} model{})", attempts.size(), models_tried,
                           models_tried == 1 ? "" : "s");
  }
  return message;
}

// Per-attempt state shared with the body callback (which runs on the HTTP client's strand;
// the coroutine reads it only after the transfer completed).
struct StreamState {
  bool streaming = true;
  SseParser sse;
  ChatStream chat;
  Status status;  // first stream-level error
  // Error bodies, or the whole body when not streaming. A stream's body is kept here too until
  // its first event: a server that ignores "stream": true answers one JSON body (no events),
  // read as a non-streamed completion once the Content-Type says so.
  std::string raw;
  size_t raw_limit = 16u << 20;
  size_t emitted = 0;  // content bytes passed to on_text
  int attempt_no = 0;
  std::function<void(int, std::string_view)> on_text;
  net::Executor executor;
};

}  // namespace

asio::awaitable<SpendGate::Admission> SpendGate::confirm(const Admission& admission,
                                                         const CallOptions& /*options*/,
                                                         http::Clock::time_point /*deadline*/) {
  co_return admission;
}

LlmClient::LlmClient(http::CurlMulti& multi, ResolvedLlm settings, AttemptObserver observer,
                     SpendGate* gate)
    : multi_(multi), settings_(std::move(settings)), observer_(std::move(observer)), gate_(gate) {}

asio::awaitable<Attempt> LlmClient::attempt(const ChatRequest& request, const ResolvedModel& model,
                                            const CallOptions& options, int attempt_no,
                                            http::Clock::time_point deadline,
                                            std::optional<ChatResult>& result) {
  Attempt a;
  a.provider = model.provider;
  a.model_asked = model.model;
  auto fail_with = [&](FailureKind kind, const std::string& what) {
    fail_attempt(a, "LLM call", kind, what);
  };
  auto pit = settings_.providers.find(model.provider);
  if (pit == settings_.providers.end()) {
    fail_with(FailureKind::not_configured, fmt::format("unknown provider '{}'", model.provider));
    co_return a;
  }
  const ResolvedProvider& provider = pit->second;
  a.endpoint = endpoint_for_messages(provider.config.base_url);

  http::Request req =
      make_request(provider, "/chat/completions", request_body(request, model.model, model.options),
                   request.stream, settings_.timeouts, deadline);

  auto st = std::make_shared<StreamState>();
  st->streaming = request.stream;
  st->attempt_no = attempt_no;
  st->on_text = options.on_text;
  st->executor = co_await asio::this_coro::executor;
  http::OnBody on_body = [st](long status, std::string_view piece) -> bool {
    if (status != 200 || !st->streaming) {
      if (st->raw.size() + piece.size() > st->raw_limit) return false;
      st->raw.append(piece);
      return true;
    }
    if (st->sse.events() == 0 && st->raw.size() + piece.size() <= st->raw_limit) {
      st->raw.append(piece);
    }
    const auto fed = st->sse.feed(piece, [&st](SseEvent&& ev) {
      if (!st->status.ok() || st->chat.done()) return;
      if (auto s = st->chat.on_data(ev.data); !s.ok()) st->status = std::move(s);
    });
    if (!fed.ok() && st->status.ok()) st->status = fed;
    if (!st->status.ok()) return false;
    if (st->sse.events() > 0 && !st->raw.empty()) std::string().swap(st->raw);  // a real stream
    const auto& content = st->chat.result().content;
    if (st->on_text && content.size() > st->emitted) {
      asio::post(st->executor, [fn = st->on_text, n = st->attempt_no,
                                text = content.substr(st->emitted)] { fn(n, text); });
      st->emitted = content.size();
    }
    return true;
  };

  http::Response resp = co_await http::async_fetch(multi_, std::move(req), std::move(on_body));
  a.latency = resp.total;
  a.first_byte = resp.first_byte;
  a.http_status = static_cast<int>(resp.status);
  a.generation_id = resp.header("x-generation-id");

  bool reached_model = resp.status == 200 || resp.failure == http::Failure::first_byte_timeout;
  // A stream request answered without a single event and not as an event stream: a plain
  // completion (a server that ignores "stream": true) or something else entirely.
  const std::string media = media_type(resp.header("content-type"));
  const bool not_a_stream =
      st->streaming && st->sse.events() == 0 && !media.empty() && media != "text/event-stream";
  auto read_completion = [&]() {
    StreamError in_band;
    auto parsed = parse_completion(st->raw, &in_band);
    if (parsed.ok()) {
      result = std::move(parsed).value();
    } else if (!in_band.message.empty()) {
      const FailureKind k =
          in_band.code != 0 ? kind_for_status(in_band.code) : FailureKind::stream_error;
      fail_with(k == FailureKind::bad_request ? FailureKind::stream_error : k,
                fmt::format("error in the response body: {}", in_band.message));
    } else {
      fail_with(FailureKind::malformed, parsed.error().message);
    }
  };
  if (resp.failure != http::Failure::none && !st->status.ok()) {
    // The body callback stopped the transfer: the stream itself was bad.
    if (st->chat.in_band_error()) {
      const auto& e = *st->chat.in_band_error();
      const FailureKind k = e.code != 0 ? kind_for_status(e.code) : FailureKind::stream_error;
      fail_with(k == FailureKind::bad_request ? FailureKind::stream_error : k,
                fmt::format("error event in the stream: {}", e.message));
    } else {
      fail_with(FailureKind::malformed, st->status.error().message);
    }
  } else if (resp.failure != http::Failure::none) {
    fail_with(kind_for_transport(resp.failure),
              fmt::format("{}: {}", http::to_string(resp.failure), resp.error));
  } else if (resp.status != 200) {
    const FailureKind k = kind_for_status(resp.status);
    a.retry_after = parse_retry_after(resp.header("retry-after"));
    fail_with(k, fmt::format("HTTP {} {}: {}", resp.status, to_string(k), error_text(st->raw)));
  } else if (!st->streaming) {
    read_completion();
  } else if (not_a_stream && is_json_media(media)) {
    read_completion();
    if (result && options.on_text && !result->content.empty()) {
      options.on_text(attempt_no, result->content);  // the whole text, once
    }
  } else if (not_a_stream) {
    fail_with(FailureKind::malformed,
              fmt::format("HTTP 200 with Content-Type '{}' instead of an event stream: {}", media,
                          error_text(st->raw)));
  } else if (!st->chat.done() && st->chat.result().finish_reason.empty()) {
    fail_with(FailureKind::connection, st->sse.events() == 0
                                           ? "the stream ended without any event"
                                           : "the stream ended before it was complete (no [DONE])");
  } else {
    result = st->chat.take();
  }

  // What the attempt consumed.
  const ChatResult* seen = result ? &*result : &st->chat.result();
  if (seen->usage) {
    a.usage = *seen->usage;
  } else if (reached_model) {
    a.usage.estimated = true;
    a.usage.prompt_tokens = estimate_prompt_tokens(request);
    int64_t completion = estimate_tokens(seen->content) + estimate_tokens(seen->reasoning);
    for (const auto& c : seen->tool_calls) {
      completion += estimate_tokens(c.name) + estimate_tokens(c.arguments);
    }
    a.usage.completion_tokens = completion;
  }
  if (reached_model) a.model_answered = seen->model.empty() ? model.model : seen->model;
  if (a.generation_id.empty()) a.generation_id = seen->id;
  if (result && result->model.empty()) result->model = a.model_answered;
  co_return a;
}

std::vector<ResolvedModel> LlmClient::models_for(
    const CallOptions& options, const std::string& default_role, bool chat,
    std::optional<std::pair<FailureKind, std::string>>& error) {
  if (!options.models.empty()) return options.models;
  std::string role = options.role.empty() ? default_role : options.role;
  if (!chat) {
    // Embeddings need their own role only, not a usable chat configuration: e.g. a local
    // embedding server beside no chat model at all.
    auto it = settings_.roles.find(role);
    if (it != settings_.roles.end() && !it->second.empty()) return it->second;
  }
  if (!settings_.configured()) {
    error.emplace(FailureKind::not_configured, settings_.not_configured);
    return {};
  }
  if (chat && gate_ != nullptr) {
    std::string routed = gate_->route(options, role);
    if (routed != role && settings_.roles.count(routed) != 0) role = std::move(routed);
  }
  auto it = settings_.roles.find(role);
  if (it == settings_.roles.end() || it->second.empty()) {
    error.emplace(FailureKind::not_configured,
                  fmt::format("no model is configured for the role '{}'", role));
    return {};
  }
  return it->second;
}

asio::awaitable<FailureKind> LlmClient::on_model(const ResolvedModel& model,
                                                 const CallOptions& options,
                                                 http::Clock::time_point deadline,
                                                 const Admit& admit, const Send& send,
                                                 int& attempt_no, std::vector<Attempt>& attempts) {
  const auto& retry = settings_.retry;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  FailureKind last = FailureKind::none;
  for (int i = 0; i < std::max(1, retry.max_attempts); ++i) {
    if (http::Clock::now() >= deadline) {
      last = FailureKind::deadline;
      break;
    }
    SpendGate::Admission admission;
    if (gate_ != nullptr) {
      admission = admit();
      if (admission.ok) admission = co_await gate_->confirm(admission, options, deadline);
    }
    if (!admission.ok) {
      // Not sent: nothing consumed, no usage row. A cheaper fallback may still fit.
      Attempt refused;
      refused.provider = model.provider;
      refused.model_asked = model.model;
      refused.failure = last = FailureKind::budget;
      refused.error = admission.refusal;
      spdlog::info("LLM call for user {} not sent to {}: over budget", options.user_id,
                   model.model);
      attempts.push_back(std::move(refused));
      break;
    }
    Attempt a = co_await send(attempt_no++, admission);
    a.max_tokens_capped = admission.max_tokens;
    a.spend_hold = admission.spend_hold;
    last = a.failure;
    if (gate_ != nullptr) gate_->settle(admission, options, a);
    if (observer_) {
      try {
        observer_(options, a);
      } catch (const std::exception& e) {
        spdlog::error("LLM attempt observer failed: {}", e.what());
      }
    }
    if (a.failure != FailureKind::none) {
      spdlog::warn("{} [attempt {}]", a.error, attempt_no);
    }
    const std::optional<milliseconds> retry_after = a.retry_after;
    attempts.push_back(std::move(a));
    if (last == FailureKind::none) break;
    if (!retry_same_model(last) || i + 1 >= retry.max_attempts) break;
    milliseconds wait = retry_after ? *retry_after : backoff(retry, i);
    // A server asking for longer than we would ever wait: try the next model instead.
    if (retry_after && *retry_after > retry.max_backoff) break;
    if (http::Clock::now() + wait >= deadline) break;
    timer.expires_after(wait);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return last;
}

asio::awaitable<LlmResponse> LlmClient::call(ChatRequest request, CallOptions options) {
  const auto start = http::Clock::now();
  const auto deadline = options.deadline == http::Clock::time_point::max()
                            ? start + settings_.timeouts.turn
                            : options.deadline;
  LlmResponse out;
  auto finish_error = [&](FailureKind kind, std::string message) {
    out.failure = kind;
    out.error = Error{error_code(kind), std::move(message)};
    out.latency = duration_cast<microseconds>(http::Clock::now() - start);
  };

  std::optional<std::pair<FailureKind, std::string>> no_models;
  const std::vector<ResolvedModel> models =
      models_for(options, settings_.default_role, /*chat=*/true, no_models);
  if (no_models) {
    finish_error(no_models->first, std::move(no_models->second));
    co_return out;
  }

  if (gate_ != nullptr && !request.max_tokens) request.max_tokens = gate_->default_max_tokens();
  int attempt_no = 0;
  size_t models_tried = 0;
  FailureKind last = FailureKind::none;
  for (const auto& model : models) {
    ++models_tried;
    std::optional<ChatResult> result;
    const Admit admit = [&] { return gate_->admit(options, model, request); };
    const Send send = [&](int no, const SpendGate::Admission& admission) {
      // The budget covers fewer completion tokens than asked: ask for no more.
      if (admission.max_tokens) request.max_tokens = *admission.max_tokens;
      return attempt(request, model, options, no, deadline, result);
    };
    last = co_await on_model(model, options, deadline, admit, send, attempt_no, out.attempts);
    if (result) {
      out.result = std::move(result);
      out.latency = duration_cast<microseconds>(http::Clock::now() - start);
      co_return out;
    }
    if (!try_next_model(last) || http::Clock::now() >= deadline) break;
  }
  if (out.attempts.empty()) {
    finish_error(FailureKind::deadline, "the call's deadline passed before any attempt");
    co_return out;
  }
  finish_error(last, failure_message(out.attempts, last, models_tried));
  co_return out;
}

namespace {

// Runs `call` on `executor` and hands its response to `done`; an exception becomes a failed
// response (cancelled, ErrorCode::internal) rather than a lost completion.
template <typename Response>
void spawn_call(const net::Executor& executor, asio::awaitable<Response> call,
                std::function<void(Response)> done, std::string_view what) {
  asio::co_spawn(
      executor, std::move(call),
      [done = std::move(done), what](const std::exception_ptr& e, Response r) {
        if (e) {
          r = Response{};
          r.failure = FailureKind::cancelled;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            r.error = Error{ErrorCode::internal, fmt::format("{} failed: {}", what, ex.what())};
          } catch (...) {
            r.error = Error{ErrorCode::internal, fmt::format("{} failed: unknown exception", what)};
          }
        }
        done(std::move(r));
      });
}

}  // namespace

void LlmClient::call(ChatRequest request, CallOptions options, const net::Executor& executor,
                     std::function<void(LlmResponse)> done) {
  spawn_call(executor, call(std::move(request), std::move(options)), std::move(done), "LLM call");
}

asio::awaitable<Attempt> LlmClient::embed_attempt(std::span<const std::string> inputs,
                                                  const ResolvedModel& model, int dimensions,
                                                  http::Clock::time_point deadline,
                                                  std::optional<EmbeddingBatch>& result) {
  Attempt a;
  a.provider = model.provider;
  a.model_asked = model.model;
  auto fail_with = [&](FailureKind kind, const std::string& what) {
    fail_attempt(a, "embeddings call", kind, what);
  };
  auto pit = settings_.providers.find(model.provider);
  if (pit == settings_.providers.end()) {
    fail_with(FailureKind::not_configured, fmt::format("unknown provider '{}'", model.provider));
    co_return a;
  }
  const ResolvedProvider& provider = pit->second;
  a.endpoint = endpoint_for_messages(provider.config.base_url);

  http::Request req = make_request(provider, "/embeddings",
                                   embeddings_body(inputs, model.model, dimensions, model.options)
                                       .dump(-1, ' ', false, json::error_handler_t::replace),
                                   /*stream=*/false, settings_.timeouts, deadline);
  // Decimal JSON text of 64 vectors of 3,072 dimensions is about 4.5 MB.
  req.max_body_bytes = 64u << 20;
  http::Response resp = co_await http::async_fetch(multi_, std::move(req));
  a.latency = resp.total;
  a.first_byte = resp.first_byte;
  a.http_status = static_cast<int>(resp.status);
  a.generation_id = resp.header("x-generation-id");

  const bool reached_model =
      resp.status == 200 || resp.failure == http::Failure::first_byte_timeout;
  std::optional<EmbeddingBatch> parsed;
  if (resp.failure != http::Failure::none) {
    fail_with(kind_for_transport(resp.failure),
              fmt::format("{}: {}", http::to_string(resp.failure), resp.error));
  } else if (resp.status != 200) {
    const FailureKind k = kind_for_status(resp.status);
    a.retry_after = parse_retry_after(resp.header("retry-after"));
    fail_with(k, fmt::format("HTTP {} {}: {}", resp.status, to_string(k), error_text(resp.body)));
  } else {
    StreamError in_band;
    auto batch = parse_embeddings(resp.body, inputs.size(), dimensions, &in_band);
    if (batch.ok()) {
      parsed = std::move(batch).value();
    } else if (!in_band.message.empty()) {
      const FailureKind k =
          in_band.code != 0 ? kind_for_status(in_band.code) : FailureKind::stream_error;
      fail_with(k == FailureKind::bad_request ? FailureKind::stream_error : k,
                fmt::format("error in the response body: {}", in_band.message));
    } else {
      fail_with(FailureKind::malformed, batch.error().message);
    }
  }

  // What the attempt consumed: embeddings have prompt tokens only.
  if (parsed && parsed->usage) {
    a.usage.prompt_tokens = parsed->usage->prompt_tokens;
    a.usage.cost_usd = parsed->usage->cost_usd;
  } else if (reached_model) {
    a.usage.estimated = true;
    a.usage.prompt_tokens = estimate_embedding_tokens(inputs);
  }
  if (reached_model) {
    a.model_answered = parsed && !parsed->model.empty() ? parsed->model : model.model;
  }
  if (parsed) {
    if (parsed->model.empty()) parsed->model = a.model_answered;
    result = std::move(parsed);
  }
  co_return a;
}

asio::awaitable<EmbedResponse> LlmClient::embed(EmbedRequest request, CallOptions options) {
  const auto start = http::Clock::now();
  const auto deadline = options.deadline == http::Clock::time_point::max()
                            ? start + settings_.timeouts.turn
                            : options.deadline;
  EmbedResponse out;
  auto finish_error = [&](FailureKind kind, std::string message) {
    out.failure = kind;
    out.error = Error{error_code(kind), std::move(message)};
    out.latency = duration_cast<microseconds>(http::Clock::now() - start);
  };
  if (request.inputs.empty()) {
    out.vectors.emplace();
    out.dimensions = std::max(0, request.dimensions);
    co_return out;
  }

  // Not routed: a cheaper role's model would answer in another vector space.
  std::optional<std::pair<FailureKind, std::string>> no_models;
  const std::vector<ResolvedModel> models =
      models_for(options, std::string(kEmbedRole), /*chat=*/false, no_models);
  if (no_models) {
    finish_error(no_models->first, std::move(no_models->second));
    co_return out;
  }

  const std::span<const std::string> all(request.inputs);
  int attempt_no = 0;
  size_t models_tried = 0;
  FailureKind last = FailureKind::none;
  for (const auto& model : models) {
    ++models_tried;
    std::vector<std::vector<float>> vectors;
    vectors.reserve(all.size());
    int dimensions = std::max(0, request.dimensions);  // unasked: the first vector's length
    std::string answered;
    for (size_t first = 0; first < all.size(); first += kEmbedBatchLimit) {
      const auto batch = all.subspan(first, std::min(kEmbedBatchLimit, all.size() - first));
      const SpendGate::Bound bound{estimate_embedding_tokens(batch), 0};
      std::optional<EmbeddingBatch> result;
      const Admit admit = [&] { return gate_->admit(options, model, bound); };
      const Send send = [&](int, const SpendGate::Admission&) {
        return embed_attempt(batch, model, dimensions, deadline, result);
      };
      last = co_await on_model(model, options, deadline, admit, send, attempt_no, out.attempts);
      if (!result) break;
      if (dimensions == 0) dimensions = static_cast<int>(result->vectors.front().size());
      if (answered.empty()) answered = result->model;
      for (auto& v : result->vectors) vectors.push_back(std::move(v));
    }
    if (vectors.size() == all.size()) {
      out.vectors = std::move(vectors);
      out.provider = model.provider;
      out.model_asked = model.model;
      out.model_answered = answered;
      out.dimensions = dimensions;
      out.latency = duration_cast<microseconds>(http::Clock::now() - start);
      co_return out;
    }
    const bool next = try_next_model(last) || last == FailureKind::not_found;
    if (!next || http::Clock::now() >= deadline) break;
  }
  if (out.attempts.empty()) {
    finish_error(FailureKind::deadline, "the call's deadline passed before any attempt");
    co_return out;
  }
  finish_error(last, failure_message(out.attempts, last, models_tried));
  co_return out;
}

void LlmClient::embed(EmbedRequest request, CallOptions options, const net::Executor& executor,
                      std::function<void(EmbedResponse)> done) {
  spawn_call(executor, embed(std::move(request), std::move(options)), std::move(done),
             "embeddings call");
}

}  // namespace parley::bot::llm
