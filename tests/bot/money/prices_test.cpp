// PriceTable: exact decimal prices, glob lookup in file order with effective dates, estimates
// exact to the nano-dollar, no price → no estimate, and errors naming file:line:column and key.
#include "parley/bot/money/prices.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace parley::bot::money {
namespace prices_test {

using ::testing::HasSubstr;
using Clock = std::chrono::system_clock;

Clock::time_point day(int y, unsigned m, unsigned d) {
  return std::chrono::sys_days(std::chrono::year_month_day{
      std::chrono::year(y), std::chrono::month(m), std::chrono::day(d)});
}

const char* kTable = R"(version: "v7"
models:
  - match: "openai/gpt-4o-mini*"
    input: 0.15
    output: 0.60
    cached_input: 0.075
  - match: "anthropic/*"
    effective: 2025-01-01
    input: 3
    output: 15
  - match: "anthropic/*"
    effective: 2026-06-01
    input: 2.5
    output: 12.5
    reasoning: 20
  - match: "*"
    effective: 2030-01-01
    input: 1
    output: 1
)";

TEST(PriceTableTest, DecimalsAreReadExactly) {
  EXPECT_EQ(PriceTable::parse_usd("0.15"), 150'000'000);
  EXPECT_EQ(PriceTable::parse_usd("3"), 3'000'000'000);
  EXPECT_EQ(PriceTable::parse_usd("0.000000001"), 1);
  EXPECT_EQ(PriceTable::parse_usd("12.5"), 12'500'000'000);
  EXPECT_FALSE(PriceTable::parse_usd("0.0000000001"));
  EXPECT_FALSE(PriceTable::parse_usd("-1"));
  EXPECT_FALSE(PriceTable::parse_usd("1e3"));
  EXPECT_FALSE(PriceTable::parse_usd("."));
  EXPECT_FALSE(PriceTable::parse_usd("1.2.3"));
}

TEST(PriceTableTest, EstimatesAreExactWithCachedAndReasoningTokens) {
  const auto t = PriceTable::parse(kTable, "prices.yaml");
  EXPECT_EQ(t.version(), "v7");
  // 1,000 prompt (400 cached) + 200 completion on gpt-4o-mini:
  // 600 × 0.15 + 400 × 0.075 + 200 × 0.60 USD per 1M = 90,000 + 30,000 + 120,000 nano-dollars.
  const auto e =
      t.estimate("openai/gpt-4o-mini-2024-07-18", {1000, 200, 400, 0}, day(2026, 11, 23));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->nanousd, 240'000);
  EXPECT_EQ(e->pricing_version, "v7");
  EXPECT_EQ(e->match, "openai/gpt-4o-mini*");
  // One token at 0.15 USD per 1M tokens: 150 nano-dollars.
  EXPECT_EQ(t.estimate("openai/gpt-4o-mini", {1, 0, 0, 0}, day(2026, 1, 1))->nanousd, 150);
}

TEST(PriceTableTest, TheLatestEffectiveEntryOfTheFirstMatchingPatternApplies) {
  const auto t = PriceTable::parse(kTable, "prices.yaml");
  // Before 2026-06-01: 3 / 15; reasoning defaults to output.
  EXPECT_EQ(
      t.estimate("anthropic/claude", {1'000'000, 1'000'000, 0, 500'000}, day(2026, 5, 31))->nanousd,
      3'000'000'000 + 15'000'000'000);
  // From 2026-06-01: 2.5 / 12.5, reasoning 20.
  EXPECT_EQ(
      t.estimate("anthropic/claude", {1'000'000, 1'000'000, 0, 500'000}, day(2026, 6, 1))->nanousd,
      2'500'000'000 + 6'250'000'000 + 10'000'000'000);
  // Before any of its entries is effective: no price (not the catch-all below it).
  EXPECT_FALSE(t.estimate("anthropic/claude", {10, 10, 0, 0}, day(2024, 12, 31)));
}

TEST(PriceTableTest, AModelWithoutAPriceHasNoEstimateNeverZero) {
  const auto t = PriceTable::parse(kTable, "prices.yaml");
  EXPECT_FALSE(t.estimate("meta/llama-3", {100, 100, 0, 0}, day(2026, 11, 23)));
  EXPECT_TRUE(t.estimate("meta/llama-3", {100, 100, 0, 0}, day(2030, 1, 1)));
}

TEST(PriceTableTest, ErrorsNameFileLineColumnAndKey) {
  auto error_of = [](const std::string& yaml) {
    try {
      (void)PriceTable::parse(yaml, "prices.yaml");
    } catch (const PriceError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error_of("version: v\nmodels:\n  - match: a\n    input: cheap\n    output: 1\n"),
              HasSubstr("prices.yaml:4:12: models[0].input: expected a decimal number of USD per "
                        "1M tokens, found 'cheap'"));
  EXPECT_THAT(error_of("version: v\nmodels:\n  - match: a\n    input: 1\n"),
              HasSubstr("models[0].output: missing"));
  EXPECT_THAT(error_of("version: v\nmodels:\n  - match: a\n    input: 1\n    output: 1\n    "
                       "effective: 2026-02-30\n"),
              HasSubstr("models[0].effective: expected a date YYYY-MM-DD, found '2026-02-30'"));
  EXPECT_THAT(error_of("models: []\n"), HasSubstr("version: missing"));
  EXPECT_THAT(error_of("version: v\nprice: 1\n"), HasSubstr("prices.yaml:2:1: price: unknown key"));
  EXPECT_THAT(
      error_of("version: v\nmodels:\n  - match: a\n    input: 1\n    output: 1\n    inptu: 2\n"),
      HasSubstr("models[0].inptu: unknown key"));
  // Every problem, one per line, not only the first.
  const auto all = error_of(
      "version: v\nmodels:\n  - match: a\n    input: cheap\n  - match: b\n    output: 1\nextra: "
      "1\n");
  EXPECT_THAT(all, HasSubstr("prices.yaml:4:12: models[0].input: expected a decimal number"));
  EXPECT_THAT(all, HasSubstr("models[0].output: missing"));
  EXPECT_THAT(all, HasSubstr("models[1].input: missing"));
  EXPECT_THAT(all, HasSubstr("prices.yaml:7:1: extra: unknown key"));
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 3) << all;
  // A complex key (`? …`), at the top and in an entry: named with its place, never thrown as a
  // yaml-cpp conversion error.
  EXPECT_EQ(error_of("version: v\n? {rate_limit: 60}\nmodels:\n  - match: a\n    input: 1\n"
                     "    output: 1\n    ? [x]\n"),
            "prices.yaml:2:3: (top level): expected a plain key, found a mapping\n"
            "prices.yaml:7:7: models[0]: expected a plain key, found a list");
  // Found by yaml_config_fuzz: pointing at an unknown key with a dot in it ("input.usd") added
  // "input" to the mapping being walked, whose walk then read freed memory (ASan:
  // heap-use-after-free in YamlReader::named). Both unknown keys are reported, in order.
  EXPECT_EQ(error_of("version: v\nmodels:\n  - {match: a, input.usd: 1, output: 1, x.y.z: 2, "
                     "input: 3}\n"),
            "prices.yaml:3:16: models[0].input.usd: unknown key (expected one of: cached_input, "
            "effective, input, match, output, reasoning)\n"
            "prices.yaml:3:41: models[0].x.y.z: unknown key (expected one of: cached_input, "
            "effective, input, match, output, reasoning)");
}

TEST(PriceTableTest, TheShippedTableLoads) {
  const auto t = PriceTable::load(std::filesystem::path(PARLEY_SOURCE_DIR) / "config/prices.yaml");
  EXPECT_FALSE(t.version().empty());
  EXPECT_TRUE(t.estimate("openai/gpt-4o-mini", {1000, 100, 0, 0}, day(2026, 11, 23)));
}

}  // namespace prices_test
}  // namespace parley::bot::money
