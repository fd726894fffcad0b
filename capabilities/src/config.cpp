#include "parley/capabilities/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <tuple>

#include "parley/base/yaml_reader.h"
#include "parley/capabilities/json_schema.h"

namespace parley::capabilities {

using nlohmann::json;

std::string ConfigCheck::describe() const {
  std::string out;
  for (const auto& p : problems) out += p.describe() + "\n";
  return out;
}

CapabilityConfig CapabilitiesConfig::for_capability(const Capability& capability) const {
  if (auto it = by_name.find(capability.name()); it != by_name.end()) return it->second;
  CapabilityConfig c;
  c.settings = with_defaults(capability.settings_schema(), json::object());
  return c;
}

CapabilitiesConfig default_capabilities_config(const Registry& registry) {
  CapabilitiesConfig cfg;
  cfg.source = "(embedded defaults)";
  for (const auto& name : registry.names()) {
    cfg.by_name[name] = CapabilitiesConfig{}.for_capability(*registry.find(name));
  }
  return cfg;
}

namespace {

using Checker = YamlReader;

std::string found(const YAML::Node& n) { return yaml_found(n); }

bool looks_like_secret(const std::string& key, const json& value) {
  std::string k = key;
  std::transform(k.begin(), k.end(), k.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool secret_name =
      k.find("key") != std::string::npos || k.find("token") != std::string::npos ||
      k.find("password") != std::string::npos || k.find("secret") != std::string::npos;
  return secret_name && !k.ends_with("_env") && value.is_string();
}

void parse_one(Checker& c, const Capability& capability, const YAML::Node& node,
               const std::string& path, CapabilityConfig& out) {
  out.configured = true;
  YAML::Node settings_node;
  c.mapping(
      node, path,
      {
          {"enabled",
           [&](const YAML::Node& v, const std::string& k) {
             if (auto b = c.boolean(v, k)) out.enabled = *b;
           }},
          {"allow",
           [&](const YAML::Node& n, const std::string& p) {
             c.mapping(
                 n, p,
                 {
                     {"users", [&](const YAML::Node& v,
                                   const std::string& k) { out.allow.users = c.names(v, k); }},
                     {"roles", [&](const YAML::Node& v,
                                   const std::string& k) { out.allow.roles = c.names(v, k); }},
                     {"channels",
                      [&](const YAML::Node& v, const std::string& k) {
                        out.allow.channels = c.names(v, k);
                      }},
                 });
           }},
          {"rate_limit",
           [&](const YAML::Node& n, const std::string& p) {
             c.mapping(n, p,
                       {
                           {"calls",
                            [&](const YAML::Node& v, const std::string& k) {
                              if (auto i = c.integer(v, k, 0, 1'000'000)) {
                                out.rate_limit.calls = static_cast<int>(*i);
                              }
                            }},
                           {"per_seconds",
                            [&](const YAML::Node& v, const std::string& k) {
                              if (auto i = c.integer(v, k, 1, int64_t{86'400} * 31)) {
                                out.rate_limit.per = std::chrono::seconds(*i);
                              }
                            }},
                       });
           }},
          {"timeout_ms",
           [&](const YAML::Node& v, const std::string& k) {
             if (auto i = c.integer(v, k, 1, 3'600'000)) {
               out.timeout = std::chrono::milliseconds(*i);
             }
           }},
          {"settings", [&](const YAML::Node& v, const std::string&) { settings_node.reset(v); }},
      });
  const json schema = capability.settings_schema();
  json settings = json::object();
  const std::string settings_path = path + ".settings";
  if (settings_node.IsDefined() && !settings_node.IsNull()) {
    if (!settings_node.IsMap()) {
      c.problem(settings_node, settings_path,
                fmt::format("expected a mapping, found {}", found(settings_node)));
    } else {
      settings = yaml_to_json(settings_node);
      for (const auto& [key, value] : settings.items()) {
        if (looks_like_secret(key, value)) {
          c.problem(Checker::locate(settings_node, "." + key),
                    fmt::format("{}.{}", settings_path, key),
                    "secrets never go in this file: name the environment variable that holds it "
                    "(a setting ending in _env)");
        }
      }
      for (const auto& p : problems(schema, settings, settings_path)) {
        const std::string_view rest = std::string_view(p.path).substr(settings_path.size());
        // An unknown field is pointed at by its key, anything else by its value.
        c.problem(p.message.starts_with("unknown field") ? Checker::locate_key(settings_node, rest)
                                                         : Checker::locate(settings_node, rest),
                  p.path, p.message);
      }
    }
  }
  out.settings = with_defaults(schema, std::move(settings));
}

}  // namespace

ConfigCheck parse_capabilities_config(const std::string& yaml, const std::string& name,
                                      const Registry& registry) {
  ConfigCheck check;
  check.config = default_capabilities_config(registry);
  check.config.source = name;
  Checker c(name);
  const auto parsed = c.parse(yaml);
  if (!parsed) {
    check.problems = c.take_problems();
    return check;
  }
  const YAML::Node& root = *parsed;
  c.mapping(
      root, "",
      {
          {"capabilities",
           [&](const YAML::Node& n, const std::string& p) {
             if (n.IsNull()) return;
             if (!n.IsMap()) {
               c.problem(n, p,
                         fmt::format("expected a mapping of capability names, found {}", found(n)));
               return;
             }
             for (const auto& kv : n) {
               const auto cap_name = kv.first.as<std::string>();
               const std::string path = fmt::format("{}.{}", p, cap_name);
               const Capability* cap = registry.find(cap_name);
               if (cap == nullptr) {
                 std::string known;
                 for (const auto& k : registry.names()) known += (known.empty() ? "" : ", ") + k;
                 c.problem(kv.first, path,
                           fmt::format("unknown capability '{}' (known: {})", cap_name, known));
                 continue;
               }
               CapabilityConfig cfg;
               parse_one(c, *cap, kv.second, path, cfg);
               check.config.by_name[cap_name] = std::move(cfg);
             }
           }},
      });
  check.problems = c.take_problems();
  std::stable_sort(check.problems.begin(), check.problems.end(),
                   [](const ConfigProblem& a, const ConfigProblem& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
  return check;
}

ConfigCheck load_capabilities_config(const std::string& path, const Registry& registry) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ConfigCheck check;
    check.problems.push_back(ConfigProblem{path, 0, 0, "(file)", "cannot read the file"});
    return check;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_capabilities_config(text.str(), path, registry);
}

Decision may_use(const Capability& capability, const CapabilityConfig& config, const Caller& caller,
                 const std::string& channel) {
  const std::string name(capability.name());
  if (!config.enabled) return {false, fmt::format("{} is disabled", name)};
  const auto& allow = config.allow;
  if (!allow.channels.empty() &&
      std::find(allow.channels.begin(), allow.channels.end(), channel) == allow.channels.end()) {
    return {false, fmt::format("{} is not available on {}", name, channel)};
  }
  const bool listed =
      std::find(allow.users.begin(), allow.users.end(), caller.name) != allow.users.end() ||
      std::find(allow.users.begin(), allow.users.end(), std::to_string(caller.user_id)) !=
          allow.users.end() ||
      std::any_of(caller.roles.begin(), caller.roles.end(), [&](const std::string& r) {
        return std::find(allow.roles.begin(), allow.roles.end(), r) != allow.roles.end();
      });
  if (capability.flags().admin_only) {
    if (!listed && !caller.admin) {
      return {false, fmt::format("{} is for administrators only", name)};
    }
    return {};
  }
  if (allow.lists_anyone() && !listed) {
    return {false, fmt::format("you may not use {}", name)};
  }
  return {};
}

}  // namespace parley::capabilities
