// Spend holds: budgets that hold across every process on one database. Before an LLM call is
// sent, its worst case is held against each cap it counts against, in one write transaction
// that also reads what every process has spent (the usage rows) and holds (other holds) in
// that cap's period — the write lock makes check and hold one step for all processes. The
// hold is dropped in the transaction that writes the call's usage row (UsageRecord::spend_hold),
// so at every moment the call counts once: held, then spent. A hold whose process died expires.
//
// Spend per cap comes from spend_counters, a cache of the usage rows brought up to date from
// the rows written since it was last read (usage ids grow), so a check costs a few new rows,
// not a month of them.
//
// Thread safety: hold() is safe from any thread; it goes through the write queue.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "parley/base/result.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

// One cap a call counts against.
struct SpendScope {
  std::string key;                 // "g/d/2026-12-07", "u4/m/2026-12": the cap and its period
  std::optional<int64_t> user_id;  // whose spend counts; nullopt: everyone's
  int64_t from_ms = 0;             // the period, [from_ms, to_ms)
  int64_t to_ms = 0;
  int64_t cap = 0;  // nano-dollars
};

// Where a cap stands, as the hold found it (before adding its own amount).
struct SpendFigures {
  std::string key;
  int64_t spent = 0;  // usage rows in the period, every process
  int64_t held = 0;   // other calls in flight, every process
};

struct SpendHoldRequest {
  std::vector<SpendScope> scopes;
  int64_t amount = 0;  // the call's worst case
  // When `amount` does not fit the least room the caps leave: a smaller amount that does and a
  // number for the caller (the completion tokens it covers), or nullopt (refused). May be empty.
  std::function<std::optional<std::pair<int64_t, int>>(int64_t room)> shrink;
  int64_t now_ms = 0;
  int64_t expires_ms = 0;  // the hold is dropped after this if nothing settled it
  std::string owner;       // "pid 1234"
};

struct SpendHoldResult {
  bool ok = false;
  int64_t hold = 0;                   // when ok: settle it with UsageRecord::spend_hold
  int64_t amount = 0;                 // held (the request's, or the shrunk one)
  std::optional<int> shrunk_to;       // shrink's number, when it was used
  std::vector<SpendFigures> figures;  // per scope, in the request's order
  std::optional<size_t> refused_by;   // when !ok: the scope that refused
};

class SpendRepository {
 public:
  explicit SpendRepository(WriteQueue& writes) : writes_(writes) {}

  // Checks and holds; `done` runs on the write queue's completion thread (keep it short).
  void hold(SpendHoldRequest request, std::function<void(Result<SpendHoldResult>)> done);

  // Drops a hold without a usage row (a call that was never sent).
  void release(int64_t hold, WriteCallback done = {});

  // For the usage row's transaction (UsageRepository): drops `hold`.
  static Status release_in(Connection& conn, int64_t hold);

 private:
  WriteQueue& writes_;
};

}  // namespace parley::storage
