// capabilities.yaml: which capabilities are on, who may use them, how fast and how long, and
// their own settings (checked against each capability's settings schema).
//
//   capabilities:
//     calc:
//       enabled: true
//       allow: {users: [alice], roles: [family], channels: [console, http]}
//       rate_limit: {calls: 20, per_seconds: 60}
//       timeout_ms: 5000
//       settings: {…}
//
// MCP servers (Model Context Protocol) whose tools become capabilities named
// "<tool_prefix>.<tool>" (bot/clients/mcp); each server's access keys are its tools' defaults,
// and a tool can be configured under `capabilities:` by that name like any other (plus
// `side_effects`, which overrides what the server's annotations say):
//
//   mcp_servers:
//     files:
//       transport: stdio            # or http
//       command: npx                # stdio: the program, its args, its working directory
//       args: [-y, "@modelcontextprotocol/server-filesystem", /srv/shared]
//       cwd: /srv
//       env: {GITHUB_TOKEN: PARLEY_GITHUB_TOKEN}  # the child's variable: parley's variable NAME
//       enabled: true
//       tool_prefix: files          # default: the server's name
//       allow: {roles: [family]}    # and rate_limit, timeout_ms: defaults for its tools
//     search:
//       transport: http
//       url: https://mcp.example.org/mcp
//       token_env: SEARCH_TOKEN     # a bearer token, by the name of its variable
//
// A capability missing from the file runs with the defaults: enabled, everyone allowed (unless
// it is admin_only: then no one but the bot's admins and those listed in `allow`), no rate
// limit, a 10 s timeout, its settings' defaults. Secrets appear only as the name of an environment
// variable.
//
// Every problem found is reported, each as "FILE:LINE:COLUMN: KEY.PATH: what was expected,
// what was found". Value types; parse functions are pure and thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/result.h"
#include "parley/base/yaml_reader.h"
#include "parley/capabilities/capability.h"

namespace parley::capabilities {

struct Access {
  std::vector<std::string> users;  // user names or numeric ids
  std::vector<std::string> roles;
  std::vector<std::string> channels;  // empty: every channel
  [[nodiscard]] bool lists_anyone() const { return !users.empty() || !roles.empty(); }
  friend bool operator==(const Access&, const Access&) = default;
};

struct RateLimit {
  int calls = 0;  // 0: no limit
  std::chrono::seconds per{60};
  friend bool operator==(const RateLimit&, const RateLimit&) = default;
};

struct CapabilityConfig {
  bool enabled = true;
  // MCP tools only: what the operator says the tool does, over the server's annotations.
  std::optional<SideEffects> side_effects;
  bool configured = false;  // named in the file
  Access allow;
  RateLimit rate_limit;
  std::chrono::milliseconds timeout{10'000};
  nlohmann::json settings = nlohmann::json::object();  // validated, defaults filled
  friend bool operator==(const CapabilityConfig&, const CapabilityConfig&) = default;
};

// One entry of `mcp_servers:` (see above). Secrets are never here: `env` maps the child's
// variables to the names of parley's, and `token_env` names the variable with the token.
struct McpServerSpec {
  std::string name;
  std::string transport = "stdio";  // stdio | http
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  // child's variable → parley's variable (a name)
  std::string cwd;                         // empty: parley's working directory
  std::string url;
  std::string token_env;
  bool enabled = true;
  std::string tool_prefix;    // its tools are "<tool_prefix>.<tool>"
  CapabilityConfig defaults;  // access, rate limit and timeout of its tools
  friend bool operator==(const McpServerSpec&, const McpServerSpec&) = default;
};

struct CapabilitiesConfig {
  std::string source;  // the file, or "(embedded defaults)"
  std::map<std::string, CapabilityConfig, std::less<>> by_name;
  std::map<std::string, McpServerSpec, std::less<>> mcp_servers;
  // Where each MCP tool named under `capabilities:` is ("capabilities.yaml:12:3"): whether its
  // server has such a tool is known only once the server runs, and then reported with this.
  std::map<std::string, std::string, std::less<>> mcp_tool_locations;
  // The server whose tool_prefix begins `capability_name` ("files.read_file" → files), or null.
  [[nodiscard]] const McpServerSpec* mcp_server_of(std::string_view capability_name) const;

  // The configuration of `name`; else, for an MCP tool, its server's defaults; else the
  // defaults (settings from the capability's schema).
  [[nodiscard]] CapabilityConfig for_capability(const Capability& capability) const;
};

// What a call of `capability` may do to the world: the operator's `side_effects` when set (MCP
// tools), else what the capability says. The tool loop never repeats an unsafe call.
SideEffects side_effects_of(const Capability& capability, const CapabilityConfig& config);

// One problem in a configuration file.
// FILE:LINE:COLUMN: KEY: message, as every YAML file of parley reports its problems.
using ConfigProblem = YamlProblem;

struct ConfigCheck {
  CapabilitiesConfig config;
  std::vector<ConfigProblem> problems;  // empty: valid
  [[nodiscard]] bool ok() const { return problems.empty(); }
  [[nodiscard]] std::string describe() const;  // one problem per line
};

// Reads capabilities.yaml text; `name` stands for the file in messages. Every capability named
// must be in `registry`.
ConfigCheck parse_capabilities_config(const std::string& yaml, const std::string& name,
                                      const Registry& registry);
ConfigCheck load_capabilities_config(const std::string& path, const Registry& registry);
// The embedded defaults (no file): every registered capability with its defaults.
CapabilitiesConfig default_capabilities_config(const Registry& registry);

// Whether `caller` may use `capability` on `channel`, and if not, why (one line a user can
// read: "calc is disabled", "memory is not available on email", …).
struct Decision {
  bool allowed = true;
  std::string reason;
};
Decision may_use(const Capability& capability, const CapabilityConfig& config, const Caller& caller,
                 const std::string& channel);

}  // namespace parley::capabilities
