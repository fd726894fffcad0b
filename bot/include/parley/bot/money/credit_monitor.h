// CreditMonitor: watches the provider's credit (OpenRouter) so that the money does not run out
// unannounced. A poll reads GET {base_url}/key and then GET {base_url}/credits, stores one
// `credit_balance` snapshot, works out the balance and the runway, and raises alerts:
//
//   balance  = the key's limit_remaining when the key has a limit, else total_credits −
//              total_usage (from /credits) when known, else unknown; when both are known, the
//              smaller (a key limit above what the account holds cannot be spent).
//   rate     = spend per hour between this snapshot and the oldest one of the last 24 hours
//              (at least a minute apart; the account's total_usage when the balance comes from
//              /credits, the key's usage otherwise), else usage_daily / 24.
//   runway   = balance / rate, in hours; unknown when the rate is zero or the balance unknown.
//   alerts   = low_balance (critical below critical_nanousd, else warning below
//              warning_nanousd) and runway (warning below runway_hours), subject = provider,
//              period_key = the UTC day of the injected Clock; deduplication is the sink's.
//
// /credits needs a management key on OpenRouter. The first 401/403 from it is logged once (at
// info; at warn when it refuses a configured management_key) and /credits is not asked again:
// the snapshots then come from /key alone. A separate management_key, when configured, is sent
// to /credits only.
//
// Polls run at start(), then every `interval` and after every `every_calls` LLM calls
// (on_call()), and on poll_now() (also before start()); one poll at a time: a timed poll due
// during a poll is folded into it, a poll after N calls or a poll_now() gets one fresh poll after
// it (several such requests share that one).
//
// A failed poll (no answer, non-200, malformed or incomplete JSON from /key) stores no row and
// leaves status().last_error naming the endpoint and what was wrong; nothing throws out of the
// monitor. A failing /credits does not fail the poll: the row is stored without the account
// figures and last_error says why.
//
// Secrets: the keys are sent in the Authorization header only; they never appear in a log line,
// an error, the stored JSON (the response bodies, with /key's "label" — a masked key — replaced)
// or an alert.
//
// Thread safety: every public method may be called from any thread. The work runs on a strand
// of the given executor. After stop() returns no callback runs any more: no alert, no row
// written, no poll_now completion (a pending `done` is destroyed uncalled). The repository,
// sink, clock and CurlMulti must outlive the monitor's last poll (stop() it, and shut the
// CurlMulti down or let its transfers finish, before destroying them); the monitor must be
// destroyed before its io_context.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/money/alert_sink.h"
#include "parley/bot/net.h"
#include "parley/storage/credit_repository.h"

namespace parley::bot::money {

struct CreditMonitorOptions {
  std::string provider = "openrouter";      // the snapshots' provider and the alerts' subject
  std::string base_url;                     // e.g. https://openrouter.ai/api/v1
  std::string api_key;                      // secret
  std::string management_key;               // secret; empty: /credits is asked with api_key
  std::chrono::seconds interval{300};       // 0: no timed polls
  int every_calls = 50;                     // <= 0: no polls after LLM calls
  std::optional<int64_t> warning_nanousd;   // low_balance warning below this balance
  std::optional<int64_t> critical_nanousd;  // low_balance critical below this balance
  std::optional<double> runway_hours;       // runway warning below this many hours
  std::chrono::milliseconds request_timeout{30'000};  // each request's whole deadline
};

struct CreditStatus {
  std::optional<storage::CreditSnapshot> latest;  // the last snapshot this monitor stored
  std::optional<int64_t> balance_nanousd;         // from `latest` (see above)
  std::optional<double> runway_hours;
  int64_t last_poll_ms = 0;              // Clock time the last poll finished (ok or not); 0: never
  std::string last_error;                // empty when the last poll succeeded entirely
  bool credits_endpoint_allowed = true;  // false once /credits refused the key
  uint64_t polls = 0;                    // polls finished
  uint64_t failed_polls = 0;             // of which stored no row
};

class CreditMonitor {
 public:
  // Receives the status after the poll (which may still carry a /credits error), or the error
  // of a poll that stored no row. Runs on the monitor's strand; must be short.
  using PollDone = std::function<void(Result<CreditStatus>)>;

  CreditMonitor(const net::Executor& executor, http::CurlMulti& multi,
                storage::CreditRepository& repository, AlertSink& alerts, const Clock& clock,
                CreditMonitorOptions options);
  // stop()s.
  ~CreditMonitor();
  CreditMonitor(const CreditMonitor&) = delete;
  CreditMonitor& operator=(const CreditMonitor&) = delete;

  // Polls now, then every `interval` and every `every_calls` calls. Once; no effect after
  // stop().
  void start();
  // Cancels the timer and every pending poll; idempotent; from any thread, also from inside a
  // callback of this monitor. See "Thread safety" above for what it guarantees.
  void stop();
  // One LLM call happened. Never blocks: counts, and every `every_calls` posts a poll. No effect
  // before start() or after stop().
  void on_call();
  // Polls now (also without start()); `done` as described at PollDone.
  void poll_now(PollDone done);

  [[nodiscard]] CreditStatus status() const;

  // The balance of a snapshot as described above; empty when unknown.
  static std::optional<int64_t> balance_of(const storage::CreditSnapshot& s);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace parley::bot::money
