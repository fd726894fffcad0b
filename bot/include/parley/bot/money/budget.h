// BudgetKeeper: the LLM client's spend gate (llm::SpendGate). Caps — global and per user, per
// calendar day and month in one time zone, and per turn — are enforced *before* an attempt is
// sent: the attempt's worst case (the prompt's estimated tokens + its max_tokens, at the
// model's price; for an embeddings batch, its inputs' estimated tokens at the input price) is
// reserved against every cap that applies, and the attempt is refused when
// any would be passed. After the attempt the reservation is replaced by its real cost (the
// provider's usage.cost, else the price table's estimate). Concurrent calls therefore cannot
// jointly pass a cap: each one's worst case is counted before it is sent.
//
// Past the soft threshold (soft_percent of a cap) calls go to the cheaper role and the admins
// are told (a budget_soft alert); at a cap, calls are refused with one sentence for the user
// and a budget_hard alert. Global spend thresholds raise daily_spend / monthly_spend alerts.
//
// A model with no price cannot be reserved for: by default such calls are let through (their
// provider-reported cost, when there is one, still counts once it is known); with
// refuse_unknown_price they are refused.
//
// What is counted: the spend of this day and month is read from the ledger at start
// (preload), then kept in memory from every attempt this process settles — the fast first
// check (admit), and what routing, soft thresholds and gauges read. With a database to share
// (share(): every process on one database, `parley ask` beside `parley run`), an attempt admit()
// accepted is then confirmed against the period caps in the database (SpendRepository: what
// every process has spent and holds, checked and held in one write transaction), so no number
// of processes can jointly pass a cap; the attempt's usage row drops its hold. The figures the
// database returns refresh the in-memory ones, so the other processes' spend reaches routing
// and alerts too. The per-turn cap stays in memory (a turn runs in one process).
//
// Thread safety: every method may be called from any thread. The counters sit behind one
// mutex held for a few integer operations (no I/O, no allocation beyond a new period's key).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/bot/clients/llm/client.h"
#include "parley/bot/money/alert_sink.h"
#include "parley/bot/money/periods.h"
#include "parley/bot/money/prices.h"
#include "parley/bot/net.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/spend_repository.h"

namespace parley::bot::money {

struct BudgetOptions {
  // Caps in nano-dollars; nullopt: no cap.
  std::optional<int64_t> global_daily;
  std::optional<int64_t> global_monthly;
  std::optional<int64_t> user_daily;
  std::optional<int64_t> user_monthly;
  std::optional<int64_t> per_turn;
  int soft_percent = 80;     // of each cap: switch to cheaper_role and tell the admins
  std::string cheaper_role;  // empty: keep the role past the soft threshold
  std::string zone = "UTC";  // the calendar periods' time zone
  bool refuse_unknown_price = false;
  int default_max_tokens = 4096;  // asked for (and reserved) when a request sets none
  // When a cap's remainder cannot cover a call's max_tokens, the call asks for as many
  // completion tokens as it covers instead, if that is at least this many; below it, refused.
  int min_max_tokens = 256;
  // Global spend alerts (daily_spend / monthly_spend), nano-dollars; nullopt: none.
  std::optional<int64_t> alert_daily_spend;
  std::optional<int64_t> alert_monthly_spend;

  [[nodiscard]] bool any_cap() const {
    return global_daily || global_monthly || user_daily || user_monthly || per_turn;
  }
};

// What a (settled or refused) attempt costs, from the provider and from the price table.
struct AttemptCost {
  std::optional<int64_t> actual;     // the provider's usage.cost
  std::optional<int64_t> estimated;  // the price table's; nullopt: the model has no price
  std::string pricing_version;
  std::string model;  // the model priced (the one that answered, else the one asked)
  // What budgets count: the provider's cost, else the estimate, else 0 (unknown).
  [[nodiscard]] int64_t counted() const { return actual ? *actual : estimated.value_or(0); }
};
AttemptCost price_attempt(const PriceTable* prices, const llm::Attempt& attempt, int64_t at_ms);

class BudgetKeeper final : public llm::SpendGate {
 public:
  // `prices` may be null (no price table: every model is unknown). `alerts` may be null.
  BudgetKeeper(BudgetOptions options, std::shared_ptr<const PriceTable> prices,
               const parley::Clock& clock, AlertSink* alerts);

  // Reads this day's and this month's spend (global and per user) from the ledger.
  Status preload(storage::ReadPool& reads);
  // Confirms admissions against the database that every process on it shares (before the
  // first call); `owner` names this process in the holds ("pid 1234").
  void share(storage::SpendRepository* spend, std::string owner) {
    spend_ = spend;
    owner_ = std::move(owner);
  }
  // Puts a reloaded price table in force for the next admission (any thread).
  void set_prices(std::shared_ptr<const PriceTable> prices) { prices_.store(std::move(prices)); }
  // How alerts name a user ("http:alice"); unset or empty: "user 42". Before the first call;
  // called outside the keeper's lock.
  void name_users(std::function<std::string(int64_t user_id)> f) { name_user_ = std::move(f); }

