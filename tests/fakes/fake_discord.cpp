#include "fakes/fake_discord.h"

// clang-format off
#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros
// clang-format on

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/beast/websocket.hpp>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <exception>
#include <mutex>
#include <random>
#include <set>
#include <string_view>
#include <utility>

#include "fakes/http_fake_server.h"

namespace parley::fakes {

namespace {

// Helpers that build Discord's wire shapes and parse its paths. A named namespace of their
// own: parley_fakes compiles in unity batches, where every fake's anonymous namespace is one.
namespace discord_wire {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint64_t kDiscordEpochMs = 1'420'070'400'000;
constexpr size_t kMaxPayloadBytes = 4096;
constexpr size_t kMaxContentChars = 2000;
constexpr size_t kMaxNonceChars = 25;
constexpr int kApiVersion = 10;
constexpr std::string_view kApiPrefix = "/api/v10/";

// Every intent bit Discord defines (IDENTIFY with another: 4013).
constexpr int64_t kKnownIntents = ((int64_t{1} << 17) - 1) | (int64_t{1} << 20) |
                                  (int64_t{1} << 21) | (int64_t{1} << 24) | (int64_t{1} << 25);

std::atomic<uint64_t> g_last_snowflake{0};

uint64_t now_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// A snowflake above every one given so far, with its timestamp part at least now; with
// `shard_count` > 0, one whose timestamp part is `shard` modulo shard_count.
uint64_t next_snowflake(int shard = 0, int shard_count = 0) {
  uint64_t last = g_last_snowflake.load();
  for (;;) {
    uint64_t ts = std::max(now_ms() - kDiscordEpochMs, (last >> 22) + 1);
    if (shard_count > 0) {
      const auto n = static_cast<uint64_t>(shard_count);
      const auto want = static_cast<uint64_t>(shard) % n;
      ts += (want + n - ts % n) % n;
    }
    const uint64_t id = (ts << 22) | (uint64_t{1} << 17);  // worker 0, process 1, increment 0
    if (g_last_snowflake.compare_exchange_weak(last, id)) return id;
  }
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  uint64_t v = 0;
  const auto* end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, v);
  if (r.ec != std::errc() || r.ptr != end || s.empty()) return std::nullopt;
  return v;
}

// The shard that gets events of `guild_id` ("" or not a snowflake: a DM, shard 0).
bool owned_by(const std::string& guild_id, int shard_id, int shard_count) {
  const auto id = parse_u64(guild_id);
  if (!id || shard_count <= 0) return shard_id == 0;
  return static_cast<int64_t>((*id >> 22) % static_cast<uint64_t>(shard_count)) == shard_id;
}

// ISO 8601 with microseconds and +00:00, as Discord writes timestamps.
std::string iso_timestamp(uint64_t epoch_ms) {
  const auto secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}000+00:00", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, epoch_ms % 1000);
}

std::string snowflake_timestamp(const std::string& id) {
  const auto v = parse_u64(id);
  return iso_timestamp(v ? (*v >> 22) + kDiscordEpochMs : now_ms());
}

size_t utf8_chars(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string random_hex(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  while (out.size() < n) out += fmt::format("{:016x}", rng());
  out.resize(n);
  return out;
}

// An opaque, stable hash of a bucket's name, as X-RateLimit-Bucket shows one.
std::string bucket_hash(const std::string& name) {
  uint64_t h1 = 14695981039346656037ull;
  uint64_t h2 = 1099511628211ull;
  for (const char c : name) {
    h1 = (h1 ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    h2 = (h2 ^ static_cast<unsigned char>(c)) * 14695981039346656037ull + 7;
  }
  return fmt::format("{:016x}{:016x}", h1, h2);
}

// Seconds with 3 decimals, rounded up (a client waiting that long is never early).
std::string seconds_up(Clock::duration d) {
  const auto ms = std::chrono::ceil<milliseconds>(std::max(d, Clock::duration::zero())).count();
  return fmt::format("{}.{:03}", ms / 1000, ms % 1000);
}

double seconds_up_value(Clock::duration d) {
  const auto ms = std::chrono::ceil<milliseconds>(std::max(d, Clock::duration::zero())).count();
  return static_cast<double>(ms) / 1000.0;
}

std::string str(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json user_json(const FakeDiscordUser& u) {
  json j = {
      {"id", u.id},           {"username", u.username},
      {"discriminator", "0"}, {"global_name", u.global_name ? json(*u.global_name) : json(nullptr)},
      {"avatar", nullptr},    {"public_flags", 0}};
  if (u.bot) j["bot"] = true;
  return j;
}

json member_json() {
  return {{"roles", json::array()},
          {"joined_at", iso_timestamp(now_ms())},
          {"deaf", false},
          {"mute", false},
          {"flags", 0}};
}

bool is_thread(int type) { return type == 10 || type == 11 || type == 12; }

json channel_json(const FakeDiscordChannel& c, const std::string& guild_id) {
  json j = {{"id", c.id}, {"type", c.type}, {"name", c.name}};
  if (!guild_id.empty()) j["guild_id"] = guild_id;
  if (is_thread(c.type)) {
    j["parent_id"] = c.parent_id.empty() ? json(nullptr) : json(c.parent_id);
    j["owner_id"] = c.owner_id.empty() ? json(nullptr) : json(c.owner_id);
    j["member_count"] = 1;
    j["message_count"] = 0;
    j["rate_limit_per_user"] = 0;
    j["thread_metadata"] = {{"archived", false},
                            {"auto_archive_duration", 1440},
                            {"archive_timestamp", snowflake_timestamp(c.id)},
                            {"locked", false}};
  } else if (c.type != 1) {
    j["position"] = 0;
    j["parent_id"] = c.parent_id.empty() ? json(nullptr) : json(c.parent_id);
    j["permission_overwrites"] = json::array();
    j["nsfw"] = false;
  }
  return j;
}

// Discord's error JSON.
std::string error_body(const std::string& message, int code, json errors = nullptr) {
  json j = {{"message", message}, {"code", code}};
  if (!errors.is_null()) j["errors"] = std::move(errors);
  return j.dump();
}

// 400 Invalid Form Body with one field error.
std::string form_error(const std::string& field, const std::string& code,
                       const std::string& message) {
  json detail = json::object();
  detail["code"] = code;
  detail["message"] = message;
  json field_errors = json::object();
  field_errors["_errors"] = json::array({detail});
  json errors = json::object();
  errors[field] = std::move(field_errors);
  return error_body("Invalid Form Body", 50035, std::move(errors));
}

std::string reason_phrase(int status) {
  return std::string(http::obsolete_reason(static_cast<http::status>(status)));
}

// A gateway payload that is not a dispatch.
std::string control_payload(int op, json d) {
  return json{{"op", op}, {"d", std::move(d)}, {"s", nullptr}, {"t", nullptr}}.dump();
}

// Closing with these ends the session (no RESUME after them).
bool invalidates_session(int code) {
  return code == 4003 || code == 4004 || code == 4007 || (code >= 4009 && code <= 4014);
}

// A query parameter's value ("" when absent).
std::string query_param(const std::string& query, const std::string& name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    const size_t amp = std::min(query.find('&', pos), query.size());
    const std::string part = query.substr(pos, amp - pos);
    const size_t eq = part.find('=');
    if (part.substr(0, eq) == name) return eq == std::string::npos ? "" : part.substr(eq + 1);
    pos = amp + 1;
  }
  return "";
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    const size_t slash = std::min(path.find('/', pos), path.size());
    out.emplace_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

struct Route {
  const char* key;
  bool needs_auth;
  bool global_exempt;
};

constexpr Route kRoutes[] = {
    {discord_route::kGatewayBot, true, false},
    {discord_route::kGateway, false, false},
    {discord_route::kCurrentUser, true, false},
    {discord_route::kCurrentApplication, true, false},
    {discord_route::kGetChannel, true, false},
    {discord_route::kCreateMessage, true, false},
    {discord_route::kGetMessages, true, false},
    {discord_route::kTyping, true, false},
    {discord_route::kGlobalCommands, true, false},
    {discord_route::kGuildCommands, true, false},
    {discord_route::kInteractionCallback, false, true},
    {discord_route::kFollowup, false, true},
    {discord_route::kEditOriginal, false, true},
};

struct RouteMatch {
  const Route* route = nullptr;     // null: no path matched
  bool method_ok = false;           // a path matched, and with this method
  std::vector<std::string> params;  // the {…} segments in order
  std::string major;
};

RouteMatch match_route(std::string_view method, const std::vector<std::string>& segments) {
  RouteMatch best;
  for (const Route& r : kRoutes) {
    const std::string_view key = r.key;
    const size_t space = key.find(' ');
    const std::vector<std::string> tmpl = split_path(key.substr(space + 2));
    if (tmpl.size() != segments.size()) continue;
    std::vector<std::string> params;
    bool same = true;
    for (size_t i = 0; i < tmpl.size() && same; ++i) {
      if (!tmpl[i].empty() && tmpl[i].front() == '{') {
        same = !segments[i].empty();
        params.push_back(segments[i]);
      } else {
        same = tmpl[i] == segments[i];
      }
    }
    if (!same) continue;
    RouteMatch m;
    m.route = &r;
    m.method_ok = key.substr(0, space) == method;
    m.params = std::move(params);
    if (m.method_ok) {
      const std::string& top = segments.front();
      if (top == "channels" || top == "guilds") m.major = m.params.front();
      if (top == "webhooks" || top == "interactions") m.major = m.params[0] + "/" + m.params[1];
      return m;
    }
    best = std::move(m);
  }
  return best;
}

// A multipart/form-data body (RFC 7578) as Discord reads a message with files: payload_json and
// files[N] parts. Either the form or what is wrong with it.
struct Form {
  std::string payload = "{}";
  std::vector<DiscordFile> files;
  std::string error;  // non-empty: not a well-formed form
};

// The value of parameter `name` (e.g. boundary, filename) in a header value; "" when absent.
std::string header_param(std::string_view value, std::string_view name) {
  const std::string key = std::string(name) + "=";
  size_t at = 0;
  while ((at = value.find(key, at)) != std::string_view::npos) {
    if (at == 0 || value[at - 1] == ';' || value[at - 1] == ' ') break;
    at += key.size();
  }
  if (at == std::string_view::npos) return {};
  std::string_view v = value.substr(at + key.size());
  if (!v.empty() && v.front() == '"') {
    const size_t end = v.find('"', 1);
    return end == std::string_view::npos ? std::string() : std::string(v.substr(1, end - 1));
  }
  return std::string(v.substr(0, v.find(';')));
}

Form parse_form(std::string_view content_type, std::string_view body) {
  Form form;
  const std::string boundary = header_param(content_type, "boundary");
  if (boundary.empty()) {
    form.error = "multipart/form-data without a boundary";
    return form;
  }
  const std::string delimiter = "--" + boundary;
  if (body.substr(0, delimiter.size() + 2) != delimiter + "\r\n") {
    form.error = "the body does not start with the boundary";
    return form;
  }
  size_t at = delimiter.size() + 2;
  bool payload_seen = false;
  for (;;) {
    const size_t head_end = body.find("\r\n\r\n", at);
    const size_t next = body.find("\r\n" + delimiter, at);
    if (head_end == std::string_view::npos || next == std::string_view::npos || next < head_end) {
      form.error = "a part without headers or without a closing boundary";
      return form;
    }
    std::string disposition;
    std::string type;
    for (std::string_view headers = body.substr(at, head_end - at); !headers.empty();) {
      const size_t eol = headers.find("\r\n");
      const std::string_view line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string field(line.substr(0, colon));
      for (char& c : field) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (field == "content-disposition") disposition = value;
      if (field == "content-type") type = value;
    }
    const std::string name = header_param(disposition, "name");
    const std::string_view content = body.substr(head_end + 4, next - head_end - 4);
    if (name == "payload_json") {
      form.payload = content;
      payload_seen = true;
    } else if (name.rfind("files[", 0) == 0 && name.back() == ']') {
      DiscordFile f;
      try {
        f.index = std::stoul(name.substr(6, name.size() - 7));
      } catch (const std::exception&) {
        form.error = "a file part named " + name;
        return form;
      }
      f.filename = header_param(disposition, "filename");
      f.content_type = type;
      f.content = content;
      if (f.filename.empty()) {
        form.error = name + " has no filename";
        return form;
      }
      form.files.push_back(std::move(f));
    }
    at = next + 2 + delimiter.size();
    if (body.substr(at, 2) == "--") break;
    if (body.substr(at, 2) != "\r\n") {
      form.error = "a boundary line not followed by CRLF";
      return form;
    }
    at += 2;
  }
  if (!payload_seen && form.files.empty()) form.error = "an empty form";
  return form;
}

}  // namespace discord_wire

}  // namespace

using discord_wire::Clock;
using nlohmann::json;
using std::chrono::milliseconds;

// --- Faults and targets ------------------------------------------------------------------------

DiscordFault DiscordFault::rate_limited(double retry_after) {
  DiscordFault f;
  f.status = 429;
  f.retry_after = retry_after;
  return f;
}

DiscordFault DiscordFault::global_rate_limited(double retry_after) {
  DiscordFault f = rate_limited(retry_after);
  f.scope = "global";
  return f;
}

DiscordFault DiscordFault::shared_rate_limited(double retry_after) {
  DiscordFault f = rate_limited(retry_after);
  f.scope = "shared";
  return f;
}

DiscordFault DiscordFault::error(int status, std::string message, int code) {
  DiscordFault f;
  f.status = status;
  f.message = std::move(message);
  f.code = code;
  return f;
}

DiscordFault DiscordFault::raw(int status, std::string body, std::string content_type) {
  DiscordFault f;
  f.status = status;
  f.body = std::move(body);
  f.content_type = std::move(content_type);
  return f;
}

DiscordFault DiscordFault::delayed(milliseconds delay) {
  DiscordFault f;
  f.delay = delay;
  return f;
}

GatewayTarget GatewayTarget::connection(uint64_t id) {
  GatewayTarget t;
  t.shard.reset();
  t.connection_id = id;
  return t;
}

GatewayTarget GatewayTarget::newest() {
  GatewayTarget t;
  t.shard.reset();
  return t;
}

// --- Impl --------------------------------------------------------------------------------------

struct FakeDiscord::Impl {
  // What the writer of a gateway connection sends next.
  struct OutItem {
    enum class Kind { text, close, drop } kind = Kind::text;
    std::string text;
    int code = 0;
    std::string reason;
  };

  // One gateway connection. The asio side (socket, timers) lives in its handler; this is the
  // shared state, kept after the connection ended for the queries.
  struct GatewayConn {
    uint64_t id = 0;
    std::string target;
    // Wakes the writer up (posts to the connection's strand); empty once the handler ended.
    std::function<void()> wake;
    std::deque<OutItem> out;
    bool open = true;
    bool closing = false;  // a close or drop is queued: client payloads are ignored
    bool identified = false;
    std::string session_id;
    std::deque<Clock::time_point> recent;  // client payloads within the send window
    size_t payloads = 0;
    int close_code = 0;
    bool closed_by_client = false;
  };

  struct Session {
    std::string id;
    int shard_id = 0;
    int shard_count = 1;
    int64_t intents = 0;
    uint64_t order = 0;  // creation order
    int64_t seq = 0;
    std::vector<std::pair<int64_t, std::string>> history;  // every dispatch: s, payload
    uint64_t connection = 0;                               // 0: disconnected
    bool invalid = false;
    Clock::time_point disconnected_at{};
  };

  struct Bucket {
    int remaining = 0;
    Clock::time_point reset_at{};
    Clock::time_point blocked_until{};  // after a 429
    std::string blocked_scope = "user";
  };

  struct Channel {
    json object;  // as GET /channels/{id} answers it
    std::string guild_id;
  };

  struct Interaction {
    std::string id;
    std::string token;
    std::string channel_id;
    Clock::time_point created{};
    int acknowledged = 0;  // the callback's type, 0: none yet
    json original;         // the original response message, null until there is one
  };

  struct Reply {
    Reply() = default;
    Reply(unsigned s, std::string b) : status(s), body(std::move(b)) {}

    unsigned status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
    milliseconds delay{0};
  };

  explicit Impl(Options o);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  asio::awaitable<bool> serve(const FakeRequest& req, FakeConnection& conn);

  // --- REST (REQUIRES mu for the helpers) ---
  Reply rest(const FakeRequest& req);
  Reply route(const FakeRequest& req, DiscordRequest& rec, const discord_wire::RouteMatch& m,
              const std::string& query, Clock::time_point now);
  Reply answer(const FakeRequest& req, const discord_wire::RouteMatch& m, const std::string& query,
               Clock::time_point now);
  Reply create_message(const std::string& channel_id, const std::string& body,
                       Clock::time_point now, std::vector<DiscordFile> files);
  Reply get_messages(const std::string& channel_id, const std::string& query);
  Reply put_commands(const std::string& app, const std::string& guild, const std::string& body);
  Reply interaction_callback(const std::string& id, const std::string& token,
                             const std::string& body, Clock::time_point now);
  Reply webhook(const std::string& app, const std::string& token, bool edit_original,
                const std::string& body, Clock::time_point now, std::vector<DiscordFile> files);
  // The "attachments" of a message object for uploaded `files`; an error reply when the
  // payload's "attachments" name an id no files[N] has.
  std::optional<Reply> attach(json& message, const json& payload,
                              const std::vector<DiscordFile>& files) const;
  void rate_limit_headers(Reply& r, const FakeRateLimit& limit, const Bucket& b,
                          const std::string& hash, Clock::time_point now) const;
  const FakeRateLimit& limit_for(const std::string& route_key) const;
  json bot_message(const std::string& channel_id, const json& req) const;
  void store_message(const std::string& channel_id, const json& message);
  std::optional<json> find_message(const std::string& id) const;

  // --- Gateway ---
  asio::awaitable<bool> gateway(const FakeRequest& req, FakeConnection& conn);
  asio::awaitable<void> gateway_writer(std::shared_ptr<GatewayConn> gc, FakeConnection& conn,
                                       std::shared_ptr<asio::steady_timer> wake);
  std::shared_ptr<GatewayConn> open_gateway(const std::string& target, std::function<void()> wake);
  void end_gateway(GatewayConn& gc, bool client_closed, int client_code);
  void on_payload(GatewayConn& gc, const std::string& text);
  void identify(GatewayConn& gc, const json& d);
  void resume(GatewayConn& gc, const json& d);
  // REQUIRES mu for all below.
  bool enqueue(GatewayConn& gc, OutItem item);
  bool send_to(const GatewayTarget& target, OutItem item);  // false: no such connection
  void close_conn(GatewayConn& gc, int code, const std::string& reason);
  void dispatch(Session& s, const std::string& type, json d);
  bool alive(const Session& s, Clock::time_point now) const;
  std::vector<Session*> sessions_for(const std::string& guild_id);
  GatewayConn* find_target(const GatewayTarget& t);
  std::vector<std::string> guild_ids_of(int shard_id, int shard_count) const;
  json guild_create(const FakeDiscordGuild& g) const;
  json message_for(const Session& s, const json& message, const std::string& guild_id) const;
  void dispatch_message(const json& message, const std::string& guild_id);
  void register_channel(const FakeDiscordChannel& c, const std::string& guild_id);
  void prepare_guild(FakeDiscordGuild& g);  // gives ids, makes its channels known
  void changed() {
    ++generation;
    cv.notify_all();
  }

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  uint64_t generation = 0;  // GUARDED_BY(mu): bumped on every change (wait_for)

  Options options;      // GUARDED_BY(mu)
  FakeDiscordUser bot;  // GUARDED_BY(mu)
  const Clock::time_point started = Clock::now();
  bool token_was_reset = false;  // GUARDED_BY(mu)
  bool withhold = false;         // GUARDED_BY(mu)

  // GUARDED_BY(mu), all below.
  std::map<std::string, Channel> channels;
  std::map<std::string, std::map<uint64_t, json>> messages;  // channel → id → message
  std::map<std::string, std::string> message_channel;        // message id → channel
  std::map<std::string, std::pair<std::string, Clock::time_point>> nonces;  // channel|nonce
  std::map<std::string, json> commands;             // guild ("" global) → echo
  std::map<std::string, Interaction> interactions;  // by id
  std::map<std::string, Bucket> buckets;            // bucket|major
  Clock::time_point global_reset{};
  int global_count = 0;
  Clock::time_point global_blocked_until{};
  std::map<std::string, std::deque<DiscordFault>> faults;

  std::map<uint64_t, std::shared_ptr<GatewayConn>> conns;
  uint64_t next_conn = 0;
  std::map<std::string, std::shared_ptr<Session>> sessions;
  uint64_t next_session = 0;
  std::map<int, Clock::time_point> identify_buckets;  // max_concurrency bucket → last IDENTIFY

  std::vector<DiscordRequest> requests;
  size_t violations = 0;
  std::vector<DiscordCreatedMessage> created;
  size_t dedupes = 0;
  std::vector<DiscordTyping> typings;
  std::vector<DiscordInteractionCallback> callbacks;
  std::vector<DiscordWebhookMessage> webhook_messages;
  std::vector<DiscordCommandsPut> command_puts;
  std::vector<GatewayIdentify> identifies;
  std::vector<GatewayResume> resumes;
  std::vector<GatewayHeartbeat> heartbeats;
  size_t identify_violations = 0;

  // Last: destroyed (stopped) first, while the state its handler reads still exists.
  HttpFakeServer server;
};

FakeDiscord::Impl::Impl(Options o)
    : options(std::move(o)),
      server(
          HttpFakeServer::Options{.name = "fake_discord", .body_limit = (size_t{25} << 20) + 65536},
          [this](const FakeRequest& req, FakeConnection& conn) { return serve(req, conn); }) {
  const std::lock_guard lock(mu);
  bot.id = options.bot_id.empty() ? snowflake() : options.bot_id;
  bot.username = options.bot_username;
  bot.bot = true;
  if (options.application_id.empty()) options.application_id = bot.id;
  for (auto& g : options.guilds) prepare_guild(g);
}

void FakeDiscord::Impl::prepare_guild(FakeDiscordGuild& g) {
  if (g.id.empty()) g.id = snowflake();
  for (auto& c : g.channels) {
    if (c.id.empty()) c.id = snowflake();
    register_channel(c, g.id);
  }
  for (auto& t : g.threads) {
    if (t.id.empty()) t.id = snowflake();
    if (!discord_wire::is_thread(t.type)) t.type = 11;
    register_channel(t, g.id);
  }
}

FakeDiscord::Impl::~Impl() {
  server.stop();
  // The handlers have ended (or were given up on): no wake-up may outlive the io_context.
  const std::lock_guard lock(mu);
  for (auto& [id, gc] : conns) gc->wake = nullptr;
}

asio::awaitable<bool> FakeDiscord::Impl::serve(const FakeRequest& req, FakeConnection& conn) {
  if (beast::websocket::is_upgrade(req)) {
    const bool more = co_await gateway(req, conn);
    co_return more;
  }
  Reply reply = rest(req);
  const bool waited = co_await conn.wait(reply.delay);
  if (!waited) co_return false;
  FakeResponse res = make_fake_response(reply.status, reply.status == 204 ? "" : reply.content_type,
                                        std::move(reply.body), req.keep_alive());
  for (const auto& [name, value] : reply.headers) res.set(name, value);
  const bool more = co_await conn.send(res);
  co_return more;
}

// --- REST --------------------------------------------------------------------------------------

FakeDiscord::Impl::Reply FakeDiscord::Impl::rest(const FakeRequest& req) {
  const auto now = Clock::now();
  const std::string target(req.target());
  const size_t q = target.find('?');
  const std::string path = target.substr(0, q);
  const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  DiscordRequest rec;
  rec.arrival = now;
  rec.method = std::string(req.method_string());
  rec.target = target;
  if (const auto it = req.find(http::field::authorization); it != req.end()) {
    rec.authorization = std::string(it->value());
  }
  if (const auto it = req.find(http::field::user_agent); it != req.end()) {
    rec.user_agent = std::string(it->value());
  }
  rec.body = req.body();

  discord_wire::RouteMatch m;
  if (path.rfind(discord_wire::kApiPrefix, 0) == 0) {
    m = discord_wire::match_route(
        rec.method,
        discord_wire::split_path(std::string_view(path).substr(discord_wire::kApiPrefix.size())));
  }
  const std::lock_guard lock(mu);
  Reply r;
  if (m.route == nullptr) {
    r = Reply{404, discord_wire::error_body("404: Not Found", 0)};
  } else if (!m.method_ok) {
    r = Reply{405, discord_wire::error_body("405: Method Not Allowed", 0)};
  } else {
    r = route(req, rec, m, query, now);
  }
  rec.status = static_cast<int>(r.status);
  if (rec.violation) ++violations;
  requests.push_back(std::move(rec));
  changed();
  return r;
}

const FakeRateLimit& FakeDiscord::Impl::limit_for(const std::string& route_key) const {
  const auto it = options.rate_limits.find(route_key);
  return it == options.rate_limits.end() ? options.default_rate_limit : it->second;
}

void FakeDiscord::Impl::rate_limit_headers(Reply& r, const FakeRateLimit& limit, const Bucket& b,
                                           const std::string& hash, Clock::time_point now) const {
  const auto reset_after = b.reset_at - now;
  const auto reset_epoch =
      std::chrono::system_clock::now() + std::chrono::ceil<milliseconds>(reset_after);
  const auto epoch_ms =
      std::chrono::duration_cast<milliseconds>(reset_epoch.time_since_epoch()).count();
  r.headers.emplace_back("X-RateLimit-Limit", std::to_string(limit.limit));
  r.headers.emplace_back("X-RateLimit-Remaining", std::to_string(std::max(0, b.remaining)));
  r.headers.emplace_back("X-RateLimit-Reset",
                         fmt::format("{}.{:03}", epoch_ms / 1000, epoch_ms % 1000));
  r.headers.emplace_back("X-RateLimit-Reset-After", discord_wire::seconds_up(reset_after));
  r.headers.emplace_back("X-RateLimit-Bucket", hash);
}

FakeDiscord::Impl::Reply FakeDiscord::Impl::route(const FakeRequest& req, DiscordRequest& rec,
                                                  const discord_wire::RouteMatch& m,
                                                  const std::string& query, Clock::time_point now) {
  rec.route = m.route->key;
  rec.major = m.major;
  const FakeRateLimit& limit = limit_for(rec.route);
  const std::string bucket_name = limit.bucket.empty() ? rec.route : limit.bucket;
  const std::string hash = discord_wire::bucket_hash(bucket_name);
  Bucket& b = buckets[bucket_name + "|" + m.major];
  if (now >= b.reset_at) {
    b.remaining = limit.limit;
    b.reset_at = now + limit.window;
  }

  // 429 for a request that came too early: `until` is when it could have come.
  auto too_early = [&](Clock::time_point until, const std::string& scope) {
    rec.violation = true;
    const auto wait = until - now;
    const bool global = scope == "global";
    Reply r{429, json{{"message", "You are being rate limited."},
                      {"retry_after", discord_wire::seconds_up_value(wait)},
                      {"global", global}}
                     .dump()};
    if (!global) rate_limit_headers(r, limit, b, hash, now);
    r.headers.emplace_back("Retry-After",
                           std::to_string(std::chrono::ceil<std::chrono::seconds>(wait).count()));
    if (global) r.headers.emplace_back("X-RateLimit-Global", "true");
    r.headers.emplace_back("X-RateLimit-Scope", scope);
    return r;
  };
  const bool counts_global = !m.route->global_exempt && options.global_limit > 0;
  if (!m.route->global_exempt && now < global_blocked_until) {
    return too_early(global_blocked_until, "global");
  }
  if (counts_global) {
    if (now >= global_reset) {
      global_count = 0;
      global_reset = now + std::chrono::seconds(1);
    }
    if (global_count >= options.global_limit) return too_early(global_reset, "global");
  }
  if (now < b.blocked_until) return too_early(b.blocked_until, b.blocked_scope);
  if (b.remaining <= 0) return too_early(b.reset_at, "user");
  --b.remaining;
  if (counts_global) ++global_count;

  // A scripted fault, if any.
  std::optional<DiscordFault> fault;
  for (const std::string& key : {rec.route, std::string(discord_route::kAnyRoute)}) {
    auto it = faults.find(key);
    if (it != faults.end() && !it->second.empty()) {
      fault = std::move(it->second.front());
      it->second.pop_front();
      break;
    }
  }
  if (fault && fault->status != 0) {
    rec.scripted = true;
    Reply r;
    r.status = static_cast<unsigned>(fault->status);
    r.delay = fault->delay;
    if (fault->status == 429) {
      const auto wait = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(fault->retry_after));
      const bool global = fault->scope == "global";
      if (global) {
        global_blocked_until = now + wait;
      } else {
        b.blocked_until = now + wait;
        b.blocked_scope = fault->scope;
      }
      r.body = fault->body.empty() ? json{{"message", "You are being rate limited."},
                                          {"retry_after", fault->retry_after},
                                          {"global", global}}
                                         .dump()
                                   : fault->body;
      if (!global) rate_limit_headers(r, limit, b, hash, now);
      r.headers.emplace_back("Retry-After",
                             std::to_string(static_cast<int64_t>(std::ceil(fault->retry_after))));
      if (global) r.headers.emplace_back("X-RateLimit-Global", "true");
      r.headers.emplace_back("X-RateLimit-Scope", fault->scope);
      return r;
    }
    r.content_type = fault->content_type;
    r.body =
        !fault->body.empty()
            ? fault->body
            : discord_wire::error_body(fault->message.empty()
                                           ? fmt::format("{}: {}", fault->status,
                                                         discord_wire::reason_phrase(fault->status))
                                           : fault->message,
                                       fault->code);
    rate_limit_headers(r, limit, b, hash, now);
    return r;
  }

  Reply r;
  const std::string expected = "Bot " + options.token;
  if (m.route->needs_auth && (token_was_reset || rec.authorization != expected)) {
    r = Reply{401, discord_wire::error_body("401: Unauthorized", 0)};
  } else {
    r = answer(req, m, query, now);
  }
  if (fault) r.delay = fault->delay;
  rate_limit_headers(r, limit, b, hash, now);
  return r;
}

FakeDiscord::Impl::Reply FakeDiscord::Impl::answer(const FakeRequest& req,
                                                   const discord_wire::RouteMatch& m,
                                                   const std::string& query,
                                                   Clock::time_point now) {
  const std::string key = m.route->key;
  const auto& p = m.params;
  const std::string ws_base = fmt::format("ws://127.0.0.1:{}", server.port());
  if (key == discord_route::kGatewayBot) {
    const auto& l = options.session_start_limit;
    const auto elapsed = std::chrono::duration_cast<milliseconds>(now - started).count();
    json j = {{"url", ws_base},
              {"shards", options.recommended_shards},
              {"session_start_limit",
               {{"total", l.total},
                {"remaining", l.remaining},
                {"reset_after", std::max<int64_t>(0, l.reset_after_ms - elapsed)},
                {"max_concurrency", l.max_concurrency}}}};
    return Reply{200, j.dump()};
  }
  if (key == discord_route::kGateway) return Reply{200, json{{"url", ws_base}}.dump()};
  if (key == discord_route::kCurrentUser) {
    json u = discord_wire::user_json(bot);
    u["verified"] = true;
    u["mfa_enabled"] = false;
    u["flags"] = 0;
    u["locale"] = "en-US";
    return Reply{200, u.dump()};
  }
  if (key == discord_route::kCurrentApplication) {
    // The Portal's toggles as application flags (the _LIMITED ones: under 100 servers).
    int64_t flags = 0;
    if ((options.privileged_intents & discord_intent::kGuildPresences) != 0) flags |= 1 << 13;
    if ((options.privileged_intents & discord_intent::kGuildMembers) != 0) flags |= 1 << 15;
    if ((options.privileged_intents & discord_intent::kMessageContent) != 0) flags |= 1 << 19;
    json a = {{"id", options.application_id},
              {"name", bot.username},
              {"bot_public", true},
              {"flags", flags}};
    return Reply{200, a.dump()};
  }
  if (key == discord_route::kGlobalCommands) return put_commands(p[0], "", req.body());
  if (key == discord_route::kGuildCommands) return put_commands(p[0], p[1], req.body());
  if (key == discord_route::kInteractionCallback) {
    return interaction_callback(p[0], p[1], req.body(), now);
  }
  // A message with files: the form's payload_json is its JSON.
  std::string body = req.body();
  std::vector<DiscordFile> files;
  if (const auto ct = std::string(req[http::field::content_type]);
      ct.rfind("multipart/form-data", 0) == 0) {
    discord_wire::Form form = discord_wire::parse_form(ct, req.body());
    if (!form.error.empty()) {
      return Reply{400, discord_wire::error_body("Invalid Form Body: " + form.error, 50035)};
    }
    size_t bytes = 0;
    for (const auto& f : form.files) bytes += f.content.size();
    if (form.files.size() > 10) {
      return Reply{400, discord_wire::form_error("files", "BASE_TYPE_MAX_LENGTH",
                                                 "Must be 10 or fewer in length.")};
    }
    if (bytes > (size_t{25} << 20)) {
      return Reply{413, discord_wire::error_body("Request entity too large", 40005)};
    }
    body = std::move(form.payload);
    files = std::move(form.files);
  }
  if (key == discord_route::kFollowup) return webhook(p[0], p[1], false, body, now, files);
  if (key == discord_route::kEditOriginal) return webhook(p[0], p[1], true, body, now, files);

  // Channel routes.
  const std::string& channel_id = p[0];
  const auto ch = channels.find(channel_id);
  if (ch == channels.end()) return Reply{404, discord_wire::error_body("Unknown Channel", 10003)};
  if (key == discord_route::kGetChannel) return Reply{200, ch->second.object.dump()};
  if (key == discord_route::kTyping) {
    typings.push_back(DiscordTyping{channel_id, now});
    return Reply{204, ""};
  }
  if (key == discord_route::kGetMessages) return get_messages(channel_id, query);
  return create_message(channel_id, body, now, std::move(files));
}

json FakeDiscord::Impl::bot_message(const std::string& channel_id, const json& req) const {
  const std::string id = snowflake();
  json m = {{"id", id},
            {"type", 0},
            {"channel_id", channel_id},
            {"author", discord_wire::user_json(bot)},
            {"content", req.value("content", json("")).is_string() ? req.value("content", "") : ""},
            {"timestamp", discord_wire::snowflake_timestamp(id)},
            {"edited_timestamp", nullptr},
            {"tts", req.value("tts", false)},
            {"mention_everyone", false},
            {"mentions", json::array()},
            {"mention_roles", json::array()},
            {"attachments", json::array()},
            {"embeds",
             req.contains("embeds") && req["embeds"].is_array() ? req["embeds"] : json::array()},
            {"components", json::array()},
            {"pinned", false},
            {"flags", req.value("flags", json(0)).is_number_integer() ? req.value("flags", 0) : 0}};
  return m;
}

void FakeDiscord::Impl::store_message(const std::string& channel_id, const json& message) {
  const std::string id = discord_wire::str(message, "id");
  const auto numeric = discord_wire::parse_u64(id);
  if (!numeric) return;
  messages[channel_id][*numeric] = message;
  message_channel[id] = channel_id;
}

std::optional<json> FakeDiscord::Impl::find_message(const std::string& id) const {
  const auto it = message_channel.find(id);
  const auto numeric = discord_wire::parse_u64(id);
  if (it == message_channel.end() || !numeric) return std::nullopt;
  return messages.at(it->second).at(*numeric);
}

std::optional<FakeDiscord::Impl::Reply> FakeDiscord::Impl::attach(
    json& message, const json& payload, const std::vector<DiscordFile>& files) const {
  if (payload.contains("attachments") && payload["attachments"].is_array()) {
    for (const auto& a : payload["attachments"]) {
      const bool known =
          a.is_object() && a.contains("id") &&
          std::any_of(files.begin(), files.end(), [&a](const DiscordFile& f) {
            return a["id"] == json(f.index) || a["id"] == json(std::to_string(f.index));
          });
      if (!known) {
        return Reply{400, discord_wire::form_error("attachments", "ATTACHMENT_NOT_FOUND",
                                                   "Unknown attachment: no files[N] part for it")};
      }
    }
  }
  json list = json::array();
  for (const auto& f : files) {
    const std::string id = snowflake();
    list.push_back(
        {{"id", id},
         {"filename", f.filename},
         {"size", f.content.size()},
         {"content_type", f.content_type},
         {"url", fmt::format("https://cdn.discordapp.com/attachments/{}/{}/{}",
                             discord_wire::str(message, "channel_id"), id, f.filename)}});
  }
  message["attachments"] = std::move(list);
  return std::nullopt;
}

FakeDiscord::Impl::Reply FakeDiscord::Impl::create_message(const std::string& channel_id,
                                                           const std::string& body,
                                                           Clock::time_point now,
                                                           std::vector<DiscordFile> files) {
  const json req = json::parse(body, nullptr, false);
  if (req.is_discarded() || !req.is_object()) {
    return Reply{400, discord_wire::error_body("The request body contains invalid JSON.", 50109)};
  }
  const json content = req.value("content", json(""));
  if (!content.is_string() && !content.is_null()) {
    return Reply{400, discord_wire::form_error("content", "BASE_TYPE_STRING", "Must be a string.")};
  }
  const std::string text = content.is_string() ? content.get<std::string>() : "";
  if (discord_wire::utf8_chars(text) > discord_wire::kMaxContentChars) {
    return Reply{400, discord_wire::form_error("content", "BASE_TYPE_MAX_LENGTH",
                                               "Must be 2000 or fewer in length.")};
  }
  auto non_empty = [&](const char* field) {
    return req.contains(field) && !req[field].is_null() && !req[field].empty();
  };
  if (text.empty() && files.empty() && !non_empty("embeds") && !non_empty("sticker_ids") &&
      !non_empty("components") && !non_empty("attachments") && !non_empty("poll")) {
    return Reply{400, discord_wire::error_body("Cannot send an empty message", 50006)};
  }
  const json nonce = req.value("nonce", json(nullptr));
  if (!nonce.is_null() && !nonce.is_number_integer() &&
      !(nonce.is_string() && nonce.get<std::string>().size() <= discord_wire::kMaxNonceChars)) {
    return Reply{400, discord_wire::form_error("nonce", "BASE_TYPE_BAD_LENGTH",
                                               "Must be between 1 and 25 in length.")};
  }
  const json allowed = req.value("allowed_mentions", json(nullptr));
  if (allowed.is_object() && allowed.contains("parse") && allowed["parse"].is_array()) {
    for (const char* type : {"users", "roles"}) {
      const bool parsed = std::find(allowed["parse"].begin(), allowed["parse"].end(), json(type)) !=
                          allowed["parse"].end();
      if (parsed && allowed.contains(type) && !allowed[type].empty()) {
        return Reply{400, discord_wire::form_error(
                              "allowed_mentions", "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                              fmt::format("parse:[\"{}\"] and {}: [ids...] are mutually "
                                          "exclusive.",
                                          type, type))};
      }
    }
  }
  const bool enforce = req.value("enforce_nonce", json(false)) == json(true);
  const std::string nonce_key = channel_id + "|" + nonce.dump();
  if (enforce && !nonce.is_null()) {
    const auto it = nonces.find(nonce_key);
    if (it != nonces.end() && now - it->second.second <= options.nonce_window) {
      if (auto existing = find_message(it->second.first)) {
        ++dedupes;
        return Reply{200, existing->dump()};
      }
    }
  }

  json m = bot_message(channel_id, req);
  const json ref = req.value("message_reference", json(nullptr));
  if (ref.is_object() && ref.contains("message_id")) {
    const std::string parent_id = ref["message_id"].is_string()
                                      ? ref["message_id"].get<std::string>()
                                      : ref["message_id"].dump();
    const auto parent = find_message(parent_id);
    if (!parent && ref.value("fail_if_not_exists", json(true)) != json(false)) {
      return Reply{400, discord_wire::form_error("message_reference", "REPLIES_UNKNOWN_MESSAGE",
                                                 "Unknown message")};
    }
    if (parent) {
      const std::string parent_channel = message_channel[parent_id];
      json mr = {{"type", 0}, {"message_id", parent_id}, {"channel_id", parent_channel}};
      const std::string guild = channels[parent_channel].guild_id;
      if (!guild.empty()) mr["guild_id"] = guild;
      m["type"] = 19;
      m["message_reference"] = mr;
      m["referenced_message"] = *parent;
    }
  }
  if (!nonce.is_null()) m["nonce"] = nonce;
  if (auto bad = attach(m, req, files)) return *bad;
  store_message(channel_id, m);
  if (!nonce.is_null()) nonces[nonce_key] = {discord_wire::str(m, "id"), now};
  DiscordCreatedMessage c;
  c.id = discord_wire::str(m, "id");
  c.channel_id = channel_id;
  c.content = text;
  c.nonce = nonce;
  c.enforce_nonce = enforce;
  c.message_reference = ref;
  c.allowed_mentions = allowed;
  c.body = req;
  c.files = std::move(files);
  created.push_back(std::move(c));
  dispatch_message(m, channels[channel_id].guild_id);
  return Reply{200, m.dump()};
}

FakeDiscord::Impl::Reply FakeDiscord::Impl::get_messages(const std::string& channel_id,
                                                         const std::string& query) {
  int limit = 50;
  if (const std::string l = discord_wire::query_param(query, "limit"); !l.empty()) {
    const auto v = discord_wire::parse_u64(l);
    if (!v || *v < 1 || *v > 100) {
      return Reply{
          400, discord_wire::form_error("limit", "NUMBER_TYPE_MAX", "Must be between 1 and 100.")};
    }
    limit = static_cast<int>(*v);
  }
  const auto after = discord_wire::parse_u64(discord_wire::query_param(query, "after"));
  const auto before = discord_wire::parse_u64(discord_wire::query_param(query, "before"));
  std::vector<json> picked;
  const auto& all = messages[channel_id];
  if (after) {
    for (auto it = all.upper_bound(*after);
         it != all.end() && picked.size() < static_cast<size_t>(limit); ++it) {
      picked.push_back(it->second);
    }
    std::reverse(picked.begin(), picked.end());
  } else {
    for (auto it = all.rbegin(); it != all.rend() && picked.size() < static_cast<size_t>(limit);
         ++it) {
      if (before && it->first >= *before) continue;
      picked.push_back(it->second);
    }
  }
  const bool content_on = (options.privileged_intents & discord_intent::kMessageContent) != 0;
  const bool dm = channels[channel_id].guild_id.empty();
  json out = json::array();
  for (auto& m : picked) {
    bool visible = content_on || dm || m["author"].value("id", "") == bot.id;
    for (const auto& u : m["mentions"]) visible = visible || u.value("id", "") == bot.id;
    if (!visible) {
      m["content"] = "";
      m["embeds"] = json::array();
      m["attachments"] = json::array();
      m["components"] = json::array();
    }
    out.push_back(std::move(m));
  }
  return Reply{200, out.dump()};
}

FakeDiscord::Impl::Reply FakeDiscord::Impl::put_commands(const std::string& app,
                                                         const std::string& guild,
                                                         const std::string& body) {
  if (app != options.application_id ||
      (!guild.empty() && std::none_of(options.guilds.begin(), options.guilds.end(),
                                      [&](const FakeDiscordGuild& g) { return g.id == guild; }))) {
    return Reply{403, discord_wire::error_body("Missing Access", 50001)};
  }
  const json req = json::parse(body, nullptr, false);
  if (req.is_discarded()) {
    return Reply{400, discord_wire::error_body("The request body contains invalid JSON.", 50109)};
  }
  if (!req.is_array()) {
    return Reply{400, discord_wire::form_error("_root", "BASE_TYPE_ARRAY", "Must be an array.")};
  }
  const json previous = commands.count(guild) != 0 ? commands[guild] : json::array();
  const std::string version = snowflake();
  json out = json::array();
  for (const auto& cmd : req) {
    const std::string name = discord_wire::str(cmd, "name");
    const int type = cmd.value("type", json(1)).is_number_integer() ? cmd.value("type", 1) : 1;
    const size_t name_len = discord_wire::utf8_chars(name);
    if (name_len < 1 || name_len > 32) {
      return Reply{400, discord_wire::form_error("name", "BASE_TYPE_BAD_LENGTH",
                                                 "Must be between 1 and 32 in length.")};
    }
    const size_t desc_len = discord_wire::utf8_chars(discord_wire::str(cmd, "description"));
    if (type == 1 && (desc_len < 1 || desc_len > 100)) {
      return Reply{400, discord_wire::form_error("description", "BASE_TYPE_BAD_LENGTH",
                                                 "Must be between 1 and 100 in length.")};
    }
    std::string id;
    for (const auto& old : previous) {
      if (discord_wire::str(old, "name") == name && old.value("type", 1) == type) {
        id = discord_wire::str(old, "id");
      }
    }
    json echo = cmd;
    echo["id"] = id.empty() ? snowflake() : id;
    echo["application_id"] = options.application_id;
    echo["version"] = version;
    echo["type"] = type;
    if (!echo.contains("description")) echo["description"] = "";
    if (!echo.contains("default_member_permissions")) echo["default_member_permissions"] = nullptr;
    echo["nsfw"] = cmd.value("nsfw", false);
    if (!guild.empty()) echo["guild_id"] = guild;
    out.push_back(std::move(echo));
  }
  commands[guild] = out;
  command_puts.push_back(DiscordCommandsPut{guild, out});
  return Reply{200, out.dump()};
}

FakeDiscord::Impl::Reply FakeDiscord::Impl::interaction_callback(const std::string& id,
                                                                 const std::string& token,
                                                                 const std::string& body,
                                                                 Clock::time_point now) {
  const auto it = interactions.find(id);
  if (it == interactions.end() || it->second.token != token ||
      now - it->second.created > options.interaction_response_window) {
    return Reply{404, discord_wire::error_body("Unknown interaction", 10062)};
  }
  Interaction& in = it->second;
  if (in.acknowledged != 0) {
    return Reply{400,
                 discord_wire::error_body("Interaction has already been acknowledged.", 40060)};
  }
  const json req = json::parse(body, nullptr, false);
  if (req.is_discarded() || !req.is_object()) {
    return Reply{400, discord_wire::error_body("The request body contains invalid JSON.", 50109)};
  }
  if (!req.contains("type") || !req["type"].is_number_integer()) {
    return Reply{400,
                 discord_wire::form_error("type", "BASE_TYPE_REQUIRED", "This field is required")};
  }
  in.acknowledged = req["type"].get<int>();
  if (in.acknowledged == 4 || in.acknowledged == 5) {
    const json data = req.value("data", json::object());
    in.original = bot_message(in.channel_id, data.is_object() ? data : json::object());
    in.original["webhook_id"] = options.application_id;
    in.original["application_id"] = options.application_id;
    if (in.acknowledged == 5)
      in.original["flags"] = in.original.value("flags", 0) | 128;  // LOADING
  }
  callbacks.push_back(DiscordInteractionCallback{id, token, in.acknowledged, req});
  return Reply{204, ""};
}

FakeDiscord::Impl::Reply FakeDiscord::Impl::webhook(const std::string& app,
                                                    const std::string& token, bool edit_original,
                                                    const std::string& body, Clock::time_point now,
                                                    std::vector<DiscordFile> files) {
  Interaction* in = nullptr;
  for (auto& [id, i] : interactions) {
    if (i.token == token) in = &i;
  }
  if (app != options.application_id || in == nullptr ||
      now - in->created > options.interaction_token_lifetime || in->acknowledged == 0) {
    return Reply{404, discord_wire::error_body("Unknown Webhook", 10015)};
  }
  const json req = json::parse(body, nullptr, false);
  if (req.is_discarded() || !req.is_object()) {
    return Reply{400, discord_wire::error_body("The request body contains invalid JSON.", 50109)};
  }
  json m;
  if (edit_original) {
    if (in->original.is_null())
      return Reply{404, discord_wire::error_body("Unknown Message", 10008)};
    m = in->original;
    if (req.contains("content")) m["content"] = req["content"];
    if (req.contains("embeds")) m["embeds"] = req["embeds"];
    m["flags"] = m.value("flags", 0) & ~128;
    m["edited_timestamp"] = discord_wire::iso_timestamp(discord_wire::now_ms());
    in->original = m;
  } else {
    m = bot_message(in->channel_id, req);
    m["webhook_id"] = options.application_id;
    m["application_id"] = options.application_id;
  }
  if (!files.empty() || req.contains("attachments")) {
    if (auto bad = attach(m, req, files)) return *bad;
    if (edit_original) in->original = m;
  }
  webhook_messages.push_back(DiscordWebhookMessage{token, edit_original, discord_wire::str(m, "id"),
                                                   req, std::move(files)});
  return Reply{200, m.dump()};
}

// --- Gateway -----------------------------------------------------------------------------------

asio::awaitable<bool> FakeDiscord::Impl::gateway(const FakeRequest& req, FakeConnection& conn) {
  const std::string target(req.target());
  std::string path = target.substr(0, target.find('?'));
  if (path.size() > 1 && path.back() == '/') path.pop_back();  // a client appended "/?v=10…"
  if (path != "/" && path != "/gateway" && path != "/resume-gw") {
    FakeResponse res = make_fake_response(404, "application/json",
                                          discord_wire::error_body("404: Not Found", 0), false);
    const bool sent = co_await conn.send(res);
    (void)sent;
    co_return false;
  }
  const bool accepted = co_await conn.accept_websocket(req);
  if (!accepted) co_return false;
  FakeWebSocket& ws = conn.websocket();
  ws.text(true);
  ws.read_message_max(1u << 20);  // larger than Discord's 4,096 so that the fake answers 4002

  const asio::any_io_executor ex = co_await asio::this_coro::executor;
  auto wake = std::make_shared<asio::steady_timer>(ex);
  std::weak_ptr<asio::steady_timer> weak_wake = wake;
  std::function<void()> waker = [ex, weak_wake] {
    asio::post(ex, [weak_wake] {
      if (auto t = weak_wake.lock()) t->cancel();
    });
  };
  std::shared_ptr<GatewayConn> gc = open_gateway(target, std::move(waker));

  bool writer_done = false;
  asio::steady_timer writer_exit(ex);
  asio::co_spawn(ex, gateway_writer(gc, conn, wake),
                 [&writer_done, &writer_exit](const std::exception_ptr& e) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& failure) {
                       spdlog::warn("fake_discord: gateway writer failed: {}", failure.what());
                     } catch (...) {
                       spdlog::warn("fake_discord: gateway writer failed");
                     }
                   }
                   writer_done = true;
                   writer_exit.cancel();
                 });

  beast::flat_buffer buffer;
  bool client_closed = false;
  int client_code = 0;
  for (;;) {
    boost::system::error_code ec;
    buffer.clear();
    co_await ws.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      client_closed = ec == beast::websocket::error::closed;
      if (client_closed) client_code = static_cast<int>(ws.reason().code);
      break;
    }
    on_payload(*gc, beast::buffers_to_string(buffer.data()));
  }
  end_gateway(*gc, client_closed, client_code);
  wake->cancel();
  conn.close();
  while (!writer_done) {
    writer_exit.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await writer_exit.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return false;
}

