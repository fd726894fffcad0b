#include "parley/capabilities/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <tuple>

#include "parley/capabilities/json_schema.h"

namespace parley::capabilities {

using nlohmann::json;

std::string ConfigProblem::describe() const {
  if (line > 0) return fmt::format("{}:{}:{}: {}: {}", file, line, column, key, message);
  return fmt::format("{}: {}: {}", file, key, message);
}

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

std::string found(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  std::string s = n.Scalar();
  if (s.size() > 40) s = s.substr(0, 40) + "…";
  return "'" + s + "'";
}

// Scalars as YAML reads them: numbers, booleans, else strings (quoted scalars stay strings).
json to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    json j = json::object();
    for (const auto& kv : node) j[kv.first.as<std::string>()] = to_json(kv.second);
    return j;
  }
  if (node.IsSequence()) {
    json j = json::array();
    for (const auto& item : node) j.push_back(to_json(item));
    return j;
  }
  if (!node.IsScalar()) return nullptr;
  if (node.Tag() == "!") return node.Scalar();
  int64_t i = 0;
  double d = 0;
  bool b = false;
  if (YAML::convert<int64_t>::decode(node, i)) return i;
  if (YAML::convert<double>::decode(node, d)) return d;
  if (YAML::convert<bool>::decode(node, b)) return b;
  return node.Scalar();
}

class Checker {
 public:
  Checker(std::string file, std::vector<ConfigProblem>& out) : file_(std::move(file)), out_(out) {}

  void problem(const YAML::Node& at, const std::string& key, const std::string& message) {
    ConfigProblem p{file_, 0, 0, key, message};
    if (at.IsDefined()) {
      const auto mark = at.Mark();
      if (mark.line >= 0) {
        p.line = mark.line + 1;
        p.column = mark.column + 1;
      }
    }
    out_.push_back(std::move(p));
  }

  // Visits a mapping with known keys; reports unknown ones. False when `node` is not a mapping.
  bool mapping(const YAML::Node& node, const std::string& path,
               const std::map<std::string, std::function<void(const YAML::Node&, const std::string&)>>&
                   handlers) {
    if (node.IsNull()) return true;
    if (!node.IsMap()) {
      problem(node, path, fmt::format("expected a mapping, found {}", found(node)));
      return false;
    }
    for (const auto& kv : node) {
      const auto key = kv.first.as<std::string>();
      const std::string full = path.empty() ? key : path + "." + key;
      auto it = handlers.find(key);
      if (it == handlers.end()) {
        std::string known;
        for (const auto& [k, _] : handlers) known += (known.empty() ? "" : ", ") + k;
        problem(kv.first, full, fmt::format("unknown key (expected one of: {})", known));
        continue;
      }
      it->second(kv.second, full);
    }
    return true;
  }

  std::optional<bool> boolean(const YAML::Node& n, const std::string& key) {
    bool b = false;
    if (n.IsScalar() && YAML::convert<bool>::decode(n, b)) return b;
    problem(n, key, fmt::format("expected true or false, found {}", found(n)));
    return std::nullopt;
  }

  std::optional<int64_t> integer(const YAML::Node& n, const std::string& key, int64_t min,
                                 int64_t max) {
    int64_t v = 0;
    if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v)) {
      problem(n, key, fmt::format("expected an integer, found {}", found(n)));
      return std::nullopt;
    }
    if (v < min || v > max) {
      problem(n, key, fmt::format("expected an integer in [{}, {}], found {}", min, max, v));
      return std::nullopt;
    }
    return v;
  }

  std::vector<std::string> names(const YAML::Node& n, const std::string& key) {
    std::vector<std::string> out;
    if (n.IsScalar() && !n.Scalar().empty()) return {n.Scalar()};
    if (!n.IsSequence()) {
      problem(n, key, fmt::format("expected a list of names, found {}", found(n)));
      return out;
    }
    size_t i = 0;
    for (const auto& item : n) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        problem(item, fmt::format("{}[{}]", key, i), fmt::format("expected a name, found {}", found(item)));
      } else {
        out.push_back(item.Scalar());
      }
      ++i;
    }
    return out;
  }

  // The key node of the last ".name" of `rest` (falls back to the value's parent).
  static YAML::Node locate_key(const YAML::Node& base, std::string_view rest) {
    const size_t dot = rest.rfind('.');
    if (dot == std::string_view::npos) return base;
    YAML::Node parent = locate(base, rest.substr(0, dot));
    const std::string key(rest.substr(dot + 1));
    if (parent.IsMap()) {
      for (const auto& kv : parent) {
        if (kv.first.Scalar() == key) return kv.first;
      }
    }
    return parent;
  }

  // The YAML node at a schema problem's path below `base` (".a.b[2]"), for its line and column.
  static YAML::Node locate(YAML::Node base, std::string_view rest) {
    YAML::Node at = base;
    while (!rest.empty()) {
      if (rest.front() == '.') {
        rest.remove_prefix(1);
        const size_t end = rest.find_first_of(".[");
        const std::string key(rest.substr(0, end));
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
        if (!at.IsMap() || !at[key].IsDefined()) return at;
        at.reset(at[key]);
      } else if (rest.front() == '[') {
        const size_t close = rest.find(']');
        if (close == std::string_view::npos) return at;
        const size_t index = std::stoul(std::string(rest.substr(1, close - 1)));
        rest.remove_prefix(close + 1);
        if (!at.IsSequence() || index >= at.size()) return at;
        at.reset(at[index]);
      } else {
        return at;
      }
    }
    return at;
  }

 private:
  std::string file_;
  std::vector<ConfigProblem>& out_;
};

