// Tests of the fake Discord itself: the gateway through a small Beast WebSocket client driven
// by the test thread (blocking reads with a deadline, no sleeps for ordering), the REST API
// through plain blocking curl. Lifecycle (HELLO, IDENTIFY → READY + GUILD_CREATE, heartbeats,
// RESUME with replay, op 9), close codes, intents, sharding, controls; REST auth, messages,
// enforce_nonce, rate limits (headers, per-route and global 429s, violations), GET messages,
// interactions, commands, scripted faults; stop() with open gateway connections.
#include "fakes/fake_discord.h"

// clang-format off
#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros
// clang-format on

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.h"

namespace parley::fakes {
namespace fake_discord_test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Response = parley::testing::HttpResult;

constexpr milliseconds kWait{5000};
constexpr int64_t kAllIntents = 37377;       // GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | CONTENT
constexpr int64_t kNoContentIntents = 4609;  // the same without MESSAGE_CONTENT

// A gateway client for tests: connects and handshakes at construction (throws when it cannot),
// then keeps one read pending; next() runs the client's own io_context on the calling thread
// until a payload arrives, the connection ends or the deadline passes.
class GatewayClient {
 public:
  explicit GatewayClient(uint16_t port, const std::string& target = "/?v=10&encoding=json")
      : ws_(ioc_) {
    ws_.next_layer().connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    ws_.handshake("127.0.0.1:" + std::to_string(port), target);
    arm_read();
  }
  GatewayClient(const GatewayClient&) = delete;
  GatewayClient& operator=(const GatewayClient&) = delete;
  ~GatewayClient() {
    boost::system::error_code ec;
    ws_.next_layer().close(ec);
  }

  // The next payload; nullopt after `timeout` or when the connection has ended.
  std::optional<json> next(milliseconds timeout = kWait) {
    const auto deadline = Clock::now() + timeout;
    ioc_.restart();
    while (inbox_.empty() && !ended_ && Clock::now() < deadline) ioc_.run_one_until(deadline);
    if (inbox_.empty()) return std::nullopt;
    json j = std::move(inbox_.front());
    inbox_.pop_front();
    return j;
  }

  // The next payload, which must be a dispatch of type `t`.
  json next_dispatch(const std::string& t) {
    auto p = next();
    if (!p) {
      ADD_FAILURE() << "no " << t << " dispatch";
      return json();
    }
    EXPECT_EQ((*p)["op"], 0) << p->dump();
    EXPECT_EQ((*p)["t"], t) << p->dump();
    return *p;
  }

  void send(const json& payload) {
    const std::string text = payload.dump();
    bool done = false;
    ws_.async_write(asio::buffer(text), [&](boost::system::error_code ec, size_t) {
      done = true;
      write_error_ = ec;
    });
    ioc_.restart();
    while (!done) ioc_.run_one();
  }

  void identify(const std::string& token, int64_t intents = kAllIntents,
                std::optional<std::pair<int, int>> shard = std::nullopt) {
    json d = {{"token", token},
              {"intents", intents},
              {"properties", {{"os", "linux"}, {"browser", "parley"}, {"device", "parley"}}}};
    if (shard) d["shard"] = {shard->first, shard->second};
    send({{"op", 2}, {"d", d}});
  }

  // HELLO, IDENTIFY, READY; returns READY's d.
  json handshake(const std::string& token, int64_t intents = kAllIntents,
                 std::optional<std::pair<int, int>> shard = std::nullopt) {
    auto hello = next();
    EXPECT_TRUE(hello && (*hello)["op"] == 10);
    identify(token, intents, shard);
    return next_dispatch("READY")["d"];
  }

  // Runs until the connection has ended; false after `timeout`.
  bool wait_ended(milliseconds timeout = kWait) {
    const auto deadline = Clock::now() + timeout;
    ioc_.restart();
    while (!ended_ && Clock::now() < deadline) ioc_.run_one_until(deadline);
    return ended_;
  }

  void close(uint16_t code) {
    bool done = false;
    ws_.async_close(websocket::close_reason(code), [&](boost::system::error_code) { done = true; });
    ioc_.restart();
    const auto deadline = Clock::now() + kWait;
    while (!done && Clock::now() < deadline) ioc_.run_one_until(deadline);
  }

  [[nodiscard]] bool ended() const { return ended_; }
  // The close frame's code; 0 when the connection ended without one.
  [[nodiscard]] int close_code() const { return close_code_; }

 private:
  void arm_read() {
    ws_.async_read(buffer_, [this](boost::system::error_code ec, size_t) {
      if (ec) {
        ended_ = true;
        if (ec == websocket::error::closed) close_code_ = static_cast<int>(ws_.reason().code);
        return;
      }
      inbox_.push_back(json::parse(beast::buffers_to_string(buffer_.data()), nullptr, false));
      buffer_.consume(buffer_.size());
      arm_read();
    });
  }

