#include "cli/discord_commands.h"

#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/exit_codes.h"
#include "parley/bot/app/channels.h"
#include "parley/bot/channels/discord/check.h"

namespace parley::bot::cli {

DiscordCommands::DiscordCommands(CLI::App& app) {
  auto* discord = app.add_subcommand("discord", "the Discord channel");
  discord->require_subcommand(1);
  check_ = discord->add_subcommand(
      "check", "ask Discord about the bot token: name, shards, session starts, intents");
  check_->add_flag("--json", json_, "print JSON");
}

int DiscordCommands::run(const config::Config& cfg) {
  const auto options = app::discord_options(cfg);
  const std::string token = app::discord_token(options);
  if (token.empty()) {
    fmt::print(stderr,
               "parley: discord: no bot token in {} (set it to the token from the "
               "Developer Portal → your application → Bot)\n",
               options.token_env);
    return app::kExitFailed;
  }
  const auto c = channels::discord::check_discord(options, token);
  const bool can_start = c.token_ok && c.error.empty() && c.missing_intents.empty();
  if (json_) {
    nlohmann::json j = {{"ok", can_start},
                        {"api_base", options.api_base},
                        {"bot", {{"id", c.bot_id}, {"name", c.bot_name}}},
                        {"recommended_shards", c.recommended_shards},
                        {"session_start_limit",
                         {{"total", c.starts_total},
                          {"remaining", c.starts_remaining},
                          {"reset_after_ms", c.starts_reset_after_ms},
                          {"max_concurrency", c.max_concurrency}}},
                        {"intents", options.intents},
                        {"intents_checked", c.flags_known},
                        {"missing_intents", c.missing_intents},
                        {"warnings", c.warnings}};
    if (!c.error.empty()) j["error"] = c.error;
    fmt::print("{}\n", j.dump(2));
    return can_start ? app::kExitOk : app::kExitFailed;
  }
  if (!c.token_ok || !c.error.empty()) {
    fmt::print(stderr, "parley: discord: {}\n", c.error);
    return app::kExitFailed;
  }
  fmt::print("bot: {} ({})\n", c.bot_name, c.bot_id);
  fmt::print("shards: Discord recommends {}\n", c.recommended_shards);
  fmt::print("session starts: {} of {} left today (reset in {} min), {} at once\n",
             c.starts_remaining, c.starts_total, c.starts_reset_after_ms / 60'000,
             c.max_concurrency);
  if (!c.flags_known) {
    fmt::print("intents: not checked (GET /applications/@me did not answer)\n");
  } else if (c.missing_intents.empty()) {
    fmt::print("intents: usable (every privileged intent asked for is on in the Portal)\n");
  } else {
    for (const auto& name : c.missing_intents) {
      fmt::print(stderr,
                 "parley: discord: the {} intent is asked for (channels.discord.intents) but not "
                 "switched on in the Developer Portal (your application → Bot → Privileged "
                 "Gateway Intents): the gateway would close with 4014\n",
                 name);
    }
  }
  for (const auto& w : c.warnings) fmt::print("warning: {}\n", w);
  return can_start ? app::kExitOk : app::kExitFailed;
}

}  // namespace parley::bot::cli
