// Tests of parley.yaml loading: defaults, every key, and errors naming file, line and key.
#include "parley/bot/config/config.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace parley::bot {
namespace config_test {

TEST(Config, DefaultsPutTheDatabaseUnderData) {
  const auto c = config::default_config();
  EXPECT_EQ(c.storage.path, "data/parley.db");
  EXPECT_TRUE(c.source.empty());
}

TEST(Config, ExampleConfigInTheRepositoryLoads) {
  const auto c = config::load_config(std::string(PARLEY_SOURCE_DIR) + "/config/parley.yaml");
  EXPECT_EQ(c.storage.path, "data/parley.db");
  EXPECT_EQ(c.log_level, "info");
}

TEST(Config, ReadsEveryStorageKey) {
  const auto c = config::parse_config(R"(
storage:
  path: /tmp/x.db
  readers: 2
  history_messages: 20
  busy_timeout_ms: 100
  page_cache_kib: 1024
  mmap_size_mib: 0
  checkpoint_pages: 50
  synchronous: full
  cache:
    max_entries: 5
    max_bytes_mib: 1
  write_queue:
    max_batch: 64
    max_wait_us: 0
    capacity: 10
log:
  level: debug
)",
                                      "t.yaml");
  EXPECT_EQ(c.storage.path, "/tmp/x.db");
  EXPECT_EQ(c.storage.readers, 2u);
  EXPECT_EQ(c.storage.history_messages, 20u);
  EXPECT_EQ(c.storage.connection.busy_timeout_ms, 100);
  EXPECT_EQ(c.storage.connection.page_cache_kib, 1024);
  EXPECT_EQ(c.storage.connection.mmap_size_bytes, 0);
  EXPECT_EQ(c.storage.checkpoint_pages, 50);
  EXPECT_EQ(c.storage.connection.synchronous, "FULL");
  EXPECT_EQ(c.storage.cache.max_entries, 5u);
  EXPECT_EQ(c.storage.cache.max_bytes, 1u << 20);
  EXPECT_EQ(c.storage.queue.max_batch, 64u);
  EXPECT_EQ(c.storage.queue.max_wait.count(), 0);
  EXPECT_EQ(c.storage.queue.capacity, 10u);
  EXPECT_EQ(c.log_level, "debug");
}