  asio::io_context ioc_;
  websocket::stream<asio::ip::tcp::socket> ws_;
  beast::flat_buffer buffer_;
  std::deque<json> inbox_;
  bool ended_ = false;
  int close_code_ = 0;
  boost::system::error_code write_error_;
};

// --- REST helpers ------------------------------------------------------------------------------

// A request to /api/v10`path` with "Authorization: `auth`" (none when empty; by default
// "Bot <the token>").
Response call(const FakeDiscord& fake, const std::string& method, const std::string& path,
              std::optional<json> body = std::nullopt, std::optional<std::string> auth = {}) {
  parley::testing::HttpRequest request;
  request.method = method;
  request.url = fake.api_base() + "/v10" + path;
  const std::string a = auth ? *auth : "Bot " + fake.token();
  if (!a.empty()) request.headers.push_back("Authorization: " + a);
  request.headers.emplace_back("User-Agent: DiscordBot (https://example.org/parley, 0.1)");
  if (body) {
    request.body = body->dump();
    request.headers.emplace_back("Content-Type: application/json");
  }
  request.timeout = milliseconds(10'000);
  return parley::testing::http_perform(request);
}

Response get(const FakeDiscord& fake, const std::string& path) { return call(fake, "GET", path); }

Response post(const FakeDiscord& fake, const std::string& path, const json& body) {
  return call(fake, "POST", path, body);
}

class FakeDiscordTest : public ::testing::Test {
 protected:
  void SetUp() override { curl_global_init(CURL_GLOBAL_DEFAULT); }
  void TearDown() override { curl_global_cleanup(); }

  // One guild with a text channel, fast heartbeats, no IDENTIFY pacing (tests that check it
  // turn it on).
  static FakeDiscord::Options options() {
    FakeDiscord::Options o;
    o.heartbeat_interval = milliseconds(500);
    o.identify_interval = milliseconds(0);
    FakeDiscordGuild g;
    g.name = "parley-lab";
    g.channels.push_back(FakeDiscordChannel{
        .id = "", .name = "general", .type = 0, .parent_id = "", .owner_id = ""});
    o.guilds.push_back(g);
    return o;
  }

  static FakeDiscordMessage guild_message(const FakeDiscord& fake, const std::string& content) {
    const FakeDiscordGuild g = fake.guilds().front();
    FakeDiscordMessage m;
    m.guild_id = g.id;
    m.channel_id = g.channels.front().id;
    m.author = FakeDiscordUser{.id = "", .username = "alice", .bot = false, .global_name = {}};
    m.content = content;
    return m;
  }

  static std::string channel_of(const FakeDiscord& fake) {
    return fake.guilds().front().channels.front().id;
  }
};

// --- Gateway -----------------------------------------------------------------------------------

TEST_F(FakeDiscordTest, HelloThenIdentifyGivesReadyAndGuildCreate) {
  auto o = options();
  FakeDiscordGuild second;
  second.name = "second";
  o.guilds.push_back(second);
  FakeDiscord fake(o);
  const auto guilds = fake.guilds();
  GatewayClient client(fake.port());  // on "/", where gateway/bot's url + "/?v=10…" leads

  auto hello = client.next();
  ASSERT_TRUE(hello);
  EXPECT_EQ((*hello)["op"], 10);
  EXPECT_EQ((*hello)["d"]["heartbeat_interval"], 500);
  EXPECT_TRUE((*hello)["s"].is_null());

  client.identify(fake.token(), kAllIntents, std::make_pair(0, 1));
  const json ready = client.next_dispatch("READY");
  EXPECT_EQ(ready["s"], 1);
  const json& d = ready["d"];
  EXPECT_EQ(d["v"], 10);
  EXPECT_EQ(d["user"]["id"], fake.bot_id());
  EXPECT_EQ(d["user"]["bot"], true);
  EXPECT_EQ(d["resume_gateway_url"], fake.resume_gateway_url());
  EXPECT_EQ(d["shard"], json::array({0, 1}));
  EXPECT_EQ(d["application"]["id"], fake.application_id());
  ASSERT_EQ(d["guilds"].size(), 2u);
  EXPECT_EQ(d["guilds"][0]["unavailable"], true);
  const std::string session_id = d["session_id"];
  EXPECT_FALSE(session_id.empty());

  for (int i = 0; i < 2; ++i) {
    const json gc = client.next_dispatch("GUILD_CREATE");
    EXPECT_EQ(gc["s"], 2 + i);
    EXPECT_EQ(gc["d"]["id"], guilds[static_cast<size_t>(i)].id);
    EXPECT_EQ(gc["d"]["unavailable"], false);
  }

  ASSERT_TRUE(fake.wait_ready(0));
  const auto ids = fake.identifies();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0].intents, kAllIntents);
  EXPECT_EQ(ids[0].shard_count, 1);
  EXPECT_EQ(ids[0].session_id, session_id);
  EXPECT_EQ(ids[0].payload["properties"]["browser"], "parley");
  EXPECT_EQ(fake.session_start_limit().remaining, 999);
  const auto s = fake.session(0);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->session_id, session_id);
  EXPECT_EQ(s->seq, 3);
  const auto conns = fake.connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].target, "/?v=10&encoding=json");
  EXPECT_TRUE(conns[0].open);
}

TEST_F(FakeDiscordTest, GuildCreateListsChannelsAndThreads) {
  auto o = options();
  o.guilds[0].threads.push_back(FakeDiscordChannel{
      .id = "", .name = "a thread", .type = 11, .parent_id = "", .owner_id = ""});
  FakeDiscord fake(o);
  FakeDiscordGuild added;
  added.name = "added later";
  fake.add_guild(added);
  GatewayClient client(fake.port(), "/gateway?v=10&encoding=json");
  EXPECT_EQ(client.handshake(fake.token())["guilds"].size(), 2u);
  const json g = client.next_dispatch("GUILD_CREATE")["d"];
  ASSERT_EQ(g["channels"].size(), 1u);
  EXPECT_EQ(g["channels"][0]["id"], channel_of(fake));
  EXPECT_EQ(g["channels"][0]["type"], 0);
  EXPECT_EQ(g["channels"][0]["name"], "general");
  ASSERT_EQ(g["threads"].size(), 1u);
  EXPECT_EQ(g["threads"][0]["type"], 11);
  EXPECT_EQ(g["threads"][0]["guild_id"], fake.guilds()[0].id);
  EXPECT_EQ(client.next_dispatch("GUILD_CREATE")["d"]["name"], "added later");
}

TEST_F(FakeDiscordTest, HeartbeatGetsAckUnlessWithheld) {
  FakeDiscord fake(options());
  GatewayClient client(fake.port());
  client.handshake(fake.token());
  client.next_dispatch("GUILD_CREATE");

  client.send({{"op", 1}, {"d", 2}});
  auto ack = client.next();
  ASSERT_TRUE(ack);
  EXPECT_EQ((*ack)["op"], 11);

  // Withheld: the heartbeat is seen, and the next thing the client gets is a later dispatch.
  fake.withhold_acks(true);
  client.send({{"op", 1}, {"d", 2}});
  ASSERT_TRUE(fake.wait_heartbeats(2));
  fake.inject_dispatch("TYPING_START", {{"channel_id", channel_of(fake)}});
  auto after = client.next();
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)["op"], 0) << after->dump();
  const auto beats = fake.heartbeats();
  ASSERT_EQ(beats.size(), 2u);
  EXPECT_TRUE(beats[0].acked);
  EXPECT_FALSE(beats[1].acked);
  EXPECT_EQ(beats[1].d, 2);

  // The fake may ask for a heartbeat at once.
  EXPECT_TRUE(fake.request_heartbeat(0));
  auto ask = client.next();
  ASSERT_TRUE(ask);
  EXPECT_EQ((*ask)["op"], 1);
}

TEST_F(FakeDiscordTest, WrongTokenClosesWith4004) {
  FakeDiscord fake(options());
  GatewayClient client(fake.port());
  ASSERT_TRUE(client.next());  // HELLO
  client.identify("not-the-token");
  ASSERT_TRUE(client.wait_ended());
  EXPECT_EQ(client.close_code(), 4004);
  ASSERT_TRUE(fake.wait_for([&] { return !fake.connections().at(0).open; }));
  EXPECT_EQ(fake.connections()[0].close_code, 4004);
  EXPECT_FALSE(fake.connections()[0].closed_by_client);
  ASSERT_EQ(fake.identifies().size(), 1u);
  EXPECT_EQ(fake.identifies()[0].close_code, 4004);
  EXPECT_EQ(fake.identifies()[0].token, "not-the-token");
  EXPECT_FALSE(fake.session(0));
}

