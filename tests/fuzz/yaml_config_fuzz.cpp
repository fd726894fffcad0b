// yaml_config_fuzz: a libFuzzer target for parley's three YAML configuration files through their
// real loaders: parley.yaml (config::parse_config), capabilities.yaml
// (capabilities::parse_capabilities_config, against the built-in capabilities) and prices.yaml
// (money::PriceTable::parse).
//
// The first byte chooses the file (0: parley.yaml, 1: capabilities.yaml, 2: prices.yaml, by its
// value modulo 3); the rest is the file's text. The seed corpus (tests/fuzz/corpus/yaml_config/)
// holds the shipped config/*.yaml files and a few small ones, each behind its byte.
//
// Invariants (a violation aborts, and libFuzzer keeps the input):
// - A loader never throws anything but its own error (ConfigError, PriceError; the
//   capabilities loader nothing at all) — the complex key `? a: b` threw
//   YAML::TypedBadConversion out of parley config check (exit 134).
// - A file is either accepted, or refused with problems, each of which names the file, a
//   non-empty key and a non-empty message, with a line ≥ 1 within the text and a column ≥ 1 —
//   or line 0 only for a problem of the whole file ("(document)", "(top level)", a missing
//   top-level key). The errors thrown are exactly those problems, one per line.
// - Loading is deterministic: the same text gives the same outcome again.
// - An accepted price table prices its own patterns and a few model names without ever a
//   negative estimate (the tokens of one call), under its version.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "parley/bot/config/config.h"
#include "parley/bot/money/prices.h"
#include "parley/capabilities/builtins.h"
#include "parley/capabilities/capability.h"
#include "parley/capabilities/config.h"

namespace {

namespace caps = parley::capabilities;
using parley::YamlProblem;
namespace config = parley::bot::config;
namespace money = parley::bot::money;

using parley::fuzz::violated;

const caps::Registry& registry() {
  static const caps::Registry* r = [] {
    auto* reg = new caps::Registry();
    if (!caps::register_builtins(*reg).ok()) violated("register_builtins failed", __LINE__);
    return reg;
  }();
  return *r;
}

size_t lines_of(std::string_view text) {
  size_t n = 1;
  for (char c : text) n += c == '\n' || c == '\r' ? 1 : 0;  // yaml-cpp counts a lone CR too
  return n;
}

bool whole_file_key(std::string_view key) {
  return key == "(document)" || key == "(top level)" || key.find_first_of(".[") == key.npos;
}

void check_problem(const YamlProblem& p, std::string_view file, size_t lines) {
  PARLEY_FUZZ_CHECK(p.file == file);
  PARLEY_FUZZ_CHECK(!p.key.empty());
  PARLEY_FUZZ_CHECK(!p.message.empty());
  PARLEY_FUZZ_CHECK(p.line >= 0 && p.column >= 0);
  if (p.line == 0) {
    PARLEY_FUZZ_CHECK(p.column == 0);
    PARLEY_FUZZ_CHECK(whole_file_key(p.key));
  } else {
    PARLEY_FUZZ_CHECK(static_cast<size_t>(p.line) <= lines);
    PARLEY_FUZZ_CHECK(p.column >= 1);
  }
}

// One problem a line, as YamlProblem::describe() writes them: "FILE:LINE:COLUMN: KEY: message"
// or "FILE: KEY: message".
void check_error_text(std::string_view what, std::string_view file, size_t lines) {
  PARLEY_FUZZ_CHECK(!what.empty());
  size_t start = 0;
  while (start <= what.size()) {
    const size_t end = std::min(what.find('\n', start), what.size());
    std::string_view line = what.substr(start, end - start);
    PARLEY_FUZZ_CHECK(line.starts_with(file));
    line.remove_prefix(file.size());
    PARLEY_FUZZ_CHECK(line.starts_with(':'));
    line.remove_prefix(1);
    if (!line.empty() && line.front() >= '0' && line.front() <= '9') {
      size_t at = 0;
      size_t number = 0;
      while (at < line.size() && line[at] >= '0' && line[at] <= '9') {
        number = number * 10 + static_cast<size_t>(line[at++] - '0');
        PARLEY_FUZZ_CHECK(number <= lines);
      }
      PARLEY_FUZZ_CHECK(number >= 1);
      PARLEY_FUZZ_CHECK(at < line.size() && line[at] == ':');
    }
    PARLEY_FUZZ_CHECK(line.find(": ") != std::string_view::npos);
    start = end + 1;
  }
}

std::optional<std::string> parley_yaml(const std::string& text) {
  try {
    (void)config::parse_config(text, "parley.yaml");
  } catch (const config::ConfigError& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

std::optional<std::string> prices_yaml(const std::string& text, money::PriceTable* table) {
  try {
    *table = money::PriceTable::parse(text, "prices.yaml");
  } catch (const money::PriceError& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

void check_prices(const money::PriceTable& table) {
  const auto at = std::chrono::system_clock::time_point(std::chrono::hours(24 * 20'000));
  const money::TokenCounts tokens{600'000, 400'000, 250'000, 150'000};
  // Names the entries may match: each pattern itself, and a few common ones.
  std::vector<std::string> models = {"openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet", "x"};
  for (const auto& e : table.entries()) models.push_back(e.match);
  for (const auto& model : models) {
    const auto est = table.estimate(model, tokens, at);
    if (!est) continue;
    PARLEY_FUZZ_CHECK(est->nanousd >= 0);
    PARLEY_FUZZ_CHECK(!est->match.empty());
    PARLEY_FUZZ_CHECK(est->pricing_version == table.version());
  }
}

void test_one_input(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t lines = lines_of(text);
  switch (data[0] % 3) {
    case 0: {
      const auto error = parley_yaml(text);
      if (error) check_error_text(*error, "parley.yaml", lines);
      PARLEY_FUZZ_CHECK(parley_yaml(text) == error);
      break;
    }
    case 1: {
      const auto check = caps::parse_capabilities_config(text, "capabilities.yaml", registry());
      for (const auto& p : check.problems) check_problem(p, "capabilities.yaml", lines);
      if (!check.ok())
        check_error_text(parley::describe_all(check.problems), "capabilities.yaml", lines);
      const auto again = caps::parse_capabilities_config(text, "capabilities.yaml", registry());
      PARLEY_FUZZ_CHECK(again.describe() == check.describe());
      if (check.ok()) {
        // Every built-in has its configuration, and what the file names is a built-in or a tool
        // of one of its MCP servers.
        for (const auto& name : registry().names()) {
          PARLEY_FUZZ_CHECK(check.config.by_name.count(name) == 1);
        }
        for (const auto& [name, cfg] : check.config.by_name) {
          PARLEY_FUZZ_CHECK(registry().find(name) != nullptr ||
                            check.config.mcp_server_of(name) != nullptr);
          PARLEY_FUZZ_CHECK(cfg.timeout.count() >= 1);
          PARLEY_FUZZ_CHECK(cfg.rate_limit.calls >= 0 && cfg.rate_limit.per.count() >= 1);
        }
      }
      break;
    }
    default: {
      money::PriceTable table;
      const auto error = prices_yaml(text, &table);
      if (error) {
        check_error_text(*error, "prices.yaml", lines);
      } else {
        check_prices(table);
      }
      money::PriceTable again;
      PARLEY_FUZZ_CHECK(prices_yaml(text, &again) == error);
      break;
    }
  }
}

}  // namespace

PARLEY_FUZZ_MAIN(test_one_input)