asio::awaitable<void> FakeDiscord::Impl::gateway_writer(std::shared_ptr<GatewayConn> gc,
                                                        FakeConnection& conn,
                                                        std::shared_ptr<asio::steady_timer> wake) {
  FakeWebSocket& ws = conn.websocket();
  for (;;) {
    std::optional<OutItem> item;
    bool done = false;
    {
      const std::lock_guard lock(mu);
      done = !gc->open;
      if (!done && !gc->out.empty()) {
        item = std::move(gc->out.front());
        gc->out.pop_front();
        if (item->kind == OutItem::Kind::close) {
          gc->close_code = item->code;
          changed();
        }
      }
    }
    if (done || conn.closed()) co_return;
    boost::system::error_code ec;
    if (!item) {
      wake->expires_at(asio::steady_timer::time_point::max());
      co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    switch (item->kind) {
      case OutItem::Kind::text:
        co_await ws.async_write(asio::buffer(item->text),
                                asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
          conn.close();  // the reader must not wait for a client that cannot be written to
          co_return;
        }
        break;
      case OutItem::Kind::close: {
        beast::websocket::close_reason reason(static_cast<uint16_t>(item->code));
        reason.reason = item->reason.substr(0, reason.reason.max_size());
        co_await ws.async_close(reason, asio::redirect_error(asio::use_awaitable, ec));
        conn.close();
        co_return;
      }
      case OutItem::Kind::drop: conn.close(); co_return;
    }
  }
}

std::shared_ptr<FakeDiscord::Impl::GatewayConn> FakeDiscord::Impl::open_gateway(
    const std::string& target, std::function<void()> wake) {
  auto gc = std::make_shared<GatewayConn>();
  gc->target = target;
  gc->wake = std::move(wake);
  const size_t q = target.find('?');
  const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  const std::string v = discord_wire::query_param(query, "v");
  const std::string encoding = discord_wire::query_param(query, "encoding");

  const std::lock_guard lock(mu);
  gc->id = ++next_conn;
  conns[gc->id] = gc;
  if (!v.empty() && v != std::to_string(discord_wire::kApiVersion)) {
    close_conn(*gc, 4012, "Invalid API version");
  } else if (!encoding.empty() && encoding != "json") {
    close_conn(*gc, 4002, "The fake speaks JSON only");
  } else {
    enqueue(*gc, OutItem{OutItem::Kind::text,
                         discord_wire::control_payload(
                             10, {{"heartbeat_interval", options.heartbeat_interval.count()},
                                  {"_trace", json::array({"[\"fake-discord-gateway\"]"})}}),
                         0, ""});
  }
  changed();
  return gc;
}

void FakeDiscord::Impl::end_gateway(GatewayConn& gc, bool client_closed, int client_code) {
  const std::lock_guard lock(mu);
  gc.open = false;
  gc.wake = nullptr;
  if (client_closed && gc.close_code == 0 && !gc.closing) {
    gc.close_code = client_code;
    gc.closed_by_client = true;
  }
  if (const auto it = sessions.find(gc.session_id); it != sessions.end()) {
    Session& s = *it->second;
    if (s.connection == gc.id) {
      s.connection = 0;
      s.disconnected_at = Clock::now();
      if (gc.closed_by_client && (client_code == 1000 || client_code == 1001)) s.invalid = true;
    }
  }
  changed();
}

bool FakeDiscord::Impl::send_to(const GatewayTarget& target, OutItem item) {
  GatewayConn* gc = find_target(target);
  if (gc == nullptr) return false;
  const bool queued = enqueue(*gc, std::move(item));
  changed();
  return queued;
}

bool FakeDiscord::Impl::enqueue(GatewayConn& gc, OutItem item) {
  if (!gc.open || gc.closing) return false;
  if (item.kind != OutItem::Kind::text) gc.closing = true;
  gc.out.push_back(std::move(item));
  if (gc.wake) gc.wake();
  return true;
}

void FakeDiscord::Impl::close_conn(GatewayConn& gc, int code, const std::string& reason) {
  if (!enqueue(gc, OutItem{OutItem::Kind::close, "", code, reason})) return;
  if (discord_wire::invalidates_session(code)) {
    if (const auto it = sessions.find(gc.session_id); it != sessions.end()) {
      it->second->invalid = true;
    }
  }
}

bool FakeDiscord::Impl::alive(const Session& s, Clock::time_point now) const {
  if (s.invalid) return false;
  return s.connection != 0 || now - s.disconnected_at <= options.session_keep;
}

void FakeDiscord::Impl::dispatch(Session& s, const std::string& type, json d) {
  const int64_t seq = ++s.seq;
  std::string text = json{{"op", 0}, {"t", type}, {"s", seq}, {"d", std::move(d)}}.dump();
  if (s.connection != 0) {
    if (auto it = conns.find(s.connection); it != conns.end())
      enqueue(*it->second, OutItem{OutItem::Kind::text, text, 0, ""});
  }
  s.history.emplace_back(seq, std::move(text));
}

std::vector<FakeDiscord::Impl::Session*> FakeDiscord::Impl::sessions_for(
    const std::string& guild_id) {
  const auto now = Clock::now();
  std::vector<Session*> out;
  for (auto& [id, s] : sessions) {
    if (alive(*s, now) && discord_wire::owned_by(guild_id, s->shard_id, s->shard_count)) {
      out.push_back(s.get());
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Session* a, const Session* b) { return a->order < b->order; });
  return out;
}

FakeDiscord::Impl::GatewayConn* FakeDiscord::Impl::find_target(const GatewayTarget& t) {
  GatewayConn* found = nullptr;
  for (auto& [id, gc] : conns) {
    if (!gc->open || gc->closing) continue;
    if (t.connection_id) {
      if (id == *t.connection_id) return gc.get();
      continue;
    }
    if (t.shard) {
      const auto it = sessions.find(gc->session_id);
      if (it == sessions.end() || it->second->connection != id ||
          it->second->shard_id != *t.shard) {
        continue;
      }
    }
    found = gc.get();  // the map is in id order: the last match is the newest
  }
  return found;
}

std::vector<std::string> FakeDiscord::Impl::guild_ids_of(int shard_id, int shard_count) const {
  std::vector<std::string> out;
  for (const auto& g : options.guilds) {
    if (discord_wire::owned_by(g.id, shard_id, shard_count)) out.push_back(g.id);
  }
  return out;
}

json FakeDiscord::Impl::guild_create(const FakeDiscordGuild& g) const {
  json chans = json::array();
  for (const auto& c : g.channels) {
    json j = discord_wire::channel_json(c, "");
    chans.push_back(std::move(j));
  }
  json threads = json::array();
  for (const auto& t : g.threads) threads.push_back(discord_wire::channel_json(t, g.id));
  return {{"id", g.id},
          {"name", g.name},
          {"unavailable", false},
          {"owner_id", snowflake()},
          {"joined_at", discord_wire::iso_timestamp(discord_wire::now_ms())},
          {"large", false},
          {"member_count", 2},
          {"channels", std::move(chans)},
          {"threads", std::move(threads)},
          {"members", json::array()},
          {"roles", json::array()},
          {"emojis", json::array()},
          {"features", json::array()},
          {"voice_states", json::array()},
          {"presences", json::array()},
          {"stage_instances", json::array()},
          {"guild_scheduled_events", json::array()}};
}

void FakeDiscord::Impl::register_channel(const FakeDiscordChannel& c, const std::string& guild_id) {
  channels[c.id] = Channel{discord_wire::channel_json(c, guild_id), guild_id};
}

// The MESSAGE_CREATE `d` of `message` for session `s`, or null when its intents exclude it.
json FakeDiscord::Impl::message_for(const Session& s, const json& message,
                                    const std::string& guild_id) const {
  json d = message;
  if (!guild_id.empty()) {
    d["guild_id"] = guild_id;
    d["member"] = discord_wire::member_json();
    for (auto& u : d["mentions"]) u["member"] = discord_wire::member_json();
  }
  if (!options.apply_intents) return d;
  const int64_t needed =
      guild_id.empty() ? discord_intent::kDirectMessages : discord_intent::kGuildMessages;
  if ((s.intents & needed) == 0) return nullptr;
  bool visible = (s.intents & discord_intent::kMessageContent) != 0 || guild_id.empty() ||
                 message["author"].value("id", "") == bot.id;
  for (const auto& u : message["mentions"]) visible = visible || u.value("id", "") == bot.id;
  if (!visible) {
    d["content"] = "";
    d["embeds"] = json::array();
    d["attachments"] = json::array();
    d["components"] = json::array();
    d.erase("poll");
  }
  return d;
}

void FakeDiscord::Impl::dispatch_message(const json& message, const std::string& guild_id) {
  for (Session* s : sessions_for(guild_id)) {
    json d = message_for(*s, message, guild_id);
    if (!d.is_null()) dispatch(*s, "MESSAGE_CREATE", std::move(d));
  }
}

void FakeDiscord::Impl::on_payload(GatewayConn& gc, const std::string& text) {
  const std::lock_guard lock(mu);
  if (!gc.open || gc.closing) return;
  ++gc.payloads;
  changed();
  const auto now = Clock::now();
  while (!gc.recent.empty() && now - gc.recent.front() >= options.gateway_send_window) {
    gc.recent.pop_front();
  }
  if (gc.recent.size() >= options.gateway_send_limit) {
    close_conn(gc, 4008, "Rate limited.");
    return;
  }
  gc.recent.push_back(now);
  if (text.size() > discord_wire::kMaxPayloadBytes) {
    close_conn(gc, 4002, "Error while decoding payload.");
    return;
  }
  const json p = json::parse(text, nullptr, false);
  if (p.is_discarded() || !p.is_object() || !p.contains("op") || !p["op"].is_number_integer()) {
    close_conn(gc, 4002, "Error while decoding payload.");
    return;
  }
  const int op = p["op"].get<int>();
  const json d = p.value("d", json(nullptr));
  switch (op) {
    case 1: {
      const bool ack = !withhold;
      heartbeats.push_back(GatewayHeartbeat{gc.id, d, ack});
      if (ack)
        enqueue(gc,
                OutItem{OutItem::Kind::text, discord_wire::control_payload(11, nullptr), 0, ""});
      return;
    }
    case 2: identify(gc, d); return;
    case 6: resume(gc, d); return;
    case 3:
    case 4:
    case 8:
      if (!gc.identified) close_conn(gc, 4003, "Not authenticated.");
      return;
    default: close_conn(gc, 4001, "Unknown opcode."); return;
  }
}

void FakeDiscord::Impl::identify(GatewayConn& gc, const json& d) {
  GatewayIdentify rec;
  rec.connection = gc.id;
  rec.payload = d;
  rec.token = discord_wire::str(d, "token");
  const json intents = d.is_object() ? d.value("intents", json(nullptr)) : json(nullptr);
  rec.intents = intents.is_number_integer() ? intents.get<int64_t>() : 0;
  const json shard = d.is_object() ? d.value("shard", json(nullptr)) : json(nullptr);
  bool shard_ok = true;
  if (!shard.is_null()) {
    shard_ok = shard.is_array() && shard.size() == 2 && shard[0].is_number_integer() &&
               shard[1].is_number_integer();
    if (shard_ok) {
      rec.shard_id = shard[0].get<int>();
      rec.shard_count = shard[1].get<int>();
      shard_ok = rec.shard_count >= 1 && rec.shard_id >= 0 && rec.shard_id < rec.shard_count;
    }
  }
  auto refuse = [&](int code, const char* reason) {
    rec.close_code = code;
    close_conn(gc, code, reason);
  };
  const auto now = Clock::now();
  auto& limit = options.session_start_limit;
  const int bucket = rec.shard_id % std::max(1, limit.max_concurrency);
  if (gc.identified) {
    refuse(4005, "Already authenticated.");
  } else if (!d.is_object() || rec.token != options.token || token_was_reset) {
    refuse(4004, "Authentication failed.");
  } else if (!intents.is_number_integer() || (rec.intents & ~discord_wire::kKnownIntents) != 0) {
    refuse(4013, "Invalid intent(s).");
  } else if ((rec.intents & discord_intent::kPrivileged & ~options.privileged_intents) != 0) {
    refuse(4014, "Disallowed intent(s).");
  } else if (!shard_ok) {
    refuse(4010, "Invalid shard.");
  } else if (options.required_shards > 0 && rec.shard_count < options.required_shards) {
    refuse(4011, "Sharding required.");
  } else if (const auto last = identify_buckets.find(bucket);
             options.identify_interval.count() > 0 && last != identify_buckets.end() &&
             now - last->second < options.identify_interval) {
    rec.invalid_session = true;
    ++identify_violations;
    enqueue(gc, OutItem{OutItem::Kind::text, discord_wire::control_payload(9, false), 0, ""});
  } else if (limit.remaining <= 0) {
    // Over the daily IDENTIFY budget: Discord ends every session and resets the token.
    token_was_reset = true;
    for (auto& [id, other] : conns) close_conn(*other, 4004, "Authentication failed.");
    for (auto& [id, s] : sessions) s->invalid = true;
    rec.close_code = 4004;
  } else {
    --limit.remaining;
    identify_buckets[bucket] = now;
    auto s = std::make_shared<Session>();
    s->id = discord_wire::random_hex(32);
    s->shard_id = rec.shard_id;
    s->shard_count = rec.shard_count;
    s->intents = rec.intents;
    s->order = ++next_session;
    s->connection = gc.id;
    sessions[s->id] = s;
    gc.identified = true;
    gc.session_id = s->id;
    rec.session_id = s->id;
    const std::vector<std::string> guild_ids = guild_ids_of(s->shard_id, s->shard_count);
    json guilds = json::array();
    for (const auto& id : guild_ids) guilds.push_back({{"id", id}, {"unavailable", true}});
    json ready = {
        {"v", discord_wire::kApiVersion},
        {"user", discord_wire::user_json(bot)},
        {"session_id", s->id},
        {"session_type", "normal"},
        {"resume_gateway_url", fmt::format("ws://127.0.0.1:{}/resume-gw", server.port())},
        {"guilds", std::move(guilds)},
        {"private_channels", json::array()},
        {"relationships", json::array()},
        {"user_settings", json::object()},
        {"shard", {s->shard_id, s->shard_count}},
        {"application", {{"id", options.application_id}, {"flags", options.application_flags}}},
        {"_trace", json::array({"[\"fake-discord-session\"]"})}};
    dispatch(*s, "READY", std::move(ready));
    if (!options.apply_intents || (s->intents & discord_intent::kGuilds) != 0) {
      for (const auto& g : options.guilds) {
        if (discord_wire::owned_by(g.id, s->shard_id, s->shard_count)) {
          dispatch(*s, "GUILD_CREATE", guild_create(g));
        }
      }
    }
  }
  identifies.push_back(std::move(rec));
}

void FakeDiscord::Impl::resume(GatewayConn& gc, const json& d) {
  GatewayResume rec;
  rec.connection = gc.id;
  rec.session_id = discord_wire::str(d, "session_id");
  const json seq = d.is_object() ? d.value("seq", json(nullptr)) : json(nullptr);
  rec.seq = seq.is_number_integer() ? seq.get<int64_t>() : 0;
  const auto it = sessions.find(rec.session_id);
  if (gc.identified) {
    rec.close_code = 4005;
    close_conn(gc, 4005, "Already authenticated.");
  } else if (discord_wire::str(d, "token") != options.token || token_was_reset) {
    rec.close_code = 4004;
    close_conn(gc, 4004, "Authentication failed.");
  } else if (it == sessions.end() || !alive(*it->second, Clock::now())) {
    enqueue(gc, OutItem{OutItem::Kind::text, discord_wire::control_payload(9, false), 0, ""});
  } else if (rec.seq > it->second->seq) {
    gc.session_id = rec.session_id;  // 4007 ends it
    rec.close_code = 4007;
    close_conn(gc, 4007, "Invalid seq.");
  } else {
    Session& s = *it->second;
    if (s.connection != 0) {
      if (auto old = conns.find(s.connection); old != conns.end()) {
        enqueue(*old->second, OutItem{OutItem::Kind::drop, "", 0, ""});
      }
    }
    s.connection = gc.id;
    gc.identified = true;
    gc.session_id = s.id;
    for (const auto& [s_seq, text] : s.history) {
      if (s_seq <= rec.seq) continue;
      enqueue(gc, OutItem{OutItem::Kind::text, text, 0, ""});
      ++rec.replayed;
    }
    json resumed = json::object();
    resumed["_trace"] = json::array({"[\"fake-discord-resume\"]"});
    dispatch(s, "RESUMED", std::move(resumed));
    rec.resumed = true;
  }
  resumes.push_back(std::move(rec));
}

// --- FakeDiscord -------------------------------------------------------------------------------

FakeDiscord::FakeDiscord() : FakeDiscord(Options{}) {}
FakeDiscord::FakeDiscord(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
FakeDiscord::~FakeDiscord() = default;

void FakeDiscord::stop() { impl_->server.stop(); }

uint16_t FakeDiscord::port() const { return impl_->server.port(); }
std::string FakeDiscord::api_base() const { return fmt::format("http://127.0.0.1:{}/api", port()); }
std::string FakeDiscord::gateway_url() const {
  return fmt::format("ws://127.0.0.1:{}/gateway", port());
}
std::string FakeDiscord::resume_gateway_url() const {
  return fmt::format("ws://127.0.0.1:{}/resume-gw", port());
}

std::string FakeDiscord::token() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->options.token;
}

std::string FakeDiscord::bot_id() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->bot.id;
}

