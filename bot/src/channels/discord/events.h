// What the Discord channel makes of a gateway MESSAGE_CREATE: whether parley answers it (a
// mention, a reply to the bot, a DM, a thread it takes part in, an ambient channel; never its
// own messages, other bots' only when allowed; guild and channel allow-lists deny by default
// once given), and the message as the pipeline sees it. Pure functions over the event's JSON and
// what the channel knows of the guilds' channels; no I/O.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "parley/bot/channels/discord/options.h"
#include "parley/bot/pipeline/message.h"

namespace parley::bot::channels::discord {

// A guild channel or thread as GUILD_CREATE / THREAD_CREATE describe it.
struct ChannelInfo {
  std::string guild_id;
  std::string parent_id;  // a thread's channel; empty for a channel
  std::string name;
  int type = 0;  // 0 text, 10-12 threads
  [[nodiscard]] bool thread() const { return type >= 10 && type <= 12; }
};

// What the channel knows when it reads an event; owned by the channel, read on its strand.
struct Surroundings {
  std::string bot_id;
  std::unordered_map<std::string, ChannelInfo> channels;  // by id (bounded by the channel)
  std::unordered_set<std::string> engaged_threads;        // threads the bot answers in
};

enum class Why { mention, reply, dm, thread, ambient };

struct Incoming {
  Why why = Why::mention;
  std::string message_id;
  std::string channel_id;  // where to answer: the conversation
  std::string guild_id;    // empty in a DM
  pipeline::InboundMessage message;
};

// The message to answer, or nullopt when parley stays silent (`ignored` then says why, for the
// debug log).
std::optional<Incoming> read_message_create(const nlohmann::json& d, const DiscordOptions& options,
                                            const Surroundings& around, std::string* ignored);

// j[key] when it is a string, else "".
std::string json_string(const nlohmann::json& j, const char* key);

// The text without the bot's own mention (<@ID> or <@!ID>), trimmed.
std::string without_mention(const std::string& text, const std::string& bot_id);

}  // namespace parley::bot::channels::discord
