#include "parley/bot/money/reports/metrics.h"

#include <fmt/format.h>

#include "parley/base/usd.h"

namespace parley::bot::money {

std::string prometheus_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  template <typename V>
  void sample(const char* name, const std::string& labels, V value) {
    out_ += labels.empty() ? fmt::format("{} {}\n", name, value)
                           : fmt::format("{}{{{}}} {}\n", name, labels, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string model_outcome(const std::string& model, const std::string& outcome) {
  return fmt::format(R"(model="{}",outcome="{}")", prometheus_label(model),
                     prometheus_label(outcome));
}

}  // namespace

std::string prometheus_text(const MetricsInput& in) {
  Writer w;
  if (in.ledger != nullptr) {
    const auto totals = in.ledger->totals();
    w.family("parley_llm_calls_total", "counter",
             "LLM attempts by model and outcome (ok or the failure kind)");
    for (const auto& [k, t] : totals) {
      w.sample("parley_llm_calls_total", model_outcome(k.first, k.second), t.calls);
    }
    w.family("parley_llm_tokens_total", "counter", "LLM tokens by model, outcome and kind");
    for (const auto& [k, t] : totals) {
      const std::string base = model_outcome(k.first, k.second);
      w.sample("parley_llm_tokens_total", base + ",kind=\"prompt\"", t.prompt_tokens);
      w.sample("parley_llm_tokens_total", base + ",kind=\"completion\"", t.completion_tokens);
      w.sample("parley_llm_tokens_total", base + ",kind=\"cached\"", t.cached_tokens);
      w.sample("parley_llm_tokens_total", base + ",kind=\"reasoning\"", t.reasoning_tokens);
    }
    w.family(
        "parley_llm_cost_usd_total", "counter",
        "LLM cost by model and outcome: source=provider (usage.cost) or estimate (prices.yaml)");
    for (const auto& [k, t] : totals) {
      const std::string base = model_outcome(k.first, k.second);
      w.sample("parley_llm_cost_usd_total", base + ",source=\"provider\"",
               exact_usd(t.cost_actual_nanousd));
      w.sample("parley_llm_cost_usd_total", base + ",source=\"estimate\"",
               exact_usd(t.cost_estimated_nanousd));
    }
    w.family("parley_llm_latency_seconds", "summary", "LLM attempt latency by model and outcome");
    for (const auto& [k, t] : totals) {
      const std::string base = model_outcome(k.first, k.second);
      w.sample("parley_llm_latency_seconds_sum", base,
               fmt::format("{:.3f}", static_cast<double>(t.latency_ms) / 1000.0));
      w.sample("parley_llm_latency_seconds_count", base, t.calls);
    }
    w.family("parley_usage_rows_failed_total", "counter", "usage rows the ledger could not write");
    w.sample("parley_usage_rows_failed_total", "", in.ledger->failed());
  }
  if (in.budgets != nullptr) {
    const auto gauges = in.budgets->gauges();
    w.family("parley_budget_cap_usd", "gauge", "budget caps in force");
    for (const auto& g : gauges) {
      w.sample("parley_budget_cap_usd",
               fmt::format(R"(budget="{}",period="{}")", prometheus_label(g.name), g.period),
               exact_usd(g.cap));
    }
    w.family("parley_budget_remaining_usd", "gauge",
             "what is left of each budget (reservations in flight counted)");
    for (const auto& g : gauges) {
      w.sample("parley_budget_remaining_usd",
               fmt::format(R"(budget="{}",period="{}")", prometheus_label(g.name), g.period),
               exact_usd(g.cap - g.spent - g.reserved));
    }
  }
  if (in.balance_nanousd) {
    w.family("parley_credit_balance_usd", "gauge",
             "the provider's balance at the last credit poll");
    w.sample("parley_credit_balance_usd", "", exact_usd(*in.balance_nanousd));
  }
  if (in.runway_hours) {
    w.family("parley_credit_runway_hours", "gauge", "balance / recent spend rate");
    w.sample("parley_credit_runway_hours", "", fmt::format("{:.2f}", *in.runway_hours));
  }
  if (in.last_poll_ms) {
    w.family("parley_credit_last_poll_timestamp_seconds", "gauge",
             "when the credit monitor last polled");
    w.sample("parley_credit_last_poll_timestamp_seconds", "", *in.last_poll_ms / 1000);
  }
  w.family("parley_alerts_raised_total", "counter", "alerts raised (deduplicated) by this process");
  w.sample("parley_alerts_raised_total", "", in.alerts_raised);
  w.family("parley_alerts_open", "gauge", "alerts not acknowledged");
  w.sample("parley_alerts_open", "", in.open_alerts);
  if (in.health) {
    const auto& h = *in.health;
    w.family("parley_store_queue_depth", "gauge", "writes waiting for the writer thread");
    w.sample("parley_store_queue_depth", "", h.queue.queue_depth);
    w.family("parley_store_writes_total", "counter", "write jobs by result");
    w.sample("parley_store_writes_total", "result=\"committed\"", h.queue.jobs_committed);
    w.sample("parley_store_writes_total", "result=\"failed\"", h.queue.jobs_failed);
    w.sample("parley_store_writes_total", "result=\"rejected\"", h.queue.jobs_rejected);
    w.family("parley_store_batches_total", "counter", "write transactions");
    w.sample("parley_store_batches_total", "", h.queue.batches);
    w.family("parley_store_last_commit_seconds", "gauge", "BEGIN to COMMIT of the last batch");
    w.sample("parley_store_last_commit_seconds", "",
             fmt::format("{:.6f}", static_cast<double>(h.queue.last_commit_latency_us) / 1e6));
    w.family("parley_cache_requests_total", "counter", "hot cache lookups by result");
    w.sample("parley_cache_requests_total", "result=\"hit\"", h.cache.hits);
    w.sample("parley_cache_requests_total", "result=\"miss\"", h.cache.misses);
    w.family("parley_cache_entries", "gauge", "hot cache entries");
    w.sample("parley_cache_entries", "", h.cache.entries);
    w.family("parley_cache_bytes", "gauge", "hot cache size");
    w.sample("parley_cache_bytes", "", h.cache.bytes);
    w.family("parley_db_bytes", "gauge", "database and WAL file sizes");
    w.sample("parley_db_bytes", "file=\"db\"", h.db_bytes);
    w.sample("parley_db_bytes", "file=\"wal\"", h.wal_bytes);
    w.family("parley_up", "gauge", "1 while the writer runs and the last batch did not fail");
    w.sample("parley_up", "", h.ok() ? 1 : 0);
  }
  return w.take();
}

}  // namespace parley::bot::money
