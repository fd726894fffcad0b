#include "parley/capabilities/json_schema.h"

#include <fmt/format.h>

#include <regex>
#include <set>
#include <vector>

namespace parley::capabilities {

using nlohmann::json;

namespace {

const std::set<std::string, std::less<>> kKeywords = {
    "type",     "properties", "required",  "additionalProperties", "enum",  "minimum",
    "maximum",  "minLength",  "maxLength", "pattern",              "items", "minItems",
    "maxItems", "default",    "description", "title",              "format", "examples"};
const std::set<std::string, std::less<>> kTypes = {"string", "integer", "number", "boolean",
                                                   "object", "array",   "null"};

Status schema_error(const std::string& where, const std::string& what) {
  return fail(ErrorCode::invalid_argument, fmt::format("schema {}: {}", where, what));
}

bool is_type(const json& v, std::string_view type) {
  if (type == "string") return v.is_string();
  if (type == "integer") {
    if (v.is_number_integer()) return true;
    // 3.0 is an integer in JSON Schema.
    return v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>()));
  }
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "null") return v.is_null();
  return false;
}

Status check_at(const json& s, const std::string& where) {
  if (!s.is_object()) return schema_error(where, "expected an object");
  for (const auto& [key, value] : s.items()) {
    if (kKeywords.count(key) == 0) {
      return schema_error(where, fmt::format("unsupported keyword '{}'", key));
    }
    if (key == "type") {
      const auto ok = [](const json& t) { return t.is_string() && kTypes.count(t.get<std::string>()) != 0; };
      bool good = ok(value);
      if (value.is_array()) {
        good = !value.empty();
        for (const auto& t : value) good = good && ok(t);
      }
      if (!good) return schema_error(where, fmt::format("bad type {}", value.dump()));
    } else if (key == "properties") {
      if (!value.is_object()) return schema_error(where, "properties must be an object");
      for (const auto& [name, sub] : value.items()) {
        PARLEY_TRY(check_at(sub, where + "." + name));
      }
    } else if (key == "items") {
      PARLEY_TRY(check_at(value, where + "[]"));
    } else if (key == "required") {
      if (!value.is_array()) return schema_error(where, "required must be a list of names");
      for (const auto& n : value) {
        if (!n.is_string()) return schema_error(where, "required must be a list of names");
      }
    } else if (key == "additionalProperties") {
      if (!value.is_boolean()) return schema_error(where, "additionalProperties must be true or false");
    } else if (key == "enum") {
      if (!value.is_array() || value.empty()) return schema_error(where, "enum must be a non-empty list");
    } else if (key == "minimum" || key == "maximum") {
      if (!value.is_number()) return schema_error(where, key + " must be a number");
    } else if (key == "minLength" || key == "maxLength" || key == "minItems" || key == "maxItems") {
      if (!value.is_number_integer() || value.get<int64_t>() < 0) {
        return schema_error(where, key + " must be a non-negative integer");
      }
    } else if (key == "pattern") {
      if (!value.is_string()) return schema_error(where, "pattern must be a string");
      try {
        std::regex re(value.get<std::string>(), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return schema_error(where, fmt::format("pattern does not compile: {}", e.what()));
      }
    }
  }
  return {};
}

struct Validator {
  size_t max = 5;
  std::vector<SchemaProblem> problems;
  bool full() const { return problems.size() >= max; }
  void add(const std::string& path, const std::string& what) {
    if (!full()) problems.push_back(SchemaProblem{path, what});
  }

  void run(const json& s, const json& v, const std::string& path) {
    if (full()) return;
    if (auto t = s.find("type"); t != s.end()) {
      bool ok = false;
      std::string expected;
      if (t->is_string()) {
        ok = is_type(v, t->get<std::string>());
        expected = t->get<std::string>();
      } else {
        for (const auto& one : *t) {
          ok = ok || is_type(v, one.get<std::string>());
          expected += (expected.empty() ? "" : " or ") + one.get<std::string>();
        }
      }
      if (!ok) {
        add(path, fmt::format("expected {}, got {}", expected, describe_json(v)));
        return;
      }
    }
    if (auto e = s.find("enum"); e != s.end()) {
      bool found = false;
      for (const auto& option : *e) found = found || option == v;
      if (!found) {
        std::string options;
        for (const auto& option : *e) options += (options.empty() ? "" : ", ") + option.dump();
        add(path, fmt::format("expected one of {}, got {}", options, describe_json(v)));
      }
    }
    if (v.is_number()) {
      const double d = v.get<double>();
      if (auto m = s.find("minimum"); m != s.end() && d < m->get<double>()) {
        add(path, fmt::format("{} is below the minimum {}", v.dump(), m->dump()));
      }
      if (auto m = s.find("maximum"); m != s.end() && d > m->get<double>()) {
        add(path, fmt::format("{} is above the maximum {}", v.dump(), m->dump()));
      }
    }
    if (v.is_string()) {
      const auto& str = v.get_ref<const std::string&>();
      // Lengths count code points, as JSON Schema says.
      size_t n = 0;
      for (unsigned char c : str) n += (c & 0xC0) != 0x80 ? 1 : 0;
      if (auto m = s.find("minLength"); m != s.end() && n < m->get<size_t>()) {
        add(path, fmt::format("expected at least {} characters, got {}", m->get<size_t>(), n));
      }
      if (auto m = s.find("maxLength"); m != s.end() && n > m->get<size_t>()) {
        add(path, fmt::format("expected at most {} characters, got {}", m->get<size_t>(), n));
      }
      if (auto p = s.find("pattern"); p != s.end()) {
        const std::regex re(p->get<std::string>(), std::regex::ECMAScript);
        if (!std::regex_search(str, re)) {
          add(path, fmt::format("{} does not match the pattern {}", describe_json(v), p->dump()));
        }
      }
    }
    if (v.is_array()) {
      if (auto m = s.find("minItems"); m != s.end() && v.size() < m->get<size_t>()) {
        add(path, fmt::format("expected at least {} items, got {}", m->get<size_t>(), v.size()));
      }
      if (auto m = s.find("maxItems"); m != s.end() && v.size() > m->get<size_t>()) {
        add(path, fmt::format("expected at most {} items, got {}", m->get<size_t>(), v.size()));
      }
      if (auto items = s.find("items"); items != s.end()) {
        for (size_t i = 0; i < v.size(); ++i) run(*items, v[i], fmt::format("{}[{}]", path, i));
      }
    }
    if (v.is_object()) {
      const auto props = s.find("properties");
      if (auto r = s.find("required"); r != s.end()) {
        for (const auto& name : *r) {
          if (!v.contains(name.get<std::string>())) {
            add(path + "." + name.get<std::string>(), "required but missing");
          }
        }
      }
      for (const auto& [key, value] : v.items()) {
        if (props != s.end() && props->contains(key)) {
          run((*props)[key], value, path + "." + key);
        } else if (auto a = s.find("additionalProperties"); a != s.end() && !a->get<bool>()) {
          std::string known;
          if (props != s.end()) {
            for (const auto& [k, _] : props->items()) known += (known.empty() ? "" : ", ") + k;
          }
          add(path + "." + key,
              known.empty() ? std::string("unknown field (none are accepted)")
                            : fmt::format("unknown field (known: {})", known));
        }
      }
    }
  }
};

}  // namespace

