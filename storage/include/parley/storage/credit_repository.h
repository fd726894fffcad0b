// The `credit_balance` table: snapshots of a provider's credit state as the credit monitor read
// it (OpenRouter's /api/v1/key, and /api/v1/credits when the key may read it). Money is integer
// nano-dollars (see usd_to_nanousd in usage_repository.h); a figure the provider did not report
// is empty, never zero.
//
// Thread safety: all methods are safe from any thread. Writes go through the write queue;
// reads use the read pool.
#pragma once

#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

struct CreditSnapshot {
  int64_t id = 0;  // set by reads; ignored by record()
  int64_t ts = 0;  // epoch ms; 0 on record(): now
  std::string provider;
  std::optional<int64_t> limit_nanousd;      // empty: the key has no limit
  int64_t usage_nanousd = 0;                 // the key's usage, all time
  std::optional<int64_t> remaining_nanousd;  // of the key's limit; empty: no limit
  bool is_free_tier = false;
  std::optional<int64_t> usage_daily_nanousd;    // current UTC day
  std::optional<int64_t> usage_weekly_nanousd;   // current UTC week (from Monday)
  std::optional<int64_t> usage_monthly_nanousd;  // current UTC month
  std::optional<int64_t> total_credits_nanousd;  // account-wide (/credits); empty: not read
  std::optional<int64_t> total_usage_nanousd;    // account-wide (/credits); empty: not read
  // The provider's response as JSON text, secrets scrubbed by the caller; must be valid JSON
  // (the column checks json_valid). Empty: "{}".
  std::string raw;
};

class CreditRepository {
 public:
  CreditRepository(WriteQueue& writes, ReadPool& reads, const Clock& clock)
      : writes_(writes), reads_(reads), clock_(clock) {}

  // Fails with invalid_argument (before reaching the queue) when provider is empty; with the
  // database's error when raw is not valid JSON.
  std::future<Result<WriteAck>> record(CreditSnapshot snapshot);
  void record(CreditSnapshot snapshot, WriteCallback done);

  // The newest snapshot of `provider` (the highest ts; the last written among equal ts).
  Result<std::optional<CreditSnapshot>> latest(const std::string& provider);
  // Snapshots of `provider` with ts >= from_ms, oldest first.
  Result<std::vector<CreditSnapshot>> since(const std::string& provider, int64_t from_ms);

 private:
  WriteJob make_job(CreditSnapshot snapshot, WriteCallback done);

  WriteQueue& writes_;
  ReadPool& reads_;
  const Clock& clock_;
};

}  // namespace parley::storage
