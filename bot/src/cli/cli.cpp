#include "parley/bot/cli/cli.h"

#include <fmt/format.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "app/exit_codes.h"
#include "cli/ask_command.h"
#include "cli/capability_commands.h"
#include "cli/chat_command.h"
#include "cli/discord_commands.h"
#include "cli/email_commands.h"
#include "cli/mcp_commands.h"
#include "cli/memory_commands.h"
#include "cli/money_commands.h"
#include "cli/prompt_commands.h"
#include "cli/report_commands.h"
#include "cli/run_command.h"
#include "parley/bot/cli/health_report.h"
#include "parley/bot/clients/llm/provider.h"
#include "parley/bot/config/config.h"
#include "parley/bot/pipeline/memory_embedder.h"
#include "parley/prompts/library.h"
#include "parley/storage/migrations.h"
#include "parley/storage/store.h"

#ifndef PARLEY_VERSION
#define PARLEY_VERSION "0.0.0"
#endif

namespace parley::bot::cli {

namespace {

Result<std::unique_ptr<storage::Store>> open_store(const config::Config& cfg) {
  return storage::Store::open(cfg.storage);
}

int cmd_run(const config::Config& cfg) {
  auto store = open_store(cfg);
  if (!store) return app::report_error(store.error());
  const auto& m = (*store)->migration();
  if (m.from != m.to) {
    fmt::print("migrated schema from version {} to {}\n", m.from, m.to);
  }
  prompts::PromptLibrary library(**store);
  auto seeded = library.seed_defaults();
  if (!seeded) return app::report_error(seeded.error());
  for (const auto& name : seeded->created) fmt::print("prompt {}: seeded version 1\n", name);
  for (const auto& name : seeded->updated) {
    fmt::print("prompt {}: the shipped default changed; new active version\n", name);
  }
  for (const auto& name : seeded->upstream) {
    fmt::print(
        "prompt {}: the shipped default changed; stored under the label upstream "
        "(see `parley prompt status`)\n",
        name);
  }
  fmt::print("parley {}\n", PARLEY_VERSION);
  fmt::print("{}", health_text((*store)->health()));
  const auto llm_settings = llm::resolve_llm(cfg.llm, llm::process_env());
  if (llm_settings.configured()) {
    const auto& role = llm_settings.roles.at(llm_settings.default_role);
    fmt::print("llm: {} via {} ({})\n", role.front().model, role.front().provider,
               llm_settings.providers.at(role.front().provider).config.base_url);
  } else {
    fmt::print("llm: {}\n", llm_settings.not_configured);
  }
  fmt::print("memory: {}\n", pipeline::memory_recall_line(llm_settings));
  fmt::print(
      "check done: the database, prompts and configuration are ready; `parley run` serves\n");
  return app::kExitOk;
}

// What `parley llm` prints: the resolved providers and roles. Keys are never shown, only the
// variable they come from and whether it is set.
nlohmann::json llm_json(const llm::ResolvedLlm& r) {
  nlohmann::json j;
  j["configured"] = r.configured();
  if (!r.configured()) j["not_configured"] = r.not_configured;
  j["default_provider"] = r.default_provider;
  j["default_role"] = r.default_role;
  for (const auto& [name, p] : r.providers) {
    j["providers"][name] = {
        {"base_url", p.config.base_url},
        {"key_from", p.key_source.empty() ? p.config.api_key_env : p.key_source},
        {"key_set", !p.api_key.empty()}};
  }
  for (const auto& [role, models] : r.roles) {
    for (const auto& m : models) {
      j["roles"][role].push_back({{"provider", m.provider}, {"model", m.model}});
    }
  }
  j["memory_recall"] = pipeline::memory_recall_line(r);
  const auto& t = r.timeouts;
  j["timeouts_ms"] = {{"connect", t.connect.count()},
                      {"first_byte", t.first_byte.count()},
                      {"idle", t.idle.count()},
                      {"call", t.call.count()},
                      {"turn", t.turn.count()}};
  j["retry"] = {{"max_attempts", r.retry.max_attempts},
                {"base_backoff_ms", r.retry.base_backoff.count()},
                {"max_backoff_ms", r.retry.max_backoff.count()}};
  return j;
}

int cmd_llm(const config::Config& cfg, bool json) {
  const auto r = llm::resolve_llm(cfg.llm, llm::process_env());
  if (json) {
    std::cout << llm_json(r).dump(2) << "\n";
    return r.configured() ? app::kExitOk : app::kExitFailed;
  }
  if (!r.configured()) fmt::print("{}\n\n", r.not_configured);
  fmt::print("default provider: {}   default role: {}\n", r.default_provider, r.default_role);
  for (const auto& [name, p] : r.providers) {
    const std::string var = p.key_source.empty() ? p.config.api_key_env : p.key_source;
    fmt::print("provider {:<12} {:<40} key: {}\n", name, p.config.base_url,
               var.empty() ? std::string("none needed")
                           : fmt::format("{} ({})", var, p.api_key.empty() ? "not set" : "set"));
  }
  for (const auto& [role, models] : r.roles) {
    std::string list;
    for (const auto& m : models) list += (list.empty() ? "" : " → ") + m.provider + ":" + m.model;
    fmt::print("role {:<8} {}\n", role, list);
  }
  fmt::print("memory: {}\n", pipeline::memory_recall_line(r));
  return r.configured() ? app::kExitOk : app::kExitFailed;
}

int cmd_db_check(const config::Config& cfg, bool json) {
  if (!std::filesystem::exists(cfg.storage.path)) {
    fmt::print(stderr, "parley: no database at {}\n", cfg.storage.path.string());
    return app::kExitBadInput;
  }
  auto store = open_store(cfg);
  if (!store) return app::report_error(store.error());
  auto integrity = (*store)->integrity_check();
  const auto health = (*store)->health();
  if (json) {
    auto j = health_json(health);
    j["integrity"] = integrity.ok() ? "ok" : integrity.error().message;
    j["latest_schema_version"] = storage::latest_schema_version();
    j["migrated_from"] = (*store)->migration().from;
    std::cout << j.dump(2) << "\n";
  } else {
    fmt::print("{}", health_text(health));
    fmt::print("integrity: {}\n", integrity.ok() ? "ok" : integrity.error().message);
  }
  return integrity.ok() ? app::kExitOk : app::kExitFailed;
}

int cmd_db_backup(const config::Config& cfg, const std::string& dest) {
  if (!std::filesystem::exists(cfg.storage.path)) {
    fmt::print(stderr, "parley: no database at {}\n", cfg.storage.path.string());
    return app::kExitBadInput;
  }
  auto store = open_store(cfg);
  if (!store) return app::report_error(store.error());
  if (auto r = (*store)->backup(dest); !r) return app::report_error(r.error());
  fmt::print("backup of {} written to {} ({}); the copy opens and checks ok\n",
             cfg.storage.path.string(), dest, human_bytes(storage::file_size_or_zero(dest)));
  return app::kExitOk;
}

// Log lines go to stderr, or to `file` (rotated: 3 files of 5 MiB) when one is given. When the
// terminal is a conversation (chat, or run's console) and no file is given, they go to
// parley.log beside the database instead, so that they never land in the middle of it; the
// first line on stderr says where.
void setup_logging(const std::string& level, std::string file, bool terminal_is_a_chat,
                   const std::filesystem::path& db) {
  if (file.empty() && terminal_is_a_chat) {
    file = (db.has_parent_path() ? db.parent_path() / "parley.log"
                                 : std::filesystem::path("parley.log"))
               .string();
  }
  std::shared_ptr<spdlog::logger> logger;
  if (!file.empty()) {
    try {
      if (const auto dir = std::filesystem::path(file).parent_path(); !dir.empty()) {
        std::filesystem::create_directories(dir);
      }
      auto sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(file, 5u << 20, 3);
      logger = std::make_shared<spdlog::logger>("parley", std::move(sink));
      if (terminal_is_a_chat) fmt::print(stderr, "parley: log lines go to {}\n", file);
    } catch (const std::exception& e) {
      fmt::print(stderr, "parley: cannot log to {} ({}); logging to stderr\n", file, e.what());
    }
  }
  if (!logger) logger = spdlog::stderr_color_mt("parley");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::warn);
  // A log file is buffered: without this, info lines ("reminder fired", "reloaded") reached it
  // only with the next warning or a full buffer (spdlog's flusher: one thread, once a second).
  if (logger->name() == "parley" && !logger->sinks().empty() &&
      std::dynamic_pointer_cast<spdlog::sinks::rotating_file_sink_mt>(logger->sinks().front())) {
    spdlog::flush_every(std::chrono::seconds(1));
  }
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"parley — a chat-bot agent that keeps every message and counts every cent"};
  app.set_version_flag("--version", std::string("parley ") + PARLEY_VERSION);
  std::string config_file;
  std::string db_path;
  app.add_option("--config", config_file, "parley.yaml to load (default: embedded defaults)")
      ->check(CLI::ExistingFile);
  app.add_option("--db", db_path, "SQLite database (default: ./data/parley.db)");
  std::string log_level;
  std::string log_file;
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error, critical or off (default: log.level)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-file", log_file,
                 "write log lines to FILE (rotated) instead of stderr; chat and a console run "
                 "default to parley.log beside the database");

  auto* run = app.add_subcommand("run", "start the bot (the default command)");
  RunOptions run_options;
  bool run_check = false;
  run->add_option("--http", run_options.channels.http_listen,
                  "HOST:PORT of the HTTP channel (default 127.0.0.1:8787)");
  run->add_flag("--check", run_check,
                "prepare everything (database, prompts, LLM settings), print health, exit");
  std::string console_mode = "auto";
  run->add_option("--console", console_mode,
                  "the terminal as a channel: auto (when stdin is a terminal), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  int64_t grace_s = 20;
  run->add_option("--grace", grace_s, "seconds running turns may finish after SIGINT/SIGTERM")
      ->check(CLI::Range(0, 3600));
  auto* version = app.add_subcommand("version", "print the version");
  auto* db = app.add_subcommand("db", "database maintenance");
  db->require_subcommand(1);
  bool check_json = false;
  auto* check = db->add_subcommand("check", "integrity, schema version, WAL size and health");
  check->add_flag("--json", check_json, "print JSON");
  std::string backup_path;
  auto* backup = db->add_subcommand("backup", "online backup to a new file, then check the copy");
  backup->add_option("PATH", backup_path, "where to write the copy (must not exist)")->required();
  bool llm_as_json = false;
  auto* llm_cmd = app.add_subcommand("llm", "the LLM providers, roles and models parley would use");
  llm_cmd->add_flag("--json", llm_as_json, "print JSON");
  PromptCommands prompt_commands(app);
  CapabilityCommands capability_commands(app);
  ReportCommands report_commands(app);
  MoneyCommands money_commands(app);
  DiscordCommands discord_commands(app);
  McpCommands mcp_commands(app);
  EmailCommands email_commands(app);
  MemoryCommands memory_commands(app);
  AskOptions ask_options;
  auto* ask =
      app.add_subcommand("ask", "one turn: prints the reply (works beside a running parley)");
  ask->add_option("TEXT", ask_options.text, "what to say (a /command runs without the LLM)")
      ->required();
  ask->add_option("--user", ask_options.user, "who is asking (default: $USER)");
  ask->add_option("--conversation", ask_options.conversation,
                  "conversation key (default: ask-USER)");
  ask->add_flag("--json", ask_options.json,
                "print reply, model, tokens, cost, steps and latency as JSON");
  ChatOptions chat_options;
  auto* chat = app.add_subcommand(
      "chat", "talk with the bot in the terminal (works beside a running parley)");
  chat->add_option("--user", chat_options.user, "who is talking (default: $USER)");
  chat->add_option("--conversation", chat_options.conversation,
                   "conversation key (default: chat-USER)");
  app.require_subcommand(0, 1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? app::kExitOk : app::kExitBadInput;
  }

  if (*version) {
    fmt::print("parley {} (SQLite {})\n", PARLEY_VERSION, sqlite3_libversion());
    return app::kExitOk;
  }

  config::Config cfg;
  try {
    cfg = config_file.empty() ? config::default_config() : config::load_config(config_file);
  } catch (const config::ConfigError& e) {
    fmt::print(stderr, "parley: {}\n", e.what());
    return app::kExitBadInput;
  }
  if (!db_path.empty()) cfg.storage.path = db_path;
  // The terminal is a conversation: chat, or run with its console on a terminal.
  const bool serving = *run || app.get_subcommands().empty();
  const bool terminal_is_a_chat =
      ::isatty(STDIN_FILENO) == 1 && (*chat || (serving && !run_check && console_mode != "off"));
  setup_logging(log_level.empty() ? cfg.log_level : log_level, log_file, terminal_is_a_chat,
                cfg.storage.path);
  if (capability_commands.selected()) return capability_commands.run(config_file);
  if (money_commands.selected()) return money_commands.run(cfg);
  if (discord_commands.selected()) return discord_commands.run(cfg);
  if (mcp_commands.selected()) return mcp_commands.run(cfg);
  if (email_commands.selected()) return email_commands.run(cfg);
  if (memory_commands.selected()) return memory_commands.run(cfg);
  if (report_commands.selected()) return report_commands.run(cfg);
  if (*ask) return run_ask(cfg, ask_options);
  if (*chat) return run_chat(cfg, chat_options);

  if (prompt_commands.selected()) {
    // A read-only command on a mistyped --db would otherwise create and seed a new database.
    if (prompt_commands.read_only() && !std::filesystem::exists(cfg.storage.path)) {
      fmt::print(stderr, "parley: no database at {} (start parley once to create it)\n",
                 cfg.storage.path.string());
      return app::kExitBadInput;
    }
    auto store = open_store(cfg);
    if (!store) return app::report_error(store.error());
    return prompt_commands.run(**store);
  }
  if (*llm_cmd) return cmd_llm(cfg, llm_as_json);
  if (*db) {
    if (*check) return cmd_db_check(cfg, check_json);
    if (*backup) return cmd_db_backup(cfg, backup_path);
  }
  if (run_check) return cmd_run(cfg);
  run_options.grace = std::chrono::seconds(grace_s);
  using Console = app::ChannelChoices::Console;
  run_options.channels.console = console_mode == "on"    ? Console::on
                                 : console_mode == "off" ? Console::off
                                                         : Console::automatic;
  return run_bot(cfg, run_options);
}

}  // namespace parley::bot::cli