TEST_F(FakeDiscordTest, PrivilegedIntentNotAllowedClosesWith4014) {
  auto o = options();
  o.privileged_intents = 0;  // MESSAGE_CONTENT not switched on in the Portal
  FakeDiscord fake(o);
  GatewayClient refused(fake.port());
  ASSERT_TRUE(refused.next());
  refused.identify(fake.token(), kAllIntents);
  ASSERT_TRUE(refused.wait_ended());
  EXPECT_EQ(refused.close_code(), 4014);

  // Without the privileged bit the same bot gets in; an unknown bit is 4013.
  GatewayClient allowed(fake.port());
  allowed.handshake(fake.token(), kNoContentIntents);
  GatewayClient invalid(fake.port());
  ASSERT_TRUE(invalid.next());
  invalid.identify(fake.token(), int64_t{1} << 40);
  ASSERT_TRUE(invalid.wait_ended());
  EXPECT_EQ(invalid.close_code(), 4013);
}

TEST_F(FakeDiscordTest, InjectedMessagesArriveWithIncreasingSeq) {
  FakeDiscord fake(options());
  GatewayClient client(fake.port());
  client.handshake(fake.token());
  const int64_t guild_create_s = client.next_dispatch("GUILD_CREATE")["s"];

  FakeDiscordMessage first = guild_message(fake, "hello <@bot>");
  first.mentions.push_back(
      FakeDiscordUser{.id = fake.bot_id(), .username = "parley", .bot = true, .global_name = {}});
  const std::string first_id = fake.inject_message(first);
  FakeDiscordMessage dm;
  dm.channel_id = FakeDiscord::snowflake();
  dm.author = FakeDiscordUser{.id = "", .username = "bob", .bot = false, .global_name = {}};
  dm.content = "a DM";
  const std::string dm_id = fake.inject_message(dm);
  FakeDiscordMessage reply = guild_message(fake, "a reply");
  reply.reply_to = first_id;
  fake.inject_message(reply);

  const json a = client.next_dispatch("MESSAGE_CREATE");
  EXPECT_EQ(a["s"], guild_create_s + 1);
  EXPECT_EQ(a["d"]["id"], first_id);
  EXPECT_EQ(a["d"]["content"], "hello <@bot>");
  EXPECT_EQ(a["d"]["guild_id"], fake.guilds()[0].id);
  EXPECT_EQ(a["d"]["author"]["username"], "alice");
  EXPECT_FALSE(a["d"]["author"].contains("bot"));
  EXPECT_EQ(a["d"]["mentions"][0]["id"], fake.bot_id());
  EXPECT_TRUE(a["d"].contains("member"));
  const json b = client.next_dispatch("MESSAGE_CREATE");
  EXPECT_EQ(b["s"], guild_create_s + 2);
  EXPECT_EQ(b["d"]["id"], dm_id);
  EXPECT_FALSE(b["d"].contains("guild_id"));
  const json c = client.next_dispatch("MESSAGE_CREATE");
  EXPECT_EQ(c["s"], guild_create_s + 3);
  EXPECT_EQ(c["d"]["type"], 19);
  EXPECT_EQ(c["d"]["message_reference"]["message_id"], first_id);
  EXPECT_EQ(c["d"]["referenced_message"]["id"], first_id);
  EXPECT_GT(std::stoull(c["d"]["id"].get<std::string>()), std::stoull(first_id));
}

TEST_F(FakeDiscordTest, WithoutMessageContentIntentGuildContentIsEmpty) {
  FakeDiscord fake(options());
  GatewayClient client(fake.port());
  client.handshake(fake.token(), kNoContentIntents);
  client.next_dispatch("GUILD_CREATE");
  fake.inject_message(guild_message(fake, "ambient chatter"));
  FakeDiscordMessage mention = guild_message(fake, "hey <@bot>");
  mention.mentions.push_back(
      FakeDiscordUser{.id = fake.bot_id(), .username = "parley", .bot = true, .global_name = {}});
  fake.inject_message(mention);
  EXPECT_EQ(client.next_dispatch("MESSAGE_CREATE")["d"]["content"], "");
  EXPECT_EQ(client.next_dispatch("MESSAGE_CREATE")["d"]["content"], "hey <@bot>");
}

TEST_F(FakeDiscordTest, DropThenResumeReplaysMissedEventsThenResumed) {
  FakeDiscord fake(options());
  auto client = std::make_unique<GatewayClient>(fake.port());
  const json ready = client->handshake(fake.token());
  client->next_dispatch("GUILD_CREATE");
  fake.inject_message(guild_message(fake, "seen"));
  const int64_t seen_s = client->next_dispatch("MESSAGE_CREATE")["s"];

  ASSERT_TRUE(fake.drop(0));
  ASSERT_TRUE(client->wait_ended());
  EXPECT_EQ(client->close_code(), 0);  // no close frame
  ASSERT_TRUE(fake.wait_disconnected(0));
  const std::string missed1 = fake.inject_message(guild_message(fake, "missed 1"));
  const std::string missed2 = fake.inject_message(guild_message(fake, "missed 2"));

  // resume_gateway_url + "/?v=10…", as a client appends it.
  GatewayClient resumed(fake.port(), "/resume-gw/?v=10&encoding=json");
  ASSERT_TRUE(resumed.next());  // HELLO
  resumed.send(
      {{"op", 6},
       {"d", {{"token", fake.token()}, {"session_id", ready["session_id"]}, {"seq", seen_s}}}});
  const json r1 = resumed.next_dispatch("MESSAGE_CREATE");
  EXPECT_EQ(r1["d"]["id"], missed1);
  EXPECT_EQ(r1["s"], seen_s + 1);
  const json r2 = resumed.next_dispatch("MESSAGE_CREATE");
  EXPECT_EQ(r2["d"]["id"], missed2);
  EXPECT_EQ(r2["s"], seen_s + 2);
  EXPECT_EQ(resumed.next_dispatch("RESUMED")["s"], seen_s + 3);

  fake.inject_message(guild_message(fake, "after"));
  EXPECT_EQ(resumed.next_dispatch("MESSAGE_CREATE")["s"], seen_s + 4);
  const auto resumes = fake.resumes();
  ASSERT_EQ(resumes.size(), 1u);
  EXPECT_TRUE(resumes[0].resumed);
  EXPECT_EQ(resumes[0].replayed, 2u);
  EXPECT_EQ(resumes[0].seq, seen_s);
  EXPECT_EQ(fake.identifies().size(), 1u);
  EXPECT_EQ(fake.connections().back().target, "/resume-gw/?v=10&encoding=json");
}

