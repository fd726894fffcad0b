#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros

#include "cli/capability_commands.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "app/exit_codes.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/clients/mcp/mcp_servers.h"
#include "parley/bot/config/config.h"
#include "parley/bot/money/prices.h"
#include "parley/capabilities/builtins.h"
#include "parley/capabilities/config.h"

namespace parley::bot::cli {

namespace caps = parley::capabilities;

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// One line on whether the capability is on, and why.
std::string status_line(const caps::Capability& c, const caps::CapabilityConfig& cfg,
                        const std::string& source) {
  if (!cfg.enabled) return fmt::format("disabled in {}", source);
  std::vector<std::string> why;
  why.push_back(cfg.configured ? fmt::format("enabled in {}", source) : "enabled (default)");
  if (c.flags().admin_only) {
    why.emplace_back(cfg.allow.lists_anyone() ? "admin only: admins and those listed"
                                              : "admin only: admins");
  } else if (cfg.allow.lists_anyone()) {
    std::string who;
    if (!cfg.allow.users.empty()) who += "users " + join(cfg.allow.users);
    if (!cfg.allow.roles.empty()) {
      who += (who.empty() ? "" : "; ") + ("roles " + join(cfg.allow.roles));
    }
    why.push_back("only for " + who);
  }
  if (!cfg.allow.channels.empty()) why.push_back("channels " + join(cfg.allow.channels));
  if (cfg.rate_limit.calls > 0) {
    why.push_back(
        fmt::format("{} calls per {} s", cfg.rate_limit.calls, cfg.rate_limit.per.count()));
  }
  return join(why);
}

// The MCP servers of a configuration, started for the length of one command on an io_context
// of their own, their tools in `registry`.
class McpSession {
 public:
  McpSession(caps::Registry& registry, const caps::CapabilitiesConfig& config)
      : multi_(ioc_.get_executor()), servers_(ioc_.get_executor(), multi_, registry) {
    thread_ = std::thread([this] { ioc_.run(); });
    servers_.apply(config);
    std::chrono::milliseconds wait{0};
    for (const auto& [name, spec] : config.mcp_servers) {
      (void)name;
      if (spec.enabled) wait = std::max(wait, mcp::McpServerConfig{}.init_timeout);
    }
    servers_.wait_settled(wait + std::chrono::seconds(5));
  }
  ~McpSession() {
    servers_.stop(std::chrono::seconds(5));
    multi_.shutdown();
    work_.reset();
    thread_.join();
  }
  McpSession(const McpSession&) = delete;
  McpSession& operator=(const McpSession&) = delete;

  [[nodiscard]] std::vector<mcp::McpServers::ServerStatus> status() const {
    return servers_.status();
  }

 private:
  net::asio::io_context ioc_;
  std::optional<net::asio::executor_work_guard<net::asio::io_context::executor_type>> work_{
      net::asio::make_work_guard(ioc_)};
  http::CurlMulti multi_;
  mcp::McpServers servers_;
  std::thread thread_;
};

}  // namespace

CapabilityCommands::CapabilityCommands(CLI::App& app) {
  list_ =
      app.add_subcommand("capabilities", "what the bot can do: each capability, on or off and why");
  list_->add_flag("--json", json_, "print JSON");
  config_ = app.add_subcommand("config", "configuration files");
  config_->require_subcommand(1);
  check_ = config_->add_subcommand(
      "check",
      "validate parley.yaml and capabilities.yaml (default: --config and its capabilities file)");
  check_->add_option(
      "FILE", files_,
      "files to check; a name containing 'capabilities' is read as capabilities.yaml");
}

std::optional<caps::CapabilitiesConfig> live_capabilities(const config::Config& cfg,
                                                          const caps::Registry& registry) {
  if (cfg.capabilities_file.empty()) return caps::default_capabilities_config(registry);
  auto check = caps::load_capabilities_config(cfg.capabilities_file.string(), registry);
  if (!check.ok()) {
    fmt::print(stderr, "{}", check.describe());
    return std::nullopt;
  }
  return std::move(check.config);
}

int CapabilityCommands::run(const std::string& config_file) {
  return list_->parsed() ? list(config_file) : check(config_file);
}

