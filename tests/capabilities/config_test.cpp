// capabilities.yaml: every key, defaults, every kind of error with file:line:column and key
// path, secrets refused, and the access decision.
#include "parley/capabilities/config.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <algorithm>

namespace parley::capabilities {
namespace config_test {

using nlohmann::json;
using ::testing::HasSubstr;

class Fetch final : public Capability {
 public:
  std::string_view name() const override { return "fetch"; }
  std::string_view description() const override { return "fetches"; }
  json parameters() const override { return {{"type", "object"}}; }
  Flags flags() const override { return {SideEffects::none, false, true}; }
  json settings_schema() const override {
    return {{"type", "object"},
            {"properties",
             {{"max_bytes", {{"type", "integer"}, {"minimum", 1}, {"default", 1048576}}},
              {"allow_private", {{"type", "boolean"}, {"default", false}}},
              {"token_env", {{"type", "string"}}},
              {"hosts", {{"type", "array"}, {"items", {{"type", "string"}}}}}}},
            {"additionalProperties", false}};
  }
};

class Admin final : public Capability {
 public:
  std::string_view name() const override { return "shutdown"; }
  std::string_view description() const override { return "stops the bot"; }
  json parameters() const override { return {{"type", "object"}}; }
  Flags flags() const override { return {SideEffects::unsafe, true, false}; }
};

Registry registry() {
  Registry r;
  EXPECT_TRUE(r.add(std::make_unique<Fetch>()).ok());
  EXPECT_TRUE(r.add(std::make_unique<Admin>()).ok());
  return r;
}

std::string problems_of(const std::string& yaml) {
  const auto reg = registry();
  return parse_capabilities_config(yaml, "caps.yaml", reg).describe();
}

TEST(CapabilitiesConfig, ReadsEveryKey) {
  const auto reg = registry();
  const auto c = parse_capabilities_config(R"(
capabilities:
  fetch:
    enabled: false
    allow: {users: [alice, "42"], roles: [family], channels: [console]}
    rate_limit: {calls: 5, per_seconds: 10}
    timeout_ms: 2500
    settings:
      max_bytes: 2048
      hosts: [example.org]
      token_env: FETCH_TOKEN
)",
                                           "caps.yaml", reg);
  ASSERT_TRUE(c.ok()) << c.describe();
  const auto& f = c.config.by_name.at("fetch");
  EXPECT_FALSE(f.enabled);
  EXPECT_TRUE(f.configured);
  EXPECT_EQ(f.allow.users, (std::vector<std::string>{"alice", "42"}));
  EXPECT_EQ(f.allow.roles, std::vector<std::string>{"family"});
  EXPECT_EQ(f.allow.channels, std::vector<std::string>{"console"});
  EXPECT_EQ(f.rate_limit.calls, 5);
  EXPECT_EQ(f.rate_limit.per.count(), 10);
  EXPECT_EQ(f.timeout.count(), 2500);
  EXPECT_EQ(f.settings["max_bytes"], 2048);
  EXPECT_EQ(f.settings["allow_private"], false) << "defaults fill what is not set";
  EXPECT_EQ(f.settings["token_env"], "FETCH_TOKEN");
}

TEST(CapabilitiesConfig, McpServersAreReadAndTheirToolsConfiguredByPrefix) {
  const auto r = registry();
  const auto check = parse_capabilities_config(R"(capabilities:
  files.write_file:
    side_effects: unsafe
    timeout_ms: 2000
mcp_servers:
  files:
    command: npx
    args: [-y, "@modelcontextprotocol/server-filesystem", /srv/shared]
    cwd: /srv
    env: {GITHUB_TOKEN: PARLEY_GITHUB_TOKEN}
    allow: {roles: [family]}
    timeout_ms: 30000
  search:
    transport: http
    url: https://mcp.example.org/mcp
    token_env: SEARCH_TOKEN
    tool_prefix: web
    enabled: false
)",
                                               "caps.yaml", r);
  ASSERT_TRUE(check.ok()) << check.describe();
  const auto& files = check.config.mcp_servers.at("files");
  EXPECT_EQ(files.transport, "stdio");
  EXPECT_EQ(files.command, "npx");
  EXPECT_EQ(files.args, (std::vector<std::string>{"-y", "@modelcontextprotocol/server-filesystem",
                                                  "/srv/shared"}));
  EXPECT_EQ(files.cwd, "/srv");
  EXPECT_EQ(files.env.at("GITHUB_TOKEN"), "PARLEY_GITHUB_TOKEN");
  EXPECT_EQ(files.tool_prefix, "files");
  EXPECT_EQ(files.defaults.allow.roles, std::vector<std::string>{"family"});
  EXPECT_EQ(files.defaults.timeout, std::chrono::milliseconds(30'000));
  const auto& search = check.config.mcp_servers.at("search");
  EXPECT_EQ(search.transport, "http");
  EXPECT_EQ(search.url, "https://mcp.example.org/mcp");
  EXPECT_EQ(search.token_env, "SEARCH_TOKEN");
  EXPECT_FALSE(search.enabled);
  EXPECT_EQ(check.config.mcp_server_of("web.search"), &search);
  EXPECT_EQ(check.config.mcp_server_of("files.read_file"), &files);
  EXPECT_EQ(check.config.mcp_server_of("fetch"), nullptr);
  // A tool named under capabilities starts from its server's defaults.
  const auto& write = check.config.by_name.at("files.write_file");
  EXPECT_EQ(write.side_effects, SideEffects::unsafe);
  EXPECT_EQ(write.timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(write.allow.roles, std::vector<std::string>{"family"});
  // Where it is, for the report once the server says whether it has such a tool.
  EXPECT_EQ(check.config.mcp_tool_locations.at("files.write_file"), "caps.yaml:2:3");
}

// A tool the file does not name runs with its server's defaults; the operator's side_effects
// wins over the tool's own.
TEST(CapabilitiesConfig, AnUnnamedMcpToolGetsItsServersDefaultsAndSideEffectsAreTheOperators) {
  class Tool final : public Capability {
   public:
    explicit Tool(std::string name) : name_(std::move(name)) {}
    std::string_view name() const override { return name_; }
    std::string_view description() const override { return "a tool"; }
    json parameters() const override { return {{"type", "object"}}; }
    Flags flags() const override { return {SideEffects::none, false, false}; }

   private:
    std::string name_;
  };
  const auto r = registry();
  const auto check = parse_capabilities_config(R"(mcp_servers:
  files:
    command: srv
    allow: {users: [fay]}
    rate_limit: {calls: 3, per_seconds: 10}
capabilities:
  files.delete:
    side_effects: unsafe
)",
                                               "caps.yaml", r);
  ASSERT_TRUE(check.ok()) << check.describe();
  const Tool read("files.read"), del("files.delete"), other("web.read");
  const auto read_cfg = check.config.for_capability(read);
  EXPECT_EQ(read_cfg.allow.users, std::vector<std::string>{"fay"});
  EXPECT_EQ(read_cfg.rate_limit.calls, 3);
  EXPECT_FALSE(read_cfg.configured);
  EXPECT_EQ(side_effects_of(read, read_cfg), SideEffects::none);
  const auto del_cfg = check.config.for_capability(del);
  EXPECT_EQ(del_cfg.allow.users, std::vector<std::string>{"fay"});
  EXPECT_EQ(side_effects_of(del, del_cfg), SideEffects::unsafe);
  EXPECT_TRUE(check.config.for_capability(other).allow.users.empty()) << "no such server";
}

TEST(CapabilitiesConfig, McpServerMistakesAreNamedWithTheirLine) {
  const auto r = registry();
  const auto check = parse_capabilities_config(R"(mcp_servers:
  bad:
    transport: carrier-pigeon
  nocommand:
    args: [x]
  leaky:
    command: srv
    env: {API_KEY: sk-live-1234567890}
  both:
    transport: http
    url: ftp://example.org
    command: srv
  fetch:
    command: srv
  Upper:
    command: srv
  same:
    command: srv
    tool_prefix: nocommand
capabilities:
  ghost.tool:
    enabled: false
  fetch:
    side_effects: none
)",
                                               "caps.yaml", r);
  const std::string all = check.describe();
  EXPECT_THAT(all, HasSubstr("caps.yaml:3:16: mcp_servers.bad.transport: expected stdio or http"));
  EXPECT_THAT(all,
              HasSubstr("caps.yaml:5:5: mcp_servers.nocommand: a stdio server needs a command"));
  EXPECT_THAT(all, HasSubstr("mcp_servers.leaky.env.API_KEY: expected the name of one of parley's "
                             "environment variables: secrets never go in this file"));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("sk-live")));
  EXPECT_THAT(all, HasSubstr("mcp_servers.both.url: expected an http:// or https:// URL"));
  EXPECT_THAT(all, HasSubstr("mcp_servers.both.command: command is for transport: stdio"));
  EXPECT_THAT(all, HasSubstr("mcp_servers.fetch: tool prefix 'fetch' is the name of a built-in"));
  EXPECT_THAT(all, HasSubstr("'Upper' is not a server name"));
  EXPECT_THAT(all, HasSubstr("tool prefix 'nocommand' is already the prefix of server"));
  EXPECT_THAT(all, HasSubstr("caps.yaml:21:3: capabilities.ghost.tool: unknown capability "
                             "'ghost.tool': no MCP server has the tool prefix 'ghost'"));
  EXPECT_THAT(all, HasSubstr("capabilities.fetch.side_effects: unknown key"));
}

