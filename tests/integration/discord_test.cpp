// The Discord channel through the real `parley run`, against FakeDiscord (REST + gateway on
// 127.0.0.1) and the fake LLM: what a user sees (mentions, DMs, replies, threads, long answers,
// no pings), and what keeps it from losing or doubling a message (resume, zombies, restarts,
// rate limits, fatal closes, one process per token).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "fakes/fake_discord.h"
#include "fakes/fake_llm.h"
#include "parley/storage/sqlite.h"
#include "parley/storage/store.h"
#include "served_bot.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace discord_test {

using nlohmann::json;
using parley::fakes::DiscordFault;
using parley::fakes::FakeDiscord;
using parley::fakes::FakeDiscordChannel;
using parley::fakes::FakeDiscordGuild;
using parley::fakes::FakeDiscordMessage;
using parley::fakes::FakeDiscordUser;
using parley::fakes::FakeLlmServer;
using parley::fakes::FakeReply;
using parley::testing::http_request;
using parley::testing::ServedBot;
using parley::testing::TempDir;
using ::testing::HasSubstr;
namespace route = parley::fakes::discord_route;
using namespace std::chrono_literals;

// The last user message the model was asked about.
std::string last_user_text(const parley::fakes::RecordedRequest& r) {
  std::string last;
  for (const auto& m : r.json["messages"]) {
    if (m.value("role", "") == "user" && m["content"].is_string()) last = m["content"];
  }
  return last;
}

FakeDiscordChannel channel(const std::string& name) {
  FakeDiscordChannel c;
  c.name = name;
  return c;
}

FakeDiscord::Options fake_options() {
  FakeDiscord::Options o;
  o.guilds = {FakeDiscordGuild{"", "guild", {channel("general"), channel("other")}, {}}};
  o.identify_interval = 0ms;
  o.heartbeat_interval = 1000ms;
  return o;
}

// A bed: the two fakes, a directory, and `parley run` with DISCORD_TOKEN and the fake's REST
// base (the lock file under the test's own directory).
struct Bed {
  explicit Bed(FakeDiscord::Options options = fake_options(), const std::string& yaml = "")
      : discord(std::move(options)) {
    llm.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
      return FakeReply::text("re: " + last_user_text(r));
    });
    if (!yaml.empty()) std::ofstream(dir / "parley.yaml") << yaml;
    guild = discord.guilds().at(0).id;
    general = discord.guilds().at(0).channels.at(0).id;
    other = discord.guilds().at(0).channels.at(1).id;
  }
  std::unique_ptr<ServedBot> start() {
    const std::string global =
        std::filesystem::exists(dir / "parley.yaml") ? "--config parley.yaml" : "";
    return std::make_unique<ServedBot>(dir.path(), llm.base_url(), "--console off", global,
                                       "DISCORD_TOKEN=" + discord.token() +
                                           " PARLEY_DISCORD_API_BASE=" + discord.api_base() +
                                           " XDG_RUNTIME_DIR=" + dir.path().string());
  }
  FakeDiscordMessage mention(const std::string& text, const std::string& channel = "") {
    FakeDiscordMessage m;
    m.guild_id = guild;
    m.channel_id = channel.empty() ? general : channel;
    m.author = FakeDiscordUser{"", "kim", false, std::nullopt};
    m.author.id = kim_id;
    m.content = "<@" + discord.bot_id() + "> " + text;
    m.mentions = {FakeDiscordUser{discord.bot_id(), "parley", true, std::nullopt}};
    return m;
  }
  std::vector<std::string> alerts(const std::string& kind) {
    parley::storage::StoreOptions o;
    o.path = dir / "data" / "parley.db";
    auto store = std::move(parley::storage::Store::open(o).value());
    auto conn = store->reads().acquire();
    auto st = conn->cached("SELECT message FROM credit_alerts WHERE kind = ? ORDER BY id");
    (*st)->bind_all(kind);
    std::vector<std::string> out;
    while ((*st)->step().value()) out.push_back((*st)->column_text(0));
    return out;
  }

  TempDir dir;
  FakeLlmServer llm;
  FakeDiscord discord;
  std::string guild, general, other;
  std::string kim_id = FakeDiscord::snowflake();
};

size_t created_in(const FakeDiscord& d, const std::string& channel) {
  size_t n = 0;
  for (const auto& m : d.created_messages()) n += m.channel_id == channel ? 1 : 0;
  return n;
}