TEST_F(FakeDiscordTest, ResumeOfUnknownOrExpiredSessionGetsInvalidSessionFalse) {
  FakeDiscord fake(options());
  GatewayClient unknown(fake.port());
  ASSERT_TRUE(unknown.next());
  unknown.send({{"op", 6}, {"d", {{"token", fake.token()}, {"session_id", "nope"}, {"seq", 3}}}});
  auto op9 = unknown.next();
  ASSERT_TRUE(op9);
  EXPECT_EQ((*op9)["op"], 9);
  EXPECT_EQ((*op9)["d"], false);

  // A real session, dropped, then expired (the few minutes passed): op 9 too, and a fresh
  // IDENTIFY does not get what was queued for the old session.
  auto client = std::make_unique<GatewayClient>(fake.port());
  const json ready = client->handshake(fake.token());
  ASSERT_TRUE(fake.drop(0));
  ASSERT_TRUE(fake.wait_disconnected(0));
  fake.inject_message(guild_message(fake, "lost on the gateway"));
  fake.expire_sessions();
  GatewayClient late(fake.port());
  ASSERT_TRUE(late.next());
  late.send({{"op", 6},
             {"d", {{"token", fake.token()}, {"session_id", ready["session_id"]}, {"seq", 1}}}});
  op9 = late.next();
  ASSERT_TRUE(op9);
  EXPECT_EQ((*op9)["op"], 9);
  EXPECT_EQ((*op9)["d"], false);
  late.identify(fake.token());
  const json fresh = late.next_dispatch("READY");
  EXPECT_EQ(fresh["s"], 1);
  EXPECT_NE(fresh["d"]["session_id"], ready["session_id"]);
  late.next_dispatch("GUILD_CREATE");
  fake.inject_message(guild_message(fake, "new"));
  EXPECT_EQ(late.next_dispatch("MESSAGE_CREATE")["d"]["content"], "new");
  ASSERT_EQ(fake.resumes().size(), 2u);
  EXPECT_FALSE(fake.resumes()[1].resumed);
}

TEST_F(FakeDiscordTest, ResumeWithSeqBeyondTheSessionCloses4007) {
  FakeDiscord fake(options());
  auto client = std::make_unique<GatewayClient>(fake.port());
  const json ready = client->handshake(fake.token());
  ASSERT_TRUE(fake.drop(0));
  ASSERT_TRUE(fake.wait_disconnected(0));
  GatewayClient again(fake.port());
  ASSERT_TRUE(again.next());
  again.send({{"op", 6},
              {"d", {{"token", fake.token()}, {"session_id", ready["session_id"]}, {"seq", 99}}}});
  ASSERT_TRUE(again.wait_ended());
  EXPECT_EQ(again.close_code(), 4007);
}

TEST_F(FakeDiscordTest, ControlsReconnectInvalidSessionAndClose) {
  FakeDiscord fake(options());
  GatewayClient client(fake.port());
  const json ready = client.handshake(fake.token());
  client.next_dispatch("GUILD_CREATE");

  EXPECT_TRUE(fake.send_reconnect(0));
  auto op7 = client.next();
  ASSERT_TRUE(op7);
  EXPECT_EQ((*op7)["op"], 7);
  EXPECT_TRUE(fake.send_invalid_session(0, true));
  auto op9 = client.next();
  ASSERT_TRUE(op9);
  EXPECT_EQ((*op9)["op"], 9);
  EXPECT_EQ((*op9)["d"], true);
  EXPECT_TRUE(fake.send_payload(0, {{"op", 0}, {"t", "CUSTOM"}, {"s", 42}, {"d", nullptr}}));
  EXPECT_EQ(client.next_dispatch("CUSTOM")["s"], 42);

  // 4009 ends the session: resuming it afterwards is refused.
  EXPECT_TRUE(fake.close(0, 4009, "Session timed out"));
  ASSERT_TRUE(client.wait_ended());
  EXPECT_EQ(client.close_code(), 4009);
  EXPECT_FALSE(fake.send_reconnect(0));  // nothing holds shard 0 any more
  GatewayClient again(fake.port());
  ASSERT_TRUE(again.next());
  again.send({{"op", 6},
              {"d", {{"token", fake.token()}, {"session_id", ready["session_id"]}, {"seq", 2}}}});
  auto refused = again.next();
  ASSERT_TRUE(refused);
  EXPECT_EQ((*refused)["op"], 9);
}

TEST_F(FakeDiscordTest, ClientCloseWith1000EndsTheSessionOtherCodesKeepIt) {
  FakeDiscord fake(options());
  auto keeps = std::make_unique<GatewayClient>(fake.port());
  keeps->handshake(fake.token());
  keeps->close(4000);
  ASSERT_TRUE(fake.wait_disconnected(0));
  ASSERT_TRUE(fake.session(0));
  EXPECT_TRUE(fake.session(0)->resumable);
  EXPECT_EQ(fake.connections()[0].close_code, 4000);
  EXPECT_TRUE(fake.connections()[0].closed_by_client);

  auto ends = std::make_unique<GatewayClient>(fake.port());
  const json ready = ends->handshake(fake.token());
  ends->close(1000);
  ASSERT_TRUE(fake.wait_disconnected(0));
  const auto s = fake.session(0);
  ASSERT_TRUE(s);  // the first, still resumable one
  EXPECT_NE(s->session_id, ready["session_id"]);
}

