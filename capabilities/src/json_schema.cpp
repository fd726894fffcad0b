// JSON Schema on valijson. Three parts:
//  - SchemaChecker: the keyword whitelist and the shape of every keyword's value, recursively
//    through every subschema (valijson's parser is lenient: it ignores unknown keywords, reads
//    "5" as 5, compiles `pattern` only when validating and never sees unreferenced
//    definitions), local `$ref`s that must point at a schema, and no `$ref` cycles.
//  - Prepared: the schema valijson parsed (cached by the schema's text), from a copy in which
//    integral floats are integers and `format` only applies to strings.
//  - explain(): walks valijson's parsed schema next to the JSON it came from. valijson decides
//    every keyword (each constraint is run by valijson's own ValidationVisitor); a constraint
//    that fails is explained from the schema's keywords, descending into properties, items and
//    subschemas to name the offending value's path.
#include "parley/capabilities/json_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

// Without exceptions valijson aborts on a malformed schema; its CMake target defines this.
#if !VALIJSON_USE_EXCEPTIONS
#error "json_schema.cpp needs VALIJSON_USE_EXCEPTIONS=1 (link the valijson target)"
#endif
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/subschema.hpp>
#include <valijson/validation_visitor.hpp>

#include "parley/base/text.h"

namespace parley::capabilities {

using nlohmann::json;

namespace {

using Adapter = valijson::adapters::NlohmannJsonAdapter;
using valijson::Subschema;
namespace vc = valijson::constraints;

// --- Which schemas are accepted -------------------------------------------------------------

const std::set<std::string, std::less<>> kKeywords = {
    // Any value.
    "type", "enum", "const",
    // Numbers.
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    // Strings.
    "minLength", "maxLength", "pattern", "format",
    // Arrays.
    "items", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains",
    // Objects.
    "properties", "patternProperties", "additionalProperties", "required", "dependencies",
    "propertyNames", "minProperties", "maxProperties",
    // Combining schemas.
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$defs", "definitions",
    // Annotations, never checked.
    "default", "description", "title", "examples", "$comment"};
// What may stand beside `$ref`: draft 7 ignores everything else there.
const std::set<std::string, std::less<>> kRefSiblings = {
    "$defs", "definitions", "default", "description", "title", "examples", "$comment"};
const std::set<std::string, std::less<>> kTypes = {"string", "integer", "number", "boolean",
                                                   "object", "array",   "null"};
// The formats valijson checks; any other `format` is an annotation.
const std::set<std::string, std::less<>> kCheckedFormats = {"date", "time", "date-time"};

Status schema_error(const std::string& where, const std::string& what) {
  return fail(ErrorCode::invalid_argument, fmt::format("schema {}: {}", where, what));
}

// A JSON Pointer reference token (RFC 6901).
std::string pointer_token(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

bool non_negative_integer(const json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

bool compiles(const std::string& pattern, std::string& error) {
  try {
    // valijson compiles patterns the same way (std::regex, ECMAScript).
    const std::regex re(pattern);
    return true;
  } catch (const std::regex_error& e) {
    error = e.what();
    return false;
  }
}

// Checks the whole document: every subschema's keywords, then every `$ref`.
class SchemaChecker {
 public:
  explicit SchemaChecker(const json& root) : root_(root) {}

  Status run() {
    PARLEY_TRY(schema(root_, "(root)", ""));
    for (const auto& ref : refs_) PARLEY_TRY(check_ref(ref));
    return {};
  }

 private:
  struct Ref {
    std::string where;
    std::string pointer;  // without the leading '#'
  };

  Status schema(const json& s, const std::string& where, const std::string& pointer) {
    if (s.is_boolean()) {
      schemas_.insert(pointer);
      return {};
    }
    if (!s.is_object()) return schema_error(where, "expected an object (or true/false)");
    schemas_.insert(pointer);
    for (const auto& [key, value] : s.items()) {
      if (key == "$schema" && pointer.empty()) {
        PARLEY_TRY(dialect(value));
        continue;
      }
      if (kKeywords.count(key) == 0) {
        return schema_error(where, fmt::format("unsupported keyword '{}'", key));
      }
    }
    if (s.contains("$ref")) {
      for (const auto& [key, value] : s.items()) {
        if (key != "$ref" && kRefSiblings.count(key) == 0) {
          return schema_error(where, fmt::format("'$ref' cannot be combined with '{}' (it would be "
                                                 "ignored; put both in an allOf)",
                                                 key));
        }
      }
    }
    for (const auto& [key, value] : s.items()) {
      if (key == "$schema" && pointer.empty()) continue;
      PARLEY_TRY(keyword(s, key, value, where, pointer + "/" + pointer_token(key)));
    }
    return {};
  }

  // `$schema` at the root names the dialect. The drafts 4 to 7 and 2019-09 / 2020-12 mean the
  // same as draft 7 for every keyword accepted here (the ones they changed, such as
  // prefixItems or dependentRequired, are refused as unsupported keywords).
  static Status dialect(const json& value) {
    static const std::set<std::string, std::less<>> kDialects = {
        "json-schema.org/draft-04/schema", "json-schema.org/draft-06/schema",
        "json-schema.org/draft-07/schema", "json-schema.org/draft/2019-09/schema",
        "json-schema.org/draft/2020-12/schema"};
    if (value.is_string()) {
      std::string_view uri = value.get_ref<const std::string&>();
      for (const std::string_view scheme : {"http://", "https://"}) {
        if (uri.starts_with(scheme)) uri.remove_prefix(scheme.size());
      }
      if (uri.ends_with('#')) uri.remove_suffix(1);
      if (kDialects.count(uri) != 0) return {};
    }
    return schema_error("(root)", fmt::format("$schema {} is not a dialect this validator reads "
                                              "(JSON Schema drafts 4 to 7, 2019-09, 2020-12)",
                                              value.dump()));
  }

  Status keyword(const json& s, const std::string& key, const json& value, const std::string& where,
                 const std::string& pointer) {
    if (key == "type") {
      const auto ok = [](const json& t) {
        return t.is_string() && kTypes.count(t.get<std::string>()) != 0;
      };
      bool good = ok(value);
      if (value.is_array()) {
        good = !value.empty();
        std::set<std::string> seen;
        for (const auto& t : value) {
          good = good && ok(t) && seen.insert(t.get<std::string>()).second;
        }
      }
      if (!good) return schema_error(where, fmt::format("bad type {}", value.dump()));
    } else if (key == "properties" || key == "patternProperties" || key == "$defs" ||
               key == "definitions") {
      if (!value.is_object()) return schema_error(where, key + " must be an object");
      for (const auto& [name, sub] : value.items()) {
        std::string error;
        if (key == "patternProperties" && !compiles(name, error)) {
          return schema_error(where, fmt::format("patternProperties key {} does not compile: {}",
                                                 json(name).dump(), error));
        }
        const std::string sub_where = key == "properties"
                                          ? fmt::format("{}.{}", where, name)
                                          : fmt::format("{}.{}.{}", where, key, name);
        PARLEY_TRY(schema(sub, sub_where, pointer + "/" + pointer_token(name)));
      }
    } else if (key == "items") {
      if (value.is_array()) {
        for (size_t i = 0; i < value.size(); ++i) {
          PARLEY_TRY(
              schema(value[i], fmt::format("{}[{}]", where, i), fmt::format("{}/{}", pointer, i)));
        }
      } else {
        PARLEY_TRY(schema(value, where + "[]", pointer));
      }
    } else if (key == "additionalProperties" || key == "additionalItems" || key == "contains" ||
               key == "not" || key == "propertyNames" || key == "if" || key == "then" ||
               key == "else") {
      if (key == "additionalItems" && !(s.contains("items") && s["items"].is_array())) {
        return schema_error(where, "additionalItems only applies when items is a list of schemas");
      }
      if ((key == "then" || key == "else") && !s.contains("if")) {
        return schema_error(where, fmt::format("'{}' without 'if' would be ignored", key));
      }
      PARLEY_TRY(schema(value, where + "." + key, pointer));
    } else if (key == "allOf" || key == "anyOf" || key == "oneOf") {
      if (!value.is_array() || value.empty()) {
        return schema_error(where, key + " must be a non-empty list of schemas");
      }
      for (size_t i = 0; i < value.size(); ++i) {
        PARLEY_TRY(schema(value[i], fmt::format("{}.{}[{}]", where, key, i),
                          fmt::format("{}/{}", pointer, i)));
      }
    } else if (key == "required") {
      if (!value.is_array()) return schema_error(where, "required must be a list of names");
      for (const auto& n : value) {
        if (!n.is_string()) return schema_error(where, "required must be a list of names");
      }
    } else if (key == "dependencies") {
      if (!value.is_object()) return schema_error(where, "dependencies must be an object");
      for (const auto& [name, dep] : value.items()) {
        if (dep.is_array()) {
          for (const auto& n : dep) {
            if (!n.is_string()) {
              return schema_error(
                  where, fmt::format("dependencies.{} must be a list of names or a schema", name));
            }
          }
        } else {
          PARLEY_TRY(schema(dep, fmt::format("{}.dependencies.{}", where, name),
                            pointer + "/" + pointer_token(name)));
        }
      }
    } else if (key == "enum") {
      if (!value.is_array() || value.empty()) {
        return schema_error(where, "enum must be a non-empty list");
      }
    } else if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" ||
               key == "exclusiveMaximum") {
      if (!value.is_number()) return schema_error(where, key + " must be a number");
    } else if (key == "multipleOf") {
      if (!value.is_number() || !(value.get<double>() > 0)) {
        return schema_error(where, "multipleOf must be a number above 0");
      }
    } else if (key == "minLength" || key == "maxLength" || key == "minItems" || key == "maxItems" ||
               key == "minProperties" || key == "maxProperties") {
      if (!non_negative_integer(value)) {
        return schema_error(where, key + " must be a non-negative integer");
      }
    } else if (key == "uniqueItems") {
      if (!value.is_boolean()) return schema_error(where, "uniqueItems must be true or false");
    } else if (key == "pattern") {
      if (!value.is_string()) return schema_error(where, "pattern must be a string");
      std::string error;
      if (!compiles(value.get<std::string>(), error)) {
        return schema_error(where, fmt::format("pattern does not compile: {}", error));
      }
    } else if (key == "format") {
      if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
        return schema_error(where, "format must be a name");
      }
    } else if (key == "$ref") {
      const std::string ref = value.is_string() ? value.get<std::string>() : std::string();
      if (ref.empty() || ref[0] != '#' || ref.find('%') != std::string::npos) {
        return schema_error(where, fmt::format("$ref must be a reference into this schema like "
                                               "\"#/$defs/name\", got {}",
                                               value.dump()));
      }
      refs_.push_back(Ref{where, ref.substr(1)});
    } else if (key == "description" || key == "title" || key == "$comment") {
      if (!value.is_string()) return schema_error(where, key + " must be a string");
    }
    // const, default and examples may hold any value.
    return {};
  }

  Status check_ref(const Ref& ref) const {
    if (schemas_.count(ref.pointer) == 0) {
      return schema_error(
          ref.where,
          fmt::format("$ref \"#{}\" does not point to a schema in this document", ref.pointer));
    }
    // A chain of references must end at a schema: valijson would recurse forever otherwise.
    std::set<std::string> seen;
    std::string at = ref.pointer;
    for (;;) {
      const json& target = root_.at(json::json_pointer(at));
      if (!target.is_object() || !target.contains("$ref")) return {};
      if (!seen.insert(at).second) {
        return schema_error(ref.where,
                            fmt::format("$ref \"#{}\" is a cycle of references", ref.pointer));
      }
      at = target["$ref"].get<std::string>().substr(1);
    }
  }

  const json& root_;
  std::set<std::string> schemas_;  // the JSON Pointer of every schema in the document
  std::vector<Ref> refs_;
};

// --- What valijson parses ---------------------------------------------------------------------

// JSON Schema counts 3.0 as an integer equal to 3; valijson (strict types) does not, so both
// the schema valijson reads and the value it checks hold such numbers as integers. valijson
// reads integers as int64: an unsigned one beyond that becomes a double, so that it still
// compares right against `maximum`.
bool integral_float(const json& v) {
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.2e18;
}

bool huge_unsigned(const json& v) {
  return v.is_number_unsigned() &&
         v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

bool needs_normalizing(const json& v) {
  if (integral_float(v) || huge_unsigned(v)) return true;
  if (v.is_structured()) {
    for (const auto& e : v) {
      if (needs_normalizing(e)) return true;
    }
  }
  return false;
}

void normalize_numbers(json& v) {
  if (integral_float(v)) {
    v = static_cast<int64_t>(v.get<double>());
  } else if (huge_unsigned(v)) {
    v = static_cast<double>(v.get<uint64_t>());
  } else if (v.is_structured()) {
    for (auto& e : v) normalize_numbers(e);
  }
}

// Calls fn on each direct subschema of s (a checked schema).
template <typename Json, typename Fn>
void for_each_subschema(Json& s, Fn&& fn) {
  if (!s.is_object()) return;
  for (auto it = s.begin(); it != s.end(); ++it) {
    const std::string& key = it.key();
    auto& value = it.value();
    if (key == "properties" || key == "patternProperties" || key == "$defs" ||
        key == "definitions" || key == "allOf" || key == "anyOf" || key == "oneOf" ||
        (key == "items" && value.is_array())) {
      for (auto& sub : value) fn(sub);
    } else if (key == "dependencies") {
      for (auto& sub : value) {
        if (!sub.is_array()) fn(sub);
      }
    } else if (key == "items" || key == "additionalProperties" || key == "additionalItems" ||
               key == "contains" || key == "not" || key == "propertyNames" || key == "if" ||
               key == "then" || key == "else") {
      fn(value);
    }
  }
}

// valijson applies `format` to any value (and throws on a non-empty object or list): a checked
// format moves into `allOf: [{if: {type: string}, then: {format: …}}]` (appended, so no $ref
// into the schema moves); an unchecked one is dropped.
void rewrite_formats(json& s) {
  for_each_subschema(s, [](json& sub) { rewrite_formats(sub); });
  if (!s.is_object()) return;
  const auto f = s.find("format");
  if (f == s.end()) return;
  const std::string format = f->get<std::string>();
  s.erase(f);
  if (kCheckedFormats.count(format) != 0) {
    s["allOf"].push_back(json{{"if", {{"type", "string"}}}, {"then", {{"format", format}}}});
  }
}

struct Prepared {
  json doc;  // what valijson parsed: the schema, normalized and with formats rewritten
  valijson::Schema schema;
};

Result<std::shared_ptr<const Prepared>> prepare(const json& schema) {
  try {
    PARLEY_TRY(SchemaChecker(schema).run());
    auto prepared = std::make_shared<Prepared>();
    prepared->doc = schema;
    if (prepared->doc.is_object()) prepared->doc.erase("$schema");
    normalize_numbers(prepared->doc);
    rewrite_formats(prepared->doc);
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    parser.populateSchema(Adapter(prepared->doc), prepared->schema);
    return std::shared_ptr<const Prepared>(std::move(prepared));
  } catch (const std::exception& e) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("schema (root): cannot be read: {}", e.what()));
  }
}

// Parsed schemas by their text, the oldest dropped beyond kCachedSchemas.
constexpr size_t kCachedSchemas = 256;

class SchemaCache {
 public:
  Result<std::shared_ptr<const Prepared>> get(const json& schema) {
    std::string key = schema.dump(-1, ' ', false, json::error_handler_t::replace);
    {
      std::lock_guard lock(mu_);
      if (auto it = entries_.find(key); it != entries_.end()) return it->second;
    }
    // Parsed outside the lock; two threads may parse the same schema once each.
    auto prepared = prepare(schema);
    if (!prepared.ok()) return prepared;
    std::lock_guard lock(mu_);
    auto [it, added] = entries_.emplace(key, *prepared);
    if (added) {
      order_.push_back(std::move(key));
      while (order_.size() > kCachedSchemas) {
        entries_.erase(order_.front());
        order_.pop_front();
      }
    }
    return it->second;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Prepared>> entries_;
  std::deque<std::string> order_;  // oldest first
};

SchemaCache& schema_cache() {
  static SchemaCache cache;
  return cache;
}

// --- Explaining why a value fails -------------------------------------------------------------

struct Found {
  SchemaProblem problem;
  std::string expected_types;  // set for a wrong type: lets anyOf/oneOf merge their branches
};

struct Sink {
  size_t max = 5;
  std::vector<Found> found;
  bool full() const { return found.size() >= max; }
  void add(std::string path, std::string message, std::string expected_types = {}) {
    if (full()) return;
    found.push_back(
        Found{SchemaProblem{std::move(path), std::move(message)}, std::move(expected_types)});
  }
};

// One validation's state.
struct Context {
  const json& doc;
  std::unordered_map<std::string, std::regex> regexes;  // valijson's pattern cache, and ours

