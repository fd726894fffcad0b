#include "parley/base/yaml_reader.h"

#include <fmt/format.h>

#include <functional>

namespace parley {

namespace {

// A control character (a line break, an escape sequence's ESC) as \n, \t or \xNN: a problem
// is one line, and a file's bytes never reach the terminal as they are.
std::string one_line(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string YamlProblem::describe() const {
  if (line > 0) {
    return fmt::format("{}:{}:{}: {}: {}", file, line, column, one_line(key), one_line(message));
  }
  return fmt::format("{}: {}: {}", file, one_line(key), one_line(message));
}

std::string describe_all(const std::vector<YamlProblem>& problems) {
  std::string out;
  for (const auto& p : problems) out += (out.empty() ? "" : "\n") + p.describe();
  return out;
}

std::string yaml_found(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  std::string s = node.Scalar();
  if (s.size() > 40) s = s.substr(0, 40) + "…";
  return "'" + s + "'";
}

nlohmann::json yaml_to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& kv : node) {
      j[kv.first.IsScalar() ? kv.first.Scalar() : kv.first.as<std::string>("")] =
          yaml_to_json(kv.second);
    }
    return j;
  }
  if (node.IsSequence()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& item : node) j.push_back(yaml_to_json(item));
    return j;
  }
  if (!node.IsScalar()) return nullptr;
  if (node.Tag() == "!") return node.Scalar();  // quoted
  int64_t i = 0;
  double d = 0;
  bool b = false;
  if (YAML::convert<int64_t>::decode(node, i)) return i;
  if (YAML::convert<double>::decode(node, d)) return d;
  if (YAML::convert<bool>::decode(node, b)) return b;
  return node.Scalar();
}

std::optional<YAML::Node> YamlReader::parse(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    problems_.push_back(
        {file_, e.mark.line + 1, e.mark.column + 1, "(document)", "invalid YAML: " + e.msg});
    return std::nullopt;
  }
}

void YamlReader::problem(const YAML::Node& at, const std::string& key, const std::string& message) {
  YamlProblem p{file_, 0, 0, key.empty() ? "(top level)" : key, message};
  if (at.IsDefined()) {
    const auto mark = at.Mark();
    if (mark.line >= 0) {
      p.line = mark.line + 1;
      p.column = mark.column + 1;
    }
  }
  problems_.push_back(std::move(p));
}

bool YamlReader::mapping(const YAML::Node& node, const std::string& path,
                         const std::map<std::string, Handler>& handlers) {
  // A mapping with known keys is a named mapping whose names must be among them.
  return named(node, path,
               [&](const std::string& key, const YAML::Node& value, const std::string& full) {
                 auto it = handlers.find(key);
                 if (it != handlers.end()) {
                   it->second(value, full);
                   return;
                 }
                 std::string known;
                 for (const auto& [k, _] : handlers) known += (known.empty() ? "" : ", ") + k;
                 // The key itself (not locate_key's path: the key may hold a '.').
                 YAML::Node at = node;
                 for (const auto& kv : node) {
                   if (kv.first.IsScalar() && kv.first.Scalar() == key) {
                     at.reset(kv.first);
                     break;
                   }
                 }
                 problem(at, full, fmt::format("unknown key (expected one of: {})", known));
               });
}

bool YamlReader::named(const YAML::Node& node, const std::string& path, const Named& each) {
  if (!node.IsDefined() || node.IsNull()) return true;
  if (!node.IsMap()) {
    problem(node, path, fmt::format("expected a mapping, found {}", yaml_found(node)));
    return false;
  }
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      problem(kv.first, path, fmt::format("expected a plain key, found {}", yaml_found(kv.first)));
      continue;
    }
    const std::string& name = kv.first.Scalar();
    each(name, kv.second, path.empty() ? name : fmt::format("{}.{}", path, name));
  }
  return true;
}

bool YamlReader::sequence(const YAML::Node& node, const std::string& path, const Handler& each) {
  if (!node.IsSequence()) {
    problem(node, path, fmt::format("expected a list, found {}", yaml_found(node)));
    return false;
  }
  size_t i = 0;
  for (const auto& item : node) each(item, fmt::format("{}[{}]", path, i++));
  return true;
}

std::optional<bool> YamlReader::boolean(const YAML::Node& node, const std::string& key) {
  bool b = false;
  if (node.IsScalar() && YAML::convert<bool>::decode(node, b)) return b;
  problem(node, key, fmt::format("expected true or false, found {}", yaml_found(node)));
  return std::nullopt;
}