TEST_F(FakeDiscordTest, ShardsGetTheirGuildsAndDmsGoToShardZero) {
  auto o = options();
  o.guilds.clear();
  for (int shard = 0; shard < 2; ++shard) {
    FakeDiscordGuild g;
    g.id = FakeDiscord::snowflake_for_shard(shard, 2);
    g.name = "guild of shard " + std::to_string(shard);
    g.channels.push_back(FakeDiscordChannel{
        .id = "", .name = "general", .type = 0, .parent_id = "", .owner_id = ""});
    o.guilds.push_back(g);
  }
  o.recommended_shards = 2;
  FakeDiscord fake(o);
  const auto guilds = fake.guilds();
  GatewayClient shard0(fake.port());
  const json r0 = shard0.handshake(fake.token(), kAllIntents, std::make_pair(0, 2));
  GatewayClient shard1(fake.port());
  const json r1 = shard1.handshake(fake.token(), kAllIntents, std::make_pair(1, 2));
  ASSERT_EQ(r0["guilds"].size(), 1u);
  EXPECT_EQ(r0["guilds"][0]["id"], guilds[0].id);
  ASSERT_EQ(r1["guilds"].size(), 1u);
  EXPECT_EQ(r1["guilds"][0]["id"], guilds[1].id);
  EXPECT_EQ(shard0.next_dispatch("GUILD_CREATE")["d"]["id"], guilds[0].id);
  EXPECT_EQ(shard1.next_dispatch("GUILD_CREATE")["d"]["id"], guilds[1].id);
  EXPECT_EQ(get(fake, "/gateway/bot").json()["shards"], 2);

  FakeDiscordMessage to1;
  to1.guild_id = guilds[1].id;
  to1.channel_id = guilds[1].channels[0].id;
  to1.content = "for shard 1";
  fake.inject_message(to1);
  FakeDiscordMessage dm;
  dm.channel_id = FakeDiscord::snowflake();
  dm.content = "a DM";
  fake.inject_message(dm);
  EXPECT_EQ(shard1.next_dispatch("MESSAGE_CREATE")["d"]["content"], "for shard 1");
  EXPECT_EQ(shard0.next_dispatch("MESSAGE_CREATE")["d"]["content"], "a DM");
  // Neither got the other's: the next each sees is what comes after.
  fake.inject_dispatch("PING_0", json::object());
  fake.inject_dispatch("PING_1", {{"guild_id", guilds[1].id}});
  EXPECT_EQ(shard0.next_dispatch("PING_0")["t"], "PING_0");
  EXPECT_EQ(shard1.next_dispatch("PING_1")["t"], "PING_1");

  // An invalid shard is 4010.
  GatewayClient bad(fake.port());
  ASSERT_TRUE(bad.next());
  bad.identify(fake.token(), kAllIntents, std::make_pair(2, 2));
  ASSERT_TRUE(bad.wait_ended());
  EXPECT_EQ(bad.close_code(), 4010);
}

TEST_F(FakeDiscordTest, ShardingRequiredCloses4011) {
  auto o = options();
  o.required_shards = 2;
  FakeDiscord fake(o);
  GatewayClient client(fake.port());
  ASSERT_TRUE(client.next());
  client.identify(fake.token());
  ASSERT_TRUE(client.wait_ended());
  EXPECT_EQ(client.close_code(), 4011);
}

TEST_F(FakeDiscordTest, SecondConnectionOnTheSameShardIsAllowedAndRecorded) {
  FakeDiscord fake(options());
  GatewayClient a(fake.port());
  a.handshake(fake.token());
  a.next_dispatch("GUILD_CREATE");
  GatewayClient b(fake.port());
  b.handshake(fake.token());
  b.next_dispatch("GUILD_CREATE");
  fake.inject_message(guild_message(fake, "to both"));
  EXPECT_EQ(a.next_dispatch("MESSAGE_CREATE")["d"]["content"], "to both");
  EXPECT_EQ(b.next_dispatch("MESSAGE_CREATE")["d"]["content"], "to both");
  const auto ids = fake.identifies();
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0].shard_id, ids[1].shard_id);
  EXPECT_NE(ids[0].session_id, ids[1].session_id);
}