TEST(CapabilitiesConfig, UnnamedCapabilitiesGetTheirDefaults) {
  const auto reg = registry();
  const auto c = parse_capabilities_config("", "caps.yaml", reg);
  ASSERT_TRUE(c.ok());
  const auto f = c.config.for_capability(*reg.find("fetch"));
  EXPECT_TRUE(f.enabled);
  EXPECT_FALSE(f.configured);
  EXPECT_EQ(f.settings["max_bytes"], 1048576);
  EXPECT_EQ(f.timeout.count(), 10'000);
}

TEST(CapabilitiesConfig, UnknownCapabilityNamesLineColumnAndTheKnownOnes) {
  const auto e = problems_of("capabilities:\n  fetch: {}\n  fecth:\n    enabled: true\n");
  EXPECT_THAT(e, HasSubstr("caps.yaml:3:3: capabilities.fecth: unknown capability 'fecth' (known: "
                           "fetch, shutdown)"));
}

TEST(CapabilitiesConfig, UnknownKeyWrongTypeOutOfRange) {
  auto e = problems_of("capabilities:\n  fetch:\n    enabeld: true\n");
  EXPECT_THAT(e, HasSubstr("caps.yaml:3:5: capabilities.fetch.enabeld: unknown key (expected one "
                           "of: allow, enabled"));
  e = problems_of("capabilities:\n  fetch:\n    enabled: sometimes\n");
  EXPECT_THAT(
      e,
      HasSubstr(
          "caps.yaml:3:14: capabilities.fetch.enabled: expected true or false, found 'sometimes'"));
  e = problems_of("capabilities:\n  fetch:\n    timeout_ms: 0\n");
  EXPECT_THAT(
      e, HasSubstr("capabilities.fetch.timeout_ms: expected an integer in [1, 3600000], found 0"));
  e = problems_of("capabilities:\n  fetch:\n    allow: {users: {a: 1}}\n");
  EXPECT_THAT(
      e, HasSubstr("capabilities.fetch.allow.users: expected a list of names, found a mapping"));
}

TEST(CapabilitiesConfig, SettingsAreCheckedAgainstTheCapabilitysSchemaWithTheirLine) {
  const auto e = problems_of(
      "capabilities:\n  fetch:\n    settings:\n      max_bytes: lots\n      hosts: [a, 3]\n      "
      "colour: red\n");
  EXPECT_THAT(e, HasSubstr("caps.yaml:4:18: capabilities.fetch.settings.max_bytes: expected "
                           "integer, got the string \"lots\""));
  EXPECT_THAT(e, HasSubstr("caps.yaml:5:18: capabilities.fetch.settings.hosts[1]: expected string, "
                           "got the number 3"));
  EXPECT_THAT(e, HasSubstr("caps.yaml:6:7: capabilities.fetch.settings.colour: unknown field"));
}

TEST(CapabilitiesConfig, SecretsAreRefusedWithoutBeingEchoed) {
  const auto reg = registry();
  const auto c = parse_capabilities_config(
      "capabilities:\n  fetch:\n    settings:\n      api_token: hunter2-very-secret\n", "caps.yaml",
      reg);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.describe(), HasSubstr("secrets never go in this file"));
  EXPECT_THAT(c.describe(), ::testing::Not(HasSubstr("hunter2")));
}