TEST(Discord, AMentionIsAnsweredInPlaceWithTypingAndPingsNobody) {
  Bed bed;
  bed.llm.set_handler([](const parley::fakes::RecordedRequest&) -> std::optional<FakeReply> {
    auto reply = FakeReply::text("hello @everyone and <@&123>");
    reply.delay_before_headers = 1500ms;  // long enough to see typing first
    return reply;
  });
  auto bot = bed.start();
  ASSERT_THAT(bot->ready_line(), HasSubstr("discord"));
  ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
  const std::string id = bed.discord.inject_message(bed.mention("hi there"));
  ASSERT_TRUE(bed.discord.wait_created_messages(1, 15s));
  const auto created = bed.discord.created_messages().at(0);
  EXPECT_EQ(created.channel_id, bed.general);
  EXPECT_EQ(created.content, "hello @everyone and <@&123>");
  EXPECT_EQ(created.message_reference["message_id"], id) << created.body.dump();
  EXPECT_EQ(created.allowed_mentions, json({{"parse", json::array()}})) << "pings nobody";
  EXPECT_TRUE(created.enforce_nonce);
  EXPECT_TRUE(created.nonce.is_string());
  ASSERT_FALSE(bed.discord.typing().empty()) << "typing while the turn ran";
  EXPECT_EQ(bed.discord.typing().front().channel_id, bed.general);
  EXPECT_EQ(bed.llm.request_count(), 1u);
  EXPECT_EQ(bed.discord.rate_limit_violations(), 0u);
  // A message that is not for the bot is not answered.
  FakeDiscordMessage chatter = bed.mention("");
  chatter.content = "just talking among ourselves";
  chatter.mentions.clear();
  bed.discord.inject_message(chatter);
  bed.discord.inject_message(bed.mention("second"));
  ASSERT_TRUE(bed.discord.wait_created_messages(2, 15s));
  EXPECT_EQ(bed.llm.request_count(), 2u) << "only the mention reached the model";
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Discord, ADmAReplyToTheBotAndAThreadAreAnswered) {
  Bed bed(fake_options(),
          "channels:\n  discord:\n    intents: [guilds, guild_messages, direct_messages, "
          "message_content]\n");
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_ready(0, 10s)) << bot->ready_line();
  // A DM.
  FakeDiscordMessage dm;
  dm.channel_id = FakeDiscord::snowflake();
  dm.author = FakeDiscordUser{bed.kim_id, "kim", false, std::nullopt};
  dm.content = "a private question";
  bed.discord.inject_message(dm);
  ASSERT_TRUE(bed.discord.wait_created_messages(1, 15s));
  EXPECT_EQ(bed.discord.created_messages().at(0).channel_id, dm.channel_id);
  EXPECT_EQ(bed.discord.created_messages().at(0).content, "re: a private question");
  // A reply to the bot's message (no mention in the text).
  FakeDiscordMessage first = bed.mention("first");
  bed.discord.inject_message(first);
  ASSERT_TRUE(bed.discord.wait_created_messages(2, 15s));
  const std::string bot_message = bed.discord.created_messages().at(1).id;
  FakeDiscordMessage reply;
  reply.guild_id = bed.guild;
  reply.channel_id = bed.general;
  reply.author = FakeDiscordUser{bed.kim_id, "kim", false, std::nullopt};
  reply.content = "and a follow-up";
  reply.reply_to = bot_message;
  bed.discord.inject_message(reply);
  ASSERT_TRUE(bed.discord.wait_created_messages(3, 15s));
  EXPECT_EQ(bed.discord.created_messages().at(2).content, "re: and a follow-up");
  // A thread: mentioned once, then every message in it is answered.
  const std::string thread = bed.discord.inject_thread_create(
      bed.guild, FakeDiscordChannel{"", "a thread", 11, bed.general, bed.kim_id});
  bed.discord.inject_message(bed.mention("in the thread", thread));
  ASSERT_TRUE(bed.discord.wait_created_messages(4, 15s));
  FakeDiscordMessage in_thread;
  in_thread.guild_id = bed.guild;
  in_thread.channel_id = thread;
  in_thread.author = FakeDiscordUser{bed.kim_id, "kim", false, std::nullopt};
  in_thread.content = "no mention this time";
  bed.discord.inject_message(in_thread);
  ASSERT_TRUE(bed.discord.wait_created_messages(5, 15s));
  EXPECT_EQ(bed.discord.created_messages().at(4).channel_id, thread);
  EXPECT_EQ(bed.discord.created_messages().at(4).content, "re: no mention this time");
  EXPECT_EQ(bot->stop(), 0);
}

// The Discord channel's outbox entries, oldest first: (state, body).
std::vector<std::pair<std::string, std::string>> discord_outbox(const std::filesystem::path& db) {
  std::vector<std::pair<std::string, std::string>> out;
  auto c = parley::storage::Connection::open(
      db, parley::storage::ConnectionOptions{
              .mode = parley::storage::ConnectionOptions::Mode::read_only});
  if (!c.ok()) return out;
  auto st = c->prepare("SELECT state, body FROM outbox WHERE channel = 'discord' ORDER BY id");
  if (!st.ok()) return out;
  for (auto row = st->step(); row.ok() && *row; row = st->step()) {
    out.emplace_back(st->column_text(0), st->column_text(1));
  }
  return out;
}