TEST_F(FakeDiscordTest, IdentifyFasterThanMaxConcurrencyGetsInvalidSession) {
  auto o = options();
  o.identify_interval = milliseconds(60'000);
  FakeDiscord fake(o);
  GatewayClient a(fake.port());
  a.handshake(fake.token());
  GatewayClient b(fake.port());
  ASSERT_TRUE(b.next());
  b.identify(fake.token());
  auto op9 = b.next();
  ASSERT_TRUE(op9);
  EXPECT_EQ((*op9)["op"], 9);
  EXPECT_EQ((*op9)["d"], false);
  EXPECT_EQ(fake.identify_rate_violations(), 1u);
  EXPECT_TRUE(fake.identifies()[1].invalid_session);
}

TEST_F(FakeDiscordTest, IdentifyOverTheDailyLimitResetsTheToken) {
  auto o = options();
  o.session_start_limit.remaining = 1;
  FakeDiscord fake(o);
  GatewayClient first(fake.port());
  first.handshake(fake.token());
  EXPECT_EQ(get(fake, "/gateway/bot").json()["session_start_limit"]["remaining"], 0);
  GatewayClient second(fake.port());
  ASSERT_TRUE(second.next());
  second.identify(fake.token());
  ASSERT_TRUE(second.wait_ended());
  EXPECT_EQ(second.close_code(), 4004);
  ASSERT_TRUE(first.wait_ended());
  EXPECT_EQ(first.close_code(), 4004);
  EXPECT_TRUE(fake.token_reset());
  EXPECT_EQ(get(fake, "/users/@me").status, 401);
}

TEST_F(FakeDiscordTest, GatewaySendLimitCloses4008) {
  auto o = options();
  o.gateway_send_limit = 5;
  FakeDiscord fake(o);
  GatewayClient client(fake.port());
  client.handshake(fake.token());
  for (int i = 0; i < 5; ++i) client.send({{"op", 1}, {"d", 1}});  // 6 with IDENTIFY
  ASSERT_TRUE(client.wait_ended());
  EXPECT_EQ(client.close_code(), 4008);
  EXPECT_EQ(fake.heartbeats().size(), 4u);
}

TEST_F(FakeDiscordTest, ProtocolErrorsCloseWithTheirCodes) {
  FakeDiscord fake(options());
  GatewayClient early(fake.port());
  ASSERT_TRUE(early.next());
  early.send({{"op", 3}, {"d", {{"status", "online"}}}});  // presence before IDENTIFY
  ASSERT_TRUE(early.wait_ended());
  EXPECT_EQ(early.close_code(), 4003);

  GatewayClient unknown(fake.port());
  ASSERT_TRUE(unknown.next());
  unknown.send({{"op", 42}, {"d", nullptr}});
  ASSERT_TRUE(unknown.wait_ended());
  EXPECT_EQ(unknown.close_code(), 4001);

  GatewayClient big(fake.port());
  ASSERT_TRUE(big.next());
  big.send({{"op", 1}, {"d", std::string(5000, 'x')}});
  ASSERT_TRUE(big.wait_ended());
  EXPECT_EQ(big.close_code(), 4002);

  GatewayClient twice(fake.port());
  twice.handshake(fake.token());
  twice.identify(fake.token());
  ASSERT_TRUE(twice.wait_ended());
  EXPECT_EQ(twice.close_code(), 4005);

  GatewayClient version(fake.port(), "/?v=6&encoding=json");
  ASSERT_TRUE(version.wait_ended());
  EXPECT_EQ(version.close_code(), 4012);

  EXPECT_THROW(GatewayClient(fake.port(), "/elsewhere"), boost::system::system_error);
}

TEST_F(FakeDiscordTest, ThreadCreateAndInteractionArrive) {
  FakeDiscord fake(options());
  GatewayClient client(fake.port());
  client.handshake(fake.token());
  client.next_dispatch("GUILD_CREATE");
  const std::string guild = fake.guilds()[0].id;
  FakeDiscordChannel thread{
      .id = "", .name = "topic", .type = 11, .parent_id = channel_of(fake), .owner_id = ""};
  const std::string thread_id = fake.inject_thread_create(guild, thread);
  const json t = client.next_dispatch("THREAD_CREATE")["d"];
  EXPECT_EQ(t["id"], thread_id);
  EXPECT_EQ(t["parent_id"], channel_of(fake));
  EXPECT_EQ(t["newly_created"], true);
  EXPECT_EQ(get(fake, "/channels/" + thread_id).json()["type"], 11);

  FakeDiscordInteraction in;
  in.guild_id = guild;
  in.channel_id = channel_of(fake);
  in.options = json::array({{{"name", "prompt"}, {"type", 3}, {"value", "hi"}}});
  const auto handle = fake.inject_interaction(in);
  const json i = client.next_dispatch("INTERACTION_CREATE")["d"];
  EXPECT_EQ(i["id"], handle.id);
  EXPECT_EQ(i["token"], handle.token);
  EXPECT_EQ(i["type"], 2);
  EXPECT_EQ(i["data"]["name"], "ask");
  EXPECT_EQ(i["data"]["options"][0]["value"], "hi");
  EXPECT_TRUE(i["member"]["user"].contains("id"));
}

TEST_F(FakeDiscordTest, StopClosesOpenGatewayConnectionsPromptly) {
  FakeDiscord fake(options());
  GatewayClient client(fake.port());
  client.handshake(fake.token());
  const auto start = Clock::now();
  fake.stop();
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  ASSERT_TRUE(client.wait_ended(milliseconds(2000)));
  EXPECT_FALSE(fake.connections()[0].open);
}

// --- REST --------------------------------------------------------------------------------------

TEST_F(FakeDiscordTest, RestNeedsTheBotToken) {
  FakeDiscord fake(options());
  for (const std::string& auth :
       {std::string(), std::string("Bot wrong"), "Bearer " + fake.token(), fake.token()}) {
    const Response r = call(fake, "GET", "/users/@me", std::nullopt, auth);
    EXPECT_EQ(r.status, 401) << auth;
    EXPECT_EQ(r.json(), json({{"message", "401: Unauthorized"}, {"code", 0}})) << r.body;
  }
  const Response me = get(fake, "/users/@me");
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(me.json()["id"], fake.bot_id());
  EXPECT_EQ(me.json()["bot"], true);
  EXPECT_EQ(fake.requests().back().user_agent, "DiscordBot (https://example.org/parley, 0.1)");

  const Response gateway = get(fake, "/gateway/bot");
  ASSERT_EQ(gateway.status, 200);
  EXPECT_EQ(gateway.json()["url"], "ws://127.0.0.1:" + std::to_string(fake.port()));
  EXPECT_EQ(gateway.json()["session_start_limit"]["max_concurrency"], 1);
  EXPECT_EQ(get(fake, "/nowhere").status, 404);
  EXPECT_EQ(get(fake, "/nowhere").json()["message"], "404: Not Found");
  EXPECT_EQ(call(fake, "DELETE", "/users/@me", std::nullopt, "Bot " + fake.token()).status, 405);
}

TEST_F(FakeDiscordTest, CreateMessageAndEnforceNonceDedupe) {
  auto o = options();
  o.rate_limits.clear();  // more than 5 creates a second here
  FakeDiscord fake(o);
  const std::string channel = channel_of(fake);
  const json body = {{"content", "hi there"},
                     {"nonce", "turn-17"},
                     {"enforce_nonce", true},
                     {"allowed_mentions", {{"parse", json::array()}}}};
  const Response first = post(fake, "/channels/" + channel + "/messages", body);
  ASSERT_EQ(first.status, 200) << first.body;
  const json m = first.json();
  EXPECT_EQ(m["channel_id"], channel);
  EXPECT_EQ(m["content"], "hi there");
  EXPECT_EQ(m["author"]["id"], fake.bot_id());
  EXPECT_EQ(m["nonce"], "turn-17");
  EXPECT_TRUE(m["timestamp"].is_string());
  EXPECT_GT(m["id"].get<std::string>().size(), 15u);

  const Response retry = post(fake, "/channels/" + channel + "/messages", body);
  ASSERT_EQ(retry.status, 200);
  EXPECT_EQ(retry.json()["id"], m["id"]);
  EXPECT_EQ(fake.created_messages().size(), 1u);
  EXPECT_EQ(fake.nonce_dedupes(), 1u);
  const auto created = fake.created_messages()[0];
  EXPECT_TRUE(created.enforce_nonce);
  EXPECT_EQ(created.allowed_mentions, json({{"parse", json::array()}}));

  // Without enforce_nonce the same nonce makes a new message; a reply carries its parent.
  json plain = {{"content", "again"}, {"nonce", "turn-17"}};
  plain["message_reference"] = {{"message_id", m["id"]}};
  const Response second = post(fake, "/channels/" + channel + "/messages", plain);
  ASSERT_EQ(second.status, 200);
  EXPECT_NE(second.json()["id"], m["id"]);
  EXPECT_EQ(second.json()["referenced_message"]["id"], m["id"]);
  EXPECT_EQ(fake.created_messages().size(), 2u);

  // Discord's refusals.
  EXPECT_EQ(post(fake, "/channels/" + channel + "/messages", {{"content", ""}}).json()["code"],
            50006);
  EXPECT_EQ(post(fake, "/channels/" + channel + "/messages", {{"content", std::string(2001, 'a')}})
                .status,
            400);
  EXPECT_EQ(post(fake, "/channels/" + channel + "/messages",
                 {{"content", "x"}, {"message_reference", {{"message_id", "1234"}}}})
                .json()["code"],
            50035);
  EXPECT_EQ(post(fake, "/channels/1234/messages", {{"content", "x"}}).json()["code"], 10003);

  const Response typing = post(fake, "/channels/" + channel + "/typing", json::object());
  EXPECT_EQ(typing.status, 204);
  EXPECT_EQ(fake.typing().size(), 1u);
}

TEST_F(FakeDiscordTest, BotMessagesAreEchoedOnTheGateway) {
  FakeDiscord fake(options());
  GatewayClient client(fake.port());
  client.handshake(fake.token());
  client.next_dispatch("GUILD_CREATE");
  ASSERT_EQ(post(fake, "/channels/" + channel_of(fake) + "/messages", {{"content", "mine"}}).status,
            200);
  const json echo = client.next_dispatch("MESSAGE_CREATE")["d"];
  EXPECT_EQ(echo["author"]["id"], fake.bot_id());
  EXPECT_EQ(echo["content"], "mine");
}

TEST_F(FakeDiscordTest, RouteLimitAnswers429WithFloatRetryAfter) {
  auto o = options();
  o.rate_limits[discord_route::kCreateMessage] = FakeRateLimit{2, milliseconds(400), ""};
  FakeDiscord fake(o);
  const std::string channel = channel_of(fake);
  const std::string path = "/channels/" + channel + "/messages";
  const Response a = post(fake, path, {{"content", "1"}});
  EXPECT_EQ(a.header("x-ratelimit-remaining"), "1");
  const Response b = post(fake, path, {{"content", "2"}});
  EXPECT_EQ(b.header("x-ratelimit-remaining"), "0");
  const Response c = post(fake, path, {{"content", "3"}});
  ASSERT_EQ(c.status, 429) << c.body;
  const json body = c.json();
  EXPECT_EQ(body["message"], "You are being rate limited.");
  EXPECT_EQ(body["global"], false);
  ASSERT_TRUE(body["retry_after"].is_number_float()) << c.body;
  EXPECT_GT(body["retry_after"].get<double>(), 0.0);
  EXPECT_LE(body["retry_after"].get<double>(), 0.4);
  EXPECT_EQ(c.header("retry-after"), "1");
  EXPECT_EQ(c.header("x-ratelimit-scope"), "user");
  EXPECT_EQ(c.header("x-ratelimit-bucket"), a.header("x-ratelimit-bucket"));
  EXPECT_EQ(fake.rate_limit_violations(), 1u);
  EXPECT_TRUE(fake.requests().back().violation);
  EXPECT_EQ(fake.created_messages().size(), 2u);

  // Another channel is another limit (major parameter), under the same bucket hash.
  FakeDiscordMessage dm;
  dm.channel_id = FakeDiscord::snowflake();
  dm.content = "make the DM channel known";
  fake.inject_message(dm);
  const Response other = post(fake, "/channels/" + dm.channel_id + "/messages", {{"content", "x"}});
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(other.header("x-ratelimit-bucket"), a.header("x-ratelimit-bucket"));

  // After Reset-After the bucket is full again: no violation.
  const double wait = std::stod(b.header("x-ratelimit-reset-after"));
  std::this_thread::sleep_for(std::chrono::duration<double>(wait));
  EXPECT_EQ(post(fake, path, {{"content", "4"}}).status, 200);
  EXPECT_EQ(fake.rate_limit_violations(), 1u);
}

TEST_F(FakeDiscordTest, RateLimitHeadersOnEveryAnswer) {
  FakeDiscord fake(options());
  const Response me = get(fake, "/users/@me");
  for (const char* h : {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                        "x-ratelimit-reset-after", "x-ratelimit-bucket"}) {
    EXPECT_FALSE(me.header(h).empty()) << h;
  }
  const std::string after = me.header("x-ratelimit-reset-after");
  ASSERT_NE(after.find('.'), std::string::npos);
  EXPECT_EQ(after.size() - after.find('.'), 4u) << after;  // three decimals
  EXPECT_GT(std::stod(me.header("x-ratelimit-reset")), 1.7e9);
  const Response msg =
      post(fake, "/channels/" + channel_of(fake) + "/messages", {{"content", "x"}});
  EXPECT_EQ(msg.header("x-ratelimit-limit"), "5");
  EXPECT_NE(msg.header("x-ratelimit-bucket"), me.header("x-ratelimit-bucket"));
  // A 401 carries them too.
  const Response denied = call(fake, "GET", "/users/@me", std::nullopt, "Bot wrong");
  EXPECT_EQ(denied.status, 401);
  EXPECT_FALSE(denied.header("x-ratelimit-bucket").empty());
}

TEST_F(FakeDiscordTest, ScriptedGlobalAndShared429sBlockUntilRetryAfter) {
  FakeDiscord fake(options());
  const std::string path = "/channels/" + channel_of(fake) + "/messages";
  fake.push_fault(discord_route::kCreateMessage, DiscordFault::global_rate_limited(0.3));
  const Response global = post(fake, path, {{"content", "x"}});
  ASSERT_EQ(global.status, 429);
  EXPECT_EQ(global.json()["global"], true);
  EXPECT_DOUBLE_EQ(global.json()["retry_after"].get<double>(), 0.3);
  EXPECT_EQ(global.header("x-ratelimit-global"), "true");
  EXPECT_EQ(global.header("x-ratelimit-scope"), "global");
  EXPECT_TRUE(fake.requests().back().scripted);
  EXPECT_EQ(fake.rate_limit_violations(), 0u);

  // Any route before retry_after is a violation.
  const Response early = get(fake, "/users/@me");
  EXPECT_EQ(early.status, 429);
  EXPECT_EQ(fake.rate_limit_violations(), 1u);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(get(fake, "/users/@me").status, 200);

  fake.push_fault(discord_route::kCreateMessage, DiscordFault::shared_rate_limited(0.2));
  const Response shared = post(fake, path, {{"content", "x"}});
  ASSERT_EQ(shared.status, 429);
  EXPECT_EQ(shared.header("x-ratelimit-scope"), "shared");
  EXPECT_EQ(shared.json()["global"], false);
  EXPECT_TRUE(shared.header("x-ratelimit-global").empty());
  EXPECT_EQ(post(fake, path, {{"content", "too early"}}).status, 429);
  EXPECT_EQ(fake.rate_limit_violations(), 2u);
  EXPECT_EQ(get(fake, "/users/@me").status, 200);  // only that bucket waits
}

TEST_F(FakeDiscordTest, GlobalLimitPerSecond) {
  auto o = options();
  o.global_limit = 3;
  FakeDiscord fake(o);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(get(fake, "/users/@me").status, 200);
  const Response over = get(fake, "/gateway/bot");
  ASSERT_EQ(over.status, 429);
  EXPECT_EQ(over.json()["global"], true);
  EXPECT_EQ(over.header("x-ratelimit-global"), "true");
  EXPECT_EQ(fake.rate_limit_violations(), 1u);
}

TEST_F(FakeDiscordTest, ScriptedErrorsAndDelays) {
  FakeDiscord fake(options());
  fake.push_fault(discord_route::kCurrentUser, DiscordFault::error(502));
  fake.push_fault(discord_route::kCurrentUser, DiscordFault::error(401));
  fake.push_fault(discord_route::kAnyRoute, DiscordFault::raw(503, "<html>busy</html>"));
  fake.push_fault(discord_route::kCurrentUser, DiscordFault::delayed(milliseconds(300)));
  const Response bad_gateway = get(fake, "/users/@me");
  EXPECT_EQ(bad_gateway.status, 502);
  EXPECT_EQ(bad_gateway.json()["message"], "502: Bad Gateway");
  EXPECT_EQ(get(fake, "/users/@me").status, 401);
  const Response delayed = get(fake, "/users/@me");
  EXPECT_EQ(delayed.status, 200);
  EXPECT_GE(delayed.elapsed, milliseconds(280));
  const Response html = get(fake, "/gateway/bot");
  EXPECT_EQ(html.status, 503);
  EXPECT_EQ(html.body, "<html>busy</html>");
  EXPECT_EQ(get(fake, "/users/@me").status, 200);
}

TEST_F(FakeDiscordTest, GetMessagesAfterPagesForwardNewestFirst) {
  FakeDiscord fake(options());
  const std::string channel = channel_of(fake);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(fake.inject_message(guild_message(fake, "m" + std::to_string(i))));
  }
  const Response page =
      get(fake, "/channels/" + channel + "/messages?after=" + ids[1] + "&limit=2");
  ASSERT_EQ(page.status, 200) << page.body;
  const json j = page.json();
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["id"], ids[3]);
  EXPECT_EQ(j[1]["id"], ids[2]);
  EXPECT_EQ(j[1]["content"], "m2");

  const json latest = get(fake, "/channels/" + channel + "/messages?limit=3").json();
  ASSERT_EQ(latest.size(), 3u);
  EXPECT_EQ(latest[0]["id"], ids[4]);
  EXPECT_EQ(latest[2]["id"], ids[2]);
  EXPECT_EQ(get(fake, "/channels/" + channel + "/messages?after=" + ids[4]).json().size(), 0u);
  EXPECT_EQ(get(fake, "/channels/" + channel + "/messages?limit=101").status, 400);
}