std::string FakeDiscord::application_id() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->options.application_id;
}

std::vector<FakeDiscordGuild> FakeDiscord::guilds() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->options.guilds;
}

std::string FakeDiscord::snowflake() { return std::to_string(discord_wire::next_snowflake()); }

std::string FakeDiscord::snowflake_for_shard(int shard, int shard_count) {
  return std::to_string(discord_wire::next_snowflake(shard, std::max(1, shard_count)));
}

void FakeDiscord::set_privileged_intents(int64_t intents) {
  const std::lock_guard lock(impl_->mu);
  impl_->options.privileged_intents = intents;
}

void FakeDiscord::set_session_start_limit(SessionStartLimit limit) {
  const std::lock_guard lock(impl_->mu);
  impl_->options.session_start_limit = limit;
}

FakeDiscord::SessionStartLimit FakeDiscord::session_start_limit() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->options.session_start_limit;
}

void FakeDiscord::add_guild(FakeDiscordGuild guild) {
  const std::lock_guard lock(impl_->mu);
  impl_->prepare_guild(guild);
  impl_->options.guilds.push_back(std::move(guild));
}

void FakeDiscord::push_fault(const std::string& route, DiscordFault fault) {
  const std::lock_guard lock(impl_->mu);
  impl_->faults[route].push_back(std::move(fault));
}

