// `parley discord check [--json]`: asks Discord about the bot token in DISCORD_TOKEN (or the
// variable channels.discord.token_env names) before `parley run` uses it: the bot's name, the
// shard count Discord recommends, the session starts left today, and whether the intents in
// parley.yaml are switched on in the Developer Portal. Exit 0 when the bot can start, 1 when
// it cannot (no token, a refused token, a privileged intent not switched on).
#pragma once

#include <CLI/CLI.hpp>

#include "parley/bot/config/config.h"

namespace parley::bot::cli {

class DiscordCommands {
 public:
  explicit DiscordCommands(CLI::App& app);

  [[nodiscard]] bool selected() const { return check_->parsed(); }
  // Returns the process exit code.
  int run(const config::Config& cfg);

 private:
  CLI::App* check_ = nullptr;
  bool json_ = false;
};

}  // namespace parley::bot::cli