TEST_F(FakeDiscordTest, CommandsAndInteractionResponses) {
  FakeDiscord fake(options());
  const std::string app = fake.application_id();
  const json commands =
      json::array({{{"name", "ask"}, {"description", "Ask parley"}, {"type", 1}},
                   {{"name", "forget"}, {"description", "Forget this conversation"}}});
  Response put =
      call(fake, "PUT", "/applications/" + app + "/commands", commands, "Bot " + fake.token());
  ASSERT_EQ(put.status, 200) << put.body;
  ASSERT_EQ(put.json().size(), 2u);
  const std::string ask_id = put.json()[0]["id"];
  EXPECT_EQ(put.json()[0]["application_id"], app);
  put = call(fake, "PUT", "/applications/" + app + "/commands", commands, "Bot " + fake.token());
  EXPECT_EQ(put.json()[0]["id"], ask_id);  // kept across overwrites
  const std::string guild = fake.guilds()[0].id;
  const Response guild_put =
      call(fake, "PUT", "/applications/" + app + "/guilds/" + guild + "/commands", commands,
           "Bot " + fake.token());
  EXPECT_EQ(guild_put.json()[0]["guild_id"], guild);
  EXPECT_EQ(call(fake, "PUT", "/applications/" + app + "/commands",
                 json::array({{{"name", "x"}, {"description", ""}}}), "Bot " + fake.token())
                .status,
            400);
  EXPECT_EQ(fake.command_puts().size(), 3u);

  FakeDiscordInteraction in;
  in.guild_id = guild;
  in.channel_id = channel_of(fake);
  const auto handle = fake.inject_interaction(in);
  const std::string base = "/interactions/" + handle.id + "/" + handle.token + "/callback";
  const Response deferred = call(fake, "POST", base, json{{"type", 5}}, "");  // no auth needed
  EXPECT_EQ(deferred.status, 204) << deferred.body;
  EXPECT_EQ(call(fake, "POST", base, json{{"type", 4}}, "").json()["code"], 40060);
  const Response edit =
      call(fake, "PATCH", "/webhooks/" + app + "/" + handle.token + "/messages/@original",
           json{{"content", "the answer"}}, "");
  ASSERT_EQ(edit.status, 200) << edit.body;
  EXPECT_EQ(edit.json()["content"], "the answer");
  const Response followup =
      call(fake, "POST", "/webhooks/" + app + "/" + handle.token, json{{"content", "more"}}, "");
  ASSERT_EQ(followup.status, 200);
  EXPECT_NE(followup.json()["id"], edit.json()["id"]);
  ASSERT_EQ(fake.interaction_callbacks().size(), 1u);
  EXPECT_EQ(fake.interaction_callbacks()[0].type, 5);
  ASSERT_EQ(fake.webhook_messages().size(), 2u);
  EXPECT_TRUE(fake.webhook_messages()[0].edit_original);
  EXPECT_EQ(
      call(fake, "POST", "/interactions/1/nope/callback", json{{"type", 4}}, "").json()["code"],
      10062);
}