TEST(Discord, ALongAnswerIsSplitWithItsCodeBlockReopened) {
  Bed bed;
  std::string answer = std::string(1500, 'a') + "\n\n```cpp\n";
  for (int i = 0; i < 120; ++i)
    answer += "int value_" + std::to_string(i) + " = " + std::to_string(i) + ";\n";
  answer += "```\n\n" + std::string(1200, 'z');
  bed.llm.set_handler([answer](const parley::fakes::RecordedRequest&) -> std::optional<FakeReply> {
    return FakeReply::text(answer);
  });
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
  bed.discord.inject_message(bed.mention("write code"));
  ASSERT_TRUE(bed.discord.wait_for([&] { return created_in(bed.discord, bed.general) >= 3; }, 20s));
  const auto created = bed.discord.created_messages();
  ASSERT_GE(created.size(), 3u);
  for (const auto& m : created) EXPECT_LE(m.content.size(), 2000u);
  EXPECT_FALSE(created[0].message_reference.is_null()) << "the first part replies";
  EXPECT_TRUE(created[1].message_reference.is_null());
  bool reopened = false;
  for (size_t i = 1; i < created.size(); ++i) {
    reopened = reopened || created[i].content.rfind("```cpp\n", 0) == 0;
  }
  EXPECT_TRUE(reopened) << "a part inside the code block starts by reopening it";
  EXPECT_EQ(bed.discord.rate_limit_violations(), 0u);
  EXPECT_EQ(bot->stop(), 0);
  // Each part was its own outbox entry, sent.
  const auto outbox = discord_outbox(bed.dir / "data" / "parley.db");
  ASSERT_EQ(outbox.size(), created.size());
  for (size_t i = 0; i < outbox.size(); ++i) {
    EXPECT_EQ(outbox[i].first, "sent");
    EXPECT_EQ(outbox[i].second, created[i].content);
  }
}

TEST(Discord, AKillBetweenTwoPartsOfAReplyOwesOnlyTheRestAndSendsNoPartTwice) {
  Bed bed;
  const std::string answer =
      std::string(1900, 'a') + "\n\n" + std::string(1900, 'b') + "\n\n" + std::string(100, 'c');
  bed.llm.set_handler([answer](const parley::fakes::RecordedRequest&) -> std::optional<FakeReply> {
    return FakeReply::text(answer);
  });
  // The first part is answered at once; the second is created but its answer held back, so
  // that the process dies while that send is under way.
  bed.discord.push_fault(route::kCreateMessage, DiscordFault::delayed(0ms));
  bed.discord.push_fault(route::kCreateMessage, DiscordFault::delayed(60s));
  {
    auto bot = bed.start();
    ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
    bed.discord.inject_message(bed.mention("three parts please"));
    ASSERT_TRUE(bed.discord.wait_created_messages(2, 15s));
    bot->kill();
  }
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_created_messages(3, 20s)) << "the third part is still owed";
  const auto created = bed.discord.created_messages();
  EXPECT_EQ(created.at(0).content, std::string(1900, 'a'));
  EXPECT_EQ(created.at(1).content, std::string(1900, 'b'));
  EXPECT_EQ(created.at(2).content, std::string(100, 'c'));
  EXPECT_FALSE(bed.discord.wait_created_messages(4, 2s)) << "no part sent twice";
  EXPECT_EQ(bed.llm.request_count(), 1u) << "the message was not answered again";
  EXPECT_EQ(bot->stop(), 0);
  const auto outbox = discord_outbox(bed.dir / "data" / "parley.db");
  ASSERT_EQ(outbox.size(), 3u);
  EXPECT_EQ(outbox[0].first, "sent");
  EXPECT_EQ(outbox[1].first, "unknown") << "its send had begun: never sent again";
  EXPECT_EQ(outbox[2].first, "sent");
}

// The slash command `name` used by kim in `channel` (of `guild`; empty: a DM), with one option.
parley::fakes::FakeDiscordInteraction slash(Bed& bed, const std::string& name,
                                            const std::string& value, std::string guild,
                                            std::string channel) {
  parley::fakes::FakeDiscordInteraction i;
  i.guild_id = std::move(guild);
  i.channel_id = std::move(channel);
  i.user = FakeDiscordUser{bed.kim_id, "kim", false, std::nullopt};
  i.command_name = name;
  if (!value.empty()) {
    i.options = json::array({{{"name", "expression"}, {"type", 3}, {"value", value}}});
  }
  return i;
}

