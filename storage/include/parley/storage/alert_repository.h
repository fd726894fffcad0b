// The `credit_alerts` table: alerts about money and the LLM account (low balance, budgets,
// unknown prices, billing errors, …), one row per (kind, subject, severity, period_key) — a second
// raise of the same alert in the same period is recognised and not stored again.
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

struct AlertRecord {
  int64_t id = 0;
  int64_t ts = 0;  // epoch ms; 0 on insert: now
  std::string kind;
  std::string severity;  // info | warning | critical
  std::string subject;
  std::string period_key;
  std::string message;
  std::optional<double> value;
  std::optional<double> threshold;
  std::string unit;
  std::optional<int64_t> delivered_at;
  std::optional<int64_t> acked_at;
  std::string acked_by;
};

class AlertRepository {
 public:
  AlertRepository(WriteQueue& writes, ReadPool& reads, const Clock& clock)
      : writes_(writes), reads_(reads), clock_(clock) {}

  // Stores the alert unless the same (kind, subject, severity, period_key) is stored already. The
  // ack's `inserted` says which; its row_id is the alert's id either way.
  void raise(AlertRecord alert, WriteCallback done);
  std::future<Result<WriteAck>> raise(AlertRecord alert);

  // Newest first. open_only: not acknowledged.
  Result<std::vector<AlertRecord>> list(bool open_only, int limit = 100);
  Result<std::optional<AlertRecord>> find(int64_t id);
  // Acknowledges an open alert; inserted=false when there is no such alert or it was
  // acknowledged already.
  std::future<Result<WriteAck>> ack(int64_t id, std::string by);
  void mark_delivered(int64_t id, WriteCallback done = {});

 private:
  WriteQueue& writes_;
  ReadPool& reads_;
  const Clock& clock_;
};

}  // namespace parley::storage