TEST_F(FakeDiscordTest, LateInteractionCallbackIsUnknown) {
  auto o = options();
  o.interaction_response_window = milliseconds(0);
  FakeDiscord fake(o);
  FakeDiscordInteraction in;
  in.channel_id = FakeDiscord::snowflake();
  const auto handle = fake.inject_interaction(in);
  std::this_thread::sleep_for(milliseconds(5));
  const Response late =
      call(fake, "POST", "/interactions/" + handle.id + "/" + handle.token + "/callback",
           json{{"type", 4}, {"data", {{"content", "x"}}}}, "");
  EXPECT_EQ(late.status, 404);
  EXPECT_EQ(late.json()["code"], 10062);
}

TEST_F(FakeDiscordTest, SnowflakesIncreaseAndMapToShards) {
  uint64_t last = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t id = std::stoull(FakeDiscord::snowflake());
    EXPECT_GT(id, last);
    last = id;
  }
  EXPECT_GT(last, uint64_t{1} << 60);  // a realistic size (timestamp-based)
  for (int shard = 0; shard < 3; ++shard) {
    const uint64_t id = std::stoull(FakeDiscord::snowflake_for_shard(shard, 3));
    EXPECT_EQ((id >> 22) % 3, static_cast<uint64_t>(shard));
  }
}

}  // namespace fake_discord_test
}  // namespace parley::fakes
