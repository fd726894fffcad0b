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
#include <string>
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
};

struct RateLimit {
  int calls = 0;  // 0: no limit
  std::chrono::seconds per{60};
};

struct CapabilityConfig {
  bool enabled = true;
  bool configured = false;  // named in the file
  Access allow;
  RateLimit rate_limit;
  std::chrono::milliseconds timeout{10'000};
  nlohmann::json settings = nlohmann::json::object();  // validated, defaults filled
};

struct CapabilitiesConfig {
  std::string source;  // the file, or "(embedded defaults)"
  std::map<std::string, CapabilityConfig, std::less<>> by_name;

  // The configuration of `name`, or the defaults (settings from the capability's schema).
  [[nodiscard]] CapabilityConfig for_capability(const Capability& capability) const;
};

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