TEST(Discord, SlashCommandsAreRegisteredOnceAndAnsweredThroughTheDeferredResponse) {
  Bed bed;
  {
    auto bot = bed.start();
    ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
    ASSERT_TRUE(bed.discord.wait_for([&] { return !bed.discord.command_puts().empty(); }, 10s));
    const auto put = bed.discord.command_puts().at(0);
    EXPECT_EQ(put.guild_id, "") << "no guild list: global commands";
    std::map<std::string, json> by_name;
    for (const auto& c : put.commands) by_name[c.value("name", "")] = c;
    ASSERT_EQ(by_name.count("calc"), 1u) << put.commands.dump();
    ASSERT_EQ(by_name.count("help"), 1u);
    ASSERT_EQ(by_name.count("remember"), 1u);
    EXPECT_EQ(by_name["calc"]["options"][0]["name"], "expression");
    EXPECT_EQ(by_name["remember"]["options"][0]["name"], "text");
    EXPECT_FALSE(by_name["help"].contains("options"));

    const auto used =
        bed.discord.inject_interaction(slash(bed, "calc", "2*(3+4)", bed.guild, bed.general));
    ASSERT_TRUE(bed.discord.wait_for([&] { return !bed.discord.webhook_messages().empty(); }, 15s));
    ASSERT_EQ(bed.discord.interaction_callbacks().size(), 1u);
    EXPECT_EQ(bed.discord.interaction_callbacks()[0].type, 5) << "deferred at once";
    const auto edit = bed.discord.webhook_messages().at(0);
    EXPECT_TRUE(edit.edit_original);
    EXPECT_EQ(edit.token, used.token);
    EXPECT_THAT(edit.body.value("content", ""), HasSubstr("14"));
    EXPECT_EQ(edit.body["allowed_mentions"], json({{"parse", json::array()}}));
    EXPECT_EQ(bed.llm.request_count(), 0u) << "a command needs no model";

    // In a DM too.
    const std::string dm = FakeDiscord::snowflake();
    bed.discord.inject_interaction(slash(bed, "help", "", "", dm));
    ASSERT_TRUE(
        bed.discord.wait_for([&] { return bed.discord.webhook_messages().size() >= 2; }, 15s));
    EXPECT_THAT(bed.discord.webhook_messages()[1].body.value("content", ""), HasSubstr("/calc"));
    EXPECT_EQ(bot->stop(), 0);  // (the rest of a long /help goes out before it stops)
  }
  // A restart registers nothing again: the set is unchanged.
  const size_t before = bed.discord.webhook_messages().size();
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
  bed.discord.inject_interaction(slash(bed, "calc", "6*7", bed.guild, bed.general));
  ASSERT_TRUE(bed.discord.wait_for(
      [&] { return bed.discord.webhook_messages().size() == before + 1; }, 15s));
  EXPECT_THAT(bed.discord.webhook_messages().back().body.value("content", ""), HasSubstr("42"));
  EXPECT_EQ(bed.discord.command_puts().size(), 1u);
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Discord, WithAGuildListCommandsAreGuildScopedAndElsewhereRefusedToTheUserAlone) {
  auto options = fake_options();
  options.guilds.push_back(FakeDiscordGuild{"", "elsewhere", {channel("lobby")}, {}});
  Bed bed(std::move(options));
  std::ofstream(bed.dir / "parley.yaml")
      << "channels:\n  discord:\n    guilds: [\"" << bed.guild << "\"]\n";
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
  ASSERT_TRUE(bed.discord.wait_for([&] { return !bed.discord.command_puts().empty(); }, 10s));
  EXPECT_EQ(bed.discord.command_puts().at(0).guild_id, bed.guild);
  EXPECT_EQ(bed.discord.command_puts().size(), 1u) << "no global set beside the guild's";

  const auto elsewhere = bed.discord.guilds().at(1);
  bed.discord.inject_interaction(
      slash(bed, "calc", "1+1", elsewhere.id, elsewhere.channels.at(0).id));
  ASSERT_TRUE(
      bed.discord.wait_for([&] { return !bed.discord.interaction_callbacks().empty(); }, 15s));
  const auto refused = bed.discord.interaction_callbacks().at(0);
  EXPECT_EQ(refused.type, 4);
  EXPECT_EQ(refused.body["data"]["flags"], 64) << "visible to the user alone";
  EXPECT_THAT(refused.body["data"].value("content", ""), HasSubstr("not answer in this server"));
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Discord, AfterADropItResumesAndAMissedMessageIsAnsweredOnce) {
  Bed bed;
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
  bed.discord.inject_message(bed.mention("before"));
  ASSERT_TRUE(bed.discord.wait_created_messages(1, 15s));
  ASSERT_TRUE(bed.discord.drop());
  bed.discord.inject_message(bed.mention("while away"));  // waits in the session for a RESUME
  ASSERT_TRUE(bed.discord.wait_resumes(1, 15s));
  EXPECT_TRUE(bed.discord.resumes().at(0).resumed);
  ASSERT_TRUE(bed.discord.wait_created_messages(2, 15s));
  EXPECT_EQ(bed.discord.created_messages().at(1).content, "re: while away");
  // op 7: reconnect and resume; a replay of what was already answered is not answered again.
  ASSERT_TRUE(bed.discord.send_reconnect());
  ASSERT_TRUE(bed.discord.wait_resumes(2, 15s));
  bed.discord.inject_message(bed.mention("after"));
  ASSERT_TRUE(bed.discord.wait_created_messages(3, 15s));
  EXPECT_EQ(bed.llm.request_count(), 3u) << "each message answered once";
  EXPECT_EQ(bed.discord.identifies().size(), 1u) << "resumed, never a new session";
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Discord, AZombieConnectionIsClosedWith4000AndResumed) {
  auto options = fake_options();
  options.heartbeat_interval = 300ms;
  Bed bed(options);
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
  ASSERT_TRUE(bed.discord.wait_heartbeats(2, 10s));
  bed.discord.withhold_acks(true);
  ASSERT_TRUE(bed.discord.wait_for(
      [&] {
        for (const auto& c : bed.discord.connections()) {
          if (c.closed_by_client && c.close_code == 4000) return true;
        }
        return false;
      },
      10s))
      << "closed by parley with 4000, which keeps the session";
  bed.discord.withhold_acks(false);
  ASSERT_TRUE(bed.discord.wait_resumes(1, 15s));
  bed.discord.inject_message(bed.mention("still there?"));
  ASSERT_TRUE(bed.discord.wait_created_messages(1, 15s));
  EXPECT_EQ(bed.discord.identifies().size(), 1u);
  EXPECT_EQ(bot->stop(), 0);
}

