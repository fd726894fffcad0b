// FakeDiscord: a fake of Discord's REST API (v10) and gateway (JSON encoding) for tests of
// parley's Discord channel, on 127.0.0.1 (port 0): one Beast server (http_fake_server.h) for
// both, on its own io_context thread. It follows /work/shared/reference/discord.md.
//
// REST, under api_base() = "http://127.0.0.1:<port>/api", paths /api/v10/…; every answer is
// JSON with Discord's shapes. Every route but GET /gateway, the interaction callback and the
// interaction webhooks needs "Authorization: Bot <token>": none or another answers 401
// {"message": "401: Unauthorized", "code": 0}.
//   GET  /gateway/bot → {url: "ws://127.0.0.1:<port>" (no path, as Discord), shards,
//        session_start_limit {total, remaining, reset_after, max_concurrency}}; GET /gateway →
//        {url}
//   GET  /users/@me → the bot user {id, username, discriminator "0", bot: true, …}
//   GET  /applications/@me → {id, name, bot_public, flags}: flags has the _LIMITED bit of each
//        privileged intent switched on (privileged_intents), as for a bot in under 100 servers
//   GET  /channels/{id} → a channel the fake knows (configured guilds' channels and threads,
//        THREAD_CREATE, DM channels of injected DMs); unknown: 404 {"code": 10003}
//   POST /channels/{id}/messages → the message object (snowflake id, channel_id, content, author
//        = the bot, timestamp, nonce, message_reference + referenced_message for a reply).
//        Checked as Discord does: unknown channel 404; empty message 400 (50006); content over
//        2,000 characters, nonce over 25, allowed_mentions with `parse` and an id list of the same
//        type, a reply to a message the fake does not know (fail_if_not_exists, default true):
//        400 (50035). enforce_nonce + a nonce used in that channel within nonce_window: the
//        existing message again, nothing created (counted by nonce_dedupes()). A created message
//        is also dispatched as MESSAGE_CREATE, as Discord echoes a bot's own messages.
//        A multipart/form-data body (a message with files) is read as Discord reads it:
//        payload_json is the message, files[N] parts its files (each with a filename; at most
//        10, 25 MiB in all); an "attachments" entry naming an id no files[N] has is 400
//        (50035). The message object lists the files under "attachments".
//   POST /channels/{id}/typing → 204
//   GET  /channels/{id}/messages?after|before=ID&limit=N (1–100, default 50) → that channel's
//        messages, injected ones and the bot's own, newest first: with `after`, the N oldest
//        newer than ID (Discord's forward paging). Content emptied when the app lacks the
//        MESSAGE_CONTENT privileged intent, as on the gateway.
//   PUT  /applications/{app}/commands, /applications/{app}/guilds/{guild}/commands (bulk
//        overwrite) → the commands with id (kept per name across overwrites), application_id,
//        version, guild_id; names 1–32 characters, description 1–100 (chat input): else 400.
//        Another app id or an unknown guild: 403 (50001).
//   POST /interactions/{id}/{token}/callback → 204 within interaction_response_window of the
//        injection (else, or unknown id/token, 404 10062); a second callback 400 (40060).
//   POST /webhooks/{app}/{token} (follow-up), PATCH /webhooks/{app}/{token}/messages/@original
//        → the message object; the interaction must have been acknowledged and its token be
//        younger than interaction_token_lifetime (else 404 10015 / 10008).
//   Any other path 404 {"message": "404: Not Found", "code": 0}; a known path with another
//   method 405 {"message": "405: Method Not Allowed", "code": 0}; bad JSON 400 (50109).
//
// Rate limits. Every answer on a known route carries X-RateLimit-Limit, -Remaining, -Reset
// (epoch s, 3 decimals), -Reset-After (s, 3 decimals, rounded up) and -Bucket (an opaque hash of
// the route, or of FakeRateLimit::bucket for routes sharing one). A limit holds per bucket and
// major parameter (channel id, guild id, webhook/interaction id + token): a fixed window opened
// by the first request. A request over it is answered 429 {"message": "You are being rate
// limited.", "retry_after": <float s>, "global": false} with Retry-After (whole s, rounded up)
// and X-RateLimit-Scope: user. The global limit (global_limit per second, interaction routes
// exempt) answers 429 with "global": true, X-RateLimit-Global: true, X-RateLimit-Scope: global.
// A request that arrives while its bucket is exhausted or blocked (after any 429, scripted ones
// included, until its retry_after has passed) is a violation: DiscordRequest::violation,
// rate_limit_violations(). A client that honours the headers never has one.
//
// Scripted REST faults (push_fault, FIFO per route key or "*" for any route, one per request
// that passed the rate limits): a 429 of scope user, global or shared (it blocks the bucket, or
// every route, for its retry_after), an error status (401, 403, 500, 502, …) with Discord's error
// JSON or a verbatim body, a delay before the answer. They answer whatever the authorization.
//
// Gateway: a WebSocket upgrade on "/" (where parley goes: gateway/bot's url + "/?v=10&…"),
// "/gateway" or "/resume-gw" (resume_gateway_url), with or without a trailing "/", any query. `v`
// other than 10 closes 4012, `encoding` other than json closes 4002. `compress=zlib-stream` is
// ignored: frames are always uncompressed text (recorded in GatewayConnectionInfo::target).
// Non-dispatch payloads carry "s": null and "t": null.
//   connect → op 10 HELLO {heartbeat_interval}
//   op 1 → op 11 ACK (none while withhold_acks(true): a zombie connection)
//   op 2 IDENTIFY {token, intents, shard?, properties} → checks in this order: second IDENTIFY
//     4005; token 4004; intents with unknown bits 4013, with a privileged bit not in
//     privileged_intents 4014; shard not [0 ≤ id < n] 4010; n < required_shards 4011; another
//     IDENTIFY of the bucket shard_id % max_concurrency within identify_interval → op 9 false
//     (identify_rate_violations()); session_start_limit.remaining 0 → the token is reset:
//     every connection closes 4004, every REST call 401 from then on (token_reset()). Else
//     `remaining` is decremented, op 0 READY {v: 10, user, session_id, resume_gateway_url,
//     guilds [{id, unavailable: true}], shard, application {id, flags}} and a GUILD_CREATE per
//     configured guild of that shard ((guild_id >> 22) % n == id) with channels and threads.
//   op 6 RESUME {token, session_id, seq} → session unknown, invalidated or expired: op 9 false;
//     seq beyond the session's: close 4007; else every dispatch with s > seq again, in order,
//     then RESUMED. A session resumed while another connection holds it is taken from it (that
//     one is dropped).
//   op 3, 4, 8 are accepted and ignored; any payload but 1, 2, 6 before IDENTIFY closes 4003;
//     an unknown op 4001; a payload over 4,096 bytes or not JSON 4002; more than
//     gateway_send_limit payloads (heartbeats included) within gateway_send_window on one
//     connection 4008.
//   Dispatches (op 0) carry s, increasing per session from 1, and t. A session keeps every
//   dispatch; it stays resumable after a drop or a close for session_keep, except after a
//   client close with 1000/1001, a fake close with 4003, 4004, 4007, 4009–4014, op 9 false, or
//   expire_sessions(). Events are dispatched to every live session (connected or resumable) of
//   the shard that owns their guild, DMs to shard 0: those injected while a session is
//   disconnected wait in it for a RESUME; a fresh IDENTIFY starts a new session without them
//   (they stay readable through GET messages). Two connections may hold sessions of the same
//   shard at once: both get the events (GatewayIdentify records both).
//   Intents (unless apply_intents is false): GUILD_CREATE and THREAD_CREATE need GUILDS, guild
//   messages GUILD_MESSAGES, DMs DIRECT_MESSAGES; without MESSAGE_CONTENT a message's content,
//   embeds, attachments and components arrive empty, except in DMs, for the bot's own messages
//   and for messages that mention the bot. READY, RESUMED, INTERACTION_CREATE and inject_dispatch
//   always arrive.
//
// Gateway faults and controls (each acts on one connection, see GatewayTarget; false when there
// is none): op 7 RECONNECT (the fake does not close by itself afterwards, as Discord does a few
// seconds later: close() or drop() does), op 9 INVALID SESSION (d true/false; false ends the
// session, and the connection may IDENTIFY again), op 1 (asks for a heartbeat), any payload, a
// close frame with any code, a TCP drop without a close frame; ACKs withheld; sessions expired.
// The fake never closes a connection for missing heartbeats.
//
// Ownership: the fake owns its server, threads and all recorded state; queries return copies.
// Thread safety: every public method may be called from any thread, also while the gateway
// serves. wait_for's predicate runs on the calling thread without the fake's lock held (it may
// call the fake's methods).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace parley::fakes {

