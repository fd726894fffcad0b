#include "parley/bot/channels/discord/discord_channel.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/ssl/context.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "channels/discord/events.h"
#include "channels/discord/gateway.h"
#include "channels/discord/rest.h"
#include "parley/base/time_format.h"
#include "parley/bot/channels/discord/reply_split.h"

namespace parley::bot::channels::discord {

namespace asio = net::asio;
using SteadyClock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr size_t kMaxKnownChannels = 20'000;
constexpr int64_t kIdentifiesPerDayLimit = 900;  // Discord resets the token at 1,000
// The catch-up after a new session: the channels (and DMs) where parley answered within the
// last day, at most this many, one page of 100 messages each.
constexpr size_t kCatchUpChannels = 50;
constexpr int64_t kCatchUpWindowMs = int64_t{24} * 3600 * 1000;

// Snowflakes are decimal numbers of up to 20 digits: the longer is the newer.
bool newer(const std::string& a, const std::string& b) {
  return a.size() != b.size() ? a.size() > b.size() : a > b;
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The shard a guild's events come through (DMs: shard 0).
int shard_of(const std::string& guild_id, int count) {
  if (guild_id.empty() || count <= 1) return 0;
  try {
    return static_cast<int>((std::stoull(guild_id) >> 22) % static_cast<uint64_t>(count));
  } catch (const std::exception&) {
    return 0;
  }
}

// FNV-1a: names the lock file after the token without revealing it.
std::string token_hash(const std::string& token) {
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char c : token) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

// The name of a command's one text option: its usage's placeholder ("/calc EXPRESSION":
// "expression"), else "text".
std::string option_name(std::string_view arguments) {
  while (!arguments.empty() && arguments.front() == ' ') arguments.remove_prefix(1);
  std::string word;
  for (const char c : arguments) {
    if (c >= 'A' && c <= 'Z') {
      word += static_cast<char>(c - 'A' + 'a');
    } else if (c == '_' && !word.empty()) {
      word += c;
    } else {
      break;
    }
  }
  const bool placeholder = !word.empty() && word.size() <= 32 &&
                           (arguments.size() == word.size() || arguments[word.size()] == ' ');
  return placeholder ? word : "text";
}

std::string shard_set_name(const DiscordOptions::Shards& s) {
  if (s.ids.empty()) return "auto";
  std::string out;
  for (const int id : s.ids) out += (out.empty() ? "" : "-") + std::to_string(id);
  return out + "of" + std::to_string(s.count);
}

}  // namespace

struct DiscordChannel::Impl : std::enable_shared_from_this<Impl> {
  Impl(Deps d, DiscordOptions o, std::string t)
      : deps(std::move(d)),
        options(std::move(o)),
        token(std::move(t)),
        strand(asio::make_strand(deps.executor)),
        tls(asio::ssl::context::tls_client),
        rest(deps.executor, deps.multi, Rest::Options{options.api_base, token},
             [this](const std::string& line) { alert("discord_rest", line); }),
        flush_timer(strand) {
    tls.set_default_verify_paths();
    tls.set_verify_mode(asio::ssl::verify_peer);
  }

  // One line for the operator: through the alerts (which log it) or, without them, the log.
  void alert(const std::string& kind, const std::string& line) const {
    if (deps.alert) {
      deps.alert(kind, line);
    } else {
      spdlog::error("{}", line);
    }
  }

  Deps deps;
  DiscordOptions options;
  std::string token;
  asio::strand<net::Executor> strand;
  asio::ssl::context tls;
  Rest rest;
  Inbox* inbox = nullptr;
  int lock_fd = -1;
  std::string salt;            // set by start(), before any send
  std::string application_id;  // from the first READY (on the strand)

  // On the strand.
  Surroundings around;
  std::vector<std::unique_ptr<Shard>> shards;
  std::map<std::string, GatewaySession> sessions;  // key → latest, persisted by flush()
  std::map<std::string, bool> dirty;
  // The newest message seen per channel where parley answered (bounded; persisted with the
  // sessions as "recent_channels"), for the catch-up after a lost session.
  struct Seen {
    std::string message_id;
    std::string guild_id;
    int64_t at_ms = 0;
  };
  std::map<std::string, Seen> seen;
  BotBudget bot_budget;     // allow_bots: no endless pair of bots
  std::set<int> caught_up;  // shards read after a READY or their first RESUMED
  bool seen_dirty = false;
  asio::steady_timer flush_timer;
  bool flush_armed = false;
  bool stopping = false;
  int max_concurrency = 1;
  int64_t starts_remaining = 1000;
  std::map<int, SteadyClock::time_point> last_identify;  // by rate-limit key
  std::atomic<size_t> in_flight{0};
  std::atomic<bool> started{false};
  // The shards, for figures() from any thread: published once boot() has made them all.
  std::atomic<std::shared_ptr<const std::vector<const Shard*>>> published{
      std::make_shared<const std::vector<const Shard*>>()};

