// `parley capabilities` and `parley config check`: what the bot can do and whether the
// configuration files are valid, without starting it.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "parley/bot/config/config.h"

namespace parley::bot::cli {

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