// Gateway intents (bits of IDENTIFY's `intents`) the fake acts on.
namespace discord_intent {
inline constexpr int64_t kGuilds = int64_t{1} << 0;
inline constexpr int64_t kGuildMembers = int64_t{1} << 1;    // privileged
inline constexpr int64_t kGuildPresences = int64_t{1} << 8;  // privileged
inline constexpr int64_t kGuildMessages = int64_t{1} << 9;
inline constexpr int64_t kDirectMessages = int64_t{1} << 12;
inline constexpr int64_t kMessageContent = int64_t{1} << 15;  // privileged
inline constexpr int64_t kPrivileged = kGuildMembers | kGuildPresences | kMessageContent;
}  // namespace discord_intent

// REST route keys: method and path template under /api/v10. They name routes in
// Options::rate_limits, push_fault and DiscordRequest::route.
namespace discord_route {
inline constexpr char kGatewayBot[] = "GET /gateway/bot";
inline constexpr char kGateway[] = "GET /gateway";
inline constexpr char kCurrentUser[] = "GET /users/@me";
inline constexpr char kCurrentApplication[] = "GET /applications/@me";
inline constexpr char kGetChannel[] = "GET /channels/{channel_id}";
inline constexpr char kCreateMessage[] = "POST /channels/{channel_id}/messages";
inline constexpr char kGetMessages[] = "GET /channels/{channel_id}/messages";
inline constexpr char kTyping[] = "POST /channels/{channel_id}/typing";
inline constexpr char kGlobalCommands[] = "PUT /applications/{application_id}/commands";
inline constexpr char kGuildCommands[] =
    "PUT /applications/{application_id}/guilds/{guild_id}/commands";
inline constexpr char kInteractionCallback[] =
    "POST /interactions/{interaction_id}/{interaction_token}/callback";
inline constexpr char kFollowup[] = "POST /webhooks/{application_id}/{interaction_token}";
inline constexpr char kEditOriginal[] =
    "PATCH /webhooks/{application_id}/{interaction_token}/messages/@original";
inline constexpr char kAnyRoute[] = "*";  // push_fault: the next request on any route
}  // namespace discord_route

