#include "cli/report_commands.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

#include "app/exit_codes.h"
#include "parley/base/clock.h"
#include "parley/storage/store.h"

namespace parley::bot::cli {

ReportCommands::ReportCommands(CLI::App& app) {
  report_ =
      app.add_subcommand("report", "reports from the database (works beside a running parley)");
  report_->require_subcommand(1);

  usage_ = report_->add_subcommand(
      "usage",
      "LLM calls, tokens and cost for a period, grouped by day, model, user, "
      "conversation or capability");
  // The period is checked by money::resolve_period, whose errors name the option and value.
  usage_->add_option("--since", usage_period_.since,
                     "the last N hours, days or weeks up to now: 24h, 7d, 30d (default 7d)");
  usage_->add_option("--from", usage_period_.from, "first day, YYYY-MM-DD (in --tz)");
  usage_->add_option("--to", usage_period_.to, "last day, YYYY-MM-DD, inclusive (default: today)");
  usage_->add_option("--by", usage_by_, "group by day, model, user, conversation or capability")
      ->check(CLI::IsMember({"day", "model", "user", "conversation", "capability"}));
  usage_->add_option("--format", usage_format_, "table, json or csv")
      ->check(CLI::IsMember({"table", "json", "csv"}));
  usage_->add_option("--tz", usage_zone_,
                     "IANA time zone of the days (default: money.zone, else UTC)");

  // `report credits` is added to report_ by MoneyCommands (money_commands.h).
}

int ReportCommands::run(const config::Config& cfg) {
  if (usage_->parsed()) return usage(cfg);
  return app::kExitBadInput;
}

int ReportCommands::usage(const config::Config& cfg) {
  const int64_t now_ms = SystemClock::instance().now_ms();
  money::UsageReportRequest request;
  request.period = usage_period_;
  request.group_by = storage::parse_usage_group_by(usage_by_).value_or(storage::UsageGroupBy::day);
  request.zone = usage_->count("--tz") > 0 ? usage_zone_ : cfg.money.zone;
  const auto format =
      money::parse_report_format(usage_format_).value_or(money::ReportFormat::table);
  // Options first: a bad --since is reported as such even where there is no database.
  if (auto period = money::resolve_period(request.period, request.zone, now_ms); !period) {
    return app::report_error(period.error());
  }
  if (!std::filesystem::exists(cfg.storage.path)) {
    fmt::print(stderr, "parley: no database at {}\n", cfg.storage.path.string());
    return app::kExitBadInput;
  }
  auto options = cfg.storage;
  options.readers = 1;
  auto store = storage::Store::open(options);
  if (!store) return app::report_error(store.error());
  auto result = money::build_usage_report((*store)->usage(), request, now_ms);
  if (!result) return app::report_error(result.error());
  const std::string text = money::usage_report_render(*result, format);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return app::kExitOk;
}

}  // namespace parley::bot::cli
