// LlmClient: one chat completion, or the embeddings of a list of texts, asked of a role's models
// in order, over CurlMulti.
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
// embed() sends its inputs in batches of kEmbedBatchLimit (embeddings.h), each batch with the
// same retries; the vectors of one call all come from one model (vectors of two models live in
// two spaces): when a batch fails for good on a model, the call starts over on the next model,
// from the first batch. The spend gate's route() is not consulted for embeddings, for the same
// reason. A 404 also moves an embeddings call to the next model (not a chat call): a server
// without the model or without an embeddings route answers 404, and the next model may be on
// another provider.
//
// Thread safety: call() and embed() may be used from any thread concurrently; the completion runs
// on the executor passed to it (typically the conversation's strand). The client must outlive
// its calls.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/result.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/clients/llm/chat_stream.h"
#include "parley/bot/clients/llm/embeddings.h"
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
  tls,           // an untrusted certificate or a failed handshake: not retried (a man in the
                 // middle, or a misconfigured server, stays so); the next model may be elsewhere
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
  // The budget could cover only this many completion tokens, and the attempt asked for no
  // more (SpendGate::Admission::max_tokens); nullopt: as the request asked.
  std::optional<int> max_tokens_capped;
  // The budget hold (across processes, in the database) this attempt settles; its usage row
  // drops it.
  std::optional<int64_t> spend_hold;
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

// The sum of what `attempts` consumed; estimated when any part is.
Usage total_usage(const std::vector<Attempt>& attempts);

struct EmbedResponse {
  // Set on success: one vector per input, in input order, each `dimensions` long.
  std::optional<std::vector<std::vector<float>>> vectors;
  std::vector<Attempt> attempts;  // every attempt of every batch, in order
  std::optional<Error> error;     // set on failure: the code of the last failure
  FailureKind failure = FailureKind::none;
  // On success: the model asked (the configuration's name: key stored vectors by it and
  // `dimensions`), its provider, and the model that answered as the provider names it.
  std::string provider;
  std::string model_asked;
  std::string model_answered;
  int dimensions = 0;
  std::chrono::microseconds latency{0};  // whole call, waits included

  [[nodiscard]] bool ok() const { return vectors.has_value(); }
  [[nodiscard]] Usage total_usage() const { return llm::total_usage(attempts); }
};

struct CallOptions {
  std::string role;                   // empty: the default role
  std::vector<ResolvedModel> models;  // non-empty: these instead of the role's
  // Absolute deadline covering retries and fallbacks; max(): now + Timeouts::turn.
  http::Clock::time_point deadline = http::Clock::time_point::max();
  // Text as it streams in, posted to the call's executor. `attempt` changes when a retry or a
  // fallback starts over: text of an earlier attempt is to be discarded.
  std::function<void(int attempt, std::string_view text)> on_text;
  std::string purpose = "turn";  // for the usage ledger: turn, tool_step, summary, memory, …
  int64_t user_id = 0;           // who the call is for (0: nobody in particular)
  int64_t conversation_id = 0;
  int64_t message_id = 0;  // the user message a turn's call answers (0: none)
  // The calls of one turn share a key (the per-turn budget counts them together); empty: the
  // call is a turn of its own.
  std::string turn_key;
  std::string capability;  // the capability whose results this call follows (tool steps)
};

// Sees every attempt of every call (the usage ledger hangs here), on the call's executor.
using AttemptObserver = std::function<void(const CallOptions&, const Attempt&)>;