  static std::string session_key(int id, int count) {
    return fmt::format("session:{}/{}", id, count);
  }

  Status lock_instance() {
    const char* dir = std::getenv("XDG_RUNTIME_DIR");  // NOLINT(concurrency-mt-unsafe): start-up
    const std::filesystem::path base = dir != nullptr && *dir != '\0' ? dir : "/tmp";
    const auto path = base / fmt::format("parley-discord-{}-{}.lock", token_hash(token),
                                         shard_set_name(options.shards));
    lock_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
      return fail(ErrorCode::unavailable, fmt::format("discord: cannot open {}", path.string()));
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      std::array<char, 32> buf{};
      const ssize_t n = ::pread(lock_fd, buf.data(), buf.size() - 1, 0);
      const std::string holder =
          n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : "unknown";
      ::close(lock_fd);
      lock_fd = -1;
      return fail(ErrorCode::unavailable,
                  fmt::format("discord: another parley (pid {}) already runs this bot token with "
                              "shards {}; one process per token and shard set",
                              holder, shard_set_name(options.shards)));
    }
    const std::string pid = std::to_string(::getpid());
    if (::ftruncate(lock_fd, 0) == 0) (void)!::pwrite(lock_fd, pid.data(), pid.size(), 0);
    return {};
  }

  // GET /users/@me (who the bot is: a RESUME brings no READY), GET /gateway/bot, then one
  // shard per id.
  static asio::awaitable<void> boot(std::shared_ptr<Impl> self) {
    std::string method = "GET";
    std::string me_path = "/users/@me";
    const RestReply me = co_await self->rest.call(method, me_path);
    if (!me.ok() || json_string(me.body, "id").empty()) {
      self->alert("discord_start", fmt::format("discord: cannot start: GET /users/@me: {}",
                                               me.error.empty() ? "no bot user" : me.error));
      co_return;
    }
    self->around.bot_id = json_string(me.body, "id");
    spdlog::info("discord: signed in as {} ({})", json_string(me.body, "username"),
                 self->around.bot_id);
    std::string path = "/gateway/bot";
    const RestReply gw = co_await self->rest.call(method, path);
    if (!gw.ok() || !gw.body.is_object()) {
      self->alert("discord_start", fmt::format("discord: cannot start: GET /gateway/bot: {}",
                                               gw.error.empty() ? "no answer" : gw.error));
      co_return;
    }
    const std::string url = json_string(gw.body, "url");
    // Read without throwing: a field of another type keeps the default.
    const int recommended =
        static_cast<int>(std::clamp<int64_t>(json_int(gw.body, "shards", 1), 1, 1 << 16));
    if (auto limit = gw.body.find("session_start_limit");
        limit != gw.body.end() && limit->is_object()) {
      self->max_concurrency =
          static_cast<int>(std::clamp<int64_t>(json_int(*limit, "max_concurrency", 1), 1, 1 << 16));
      self->starts_remaining = json_int(*limit, "remaining", 1000);
    }
    std::vector<int> ids = self->options.shards.ids;
    int count = self->options.shards.count;
    if (ids.empty()) {
      count = std::max(1, recommended);
      for (int i = 0; i < count; ++i) ids.push_back(i);
    }
    if ((self->options.intents & kIntentMessageContent) == 0 &&
        !self->options.respond_to.ambient_channels.empty()) {
      spdlog::warn(
          "discord: respond_to.ambient_channels needs the message_content intent "
          "(channels.discord.intents): without it those messages arrive without text");
    }
    if (self->stopping) co_return;  // (back on the channel's strand: boot runs there)
    self->load_seen();
    for (const int id : ids) {
      Shard::Setup setup;
      setup.id = id;
      setup.count = count;
      setup.token = self->token;
      setup.intents = self->options.intents;
      setup.gateway_url = url;
      const std::string key = session_key(id, count);
      if (auto saved = self->deps.state.get("discord", key); saved.ok() && *saved) {
        auto j = nlohmann::json::parse(**saved, nullptr, false);
        setup.session = GatewaySession::from_json(j);
        self->sessions[key] = setup.session;
      }
      std::weak_ptr<Impl> weak = self;
      Shard::Hooks hooks;
      hooks.on_dispatch = [weak, id, count](const std::string& type, const nlohmann::json& d) {
        if (auto s = weak.lock()) s->on_dispatch(type, d, id, count);
      };
      hooks.on_session = [weak, key](const GatewaySession& session) {
        if (auto s = weak.lock()) {
          asio::dispatch(s->strand, [s, key, session] { s->remember(key, session); });
        }
      };
      hooks.may_identify = [weak](int shard) -> asio::awaitable<bool> {
        auto s = weak.lock();
        if (!s) co_return false;
        const bool ok =
            co_await asio::co_spawn(s->strand, may_identify(s, shard), asio::use_awaitable);
        co_return ok;
      };
      hooks.on_failed = [weak, id, count](int code, const std::string& line) {
        if (auto s = weak.lock()) {
          s->alert("discord_gateway",
                   fmt::format("discord shard {}/{} stopped: {}", id, count, line));
          (void)code;
        }
      };
      self->shards.push_back(std::make_unique<Shard>(self->deps.executor, self->tls,
                                                     std::move(setup), std::move(hooks)));
      self->shards.back()->start();
    }
    auto list = std::make_shared<std::vector<const Shard*>>();
    for (const auto& shard : self->shards) list->push_back(shard.get());
    self->published.store(std::move(list));
  }

