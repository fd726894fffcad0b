// `parley discord check`: what Discord says about the bot token before parley runs with it —
// who the bot is, how many shards Discord recommends, the session starts left today, and
// whether the intents parley.yaml asks for are switched on in the Developer Portal.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "parley/bot/channels/discord/options.h"

namespace parley::bot::channels::discord {

struct DiscordCheck {
  bool token_ok = false;  // GET /users/@me answered with the bot
  std::string error;      // why not (never the token); empty when the token works
  std::string bot_id;
  std::string bot_name;
  int recommended_shards = 0;
  int64_t starts_total = 0;
  int64_t starts_remaining = 0;
  int64_t starts_reset_after_ms = 0;
  int max_concurrency = 1;
  std::string gateway_url;
  bool flags_known = false;  // GET /applications/@me answered
  // Privileged intents parley.yaml asks for that the Portal has not switched on (by name: the
  // gateway would close with 4014).
  std::vector<std::string> missing_intents;
  // Warnings about the configuration itself (e.g. ambient channels without message_content).
  std::vector<std::string> warnings;
};

// Calls GET /users/@me, /gateway/bot and /applications/@me under options.api_base with
// `token`. Blocking: runs its own event loop; at most `timeout` per request.
DiscordCheck check_discord(const DiscordOptions& options, const std::string& token);

}  // namespace parley::bot::channels::discord
