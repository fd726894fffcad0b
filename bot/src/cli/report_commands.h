// `parley report usage`: the usage ledger's report, read from the store without starting the
// bot. (`report credits` hangs on the same `report` command, added by MoneyCommands.)
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "parley/bot/config/config.h"
#include "parley/bot/money/reports/usage_report.h"

namespace parley::bot::cli {

class ReportCommands {
 public:
  // Adds `report` and its subcommands to `app`.
  explicit ReportCommands(CLI::App& app);

  // One of this class's subcommands was given (other `report` subcommands may be added to the
  // same `report` by other classes).
  [[nodiscard]] bool selected() const { return usage_->parsed(); }
  // Opens the store `cfg` names (which must exist), runs the chosen report, prints it. Returns
  // the process exit code: 2 for bad options (a message naming the option and the value).
  int run(const config::Config& cfg);

 private:
  int usage(const config::Config& cfg);

  CLI::App* report_ = nullptr;

  // report usage
  CLI::App* usage_ = nullptr;
  money::PeriodSpec usage_period_;
  std::string usage_by_ = "day";
  std::string usage_format_ = "table";
  std::string usage_zone_ = "UTC";
};

}  // namespace parley::bot::cli