  // At most max_concurrency IDENTIFYs per 5 s (bucket shard % max_concurrency); none when the
  // day's session starts run low.
  static asio::awaitable<bool> may_identify(std::shared_ptr<Impl> self, int shard) {
    if (self->starts_remaining <= 2) {
      self->alert("discord_identify",
                  fmt::format("discord: only {} session starts left today (session_start_limit): "
                              "shard {} will not IDENTIFY until they reset",
                              self->starts_remaining, shard));
      co_return false;
    }
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    const std::string day_key = "identifies:" + utc_day(now_ms);
    if (auto today = self->deps.state.get("discord", day_key); today.ok() && *today) {
      if (std::stoll(**today) >= kIdentifiesPerDayLimit) {
        self->alert("discord_identify",
                    fmt::format("discord: {} IDENTIFYs today (Discord resets the token at 1,000): "
                                "shard {} waits for tomorrow",
                                **today, shard));
        co_return false;
      }
    }
    const int bucket = shard % self->max_concurrency;
    auto& last = self->last_identify[bucket];
    const auto earliest = last + std::chrono::seconds(5);
    if (SteadyClock::now() < earliest) {
      asio::steady_timer t(self->strand, earliest);
      error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    self->last_identify[bucket] = SteadyClock::now();
    --self->starts_remaining;
    self->deps.state.add("discord", day_key, 1, [](const Result<storage::WriteAck>&) {});
    co_return true;
  }

  void remember(const std::string& key, const GatewaySession& session) {
    auto& known = sessions[key];
    if (known.session_id == session.session_id && known.seq == session.seq &&
        known.resume_url == session.resume_url) {
      return;
    }
    known = session;
    dirty[key] = true;
    arm_flush();
  }

  void load_seen() {
    auto saved = deps.state.get("discord", "recent_channels");
    if (!saved.ok() || !*saved) return;
    const auto j = nlohmann::json::parse(**saved, nullptr, false);
    if (!j.is_object()) return;
    for (const auto& [channel, v] : j.items()) {
      if (!v.is_object()) continue;
      seen[channel] =
          Seen{json_string(v, "message"), json_string(v, "guild"), json_int(v, "at", 0)};
    }
  }

  // A message parley answered: the newest seen in its channel (on the strand).
  void saw(const std::string& channel, const std::string& message_id, const std::string& guild_id) {
    auto& s = seen[channel];
    if (!s.message_id.empty() && !newer(message_id, s.message_id)) return;
    s = Seen{message_id, guild_id, wall_ms()};
    while (seen.size() > kCatchUpChannels) {
      auto oldest = seen.begin();
      for (auto it = seen.begin(); it != seen.end(); ++it) {
        if (it->second.at_ms < oldest->second.at_ms) oldest = it;
      }
      seen.erase(oldest);
    }
    seen_dirty = true;
    arm_flush();
  }

  // After a READY (a new session: whatever was sent while parley had none was not replayed),
  // reads each recently active channel of this shard from the newest message seen on, through
  // the same path as MESSAGE_CREATE: the dispatcher's dedupe drops what was answered already.
  static asio::awaitable<void> catch_up(std::shared_ptr<Impl> self, int shard, int count) {
    std::vector<std::pair<std::string, Seen>> todo;
    const int64_t since = wall_ms() - kCatchUpWindowMs;
    for (const auto& [channel, s] : self->seen) {
      if (s.at_ms >= since && shard_of(s.guild_id, count) == shard) todo.emplace_back(channel, s);
    }
    size_t found = 0;
    for (const auto& [channel, s] : todo) {
      if (self->stopping) co_return;
      const std::string method = "GET";
      const std::string path =
          fmt::format("/channels/{}/messages?after={}&limit=100", channel, s.message_id);
      const RestReply r = co_await self->rest.call(method, path);
      if (!r.ok() || !r.body.is_array()) {
        spdlog::warn("discord: catching up channel {}: {}", channel,
                     r.error.empty() ? "no messages" : r.error);
        continue;
      }
      std::vector<nlohmann::json> missed(r.body.begin(), r.body.end());
      std::sort(missed.begin(), missed.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
        return newer(json_string(b, "id"), json_string(a, "id"));
      });
      for (auto& m : missed) {
        if (!m.is_object()) continue;
        // REST message objects carry no guild_id; the gateway's do.
        if (!s.guild_id.empty() && !m.contains("guild_id")) m["guild_id"] = s.guild_id;
        ++found;
        self->on_event("MESSAGE_CREATE", m, shard, count);
      }
    }
    if (found > 0) {
      spdlog::info("discord shard {}: caught up {} message(s) sent while the session was lost",
                   shard, found);
    }
  }

