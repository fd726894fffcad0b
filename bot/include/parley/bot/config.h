// parley.yaml: loading and validation. With no file, the embedded defaults apply (database
// under ./data/). Errors name the file, the line and the key; an unknown key is an error, not
// silently ignored. Secrets never live in this file (they come from the environment).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <vector>
#include <stdexcept>
#include <string>

#include "parley/bot/access.h"
#include "parley/bot/llm/provider.h"
#include "parley/storage/store.h"

namespace parley::bot {

struct Config {
  std::filesystem::path source;  // empty: embedded defaults
  storage::StoreOptions storage;
  llm::LlmSettings llm;
  // capabilities.yaml (relative paths: to the working directory); empty: embedded defaults.
  std::filesystem::path capabilities_file;
  struct Http {
    std::string listen = "127.0.0.1:8787";  // HOST:PORT of the HTTP channel
    std::string token_env = "PARLEY_HTTP_TOKEN";  // the variable holding its bearer token
  } http;
  AccessPolicy access;
  struct Lanes {
    std::chrono::milliseconds debounce{400};  // a burst settles this long after its last message
    std::chrono::milliseconds max_wait{2000};  // … but waits at most this after the turn before
  } lanes;
  // Money: prices, budgets, alerts, the credit monitor. Amounts in nano-dollars (read exactly
  // from decimal USD); nullopt: not set.
  struct Money {
    std::filesystem::path prices_file;  // empty: the shipped table (config/prices.yaml, embedded)
    std::string zone = "UTC";           // the calendar days and months budgets count in
    std::optional<int64_t> daily, monthly, user_daily, user_monthly, per_turn;
    int soft_percent = 80;
    std::string cheaper_role;
    int default_max_tokens = 4096;
    bool refuse_unknown_price = false;
    std::optional<int64_t> alert_daily_spend, alert_monthly_spend;
    std::string webhook_url_env;            // the NAME of the variable holding the webhook URL
    std::vector<std::string> deliver_to;    // admin conversations: CHANNEL:ID
    int rate_limit_calls = 5;               // 429s within rate_limit_window raise an alert
    std::chrono::minutes rate_limit_window{10};
    std::string credits = "auto";           // auto (when the default provider is openrouter) | on | off
    std::chrono::seconds credits_interval{300};
    int credits_every_calls = 50;
    std::string management_key_env = "OPENROUTER_MANAGEMENT_KEY";
    std::optional<int64_t> low_balance_warning, low_balance_critical;
    std::optional<double> runway_hours;
  } money;
  std::string log_level = "info";
};

// Thrown only at start-up; what() is "FILE:LINE:COLUMN: KEY: problem".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Config default_config();
Config load_config(const std::filesystem::path& file);
// Parses YAML text; `name` is used in error messages in place of a file name.
Config parse_config(const std::string& yaml, const std::string& name);

}  // namespace parley::bot