  const std::regex& regex(const std::string& pattern) {
    auto it = regexes.find(pattern);
    if (it == regexes.end()) it = regexes.emplace(pattern, std::regex(pattern)).first;
    return it->second;
  }
};

const json kAnything = true;

// The schema `$ref`s lead to (checked: they resolve and do not cycle).
const json& resolve(const json& doc, const json& node) {
  const json* at = &node;
  for (int hops = 0; hops < 64 && at->is_object(); ++hops) {
    const auto ref = at->find("$ref");
    if (ref == at->end() || !ref->is_string()) break;
    at = &doc.at(json::json_pointer(ref->get<std::string>().substr(1)));
  }
  return *at;
}

const json& child(const json& node, const char* key) {
  if (!node.is_object()) return kAnything;
  const auto it = node.find(key);
  return it == node.end() ? kAnything : *it;
}
const json& child(const json& node, const char* key, size_t index) {
  const json& list = child(node, key);
  return list.is_array() && index < list.size() ? list[index] : kAnything;
}
const json& child(const json& node, const char* key, const std::string& name) {
  const json& map = child(node, key);
  if (!map.is_object()) return kAnything;
  const auto it = map.find(name);
  return it == map.end() ? kAnything : *it;
}

std::string shortened_dump(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 80) + "…";
  return s;
}

std::string format_example(const std::string& format) {
  if (format == "date") return "a date like 2024-05-31";
  if (format == "time") return "a time like 09:30:00Z";
  if (format == "date-time") return "a date-time like 2024-05-31T09:30:00Z";
  return "a " + format;
}

std::string render(const std::vector<Found>& branch, const std::string& path) {
  if (branch.empty()) return "does not match";
  const SchemaProblem& first = branch.front().problem;
  std::string out = first.path == path ? first.message : first.path + ": " + first.message;
  if (branch.size() > 1) out += fmt::format(" (+{} more)", branch.size() - 1);
  return out;
}

void explain(Context& cx, const Subschema& sub, const json& node, const json& value,
             const std::string& path, Sink& sink);

// Explains, for one subschema and one value, each constraint valijson says fails.
class Explainer final : public vc::ConstraintVisitor {
 public:
  Explainer(Context& cx, const json& node, const json& value, const std::string& path, Sink& sink)
      : cx_(cx), node_(node), value_(value), adapter_(value), path_(path), sink_(sink) {}