// Whether an alert of `kind` is in the database (read-only, while parley runs).
bool has_alert(const std::filesystem::path& db, const std::string& kind) {
  auto c = parley::storage::Connection::open(
      db, parley::storage::ConnectionOptions{
              .mode = parley::storage::ConnectionOptions::Mode::read_only});
  if (!c.ok()) return false;
  auto st = c->prepare("SELECT 1 FROM credit_alerts WHERE kind = ?");
  if (!st.ok()) return false;
  st->bind_all(kind);
  auto row = st->step();
  return row.ok() && *row;
}

TEST(Discord, Close4004StopsDiscordWithOneClearAlertAndHttpGoesOn) {
  Bed bed;
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
  ASSERT_TRUE(bed.discord.close(0, 4004, "Authentication failed."));
  // The HTTP channel still answers.
  auto r = http_request(
      bot->url() + "/v1/messages",
      json({{"user", "kim"}, {"conversation", "c"}, {"text", "hello over http"}}).dump());
  EXPECT_EQ(r.status, 200) << r.body;
  // The close is read on the gateway's own strand: its alert may come after the HTTP answer.
  for (int i = 0; i < 200 && !has_alert(bed.dir / "data" / "parley.db", "discord_gateway"); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(bot->stop(), 0);
  EXPECT_EQ(bed.discord.connections().size(), 1u) << "no reconnect after 4004";
  const auto alerts = bed.alerts("discord_gateway");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_THAT(alerts[0], HasSubstr("4004"));
  EXPECT_THAT(alerts[0], HasSubstr("DISCORD_TOKEN"));
}

TEST(Discord, Close4014NamesThePortalToggle) {
  auto options = fake_options();
  options.privileged_intents = 0;  // MESSAGE CONTENT not switched on in the Developer Portal
  Bed bed(options,
          "channels:\n  discord:\n    intents: [guilds, guild_messages, message_content]\n");
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_for(
      [&] {
        const auto ids = bed.discord.identifies();
        return !ids.empty() && ids[0].close_code == 4014;
      },
      10s));
  std::vector<std::string> alerts;
  ASSERT_TRUE(bed.discord.wait_for(
      [&] {
        alerts = bed.alerts("discord_gateway");
        return !alerts.empty();
      },
      10s));
  EXPECT_EQ(bot->stop(), 0);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_THAT(alerts[0], HasSubstr("Privileged Gateway Intents"));
  EXPECT_EQ(bed.discord.identifies().size(), 1u) << "no second IDENTIFY after 4014";
}

