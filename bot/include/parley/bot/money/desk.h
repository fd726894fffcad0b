// Desk: the process's capabilities::MoneyDesk — credits, budgets and alerts as JSON with a
// "text" field, for /credits and /alerts in chat, GET /api/credits and /api/alerts, and
// `parley report credits` / `parley alerts` (which build a Desk without a running monitor:
// the figures then come from the last stored poll).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "parley/base/clock.h"
#include "parley/bot/money/budget.h"
#include "parley/bot/money/credit_monitor.h"
#include "parley/capabilities/money_desk.h"
#include "parley/storage/alert_repository.h"
#include "parley/storage/credit_repository.h"

namespace parley::bot::money {

class Desk final : public capabilities::MoneyDesk {
 public:
  // `budgets` and `monitor` may be null (a CLI report: no budgets in force here, no monitor).
  Desk(storage::AlertRepository& alerts, storage::CreditRepository& credits,
       const BudgetKeeper* budgets, const CreditMonitor* monitor, std::string provider,
       const parley::Clock& clock = SystemClock::instance());

  [[nodiscard]] Result<nlohmann::json> credits() const override;
  [[nodiscard]] Result<nlohmann::json> alerts(bool open_only) const override;
  [[nodiscard]] Result<nlohmann::json> ack(int64_t id, const std::string& by) const override;

 private:
  storage::AlertRepository& alerts_;
  storage::CreditRepository& credits_;
  const BudgetKeeper* budgets_;
  const CreditMonitor* monitor_;
  std::string provider_;
  const parley::Clock& clock_;
};

}  // namespace parley::bot::money
