// Which Discord messages parley answers, and how they reach the pipeline; the REST route keys
// its rate-limit buckets are learned under.
#include "channels/discord/events.h"

#include <gtest/gtest.h>

#include "channels/discord/rest.h"

namespace parley::bot::channels::discord {
namespace events_test {

using nlohmann::json;

constexpr const char* kBot = "1000";

json message(const std::string& content, const std::string& guild = "77") {
  json d = {{"id", "555"},
            {"channel_id", "42"},
            {"content", content},
            {"author", {{"id", "9"}, {"username", "kim"}, {"global_name", "Kim"}}},
            {"mentions", json::array()}};
  if (!guild.empty()) d["guild_id"] = guild;
  return d;
}

json mentioning(const std::string& text) {
  json d = message("<@" + std::string(kBot) + "> " + text);
  d["mentions"] = json::array({{{"id", kBot}, {"username", "parley"}}});
  return d;
}

Surroundings around() {
  Surroundings s;
  s.bot_id = kBot;
  return s;
}

json interaction(const std::string& guild = "77") {
  json d = {
      {"id", "888"},
      {"application_id", "1000"},
      {"type", 2},
      {"token", "a-secret-token"},
      {"channel_id", "42"},
      {"data",
       {{"id", "31"},
        {"name", "calc"},
        {"type", 1},
        {"options", json::array({{{"name", "expression"}, {"type", 3}, {"value", "2*3"}}})}}}};
  const json user = {{"id", "9"}, {"username", "kim"}, {"global_name", "Kim"}};
  if (guild.empty()) {
    d["user"] = user;
  } else {
    d["guild_id"] = guild;
    d["member"] = {{"user", user}, {"nick", "kimmy"}};
  }
  return d;
}

TEST(DiscordEvents, ASlashCommandReachesThePipelineAsTheTypedCommand) {
  std::string why;
  auto in = read_interaction(interaction(), DiscordOptions{}, around(), &why);
  ASSERT_TRUE(in) << why;
  EXPECT_EQ(in->message.text, "/calc 2*3");
  EXPECT_EQ(in->message.platform_id, std::optional<std::string>("888")) << "deduped on its id";
  EXPECT_EQ(in->message.conversation, "42");
  EXPECT_EQ(in->message.author, "9") << "the member's user in a guild";
  EXPECT_EQ(in->message.author_name, "kimmy");
  EXPECT_EQ(in->token, "a-secret-token");
  EXPECT_EQ(in->application_id, "1000");
  EXPECT_TRUE(in->refused.empty());
  EXPECT_FALSE(in->message.private_audience);
  ASSERT_TRUE(in->message.split);
  EXPECT_EQ(in->message.split(std::string(4100, 'x')).size(), 3u);

  // In a DM: `user`, private. Sub-commands and non-string values are flattened in order.
  json dm = interaction("");
  dm["data"]["options"] = json::array(
      {{{"name", "add"},
        {"type", 1},
        {"options", json::array({{{"name", "n"}, {"type", 4}, {"value", 3}},
                                 {{"name", "what"}, {"type", 3}, {"value", "apples"}}})}}});
  in = read_interaction(dm, DiscordOptions{}, around(), &why);
  ASSERT_TRUE(in) << why;
  EXPECT_EQ(in->message.text, "/calc add 3 apples");
  EXPECT_EQ(in->message.author_name, "Kim");
  EXPECT_TRUE(in->message.private_audience);
}

TEST(DiscordEvents, ASlashCommandOutsideTheAllowListsIsRefusedAndOtherInteractionsIgnored) {
  DiscordOptions only;
  only.guilds = {"78"};
  std::string why;
  auto in = read_interaction(interaction("77"), only, around(), &why);
  ASSERT_TRUE(in) << why;
  EXPECT_EQ(in->refused, "I do not answer in this server.");
  only.guilds.clear();
  only.channels = {"43"};
  in = read_interaction(interaction("77"), only, around(), &why);
  ASSERT_TRUE(in);
  EXPECT_EQ(in->refused, "I do not answer in this channel.");
  in = read_interaction(interaction(""), only, around(), &why);
  ASSERT_TRUE(in);
  EXPECT_TRUE(in->refused.empty()) << "DMs are not governed by the guild channel list";

  json autocomplete = interaction();
  autocomplete["type"] = 4;
  EXPECT_FALSE(read_interaction(autocomplete, DiscordOptions{}, around(), &why));
  EXPECT_EQ(why, "not an application command");
  json user_command = interaction();
  user_command["data"]["type"] = 2;
  EXPECT_FALSE(read_interaction(user_command, DiscordOptions{}, around(), &why));
  json no_token = interaction();
  no_token.erase("token");
  EXPECT_FALSE(read_interaction(no_token, DiscordOptions{}, around(), &why));
}

TEST(DiscordEvents, AMentionIsAnsweredWithoutTheMentionInTheText) {
  std::string why;
  auto in = read_message_create(mentioning("what time is it?"), DiscordOptions{}, around(), &why);
  ASSERT_TRUE(in) << why;
  EXPECT_EQ(in->why, Why::mention);
  EXPECT_EQ(in->message.text, "what time is it?");
  EXPECT_EQ(in->message.channel, "discord");
  EXPECT_EQ(in->message.platform_id, std::optional<std::string>("555"));
  EXPECT_EQ(in->message.conversation, "42");
  EXPECT_EQ(in->message.author, "9");
  EXPECT_EQ(in->message.author_name, "Kim");
  EXPECT_FALSE(in->message.private_audience) << "a guild channel: others read the answer";
}

// Found by discord_payload_fuzz: taking a mention out could join the text around it into another.
TEST(DiscordEvents, AMentionHiddenInsideAnotherIsTakenOutToo) {
  const std::string id = around().bot_id;
  EXPECT_EQ(without_mention("<@<@" + id + ">" + id + "> hi", id), "hi");
  EXPECT_EQ(without_mention("<@!<@" + id + ">" + id + "> hi <@" + id + ">", id), "hi");
  EXPECT_EQ(without_mention("<@<@!<@" + id + ">" + id + ">" + id + ">", id), "");
  EXPECT_EQ(without_mention("<@1> hi", id), "<@1> hi") << "another user's mention stays";
}

TEST(DiscordEvents, PlainChatterItsOwnAndOtherBotsMessagesAreNotAnswered) {
  std::string why;
  EXPECT_FALSE(read_message_create(message("hello all"), DiscordOptions{}, around(), &why));
  EXPECT_NE(why.find("not for the bot"), std::string::npos) << why;
  json own = mentioning("x");
  own["author"]["id"] = kBot;
  EXPECT_FALSE(read_message_create(own, DiscordOptions{}, around(), &why));
  json other_bot = mentioning("x");
  other_bot["author"]["bot"] = true;
  EXPECT_FALSE(read_message_create(other_bot, DiscordOptions{}, around(), &why));
  DiscordOptions allow;
  allow.allow_bots = true;
  EXPECT_TRUE(read_message_create(other_bot, allow, around(), &why)) << why;
  json webhook = mentioning("x");
  webhook["webhook_id"] = "3";
  EXPECT_FALSE(read_message_create(webhook, DiscordOptions{}, around(), &why));
  EXPECT_FALSE(read_message_create(json::array(), DiscordOptions{}, around(), &why));
  EXPECT_FALSE(read_message_create(mentioning(""), DiscordOptions{}, around(), &why))
      << "only a mention, or no MESSAGE_CONTENT: no text to answer";
}

TEST(DiscordEvents, DmsRepliesThreadsAndAmbientChannels) {
  std::string why;
  auto dm = read_message_create(message("hi", ""), DiscordOptions{}, around(), &why);
  ASSERT_TRUE(dm) << why;
  EXPECT_EQ(dm->why, Why::dm);
  EXPECT_TRUE(dm->message.private_audience);
  DiscordOptions no_dms;
  no_dms.respond_to.dms = false;
  EXPECT_FALSE(read_message_create(message("hi", ""), no_dms, around(), &why));

  json reply = message("and then?");
  reply["referenced_message"] = {{"id", "1"}, {"author", {{"id", kBot}}}};
  auto r = read_message_create(reply, DiscordOptions{}, around(), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->why, Why::reply);

  Surroundings s = around();
  s.channels["42"] = ChannelInfo{"77", "40", "a thread", 11};
  EXPECT_FALSE(read_message_create(message("in a thread"), DiscordOptions{}, s, &why))
      << "a thread the bot takes no part in";
  s.engaged_threads.insert("42");
  auto t = read_message_create(message("in a thread"), DiscordOptions{}, s, &why);
  ASSERT_TRUE(t) << why;
  EXPECT_EQ(t->why, Why::thread);

  DiscordOptions ambient;
  ambient.respond_to.ambient_channels = {"40"};  // the thread's parent
  Surroundings parent = around();
  parent.channels["42"] = ChannelInfo{"77", "40", "a thread", 11};
  auto a = read_message_create(message("anyone?"), ambient, parent, &why);
  ASSERT_TRUE(a) << why;
  EXPECT_EQ(a->why, Why::ambient);
}

TEST(DiscordEvents, AllowListsDenyByDefaultOnceGiven) {
  std::string why;
  DiscordOptions guilds;
  guilds.guilds = {"78"};
  EXPECT_FALSE(read_message_create(mentioning("x"), guilds, around(), &why));
  EXPECT_TRUE(read_message_create(message("dm", ""), guilds, around(), &why))
      << "guilds do not limit DMs";
  guilds.guilds = {"77"};
  EXPECT_TRUE(read_message_create(mentioning("x"), guilds, around(), &why)) << why;
  DiscordOptions channels;
  channels.channels = {"41"};
  EXPECT_FALSE(read_message_create(mentioning("x"), channels, around(), &why));
  channels.channels = {"42"};
  EXPECT_TRUE(read_message_create(mentioning("x"), channels, around(), &why)) << why;
  DiscordOptions memory;
  memory.memory_channels = {"42"};
  auto in = read_message_create(mentioning("x"), memory, around(), &why);
  ASSERT_TRUE(in);
  EXPECT_TRUE(in->message.private_audience) << "the operator opened this channel to memories";
}

TEST(DiscordBotBudget, TwoBotsAnsweringEachOtherAreStoppedForACooldown) {
  BotBudget::Limits limits;
  limits.exchanges = 3;
  limits.window = std::chrono::seconds(60);
  limits.cooldown = std::chrono::seconds(300);
  limits.max_channels = 2;
  BotBudget budget(limits);
  const auto t0 = BotBudget::Clock::time_point{} + std::chrono::hours(1);
  bool tripped = false;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(budget.allow("a", t0 + std::chrono::seconds(i)));
  EXPECT_FALSE(budget.allow("a", t0 + std::chrono::seconds(3), &tripped));
  EXPECT_TRUE(tripped) << "said once";
  EXPECT_FALSE(budget.allow("a", t0 + std::chrono::seconds(4), &tripped));
  EXPECT_FALSE(tripped);
  EXPECT_TRUE(budget.allow("b", t0 + std::chrono::seconds(4))) << "other channels go on";
  EXPECT_FALSE(budget.allow("a", t0 + std::chrono::seconds(302)));
  EXPECT_TRUE(budget.allow("a", t0 + std::chrono::seconds(304))) << "after the cooldown";
  // Slow exchanges never trip it.
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(budget.allow("b", t0 + std::chrono::minutes(10 + i)));
  }
  // Bounded: with two channels active, a third waits until one of them is forgotten.
  BotBudget small(limits);
  EXPECT_TRUE(small.allow("x", t0));
  EXPECT_TRUE(small.allow("y", t0));
  EXPECT_FALSE(small.allow("z", t0 + std::chrono::seconds(1)));
  EXPECT_TRUE(small.allow("z", t0 + std::chrono::minutes(2)));
}

TEST(DiscordEvents, AnotherBotsMessageIsMarkedAsSuch) {
  DiscordOptions allow;
  allow.allow_bots = true;
  json d = mentioning("hello");
  d["author"]["bot"] = true;
  std::string why;
  auto in = read_message_create(d, allow, around(), &why);
  ASSERT_TRUE(in) << why;
  EXPECT_TRUE(in->from_bot);
  auto person = read_message_create(mentioning("hello"), allow, around(), &why);
  ASSERT_TRUE(person) << why;
  EXPECT_FALSE(person->from_bot);
}

// Found by discord_payload_fuzz: a THREAD_CREATE without "d" (or a channel whose "type" is not
// a number), a "bot" that is not a boolean, an interaction or option "type" that is not a
// number made nlohmann's value() throw type_error out of the strand's handler, which ended
// `parley run` (std::terminate on an io thread). A field of another type counts as absent.
// What the REST client and the start-up read from Discord's answers (a 429's retry_after and
// global, /gateway/bot's shards and limits, an error's code) goes through these: a field of
// another type is the default, never nlohmann's type_error out of a coroutine.
TEST(DiscordEvents, RestFieldsOfAnotherTypeAreTheirDefaults) {
  const json body = {{"retry_after", "soon"}, {"global", "yes"}, {"shards", 2.5},
                     {"code", "40060"},       {"ok", 1.25},      {"big", 1e308}};
  EXPECT_EQ(json_number(body, "retry_after", 1.0), 1.0);
  EXPECT_EQ(json_number(body, "ok", 1.0), 1.25);
  EXPECT_EQ(json_number(json::array({1}), "ok", 3.0), 3.0);
  EXPECT_EQ(json_number(body, "missing", 2.0), 2.0);
  EXPECT_FALSE(json_bool(body, "global", false));
  EXPECT_EQ(json_int(body, "shards", 1), 1);
  EXPECT_EQ(json_int(body, "code", 0), 0);
  EXPECT_EQ(json_number(json::parse(R"({"r": 0.25})"), "r", 1.0), 0.25);
}

TEST(DiscordEvents, AFieldOfAnotherTypeIsAbsentNeverAnException) {
  Surroundings s = around();
  learn_channel(s, json(), "77", 100);
  learn_channel(s, json::array({1, 2}), "77", 100);
  learn_channel(s, {{"id", "50"}, {"type", "11"}, {"parent_id", "42"}}, "77", 100);
  ASSERT_EQ(s.channels.count("50"), 1u);
  EXPECT_EQ(s.channels.at("50").type, 0) << "a type that is not a number is the default";
  learn_channel(s, {{"id", "51"}, {"type", 11}, {"owner_id", kBot}}, "77", 100);
  EXPECT_TRUE(s.channels.at("51").thread());
  EXPECT_EQ(s.engaged_threads.count("51"), 1u);

  DiscordOptions o;
  json d = mentioning("hi");
  d["author"]["bot"] = "yes";
  std::string ignored;
  const auto in = read_message_create(d, o, s, &ignored);
  ASSERT_TRUE(in) << ignored;
  EXPECT_FALSE(in->from_bot);

  for (const json& type : {json("2"), json(2.5), json::object()}) {
    json i = interaction();
    i["type"] = type;
    EXPECT_FALSE(read_interaction(i, o, s, &ignored)) << type;
  }
  json i = interaction();
  i["data"]["type"] = "1";
  i["data"]["options"] = json::array({{{"name", "n"}, {"type", "4"}, {"value", 3}}});
  const auto cmd = read_interaction(i, o, s, &ignored);
  ASSERT_TRUE(cmd) << ignored;
  EXPECT_EQ(cmd->message.text, "/calc 3");
}

// What the shard reads of a gateway message; HELLO's interval stays within reason.
TEST(DiscordGateway, FramesAreReadWhateverTheirFieldsHold) {
  EXPECT_FALSE(read_gateway_frame("[1]"));
  EXPECT_FALSE(read_gateway_frame("{\"op\": 0"));
  const auto f = read_gateway_frame(R"({"op": 0, "s": 7, "t": "READY", "d": {"v": 10}})");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->op, 0);
  EXPECT_EQ(f->seq, 7);
  EXPECT_EQ(f->type, "READY");
  EXPECT_EQ(f->d, (json{{"v", 10}}));
  const auto odd = read_gateway_frame(R"({"op": "0", "s": "7", "t": 3})");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->op, -1);
  EXPECT_FALSE(odd->seq);
  EXPECT_EQ(odd->type, "");
  EXPECT_TRUE(odd->d.is_null());
  EXPECT_EQ(heartbeat_interval({{"heartbeat_interval", 41250}}).count(), 41250);
  EXPECT_EQ(heartbeat_interval({{"heartbeat_interval", "41250"}}).count(), 41250);
  EXPECT_EQ(heartbeat_interval({{"heartbeat_interval", -5}}).count(), 100);
  EXPECT_EQ(heartbeat_interval({{"heartbeat_interval", 1e300}}).count(), 600'000);
  EXPECT_EQ(heartbeat_interval(json()).count(), 41250);
}

TEST(DiscordRest, RouteKeysKeepTheMajorIdApartAndNeverTheToken) {
  EXPECT_EQ(Rest::route_of("POST", "/channels/123/messages"),
            std::make_pair(std::string("POST /channels/{major}/messages"), std::string("123")));
  EXPECT_EQ(Rest::route_of("DELETE", "/channels/123/messages/456").first,
            "DELETE /channels/{major}/messages/{id}");
  EXPECT_EQ(Rest::route_of("GET", "/channels/9/messages?after=5&limit=50").first,
            "GET /channels/{major}/messages");
  EXPECT_EQ(Rest::route_of("GET", "/gateway/bot"),
            std::make_pair(std::string("GET /gateway/bot"), std::string()));
  const auto hook = Rest::route_of("POST", "/webhooks/11/secret-token-value");
  EXPECT_EQ(hook.first, "POST /webhooks/{major}/{token}");
  EXPECT_EQ(hook.second.find("secret"), std::string::npos);
  EXPECT_EQ(hook.second.rfind("11/", 0), 0u);
}

}  // namespace events_test
}  // namespace parley::bot::channels::discord