struct FakeDiscordUser {
  std::string id;  // empty: a fresh snowflake
  std::string username = "someone";
  bool bot = false;
  std::optional<std::string> global_name;  // empty: null
};

// A channel or a thread.
struct FakeDiscordChannel {
  std::string id;  // empty: a fresh snowflake
  std::string name = "general";
  int type = 0;           // 0 GUILD_TEXT, 1 DM, 5 ANNOUNCEMENT, 10/11/12 threads
  std::string parent_id;  // threads: their channel
  std::string owner_id;   // threads: who started them
};

struct FakeDiscordGuild {
  std::string id;  // empty: a fresh snowflake (owned by shard (id >> 22) % n)
  std::string name = "guild";
  std::vector<FakeDiscordChannel> channels;
  std::vector<FakeDiscordChannel> threads;  // active threads: GUILD_CREATE's `threads`
};

// A user's message, injected as MESSAGE_CREATE and kept for GET messages.
struct FakeDiscordMessage {
  std::string channel_id;  // unknown channels become known (a DM channel without guild_id)
  std::string guild_id;    // empty: a DM (shard 0)
  FakeDiscordUser author;
  std::string content;
  std::vector<FakeDiscordUser> mentions;
  bool mention_everyone = false;
  std::string reply_to;  // message_reference.message_id (type 19); referenced_message is the
                         // fake's copy of that message, or null when it does not know it
  // Sent as `channel_type` when set (Discord's documented MESSAGE_CREATE has no such field),
  // and the type of the channel when the fake does not know it yet (default: 0, or 1 for a DM).
  std::optional<int> channel_type;
  std::optional<FakeDiscordChannel> thread;         // the thread started from this message
  std::string id;                                   // empty: a fresh snowflake
  nlohmann::json extra = nlohmann::json::object();  // merged into the message object last
};