  void arm_flush() {
    if (flush_armed || stopping) return;
    flush_armed = true;
    flush_timer.expires_after(std::chrono::seconds(1));
    flush_timer.async_wait([self = shared_from_this()](error_code) {
      self->flush_armed = false;
      self->flush();
    });
  }

  // Persists the sessions that changed (on the strand).
  void flush() {
    if (seen_dirty) {
      seen_dirty = false;
      nlohmann::json j = nlohmann::json::object();
      for (const auto& [channel, v] : seen) {
        j[channel] = {{"message", v.message_id}, {"guild", v.guild_id}, {"at", v.at_ms}};
      }
      deps.state.put("discord", "recent_channels", j.dump(),
                     [](const Result<storage::WriteAck>& r) {
                       if (!r) {
                         spdlog::warn("discord: recent channels not saved: {}", r.error().message);
                       }
                     });
    }
    for (auto& entry : dirty) {
      if (!entry.second) continue;
      entry.second = false;
      const std::string key = entry.first;
      const auto& s = sessions[key];
      if (s.empty()) {
        (void)deps.state.erase("discord", key);
        continue;
      }
      deps.state.put("discord", key, s.to_json().dump(), [key](const Result<storage::WriteAck>& r) {
        if (!r) {
          spdlog::warn("discord: the session {} was not saved: {}", key, r.error().message);
        }
      });
    }
  }

  void learn_channel(const nlohmann::json& c, const std::string& guild_id) {
    discord::learn_channel(around, c, guild_id, kMaxKnownChannels);
  }

  // Every dispatch, from a shard's strand.
  void on_dispatch(const std::string& type, const nlohmann::json& d, int shard, int count) {
    asio::dispatch(strand, [self = shared_from_this(), type, d, shard, count] {
      self->on_event(type, d, shard, count);
    });
  }

  // An event of shard `shard` of `count` (on the strand).
  void on_event(const std::string& type, const nlohmann::json& d, int shard, int count) {
    if (stopping) return;
    if (type == "READY") {
      if (auto user = d.find("user"); user != d.end()) around.bot_id = json_string(*user, "id");
      if (auto app = d.find("application"); app != d.end() && application_id.empty()) {
        application_id = json_string(*app, "id");
        if (!application_id.empty() && deps.commands) {
          asio::co_spawn(strand, register_commands(shared_from_this()), asio::detached);
        }
      }
      caught_up.insert(shard);
      if (!seen.empty()) {
        auto self = shared_from_this();
        asio::co_spawn(strand, catch_up(self, shard, count), asio::detached);
      }
    } else if (type == "RESUMED") {
      // The first connection after a restart resumed: Discord replays what came after the
      // persisted sequence number, but a message taken in before a crash and never answered is
      // not among them. Once per shard and process, the channels are read as after a READY.
      if (caught_up.insert(shard).second && !seen.empty()) {
        auto self = shared_from_this();
        asio::co_spawn(strand, catch_up(self, shard, count), asio::detached);
      }
    } else if (type == "GUILD_CREATE") {
      const std::string guild = json_string(d, "id");
      for (const char* list : {"channels", "threads"}) {
        if (auto it = d.find(list); it != d.end() && it->is_array()) {
          for (const auto& c : *it) learn_channel(c, guild);
        }
      }
    } else if (type == "THREAD_CREATE" || type == "THREAD_UPDATE" || type == "CHANNEL_CREATE") {
      learn_channel(d, "");
    } else if (type == "THREAD_LIST_SYNC") {
      if (auto it = d.find("threads"); it != d.end() && it->is_array()) {
        for (const auto& c : *it) learn_channel(c, json_string(d, "guild_id"));
      }
    } else if (type == "INTERACTION_CREATE") {
      std::string ignored;
      auto interaction = read_interaction(d, options, around, &ignored);
      if (!interaction) {
        spdlog::debug("discord: interaction {} not answered: {}", json_string(d, "id"), ignored);
        return;
      }
      if (inbox == nullptr) return;
      in_flight.fetch_add(1);
      asio::co_spawn(asio::make_strand(deps.executor),
                     answer_interaction(shared_from_this(), std::move(*interaction)),
                     asio::detached);
    } else if (type == "MESSAGE_CREATE") {
      std::string ignored;
      auto incoming = read_message_create(d, options, around, &ignored);
      if (!incoming) {
        spdlog::debug("discord: message {} not answered: {}", json_string(d, "id"), ignored);
        return;
      }
      if (incoming->from_bot) {
        bool tripped = false;
        if (!bot_budget.allow(incoming->channel_id, SteadyClock::now(), &tripped)) {
          if (tripped) {
            spdlog::warn(
                "discord: more than 20 messages from bots in a minute in channel {}: no bot is "
                "answered there for 5 minutes (a pair of bots answering each other)",
                incoming->channel_id);
          }
          return;
        }
      }
      const auto info = around.channels.find(incoming->channel_id);
      if (info != around.channels.end() && info->second.thread()) {
        around.engaged_threads.insert(incoming->channel_id);
      }
      if (inbox == nullptr) return;
      in_flight.fetch_add(1);
      asio::co_spawn(asio::make_strand(deps.executor),
                     answer(shared_from_this(), std::move(*incoming)), asio::detached);
    }
  }

