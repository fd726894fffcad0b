// `parley capabilities` and `parley config check`: what the bot can do and whether the
// configuration files are valid, without starting it.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "parley/bot/config/config.h"
#include "parley/capabilities/config.h"

namespace parley::bot::cli {

// The capabilities configuration `cfg` names (its file, else the embedded defaults) for the
// capabilities in `registry`; nullopt after printing its problems (FILE:LINE:COLUMN) on stderr.
std::optional<capabilities::CapabilitiesConfig> live_capabilities(
    const config::Config& cfg, const capabilities::Registry& registry);

class CapabilityCommands {
 public:
  // Adds `capabilities` and `config check` to `app`.
  explicit CapabilityCommands(CLI::App& app);

  [[nodiscard]] bool selected() const { return list_->parsed() || check_->parsed(); }
  // `config_file`: the --config given (empty: none). Returns the process exit code.
  int run(const std::string& config_file);

 private:
  int list(const std::string& config_file);
  int check(const std::string& config_file);

  CLI::App* list_ = nullptr;
  CLI::App* config_ = nullptr;
  CLI::App* check_ = nullptr;
  bool json_ = false;
  std::vector<std::string> files_;
};

}  // namespace parley::bot::cli
