// `parley report credits` and `parley alerts [list|all|ack ID]`: the credit state, the budgets
// and the alerts, read from the store without starting the bot (beside a running one, the
// figures are those of its last stored poll and of the ledger).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>

#include "parley/bot/config/config.h"

namespace parley::bot::cli {

class MoneyCommands {
 public:
  // Adds `alerts` to `app` and `credits` to its `report` command (which must exist).
  explicit MoneyCommands(CLI::App& app);

  [[nodiscard]] bool selected() const { return credits_->parsed() || alerts_->parsed(); }
  // Returns the process exit code.
  int run(const config::Config& cfg);

 private:
  CLI::App* credits_ = nullptr;
  CLI::App* alerts_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* all_ = nullptr;
  CLI::App* ack_ = nullptr;
  int64_t ack_id_ = 0;
  bool json_ = false;
};

}  // namespace parley::bot::cli