TEST(CapabilitiesConfig, BadYamlSyntaxNamesLineAndColumn) {
  const auto e = problems_of("capabilities:\n  fetch: [unclosed\n");
  EXPECT_THAT(e, HasSubstr("caps.yaml:"));
  EXPECT_THAT(e, HasSubstr("invalid YAML"));
}

TEST(CapabilitiesConfig, ReportsEveryProblemNotJustTheFirst) {
  const auto reg = registry();
  const auto c = parse_capabilities_config(
      "capabilities:\n  nope: {}\n  fetch:\n    enabled: 3\n    timeout_ms: x\n", "caps.yaml", reg);
  EXPECT_EQ(c.problems.size(), 3u) << c.describe();
}

// Found from outside by mutating the shipped file: a complex key (`? …`) under `capabilities:`
// threw YAML::TypedBadConversion out of the loader (`parley config check` aborted, exit 134).
TEST(CapabilitiesConfig, AComplexKeyIsAProblemWithItsPlaceNeverAnException) {
  const auto reg = registry();
  const auto under_capabilities = parse_capabilities_config(
      "capabilities:\n  ? rate_limit: {calls: 60, per_seconds: 60}\n  fetch: {enabled: false}\n",
      "caps.yaml", reg);
  EXPECT_EQ(under_capabilities.describe(),
            "caps.yaml:2:5: capabilities: expected a plain key, found a mapping\n");
  EXPECT_THAT(problems_of("? rate_limit: {calls: 60, per_seconds: 60}\ncapabilities: {}\n"),
              HasSubstr("caps.yaml:1:3: (top level): expected a plain key, found a mapping"));
  EXPECT_THAT(
      problems_of("capabilities:\n  fetch:\n    ? rate_limit: {calls: 60}\n"),
      HasSubstr("caps.yaml:3:7: capabilities.fetch: expected a plain key, found a mapping"));
  // In settings too, at any depth, rather than read as a setting named "".
  EXPECT_EQ(problems_of("capabilities:\n  fetch:\n    settings:\n      hosts: [a]\n      ? [1, 2]\n"
                        "      : 3\n"),
            "caps.yaml:5:9: capabilities.fetch.settings: expected a plain key, found a list\n");
  EXPECT_THAT(
      problems_of("mcp_servers:\n  fs:\n    command: x\n    env:\n      ? {A: B}\n"),
      HasSubstr("caps.yaml:5:9: mcp_servers.fs.env: expected a plain key, found a mapping"));
}