TEST(Discord, ARestartResumesThePersistedSession) {
  Bed bed;
  {
    auto bot = bed.start();
    ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
    bed.discord.inject_message(bed.mention("one"));
    ASSERT_TRUE(bed.discord.wait_created_messages(1, 15s));
    EXPECT_EQ(bot->stop(), 0);
  }
  bed.discord.inject_message(bed.mention("while restarting"));
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_resumes(1, 15s));
  const auto resume = bed.discord.resumes().at(0);
  EXPECT_TRUE(resume.resumed);
  EXPECT_EQ(resume.session_id, bed.discord.identifies().at(0).session_id);
  ASSERT_TRUE(bed.discord.wait_created_messages(2, 15s));
  EXPECT_EQ(bed.discord.created_messages().at(1).content, "re: while restarting");
  EXPECT_EQ(bed.discord.identifies().size(), 1u);
  EXPECT_EQ(bed.llm.request_count(), 2u);
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Discord, RateLimitsAreHonouredPerBucketAndGlobally) {
  Bed bed;
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
  bed.discord.push_fault(route::kCreateMessage, DiscordFault::rate_limited(0.6));
  bed.discord.inject_message(bed.mention("first"));
  ASSERT_TRUE(bed.discord.wait_created_messages(1, 15s));
  bed.discord.push_fault(route::kCreateMessage, DiscordFault::global_rate_limited(0.4));
  bed.discord.inject_message(bed.mention("second"));
  ASSERT_TRUE(bed.discord.wait_created_messages(2, 15s));
  bed.discord.push_fault(route::kCreateMessage, DiscordFault::shared_rate_limited(0.3));
  bed.discord.inject_message(bed.mention("third"));
  ASSERT_TRUE(bed.discord.wait_created_messages(3, 15s));
  // An answer of 8 parts: more than the fake's 5 messages a second in one channel.
  std::string longer;
  for (int i = 0; i < 8; ++i) longer += std::string(1900, static_cast<char>('a' + i)) + "\n\n";
  bed.llm.set_handler([longer](const parley::fakes::RecordedRequest&) -> std::optional<FakeReply> {
    return FakeReply::text(longer);
  });
  bed.discord.inject_message(bed.mention("a long one"));
  ASSERT_TRUE(bed.discord.wait_created_messages(3 + 8, 30s));
  EXPECT_EQ(bed.discord.rate_limit_violations(), 0u) << "no request sent before its wait";
  // /metrics counts the 429s by route; /healthz shows the shard.
  const auto metrics = http_request(bot->url() + "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.body;
  EXPECT_THAT(metrics.body, HasSubstr("parley_discord_rest_429_total{route=\"POST "
                                      "/channels/{major}/messages\"} 3"));
  EXPECT_THAT(metrics.body, HasSubstr("parley_discord_shard_ready{shard=\"0\",state=\"ready\"} 1"));
  EXPECT_THAT(metrics.body, HasSubstr("# TYPE parley_discord_shard_resumes_total counter"));
  EXPECT_THAT(metrics.body, HasSubstr("parley_discord_shard_ack_latency_ms{shard=\"0\"}"));
  EXPECT_THAT(metrics.body, HasSubstr("parley_discord_rest_invalid_requests_10m 2"))
      << "the shared 429 is not counted";
  EXPECT_EQ(metrics.body.find(bed.discord.token()), std::string::npos) << "never the token";
  const auto health = http_request(bot->url() + "/healthz");
  ASSERT_EQ(health.status, 200);
  const auto h = json::parse(health.body);
  bool shard_ready = false;
  for (const auto& row : h["channels"]["discord"]) {
    if (row["metric"] == "parley_discord_shard_ready" && row["shard"] == "0") {
      shard_ready = row["state"] == "ready" && row["value"] == 1;
    }
  }
  EXPECT_TRUE(shard_ready) << health.body;
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Discord, ALostSessionIsCaughtUpByAScanWithoutADuplicate) {
  Bed bed;
  {
    auto bot = bed.start();
    ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
    bed.discord.inject_message(bed.mention("one"));
    ASSERT_TRUE(bed.discord.wait_created_messages(1, 15s));
    EXPECT_EQ(bot->stop(), 0);
  }
  // While parley is down: the session expires (Discord will not replay), and Kim writes.
  bed.discord.expire_sessions();
  bed.discord.inject_message(bed.mention("while you were away"));
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_identifies(2, 15s)) << "the RESUME was refused: a new session";
  ASSERT_TRUE(bed.discord.wait_created_messages(2, 15s)) << "caught up by the scan";
  EXPECT_EQ(bed.discord.created_messages().at(1).content, "re: while you were away");
  bool scanned = false;
  for (const auto& r : bed.discord.requests()) scanned = scanned || r.route == route::kGetMessages;
  EXPECT_TRUE(scanned);
  // The page read held parley's own reply to "one" too: not answered, nor is anything twice.
  EXPECT_FALSE(bed.discord.wait_created_messages(3, 2s));
  EXPECT_EQ(bed.llm.request_count(), 2u);
  EXPECT_EQ(bot->stop(), 0);
}

// Whether the channel has persisted the newest message it answered in `channel`.
bool seen_persisted(const std::filesystem::path& db, const std::string& channel) {
  auto c = parley::storage::Connection::open(
      db, parley::storage::ConnectionOptions{
              .mode = parley::storage::ConnectionOptions::Mode::read_only});
  if (!c.ok()) return false;
  auto st = c->prepare(
      "SELECT value FROM channel_state WHERE channel = 'discord' AND key = 'recent_channels'");
  if (!st.ok()) return false;
  auto row = st->step();
  if (!row.ok() || !*row) return false;
  return st->column_text(0).find(channel) != std::string::npos;
}

