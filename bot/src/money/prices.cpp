#include "parley/bot/money/prices.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

#include "parley/base/yaml_reader.h"

namespace parley::bot::money {

namespace {

// Token counts × nano-dollars per 1M tokens overflow 64 bits long before a bill does.
__extension__ using Wide = __int128;

int64_t day_of(std::chrono::system_clock::time_point at) {
  return std::chrono::floor<std::chrono::days>(at).time_since_epoch().count();
}

// "2024-07-18" → days since 1970-01-01; nullopt when not a valid calendar date.
std::optional<int64_t> parse_day(const std::string& s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  for (size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u}) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  }
  const std::chrono::year_month_day ymd{
      std::chrono::year(std::stoi(s.substr(0, 4))),
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
      if (whole > (std::numeric_limits<int64_t>::max() / 1'000'000'000 - d) / 10) {
        return std::nullopt;
      }
      whole = whole * 10 + d;
    }
  }
  if (!digits) return std::nullopt;
  for (int i = frac_digits; i < 9; ++i) frac *= 10;
  return whole * 1'000'000'000 + frac;
}

PriceTable PriceTable::parse(const std::string& yaml, const std::string& name) {
  YamlReader r(name);
  const auto document = r.parse(yaml);
  if (!document) throw PriceError(describe_all(r.problems()));
  const YAML::Node& root = *document;
  PriceTable table;
  bool has_version = false;
  if (!root.IsMap()) {
    r.problem(
        root, "",
        fmt::format("expected a mapping with version and models, found {}", yaml_found(root)));
  }
  r.mapping(
      root.IsMap() ? root : YAML::Node(), "",
      {
          {"version",
           [&](const YAML::Node& v, const std::string& k) {
             has_version = true;
             table.version_ = r.string(v, k).value_or("");
           }},
          {"models",
           [&](const YAML::Node& list, const std::string& key) {
             r.sequence(list, key, [&](const YAML::Node& item, const std::string& at) {
               if (!item.IsMap()) {
                 r.problem(item, at,
                           fmt::format("expected a mapping with match, input and output, found {}",
                                       yaml_found(item)));
                 return;
               }
               ModelPrice p;
               std::optional<int64_t> input;
               std::optional<int64_t> output;
               std::optional<int64_t> cached;
               std::optional<int64_t> reasoning;
               auto usd = [&](std::optional<int64_t>& out) {
                 return [&](const YAML::Node& v, const std::string& k) {
                   out = v.IsScalar() ? parse_usd(v.Scalar()) : std::nullopt;
                   if (!out) {
                     r.problem(
                         v, k,
                         fmt::format("expected a decimal number of USD per 1M tokens, found {}",
                                     yaml_found(v)));
                     out = 0;  // reported; present, so not "missing" too
                   }
                 };
               };
               r.mapping(
                   item, at,
                   {
                       {"match",
                        [&](const YAML::Node& v, const std::string& k) {
                          if (v.IsScalar() && !v.Scalar().empty()) {
                            p.match = v.Scalar();
                          } else {
                            r.problem(v, k,
                                      fmt::format("expected a glob, e.g. openai/gpt-4o*, found {}",
                                                  yaml_found(v)));
                            p.match = "?";  // reported; present, so not "missing" too
                          }
                        }},
                       {"effective",
                        [&](const YAML::Node& v, const std::string& k) {
                          const auto day = v.IsScalar() ? parse_day(v.Scalar()) : std::nullopt;
                          if (!day) {
                            r.problem(
                                v, k,
                                fmt::format("expected a date YYYY-MM-DD, found {}", yaml_found(v)));
                          }
                          p.effective_day = day.value_or(0);
                        }},
                       {"input", usd(input)},
                       {"output", usd(output)},
                       {"cached_input", usd(cached)},
                       {"reasoning", usd(reasoning)},
                   });
               if (p.match.empty()) {
                 r.problem(item, at + ".match", "missing (a glob, e.g. openai/gpt-4o*)");
               }
               if (!input) r.problem(item, at + ".input", "missing (USD per 1M prompt tokens)");
               if (!output) {
                 r.problem(item, at + ".output", "missing (USD per 1M completion tokens)");
               }
               p.input = input.value_or(0);
               p.output = output.value_or(0);
               p.cached_input = cached.value_or(p.input);
               p.reasoning = reasoning.value_or(p.output);
               table.entries_.push_back(std::move(p));
             });
           }},
      });
  if (root.IsMap() && !has_version) {
    r.problem(root, "version", "missing (stored with every estimate)");
  }
  if (!r.ok()) throw PriceError(describe_all(r.problems()));
  return table;
}

PriceTable PriceTable::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw PriceError(fmt::format("{}: cannot read the price table", file.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), file.string());
}

const ModelPrice* PriceTable::find(const std::string& model,
                                   std::chrono::system_clock::time_point at) const {
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