// Found by yaml_config_fuzz: yaml-cpp's "unknown escape character" message carries the
// character, and a quoted key or value may hold a line break or an ESC: a problem stays one
// line, its control characters written as escapes.
TEST(CapabilitiesConfig, AProblemIsOneLineWhateverTheFileHolds) {
  EXPECT_EQ(problems_of("capabilities:\n  \"fe\\ntch\\e[31m\": {}\n"),
            "caps.yaml:2:3: capabilities.fe\\ntch\\x1b[31m: unknown capability 'fe\\ntch\\x1b[31m' "
            "(known: fetch, shutdown)\n");
  const std::string e = problems_of("capabilities: \"a\\\x0c\"\n");
  EXPECT_THAT(e, HasSubstr("invalid YAML: unknown escape character: \\x0c"));
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
}

// An alias inside what it names (yaml-cpp builds a cycle) overflowed the stack of
// `parley config check` when the settings became JSON; repeated aliases ("billion laughs")
// expanded without bound. Both are problems with their place.
TEST(CapabilitiesConfig, AnAliasInsideItselfOrRepeatedWithoutEndIsAProblem) {
  const std::string cycle = problems_of("capabilities:\n  fetch:\n    settings: &a {hosts: *a}\n");
  EXPECT_THAT(cycle, ::testing::StartsWith("caps.yaml:3:"));
  EXPECT_THAT(cycle, HasSubstr(": capabilities.fetch.settings.hosts.hosts."));
  EXPECT_THAT(cycle,
              HasSubstr(": nested more than 64 levels deep (an alias inside what it names?)"));
  EXPECT_EQ(std::count(cycle.begin(), cycle.end(), '\n'), 1) << cycle;
  std::string laughs =
      "capabilities:\n  fetch:\n    settings:\n      a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n";
  for (char c = 'b'; c <= 'f'; ++c) {
    laughs += fmt::format("      {}: &{} [", c, c);
    for (int i = 0; i < 10; ++i)
      laughs += fmt::format("{}*{}", i == 0 ? "" : ", ", static_cast<char>(c - 1));
    laughs += "]\n";
  }
  EXPECT_THAT(problems_of(laughs),
              HasSubstr("more than 100000 values (aliases repeat what they name)"));
}

