#include "parley/bot/money/ledger.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "parley/base/time_format.h"
#include "parley/base/usd.h"
#include "parley/bot/money/budget.h"

namespace parley::bot::money {

UsageLedger::UsageLedger(storage::UsageRepository& repository,
                         std::shared_ptr<const PriceTable> prices, AlertSink* alerts,
                         const parley::Clock& clock, LedgerOptions options)
    : repository_(repository),
      prices_(std::move(prices)),
      alerts_(alerts),
      clock_(clock),
      options_(options) {}

storage::UsageRecord UsageLedger::to_record(const llm::CallOptions& options, const llm::Attempt& a,
                                            const PriceTable* prices, int64_t at_ms) {
  storage::UsageRecord r;
  r.ts = at_ms;
  if (options.conversation_id != 0) r.conversation_id = options.conversation_id;
  if (options.message_id != 0) r.message_id = options.message_id;
  if (options.user_id != 0) r.user_id = options.user_id;
  r.purpose = options.purpose;
  r.capability = options.capability;
  r.model_requested = a.model_asked;
  r.model_answered = a.model_answered;
  r.provider = a.provider;
  r.prompt_tokens = a.usage.prompt_tokens;
  r.completion_tokens = a.usage.completion_tokens;
  r.cached_tokens = a.usage.cached_tokens;
  r.reasoning_tokens = a.usage.reasoning_tokens;
  r.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(a.latency).count();
  const AttemptCost cost =
      price_attempt(prices, a, at_ms != 0 ? at_ms : SystemClock::instance().now_ms());
  r.cost_actual_nanousd = cost.actual;
  r.cost_estimated_nanousd = cost.estimated;
  r.pricing_version = cost.pricing_version;
  r.cost_source = storage::cost_source_for(r.cost_actual_nanousd, r.cost_estimated_nanousd);
  r.success = a.failure == llm::FailureKind::none;
  if (!r.success) r.error_kind = std::string(llm::to_string(a.failure));
  r.tokens_estimated = a.usage.estimated;
  if (a.max_tokens_capped) r.max_tokens_capped = *a.max_tokens_capped;
  r.spend_hold = a.spend_hold;
  r.generation_id = a.generation_id;
  return r;
}

std::map<std::pair<std::string, std::string>, UsageLedger::Totals> UsageLedger::totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

bool UsageLedger::once(const std::string& what) { return told_.insert(what).second; }

void UsageLedger::watch(const llm::Attempt& a, const storage::UsageRecord& row) {
  const int64_t now = clock_.now_ms();
  std::vector<AlertRaise> raise;
  {
    std::lock_guard lock(mu_);
    const std::string day = iso_utc(now).substr(0, 10);  // the UTC day
    if (day != told_day_) {
      told_.clear();
      told_day_ = day;
    }
    const std::string model = row.model_answered.empty() ? row.model_requested : row.model_answered;
    Totals& t = totals_[{model, row.success ? std::string("ok") : row.error_kind}];
    ++t.calls;
    t.prompt_tokens += row.prompt_tokens;
    t.completion_tokens += row.completion_tokens;
    t.cached_tokens += row.cached_tokens;
    t.reasoning_tokens += row.reasoning_tokens;
    t.cost_actual_nanousd += row.cost_actual_nanousd.value_or(0);
    t.cost_estimated_nanousd += row.cost_estimated_nanousd.value_or(0);
    t.latency_ms += row.latency_ms;
    const bool consumed = row.prompt_tokens + row.completion_tokens > 0;
    if (consumed && !row.cost_estimated_nanousd && once("unknown\x1f" + model)) {
      raise.push_back(
          {"unknown_price", Severity::warning, model, "",
           fmt::format("model {} has no price in prices.yaml: its calls have no estimate{}", model,
                       row.cost_actual_nanousd ? " (the provider's cost is recorded)"
                                               : " and no provider cost: their spend is unknown"),
           std::nullopt, std::nullopt, ""});
    }
    if (row.cost_actual_nanousd && row.cost_estimated_nanousd) {
      const int64_t actual = *row.cost_actual_nanousd;
      const int64_t estimate = *row.cost_estimated_nanousd;
      const int64_t diff = std::llabs(actual - estimate);
      // More than divergence_percent of the provider's cost (any difference when it is zero).
      if (diff * 100 > actual * options_.divergence_percent && once("divergence\x1f" + model)) {
        spdlog::warn(
            "usage: the estimate for {} differs from the provider's cost by more than {}% ({} "
            "estimated, {} "
            "charged, pricing version {}); check prices.yaml (logged once per model per day)",
            model, options_.divergence_percent, exact_usd(estimate), exact_usd(actual),
            row.pricing_version);
      }
    }
    if (a.failure == llm::FailureKind::billing && once("billing\x1f" + a.provider)) {
      raise.push_back(
          {"billing_error", Severity::critical, a.provider, "",
           fmt::format("{} answered 402 (payment required) for {}: the account is out of credit or "
                       "over its limit",
                       a.provider, a.model_asked),
           std::nullopt, std::nullopt, ""});
    }
    if (a.failure == llm::FailureKind::rate_limited) {
      rate_limited_.push_back(now);
      while (!rate_limited_.empty() &&
             rate_limited_.front() <= now - options_.rate_limit_window.count()) {
        rate_limited_.pop_front();
      }
      const auto n = static_cast<int>(rate_limited_.size());
      if (n >= options_.rate_limit_alert) {
        raise.push_back({"rate_limited", Severity::warning, a.provider, "",
                         fmt::format("{} rate-limited {} calls (HTTP 429) within {} minutes",
                                     a.provider, n, options_.rate_limit_window.count() / 60000),
                         static_cast<double>(n), static_cast<double>(options_.rate_limit_alert),
                         "calls"});
      }
    }
  }
  if (alerts_ != nullptr) {
    for (auto& r : raise) alerts_->raise(std::move(r));
  }
}

llm::AttemptObserver UsageLedger::observer() {
  return [this](const llm::CallOptions& options, const llm::Attempt& attempt) {
    storage::UsageRecord row = to_record(options, attempt, prices_.load().get(), clock_.now_ms());
    watch(attempt, row);
    repository_.record(std::move(row), [this](const Result<storage::WriteAck>& r) {
      if (r.ok()) {
        written_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      failed_.fetch_add(1, std::memory_order_relaxed);
      spdlog::error("usage ledger: a usage row could not be written: {}", r.error().describe());
    });
    if (after_attempt_) after_attempt_();
  };
}

}  // namespace parley::bot::money