TEST(Discord, SigkillDuringATurnLosesNoMessageAndAnswersNoneTwice) {
  Bed bed;
  auto slow_calls = std::make_shared<std::atomic<int>>(0);
  bed.llm.set_handler(
      [slow_calls](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
        const std::string text = last_user_text(r);
        auto reply = FakeReply::text("re: " + text);
        if (text == "slow one" && slow_calls->fetch_add(1) == 0) reply.delay_before_headers = 20s;
        return reply;
      });
  {
    auto bot = bed.start();
    ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
    bed.discord.inject_message(bed.mention("first"));
    ASSERT_TRUE(bed.discord.wait_created_messages(1, 15s));
    ASSERT_TRUE(bed.discord.wait_for(
        [&] { return seen_persisted(bed.dir / "data" / "parley.db", bed.general); }, 10s));
    bed.discord.inject_message(bed.mention("slow one"));
    ASSERT_TRUE(bed.discord.wait_for([&] { return bed.llm.request_count() == 2; }, 10s));
    bot->kill();  // SIGKILL while the model is asked about "slow one"
  }
  // The restart resumes; the catch-up after its first RESUMED reads the channel from the
  // newest message answered on, and the one the kill interrupted is answered, once.
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_created_messages(2, 20s));
  EXPECT_EQ(bed.discord.created_messages().at(1).content, "re: slow one");
  EXPECT_FALSE(bed.discord.wait_created_messages(3, 2s)) << "nothing answered twice";
  EXPECT_EQ(bed.llm.request_count(), 3u);
  EXPECT_EQ(bot->stop(), 0);
}

TEST(Discord, DiscordCheckNamesTheBotTheShardsTheStartsAndTheIntents) {
  auto options = fake_options();
  options.privileged_intents = 0;  // nothing switched on in the Developer Portal
  Bed bed(options);
  const std::string env =
      "DISCORD_TOKEN=" + bed.discord.token() + " PARLEY_DISCORD_API_BASE=" + bed.discord.api_base();
  auto ok = parley::testing::parley(bed.dir.path(), "discord check", env);
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("bot: parley (" + bed.discord.bot_id() + ")"));
  EXPECT_THAT(ok.out, HasSubstr("Discord recommends 1"));
  EXPECT_THAT(ok.out, HasSubstr("of 1000 left today"));
  EXPECT_THAT(ok.out, HasSubstr("intents: usable"));
  auto j = parley::testing::parley(bed.dir.path(), "discord check --json", env);
  ASSERT_EQ(j.code, 0) << j.err;
  const auto parsed = json::parse(j.out);
  EXPECT_EQ(parsed["bot"]["id"], bed.discord.bot_id());
  EXPECT_EQ(parsed["session_start_limit"]["total"], 1000);

  // message_content asked for but not switched on: exit 1, naming the Portal toggle.
  std::ofstream(bed.dir / "intents.yaml")
      << "channels:\n  discord:\n    intents: [guilds, guild_messages, message_content]\n";
  auto missing =
      parley::testing::parley(bed.dir.path(), "--config intents.yaml discord check", env);
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.err, HasSubstr("message_content intent"));
  EXPECT_THAT(missing.err, HasSubstr("Privileged Gateway Intents"));

  // A refused token: one line, exit 1, and never the token itself.
  auto bad = parley::testing::parley(
      bed.dir.path(), "discord check",
      "DISCORD_TOKEN=not-the-token PARLEY_DISCORD_API_BASE=" + bed.discord.api_base());
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("refused the bot token (401)"));
  EXPECT_EQ(bad.err.find("not-the-token"), std::string::npos);
  // No token at all.
  auto none = parley::testing::parley(bed.dir.path(), "discord check", "env -u DISCORD_TOKEN");
  EXPECT_EQ(none.code, 1);
  EXPECT_THAT(none.err, HasSubstr("no bot token in DISCORD_TOKEN"));
}

TEST(Discord, ASecondProcessOnTheSameTokenIsRefused) {
  Bed bed;
  auto first = bed.start();
  ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
  TempDir other;
  ServedBot second(other.path(), bed.llm.base_url(), "--console off", "",
                   "DISCORD_TOKEN=" + bed.discord.token() + " PARLEY_DISCORD_API_BASE=" +
                       bed.discord.api_base() + " XDG_RUNTIME_DIR=" + bed.dir.path().string());
  EXPECT_EQ(second.stop(), 1) << "refused at start: " << second.ready_line();
  EXPECT_EQ(bed.discord.identifies().size(), 1u);
  EXPECT_EQ(first->stop(), 0);
}

