// PriceTable: what a model's tokens cost, from config/prices.yaml, for the usage ledger's
// estimate (the provider's own `usage.cost`, when it reports one, is the actual cost).
//
//   version: "2026-11-01"          # the pricing version stored with every estimate
//   models:
//     - match: "openai/gpt-4o-mini*"   # a glob over the model name (fnmatch: * ? [...])
//       effective: 2024-07-18          # from this day (UTC) on; optional
//       input: 0.15                    # USD per 1M prompt tokens (not cached)
//       output: 0.60                   # USD per 1M completion tokens (not reasoning)
//       cached_input: 0.075            # optional; default: input
//       reasoning: 0.60                # optional; default: output
//
// Prices are decimals read exactly (no floating point) into nano-dollars per 1M tokens; an
// estimate is exact to the nano-dollar (rounded half up once, at the end). Lookup: the first
// entry in file order whose `match` fits the model names the pattern; among the entries with
// that same pattern, the one with the latest `effective` not after the call wins. A model that
// matches nothing has no price: the estimate is empty (never a silent zero, never a default).
//
// Errors name the file, line, column and key ("prices.yaml:7:14: models[1].input: expected a
// decimal number of USD per 1M tokens, got 'cheap'").
//
// Thread safety: a PriceTable is immutable after parsing; share it freely.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace parley::bot::money {

class PriceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ModelPrice {
  std::string match;
  int64_t effective_day = 0;  // days since 1970-01-01 (UTC); 0: always
  // Nano-dollars per 1M tokens.
  int64_t input = 0;
  int64_t output = 0;
  int64_t cached_input = 0;
  int64_t reasoning = 0;
};

struct TokenCounts {
  int64_t prompt = 0;      // all prompt tokens, cached ones included
  int64_t completion = 0;  // all completion tokens, reasoning ones included
  int64_t cached = 0;      // of prompt
  int64_t reasoning = 0;   // of completion
};

struct Estimate {
  int64_t nanousd = 0;
  std::string pricing_version;
  std::string match;  // the entry that priced it
};

class PriceTable {
 public:
  static PriceTable parse(const std::string& yaml, const std::string& name);  // throws PriceError
  static PriceTable load(const std::filesystem::path& file);                  // throws PriceError

  // The price of `model` for a call at `at`; nullopt when nothing matches.
  [[nodiscard]] const ModelPrice* find(const std::string& model,
                                       std::chrono::system_clock::time_point at) const;
  // The estimate of a call's tokens; nullopt when the model has no price.
  [[nodiscard]] std::optional<Estimate> estimate(const std::string& model,
                                                 const TokenCounts& tokens,
                                                 std::chrono::system_clock::time_point at) const;

  [[nodiscard]] const std::string& version() const { return version_; }
  [[nodiscard]] const std::vector<ModelPrice>& entries() const { return entries_; }

  // "0.15" → 150'000'000 (nano-dollars); nullopt when not a plain non-negative decimal with at
  // most 9 fractional digits.
  static std::optional<int64_t> parse_usd(const std::string& text);

 private:
  std::string version_;
  std::vector<ModelPrice> entries_;
};

}  // namespace parley::bot::money
