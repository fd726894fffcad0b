// `channels.discord` in parley.yaml (read by config/). Plain data. The bot token is never here:
// it comes from the variable named by token_env (DISCORD_TOKEN by default).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace parley::bot::channels::discord {

// Gateway intents (the bits of IDENTIFY's `intents`).
inline constexpr uint32_t kIntentGuilds = 1u << 0;
inline constexpr uint32_t kIntentGuildMembers = 1u << 1;    // privileged
inline constexpr uint32_t kIntentGuildPresences = 1u << 8;  // privileged
inline constexpr uint32_t kIntentGuildMessages = 1u << 9;
inline constexpr uint32_t kIntentDirectMessages = 1u << 12;
inline constexpr uint32_t kIntentMessageContent = 1u << 15;  // privileged

struct DiscordOptions {
  std::string token_env = "DISCORD_TOKEN";  // the variable holding the bot token
  // REST base; paths are /v10/… under it. PARLEY_DISCORD_API_BASE overrides it.
  std::string api_base = "https://discord.com/api";
  uint32_t intents = kIntentGuilds | kIntentGuildMessages | kIntentDirectMessages;
  struct RespondTo {
    bool mentions = true;  // a message that mentions the bot
    bool replies = true;   // a reply to one of the bot's messages
    bool dms = true;       // direct messages
    bool threads = true;   // any message in a thread the bot started or was mentioned in
    // Channels (ids) where every message is answered, mention or not; needs MESSAGE_CONTENT.
    std::vector<std::string> ambient_channels;
  } respond_to;
  // Deny-by-default once given: only these guilds / channels (ids) are answered. DMs are not
  // affected by `guilds`; `channels` lists guild channels (a thread counts as its parent).
  std::vector<std::string> guilds;
  std::vector<std::string> channels;
  std::vector<std::string> admins;  // Discord user ids; merged into access.admins as discord:ID
  bool allow_bots = false;          // answer other bots (with a pair-loop budget)
  // Shards this process runs: empty ids = `auto` (every shard of the recommended count).
  struct Shards {
    std::vector<int> ids;
    int count = 0;  // 0: auto
  } shards;
  // Memories of the author are put into prompts only in DMs, unless the channel is listed here.
  std::vector<std::string> memory_channels;
};

}  // namespace parley::bot::channels::discord
