// UsageLedger: the LlmClient's attempt observer that writes one usage row per attempt — failed
// ones included, with what they consumed — so that no path calls a model without its row.
// Rows are written through the store's write queue without waiting; a row that cannot be
// written is logged (and counted), never silently dropped.
//
// Each row carries both costs: the provider's `usage.cost` (actual) and the price table's
// estimate, with cost_source (provider | estimate | both | none) and the pricing version.
// The ledger also watches what the attempts say about money and raises alerts:
//   unknown_price  a model with no price (once per model per day; the call is not refused
//                  here — see BudgetKeeper::refuse_unknown_price)
//   billing_error  a 402 from a provider (once per provider per day)
//   rate_limited   `rate_limit_alert` 429s within `rate_limit_window` (once per day)
// and logs, once per model per day, an estimate that differs from the provider's cost by more
// than 20 %.
//
// Thread safety: the observer may be called from any thread; the watch state is behind one
// mutex taken after the row is handed to the write queue.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "parley/base/clock.h"
#include "parley/bot/clients/llm/client.h"
#include "parley/bot/money/alert_sink.h"
#include "parley/bot/money/prices.h"
#include "parley/storage/usage_repository.h"

namespace parley::bot::money {

struct LedgerOptions {
  int rate_limit_alert = 5;                                     // 429s …
  std::chrono::milliseconds rate_limit_window{10 * 60 * 1000};  // … within this window
  int divergence_percent = 20;
};

class UsageLedger {
 public:
  // `prices` may be null (no estimates), `alerts` may be null (no alerts).
  explicit UsageLedger(storage::UsageRepository& repository,
                       std::shared_ptr<const PriceTable> prices = nullptr,
                       AlertSink* alerts = nullptr,
                       const parley::Clock& clock = SystemClock::instance(),
                       LedgerOptions options = {});

  // Puts a reloaded price table in force for the next attempt (any thread).
  void set_prices(std::shared_ptr<const PriceTable> prices) { prices_.store(std::move(prices)); }

  // The function to give LlmClient as its observer. The ledger must outlive the client.
  llm::AttemptObserver observer();

  // Runs after every attempt's row is handed over (the credit monitor counts calls here).
  void after_attempt(std::function<void()> fn) { after_attempt_ = std::move(fn); }

  // The row for one attempt, priced at `at_ms` with `prices` (may be null).
  static storage::UsageRecord to_record(const llm::CallOptions& options,
                                        const llm::Attempt& attempt,
                                        const PriceTable* prices = nullptr, int64_t at_ms = 0);

  // What this process's attempts consumed, per (model, outcome): for /metrics.
  struct Totals {
    uint64_t calls = 0;
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
    int64_t cached_tokens = 0;
    int64_t reasoning_tokens = 0;
    int64_t cost_actual_nanousd = 0;
    int64_t cost_estimated_nanousd = 0;
    int64_t latency_ms = 0;
  };
  // Key: model (the one that answered, else the one asked) ␟ outcome ("ok" or the failure).
  [[nodiscard]] std::map<std::pair<std::string, std::string>, Totals> totals() const;

  [[nodiscard]] uint64_t written() const { return written_.load(); }
  [[nodiscard]] uint64_t failed() const { return failed_.load(); }

 private:
  void watch(const llm::Attempt& attempt, const storage::UsageRecord& row);
  bool once(const std::string& what);  // true the first time `what` is seen (mutex held)

  storage::UsageRepository& repository_;
  std::atomic<std::shared_ptr<const PriceTable>> prices_;  // swapped whole on a reload
  AlertSink* alerts_;
  const parley::Clock& clock_;
  LedgerOptions options_;
  std::function<void()> after_attempt_;
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> failed_{0};

  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Totals> totals_;
  std::set<std::string> told_;  // "divergence␟model␟day", … (cleared each day)
  std::string told_day_;
  std::deque<int64_t> rate_limited_;  // times of recent 429s
};

}  // namespace parley::bot::money