bool looks_like_secret(const std::string& key, const json& value) {
  std::string k = key;
  std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool secret_name = k.find("key") != std::string::npos || k.find("token") != std::string::npos ||
                           k.find("password") != std::string::npos || k.find("secret") != std::string::npos;
  return secret_name && !k.ends_with("_env") && value.is_string();
}

void parse_one(Checker& c, const Capability& capability, const YAML::Node& node,
               const std::string& path, CapabilityConfig& out) {
  out.configured = true;
  YAML::Node settings_node;
  c.mapping(node, path,
            {
                {"enabled",
                 [&](const YAML::Node& v, const std::string& k) {
                   if (auto b = c.boolean(v, k)) out.enabled = *b;
                 }},
                {"allow",
                 [&](const YAML::Node& n, const std::string& p) {
                   c.mapping(n, p,
                             {
                                 {"users", [&](const YAML::Node& v, const std::string& k) { out.allow.users = c.names(v, k); }},
                                 {"roles", [&](const YAML::Node& v, const std::string& k) { out.allow.roles = c.names(v, k); }},
                                 {"channels", [&](const YAML::Node& v, const std::string& k) { out.allow.channels = c.names(v, k); }},
                             });
                 }},
                {"rate_limit",
                 [&](const YAML::Node& n, const std::string& p) {
                   c.mapping(n, p,
                             {
                                 {"calls",
                                  [&](const YAML::Node& v, const std::string& k) {
                                    if (auto i = c.integer(v, k, 0, 1'000'000)) out.rate_limit.calls = static_cast<int>(*i);
                                  }},
                                 {"per_seconds",
                                  [&](const YAML::Node& v, const std::string& k) {
                                    if (auto i = c.integer(v, k, 1, 86'400 * 31)) out.rate_limit.per = std::chrono::seconds(*i);
                                  }},
                             });
                 }},
                {"timeout_ms",
                 [&](const YAML::Node& v, const std::string& k) {
                   if (auto i = c.integer(v, k, 1, 3'600'000)) out.timeout = std::chrono::milliseconds(*i);
                 }},
                {"settings", [&](const YAML::Node& v, const std::string&) { settings_node.reset(v); }},
            });
  const json schema = capability.settings_schema();
  json settings = json::object();
  const std::string settings_path = path + ".settings";
  if (settings_node.IsDefined() && !settings_node.IsNull()) {
    if (!settings_node.IsMap()) {
      c.problem(settings_node, settings_path, fmt::format("expected a mapping, found {}", found(settings_node)));
    } else {
      settings = to_json(settings_node);
      for (const auto& [key, value] : settings.items()) {
        if (looks_like_secret(key, value)) {
          c.problem(Checker::locate(settings_node, "." + key), settings_path + "." + key,
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
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    check.problems.push_back(ConfigProblem{name, e.mark.line + 1, e.mark.column + 1, "(yaml)",
                                           fmt::format("bad YAML syntax: {}", e.msg)});
    return check;
  }
  Checker c(name, check.problems);
  c.mapping(root, "",
            {
                {"capabilities",
                 [&](const YAML::Node& n, const std::string& p) {
                   if (n.IsNull()) return;
                   if (!n.IsMap()) {
                     c.problem(n, p, fmt::format("expected a mapping of capability names, found {}", found(n)));
                     return;
                   }
                   for (const auto& kv : n) {
                     const auto cap_name = kv.first.as<std::string>();
                     const std::string path = p + "." + cap_name;
                     const Capability* cap = registry.find(cap_name);
                     if (cap == nullptr) {
                       std::string known;
                       for (const auto& k : registry.names()) known += (known.empty() ? "" : ", ") + k;
                       c.problem(kv.first, path, fmt::format("unknown capability '{}' (known: {})", cap_name, known));
                       continue;
                     }
                     CapabilityConfig cfg;
                     parse_one(c, *cap, kv.second, path, cfg);
                     check.config.by_name[cap_name] = std::move(cfg);
                   }
                 }},
            });
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

Decision may_use(const Capability& capability, const CapabilityConfig& config,
                 const Caller& caller, const std::string& channel) {
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
