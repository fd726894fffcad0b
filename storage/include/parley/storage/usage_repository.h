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

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

struct UsageRecord {
  int64_t ts = 0;  // epoch ms; 0: now
  std::optional<int64_t> conversation_id;
  std::optional<int64_t> user_id;
  std::string purpose;          // turn, tool_step, summary, …
  std::string model_requested;
  std::string model_answered;   // empty: no model answered
  std::string provider;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t latency_ms = 0;
  std::optional<int64_t> cost_actual_nanousd;     // the provider's usage.cost
  std::optional<int64_t> cost_estimated_nanousd;  // from prices; empty when unknown
  std::string cost_source = "unknown";            // actual | estimated | unknown
  std::string pricing_version;
  int64_t capability_steps = 0;
  bool success = true;
  std::string error_kind;
  bool tokens_estimated = false;  // the counts are the client's estimate (no usage arrived)
  std::string generation_id;
};

struct UsageQuery {
  std::optional<int64_t> user_id;  // empty: everyone
  int64_t from_ms = 0;             // inclusive
  int64_t to_ms = INT64_MAX;       // exclusive
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

class UsageRepository {
 public:
  UsageRepository(WriteQueue& writes, ReadPool& reads, const Clock& clock)
      : writes_(writes), reads_(reads), clock_(clock) {}

  std::future<Result<WriteAck>> record(UsageRecord record);
  void record(UsageRecord record, WriteCallback done);

  Result<UsageSummary> summary(const UsageQuery& query);

 private:
  WriteJob make_job(UsageRecord record, WriteCallback done);

  WriteQueue& writes_;
  ReadPool& reads_;
  const Clock& clock_;
};

// USD (the provider's float) to integer nano-dollars, rounded to nearest.
int64_t usd_to_nanousd(double usd) noexcept;

}  // namespace parley::storage