// An application command used by someone (INTERACTION_CREATE type 2).
struct FakeDiscordInteraction {
  std::string guild_id;  // empty: in a DM with the bot (shard 0)
  std::string channel_id;
  FakeDiscordUser user;
  std::string command_name = "ask";
  int command_type = 1;                              // 1 CHAT_INPUT
  nlohmann::json options = nlohmann::json::array();  // data.options [{name, type, value}]
  std::string command_id;  // empty: the id of the registered command of that name, or fresh
  nlohmann::json extra = nlohmann::json::object();  // merged into the interaction last
};

struct FakeDiscordInteractionHandle {
  std::string id;
  std::string token;
};

struct FakeRateLimit {
  int limit = 50;                          // requests per window
  std::chrono::milliseconds window{1000};  // opened by the first request
  std::string bucket;  // non-empty: routes with the same name share one limit and hash
};

// One scripted REST answer (see the header comment).
struct DiscordFault {
  int status = 0;              // 0: only `delay`, then the normal answer
  double retry_after = 0;      // 429: seconds
  std::string scope = "user";  // 429: "user", "global" or "shared"
  std::string body;            // non-empty: the verbatim body (with content_type)
  std::string content_type = "application/json";
  std::string message;                 // error JSON's message; empty: "<status>: <reason>"
  int code = 0;                        // error JSON's code
  std::chrono::milliseconds delay{0};  // before the answer

  static DiscordFault rate_limited(double retry_after);         // scope user
  static DiscordFault global_rate_limited(double retry_after);  // "global": true
  static DiscordFault shared_rate_limited(double retry_after);  // X-RateLimit-Scope: shared
  static DiscordFault error(int status, std::string message = "", int code = 0);
  static DiscordFault raw(int status, std::string body, std::string content_type = "text/html");
  static DiscordFault delayed(std::chrono::milliseconds delay);
};

// One REST request, as the fake saw and answered it.
struct DiscordRequest {
  std::chrono::steady_clock::time_point arrival;
  std::string method;
  std::string target;  // path and query as sent
  std::string route;   // route key (discord_route), "" for an unknown path
  std::string major;   // the major parameter's value, "" for none
  std::string authorization;
  std::string user_agent;
  std::string body;
  int status = 0;
  bool violation = false;  // arrived while its bucket (or the global limit) was exhausted
  bool scripted = false;   // answered by a DiscordFault
};

// A file uploaded with a message (multipart/form-data, as files[N]).
struct DiscordFile {
  size_t index = 0;  // N of files[N]
  std::string filename;
  std::string content_type;
  std::string content;
};

// A message the bot created with POST /channels/{id}/messages.
struct DiscordCreatedMessage {
  std::string id;
  std::string channel_id;
  std::string content;
  nlohmann::json nonce;  // null when absent
  bool enforce_nonce = false;
  nlohmann::json message_reference;  // null when absent
  nlohmann::json allowed_mentions;   // null when absent
  nlohmann::json body;               // the whole request (payload_json, for a multipart one)
  std::vector<DiscordFile> files;    // uploaded with it
};

struct DiscordTyping {
  std::string channel_id;
  std::chrono::steady_clock::time_point arrival;
};

struct DiscordInteractionCallback {
  std::string interaction_id;
  std::string token;
  int type = 0;  // 4 message, 5 deferred, …
  nlohmann::json body;
};

struct DiscordWebhookMessage {
  std::string token;
  bool edit_original = false;  // PATCH …/messages/@original; else a follow-up
  std::string message_id;
  nlohmann::json body;
  std::vector<DiscordFile> files;  // uploaded with it
};

struct DiscordCommandsPut {
  std::string guild_id;     // empty: global
  nlohmann::json commands;  // as echoed (with ids)
};

struct GatewayConnectionInfo {
  uint64_t id = 0;     // 1, 2, … in accept order
  std::string target;  // the upgrade's path and query
  bool open = false;
  std::string session_id;  // the session it holds or held last ("" none)
  std::optional<int> shard;
  size_t payloads_received = 0;
  int close_code = 0;  // the fake's close code, or the client's (closed_by_client); 0: open,
                       // dropped, or ended without a close frame
  bool closed_by_client = false;
};