  bool visit(const AllOfConstraint& c) override {
    return check(c, "allOf", [&] {
      c.applyToSubschemas([&](unsigned index, const Subschema* s) {
        explain(cx_, *s, child(node_, "allOf", index), value_, path_, sink_);
        return !sink_.full();
      });
    });
  }

  bool visit(const AnyOfConstraint& c) override {
    return check(c, "anyOf", [&] { none_matched(c, "anyOf"); });
  }

  bool visit(const OneOfConstraint& c) override {
    return check(c, "oneOf", [&] {
      size_t count = 0;
      std::vector<std::string> matching;
      c.applyToSubschemas([&](unsigned index, const Subschema* s) {
        ++count;
        if (passes(*s)) matching.push_back(std::to_string(index + 1));
        return true;
      });
      if (matching.size() < 2) {
        none_matched(c, "oneOf");
        return;
      }
      sink_.add(path_,
                fmt::format("expected exactly one of the {} alternatives (oneOf) to match, got {} "
                            "matching alternatives {}",
                            count, describe_json(value_), fmt::join(matching, ", ")));
    });
  }

  bool visit(const ConditionalConstraint& c) override {
    return check(c, "if", [&] {
      const Subschema* condition = c.getIfSubschema();
      if (condition != nullptr && passes(*condition)) {
        if (const Subschema* then = c.getThenSubschema()) {
          explain(cx_, *then, child(node_, "then"), value_, path_, sink_);
        }
      } else if (const Subschema* otherwise = c.getElseSubschema()) {
        explain(cx_, *otherwise, child(node_, "else"), value_, path_, sink_);
      }
    });
  }

