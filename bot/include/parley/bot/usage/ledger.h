// UsageLedger: the LlmClient's attempt observer that writes one usage row per attempt — failed
// ones included, with what they consumed — so that no path calls a model without its row.
// Rows are written through the store's write queue without waiting; a row that cannot be
// written is logged (and counted), never silently dropped.
//
// Thread safety: the observer may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "parley/bot/llm/client.h"
#include "parley/storage/usage_repository.h"

namespace parley::bot::usage {

class UsageLedger {
 public:
  explicit UsageLedger(storage::UsageRepository& repository) : repository_(repository) {}

  // The function to give LlmClient as its observer. The ledger must outlive the client.
  llm::AttemptObserver observer();

  // The row for one attempt (no price estimate yet: prices come with the money issue).
  static storage::UsageRecord to_record(const llm::CallOptions& options, const llm::Attempt& attempt);

  [[nodiscard]] uint64_t written() const { return written_.load(); }
  [[nodiscard]] uint64_t failed() const { return failed_.load(); }

 private:
  storage::UsageRepository& repository_;
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> failed_{0};
};

}  // namespace parley::bot::usage