std::string FakeDiscord::inject_message(FakeDiscordMessage message) {
  if (message.id.empty()) message.id = snowflake();
  if (message.author.id.empty()) message.author.id = snowflake();
  for (auto& u : message.mentions) {
    if (u.id.empty()) u.id = snowflake();
  }
  const std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  if (im.channels.count(message.channel_id) == 0) {
    FakeDiscordChannel c;
    c.id = message.channel_id;
    c.name = message.guild_id.empty() ? "" : "channel";
    c.type = message.channel_type.value_or(message.guild_id.empty() ? 1 : 0);
    im.register_channel(c, message.guild_id);
    if (message.guild_id.empty()) {
      im.channels[c.id].object["recipients"] =
          json::array({discord_wire::user_json(message.author)});
    }
  }
  json mentions = json::array();
  for (const auto& u : message.mentions) mentions.push_back(discord_wire::user_json(u));
  json m = {{"id", message.id},
            {"type", message.reply_to.empty() ? 0 : 19},
            {"channel_id", message.channel_id},
            {"author", discord_wire::user_json(message.author)},
            {"content", message.content},
            {"timestamp", discord_wire::snowflake_timestamp(message.id)},
            {"edited_timestamp", nullptr},
            {"tts", false},
            {"mention_everyone", message.mention_everyone},
            {"mentions", std::move(mentions)},
            {"mention_roles", json::array()},
            {"attachments", json::array()},
            {"embeds", json::array()},
            {"components", json::array()},
            {"pinned", false},
            {"flags", 0}};
  if (!message.reply_to.empty()) {
    json ref = {{"type", 0}, {"message_id", message.reply_to}, {"channel_id", message.channel_id}};
    if (!message.guild_id.empty()) ref["guild_id"] = message.guild_id;
    m["message_reference"] = std::move(ref);
    const auto parent = im.find_message(message.reply_to);
    m["referenced_message"] = parent ? *parent : json(nullptr);
  }
  if (message.channel_type) m["channel_type"] = *message.channel_type;
  if (message.thread) {
    if (message.thread->id.empty()) message.thread->id = message.id;
    if (!discord_wire::is_thread(message.thread->type)) message.thread->type = 11;
    if (message.thread->parent_id.empty()) message.thread->parent_id = message.channel_id;
    m["thread"] = discord_wire::channel_json(*message.thread, message.guild_id);
    im.register_channel(*message.thread, message.guild_id);
  }
  if (message.extra.is_object()) m.update(message.extra);
  im.store_message(message.channel_id, m);
  im.dispatch_message(m, message.guild_id);
  im.changed();
  return message.id;
}

