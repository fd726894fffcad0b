// YamlReader: the one reader of parley's YAML files (parley.yaml, capabilities.yaml,
// prices.yaml, a prompt export's prompts.yaml). It walks a document with the caller's
// handlers and collects every problem, not only the first, each as
// FILE:LINE:COLUMN: key.path: expected …, found …
//
// Thread safety: one reader per document, on one thread.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

struct YamlProblem {
  std::string file;
  int line = 0;     // 1-based; 0 when unknown
  int column = 0;   // 1-based
  std::string key;  // e.g. capabilities.calc.timeout_ms; "(top level)" for the document
  std::string message;
  [[nodiscard]] std::string describe() const;  // FILE:LINE:COLUMN: KEY: message
};

// Problems one per line, as describe() writes them.
std::string describe_all(const std::vector<YamlProblem>& problems);

// What a node holds, for "found …": 'text' (cut at 40 characters), a list, a mapping, nothing.
std::string yaml_found(const YAML::Node& node);

// A YAML value as JSON: scalars become integers, numbers or booleans as YAML reads them
// (quoted scalars stay strings); null for nothing. A key that is not a scalar (YAML's complex
// key, `? {a: 1}`) has no JSON form: it becomes "" — YamlReader::json() reports it instead.
nlohmann::json yaml_to_json(const YAML::Node& node);

class YamlReader {
 public:
  using Handler = std::function<void(const YAML::Node& value, const std::string& key)>;
  using Named =
      std::function<void(const std::string& name, const YAML::Node& value, const std::string& key)>;

  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  // Parses `text`; a syntax error is a problem (with its line and column) and gives nullopt.
  std::optional<YAML::Node> parse(const std::string& text);

  void problem(const YAML::Node& at, const std::string& key, const std::string& message);

  // Visits a mapping with known keys, reporting unknown ones. A null node is an empty mapping.
  // False when `node` is not a mapping.
  bool mapping(const YAML::Node& node, const std::string& path,
               const std::map<std::string, Handler>& handlers);
  // Visits a mapping whose keys are names chosen by the user (providers, roles, models).
  bool named(const YAML::Node& node, const std::string& path, const Named& each);
  // Visits a list, each item with its key "path[i]". False when `node` is not a list.
  bool sequence(const YAML::Node& node, const std::string& path, const Handler& each);

  std::optional<bool> boolean(const YAML::Node& node, const std::string& key);
  std::optional<int64_t> integer(const YAML::Node& node, const std::string& key, int64_t min,
                                 int64_t max = std::numeric_limits<int64_t>::max());
  std::optional<double> number(const YAML::Node& node, const std::string& key, double min,
                               double max);
  // A non-empty scalar.
  std::optional<std::string> string(const YAML::Node& node, const std::string& key);
  // One name or a list of names.
  std::vector<std::string> names(const YAML::Node& node, const std::string& key);
  // yaml_to_json(node), or nullopt after reporting every key below `node` that is not a plain
  // scalar (a complex key: "expected a plain key, found a mapping"), at the mapping's path, or
  // a value nested more than 64 deep or holding more than 100,000 values once its aliases are
  // expanded (an alias inside what it names, "billion laughs").
  std::optional<nlohmann::json> json(const YAML::Node& node, const std::string& key);

  // The node at `rest` (".a.b[2]") below `base`, for a problem found in JSON made from it.
  static YAML::Node locate(const YAML::Node& base, std::string_view rest);
  // The key node of the last ".name" of `rest` (an unknown key is pointed at by its key).
  static YAML::Node locate_key(const YAML::Node& base, std::string_view rest);

  [[nodiscard]] const std::string& file() const { return file_; }
  [[nodiscard]] const std::vector<YamlProblem>& problems() const { return problems_; }
  [[nodiscard]] bool ok() const { return problems_.empty(); }
  std::vector<YamlProblem> take_problems() { return std::move(problems_); }

 private:
  std::string file_;
  std::vector<YamlProblem> problems_;
};

}  // namespace parley
