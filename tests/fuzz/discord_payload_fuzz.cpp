// discord_payload_fuzz: a libFuzzer target for what the Discord channel reads from the gateway
// (bot/src/channels/discord/events.h): each WebSocket text frame through read_gateway_frame,
// then, as the channel does, READY (the bot's id), GUILD_CREATE, THREAD_CREATE, CHANNEL_CREATE
// and THREAD_LIST_SYNC (learn_channel), MESSAGE_CREATE (read_message_create, then the reply
// splitter on its text) and INTERACTION_CREATE (read_interaction); HELLO's heartbeat interval.
//
// The input is a session: one gateway frame a line, as the fake gateway in tests/fakes sends
// them, read in order against the same Surroundings. The last byte chooses the channel's
// options (respond_to, allow_bots, allow-lists of the ids the seeds use). The seed corpus
// (tests/fuzz/corpus/discord_payload/) holds sessions of real payloads.
//
// Invariants (a violation aborts, and libFuzzer keeps the input):
// - Nothing throws, whatever the JSON holds (a field of another type than Discord's).
// - HELLO's interval is within [100 ms, 10 min].
// - A message read is never the bot's own, has its ids, is for the channel "discord" in the
//   conversation of its channel; its text is trimmed, not empty, and no longer mentions the
//   bot; a DM only when DMs are answered, another bot's message only with allow_bots, a guild
//   or channel outside the allow-lists never; a mention is one; private_audience only in a DM
//   or a memory channel. Its reply splits into parts of at most 2,000 code points.
// - An interaction read has its ids and token, is the text "/name …", and is refused (with a
//   reason) outside the allow-lists.
// - The channels known stay within the bound given to learn_channel.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "channels/discord/events.h"
#include "fuzz_check.h"
#include "parley/base/text.h"
#include "parley/bot/channels/discord/reply_split.h"