std::string describe_json(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return fmt::format("the boolean {}", v.dump());
    case json::value_t::string: {
      std::string s = v.get<std::string>();
      if (s.size() > 40) s = s.substr(0, 40) + "…";
      return fmt::format("the string {}", json(s).dump(-1, ' ', false, json::error_handler_t::replace));
    }
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return fmt::format("the number {}", v.dump());
    case json::value_t::object: return "an object";
    case json::value_t::array: return "a list";
    default: return "an unreadable value";
  }
}

Status check_schema(const json& schema) { return check_at(schema, "(root)"); }

Status validate(const json& schema, const json& value, std::string_view root) {
  Validator v;
  v.run(schema, value, std::string(root));
  if (v.problems.empty()) return {};
  std::string message;
  for (const auto& p : v.problems) message += fmt::format("{}{}: {}", message.empty() ? "" : "; ", p.path, p.message);
  return fail(ErrorCode::invalid_argument, std::move(message));
}

std::vector<SchemaProblem> problems(const json& schema, const json& value, std::string_view root,
                                    size_t max) {
  Validator v;
  v.max = max;
  v.run(schema, value, std::string(root));
  return std::move(v.problems);
}

json with_defaults(const json& schema, json value) {
  if (!schema.is_object()) return value;
  if (value.is_null() && schema.contains("default")) return schema["default"];
  if (value.is_object()) {
    if (auto props = schema.find("properties"); props != schema.end()) {
      for (const auto& [key, sub] : props->items()) {
        if (value.contains(key)) {
          value[key] = with_defaults(sub, std::move(value[key]));
        } else if (sub.contains("default")) {
          value[key] = sub["default"];
        } else if (sub.value("type", "") == "object" && sub.contains("properties")) {
          json filled = with_defaults(sub, json::object());
          if (!filled.empty()) value[key] = std::move(filled);
        }
      }
    }
  }
  return value;
}

}  // namespace parley::capabilities
