#include "channels/discord/events.h"

#include <algorithm>
#include <cmath>

#include "parley/bot/channels/discord/reply_split.h"

namespace parley::bot::channels::discord {

namespace {

bool listed(const std::vector<std::string>& list, const std::string& id) {
  return !id.empty() && std::find(list.begin(), list.end(), id) != list.end();
}

bool mentions_bot(const nlohmann::json& d, const std::string& bot_id) {
  auto it = d.find("mentions");
  if (it == d.end() || !it->is_array()) return false;
  return std::any_of(it->begin(), it->end(),
                     [&](const nlohmann::json& u) { return json_string(u, "id") == bot_id; });
}

bool replies_to_bot(const nlohmann::json& d, const std::string& bot_id) {
  auto it = d.find("referenced_message");
  if (it == d.end() || !it->is_object()) return false;
  auto author = it->find("author");
  return author != it->end() && json_string(*author, "id") == bot_id;
}

std::string trim(std::string s) {
  const auto not_space = [](unsigned char c) { return c != ' ' && c != '\n' && c != '\t'; };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

}  // namespace

std::optional<GatewayFrame> read_gateway_frame(std::string_view text) {
  auto msg = nlohmann::json::parse(text, nullptr, false);
  if (msg.is_discarded() || !msg.is_object()) return std::nullopt;
  GatewayFrame f;
  if (auto op = msg.find("op"); op != msg.end() && op->is_number_integer()) {
    f.op = op->get<int>();
  }
  if (auto s = msg.find("s"); s != msg.end() && s->is_number_integer()) {
    f.seq = s->get<int64_t>();
  }
  f.type = json_string(msg, "t");
  if (auto d = msg.find("d"); d != msg.end()) f.d = std::move(*d);
  return f;
}

std::chrono::milliseconds heartbeat_interval(const nlohmann::json& hello) {
  constexpr int64_t kDefault = 41'250;
  int64_t ms = kDefault;
  if (hello.is_object()) {
    if (auto it = hello.find("heartbeat_interval"); it != hello.end() && it->is_number()) {
      ms = static_cast<int64_t>(std::clamp(it->get<double>(), 100.0, 600'000.0));
    }
  }
  return std::chrono::milliseconds(ms);
}

void learn_channel(Surroundings& around, const nlohmann::json& c, const std::string& guild_id,
                   size_t max_channels) {
  if (around.channels.size() >= max_channels) around.channels.clear();
  ChannelInfo info;
  info.guild_id = guild_id.empty() ? json_string(c, "guild_id") : guild_id;
  info.parent_id = json_string(c, "parent_id");
  info.name = json_string(c, "name");
  info.type = static_cast<int>(json_int(c, "type", 0));
  const std::string id = json_string(c, "id");
  if (id.empty()) return;
  around.channels[id] = info;
  if (info.thread() && json_string(c, "owner_id") == around.bot_id && !around.bot_id.empty()) {
    around.engaged_threads.insert(id);
  }
}

std::string json_string(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

int64_t json_int(const nlohmann::json& j, const char* key, int64_t fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return fallback;
  return it->get<int64_t>();
}

double json_number(const nlohmann::json& j, const char* key, double fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return fallback;
  const double v = it->get<double>();
  return std::isfinite(v) ? v : fallback;
}

bool json_bool(const nlohmann::json& j, const char* key, bool fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || !it->is_boolean()) return fallback;
  return it->get<bool>();
}

std::string without_mention(const std::string& text, const std::string& bot_id) {
  std::string out = text;
  // Until none is left: taking one out can join the text around it into another
  // ("<@<@ID>ID>", "<@!<@ID>ID>"). Each pass shortens the text, so this ends.
  for (bool found = true; found;) {
    found = false;
    for (const std::string& m : {"<@" + bot_id + ">", "<@!" + bot_id + ">"}) {
      for (size_t at = out.find(m); at != std::string::npos; at = out.find(m)) {
        out.erase(at, m.size());
        found = true;
      }
    }
  }
  return trim(out);
}

std::optional<Incoming> read_message_create(const nlohmann::json& d, const DiscordOptions& options,
                                            const Surroundings& around, std::string* ignored) {
  auto skip = [&](const char* why) -> std::optional<Incoming> {
    if (ignored != nullptr) *ignored = why;
    return std::nullopt;
  };
  if (!d.is_object()) return skip("not an object");
  const auto author_it = d.find("author");
  if (author_it == d.end() || !author_it->is_object()) return skip("no author");
  const nlohmann::json& author = *author_it;
  Incoming in;
  in.message_id = json_string(d, "id");
  in.channel_id = json_string(d, "channel_id");
  in.guild_id = json_string(d, "guild_id");
  const std::string author_id = json_string(author, "id");
  if (in.message_id.empty() || in.channel_id.empty() || author_id.empty()) {
    return skip("no id, channel or author id");
  }
  if (author_id == around.bot_id) return skip("its own message");
  if (d.contains("webhook_id")) return skip("a webhook's message");
  if (json_bool(author, "bot", false) && !options.allow_bots) {
    return skip("another bot (allow_bots off)");
  }
  const std::string content = json_string(d, "content");

  if (in.guild_id.empty()) {
    if (!options.respond_to.dms) return skip("a DM (respond_to.dms off)");
    in.why = Why::dm;
  } else {
    if (!options.guilds.empty() && !listed(options.guilds, in.guild_id)) {
      return skip("a guild not in channels.discord.guilds");
    }
    const auto info = around.channels.find(in.channel_id);
    const bool thread = info != around.channels.end() && info->second.thread();
    const std::string parent = thread ? info->second.parent_id : std::string();
    if (!options.channels.empty() && !listed(options.channels, in.channel_id) &&
        !listed(options.channels, parent)) {
      return skip("a channel not in channels.discord.channels");
    }
    const auto& rt = options.respond_to;
    if (rt.mentions && mentions_bot(d, around.bot_id)) {
      in.why = Why::mention;
    } else if (rt.replies && replies_to_bot(d, around.bot_id)) {
      in.why = Why::reply;
    } else if (rt.threads && thread && around.engaged_threads.count(in.channel_id) != 0) {
      in.why = Why::thread;
    } else if (listed(rt.ambient_channels, in.channel_id) || listed(rt.ambient_channels, parent)) {
      in.why = Why::ambient;
    } else {
      return skip("not for the bot (no mention, reply, thread or ambient channel)");
    }
  }
  std::string text = without_mention(content, around.bot_id);
  if (text.empty()) return skip("no text (MESSAGE_CONTENT not granted, or only a mention)");

  in.message.channel = "discord";
  in.message.platform_id = in.message_id;
  in.message.conversation = in.channel_id;
  in.message.author = author_id;
  std::string name = json_string(author, "global_name");
  if (name.empty()) name = json_string(author, "username");
  if (auto member = d.find("member"); member != d.end() && member->is_object()) {
    if (std::string nick = json_string(*member, "nick"); !nick.empty()) name = nick;
  }
  in.message.author_name = name;
  in.message.text = std::move(text);
  in.from_bot = json_bool(author, "bot", false);
  in.message.private_audience =
      in.guild_id.empty() || listed(options.memory_channels, in.channel_id);
  in.message.split = [](const std::string& reply) { return split_reply(reply); };
  return in;
}

namespace {

// " value" for each option in order, a sub-command's name before its own options.
void append_options(const nlohmann::json& options, std::string& text) {
  if (!options.is_array()) return;
  for (const auto& o : options) {
    if (!o.is_object()) continue;
    const int64_t type = json_int(o, "type", 3);
    if (type == 1 || type == 2) {  // SUB_COMMAND, SUB_COMMAND_GROUP
      text += " " + json_string(o, "name");
      if (auto it = o.find("options"); it != o.end()) append_options(*it, text);
      continue;
    }
    const auto value = o.find("value");
    if (value == o.end()) continue;
    text += " " + (value->is_string() ? value->get<std::string>() : value->dump());
  }
}

}  // namespace

std::optional<InteractionIn> read_interaction(const nlohmann::json& d,
                                              const DiscordOptions& options,
                                              const Surroundings& around, std::string* ignored) {
  auto skip = [&](const char* why) -> std::optional<InteractionIn> {
    if (ignored != nullptr) *ignored = why;
    return std::nullopt;
  };
  if (!d.is_object()) return skip("not an object");
  if (json_int(d, "type", 0) != 2) return skip("not an application command");
  const auto data = d.find("data");
  if (data == d.end() || !data->is_object() || json_int(*data, "type", 1) != 1) {
    return skip("not a chat-input command");
  }
  InteractionIn in;
  in.id = json_string(d, "id");
  in.token = json_string(d, "token");
  in.application_id = json_string(d, "application_id");
  in.channel_id = json_string(d, "channel_id");
  in.guild_id = json_string(d, "guild_id");
  // In a guild the user is the member's; in a DM, `user`.
  nlohmann::json user = d.value("user", nlohmann::json());
  nlohmann::json member = d.value("member", nlohmann::json());
  if (member.is_object() && member.contains("user")) user = member["user"];
  const std::string user_id = json_string(user, "id");
  const std::string name = json_string(*data, "name");
  if (in.id.empty() || in.token.empty() || in.application_id.empty() || in.channel_id.empty() ||
      user_id.empty() || name.empty()) {
    return skip("no id, token, application, channel, user or command name");
  }
  if (in.guild_id.empty()) {
    if (!options.respond_to.dms) in.refused = "I do not answer direct messages.";
  } else {
    const auto info = around.channels.find(in.channel_id);
    const std::string parent =
        info != around.channels.end() && info->second.thread() ? info->second.parent_id : "";
    if (!options.guilds.empty() && !listed(options.guilds, in.guild_id)) {
      in.refused = "I do not answer in this server.";
    } else if (!options.channels.empty() && !listed(options.channels, in.channel_id) &&
               !listed(options.channels, parent)) {
      in.refused = "I do not answer in this channel.";
    }
  }
  std::string text = "/" + name;
  if (auto it = data->find("options"); it != data->end()) append_options(*it, text);
  in.message.channel = "discord";
  in.message.platform_id = in.id;
  in.message.conversation = in.channel_id;
  in.message.author = user_id;
  std::string shown = json_string(user, "global_name");
  if (shown.empty()) shown = json_string(user, "username");
  if (member.is_object()) {
    if (std::string nick = json_string(member, "nick"); !nick.empty()) shown = nick;
  }
  in.message.author_name = shown;
  in.message.text = std::move(text);
  in.message.private_audience =
      in.guild_id.empty() || listed(options.memory_channels, in.channel_id);
  in.message.split = [](const std::string& reply) { return split_reply(reply); };
  return in;
}

bool BotBudget::allow(const std::string& channel, Clock::time_point now, bool* tripped) {
  if (tripped != nullptr) *tripped = false;
  if (channels_.size() >= limits_.max_channels && channels_.count(channel) == 0) {
    // Forget the channels whose window and cooldown are over.
    std::erase_if(channels_, [&](const auto& kv) {
      return now >= kv.second.quiet_until &&
             (kv.second.recent.empty() || now - kv.second.recent.back() >= limits_.window);
    });
    if (channels_.size() >= limits_.max_channels) return false;  // still full: a flood of bots
  }
  State& s = channels_[channel];
  if (now < s.quiet_until) return false;
  while (!s.recent.empty() && now - s.recent.front() >= limits_.window) s.recent.pop_front();
  if (s.recent.size() >= limits_.exchanges) {
    s.quiet_until = now + limits_.cooldown;
    s.recent.clear();
    if (tripped != nullptr) *tripped = true;
    return false;
  }
  s.recent.push_back(now);
  return true;
}

}  // namespace parley::bot::channels::discord
