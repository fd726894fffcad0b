// LlmClient: one chat completion, asked of a role's models in order, over CurlMulti.
//
// For each model: up to RetryPolicy::max_attempts attempts on retryable failures (429 after
// its Retry-After or exponential back-off with jitter, 500/502/503/504, transport failures and
// timeouts, malformed bodies, in-band stream errors), then the next model (fallback). A
// billing failure (402) moves to the next model at once; 400/401/403/404 end the call (the
// request itself is wrong, asking again or elsewhere would not help). One deadline covers
// every attempt, wait and fallback of the call.
//
// Every attempt is reported — to the observer given at construction, before the call
// completes, and in LlmResponse::attempts — with the usage it consumed: the provider's usage
// when it sent one, an estimate marked `estimated` when a stream broke off or ended without
// usage, zero when no request reached a model. Error messages name the endpoint and the model,
// never the key.
//
// Thread safety: call() may be used from any thread concurrently; the completion runs on the
// executor passed to call() (typically the conversation's strand). The client must outlive
// its calls.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/result.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/clients/llm/chat_stream.h"
#include "parley/bot/clients/llm/provider.h"
#include "parley/bot/clients/llm/types.h"
#include "parley/bot/net.h"

namespace parley::bot::llm {

// What went wrong with one attempt; each kind is its own retry decision.
enum class FailureKind {
  none,
  connect_timeout,
  first_byte_timeout,
  idle_timeout,
  deadline,      // the call's deadline passed
  connection,    // refused, reset, cut short
  rate_limited,  // 429
  server_error,  // 500, 502, 503, 504, 408
  billing,       // 402
  bad_request,   // 400, 422
  unauthorized,  // 401, or no key for the provider
  forbidden,     // 403 (moderation, …)
  not_found,     // 404 (unknown model, wrong base URL)
  malformed,     // a body that is not what the API promises
  stream_error,  // an in-band {"error": …} event after HTTP 200
  cancelled,
  not_configured,  // no provider/model to ask (see ResolvedLlm::not_configured)
  budget,          // the spend gate refused the attempt before it was sent (a budget cap)
};
std::string_view to_string(FailureKind kind) noexcept;
ErrorCode error_code(FailureKind kind) noexcept;
bool retry_same_model(FailureKind kind) noexcept;
bool try_next_model(FailureKind kind) noexcept;

// One HTTP request to one model.
struct Attempt {
  std::string provider;
  std::string endpoint;  // base URL without scheme or credentials, for messages
  std::string model_asked;
  std::string model_answered;  // empty when no model answered
  int http_status = 0;
  FailureKind failure = FailureKind::none;
  std::string error;          // one line naming endpoint, model and what happened
  Usage usage;                // what the attempt consumed (see the header comment)
  std::string generation_id;  // X-Generation-Id, else the response id
  std::chrono::microseconds latency{0};
  std::chrono::microseconds first_byte{0};
  std::optional<std::chrono::milliseconds> retry_after;  // what the server asked for
};

struct LlmResponse {
  std::optional<ChatResult> result;  // set on success
  std::vector<Attempt> attempts;     // every attempt, in order
  std::optional<Error> error;        // set on failure: the code of the last failure
  FailureKind failure = FailureKind::none;
  std::chrono::microseconds latency{0};  // whole call, waits included

  [[nodiscard]] bool ok() const { return result.has_value(); }
  // The attempt that answered (the last one) — ok() only.
  [[nodiscard]] const Attempt& answered() const { return attempts.back(); }
  // The sum over attempts; estimated when any part is.
  [[nodiscard]] Usage total_usage() const;
};

struct CallOptions {
  std::string role;                   // empty: the default role
  std::vector<ResolvedModel> models;  // non-empty: these instead of the role's
  // Absolute deadline covering retries and fallbacks; max(): now + Timeouts::turn.
  http::Clock::time_point deadline = http::Clock::time_point::max();
  // Text as it streams in, posted to the call's executor. `attempt` changes when a retry or a
  // fallback starts over: text of an earlier attempt is to be discarded.
  std::function<void(int attempt, std::string_view text)> on_text;
  std::string purpose = "turn";  // for the usage ledger: turn, tool_step, summary, …
  int64_t user_id = 0;           // who the call is for (0: nobody in particular)
  int64_t conversation_id = 0;
  // The calls of one turn share a key (the per-turn budget counts them together); empty: the
  // call is a turn of its own.
  std::string turn_key;
  std::string capability;  // the capability whose results this call follows (tool steps)
};

// Sees every attempt of every call (the usage ledger hangs here), on the call's executor.
using AttemptObserver = std::function<void(const CallOptions&, const Attempt&)>;

// SpendGate: the budgets (bot/usage/budget.h). Consulted for the role of every call, admits
// every attempt before it is sent — reserving its worst-case cost — and is told every admitted
// attempt's outcome, which replaces the reservation by the real cost. A refused attempt is not
// sent: the call fails with FailureKind::budget and the gate's refusal, meant for the user.
//
// Thread safety: called from any executor, concurrently.
class SpendGate {
 public:
  struct Admission {
    bool ok = true;
    std::string refusal;  // when !ok: one sentence for the user (no secrets, no internals)
    int64_t reserved_nanousd = 0;
    std::vector<std::string> scopes;  // what the reservation was counted against (opaque)
  };
  virtual ~SpendGate() = default;
  // The role to ask for `role` (a cheaper one past a soft threshold).
  virtual std::string route(const CallOptions& options, const std::string& role) = 0;
  // Completion tokens to ask for when a request sets no max_tokens (the reservation's bound);
  // nullopt: leave the request as it is.
  [[nodiscard]] virtual std::optional<int> default_max_tokens() const = 0;
  virtual Admission admit(const CallOptions& options, const ResolvedModel& model,
                          const ChatRequest& request) = 0;
  virtual void settle(const Admission& admission, const CallOptions& options,
                      const Attempt& attempt) = 0;
};

class LlmClient {
 public:
  // `gate` (may be null: no budgets) must outlive the client.
  LlmClient(http::CurlMulti& multi, ResolvedLlm settings, AttemptObserver observer = {},
            SpendGate* gate = nullptr);

  [[nodiscard]] const ResolvedLlm& settings() const { return settings_; }

  // Coroutine form; resumes on the caller's executor.
  net::asio::awaitable<LlmResponse> call(ChatRequest request, CallOptions options);
  // Callback form: `done` runs on `executor`.
  void call(ChatRequest request, CallOptions options, const net::Executor& executor,
            std::function<void(LlmResponse)> done);

 private:
  net::asio::awaitable<Attempt> attempt(const ChatRequest& request, const ResolvedModel& model,
                                        const CallOptions& options, int attempt_no,
                                        http::Clock::time_point deadline,
                                        std::optional<ChatResult>& result);

  http::CurlMulti& multi_;
  ResolvedLlm settings_;
  AttemptObserver observer_;
  SpendGate* gate_ = nullptr;
};

}  // namespace parley::bot::llm