std::string FakeDiscord::inject_thread_create(const std::string& guild_id,
                                              FakeDiscordChannel thread, bool newly_created) {
  if (thread.id.empty()) thread.id = snowflake();
  if (!discord_wire::is_thread(thread.type)) thread.type = 11;
  const std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  im.register_channel(thread, guild_id);
  json d = discord_wire::channel_json(thread, guild_id);
  if (newly_created) d["newly_created"] = true;
  for (Impl::Session* s : im.sessions_for(guild_id)) {
    if (im.options.apply_intents && (s->intents & discord_intent::kGuilds) == 0) continue;
    im.dispatch(*s, "THREAD_CREATE", d);
  }
  im.changed();
  return thread.id;
}

FakeDiscordInteractionHandle FakeDiscord::inject_interaction(FakeDiscordInteraction interaction) {
  if (interaction.user.id.empty()) interaction.user.id = snowflake();
  const std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  Impl::Interaction in;
  in.id = snowflake();
  in.token = "aW50ZXJhY3Rpb24" + discord_wire::random_hex(48);
  in.channel_id = interaction.channel_id;
  in.created = Clock::now();
  std::string command_id = interaction.command_id;
  for (const std::string& scope : {interaction.guild_id, std::string()}) {
    if (!command_id.empty()) break;
    const auto it = im.commands.find(scope);
    if (it == im.commands.end()) continue;
    for (const auto& c : it->second) {
      if (discord_wire::str(c, "name") == interaction.command_name)
        command_id = discord_wire::str(c, "id");
    }
  }
  if (command_id.empty()) command_id = snowflake();
  json data = {
      {"id", command_id}, {"name", interaction.command_name}, {"type", interaction.command_type}};
  if (!interaction.options.empty()) data["options"] = interaction.options;
  if (!interaction.guild_id.empty()) data["guild_id"] = interaction.guild_id;
  const int channel_type = interaction.guild_id.empty() ? 1 : 0;
  json d = {{"id", in.id},
            {"application_id", im.options.application_id},
            {"type", 2},
            {"data", std::move(data)},
            {"channel_id", interaction.channel_id},
            {"channel", {{"id", interaction.channel_id}, {"type", channel_type}}},
            {"token", in.token},
            {"version", 1},
            {"locale", "en-US"},
            {"app_permissions", "2248473465835073"},
            {"entitlements", json::array()},
            {"context", interaction.guild_id.empty() ? 1 : 0},
            {"attachment_size_limit", 10485760}};
  // Installed to the guild (owner type 0), or used in a DM with the bot.
  d["authorizing_integration_owners"] = json::object();
  d["authorizing_integration_owners"]["0"] =
      interaction.guild_id.empty() ? std::string("0") : interaction.guild_id;
  if (interaction.guild_id.empty()) {
    d["user"] = discord_wire::user_json(interaction.user);
  } else {
    d["guild_id"] = interaction.guild_id;
    d["guild_locale"] = "en-US";
    json member = discord_wire::member_json();
    member["user"] = discord_wire::user_json(interaction.user);
    member["permissions"] = "2248473465835073";
    d["member"] = std::move(member);
  }
  if (interaction.extra.is_object()) d.update(interaction.extra);
  if (im.channels.count(interaction.channel_id) == 0 && !interaction.channel_id.empty()) {
    FakeDiscordChannel c;
    c.id = interaction.channel_id;
    c.type = channel_type;
    im.register_channel(c, interaction.guild_id);
  }
  for (Impl::Session* s : im.sessions_for(interaction.guild_id)) {
    im.dispatch(*s, "INTERACTION_CREATE", d);
  }
  FakeDiscordInteractionHandle handle{in.id, in.token};
  im.interactions[in.id] = std::move(in);
  im.changed();
  return handle;
}

