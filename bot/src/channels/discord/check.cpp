#include "parley/bot/channels/discord/check.h"

// clang-format off
#include "parley/bot/net.h"
// clang-format on

#include <fmt/format.h>

#include <algorithm>

#include "channels/discord/events.h"
#include "channels/discord/rest.h"
#include "parley/bot/clients/http/curl_multi.h"

namespace parley::bot::channels::discord {

namespace asio = net::asio;

namespace {

// Application flags: the Portal's privileged-intent toggles (the _LIMITED bit for a bot in
// under 100 servers, the other once verified).
constexpr int64_t kFlagPresence = int64_t{1} << 12;
constexpr int64_t kFlagPresenceLimited = int64_t{1} << 13;
constexpr int64_t kFlagMembers = int64_t{1} << 14;
constexpr int64_t kFlagMembersLimited = int64_t{1} << 15;
constexpr int64_t kFlagContent = int64_t{1} << 18;
constexpr int64_t kFlagContentLimited = int64_t{1} << 19;

std::string why(const RestReply& r, const char* what) {
  if (r.status == 401) return fmt::format("{}: Discord refused the bot token (401)", what);
  if (!r.error.empty()) return fmt::format("{}: {}", what, r.error);
  return fmt::format("{}: HTTP {}", what, r.status);
}

asio::awaitable<void> run_check(Rest& rest, const DiscordOptions& options, DiscordCheck& out) {
  std::string method = "GET";
  std::string me_path = "/users/@me";
  const RestReply me = co_await rest.call(method, me_path);
  if (!me.ok() || json_string(me.body, "id").empty()) {
    out.error = why(me, "GET /users/@me");
    co_return;
  }
  out.token_ok = true;
  out.bot_id = json_string(me.body, "id");
  out.bot_name = json_string(me.body, "username");

  std::string gw_path = "/gateway/bot";
  const RestReply gw = co_await rest.call(method, gw_path);
  if (!gw.ok() || !gw.body.is_object()) {
    out.error = why(gw, "GET /gateway/bot");
    co_return;
  }
  out.gateway_url = json_string(gw.body, "url");
  out.recommended_shards =
      static_cast<int>(std::clamp<int64_t>(json_int(gw.body, "shards", 1), 1, 1 << 16));
  if (auto limit = gw.body.find("session_start_limit");
      limit != gw.body.end() && limit->is_object()) {
    out.starts_total = json_int(*limit, "total", 0);
    out.starts_remaining = json_int(*limit, "remaining", 0);
    out.starts_reset_after_ms = json_int(*limit, "reset_after", 0);
    out.max_concurrency =
        static_cast<int>(std::clamp<int64_t>(json_int(*limit, "max_concurrency", 1), 1, 1 << 16));
  }

  std::string app_path = "/applications/@me";
  const RestReply app = co_await rest.call(method, app_path);
  if (app.ok() && app.body.is_object() && app.body.contains("flags")) {
    out.flags_known = true;
    const int64_t flags = json_int(app.body, "flags", 0);
    struct Privileged {
      uint32_t intent;
      int64_t flags;
      const char* name;
    };
    for (const Privileged p :
         {Privileged{kIntentGuildMembers, kFlagMembers | kFlagMembersLimited, "guild_members"},
          Privileged{kIntentGuildPresences, kFlagPresence | kFlagPresenceLimited,
                     "guild_presences"},
          Privileged{kIntentMessageContent, kFlagContent | kFlagContentLimited,
                     "message_content"}}) {
      if ((options.intents & p.intent) != 0 && (flags & p.flags) == 0) {
        out.missing_intents.emplace_back(p.name);
      }
    }
  }
  if ((options.intents & kIntentMessageContent) == 0 &&
      !options.respond_to.ambient_channels.empty()) {
    out.warnings.emplace_back(
        "respond_to.ambient_channels needs the message_content intent: without it those "
        "messages arrive without text");
  }
  if (!options.shards.ids.empty() && options.shards.count < out.recommended_shards) {
    out.warnings.push_back(fmt::format(
        "shards.count is {} but Discord recommends {}: the gateway may refuse with 4011",
        options.shards.count, out.recommended_shards));
  }
}

}  // namespace

DiscordCheck check_discord(const DiscordOptions& options, const std::string& token) {
  DiscordCheck out;
  asio::io_context io;
  {
    http::CurlMulti multi(io.get_executor());
    Rest::Options ro;
    ro.api_base = options.api_base;
    ro.token = token;
    ro.max_retries = 1;
    Rest rest(io.get_executor(), multi, ro, [](const std::string&) {});
    asio::co_spawn(io, run_check(rest, options, out), asio::detached);
    io.run();
  }
  return out;
}

}  // namespace parley::bot::channels::discord