  // SpendGate.
  std::string route(const llm::CallOptions& options, const std::string& role) override;
  [[nodiscard]] std::optional<int> default_max_tokens() const override;
  [[nodiscard]] bool past_soft(const llm::CallOptions& options) const override;
  Admission admit(const llm::CallOptions& options, const llm::ResolvedModel& model,
                  const llm::ChatRequest& request) override;
  Admission admit(const llm::CallOptions& options, const llm::ResolvedModel& model,
                  const Bound& bound) override;
  net::asio::awaitable<Admission> confirm(const Admission& admission,
                                          const llm::CallOptions& options,
                                          std::chrono::steady_clock::time_point deadline) override;
  void settle(const Admission& admission, const llm::CallOptions& options,
              const llm::Attempt& attempt) override;

  // The caps that apply and where they stand, for reports and /metrics: global ones, and the
  // user's when `user_id` is set.
  struct Gauge {
    std::string name;    // "global daily", "user 42 monthly", …
    std::string period;  // "2026-12-05", "2026-12"
    int64_t spent = 0;
    int64_t reserved = 0;  // in flight
    int64_t cap = 0;
  };
  [[nodiscard]] std::vector<Gauge> gauges(std::optional<int64_t> user_id = std::nullopt) const;

  // The worst case of one attempt; nullopt when the model has no price.
  [[nodiscard]] std::optional<int64_t> worst_case(const llm::ResolvedModel& model,
                                                  const llm::ChatRequest& request) const;
  [[nodiscard]] std::optional<int64_t> worst_case(const llm::ResolvedModel& model,
                                                  const Bound& bound) const;

  [[nodiscard]] const BudgetOptions& options() const { return options_; }
  [[nodiscard]] const Periods& periods() const { return periods_; }

 private:
  struct Counter {
    int64_t spent = 0;
    int64_t reserved = 0;
    int64_t touched_ms = 0;
  };
  struct Scope {
    std::string key;   // counter key
    std::string name;  // for people: "daily", "your monthly", "per-request"
    std::string period;
    int64_t cap = 0;
    bool user = false;
    bool turn = false;
    int64_t from_ms = 0;  // the period (not for the turn's)
    int64_t to_ms = 0;
  };
  // Reserves `worst` (nullopt: the model has no price) against every cap, or refuses.
  // `shrink` (chat calls): given the room a cap leaves, a smaller reservation and the
  // completion tokens it covers, or nullopt when fewer than min_max_tokens would fit.
  using Shrink = std::function<std::optional<std::pair<int64_t, int>>(int64_t room)>;
  Admission reserve(const llm::CallOptions& options, const llm::ResolvedModel& model,
                    std::optional<int64_t> worst, const Shrink& shrink = {});
  std::vector<Scope> scopes_for(const llm::CallOptions& options, int64_t now_ms) const;
  // The most completion tokens (≥ min_max_tokens, < asked) whose worst case fits `room`, with
  // that worst case; nullopt when even the floor does not fit.
  [[nodiscard]] std::optional<std::pair<int64_t, int>> fit(const std::string& model,
                                                           int64_t prompt_tokens, int asked,
                                                           int64_t room) const;
  [[nodiscard]] std::optional<int64_t> worst_case(const std::string& model,
                                                  const Bound& bound) const;
  // The budget_hard alert for a call of `amount` refused by `scope` standing at `c`.
  [[nodiscard]] AlertRaise hard_alert(const Scope& scope, const Counter& c, int64_t amount,
                                      const std::string& model) const;
  // "http:alice" (name_users), else "user 42".
  [[nodiscard]] std::string who(int64_t user_id) const;
  // Alerts are written under the lock with kUserMark where the user's name goes, and named
  // after it (naming may read the database).
  static constexpr const char* kUserMark = "\x1fuser\x1f";
  void name_in(AlertRaise& alert, int64_t user_id) const;
  std::string refusal(const Scope& scope, const Counter& c, int64_t now_ms) const;
  // Takes an admission's in-memory reservation back (a refusal after admit()).
  void unreserve(const Admission& admission);
  void sweep_locked(int64_t now_ms);

  BudgetOptions options_;
  std::atomic<std::shared_ptr<const PriceTable>> prices_;  // swapped whole on a reload
  std::function<std::string(int64_t)> name_user_;
  const parley::Clock& clock_;
  AlertSink* alerts_;
  Periods periods_;
  storage::SpendRepository* spend_ = nullptr;
  std::string owner_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, Counter> counters_;
  uint64_t admits_ = 0;
};

}  // namespace parley::bot::money