void FakeDiscord::inject_dispatch(const std::string& type, json d) {
  const std::string guild_id = discord_wire::str(d, "guild_id");
  const std::lock_guard lock(impl_->mu);
  for (Impl::Session* s : impl_->sessions_for(guild_id)) impl_->dispatch(*s, type, d);
  impl_->changed();
}

bool FakeDiscord::send_reconnect(GatewayTarget target) {
  const std::lock_guard lock(impl_->mu);
  return impl_->send_to(target, Impl::OutItem{Impl::OutItem::Kind::text,
                                              discord_wire::control_payload(7, nullptr), 0, ""});
}

bool FakeDiscord::send_invalid_session(GatewayTarget target, bool resumable) {
  const std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  auto* gc = im.find_target(target);
  if (gc == nullptr) return false;
  if (!resumable) {
    if (const auto it = im.sessions.find(gc->session_id); it != im.sessions.end()) {
      it->second->invalid = true;
      it->second->connection = 0;
    }
    gc->identified = false;  // it may IDENTIFY again, on this connection or another
  }
  const bool queued = im.enqueue(
      *gc,
      Impl::OutItem{Impl::OutItem::Kind::text, discord_wire::control_payload(9, resumable), 0, ""});
  im.changed();
  return queued;
}

bool FakeDiscord::request_heartbeat(GatewayTarget target) {
  const std::lock_guard lock(impl_->mu);
  return impl_->send_to(target, Impl::OutItem{Impl::OutItem::Kind::text,
                                              discord_wire::control_payload(1, nullptr), 0, ""});
}

