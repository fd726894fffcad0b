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

SideEffects side_effects_of(const Capability& capability, const CapabilityConfig& config) {
  return config.side_effects.value_or(capability.flags().side_effects);
}

std::string ConfigCheck::describe() const {
  std::string out;
  for (const auto& p : problems) out += p.describe() + "\n";
  return out;
}

CapabilityConfig CapabilitiesConfig::for_capability(const Capability& capability) const {
  if (auto it = by_name.find(capability.name()); it != by_name.end()) return it->second;
  // An MCP tool not named in the file runs with its server's defaults.
  if (const McpServerSpec* server = mcp_server_of(capability.name())) {
    CapabilityConfig c = server->defaults;
    c.configured = false;
    return c;
  }
  CapabilityConfig c;
  c.settings = with_defaults(capability.settings_schema(), json::object());
  return c;
}

const McpServerSpec* CapabilitiesConfig::mcp_server_of(std::string_view capability_name) const {
  const size_t dot = capability_name.find('.');
  if (dot == std::string_view::npos) return nullptr;
  const std::string_view prefix = capability_name.substr(0, dot);
  for (const auto& [name, spec] : mcp_servers) {
    if (spec.tool_prefix == prefix) return &spec;
  }
  return nullptr;
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

// A name of a server or a tool prefix: like a capability's (lowercase letters, digits, '_', '-').
bool plain_name(std::string_view n) {
  return !n.empty() && n.size() <= 32 && std::all_of(n.begin(), n.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
  });
}

// The name of an environment variable: letters, digits and '_', not starting with a digit.
bool variable_name(std::string_view n) {
  return !n.empty() && !(n[0] >= '0' && n[0] <= '9') &&
         std::all_of(n.begin(), n.end(), [](char ch) {
           return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '_';
         });
}

// The keys every capability (and every MCP server, for its tools) takes.
std::map<std::string, Checker::Handler> access_keys(Checker& c, CapabilityConfig& out) {
  return {
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
                 {"channels", [&](const YAML::Node& v,
                                  const std::string& k) { out.allow.channels = c.names(v, k); }},
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
         if (auto i = c.integer(v, k, 1, 3'600'000)) out.timeout = std::chrono::milliseconds(*i);
       }},
  };
}