  bool visit(const ConstConstraint& c) override {
    return check(c, "const", [&] {
      if (const json* expected = keyword("const")) {
        sink_.add(path_, fmt::format("expected {}, got {}", shortened_dump(*expected),
                                     describe_json(value_)));
      }
    });
  }

  bool visit(const ContainsConstraint& c) override {
    return check(c, "contains", [&] {
      sink_.add(path_, fmt::format("expected at least one item matching the 'contains' schema, but "
                                   "none of the {} items does",
                                   value_.size()));
    });
  }

  bool visit(const DependenciesConstraint& c) override {
    return check(c, "dependencies", [&] {
      if (!value_.is_object()) return;
      c.applyToPropertyDependencies([&](const auto& name, const auto& needed) {
        const std::string present(name);
        if (!value_.contains(present)) return true;
        for (const auto& n : needed) {
          const std::string missing(n);
          if (!value_.contains(missing)) {
            sink_.add(path_ + "." + missing,
                      fmt::format("required but missing (because \"{}\" is given)", present));
          }
        }
        return true;
      });
      c.applyToSchemaDependencies([&](const auto& name, const Subschema* s) {
        const std::string present(name);
        if (value_.contains(present)) {
          explain(cx_, *s, child(node_, "dependencies", present), value_, path_, sink_);
        }
        return true;
      });
    });
  }