namespace {

using namespace parley::bot::channels::discord;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

using parley::fuzz::violated;

constexpr size_t kMaxChannels = 64;

bool listed(const std::vector<std::string>& list, const std::string& id) {
  for (const auto& s : list) {
    if (s == id) return true;
  }
  return false;
}

bool trimmed(const std::string& s) {
  const auto space = [](char c) { return c == ' ' || c == '\n' || c == '\t'; };
  return !s.empty() && !space(s.front()) && !space(s.back());
}

size_t code_points(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

DiscordOptions options_from(uint8_t bits) {
  DiscordOptions o;
  o.respond_to.mentions = (bits & 1) == 0;
  o.respond_to.replies = (bits & 2) == 0;
  o.respond_to.dms = (bits & 4) == 0;
  o.respond_to.threads = (bits & 8) == 0;
  o.allow_bots = (bits & 16) != 0;
  if ((bits & 32) != 0) o.guilds = {"1000000000000000001"};
  if ((bits & 64) != 0) o.channels = {"2000000000000000001", "2000000000000000003"};
  if ((bits & 128) != 0) o.respond_to.ambient_channels = {"2000000000000000002"};
  o.memory_channels = {"2000000000000000001"};
  return o;
}

void check_message(const json& d, const DiscordOptions& options, const Surroundings& around) {
  std::string ignored;
  const auto in = read_message_create(d, options, around, &ignored);
  if (!in) {
    PARLEY_FUZZ_CHECK(!ignored.empty());
    return;
  }
  const auto& m = in->message;
  PARLEY_FUZZ_CHECK(!in->message_id.empty() && !in->channel_id.empty() && !m.author.empty());
  PARLEY_FUZZ_CHECK(m.author != around.bot_id);
  PARLEY_FUZZ_CHECK(m.channel == "discord");
  PARLEY_FUZZ_CHECK(m.conversation == in->channel_id);
  PARLEY_FUZZ_CHECK(m.platform_id == in->message_id);
  PARLEY_FUZZ_CHECK(trimmed(m.text));
  if (!around.bot_id.empty()) {
    PARLEY_FUZZ_CHECK(m.text.find("<@" + around.bot_id + ">") == std::string::npos);
    PARLEY_FUZZ_CHECK(m.text.find("<@!" + around.bot_id + ">") == std::string::npos);
  }
  if (in->from_bot) PARLEY_FUZZ_CHECK(options.allow_bots);
  if (in->guild_id.empty()) {
    PARLEY_FUZZ_CHECK(in->why == Why::dm && options.respond_to.dms);
    PARLEY_FUZZ_CHECK(m.private_audience);
  } else {
    PARLEY_FUZZ_CHECK(in->why != Why::dm);
    if (!options.guilds.empty()) PARLEY_FUZZ_CHECK(listed(options.guilds, in->guild_id));
    PARLEY_FUZZ_CHECK(m.private_audience == listed(options.memory_channels, in->channel_id));
    if (in->why == Why::mention) {
      PARLEY_FUZZ_CHECK(options.respond_to.mentions);
      PARLEY_FUZZ_CHECK(d.at("mentions").dump().find(around.bot_id) != std::string::npos);
    }
    if (in->why == Why::reply) PARLEY_FUZZ_CHECK(options.respond_to.replies);
    if (in->why == Why::thread) PARLEY_FUZZ_CHECK(options.respond_to.threads);
  }
  PARLEY_FUZZ_CHECK(static_cast<bool>(m.split));
  const auto parts = m.split(m.text);
  PARLEY_FUZZ_CHECK(!parts.empty());
  for (const auto& p : parts) {
    PARLEY_FUZZ_CHECK(!p.empty() && code_points(p) <= 2000);
    PARLEY_FUZZ_CHECK(!parley::invalid_utf8_at(p));
  }
}

void check_interaction(const json& d, const DiscordOptions& options, const Surroundings& around) {
  std::string ignored;
  const auto in = read_interaction(d, options, around, &ignored);
  if (!in) {
    PARLEY_FUZZ_CHECK(!ignored.empty());
    return;
  }
  PARLEY_FUZZ_CHECK(!in->id.empty() && !in->token.empty() && !in->application_id.empty());
  PARLEY_FUZZ_CHECK(!in->channel_id.empty() && !in->message.author.empty());
  PARLEY_FUZZ_CHECK(in->message.text.starts_with("/" + json_string(d.at("data"), "name")));
  PARLEY_FUZZ_CHECK(in->message.conversation == in->channel_id);
  if (in->guild_id.empty()) {
    PARLEY_FUZZ_CHECK(in->refused.empty() == options.respond_to.dms);
  } else if (!options.guilds.empty() && !listed(options.guilds, in->guild_id)) {
    PARLEY_FUZZ_CHECK(!in->refused.empty());
  }
}

void on_dispatch(const std::string& type, const json& d, const DiscordOptions& options,
                 Surroundings& around) {
  // As DiscordChannel's on_event reads them.
  if (type == "READY") {
    if (auto user = d.find("user"); user != d.end()) around.bot_id = json_string(*user, "id");
  } else if (type == "GUILD_CREATE") {
    const std::string guild = json_string(d, "id");
    for (const char* list : {"channels", "threads"}) {
      if (auto it = d.find(list); it != d.end() && it->is_array()) {
        for (const auto& c : *it) learn_channel(around, c, guild, kMaxChannels);
      }
    }
  } else if (type == "THREAD_CREATE" || type == "THREAD_UPDATE" || type == "CHANNEL_CREATE") {
    learn_channel(around, d, "", kMaxChannels);
  } else if (type == "THREAD_LIST_SYNC") {
    if (auto it = d.find("threads"); it != d.end() && it->is_array()) {
      for (const auto& c : *it) learn_channel(around, c, json_string(d, "guild_id"), kMaxChannels);
    }
  } else if (type == "MESSAGE_CREATE") {
    check_message(d, options, around);
  } else if (type == "INTERACTION_CREATE") {
    check_interaction(d, options, around);
  }
  PARLEY_FUZZ_CHECK(around.channels.size() <= kMaxChannels);
}

void test_one_input(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const DiscordOptions options = options_from(data[size - 1]);
  std::string_view session(reinterpret_cast<const char*>(data), size - 1);
  Surroundings around;
  while (!session.empty()) {
    const size_t nl = session.find('\n');
    const std::string_view line = session.substr(0, nl);
    session = nl == std::string_view::npos ? std::string_view() : session.substr(nl + 1);
    const auto frame = read_gateway_frame(line);
    if (!frame) continue;
    if (frame->op == 10) {
      const auto interval = heartbeat_interval(frame->d);
      PARLEY_FUZZ_CHECK(interval.count() >= 100 && interval.count() <= 600'000);
    }
    if (frame->op == 0) on_dispatch(frame->type, frame->d, options, around);
  }
}

}  // namespace

PARLEY_FUZZ_MAIN(test_one_input)