  // Typing every 8 s until `done` is cancelled.
  static asio::awaitable<void> typing(std::shared_ptr<Impl> self, std::string channel_id,
                                      std::shared_ptr<asio::steady_timer> done,
                                      std::shared_ptr<std::atomic<bool>> stop) {
    const std::string method = "POST";
    const std::string path = "/channels/" + channel_id + "/typing";
    // Named, of the parameter's types: GCC 12 destroys a coroutine's prvalue arguments twice.
    const nlohmann::json no_body;
    const std::shared_ptr<const std::atomic<bool>> dropped = stop;
    for (;;) {
      if (*stop) co_return;
      // Dropped, not sent, if the turn ends while it waits behind the rate limits.
      (void)co_await self->rest.call(method, path, no_body, dropped);
      if (*stop) co_return;
      done->expires_after(std::chrono::seconds(8));
      error_code ec;
      co_await done->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }

  static asio::awaitable<void> answer(std::shared_ptr<Impl> self, Incoming in) {
    auto ex = co_await asio::this_coro::executor;
    // Typing while the turn runs (on this strand, stopped when the turn ends).
    auto typing_done = std::make_shared<asio::steady_timer>(ex);
    auto stop_typing = std::make_shared<std::atomic<bool>>(false);
    asio::co_spawn(ex, typing(self, in.channel_id, typing_done, stop_typing), asio::detached);
    const pipeline::InboundMessage& message = in.message;
    const pipeline::TurnResult r = co_await self->inbox->deliver(message);
    // Seen once taken in and answered (or refused, or a duplicate): a crash before this leaves
    // it to the next catch-up, which redelivers it; the pipeline answers it then, once.
    if (!r.error) {
      asio::dispatch(self->strand, [self, channel = in.channel_id, id = in.message_id,
                                    guild = in.guild_id] { self->saw(channel, id, guild); });
    }
    *stop_typing = true;
    typing_done->cancel();
    const Where where{in.channel_id, in.message_id, "", ""};
    if (r.duplicate) {
      spdlog::debug("discord: message {} was already answered", in.message_id);
    } else if (r.error) {
      const std::string text =
          r.stop == pipeline::TurnStop::overloaded
              ? "I am answering too many messages right now and did not keep this one; please "
                "send it again in a minute."
              : "I could not take that message in (a storage problem on my side); please send it "
                "again.";
      (void)co_await self->post_text(where, text);
    } else if (r.refused || r.outbox_id == 0) {
      if (!r.reply.empty() && r.primary) {
        (void)co_await self->post_text(where, r.reply);
      }
    } else if (r.primary) {
      const Status st = co_await self->send_reply(where, r);
      if (!st.ok()) {
        spdlog::error("discord: the reply to message {} was not sent: {}", in.message_id,
                      st.error().message);
      }
    }
    self->in_flight.fetch_sub(1);
  }

  // Where a reply goes: a channel (the first part replying to a message when `reply_to` is
  // given), or an interaction's webhook (the first part edits the deferred response, the others
  // follow up).
  struct Where {
    std::string channel_id;
    std::string reply_to;
    std::string application_id;  // with `token`: an interaction
    std::string token;           // the interaction's token (never logged)
  };

  // Part `index` of a reply, pinging nobody. In a channel, `nonce_id` (an outbox id; 0: none)
  // makes the nonce "<id>.<index>.<salt>" with enforce_nonce, so that a resend returns the
  // existing message (webhooks have no nonce: an interaction's reply is sent once).
  // `files`, when given, are uploaded with it (multipart). A pointer, never a vector prvalue:
  // GCC 12 destroys a coroutine's prvalue arguments twice.
  asio::awaitable<RestReply> post(const Where& where, size_t index, const std::string& text,
                                  int64_t nonce_id,
                                  const std::vector<storage::OutboxFile>* files = nullptr) {
    nlohmann::json body = {{"content", text},
                           {"allowed_mentions", {{"parse", nlohmann::json::array()}}}};
    std::string method = "POST";
    std::string path;
    if (!where.token.empty()) {
      path = "/webhooks/" + where.application_id + "/" + where.token;
      if (index == 0) {
        method = "PATCH";
        path += "/messages/@original";
      }
    } else {
      path = "/channels/" + where.channel_id + "/messages";
      if (index == 0 && !where.reply_to.empty()) {
        body["message_reference"] = {{"message_id", where.reply_to}, {"fail_if_not_exists", false}};
      }
      if (nonce_id != 0) {
        body["nonce"] = fmt::format("{}.{}.{}", nonce_id, index, salt);  // at most 25 characters
        body["enforce_nonce"] = true;
      }
    }
    std::vector<storage::OutboxFile> upload;
    if (files != nullptr) upload = *files;
    RestReply reply = co_await rest.call(method, path, std::move(body), nullptr, std::move(upload));
    co_return reply;
  }

  // A text that is no outbox entry (a refusal, an error): split and posted, no nonce.
  // `nonce_id`: an entry sent whole (owed from before a restart, a reminder), one nonce per part.
  // `files` (when given) go with the last part.
  asio::awaitable<Status> post_text(const Where& where, const std::string& text,
                                    int64_t nonce_id = 0,
                                    const std::vector<storage::OutboxFile>* files = nullptr) {
    const auto parts = split_reply(text);
    for (size_t i = 0; i < parts.size(); ++i) {
      const RestReply r =
          co_await post(where, i, parts[i], nonce_id, i + 1 == parts.size() ? files : nullptr);
      if (!r.ok()) {
        co_return fail(ErrorCode::unavailable,
                       fmt::format("part {} of {}: {}", i + 1, parts.size(), r.error));
      }
    }
    co_return Status{};
  }

  // A turn's reply, entry by entry: each part its own outbox entry (TurnResult::parts),
  // bracketed (sending, posted, sent). Stops at the first failure: that part, begun, is
  // `unknown` after a restart; the parts after it stay owed and the next start sends them.
  asio::awaitable<Status> send_reply(const Where& where, const pipeline::TurnResult& r) {
    if (r.parts.empty()) {
      co_await inbox->sending(r.outbox_id);
      const Status st = co_await post_text(where, r.reply, r.outbox_id, &r.files);
      if (st.ok()) inbox->sent(r.outbox_id);
      co_return st;
    }
    for (size_t i = 0; i < r.parts.size(); ++i) {
      const int64_t id = r.outbox_id + static_cast<int64_t>(i);
      co_await inbox->sending(id);
      const RestReply sent =
          co_await post(where, i, r.parts[i], id, i + 1 == r.parts.size() ? &r.files : nullptr);
      if (!sent.ok()) {
        co_return fail(ErrorCode::unavailable,
                       fmt::format("part {} of {}: {}", i + 1, r.parts.size(), sent.error));
      }
      inbox->sent(id);
    }
    co_return Status{};
  }

  // A slash command: acknowledged at once (Discord waits 3 s) with a deferred response, then
  // run through the dispatcher like a message; the reply edits the deferred response.
  static asio::awaitable<void> answer_interaction(std::shared_ptr<Impl> self, InteractionIn in) {
    std::string method = "POST";
    std::string path = "/interactions/" + in.id + "/" + in.token + "/callback";
    if (!in.refused.empty()) {
      // Not answered here: said to the user alone (ephemeral), nothing stored.
      nlohmann::json body = {{"type", 4},
                             {"data",
                              {{"content", in.refused},
                               {"flags", 64},
                               {"allowed_mentions", {{"parse", nlohmann::json::array()}}}}}};
      const RestReply r = co_await self->rest.call(method, path, std::move(body));
      if (!r.ok()) spdlog::warn("discord: refusing interaction {}: {}", in.id, r.error);
      self->in_flight.fetch_sub(1);
      co_return;
    }
    nlohmann::json deferred = {{"type", 5}};
    const RestReply ack = co_await self->rest.call(method, path, std::move(deferred));
    // 40060, already acknowledged: a replay of an interaction an earlier process took (and
    // maybe answered); the dedupe on its id below tells which.
    const bool acknowledged = ack.ok() || (ack.status == 400 && ack.body.is_object() &&
                                           json_int(ack.body, "code", 0) == 40060);
    if (!acknowledged) {
      spdlog::warn("discord: interaction {} (/{}) could not be acknowledged: {}", in.id,
                   in.message.text.substr(1, in.message.text.find(' ') - 1), ack.error);
      self->in_flight.fetch_sub(1);
      co_return;
    }
    const Where where{in.channel_id, "", in.application_id, in.token};
    const pipeline::InboundMessage& message = in.message;
    const pipeline::TurnResult r = co_await self->inbox->deliver(message);
    if (r.duplicate) {
      spdlog::debug("discord: interaction {} was already answered", in.id);
    } else if (r.error) {
      const std::string text =
          r.stop == pipeline::TurnStop::overloaded
              ? "I am answering too many messages right now; please try again in a minute."
              : "I could not take that command in (a storage problem on my side); please try "
                "again.";
      (void)co_await self->post_text(where, text);
    } else if (r.refused || r.outbox_id == 0) {
      // The deferred response waits for an edit: a refusal the sender was already told still
      // gets a line.
      std::string text = r.reply;
      if (text.empty()) {
        text = r.stop == pipeline::TurnStop::rate_limited
                   ? "You are sending messages faster than I can answer them; please wait a "
                     "little and try again."
                   : "I cannot answer you here.";
      }
      (void)co_await self->post_text(where, text);
    } else {
      const Status st = co_await self->send_reply(where, r);
      if (!st.ok()) {
        spdlog::error("discord: the reply to interaction {} was not sent: {}", in.id,
                      st.error().message);
      }
    }
    self->in_flight.fetch_sub(1);
  }

  // The /commands as Discord application commands, for each listed guild or globally. Sent
  // only when they differ from the set this database last registered (bulk overwrite is
  // idempotent, but Discord limits command creation per day).
  static asio::awaitable<void> register_commands(std::shared_ptr<Impl> self) {
    nlohmann::json commands = nlohmann::json::array();
    for (const SlashCommand& c : self->deps.commands()) {
      const bool valid =
          !c.name.empty() && c.name.size() <= 32 &&
          std::all_of(c.name.begin(), c.name.end(), [](char ch) {
            return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
          });
      if (!valid) {
        spdlog::warn("discord: /{} is not a valid Discord command name: not registered", c.name);
        continue;
      }
      if (commands.size() >= 100) {
        spdlog::warn("discord: more than 100 commands: /{} and the rest not registered", c.name);
        break;
      }
      const auto cut = [](const std::string& text) {
        const auto parts = split_reply(text, 100);
        return parts.empty() ? std::string("(no description)") : parts.front();
      };
      nlohmann::json command = {{"name", c.name}, {"type", 1}, {"description", cut(c.description)}};
      if (const size_t space = c.usage.find(' '); space != std::string::npos) {
        command["options"] = nlohmann::json::array({{{"type", 3},
                                                     {"name", option_name(c.usage.substr(space))},
                                                     {"description", cut(c.usage)},
                                                     {"required", false}}});
      }
      commands.push_back(std::move(command));
    }
    std::vector<std::string> scopes = self->options.guilds;
    if (scopes.empty()) scopes.emplace_back();  // global
    const std::string dump = commands.dump();
    for (const std::string& guild : scopes) {
      const std::string key = "commands:" + (guild.empty() ? std::string("global") : guild);
      const std::string digest = self->application_id + ":" + token_hash(dump);
      if (auto saved = self->deps.state.get("discord", key); saved.ok() && *saved == digest) {
        continue;
      }
      std::string method = "PUT";
      std::string path = "/applications/" + self->application_id +
                         (guild.empty() ? std::string() : "/guilds/" + guild) + "/commands";
      nlohmann::json body = commands;
      const RestReply r = co_await self->rest.call(method, path, std::move(body));
      if (!r.ok()) {
        spdlog::warn("discord: registering the slash commands ({}) failed: {}",
                     guild.empty() ? std::string("global") : "guild " + guild, r.error);
        continue;
      }
      self->deps.state.put("discord", key, digest, [](const Result<storage::WriteAck>& w) {
        if (!w) spdlog::warn("discord: registered commands not recorded: {}", w.error().message);
      });
      spdlog::info("discord: {} slash command(s) registered ({})", commands.size(),
                   guild.empty() ? std::string("global") : "guild " + guild);
    }
  }
};

DiscordChannel::DiscordChannel(Deps deps, DiscordOptions options, std::string token)
    : impl_(std::make_shared<Impl>(std::move(deps), std::move(options), std::move(token))) {}

DiscordChannel::~DiscordChannel() {
  stop();
  if (impl_->lock_fd >= 0) ::close(impl_->lock_fd);
}

Status DiscordChannel::start(Inbox& inbox) {
  if (impl_->started.exchange(true)) return {};
  if (auto st = impl_->lock_instance(); !st.ok()) return st;
  // Nonces are "<outbox id>.<part>.<salt>": the salt, kept in this database, tells apart two
  // databases' outbox ids (two processes splitting the shards, a database started afresh), so
  // that Discord's nonce dedupe never swallows another reply.
  auto salt = impl_->deps.state.get("discord", "nonce_salt");
  if (!salt) return fail(salt.error());
  if (*salt) {
    impl_->salt = **salt;
  } else {
    std::random_device rd;
    static constexpr std::string_view kDigits = "0123456789abcdefghijklmnopqrstuvwxyz";
    for (int i = 0; i < 6; ++i) impl_->salt += kDigits[rd() % kDigits.size()];
    if (auto put = impl_->deps.state.put("discord", "nonce_salt", impl_->salt).get(); !put) {
      return fail(put.error());
    }
  }
  impl_->inbox = &inbox;
  asio::co_spawn(impl_->strand, Impl::boot(impl_), asio::detached);
  return {};
}

void DiscordChannel::stop() {
  // Counted in flight until the sessions are handed to the write queue, so that the process's
  // drain waits for it (a restart then RESUMEs).
  impl_->in_flight.fetch_add(1);
  asio::dispatch(impl_->strand, [impl = impl_] {
    if (!impl->stopping) {
      impl->stopping = true;
      for (auto& shard : impl->shards) shard->stop();
      impl->flush_timer.cancel();
      impl->flush();
    }
    impl->in_flight.fetch_sub(1);
  });
}

void DiscordChannel::send(OutboundMessage message, std::function<void(Status)> done) {
  auto impl = impl_;
  asio::co_spawn(
      asio::make_strand(impl->deps.executor),
      [impl, message = std::move(message), done = std::move(done)]() -> asio::awaitable<void> {
        impl->in_flight.fetch_add(1);
        const Impl::Where where{message.target, "", "", ""};
        const Status st =
            co_await impl->post_text(where, message.text, message.outbox_id, &message.files);
        impl->in_flight.fetch_sub(1);
        done(st);
      },
      asio::detached);
}

size_t DiscordChannel::in_flight() const { return impl_->in_flight.load(); }

std::string DiscordChannel::banner() const {
  return fmt::format("discord (token from {}, {})", impl_->options.token_env,
                     impl_->options.api_base);
}

std::vector<ChannelFigure> DiscordChannel::figures() const {
  std::vector<ChannelFigure> out;
  const auto add = [&out](std::string name, std::string help, std::string type,
                          std::vector<std::pair<std::string, std::string>> labels, double value) {
    out.push_back(
        ChannelFigure{std::move(name), std::move(help), std::move(type), std::move(labels), value});
  };
  const int64_t now =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now().time_since_epoch())
          .count();
  for (const Shard* shard : *impl_->published.load()) {
    const auto f = shard->figures();
    const std::string id = std::to_string(shard->id());
    add("parley_discord_shard_ready", "1 when the shard's gateway session is ready", "gauge",
        {{"shard", id}, {"state", std::string(to_string(f.state))}},
        f.state == ShardState::ready ? 1 : 0);
    if (f.last_event_ms > 0) {
      add("parley_discord_shard_last_event_age_seconds", "Seconds since the shard's last event",
          "gauge", {{"shard", id}}, static_cast<double>(now - f.last_event_ms) / 1000.0);
    }
    if (f.ack_latency_ms >= 0) {
      add("parley_discord_shard_ack_latency_ms", "The last heartbeat's ACK latency", "gauge",
          {{"shard", id}}, static_cast<double>(f.ack_latency_ms));
    }
    add("parley_discord_shard_resumes_total", "Sessions resumed", "counter", {{"shard", id}},
        static_cast<double>(f.resumes));
    add("parley_discord_shard_identifies_total", "New sessions (IDENTIFY) since start", "counter",
        {{"shard", id}}, static_cast<double>(f.identifies));
    add("parley_discord_shard_zombies_total", "Connections without a heartbeat ACK", "counter",
        {{"shard", id}}, static_cast<double>(f.zombies));
  }
  const int64_t wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  if (auto today = impl_->deps.state.get("discord", "identifies:" + utc_day(wall_ms)); today.ok()) {
    add("parley_discord_identifies_today",
        "IDENTIFYs today, UTC (Discord resets the token at 1000)", "gauge", {},
        *today ? std::stod(**today) : 0.0);
  }
  const RestStats rest = impl_->rest.stats();
  add("parley_discord_rest_requests_total", "REST requests sent", "counter", {},
      static_cast<double>(rest.requests));
  for (const auto& [route, n] : rest.limited_by_route) {
    add("parley_discord_rest_429_total", "REST answers 429, by route", "counter",
        {{"route", route}}, static_cast<double>(n));
  }
  add("parley_discord_rest_invalid_requests_10m",
      "401, 403 and 429 answers in the last 10 minutes (REST stops at 1000)", "gauge", {},
      static_cast<double>(rest.invalid_10min));
  add("parley_discord_token_disabled", "1 when Discord refused the token (401)", "gauge", {},
      rest.token_disabled ? 1 : 0);
  return out;
}

}  // namespace parley::bot::channels::discord