  bool visit(const EnumConstraint& c) override {
    return check(c, "enum", [&] {
      const json* options = keyword("enum");
      if (options == nullptr) return;
      std::string list;
      for (const auto& option : *options) {
        list += (list.empty() ? "" : ", ") + shortened_dump(option);
      }
      sink_.add(path_, fmt::format("expected one of {}, got {}", list, describe_json(value_)));
    });
  }

  bool visit(const FormatConstraint& c) override {
    if (!value_.is_string()) return true;  // formats describe strings only
    return check(c, "format", [&] {
      const std::string& format = c.getFormat();
      sink_.add(path_, fmt::format("expected {} (format \"{}\"), got {}", format_example(format),
                                   format, describe_json(value_)));
    });
  }

  bool visit(const LinearItemsConstraint& c) override {
    return check(c, "items", [&] {
      if (!value_.is_array()) return;
      const size_t listed = c.getItemSubschemaCount();
      c.applyToItemSubschemas([&](unsigned index, const Subschema* s) {
        if (index < value_.size()) {
          explain(cx_, *s, child(node_, "items", index), value_[index], item_path(index), sink_);
        }
        return !sink_.full();
      });
      if (value_.size() <= listed) return;
      if (const Subschema* extra = c.getAdditionalItemsSubschema()) {
        for (size_t i = listed; i < value_.size() && !sink_.full(); ++i) {
          explain(cx_, *extra, child(node_, "additionalItems"), value_[i], item_path(i), sink_);
        }
      } else {
        sink_.add(path_, fmt::format("expected at most {} items, got {}", listed, value_.size()));
      }
    });
  }

  bool visit(const SingularItemsConstraint& c) override {
    return check(c, "items", [&] {
      const Subschema* s = c.getItemsSubschema();
      if (!value_.is_array() || s == nullptr) return;
      for (size_t i = 0; i < value_.size() && !sink_.full(); ++i) {
        explain(cx_, *s, child(node_, "items"), value_[i], item_path(i), sink_);
      }
    });
  }

  bool visit(const MaximumConstraint& c) override {
    return check(c, "maximum", [&] {
      if (c.getExclusiveMaximum()) {
        sink_.add(path_, fmt::format("{} is not below the exclusive maximum {}", value_.dump(),
                                     number("exclusiveMaximum", c.getMaximum())));
      } else {
        sink_.add(path_, fmt::format("{} is above the maximum {}", value_.dump(),
                                     number("maximum", c.getMaximum())));
      }
    });
  }

  bool visit(const MinimumConstraint& c) override {
    return check(c, "minimum", [&] {
      if (c.getExclusiveMinimum()) {
        sink_.add(path_, fmt::format("{} is not above the exclusive minimum {}", value_.dump(),
                                     number("exclusiveMinimum", c.getMinimum())));
      } else {
        sink_.add(path_, fmt::format("{} is below the minimum {}", value_.dump(),
                                     number("minimum", c.getMinimum())));
      }
    });
  }

  bool visit(const MaxItemsConstraint& c) override {
    return check(c, "maxItems", [&] {
      sink_.add(path_,
                fmt::format("expected at most {} items, got {}", c.getMaxItems(), value_.size()));
    });
  }

  bool visit(const MinItemsConstraint& c) override {
    return check(c, "minItems", [&] {
      sink_.add(path_,
                fmt::format("expected at least {} items, got {}", c.getMinItems(), value_.size()));
    });
  }

  bool visit(const MaxLengthConstraint& c) override {
    return check(c, "maxLength", [&] {
      sink_.add(path_,
                fmt::format("expected at most {} characters, got {}", c.getMaxLength(), length()));
    });
  }

  bool visit(const MinLengthConstraint& c) override {
    return check(c, "minLength", [&] {
      sink_.add(path_,
                fmt::format("expected at least {} characters, got {}", c.getMinLength(), length()));
    });
  }

  bool visit(const MaxPropertiesConstraint& c) override {
    return check(c, "maxProperties", [&] {
      sink_.add(path_, fmt::format("expected at most {} fields, got {}", c.getMaxProperties(),
                                   value_.size()));
    });
  }

