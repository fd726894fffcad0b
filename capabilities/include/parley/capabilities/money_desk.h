// MoneyDesk: what the money capabilities (/credits, /alerts) ask the process for — the LLM
// account's credit state, the budgets, the alerts. bot/ implements it (bot/usage/desk.h); the
// HTTP API and the CLI answer from the same implementation, so every front end shows the same
// numbers.
//
// Thread safety: implementations are safe to call from any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "parley/base/result.h"

namespace parley::capabilities {

class MoneyDesk {
 public:
  virtual ~MoneyDesk() = default;
  // Balance, limit, runway, last poll, budgets and open alerts; a "text" field for people.
  [[nodiscard]] virtual Result<nlohmann::json> credits() const = 0;
  // Newest first; open_only: not acknowledged. {"alerts": [...], "text": "..."}.
  [[nodiscard]] virtual Result<nlohmann::json> alerts(bool open_only) const = 0;
  // not_found when there is no such alert; {"acknowledged": bool, "text"} otherwise.
  [[nodiscard]] virtual Result<nlohmann::json> ack(int64_t id, const std::string& by) const = 0;
};

}  // namespace parley::capabilities
