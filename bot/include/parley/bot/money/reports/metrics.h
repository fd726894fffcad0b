// GET /metrics: the Prometheus text exposition format (version 0.0.4) — LLM calls, tokens and
// cost by model and outcome (this process's, since it started), budgets remaining, the
// provider's balance and runway, the store's queue, cache and commit latency.
#pragma once

#include <optional>
#include <string>

#include "parley/bot/money/budget.h"
#include "parley/bot/money/ledger.h"
#include "parley/storage/store.h"

namespace parley::bot::money {

struct MetricsInput {
  const UsageLedger* ledger = nullptr;
  const BudgetKeeper* budgets = nullptr;
  std::optional<storage::Health> health;
  std::optional<int64_t> balance_nanousd;  // the provider's, from the last credit poll
  std::optional<double> runway_hours;
  std::optional<int64_t> last_poll_ms;
  uint64_t alerts_raised = 0;
  int64_t open_alerts = 0;
};

std::string prometheus_text(const MetricsInput& in);
// A label value with \\, \" and \n escaped.
std::string prometheus_label(const std::string& value);

}  // namespace parley::bot::money