TEST(Discord, TwoShardsInOneProcessAndAShardSetSplitAcrossTwoProcesses) {
  auto options = fake_options();
  options.recommended_shards = 2;
  FakeDiscordGuild g0{
      FakeDiscord::snowflake_for_shard(0, 2), "zero", {channel("zero"), channel("zero-b")}, {}};
  FakeDiscordGuild g1{
      FakeDiscord::snowflake_for_shard(1, 2), "one", {channel("one"), channel("one-b")}, {}};
  options.guilds = {g0, g1};
  Bed bed(options);
  const auto guilds = bed.discord.guilds();
  auto in_guild = [&](size_t g, const std::string& text) {
    FakeDiscordMessage m = bed.mention(text, guilds.at(g).channels.at(0).id);
    m.guild_id = guilds.at(g).id;
    return m;
  };
  {
    auto bot = bed.start();  // shards: auto → both shards here
    ASSERT_TRUE(bed.discord.wait_ready(0, 10s));
    ASSERT_TRUE(bed.discord.wait_ready(1, 10s));
    bed.discord.inject_message(in_guild(0, "to shard zero"));
    bed.discord.inject_message(in_guild(1, "to shard one"));
    ASSERT_TRUE(bed.discord.wait_created_messages(2, 15s));
    EXPECT_EQ(bot->stop(), 0);
  }
  // Two processes, one shard each (their own databases, one token).
  TempDir second_dir;
  std::ofstream(bed.dir / "parley.yaml")
      << "channels:\n  discord:\n    shards: {ids: [0], count: 2}\n";
  std::ofstream(second_dir / "parley.yaml")
      << "channels:\n  discord:\n    shards: {ids: [1], count: 2}\n";
  auto zero = bed.start();
  ServedBot one(second_dir.path(), bed.llm.base_url(), "--console off", "--config parley.yaml",
                "DISCORD_TOKEN=" + bed.discord.token() + " PARLEY_DISCORD_API_BASE=" +
                    bed.discord.api_base() + " XDG_RUNTIME_DIR=" + bed.dir.path().string());
  ASSERT_THAT(one.ready_line(), HasSubstr("discord"));
  ASSERT_TRUE(bed.discord.wait_for(
      [&] { return bed.discord.shard_connected(0) && bed.discord.shard_connected(1); }, 15s));
  const size_t before = bed.llm.request_count();
  bed.discord.inject_message(in_guild(0, "zero again"));
  bed.discord.inject_message(in_guild(1, "one again"));
  ASSERT_TRUE(bed.discord.wait_created_messages(4, 15s))
      << bed.discord.created_messages().size() << " created, llm " << bed.llm.request_count()
      << " before " << before;
  EXPECT_EQ(bed.llm.request_count(), before + 2) << "each message answered by one process";
  EXPECT_EQ(zero->stop(), 0);
  EXPECT_EQ(one.stop(), 0);
}

// A reply with a file (the calendar export) is one message with the file uploaded as Discord
// takes it (multipart: payload_json and files[0]), checked by the fake as Discord checks it.
TEST(Discord, AFileOfAReplyIsUploadedWithTheMessage) {
  Bed bed(fake_options(),
          "channels:\n  discord:\n    intents: [guilds, guild_messages, direct_messages, "
          "message_content]\n");
  auto bot = bed.start();
  ASSERT_TRUE(bed.discord.wait_ready(0, 10s)) << bot->ready_line();
  FakeDiscordMessage dm;
  dm.channel_id = FakeDiscord::snowflake();
  dm.author = FakeDiscordUser{bed.kim_id, "kim", false, std::nullopt};
  dm.content = "/events add tomorrow 09:00 dentist";
  bed.discord.inject_message(dm);
  ASSERT_TRUE(bed.discord.wait_created_messages(1, 15s));
  EXPECT_TRUE(bed.discord.created_messages().at(0).files.empty());
  dm.id.clear();
  dm.content = "/events export";
  bed.discord.inject_message(dm);
  ASSERT_TRUE(bed.discord.wait_created_messages(2, 15s));
  const auto created = bed.discord.created_messages().at(1);
  EXPECT_EQ(created.channel_id, dm.channel_id);
  ASSERT_EQ(created.files.size(), 1u) << created.body.dump();
  EXPECT_EQ(created.files[0].index, 0u);
  EXPECT_EQ(created.files[0].filename, "events.ics");
  EXPECT_EQ(created.files[0].content_type, "text/calendar");
  EXPECT_THAT(created.files[0].content, HasSubstr("BEGIN:VCALENDAR"));
  EXPECT_THAT(created.files[0].content, HasSubstr("dentist"));
  EXPECT_EQ(created.body["attachments"], json::array({{{"id", 0}, {"filename", "events.ics"}}}));
  EXPECT_THAT(created.content, HasSubstr("event"));
  EXPECT_EQ(bot->stop(), 0);
}

}  // namespace discord_test
