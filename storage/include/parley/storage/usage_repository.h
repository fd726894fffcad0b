// The usage ledger's table: one row per LLM call attempt (every path that calls a model writes
// one), and the sums reports and budgets read. Money is integer nano-dollars, so sums are
// exact.
//
// Thread safety: all methods are safe from any thread. Writes go through the write queue;
// reads use the read pool.
#pragma once

#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

struct UsageRecord {
  int64_t ts = 0;  // epoch ms; 0: now
  std::optional<int64_t> conversation_id;
  std::optional<int64_t> message_id;  // the user message a turn's call answers
  std::optional<int64_t> user_id;
  std::string purpose;  // turn, tool_step, summary, …
  std::string model_requested;
  std::string model_answered;  // empty: no model answered
  std::string provider;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t latency_ms = 0;
  std::optional<int64_t> cost_actual_nanousd;     // the provider's usage.cost
  std::optional<int64_t> cost_estimated_nanousd;  // from prices; empty when unknown
  // Where the cost comes from: provider | estimate | both | none (see cost_source_for).
  std::string cost_source = "none";
  std::string pricing_version;
  int64_t capability_steps = 0;
  bool success = true;
  std::string error_kind;
  bool tokens_estimated = false;  // the counts are the client's estimate (no usage arrived)
  std::string generation_id;
  std::string capability;  // the capability whose results this call follows (tool steps)
  // The completion tokens a budget's remainder allowed, when fewer than asked (else nullopt).
  std::optional<int64_t> max_tokens_capped;
  // Not a column: the budget hold (SpendRepository) this call's row settles, dropped in the
  // same transaction.
  std::optional<int64_t> spend_hold;
};

// provider | estimate | both | none, from which of the two costs a row has.
std::string cost_source_for(const std::optional<int64_t>& actual,
                            const std::optional<int64_t>& estimated);

struct UsageQuery {
  std::optional<int64_t> user_id;        // empty: everyone
  int64_t from_ms = 0;                   // inclusive
  int64_t to_ms = INT64_MAX;             // exclusive
  std::optional<std::string> purpose{};  // empty: every purpose
};

struct UsageSummary {
  int64_t calls = 0;
  int64_t failed = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t cost_actual_nanousd = 0;     // sum of the calls that reported one
  int64_t cost_estimated_nanousd = 0;  // sum of the calls with an estimate
  int64_t calls_without_cost = 0;      // neither actual nor estimated cost
};

// Reports. One "cost" per call, used wherever a single figure is needed (report rows' cost_nanousd,
// the chart series, rankings): coalesce(actual, estimate) — the provider's usage.cost when it
// reported one, else the price table's estimate. A call with neither adds nothing to it and is
// counted in calls_without_cost (never priced at zero silently). cost_actual_nanousd and
// cost_estimated_nanousd remain the two separate sums.
enum class UsageGroupBy { none, day, model, user, conversation, capability };
std::string_view to_string(UsageGroupBy g) noexcept;
// "none" | "day" | "model" | "user" | "conversation" | "capability"; empty when unknown.
std::optional<UsageGroupBy> parse_usage_group_by(std::string_view s) noexcept;

struct UsageReportQuery {
  int64_t from_ms = 0;             // inclusive
  int64_t to_ms = INT64_MAX;       // exclusive
  std::optional<int64_t> user_id;  // empty: everyone
  UsageGroupBy group_by = UsageGroupBy::none;
  // IANA zone whose local days bucket group_by day and the series ("" = UTC).
  std::string zone = "UTC";
};

struct UsageReportRow : UsageSummary {
  // day: "YYYY-MM-DD" (local day in the query's zone); model: model answered, else requested;
  // user / conversation: the id in decimal; capability: its name. "(none)" when the call has no
  // user / conversation / capability. Totals: "total".
  std::string key;
  // user: the display name; conversation: "channel:external_id"; otherwise empty.
  std::string label;
  std::optional<int64_t> id;  // user / conversation id; empty otherwise
  int64_t cost_nanousd = 0;   // sum of coalesce(actual, estimate), see above
  // Nearest-rank percentiles of latency_ms over the successful calls; empty when there are none.
  std::optional<int64_t> latency_p50_ms;
  std::optional<int64_t> latency_p95_ms;
};

struct UsageReport {
  // Ordered by key for day; by cost_nanousd descending (then calls, key) otherwise. Empty for
  // group_by none.
  std::vector<UsageReportRow> rows;
  UsageReportRow totals;  // every call in the period, computed the same way as a row
};

// One bar segment of the spend chart: a local day (in the query's zone) and a model.
struct UsageSeriesPoint {
  std::string day;    // "YYYY-MM-DD"
  std::string model;  // answered, else requested
  int64_t calls = 0;
  int64_t cost_nanousd = 0;  // sum of coalesce(actual, estimate)
  int64_t calls_without_cost = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

class UsageRepository {
 public:
  UsageRepository(WriteQueue& writes, ReadPool& reads, const Clock& clock)
      : writes_(writes), reads_(reads), clock_(clock) {}

  std::future<Result<WriteAck>> record(UsageRecord record);
  void record(UsageRecord record, WriteCallback done);

  Result<UsageSummary> summary(const UsageQuery& query);

  // The report for the period, grouped as asked, plus its totals; rows and totals come from
  // one read snapshot. Aggregation runs in SQLite (GROUP BY and window functions over its
  // sorter, which spills to disk), so memory grows with the number of groups, not of calls.
  // Errors: invalid_argument for an unknown zone; SQLite's (e.g. integer overflow of a sum).
  Result<UsageReport> report(const UsageReportQuery& query);
  // Per local day × model, ordered by day then model (query.group_by is ignored).
  Result<std::vector<UsageSeriesPoint>> series(const UsageReportQuery& query);

 private:
  WriteJob make_job(UsageRecord record, WriteCallback done);

  WriteQueue& writes_;
  ReadPool& reads_;
  const Clock& clock_;
};

// USD (the provider's float) to integer nano-dollars, rounded to nearest.
int64_t usd_to_nanousd(double usd) noexcept;

}  // namespace parley::storage
