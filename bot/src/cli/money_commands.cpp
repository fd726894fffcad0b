#include "cli/money_commands.h"

#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "app/exit_codes.h"
#include "parley/bot/money/budget.h"
#include "parley/bot/money/desk.h"
#include "parley/storage/alert_repository.h"
#include "parley/storage/store.h"

namespace parley::bot::cli {

MoneyCommands::MoneyCommands(CLI::App& app) {
  CLI::App* report = app.get_subcommand("report");
  credits_ = report->add_subcommand(
      "credits", "the provider's balance, limit, runway, last poll, budgets, open alerts");
  credits_->add_flag("--json", json_, "print JSON");
  alerts_ =
      app.add_subcommand("alerts", "alerts about LLM spend and credit: list (open), all, ack ID");
  alerts_->add_flag("--json", json_, "print JSON");
  list_ = alerts_->add_subcommand("list", "the open alerts, newest first (the default)");
  all_ = alerts_->add_subcommand("all", "every alert, acknowledged ones too");
  ack_ = alerts_->add_subcommand("ack", "acknowledge an alert");
  ack_->add_option("ID", ack_id_, "the alert's number (from `parley alerts`)")
      ->required()
      ->check(CLI::PositiveNumber);
  alerts_->require_subcommand(0, 1);
}

int MoneyCommands::run(const config::Config& cfg) {
  // Who acknowledges an alert (`alerts ack`): $USER, read before the store starts its threads.
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read once at start-up, before any thread
  const char* env_user = std::getenv("USER");
  const std::string acknowledger = env_user != nullptr ? env_user : "operator";
  if (!std::filesystem::exists(cfg.storage.path)) {
    fmt::print(stderr, "parley: no database at {} (start parley once to create it)\n",
               cfg.storage.path.string());
    return app::kExitBadInput;
  }
  auto opened = storage::Store::open(cfg.storage);
  if (!opened) return app::report_error(opened.error());
  auto& store = **opened;
  storage::AlertRepository alerts(store.writes(), store.reads(), SystemClock::instance());
  Result<nlohmann::json> out = nlohmann::json();
  if (credits_->parsed()) {
    // The budgets as the ledger has them now (their caps from parley.yaml).
    money::BudgetOptions bo;
    bo.global_daily = cfg.money.daily;
    bo.global_monthly = cfg.money.monthly;
    bo.zone = cfg.money.zone;
    money::BudgetKeeper budgets(bo, nullptr, SystemClock::instance(), nullptr);
    if (auto st = budgets.preload(store.reads()); !st.ok()) return app::report_error(st.error());
    money::Desk desk(alerts, store.credits(), &budgets, nullptr, "openrouter");
    out = desk.credits();
  } else {
    money::Desk desk(alerts, store.credits(), nullptr, nullptr, "openrouter");
    if (ack_->parsed()) {
      out = desk.ack(ack_id_, "cli:" + acknowledger);
    } else {
      out = desk.alerts(!all_->parsed());
    }
  }
  if (!out) {
    fmt::print(stderr, "parley: {}\n", out.error().message);
    return out.error().code == ErrorCode::not_found ? app::kExitBadInput : app::kExitFailed;
  }
  if (json_) {
    fmt::print("{}\n", out->dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("{}\n", out->value("text", std::string()));
  }
  return app::kExitOk;
}

}  // namespace parley::bot::cli