struct GatewayIdentify {
  uint64_t connection = 0;
  std::string token;
  int64_t intents = 0;
  int shard_id = 0;
  int shard_count = 1;
  nlohmann::json payload;        // the whole d
  std::string session_id;        // READY sent: the new session
  int close_code = 0;            // refused with this close
  bool invalid_session = false;  // refused with op 9 (max_concurrency)
};

struct GatewayResume {
  uint64_t connection = 0;
  std::string session_id;
  int64_t seq = 0;
  bool resumed = false;  // replayed and RESUMED; else op 9 or a close
  size_t replayed = 0;   // dispatches sent again before RESUMED
  int close_code = 0;
};

struct GatewayHeartbeat {
  uint64_t connection = 0;
  nlohmann::json d;  // the client's last s, or null
  bool acked = false;
};

struct GatewaySessionInfo {
  std::string session_id;
  int shard_id = 0;
  int shard_count = 1;
  int64_t intents = 0;
  int64_t seq = 0;          // the last s given to a dispatch
  uint64_t connection = 0;  // the connection holding it, 0 when disconnected
  bool resumable = false;   // connected, or may still be resumed
};

// Which gateway connection a control acts on: by default the newest open connection holding a
// session of `shard`.
struct GatewayTarget {
  GatewayTarget(int shard_id = 0) : shard(shard_id) {}  // NOLINT(google-explicit-constructor)
  static GatewayTarget connection(uint64_t id);         // that one, if open
  static GatewayTarget newest();  // the newest open connection, with a session or not

  std::optional<int> shard;
  std::optional<uint64_t> connection_id;
};

class FakeDiscord {
 public:
  struct SessionStartLimit {
    int total = 1000;
    int remaining = 1000;
    int64_t reset_after_ms = 86'400'000;
    int max_concurrency = 1;
  };