  bool visit(const MinPropertiesConstraint& c) override {
    return check(c, "minProperties", [&] {
      sink_.add(path_, fmt::format("expected at least {} fields, got {}", c.getMinProperties(),
                                   value_.size()));
    });
  }

  bool visit(const MultipleOfDoubleConstraint& c) override {
    return check(c, "multipleOf", [&] {
      sink_.add(path_, fmt::format("{} is not a multiple of {}", value_.dump(),
                                   number("multipleOf", c.getDivisor())));
    });
  }

  bool visit(const MultipleOfIntConstraint& c) override {
    return check(c, "multipleOf", [&] {
      sink_.add(path_, fmt::format("{} is not a multiple of {}", value_.dump(), c.getDivisor()));
    });
  }

  bool visit(const NotConstraint& c) override {
    return check(c, "not", [&] {
      sink_.add(path_, fmt::format("{} is not allowed here (it matches the 'not' schema)",
                                   describe_json(value_)));
    });
  }

  bool visit(const PatternConstraint& c) override {
    return check(c, "pattern", [&] {
      const json pattern = c.getPattern<std::string::allocator_type>();
      sink_.add(path_, fmt::format("{} does not match the pattern {}", describe_json(value_),
                                   pattern.dump()));
    });
  }

  bool visit(const PolyConstraint& c) override {
    return check(c, "custom", [] {});
  }

  bool visit(const PropertiesConstraint& c) override {
    return check(c, "properties", [&] {
      if (!value_.is_object()) return;
      std::map<std::string, const Subschema*> properties;
      c.applyToProperties([&](const auto& name, const Subschema* s) {
        properties.emplace(std::string(name), s);
        return true;
      });
      std::vector<std::pair<std::string, const Subschema*>> patterns;
      c.applyToPatternProperties([&](const auto& pattern, const Subschema* s) {
        patterns.emplace_back(std::string(pattern), s);
        return true;
      });
      const Subschema* additional = c.getAdditionalPropertiesSubschema();
      for (auto it = value_.begin(); it != value_.end() && !sink_.full(); ++it) {
        const std::string& key = it.key();
        const std::string field = path_ + "." + key;
        bool matched = false;
        if (const auto p = properties.find(key); p != properties.end()) {
          matched = true;
          explain(cx_, *p->second, child(node_, "properties", key), *it, field, sink_);
        }
        for (const auto& [pattern, s] : patterns) {
          if (std::regex_search(key, cx_.regex(pattern))) {
            matched = true;
            explain(cx_, *s, child(node_, "patternProperties", pattern), *it, field, sink_);
          }
        }
        if (matched) continue;
        if (additional != nullptr) {
          explain(cx_, *additional, child(node_, "additionalProperties"), *it, field, sink_);
        } else {
          sink_.add(field, unknown_field(properties, patterns));
        }
      }
    });
  }

  bool visit(const PropertyNamesConstraint& c) override {
    return check(c, "propertyNames", [&] {
      const Subschema* s = c.getSubschema();
      if (!value_.is_object() || s == nullptr) return;
      for (auto it = value_.begin(); it != value_.end() && !sink_.full(); ++it) {
        const json name = it.key();
        Sink one{1, {}};
        explain(cx_, *s, child(node_, "propertyNames"), name, path_ + "." + it.key(), one);
        if (!one.found.empty()) {
          sink_.add(path_ + "." + it.key(),
                    "invalid field name: " + one.found.front().problem.message);
        }
      }
    });
  }

  bool visit(const RequiredConstraint& c) override {
    return check(c, "required", [&] {
      if (!value_.is_object()) return;
      c.applyToRequiredProperties([&](const auto& name) {
        const std::string key(name);
        if (!value_.contains(key)) sink_.add(path_ + "." + key, "required but missing");
        return true;
      });
    });
  }

  bool visit(const TypeConstraint& c) override {
    return check(c, "type", [&] {
      const json* type = keyword("type");
      if (type == nullptr) return;
      std::string expected;
      if (type->is_string()) {
        expected = type->get<std::string>();
      } else if (type->is_array()) {
        for (const auto& t : *type) {
          expected += (expected.empty() ? "" : " or ") + t.get<std::string>();
        }
      }
      if (!expected.empty()) {
        sink_.add(path_, fmt::format("expected {}, got {}", expected, describe_json(value_)),
                  expected);
      }
    });
  }

  bool visit(const UniqueItemsConstraint& c) override {
    return check(c, "uniqueItems", [&] {
      if (!value_.is_array()) return;
      for (size_t j = 1; j < value_.size(); ++j) {
        for (size_t i = 0; i < j; ++i) {
          if (value_[i] == value_[j]) {
            sink_.add(item_path(j),
                      fmt::format("expected unique items, got a repeat of item [{}]", i));
            break;
          }
        }
      }
    });
  }

 private:
  // valijson decides; when it says no, `explain_failure` says why. Should that find nothing to
  // say, the keyword itself is named.
  template <typename Constraint, typename Fn>
  bool check(const Constraint& c, std::string_view name, Fn&& explain_failure) {
    valijson::ValidationVisitor<Adapter> decide(adapter_, {}, true, nullptr, cx_.regexes);
    if (c.accept(decide)) return true;
    const size_t before = sink_.found.size();
    explain_failure();
    if (sink_.found.size() == before) {
      sink_.add(path_, fmt::format("does not satisfy '{}', got {}", name, describe_json(value_)));
    }
    return false;
  }

