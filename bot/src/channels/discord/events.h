// What the Discord channel makes of what the gateway sends: a gateway message's frame (op,
// sequence, dispatch type and data), the channels and threads it learns of, and a
// MESSAGE_CREATE: whether parley answers it (a mention, a reply to the bot, a DM, a thread it
// takes part in, an ambient channel; never its own messages, other bots' only when allowed;
// guild and channel allow-lists deny by default once given), and the message as the pipeline
// sees it. Pure functions over the event's JSON and what the channel knows of the guilds'
// channels; no I/O, and no exception whatever the JSON holds (a field of another type than
// Discord's counts as absent): tests/fuzz/discord_payload_fuzz.cpp checks it.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
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

// One gateway message (a WebSocket text frame), read by the shard.
struct GatewayFrame {
  int op = -1;                 // -1: none, or not an integer
  std::optional<int64_t> seq;  // "s", when an integer
  std::string type;            // "t": a dispatch's event name
  nlohmann::json d;            // null when absent
};
// nullopt: the text is not a JSON object.
std::optional<GatewayFrame> read_gateway_frame(std::string_view text);

// HELLO's heartbeat_interval (Discord sends 41,250 ms), kept within [100 ms, 10 min]; 41,250 ms
// when absent or not a number.
std::chrono::milliseconds heartbeat_interval(const nlohmann::json& hello);

// What the channel knows when it reads an event; owned by the channel, read on its strand.
struct Surroundings {
  std::string bot_id;
  std::unordered_map<std::string, ChannelInfo> channels;  // by id (bounded by the channel)
  std::unordered_set<std::string> engaged_threads;        // threads the bot answers in
};

// Keeps a channel or thread of GUILD_CREATE (`guild_id`: the guild's id), THREAD_CREATE,
// THREAD_UPDATE, CHANNEL_CREATE or THREAD_LIST_SYNC in `around` (forgetting every one first
// once `max_channels` are known); a thread the bot started is one it answers in.
void learn_channel(Surroundings& around, const nlohmann::json& c, const std::string& guild_id,
                   size_t max_channels);

enum class Why { mention, reply, dm, thread, ambient };

struct Incoming {
  Why why = Why::mention;
  bool from_bot = false;  // another bot wrote it (allow_bots)
  std::string message_id;
  std::string channel_id;  // where to answer: the conversation
  std::string guild_id;    // empty in a DM
  pipeline::InboundMessage message;
};

// The message to answer, or nullopt when parley stays silent (`ignored` then says why, for the
// debug log).
std::optional<Incoming> read_message_create(const nlohmann::json& d, const DiscordOptions& options,
                                            const Surroundings& around, std::string* ignored);

// An application command someone used (INTERACTION_CREATE of type 2): answered through the
// same dispatcher as a message, as the text "/name option…" (the capabilities' /commands).
struct InteractionIn {
  std::string id;
  std::string token;  // the interaction's token (a credential for 15 minutes: never logged)
  std::string application_id;
  std::string channel_id;
  std::string guild_id;  // empty in a DM
  // Non-empty: parley does not answer here (guild or channel allow-lists); the user is told
  // this, visible to them only.
  std::string refused;
  pipeline::InboundMessage message;
};

// The command to answer, or nullopt for an interaction of another type (`ignored` says why).
std::optional<InteractionIn> read_interaction(const nlohmann::json& d,
                                              const DiscordOptions& options,
                                              const Surroundings& around, std::string* ignored);

// j[key] when it is a string, else "".
std::string json_string(const nlohmann::json& j, const char* key);
// j[key] when it is an integer, else `fallback` (never nlohmann's value(), which throws on a
// field of another type).
int64_t json_int(const nlohmann::json& j, const char* key, int64_t fallback);
// j[key] when it is a boolean, else `fallback`.
bool json_bool(const nlohmann::json& j, const char* key, bool fallback);
// j[key] when it is a finite number (integer or not), else `fallback`.
double json_number(const nlohmann::json& j, const char* key, double fallback);

// The text without the bot's own mention (<@ID> or <@!ID>), trimmed.
std::string without_mention(const std::string& text, const std::string& bot_id);

// With allow_bots, two bots can answer each other forever. The budget: at most `exchanges`
// messages from bots answered per channel within `window`; past it, the channel answers no bot
// for `cooldown`. Used on the channel's strand; bounded to `max_channels` channels.
class BotBudget {
 public:
  using Clock = std::chrono::steady_clock;
  struct Limits {
    size_t exchanges = 20;
    std::chrono::seconds window{60};
    std::chrono::seconds cooldown{300};
    size_t max_channels = 1000;
  };
  BotBudget() : BotBudget(Limits{}) {}
  explicit BotBudget(Limits limits) : limits_(limits) {}
  // Whether a bot's message in `channel` may be answered now; `tripped` is set when this very
  // call started a cooldown (to say so once).
  bool allow(const std::string& channel, Clock::time_point now, bool* tripped = nullptr);

 private:
  struct State {
    std::deque<Clock::time_point> recent;
    Clock::time_point quiet_until{};
  };
  Limits limits_;
  std::map<std::string, State> channels_;
};

}  // namespace parley::bot::channels::discord