TEST(Access, DisabledChannelsUsersRolesAndAdminOnly) {
  const auto reg = registry();
  const auto& fetch = *reg.find("fetch");
  const auto& admin = *reg.find("shutdown");
  Caller alice{1, "alice", "UTC", false, {"family"}};
  Caller bob{2, "bob", "UTC", false, {}};
  Caller root{3, "root", "UTC", true, {}};

  CapabilityConfig open;
  EXPECT_TRUE(may_use(fetch, open, bob, "console").allowed);

  CapabilityConfig off;
  off.enabled = false;
  EXPECT_EQ(may_use(fetch, off, alice, "console").reason, "fetch is disabled");

  CapabilityConfig console_only;
  console_only.allow.channels = {"console"};
  EXPECT_TRUE(may_use(fetch, console_only, bob, "console").allowed);
  EXPECT_EQ(may_use(fetch, console_only, bob, "email").reason, "fetch is not available on email");

  CapabilityConfig family;
  family.allow.roles = {"family"};
  EXPECT_TRUE(may_use(fetch, family, alice, "http").allowed);
  EXPECT_FALSE(may_use(fetch, family, bob, "http").allowed);

  CapabilityConfig by_id;
  by_id.allow.users = {"2"};
  EXPECT_TRUE(may_use(fetch, by_id, bob, "http").allowed);

  // Admin-only: denied to everyone not listed (admins excepted), even with no configuration.
  EXPECT_EQ(may_use(admin, open, alice, "console").reason, "shutdown is for administrators only");
  EXPECT_TRUE(may_use(admin, open, root, "console").allowed);
  CapabilityConfig listed;
  listed.allow.users = {"bob"};
  EXPECT_TRUE(may_use(admin, listed, bob, "console").allowed);
}

}  // namespace config_test
}  // namespace parley::capabilities

#include <fstream>

#include "parley/capabilities/live_config.h"
#include "support/temp_dir.h"

namespace parley::capabilities {
namespace config_test {

TEST(LiveConfig, AValidEditIsPutInForceAnInvalidOneKeepsTheLastGood) {
  parley::testing::TempDir dir;
  const auto reg = registry();
  const auto path = (dir.path() / "capabilities.yaml").string();
  std::ofstream(path) << "capabilities:\n  fetch:\n    timeout_ms: 1000\n";
  auto first = load_capabilities_config(path, reg);
  ASSERT_TRUE(first.ok()) << first.describe();
  LiveConfig live(reg, first.config);
  const auto before = live.current();
  EXPECT_EQ(before->by_name.at("fetch").timeout.count(), 1000);

  std::ofstream(path, std::ios::trunc) << "capabilities:\n  fetch:\n    timeout_ms: 2000\n";
  auto good = live.reload(path);
  ASSERT_TRUE(good.ok()) << good.describe();
  EXPECT_EQ(live.current()->by_name.at("fetch").timeout.count(), 2000);
  EXPECT_EQ(live.generation(), 2u);
  EXPECT_EQ(before->by_name.at("fetch").timeout.count(), 1000) << "a snapshot never changes";

  std::ofstream(path, std::ios::trunc) << "capabilities:\n  fetch:\n    timeout_ms: soon\n";
  auto bad = live.reload(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.describe().find("capabilities.yaml:3:17: capabilities.fetch.timeout_ms"),
            std::string::npos)
      << bad.describe();
  EXPECT_EQ(live.current()->by_name.at("fetch").timeout.count(), 2000) << "the last good stays";
  EXPECT_EQ(live.generation(), 2u);

  std::filesystem::remove(path);
  EXPECT_FALSE(live.reload(path).ok());
  EXPECT_EQ(live.current()->by_name.at("fetch").timeout.count(), 2000);
}

}  // namespace config_test
}  // namespace parley::capabilities