  bool passes(const Subschema& s) {
    valijson::ValidationVisitor<Adapter> decide(adapter_, {}, true, nullptr, cx_.regexes);
    return decide.validateSchema(s);
  }

  // anyOf, or oneOf with no alternative matching: what each alternative objects to.
  template <typename Combinator>
  void none_matched(const Combinator& c, const char* name) {
    std::vector<std::vector<Found>> branches;
    c.applyToSubschemas([&](unsigned index, const Subschema* s) {
      Sink branch{20, {}};
      explain(cx_, *s, child(node_, name, index), value_, path_, branch);
      branches.push_back(std::move(branch.found));
      return true;
    });
    // Alternatives that differ only in type ("a string or null") read as one type list.
    std::vector<std::string> types;
    bool only_types = !branches.empty();
    for (const auto& b : branches) {
      if (b.size() == 1 && b.front().problem.path == path_ && !b.front().expected_types.empty()) {
        if (std::find(types.begin(), types.end(), b.front().expected_types) == types.end()) {
          types.push_back(b.front().expected_types);
        }
      } else {
        only_types = false;
      }
    }
    if (only_types) {
      const std::string expected = fmt::format("{}", fmt::join(types, " or "));
      sink_.add(path_, fmt::format("expected {}, got {}", expected, describe_json(value_)),
                expected);
      return;
    }
    std::string each;
    for (size_t i = 0; i < branches.size(); ++i) {
      each += fmt::format("{}({}) {}", i == 0 ? "" : " | ", i + 1, render(branches[i], path_));
    }
    sink_.add(path_, fmt::format("matches none of the {} alternatives ({}): {}", branches.size(),
                                 name, each));
  }

  std::string unknown_field(
      const std::map<std::string, const Subschema*>& properties,
      const std::vector<std::pair<std::string, const Subschema*>>& patterns) const {
    std::string known;
    for (const auto& [name, s] : properties) known += (known.empty() ? "" : ", ") + name;
    std::string matching;
    for (const auto& [pattern, s] : patterns) {
      matching += (matching.empty() ? "" : ", ") + json(pattern).dump();
    }
    if (known.empty() && matching.empty()) return "unknown field (none are accepted)";
    if (matching.empty()) return fmt::format("unknown field (known: {})", known);
    if (known.empty()) return fmt::format("unknown field (names must match {})", matching);
    return fmt::format("unknown field (known: {}, or names matching {})", known, matching);
  }

  const json* keyword(const char* key) const {
    if (!node_.is_object()) return nullptr;
    const auto it = node_.find(key);
    return it == node_.end() ? nullptr : &*it;
  }

  // The schema's own text for a number (`1`, not `1.000000`).
  std::string number(const char* key, double fallback) const {
    const json* n = keyword(key);
    return n != nullptr && n->is_number() ? n->dump() : json(fallback).dump();
  }

  size_t length() const {
    return value_.is_string() ? utf8_length(value_.get_ref<const std::string&>()) : 0;
  }

  std::string item_path(size_t index) const { return fmt::format("{}[{}]", path_, index); }

  Context& cx_;
  const json& node_;
  const json& value_;
  Adapter adapter_;
  const std::string& path_;
  Sink& sink_;
};

int rank(const vc::Constraint* c) {
  // A value of the wrong type is reported as that alone; missing fields before the fields there.
  if (dynamic_cast<const vc::TypeConstraint*>(c) != nullptr) return 0;
  if (dynamic_cast<const vc::RequiredConstraint*>(c) != nullptr) return 1;
  return 2;
}

void explain(Context& cx, const Subschema& sub, const json& raw_node, const json& value,
             const std::string& path, Sink& sink) {
  if (sink.full()) return;
  const json& node = resolve(cx.doc, raw_node);
  if (sub.getAlwaysInvalid()) {
    sink.add(path, fmt::format("not allowed here, got {}", describe_json(value)));
    return;
  }
  std::vector<const vc::Constraint*> constraints;
  Subschema::ApplyFunction collect = [&](const vc::Constraint& c) {
    constraints.push_back(&c);
    return true;
  };
  sub.apply(collect);
  std::stable_sort(
      constraints.begin(), constraints.end(),
      [](const vc::Constraint* a, const vc::Constraint* b) { return rank(a) < rank(b); });
  Explainer explainer(cx, node, value, path, sink);
  for (const vc::Constraint* c : constraints) {
    if (sink.full()) return;
    if (!c->accept(explainer) && rank(c) == 0) return;
  }
}

// Whether valijson can measure `s`. It counts a string's characters as a C string
// (utf8_utils.hpp's u8_strlen): it stops at a NUL, so "a\0" and ten thousand more bytes passed
// maxLength 3, and it reads past a table on bytes that are not UTF-8 (text typed to a /command;
// JSON from a model may hold "\u0000").
bool measurable(std::string_view s) {
  return s.find('\0') == std::string_view::npos && !invalid_utf8_at(s).has_value();
}

bool all_measurable(const json& v) {
  if (v.is_string()) return measurable(v.get_ref<const std::string&>());
  if (v.is_array()) return std::all_of(v.begin(), v.end(), all_measurable);
  if (v.is_object()) {
    for (const auto& [key, item] : v.items()) {
      if (!measurable(key) || !all_measurable(item)) return false;
    }
  }
  return true;
}

// `s` as valijson may read it: each byte that is not UTF-8, and each NUL, one U+FFFD (so that
// lengths count each as a character).
std::string measurable_text(std::string_view s) {
  std::string out = valid_utf8(s);
  for (size_t at = out.find('\0'); at != std::string::npos; at = out.find('\0', at)) {
    out.replace(at, 1, "\uFFFD");
  }
  return out;
}

json measurable_copy(const json& v) {
  if (v.is_string()) return measurable_text(v.get_ref<const std::string&>());
  if (v.is_array()) {
    json out = json::array();
    for (const auto& item : v) out.push_back(measurable_copy(item));
    return out;
  }
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [key, item] : v.items()) out[measurable_text(key)] = measurable_copy(item);
    return out;
  }
  return v;
}