bool FakeDiscord::send_payload(GatewayTarget target, const json& payload) {
  const std::lock_guard lock(impl_->mu);
  return impl_->send_to(target, Impl::OutItem{Impl::OutItem::Kind::text, payload.dump(), 0, ""});
}

bool FakeDiscord::close(GatewayTarget target, int code, const std::string& reason) {
  const std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  auto* gc = im.find_target(target);
  if (gc == nullptr) return false;
  im.close_conn(*gc, code, reason);
  im.changed();
  return true;
}

bool FakeDiscord::drop(GatewayTarget target) {
  const std::lock_guard lock(impl_->mu);
  return impl_->send_to(target, Impl::OutItem{Impl::OutItem::Kind::drop, "", 0, ""});
}

void FakeDiscord::withhold_acks(bool withhold) {
  const std::lock_guard lock(impl_->mu);
  impl_->withhold = withhold;
}

void FakeDiscord::expire_sessions() {
  const std::lock_guard lock(impl_->mu);
  for (auto& [id, s] : impl_->sessions) {
    if (s->connection == 0) s->invalid = true;
  }
  impl_->changed();
}

std::vector<GatewayConnectionInfo> FakeDiscord::connections() const {
  const std::lock_guard lock(impl_->mu);
  std::vector<GatewayConnectionInfo> out;
  for (const auto& [id, gc] : impl_->conns) {
    GatewayConnectionInfo info;
    info.id = id;
    info.target = gc->target;
    info.open = gc->open;
    info.session_id = gc->session_id;
    if (const auto it = impl_->sessions.find(gc->session_id); it != impl_->sessions.end()) {
      info.shard = it->second->shard_id;
    }
    info.payloads_received = gc->payloads;
    info.close_code = gc->close_code;
    info.closed_by_client = gc->closed_by_client;
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<GatewayIdentify> FakeDiscord::identifies() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->identifies;
}

std::vector<GatewayResume> FakeDiscord::resumes() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->resumes;
}