// SpendGate: the budgets (bot/money/budget.h). Consulted for the role of every chat call, admits
// every attempt — chat or embeddings — before it is sent, reserving its worst-case cost, and is
// told every admitted attempt's outcome, which replaces the reservation by the real cost. A
// refused attempt is not sent: the call fails with FailureKind::budget and the gate's refusal,
// meant for the user.
//
// Thread safety: called from any executor, concurrently.
class SpendGate {
 public:
  struct Admission {
    bool ok = true;
    std::string refusal;  // when !ok: one sentence for the user (no secrets, no internals)
    int64_t reserved_nanousd = 0;
    std::vector<std::string> scopes;  // what the reservation was counted against (opaque)
    // A cap's remainder covers the prompt and only this many completion tokens (fewer than the
    // request's max_tokens, at least the gate's floor): the attempt asks for at most this many.
    std::optional<int> max_tokens;
    // Held in the database for every process (confirm): the hold the attempt's row settles.
    std::optional<int64_t> spend_hold;
    // What the reservation was worked out from, for confirm's smaller fit: the model priced,
    // the prompt's estimated tokens and the completion tokens asked (nullopt: no smaller fit).
    std::string model;
    int64_t prompt_tokens = 0;
    std::optional<int> asked_max_tokens;
  };
  virtual ~SpendGate() = default;
  // The role to ask for `role` (a cheaper one past a soft threshold).
  virtual std::string route(const CallOptions& options, const std::string& role) = 0;
  // Whether a call for `options` would now be past a soft threshold (with no alert raised):
  // work that can wait — memory extraction — waits then, while turns go on.
  [[nodiscard]] virtual bool past_soft(const CallOptions& /*options*/) const { return false; }
  // Completion tokens to ask for when a request sets no max_tokens (the reservation's bound);
  // nullopt: leave the request as it is.
  [[nodiscard]] virtual std::optional<int> default_max_tokens() const = 0;
  virtual Admission admit(const CallOptions& options, const ResolvedModel& model,
                          const ChatRequest& request) = 0;
  // The most an attempt that is not a chat completion may consume: an embeddings batch is its
  // inputs' estimated tokens in, nothing out.
  struct Bound {
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
  };
  virtual Admission admit(const CallOptions& options, const ResolvedModel& model,
                          const Bound& bound) = 0;
  // The second step of an admission that admit() accepted: the same caps checked against
  // every process on the database, the worst case held there until the attempt's usage row
  // settles it (Admission::spend_hold). It may refuse, or lower max_tokens further. Resumes on
  // the caller's executor; `deadline` bounds how long the hold can be needed.
  // (By reference: GCC 12 mishandles by-value non-trivial coroutine parameters; see net.h.)
  virtual net::asio::awaitable<Admission> confirm(const Admission& admission,
                                                  const CallOptions& options,
                                                  std::chrono::steady_clock::time_point deadline);
  virtual void settle(const Admission& admission, const CallOptions& options,
                      const Attempt& attempt) = 0;
};

class LlmClient {
 public:
  // `gate` (may be null: no budgets) must outlive the client.
  LlmClient(http::CurlMulti& multi, ResolvedLlm settings, AttemptObserver observer = {},
            SpendGate* gate = nullptr);

  [[nodiscard]] const ResolvedLlm& settings() const { return settings_; }
  // The budgets every call goes through; null: none.
  [[nodiscard]] const SpendGate* gate() const { return gate_; }

  // Coroutine form; resumes on the caller's executor.
  net::asio::awaitable<LlmResponse> call(ChatRequest request, CallOptions options);
  // Callback form: `done` runs on `executor`.
  void call(ChatRequest request, CallOptions options, const net::Executor& executor,
            std::function<void(LlmResponse)> done);

  // The embeddings of request.inputs, from the models of options.role (empty: kEmbedRole) or
  // options.models. The ledger records the attempts under options.purpose: the memory layer
  // sets kEmbedPurpose. No inputs: success with no vectors and no request. Coroutine form;
  // resumes on the caller's executor.
  net::asio::awaitable<EmbedResponse> embed(EmbedRequest request, CallOptions options);
  // Callback form: `done` runs on `executor`.
  void embed(EmbedRequest request, CallOptions options, const net::Executor& executor,
             std::function<void(EmbedResponse)> done);

 private:
  using Admit = std::function<SpendGate::Admission()>;
  // Sends one attempt under the admission the gate gave it (its max_tokens may be lower).
  using Send = std::function<net::asio::awaitable<Attempt>(int attempt_no,
                                                           const SpendGate::Admission& admission)>;

  // The models to ask: options.models, else those of options.role (else `default_role`). A
  // `chat` call's role is routed by the gate and needs the whole configuration usable; an
  // embeddings call needs its role only. Sets `error` and returns nothing when there are none.
  std::vector<ResolvedModel> models_for(const CallOptions& options, const std::string& default_role,
                                        bool chat,
                                        std::optional<std::pair<FailureKind, std::string>>& error);
  // One piece of work on one model: each attempt admitted by the gate (`admit`, then its
  // `confirm` across processes), sent (`send`,
  // whose attempt has FailureKind::none exactly when it produced its result), settled, observed
  // and appended to `attempts`; retried while retry_same_model() and the policy and the
  // deadline allow. Returns the last attempt's failure (none: success).
  net::asio::awaitable<FailureKind> on_model(const ResolvedModel& model, const CallOptions& options,
                                             http::Clock::time_point deadline, const Admit& admit,
                                             const Send& send, int& attempt_no,
                                             std::vector<Attempt>& attempts);
  net::asio::awaitable<Attempt> attempt(const ChatRequest& request, const ResolvedModel& model,
                                        const CallOptions& options, int attempt_no,
                                        http::Clock::time_point deadline,
                                        std::optional<ChatResult>& result);
  net::asio::awaitable<Attempt> embed_attempt(std::span<const std::string> inputs,
                                              const ResolvedModel& model, int dimensions,
                                              http::Clock::time_point deadline,
                                              std::optional<EmbeddingBatch>& result);

  http::CurlMulti& multi_;
  ResolvedLlm settings_;
  AttemptObserver observer_;
  SpendGate* gate_ = nullptr;
};

}  // namespace parley::bot::llm