int CapabilityCommands::list(const std::string& config_file) {
  config::Config cfg;
  try {
    cfg = config_file.empty() ? config::default_config() : config::load_config(config_file);
  } catch (const config::ConfigError& e) {
    fmt::print(stderr, "parley: {}\n", e.what());
    return app::kExitBadInput;
  }
  caps::Registry registry;
  if (auto st = caps::register_builtins(registry); !st.ok()) return app::report_error(st.error());
  const auto loaded = live_capabilities(cfg, registry);
  if (!loaded) return app::kExitBadInput;
  const caps::CapabilitiesConfig& live = *loaded;
  // The MCP servers' tools too: each enabled server is started (as the bot would) and stopped.
  std::optional<McpSession> mcp;
  if (!live.mcp_servers.empty()) mcp.emplace(registry, live);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& name : registry.names()) {
    const auto* found = registry.find(name);
    if (found == nullptr) continue;
    const auto& c = *found;
    const auto ccfg = live.for_capability(c);
    const std::string server = registry.group_of(name);
    std::string status = status_line(c, ccfg, live.source);
    const auto effects = caps::side_effects_of(c, ccfg);
    if (!server.empty()) {
      status += fmt::format("; MCP server {}; side effects {}{}", server, caps::to_string(effects),
                            ccfg.side_effects ? " (set in the file)" : " (its annotations)");
    }
    if (json_) {
      nlohmann::json commands = nlohmann::json::array();
      for (const auto& cmd : c.commands()) {
        commands.push_back({{"name", cmd.name}, {"usage", cmd.usage}, {"help", cmd.help}});
      }
      out.push_back({{"name", name},
                     {"description", c.description()},
                     {"enabled", ccfg.enabled},
                     {"status", status},
                     {"side_effects", caps::to_string(effects)},
                     {"admin_only", c.flags().admin_only},
                     {"needs_network", c.flags().needs_network},
                     {"timeout_ms", ccfg.timeout.count()},
                     {"commands", commands}});
      if (!server.empty()) out.back()["mcp_server"] = server;
      continue;
    }
    fmt::print("{:<10} {:<9} {}\n", name, ccfg.enabled ? "enabled" : "disabled", c.description());
    fmt::print("{:<10} {:<9} {}\n", "", "", status);
    std::vector<std::string> usages;
    for (const auto& cmd : c.commands()) usages.push_back(cmd.usage);
    if (!usages.empty()) fmt::print("{:<10} {:<9} {}\n", "", "", join(usages));
  }
  // What a server could not give: it is not running, or some of its tools were refused.
  for (const auto& st : mcp ? mcp->status() : std::vector<mcp::McpServers::ServerStatus>{}) {
    if (st.state != "ready") {
      const std::string why = fmt::format("MCP server {} is {}{}", st.server, st.state,
                                          st.why.empty() ? "" : ": " + st.why);
      if (json_) {
        out.push_back({{"mcp_server", st.server}, {"state", st.state}, {"status", why}});
      } else {
        fmt::print("{:<10} {:<9} {}\n", st.prefix + ".*", "down", why);
      }
    }
    for (const auto& [tool, why] : st.refused) {
      const std::string reason = "not available: " + why;
      if (json_) {
        out.push_back(
            {{"name", tool}, {"mcp_server", st.server}, {"enabled", false}, {"status", reason}});
      } else {
        fmt::print("{:<10} {:<9} {}\n", tool, "refused", reason);
      }
    }
  }
  if (json_) std::cout << out.dump(2) << "\n";
  return app::kExitOk;
}

namespace {

enum class ConfigKind { parley, capabilities, prices };

// What a configuration file is, told by what it holds rather than by its name: prices.yaml has
// `models:`; capabilities.yaml has only `capabilities:`, whose keys are capability names;
// parley.yaml is everything else (its `capabilities:` holds `file:`). A file that is not YAML
// goes by its name, to the reader that reports where the YAML breaks.
ConfigKind kind_of(const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const std::exception&) {
    const std::string name = std::filesystem::path(file).filename().string();
    if (name.find("capabilities") != std::string::npos) return ConfigKind::capabilities;
    if (name.find("prices") != std::string::npos) return ConfigKind::prices;
    return ConfigKind::parley;
  }
  if (!root.IsMap()) return ConfigKind::parley;
  if (root["models"]) return ConfigKind::prices;
  const auto caps = root["capabilities"];
  if (root.size() == 1 && caps && caps.IsMap() && !caps["file"]) return ConfigKind::capabilities;
  return ConfigKind::parley;
}

}  // namespace

int CapabilityCommands::check(const std::string& config_file) {
  std::vector<std::pair<std::string, ConfigKind>> files;
  for (const auto& f : files_) files.emplace_back(f, kind_of(f));
  if (files.empty()) {
    if (config_file.empty()) {
      fmt::print("no --config given: parley runs on its embedded defaults, which are valid\n");
      return app::kExitOk;
    }
    files.emplace_back(config_file, ConfigKind::parley);
    try {
      const auto cfg = config::load_config(config_file);
      if (!cfg.capabilities_file.empty()) {
        files.emplace_back(cfg.capabilities_file.string(), ConfigKind::capabilities);
      }
      if (!cfg.money.prices_file.empty()) {
        files.emplace_back(cfg.money.prices_file.string(), ConfigKind::prices);
      }
    } catch (const config::ConfigError&) {
      // Reported below.
    }
  }
  caps::Registry registry;
  if (auto st = caps::register_builtins(registry); !st.ok()) return app::report_error(st.error());
  bool all_ok = true;
  for (const auto& [file, kind] : files) {
    if (kind == ConfigKind::prices) {
      try {
        (void)money::PriceTable::load(file);
        fmt::print("{}: ok\n", file);
      } catch (const money::PriceError& e) {
        all_ok = false;
        fmt::print(stderr, "{}\n", e.what());
      }
      continue;
    }
    if (kind == ConfigKind::capabilities) {
      const auto check = caps::load_capabilities_config(file, registry);
      if (check.ok()) {
        fmt::print("{}: ok\n", file);
      } else {
        all_ok = false;
        fmt::print(stderr, "{}", check.describe());
      }
      continue;
    }
    try {
      (void)config::load_config(file);
      fmt::print("{}: ok\n", file);
    } catch (const config::ConfigError& e) {
      all_ok = false;
      fmt::print(stderr, "{}\n", e.what());
    }
  }
  return all_ok ? app::kExitOk : app::kExitBadInput;
}

}  // namespace parley::bot::cli