std::vector<Found> find_problems(const json& schema, const json& value, std::string_view root,
                                 size_t max) {
  Sink sink{max, {}};
  if (max == 0) return {};
  const std::string path(root);
  try {
    const auto prepared = schema_cache().get(schema);
    if (!prepared.ok()) {
      sink.add(path, prepared.error().message);
      return std::move(sink.found);
    }
    json normalized;
    const json* checked = &value;
    if (!all_measurable(value)) {
      normalized = measurable_copy(value);
      checked = &normalized;
    }
    if (needs_normalizing(*checked)) {
      if (checked != &normalized) normalized = value;
      normalize_numbers(normalized);
      checked = &normalized;
    }
    const Prepared& p = **prepared;
    Context cx{p.doc, {}};
    // Most values are valid: one pass of valijson says so; only a failure is explained.
    valijson::ValidationVisitor<Adapter> decide(Adapter(*checked), {}, true, nullptr, cx.regexes);
    if (decide.validateSchema(p.schema)) return {};
    explain(cx, p.schema, p.doc, *checked, path, sink);
  } catch (const std::exception& e) {
    sink.add(path, fmt::format("could not be checked against the schema: {}", e.what()));
  } catch (...) {
    sink.add(path, "could not be checked against the schema");
  }
  return std::move(sink.found);
}

// --- Defaults ---------------------------------------------------------------------------------

// `s` with local `$ref`s followed, as far as they resolve.
const json& follow_refs(const json& root, const json& s) {
  const json* at = &s;
  for (int hops = 0; hops < 16 && at->is_object(); ++hops) {
    const auto ref = at->find("$ref");
    if (ref == at->end() || !ref->is_string()) break;
    const auto& text = ref->get_ref<const std::string&>();
    if (text.empty() || text[0] != '#') break;
    try {
      const json::json_pointer pointer(text.substr(1));
      if (!root.contains(pointer)) break;
      at = &root.at(pointer);
    } catch (const json::exception&) {
      break;
    }
  }
  return *at;
}

json fill_defaults(const json& root, const json& raw, json value, int depth) {
  const json& schema = follow_refs(root, raw);
  if (!schema.is_object() || depth > 32) return value;
  if (value.is_null() && schema.contains("default")) return schema["default"];
  if (value.is_object()) {
    if (auto props = schema.find("properties"); props != schema.end() && props->is_object()) {
      for (const auto& [key, raw_sub] : props->items()) {
        const json& sub = follow_refs(root, raw_sub);
        if (value.contains(key)) {
          value[key] = fill_defaults(root, sub, std::move(value[key]), depth + 1);
        } else if (sub.is_object() && sub.contains("default")) {
          value[key] = sub["default"];
        } else if (sub.is_object() && sub.contains("type") && sub["type"] == "object" &&
                   sub.contains("properties")) {
          json filled = fill_defaults(root, sub, json::object(), depth + 1);
          if (!filled.empty()) value[key] = std::move(filled);
        }
      }
    }
  }
  return value;
}

}  // namespace

std::string describe_json(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return fmt::format("the boolean {}", v.dump());
    case json::value_t::string: {
      std::string s = v.get<std::string>();
      if (s.size() > 40) s = s.substr(0, 40) + "…";
      return fmt::format("the string {}",
                         json(s).dump(-1, ' ', false, json::error_handler_t::replace));
    }
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return fmt::format("the number {}", v.dump());
    case json::value_t::object: return "an object";
    case json::value_t::array: return "a list";
    default: return "an unreadable value";
  }
}

Status check_schema(const json& schema) {
  auto prepared = schema_cache().get(schema);
  if (!prepared.ok()) return fail(prepared.error());
  return {};
}

Status validate(const json& schema, const json& value, std::string_view root) {
  const auto found = find_problems(schema, value, root, 5);
  if (found.empty()) return {};
  std::string message;
  for (const auto& f : found) {
    message +=
        fmt::format("{}{}: {}", message.empty() ? "" : "; ", f.problem.path, f.problem.message);
  }
  return fail(ErrorCode::invalid_argument, std::move(message));
}

std::vector<SchemaProblem> problems(const json& schema, const json& value, std::string_view root,
                                    size_t max) {
  std::vector<SchemaProblem> out;
  for (auto& f : find_problems(schema, value, root, max)) out.push_back(std::move(f.problem));
  return out;
}

json with_defaults(const json& schema, json value) {
  return fill_defaults(schema, schema, std::move(value), 0);
}

}  // namespace parley::capabilities
