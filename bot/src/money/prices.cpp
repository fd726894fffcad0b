#include "parley/bot/money/prices.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

namespace parley::bot::money {

namespace {

[[noreturn]] void error(const std::string& name, const YAML::Node& node, const std::string& key,
                        const std::string& problem) {
  const auto mark = node.Mark();
  if (mark.line >= 0) {
    throw PriceError(fmt::format("{}:{}:{}: {}: {}", name, mark.line + 1, mark.column + 1, key, problem));
  }
  throw PriceError(fmt::format("{}: {}: {}", name, key, problem));
}

std::string text_of(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

// Token counts × nano-dollars per 1M tokens overflow 64 bits long before a bill does.
__extension__ typedef __int128 Wide;

int64_t day_of(std::chrono::system_clock::time_point at) {
  return std::chrono::floor<std::chrono::days>(at).time_since_epoch().count();
}

// "2024-07-18" → days since 1970-01-01; nullopt when not a valid calendar date.
std::optional<int64_t> parse_day(const std::string& s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  for (size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u}) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year(std::stoi(s.substr(0, 4))),
                                        std::chrono::month(static_cast<unsigned>(std::stoi(s.substr(5, 2)))),
                                        std::chrono::day(static_cast<unsigned>(std::stoi(s.substr(8, 2))))};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_days(ymd).time_since_epoch().count();
}

}  // namespace

std::optional<int64_t> PriceTable::parse_usd(const std::string& text) {
  if (text.empty()) return std::nullopt;
  int64_t whole = 0;
  int64_t frac = 0;
  int frac_digits = 0;
  bool dot = false;
  bool digits = false;
  for (char c : text) {
    if (c == '.') {
      if (dot) return std::nullopt;
      dot = true;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    digits = true;
    const int d = c - '0';
    if (dot) {
      if (++frac_digits > 9) return std::nullopt;
      frac = frac * 10 + d;
    } else {
      if (whole > (std::numeric_limits<int64_t>::max() / 1'000'000'000 - d) / 10) return std::nullopt;
      whole = whole * 10 + d;
    }
  }
  if (!digits) return std::nullopt;
  for (int i = frac_digits; i < 9; ++i) frac *= 10;
  return whole * 1'000'000'000 + frac;
}

PriceTable PriceTable::parse(const std::string& yaml, const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    throw PriceError(fmt::format("{}:{}:{}: {}", name, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root.IsMap()) error(name, root, "(top level)", "expected a mapping with version and models");
  PriceTable table;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (key == "version") {
      if (!kv.second.IsScalar() || kv.second.Scalar().empty()) error(name, kv.second, key, "expected a non-empty string");
      table.version_ = kv.second.Scalar();
    } else if (key == "models") {
      if (!kv.second.IsSequence()) error(name, kv.second, key, fmt::format("expected a list, got {}", text_of(kv.second)));
      size_t i = 0;
      for (const auto& item : kv.second) {
        const std::string at = fmt::format("models[{}]", i++);
        if (!item.IsMap()) error(name, item, at, "expected a mapping with match, input and output");
        ModelPrice p;
        std::optional<int64_t> cached;
        std::optional<int64_t> reasoning;
        bool has_input = false;
        bool has_output = false;
        for (const auto& f : item) {
          const std::string field = f.first.as<std::string>();
          const std::string k = at + "." + field;
          auto usd = [&]() {
            auto v = f.second.IsScalar() ? parse_usd(f.second.Scalar()) : std::nullopt;
            if (!v) {
              error(name, f.second, k,
                    fmt::format("expected a decimal number of USD per 1M tokens, got '{}'", text_of(f.second)));
            }
            return *v;
          };
          if (field == "match") {
            if (!f.second.IsScalar() || f.second.Scalar().empty()) error(name, f.second, k, "expected a glob, e.g. openai/gpt-4o*");
            p.match = f.second.Scalar();
          } else if (field == "effective") {
            const auto day = f.second.IsScalar() ? parse_day(f.second.Scalar()) : std::nullopt;
            if (!day) error(name, f.second, k, fmt::format("expected a date YYYY-MM-DD, got '{}'", text_of(f.second)));
            p.effective_day = *day;
          } else if (field == "input") {
            p.input = usd();
            has_input = true;
          } else if (field == "output") {
            p.output = usd();
            has_output = true;
          } else if (field == "cached_input") {
            cached = usd();
          } else if (field == "reasoning") {
            reasoning = usd();
          } else {
            error(name, f.first, k, "unknown key (known here: match, effective, input, output, cached_input, reasoning)");
          }
        }
        if (p.match.empty()) error(name, item, at + ".match", "missing");
        if (!has_input) error(name, item, at + ".input", "missing (USD per 1M prompt tokens)");
        if (!has_output) error(name, item, at + ".output", "missing (USD per 1M completion tokens)");
        p.cached_input = cached.value_or(p.input);
        p.reasoning = reasoning.value_or(p.output);
        table.entries_.push_back(std::move(p));
      }
    } else {
      error(name, kv.first, key, "unknown key (known here: version, models)");
    }
  }
  if (table.version_.empty()) error(name, root, "version", "missing (stored with every estimate)");
  return table;
}

PriceTable PriceTable::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw PriceError(fmt::format("{}: cannot read the price table", file.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), file.string());
}

const ModelPrice* PriceTable::find(const std::string& model, std::chrono::system_clock::time_point at) const {
  const int64_t day = day_of(at);
  const std::string* pattern = nullptr;
  for (const auto& e : entries_) {
    if (::fnmatch(e.match.c_str(), model.c_str(), 0) == 0) {
      pattern = &e.match;
      break;
    }
  }
  if (pattern == nullptr) return nullptr;
  const ModelPrice* best = nullptr;
  for (const auto& e : entries_) {
    if (e.match != *pattern || e.effective_day > day) continue;
    if (best == nullptr || e.effective_day > best->effective_day) best = &e;
  }
  return best;
}

std::optional<Estimate> PriceTable::estimate(const std::string& model, const TokenCounts& tokens,
                                             std::chrono::system_clock::time_point at) const {
  const ModelPrice* p = find(model, at);
  if (p == nullptr) return std::nullopt;
  const auto cached = std::clamp<int64_t>(tokens.cached, 0, tokens.prompt);
  const auto reasoning = std::clamp<int64_t>(tokens.reasoning, 0, tokens.completion);
  // Nano-dollars × tokens, summed exactly, then divided by 1M once (rounded half up).
  const Wide total = static_cast<Wide>(tokens.prompt - cached) * p->input +
                     static_cast<Wide>(cached) * p->cached_input +
                     static_cast<Wide>(tokens.completion - reasoning) * p->output +
                     static_cast<Wide>(reasoning) * p->reasoning;
  Estimate e;
  e.nanousd = static_cast<int64_t>((total + 500'000) / 1'000'000);
  e.pricing_version = version_;
  e.match = p->match;
  return e;
}

}  // namespace parley::bot::money