std::vector<GatewayHeartbeat> FakeDiscord::heartbeats() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->heartbeats;
}

std::optional<GatewaySessionInfo> FakeDiscord::session(int shard) const {
  const std::lock_guard lock(impl_->mu);
  const auto now = Clock::now();
  const Impl::Session* best = nullptr;
  for (const auto& [id, s] : impl_->sessions) {
    if (s->shard_id != shard || !impl_->alive(*s, now)) continue;
    const bool better = best == nullptr || (s->connection != 0) > (best->connection != 0) ||
                        ((s->connection != 0) == (best->connection != 0) && s->order > best->order);
    if (better) best = s.get();
  }
  if (best == nullptr) return std::nullopt;
  return GatewaySessionInfo{best->id,      best->shard_id, best->shard_count,
                            best->intents, best->seq,      best->connection,
                            true};
}

bool FakeDiscord::shard_connected(int shard) const {
  const std::lock_guard lock(impl_->mu);
  for (const auto& [id, s] : impl_->sessions) {
    if (s->shard_id == shard && s->connection != 0 && !s->invalid) return true;
  }
  return false;
}

size_t FakeDiscord::identify_rate_violations() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->identify_violations;
}

bool FakeDiscord::token_reset() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->token_was_reset;
}

std::vector<DiscordRequest> FakeDiscord::requests() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->requests;
}

size_t FakeDiscord::rate_limit_violations() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->violations;
}

std::vector<DiscordCreatedMessage> FakeDiscord::created_messages() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->created;
}

size_t FakeDiscord::nonce_dedupes() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->dedupes;
}

std::vector<DiscordTyping> FakeDiscord::typing() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->typings;
}

std::vector<DiscordInteractionCallback> FakeDiscord::interaction_callbacks() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->callbacks;
}

std::vector<DiscordWebhookMessage> FakeDiscord::webhook_messages() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->webhook_messages;
}

std::vector<DiscordCommandsPut> FakeDiscord::command_puts() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->command_puts;
}

bool FakeDiscord::wait_for(const std::function<bool()>& done, milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    uint64_t seen = 0;
    {
      const std::lock_guard lock(impl_->mu);
      seen = impl_->generation;
    }
    if (done()) return true;
    std::unique_lock lock(impl_->mu);
    // Sessions expire with time alone: look again at least every 50 ms.
    const auto until = std::min(deadline, Clock::now() + milliseconds(50));
    impl_->cv.wait_until(lock, until, [&] { return impl_->generation != seen; });
    if (Clock::now() >= deadline && impl_->generation == seen) {
      lock.unlock();
      return done();
    }
  }
}

bool FakeDiscord::wait_ready(int shard, milliseconds timeout) const {
  return wait_for([&] { return shard_connected(shard); }, timeout);
}

bool FakeDiscord::wait_disconnected(int shard, milliseconds timeout) const {
  return wait_for([&] { return !shard_connected(shard); }, timeout);
}

bool FakeDiscord::wait_identifies(size_t n, milliseconds timeout) const {
  return wait_for([&] { return identifies().size() >= n; }, timeout);
}

bool FakeDiscord::wait_resumes(size_t n, milliseconds timeout) const {
  return wait_for([&] { return resumes().size() >= n; }, timeout);
}

bool FakeDiscord::wait_heartbeats(size_t n, milliseconds timeout) const {
  return wait_for([&] { return heartbeats().size() >= n; }, timeout);
}

bool FakeDiscord::wait_created_messages(size_t n, milliseconds timeout) const {
  return wait_for([&] { return created_messages().size() >= n; }, timeout);
}

}  // namespace parley::fakes