std::string error_of(const std::string& yaml) {
  try {
    (void)config::parse_config(yaml, "p.yaml");
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, UnknownKeyNamesFileLineAndKey) {
  const auto e = error_of("storage:\n  path: a.db\n  reders: 3\n");
  EXPECT_NE(e.find("p.yaml:3:3"), std::string::npos) << e;
  EXPECT_NE(e.find("storage.reders"), std::string::npos) << e;
  EXPECT_NE(e.find("readers"), std::string::npos) << "lists the known keys: " << e;
}

TEST(Config, WrongTypeNamesTheValue) {
  const auto e = error_of("storage:\n  cache:\n    max_entries: lots\n");
  EXPECT_NE(e.find("p.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("storage.cache.max_entries"), std::string::npos) << e;
  EXPECT_NE(e.find("lots"), std::string::npos) << e;
}

TEST(Config, EveryProblemIsReportedNotOnlyTheFirst) {
  const auto e = error_of(
      "storage:\n"
      "  readers: many\n"
      "  pathh: x.db\n"
      "llm:\n"
      "  timeouts: {idle_ms: 5}\n"
      "log:\n"
      "  level: loud\n");
  EXPECT_NE(e.find("p.yaml:2:12: storage.readers: expected an integer, found 'many'"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("p.yaml:3:3: storage.pathh: unknown key (expected one of: "), std::string::npos)
      << e;
  EXPECT_NE(
      e.find("p.yaml:5:23: llm.timeouts.idle_ms: expected an integer in [100, 3600000], found 5"),
      std::string::npos)
      << e;
  EXPECT_NE(e.find("p.yaml:7:10: log.level: 'loud' is not one of"), std::string::npos) << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 3) << "one line per problem, no repeats:\n" << e;
}

TEST(Config, OutOfRangeAndBadEnum) {
  EXPECT_NE(
      error_of("storage:\n  readers: 0\n").find("storage.readers: expected an integer in [1, "),
      std::string::npos);
  EXPECT_NE(error_of("log:\n  level: loud\n").find("log.level"), std::string::npos);
  EXPECT_NE(error_of("storage: [1, 2]\n").find("expected a mapping"), std::string::npos);
}

TEST(Config, BrokenYamlNamesTheLine) {
  const auto e = error_of("storage:\n  path: [unclosed\n");
  EXPECT_NE(e.find("p.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid YAML"), std::string::npos) << e;
}

// A complex key (`? …`) is named with its place like any other mistake, never thrown as
// YAML::TypedBadConversion nor read as a key named "".
TEST(Config, AComplexKeyIsAProblemWithItsPlace) {
  EXPECT_EQ(error_of("? rate_limit: {calls: 60, per_seconds: 60}\nlog: {level: info}\n"),
            "p.yaml:1:3: (top level): expected a plain key, found a mapping");
  EXPECT_EQ(error_of("storage:\n  ? {path: a.db}\n"),
            "p.yaml:2:5: storage: expected a plain key, found a mapping");
  EXPECT_EQ(error_of("llm:\n  models:\n    gpt:\n      temperature: 0.2\n      extra:\n"
                     "        ? [a]\n        : 1\n"),
            "p.yaml:6:11: llm.models.gpt.extra: expected a plain key, found a list");
  // An alias inside what it names: a problem, not a stack overflow.
  EXPECT_NE(error_of("llm:\n  models:\n    gpt: &a {extra: [*a]}\n")
                .find("nested more than 64 levels deep (an alias inside what it names?)"),
            std::string::npos);
}

TEST(Config, MissingFileIsAnError) {
  EXPECT_THROW((void)config::load_config("/nonexistent/parley.yaml"), config::ConfigError);
}

TEST(Config, EmptyFileMeansDefaults) {
  const auto c = config::parse_config("", "empty.yaml");
  EXPECT_EQ(c.storage.path, "data/parley.db");
}

TEST(Config, ReadsTheLlmSection) {
  const auto c = config::parse_config(R"(
llm:
  provider: local
  default_role: fast
  providers:
    local:
      base_url: http://127.0.0.1:11434/v1
    openrouter:
      base_url: https://openrouter.ai/api/v1
      api_key_env: MY_OR_KEY
      headers: {HTTP-Referer: https://example.org, X-Title: mybot}
  roles:
    fast: llama3.1:8b
    smart:
      - anthropic/claude-sonnet-4
      - {provider: openrouter, model: openai/gpt-4o-mini}
  models:
    llama3.1:8b: {temperature: 0.2, num_ctx: 8192, provider: {sort: price}}
  timeouts: {connect_ms: 1000, first_byte_ms: 2000, idle_ms: 3000, call_ms: 4000, turn_ms: 5000}
  retry: {max_attempts: 4, base_backoff_ms: 100, max_backoff_ms: 9000}
)",
                                      "t.yaml");
  const auto& l = c.llm;
  EXPECT_EQ(l.provider, "local");
  EXPECT_EQ(l.default_role, "fast");
  EXPECT_EQ(l.providers.at("local").base_url, "http://127.0.0.1:11434/v1");
  EXPECT_TRUE(l.providers.at("local").api_key_env.empty());
  EXPECT_EQ(l.providers.at("openrouter").api_key_env, "MY_OR_KEY");
  EXPECT_EQ(l.providers.at("openrouter").headers.at("X-Title"), "mybot");
  ASSERT_EQ(l.roles.at("fast").size(), 1u);
  EXPECT_EQ(l.roles.at("fast")[0].model, "llama3.1:8b");
  ASSERT_EQ(l.roles.at("smart").size(), 2u);
  EXPECT_EQ(l.roles.at("smart")[1].provider, "openrouter");
  EXPECT_EQ(l.model_options.at("llama3.1:8b")["num_ctx"], 8192);
  EXPECT_EQ(l.model_options.at("llama3.1:8b")["temperature"], 0.2);
  EXPECT_EQ(l.model_options.at("llama3.1:8b")["provider"]["sort"], "price");
  EXPECT_EQ(l.timeouts.idle.count(), 3000);
  EXPECT_EQ(l.timeouts.turn.count(), 5000);
  EXPECT_EQ(l.retry.max_attempts, 4);
  EXPECT_EQ(l.retry.max_backoff.count(), 9000);
}

TEST(Config, LlmErrorsNameTheLineAndKey) {
  auto e = error_of("llm:\n  roles:\n    smart:\n      - {provider: nowhere, model: m}\n");
  EXPECT_NE(e.find("p.yaml:4"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown provider 'nowhere'"), std::string::npos) << e;
  EXPECT_NE(e.find("openrouter"), std::string::npos) << "lists the known ones: " << e;

  e = error_of("llm:\n  provider: nowhere\n");
  EXPECT_NE(e.find("p.yaml:2"), std::string::npos) << e;

  e = error_of("llm:\n  providers:\n    x: {base_url: ftp://host}\n");
  EXPECT_NE(e.find("llm.providers.x.base_url"), std::string::npos) << e;

  e = error_of("llm:\n  providers:\n    x: {api_key_env: FOO}\n");
  EXPECT_NE(e.find("base_url is required"), std::string::npos) << e;

  e = error_of("llm:\n  timeouts: {idle_ms: 5}\n");
  EXPECT_NE(e.find("llm.timeouts.idle_ms: expected an integer in [100, 3600000], found 5"),
            std::string::npos)
      << e;

  e = error_of("llm:\n  roles:\n    smart: []\n");
  EXPECT_NE(e.find("at least one model"), std::string::npos) << e;
}

TEST(Config, AKeyPastedWhereItsVariableNameBelongsIsRefusedWithoutBeingEchoed) {
  const auto e = error_of(
      "llm:\n  providers:\n    openrouter:\n      base_url: https://openrouter.ai/api/v1\n"
      "      api_key_env: sk-or-v1-0123456789abcdef\n");
  EXPECT_NE(e.find("p.yaml:5"), std::string::npos) << e;
  EXPECT_NE(e.find("NAME of an environment variable"), std::string::npos) << e;
  EXPECT_EQ(e.find("sk-or-v1"), std::string::npos) << "the key must not be echoed: " << e;
}

TEST(Config, ReadsTheDiscordChannel) {
  const auto cfg = config::parse_config(
      "channels:\n"
      "  discord:\n"
      "    token_env: MY_BOT_TOKEN\n"
      "    intents: [guilds, guild_messages, message_content]\n"
      "    respond_to: {dms: false, ambient_channels: [123456789012345678]}\n"
      "    guilds: ['111']\n"
      "    admins: [222]\n"
      "    shards: {ids: [1], count: 2}\n"
      "access:\n"
      "  admins: [console:*]\n",
      "p.yaml");
  const auto& d = cfg.channels.discord;
  EXPECT_EQ(d.token_env, "MY_BOT_TOKEN");
  EXPECT_EQ(d.intents, (1u << 0) | (1u << 9) | (1u << 15));
  EXPECT_FALSE(d.respond_to.dms);
  EXPECT_TRUE(d.respond_to.mentions);
  EXPECT_EQ(d.respond_to.ambient_channels, std::vector<std::string>{"123456789012345678"});
  EXPECT_EQ(d.guilds, std::vector<std::string>{"111"});
  EXPECT_EQ(d.shards.ids, std::vector<int>{1});
  EXPECT_EQ(d.shards.count, 2);
  EXPECT_EQ(cfg.access.admins, (std::vector<std::string>{"console:*", "discord:222"}))
      << "Discord admins join the access policy as discord:ID";
  EXPECT_TRUE(config::parse_config("channels:\n  discord:\n    shards: auto\n", "p.yaml")
                  .channels.discord.shards.ids.empty());
}

TEST(Config, DiscordMistakesAreNamedWithTheirPlace) {
  const auto e = error_of(
      "channels:\n"
      "  discord:\n"
      "    token_env: 'MTA5.secret.token'\n"
      "    intents: [guilds, everything]\n"
      "    guilds: [not-an-id]\n"
      "    shards: {ids: [3], count: 2}\n"
      "    respond_to: {mentions: perhaps}\n");
  EXPECT_NE(
      e.find(
          "p.yaml:3:16: channels.discord.token_env: expected the NAME of an environment variable"),
      std::string::npos)
      << e;
  EXPECT_NE(e.find("p.yaml:4"), std::string::npos) << e;
  EXPECT_NE(e.find("'everything' is not one of"), std::string::npos) << e;
  EXPECT_NE(e.find("p.yaml:5"), std::string::npos) << e;
  EXPECT_NE(e.find("expected a Discord id"), std::string::npos) << e;
  EXPECT_NE(e.find("shard 3 is not below count 2"), std::string::npos) << e;
  EXPECT_NE(e.find("channels.discord.respond_to.mentions"), std::string::npos) << e;
}

TEST(Config, ReadsTheEmailChannel) {
  const auto cfg = config::parse_config(
      "channels:\n"
      "  email:\n"
      "    imap: {host: imap.example.org, port: 993, tls: implicit, user: bot, "
      "password_env: BOT_IMAP_PW, mailbox: Bot, processed: {move: Done}}\n"
      "    smtp: {host: smtp.example.org, user: bot, password_env: BOT_SMTP_PW, "
      "from: bot@example.org, from_name: Parley}\n"
      "    allow: [Ana@Example.org, '@example.net']\n"
      "    admins: [ana@example.org]\n"
      "    poll_interval_s: 30\n"
      "    trusted_authserv_id: mx.example.org\n",
      "p.yaml");
  const auto& e = cfg.channels.email;
  EXPECT_TRUE(e.configured);
  EXPECT_EQ(e.imap.host, "imap.example.org");
  EXPECT_EQ(e.imap.port, 993);
  EXPECT_EQ(e.imap.tls, channels::email::MailTls::implicit);
  EXPECT_EQ(e.imap.password_env, "BOT_IMAP_PW");
  EXPECT_EQ(e.imap.mailbox, "Bot");
  EXPECT_EQ(e.imap.processed, channels::email::EmailOptions::Imap::Processed::move);
  EXPECT_EQ(e.imap.move_to, "Done");
  EXPECT_EQ(e.smtp.tls, channels::email::MailTls::starttls) << "the default";
  EXPECT_EQ(e.smtp.from, "bot@example.org");
  EXPECT_EQ(e.allow, (std::vector<std::string>{"ana@example.org", "@example.net"}));
  EXPECT_EQ(e.poll_interval_s, 30);
  EXPECT_EQ(e.trusted_authserv_id, "mx.example.org");
  EXPECT_EQ(cfg.access.admins.back(), "email:ana@example.org");
  EXPECT_FALSE(config::default_config().channels.email.configured);
}

TEST(Config, EmailMistakesAreNamedWithTheirPlace) {
  const auto e = error_of(
      "channels:\n"
      "  email:\n"
      "    imap: {host: h, tls: maybe, password_env: 'hunter2 secret'}\n"
      "    smtp: {host: s, from: not-an-address}\n"
      "    allow: ['two words@x']\n");
  EXPECT_NE(e.find("p.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("'maybe' is not one of implicit, starttls, none"), std::string::npos) << e;
  EXPECT_NE(e.find("channels.email.imap.password_env: expected the NAME"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << "never echoed: " << e;
  EXPECT_NE(e.find("p.yaml:4"), std::string::npos) << e;
  EXPECT_NE(e.find("expected the bot's address"), std::string::npos) << e;
  EXPECT_NE(e.find("p.yaml:5"), std::string::npos) << e;
}

}  // namespace config_test
}  // namespace parley::bot