std::optional<int64_t> YamlReader::integer(const YAML::Node& node, const std::string& key,
                                           int64_t min, int64_t max) {
  int64_t v = 0;
  if (!node.IsScalar() || !YAML::convert<int64_t>::decode(node, v)) {
    problem(node, key, fmt::format("expected an integer, found {}", yaml_found(node)));
    return std::nullopt;
  }
  if (v < min || v > max) {
    if (max == std::numeric_limits<int64_t>::max()) {
      problem(node, key, fmt::format("expected an integer of at least {}, found {}", min, v));
    } else {
      problem(node, key, fmt::format("expected an integer in [{}, {}], found {}", min, max, v));
    }
    return std::nullopt;
  }
  return v;
}

std::optional<double> YamlReader::number(const YAML::Node& node, const std::string& key, double min,
                                         double max) {
  double v = 0;
  if (!node.IsScalar() || !YAML::convert<double>::decode(node, v)) {
    problem(node, key, fmt::format("expected a number, found {}", yaml_found(node)));
    return std::nullopt;
  }
  if (!(v >= min && v <= max)) {
    problem(node, key, fmt::format("expected a number in [{}, {}], found {}", min, max, v));
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> YamlReader::string(const YAML::Node& node, const std::string& key) {
  if (node.IsScalar() && !node.Scalar().empty()) return node.Scalar();
  problem(node, key, fmt::format("expected a non-empty string, found {}", yaml_found(node)));
  return std::nullopt;
}

std::vector<std::string> YamlReader::names(const YAML::Node& node, const std::string& key) {
  std::vector<std::string> out;
  if (node.IsScalar() && !node.Scalar().empty()) return {node.Scalar()};
  if (!node.IsSequence()) {
    problem(node, key, fmt::format("expected a list of names, found {}", yaml_found(node)));
    return out;
  }
  size_t i = 0;
  for (const auto& item : node) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      problem(item, fmt::format("{}[{}]", key, i),
              fmt::format("expected a name, found {}", yaml_found(item)));
    } else {
      out.push_back(item.Scalar());
    }
    ++i;
  }
  return out;
}

std::optional<nlohmann::json> YamlReader::json(const YAML::Node& node, const std::string& key) {
  // An alias may name the node it is in (`&a [*a]`: yaml-cpp builds a cycle) or repeat a large
  // one many times over ("billion laughs"): both are bounded before yaml_to_json expands them.
  constexpr int kMaxDepth = 64;
  constexpr size_t kMaxValues = 100'000;
  size_t values = 0;
  bool ok = true;
  bool bounded = true;
  const std::function<void(const YAML::Node&, const std::string&, int)> check =
      [&](const YAML::Node& n, const std::string& path, int depth) {
        if (!bounded) return;
        if (depth > kMaxDepth || ++values > kMaxValues) {
          problem(
              n, path,
              depth > kMaxDepth
                  ? fmt::format("nested more than {} levels deep (an alias inside what it "
                                "names?)",
                                kMaxDepth)
                  : fmt::format("more than {} values (aliases repeat what they name)", kMaxValues));
          bounded = ok = false;
          return;
        }
        if (n.IsSequence()) {
          size_t i = 0;
          for (const auto& item : n) check(item, fmt::format("{}[{}]", path, i++), depth + 1);
        } else if (n.IsMap()) {
          for (const auto& kv : n) {
            if (!kv.first.IsScalar()) {
              problem(kv.first, path,
                      fmt::format("expected a plain key, found {}", yaml_found(kv.first)));
              ok = false;
              continue;
            }
            check(kv.second, fmt::format("{}.{}", path, kv.first.Scalar()), depth + 1);
          }
        }
      };
  check(node, key, 0);
  if (!ok) return std::nullopt;
  return yaml_to_json(node);
}

YAML::Node YamlReader::locate_key(const YAML::Node& base, std::string_view rest) {
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

YAML::Node YamlReader::locate(const YAML::Node& base, std::string_view rest) {
  YAML::Node at = base;
  while (!rest.empty()) {
    if (rest.front() == '.') {
      rest.remove_prefix(1);
      const size_t end = rest.find_first_of(".[");
      const std::string key(rest.substr(0, end));
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
      // Through a const node: Node::operator[] on a non-const one adds the key it does not
      // find to the mapping, which a caller iterating over it (mapping(), for an unknown key
      // such as "input.usd") then reads freed memory from.
      const YAML::Node& here = at;
      if (!here.IsMap()) return at;
      const YAML::Node next = here[key];
      if (!next.IsDefined()) return at;
      at.reset(next);
    } else if (rest.front() == '[') {
      const size_t close = rest.find(']');
      if (close == std::string_view::npos) return at;
      size_t index = 0;
      for (char c : rest.substr(1, close - 1)) {
        if (c < '0' || c > '9') return at;
        index = index * 10 + static_cast<size_t>(c - '0');
      }
      rest.remove_prefix(close + 1);
      const YAML::Node& here = at;
      if (!here.IsSequence() || index >= here.size()) return at;
      at.reset(here[index]);
    } else {
      return at;
    }
  }
  return at;
}

}  // namespace parley
