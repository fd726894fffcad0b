// AlertSink: where the money-watching parts (budgets, the ledger, the credit monitor, the LLM
// client's failures, config reloads) report a condition an operator must hear about. The sink
// (bot/usage/alerts.h: AlertCenter) stores it in `credit_alerts`, deduplicated per
// (kind, subject, severity, period_key), and delivers a new one to the configured admin targets.
//
// Kinds: low_balance, runway, daily_spend, monthly_spend, budget_soft, budget_hard,
// billing_error, rate_limited, unknown_price, config_rejected.
//
// Thread safety: raise() may be called from any thread; it never blocks on I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace parley::bot::money {

enum class Severity { info, warning, critical };
std::string_view to_string(Severity s) noexcept;

struct AlertRaise {
  std::string kind;
  Severity severity = Severity::warning;
  std::string subject;     // what it is about when a kind concerns several things ("" if not)
  std::string period_key;  // the dedupe period: "2026-12-05", "2026-12"; empty: today (UTC)
  std::string message;     // one line an operator can act on; never a secret
  std::optional<double> value;
  std::optional<double> threshold;
  std::string unit;  // "USD", "%", "hours", "calls"
};

class AlertSink {
 public:
  virtual ~AlertSink() = default;
  virtual void raise(AlertRaise alert) = 0;
};

}  // namespace parley::bot::money