// `mcp_tool`: an MCP server's tool, which also takes side_effects (and has no settings).
void parse_one(Checker& c, const json& schema, const YAML::Node& node, const std::string& path,
               CapabilityConfig& out, bool mcp_tool = false) {
  out.configured = true;
  YAML::Node settings_node;
  auto keys = access_keys(c, out);
  keys["settings"] = [&](const YAML::Node& v, const std::string&) { settings_node.reset(v); };
  if (mcp_tool) {
    keys["side_effects"] = [&](const YAML::Node& v, const std::string& k) {
      const auto word = c.string(v, k);
      if (!word) return;
      if (*word == "none") {
        out.side_effects = SideEffects::none;
      } else if (*word == "idempotent") {
        out.side_effects = SideEffects::idempotent;
      } else if (*word == "unsafe") {
        out.side_effects = SideEffects::unsafe;
      } else {
        c.problem(v, k, fmt::format("expected none, idempotent or unsafe, found {}", found(v)));
      }
    };
  }
  c.mapping(node, path, keys);
  const std::string settings_path = path + ".settings";
  json settings = json::object();
  if (settings_node.IsDefined() && !settings_node.IsNull()) {
    if (!settings_node.IsMap()) {
      c.problem(settings_node, settings_path,
                fmt::format("expected a mapping, found {}", found(settings_node)));
    } else {
      settings = c.json(settings_node, settings_path).value_or(json::object());
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

void parse_mcp_server(Checker& c, const std::string& name, const YAML::Node& node,
                      const std::string& path, McpServerSpec& out) {
  out.name = name;
  out.tool_prefix = name;
  out.defaults.configured = true;
  auto keys = access_keys(c, out.defaults);
  keys.erase("enabled");
  keys["enabled"] = [&](const YAML::Node& v, const std::string& k) {
    if (auto b = c.boolean(v, k)) out.enabled = *b;
  };
  keys["transport"] = [&](const YAML::Node& v, const std::string& k) {
    const auto word = c.string(v, k);
    if (!word) return;
    if (*word != "stdio" && *word != "http") {
      c.problem(v, k, fmt::format("expected stdio or http, found {}", found(v)));
      return;
    }
    out.transport = *word;
  };
  keys["command"] = [&](const YAML::Node& v, const std::string& k) {
    if (auto w = c.string(v, k)) out.command = *w;
  };
  keys["args"] = [&](const YAML::Node& v, const std::string& k) {
    c.sequence(v, k, [&](const YAML::Node& item, const std::string& ik) {
      if (!item.IsScalar()) {
        c.problem(item, ik, fmt::format("expected a word, found {}", found(item)));
        return;
      }
      out.args.push_back(item.Scalar());
    });
  };
  keys["cwd"] = [&](const YAML::Node& v, const std::string& k) {
    if (auto w = c.string(v, k)) out.cwd = *w;
  };
  keys["url"] = [&](const YAML::Node& v, const std::string& k) {
    const auto w = c.string(v, k);
    if (!w) return;
    if (!w->starts_with("http://") && !w->starts_with("https://")) {
      c.problem(v, k, fmt::format("expected an http:// or https:// URL, found {}", found(v)));
      return;
    }
    out.url = *w;
  };
  keys["token_env"] = [&](const YAML::Node& v, const std::string& k) {
    const auto w = c.string(v, k);
    if (!w) return;
    if (!variable_name(*w)) {
      c.problem(v, k,
                fmt::format("expected the name of an environment variable, found {}", found(v)));
      return;
    }
    out.token_env = *w;
  };
  keys["env"] = [&](const YAML::Node& v, const std::string& k) {
    c.named(v, k, [&](const std::string& var, const YAML::Node& value, const std::string& vk) {
      if (!variable_name(var)) {
        c.problem(value, vk, fmt::format("'{}' is not a variable name", var));
        return;
      }
      const auto from = c.string(value, vk);
      if (!from) return;
      if (!variable_name(*from)) {
        c.problem(value, vk,
                  "expected the name of one of parley's environment variables: secrets never go "
                  "in this file, the child gets that variable's value");
        return;
      }
      out.env[var] = *from;
    });
  };
  keys["tool_prefix"] = [&](const YAML::Node& v, const std::string& k) {
    const auto w = c.string(v, k);
    if (!w) return;
    if (!plain_name(*w)) {
      c.problem(v, k,
                fmt::format("expected lowercase letters, digits, '_' or '-' (at most 32), found {}",
                            found(v)));
      return;
    }
    out.tool_prefix = *w;
  };
  if (!c.mapping(node, path, keys)) return;
  if (out.transport == "stdio") {
    if (out.command.empty()) c.problem(node, path, "a stdio server needs a command");
    if (!out.url.empty()) c.problem(node["url"], path + ".url", "url is for transport: http");
  } else {
    if (out.url.empty()) c.problem(node, path, "an http server needs a url");
    if (!out.command.empty()) {
      c.problem(node["command"], path + ".command", "command is for transport: stdio");
    }
  }
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
  // Tools of MCP servers named under capabilities: resolved once every server is read (the two
  // sections may come in either order).
  struct ToolEntry {
    std::string name;
    YAML::Node key;
    YAML::Node value;
    std::string path;
  };
  std::vector<ToolEntry> tool_entries;
  c.mapping(
      root, "",
      {
          {"mcp_servers",
           [&](const YAML::Node& n, const std::string& p) {
             c.named(
                 n, p, [&](const std::string& server, const YAML::Node& v, const std::string& k) {
                   if (!plain_name(server)) {
                     c.problem(
                         v, k,
                         fmt::format("'{}' is not a server name: lowercase letters, digits, '_' "
                                     "or '-' (at most 32)",
                                     server));
                     return;
                   }
                   McpServerSpec spec;
                   parse_mcp_server(c, server, v, k, spec);
                   check.config.mcp_servers[server] = std::move(spec);
                 });
           }},
          {"capabilities",
           [&](const YAML::Node& n, const std::string& p) {
             if (n.IsNull()) return;
             if (!n.IsMap()) {
               c.problem(n, p,
                         fmt::format("expected a mapping of capability names, found {}", found(n)));
               return;
             }
             for (const auto& kv : n) {
               if (!kv.first.IsScalar()) {
                 c.problem(kv.first, p,
                           fmt::format("expected a plain key, found {}", found(kv.first)));
                 continue;
               }
               const std::string& cap_name = kv.first.Scalar();
               const std::string path = fmt::format("{}.{}", p, cap_name);
               if (cap_name.find('.') != std::string::npos) {
                 tool_entries.push_back(ToolEntry{cap_name, kv.first, kv.second, path});
                 continue;
               }
               const Capability* cap = registry.find(cap_name);
               if (cap == nullptr) {
                 std::string known;
                 for (const auto& k : registry.names()) known += (known.empty() ? "" : ", ") + k;
                 c.problem(kv.first, path,
                           fmt::format("unknown capability '{}' (known: {})", cap_name, known));
                 continue;
               }
               CapabilityConfig cfg;
               parse_one(c, cap->settings_schema(), kv.second, path, cfg);
               check.config.by_name[cap_name] = std::move(cfg);
             }
           }},
      });
  // Two servers may not give their tools the same prefix.
  std::map<std::string, std::string> prefixes;
  for (const auto& [server, spec] : check.config.mcp_servers) {
    if (auto [it, fresh] = prefixes.emplace(spec.tool_prefix, server); !fresh) {
      c.problem(root["mcp_servers"][server], "mcp_servers." + server,
                fmt::format("tool prefix '{}' is already the prefix of server {}", spec.tool_prefix,
                            it->second));
    }
    if (registry.find(spec.tool_prefix) != nullptr) {
      c.problem(root["mcp_servers"][server], "mcp_servers." + server,
                fmt::format("tool prefix '{}' is the name of a built-in capability: set "
                            "tool_prefix",
                            spec.tool_prefix));
    }
  }
  // An MCP tool starts from its server's defaults; whether the server has such a tool is known
  // only once it runs (the bot reports a configured tool the server does not list).
  for (const auto& e : tool_entries) {
    const McpServerSpec* server = check.config.mcp_server_of(e.name);
    const std::string tool = e.name.substr(e.name.find('.') + 1);
    if (server == nullptr || tool.empty()) {
      std::string known;
      for (const auto& entry : check.config.mcp_servers) {
        known += (known.empty() ? "" : ", ") + entry.second.tool_prefix + ".*";
      }
      c.problem(e.key, e.path,
                fmt::format("unknown capability '{}': no MCP server has the tool prefix '{}'{}",
                            e.name, e.name.substr(0, e.name.find('.')),
                            known.empty() ? std::string(" (no mcp_servers configured)")
                                          : " (known: " + known + ")"));
      continue;
    }
    CapabilityConfig cfg = server->defaults;
    parse_one(c, json{{"type", "object"}, {"additionalProperties", false}}, e.value, e.path, cfg,
              true);
    const YAML::Mark mark = e.key.Mark();
    check.config.mcp_tool_locations[e.name] =
        fmt::format("{}:{}:{}", name, mark.line + 1, mark.column + 1);
    check.config.by_name[e.name] = std::move(cfg);
  }
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
