// parley.yaml's `money:` section: prices, budgets, alerts, the credit monitor (read by
// config/, used by Treasury). Plain data.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace parley::bot::money {

// Money: prices, budgets, alerts, the credit monitor. Amounts in nano-dollars (read exactly
// from decimal USD); nullopt: not set.
struct MoneyOptions {
  std::filesystem::path prices_file;  // empty: the shipped table (config/prices.yaml, embedded)
  std::string zone = "UTC";           // the calendar days and months budgets count in
  std::optional<int64_t> daily, monthly, user_daily, user_monthly, per_turn;
  int soft_percent = 80;
  std::string cheaper_role;
  int default_max_tokens = 4096;
  // A cap's remainder too small for max_tokens: ask for what it covers if at least this many.
  int min_max_tokens = 256;
  bool refuse_unknown_price = false;
  std::optional<int64_t> alert_daily_spend, alert_monthly_spend;
  std::string webhook_url_env;          // the NAME of the variable holding the webhook URL
  std::vector<std::string> deliver_to;  // admin conversations: CHANNEL:ID
  int rate_limit_calls = 5;             // 429s within rate_limit_window raise an alert
  std::chrono::minutes rate_limit_window{10};
  std::string credits = "auto";  // auto (when the default provider is openrouter) | on | off
  std::chrono::seconds credits_interval{300};
  int credits_every_calls = 50;
  std::string management_key_env = "OPENROUTER_MANAGEMENT_KEY";
  std::optional<int64_t> low_balance_warning, low_balance_critical;
  std::optional<double> runway_hours;
};

}  // namespace parley::bot::money
