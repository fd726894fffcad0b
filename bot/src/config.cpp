#include "parley/bot/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

namespace parley::bot {

namespace {

class Reader {
 public:
  explicit Reader(std::string name) : name_(std::move(name)) {}

  [[noreturn]] void error(const YAML::Node& node, const std::string& key,
                          const std::string& problem) const {
    const auto mark = node.Mark();
    if (mark.line >= 0) {
      throw ConfigError(fmt::format("{}:{}: {}: {}", name_, mark.line + 1, key, problem));
    }
    throw ConfigError(fmt::format("{}: {}: {}", name_, key, problem));
  }

  using Handler = std::function<void(const YAML::Node&, const std::string& key)>;

  // Visits a mapping: every key must have a handler.
  void mapping(const YAML::Node& node, const std::string& path,
               const std::map<std::string, Handler>& handlers) const {
    if (node.IsNull()) return;
    if (!node.IsMap()) error(node, path.empty() ? "(top level)" : path, "expected a mapping");
    for (const auto& kv : node) {
      const auto key = kv.first.as<std::string>();
      const std::string full = path.empty() ? key : path + "." + key;
      auto it = handlers.find(key);
      if (it == handlers.end()) {
        std::string known;
        for (const auto& [k, _] : handlers) {
          if (!known.empty()) known += ", ";
          known += k;
        }
        error(kv.first, full, fmt::format("unknown key (known here: {})", known));
      }
      it->second(kv.second, full);
    }
  }

  int64_t integer(const YAML::Node& node, const std::string& key, int64_t min,
                  int64_t max = std::numeric_limits<int64_t>::max()) const {
    int64_t v = 0;
    if (!node.IsScalar() || !YAML::convert<int64_t>::decode(node, v)) {
      error(node, key, fmt::format("expected an integer, got '{}'", scalar_text(node)));
    }
    if (v < min || v > max) {
      error(node, key, fmt::format("{} is out of range [{}, {}]", v, min, max));
    }
    return v;
  }

  std::string string(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar() || node.Scalar().empty()) error(node, key, "expected a non-empty string");
    return node.Scalar();
  }

 private:
  static std::string scalar_text(const YAML::Node& node) {
    if (node.IsScalar()) return node.Scalar();
    if (node.IsSequence()) return "a list";
    if (node.IsMap()) return "a mapping";
    return "nothing";
  }
  std::string name_;
};

size_t to_size(int64_t v) { return static_cast<size_t>(v); }
int to_int(int64_t v) { return static_cast<int>(v); }

}  // namespace

Config default_config() { return Config{}; }

Config parse_config(const std::string& yaml, const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("{}:{}: invalid YAML: {}", name, e.mark.line + 1, e.msg));
  }
  Config cfg = default_config();
  Reader r(name);
  auto& s = cfg.storage;
  constexpr int64_t kMiB = 1 << 20;

  r.mapping(
      root, "",
      {
          {"storage",
           [&](const YAML::Node& n, const std::string& p) {
             r.mapping(
                 n, p,
                 {
                     {"path",
                      [&](const YAML::Node& v, const std::string& k) { s.path = r.string(v, k); }},
                     {"readers",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.readers = to_size(r.integer(v, k, 1, 64));
                      }},
                     {"history_messages",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.history_messages = to_size(r.integer(v, k, 1, 10'000));
                      }},
                     {"busy_timeout_ms",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.connection.busy_timeout_ms = to_int(r.integer(v, k, 0, 600'000));
                      }},
                     {"page_cache_kib",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.connection.page_cache_kib = to_int(r.integer(v, k, 64, 16 * kMiB));
                      }},
                     {"checkpoint_pages",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.checkpoint_pages = to_int(r.integer(v, k, 0, 1'000'000));
                      }},
                     {"mmap_size_mib",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.connection.mmap_size_bytes = r.integer(v, k, 0, 1 << 20) * kMiB;
                      }},
                     {"cache",
                      [&](const YAML::Node& n2, const std::string& p2) {
                        r.mapping(n2, p2,
                                  {
                                      {"max_entries",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         s.cache.max_entries = to_size(r.integer(v, k, 0));
                                       }},
                                      {"max_bytes_mib",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         s.cache.max_bytes =
                                             to_size(r.integer(v, k, 0, 1 << 20) * kMiB);
                                       }},
                                  });
                      }},
                     {"write_queue",
                      [&](const YAML::Node& n2, const std::string& p2) {
                        r.mapping(n2, p2,
                                  {
                                      {"max_batch",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         s.queue.max_batch = to_size(r.integer(v, k, 1, 100'000));
                                       }},
                                      {"max_wait_us",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         s.queue.max_wait = std::chrono::microseconds(
                                             r.integer(v, k, 0, 1'000'000));
                                       }},
                                      {"capacity",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         s.queue.capacity = to_size(r.integer(v, k, 1));
                                       }},
                                  });
                      }},
                 });
           }},
          {"log",
           [&](const YAML::Node& n, const std::string& p) {
             r.mapping(n, p,
                       {
                           {"level",
                            [&](const YAML::Node& v, const std::string& k) {
                              const std::string level = r.string(v, k);
                              static constexpr std::array<std::string_view, 7> kLevels = {
                                  "trace", "debug", "info", "warn", "error", "critical", "off"};
                              const bool found =
                                  std::find(kLevels.begin(), kLevels.end(), level) != kLevels.end();
                              if (!found)
                                r.error(v, k,
                                        fmt::format("'{}' is not one of trace, debug, info, warn, "
                                                    "error, critical, off",
                                                    level));
                              cfg.log_level = level;
                            }},
                       });
           }},
      });
  return cfg;
}

Config load_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("{}: cannot read the configuration file", file.string()));
  std::ostringstream text;
  text << in.rdbuf();
  Config cfg = parse_config(text.str(), file.string());
  cfg.source = file;
  return cfg;
}

}  // namespace parley::bot
