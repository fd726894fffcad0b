// parley.yaml: loading and validation. With no file, the embedded defaults apply (database
// under ./data/). Errors name the file, the line and the key; an unknown key is an error, not
// silently ignored. Secrets never live in this file (they come from the environment).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "parley/bot/channels/discord/options.h"
#include "parley/bot/channels/email/options.h"
#include "parley/bot/channels/http/options.h"
#include "parley/bot/clients/llm/provider.h"
#include "parley/bot/money/options.h"
#include "parley/bot/pipeline/access.h"
#include "parley/bot/pipeline/options.h"
#include "parley/storage/store.h"

namespace parley::bot::config {

struct Config {
  std::filesystem::path source;  // empty: embedded defaults
  storage::StoreOptions storage;
  llm::LlmSettings llm;
  // capabilities.yaml (relative paths: to the working directory); empty: embedded defaults.
  std::filesystem::path capabilities_file;
  struct Channels {
    channels::HttpChannelOptions http;
    channels::discord::DiscordOptions discord;
    channels::email::EmailOptions email;
  } channels;
  pipeline::AccessPolicy access;
  pipeline::LaneOptions lanes;
  pipeline::MemoryOptions memory;
  // outbox.retry_ms: how long a reply whose send certainly failed (an SMTP server down) waits
  // before the outbox pump tries it again.
  std::chrono::milliseconds outbox_retry{30'000};
  // outbox.unanswered_within_minutes: a message a crash left stored but unanswered (the last of
  // its conversation, nothing spent or queued after it) this recently is answered once at
  // start; 0: never.
  std::chrono::minutes answer_unanswered_within{60};
  // storage.wal_alert_mib: a WAL larger than this (a long reader holding back checkpoints) is an
  // alert for the admins; 0: never.
  int64_t wal_alert_bytes = int64_t{256} << 20;
  // storage.slow_commit_ms: a commit slower than this (a slow or hanging disk: every message is
  // acknowledged that late) is an alert for the admins; 0: never.
  std::chrono::milliseconds slow_commit{1000};
  money::MoneyOptions money;
  std::string log_level = "info";
};

// Thrown only at start-up; what() lists every problem of the file, one per line, each
// "FILE:LINE:COLUMN: KEY: expected …, found …".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Config default_config();
Config load_config(const std::filesystem::path& file);
// Parses YAML text; `name` is used in error messages in place of a file name.
Config parse_config(const std::string& yaml, const std::string& name);

}  // namespace parley::bot::config