  struct Options {
    std::string token = "fake-discord-bot-token";
    std::string bot_id;  // empty: a fresh snowflake
    std::string bot_username = "parley";
    std::string application_id;  // empty: the bot's id (as for every bot nowadays)
    int64_t application_flags = 0;
    // The Portal's privileged-intent toggles that are on; IDENTIFY asking for another: 4014.
    int64_t privileged_intents = discord_intent::kPrivileged;
    std::vector<FakeDiscordGuild> guilds;
    int recommended_shards = 1;  // gateway/bot's `shards`
    int required_shards = 0;     // > 0: IDENTIFY with fewer shards closes 4011
    SessionStartLimit session_start_limit;
    std::chrono::milliseconds identify_interval{5000};  // per max_concurrency bucket; 0: off
    std::chrono::milliseconds heartbeat_interval{41'250};
    std::chrono::milliseconds session_keep{180'000};  // resumable after a drop for this long
    size_t gateway_send_limit = 120;                  // client payloads per window, then 4008
    std::chrono::milliseconds gateway_send_window{60'000};
    bool apply_intents = true;  // filter events and content by intents (see header comment)
    std::map<std::string, FakeRateLimit> rate_limits = {
        {discord_route::kCreateMessage, FakeRateLimit{5, std::chrono::seconds(1), ""}}};
    FakeRateLimit default_rate_limit;  // for routes not in rate_limits
    int global_limit = 50;             // requests per second, interaction routes exempt; 0: off
    std::chrono::milliseconds nonce_window{300'000};  // enforce_nonce dedupe window
    std::chrono::milliseconds interaction_response_window{3000};
    std::chrono::milliseconds interaction_token_lifetime{900'000};
  };

  FakeDiscord();  // Options{}
  explicit FakeDiscord(Options options);
  ~FakeDiscord();  // stop()
  FakeDiscord(const FakeDiscord&) = delete;
  FakeDiscord& operator=(const FakeDiscord&) = delete;

  // Closes every connection (gateway ones without a close frame) and stops serving; the
  // recorded state stays readable. Idempotent.
  void stop();

  [[nodiscard]] uint16_t port() const;
  [[nodiscard]] std::string api_base() const;            // "http://127.0.0.1:<port>/api"
  [[nodiscard]] std::string gateway_url() const;         // "ws://127.0.0.1:<port>/gateway"
  [[nodiscard]] std::string resume_gateway_url() const;  // "ws://127.0.0.1:<port>/resume-gw"
  [[nodiscard]] std::string token() const;
  [[nodiscard]] std::string bot_id() const;
  [[nodiscard]] std::string application_id() const;
  [[nodiscard]] std::vector<FakeDiscordGuild> guilds() const;  // with the ids they were given

  // A fresh snowflake (process-wide strictly increasing, timestamp-based), as a string.
  static std::string snowflake();
  // A fresh snowflake owned by `shard` of `shard_count`: (id >> 22) % shard_count == shard.
  static std::string snowflake_for_shard(int shard, int shard_count);

  // --- Configuration while running ----------------------------------------------------------
  void set_privileged_intents(int64_t intents);
  void set_session_start_limit(SessionStartLimit limit);
  void add_guild(FakeDiscordGuild guild);                         // known from the next IDENTIFY on
  void push_fault(const std::string& route, DiscordFault fault);  // route key or kAnyRoute

  // --- Gateway: events (return what they created) -----------------------------------------
  std::string inject_message(FakeDiscordMessage message);  // → the message id
  std::string inject_thread_create(const std::string& guild_id, FakeDiscordChannel thread,
                                   bool newly_created = true);  // → the thread id (type 11 by
                                                                // default)
  FakeDiscordInteractionHandle inject_interaction(FakeDiscordInteraction interaction);
  // Any dispatch, routed by d.guild_id (none: shard 0), whatever the intents.
  void inject_dispatch(const std::string& type, nlohmann::json d);

  // --- Gateway: controls -------------------------------------------------------------------
  bool send_reconnect(GatewayTarget target = {});                          // op 7
  bool send_invalid_session(GatewayTarget target, bool resumable);         // op 9
  bool request_heartbeat(GatewayTarget target = {});                       // op 1
  bool send_payload(GatewayTarget target, const nlohmann::json& payload);  // verbatim
  bool close(GatewayTarget target, int code, const std::string& reason = "");
  bool drop(GatewayTarget target = {});  // TCP closed, no close frame
  void withhold_acks(bool withhold);     // every connection: heartbeats get no op 11
  void expire_sessions();                // every disconnected session: no longer resumable

  // --- Gateway: what happened --------------------------------------------------------------
  [[nodiscard]] std::vector<GatewayConnectionInfo> connections() const;
  [[nodiscard]] std::vector<GatewayIdentify> identifies() const;
  [[nodiscard]] std::vector<GatewayResume> resumes() const;
  [[nodiscard]] std::vector<GatewayHeartbeat> heartbeats() const;
  // The newest session of `shard` that is connected, else the newest still resumable.
  [[nodiscard]] std::optional<GatewaySessionInfo> session(int shard = 0) const;
  [[nodiscard]] bool shard_connected(int shard = 0) const;  // an open connection holds a session
  [[nodiscard]] size_t identify_rate_violations() const;
  [[nodiscard]] bool token_reset() const;
  [[nodiscard]] SessionStartLimit session_start_limit() const;

  // --- REST: what happened -----------------------------------------------------------------
  [[nodiscard]] std::vector<DiscordRequest> requests() const;
  [[nodiscard]] size_t rate_limit_violations() const;
  [[nodiscard]] std::vector<DiscordCreatedMessage> created_messages() const;
  [[nodiscard]] size_t nonce_dedupes() const;  // creates answered with an existing message
  [[nodiscard]] std::vector<DiscordTyping> typing() const;
  [[nodiscard]] std::vector<DiscordInteractionCallback> interaction_callbacks() const;
  [[nodiscard]] std::vector<DiscordWebhookMessage> webhook_messages() const;
  [[nodiscard]] std::vector<DiscordCommandsPut> command_puts() const;

  // --- Waiting (no sleeps in tests) --------------------------------------------------------
  // Returns as soon as `done()` holds (re-checked after every change of the fake's state), or
  // false after `timeout`.
  bool wait_for(const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  bool wait_ready(int shard = 0,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  bool wait_disconnected(int shard = 0,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  bool wait_identifies(size_t n,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  bool wait_resumes(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  bool wait_heartbeats(size_t n,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  bool wait_created_messages(size_t n,
                             std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::fakes
