// Treasury: prices.yaml reloaded while parley runs. The next admission uses the new table; a
// broken edit is refused with where it is wrong, and the table in force stays.
#include "parley/bot/money/treasury.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::bot::money {
namespace treasury_test {

using ::testing::HasSubstr;

void write(const std::filesystem::path& file, const std::string& text) {
  std::ofstream(file) << text;
}

class TreasuryPrices : public ::testing::Test {
 protected:
  std::unique_ptr<Treasury> open(const MoneyOptions& money) {
    return std::move(Treasury::open(money, *store_, nullptr, ioc_.get_executor()).value());
  }
  testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_ =
      std::move(storage::Store::open({.path = dir_ / "t.db"}).value());
  net::asio::io_context ioc_;
};

TEST_F(TreasuryPrices, AReloadPutsTheNewTableInForceAndABrokenEditKeepsTheOld) {
  MoneyOptions money;
  money.prices_file = dir_ / "prices.yaml";
  write(money.prices_file, "version: v1\nmodels:\n  - match: \"m\"\n    input: 1\n    output: 2\n");
  auto treasury = open(money);

  llm::ResolvedModel model{"p", "m", nlohmann::json::object()};
  llm::ChatRequest req;
  req.messages = {llm::Message::user("hello")};
  req.max_tokens = 1000;
  const int64_t prompt = llm::estimate_prompt_tokens(req);
  EXPECT_EQ(treasury->budgets().worst_case(model, req), prompt * 1000 + 1000 * 2000);

  write(money.prices_file, "version: v2\nmodels:\n  - match: \"m\"\n    input: 3\n    output: 4\n");
  ASSERT_TRUE(treasury->reload_prices().ok());
  EXPECT_EQ(treasury->prices()->version(), "v2");
  EXPECT_EQ(treasury->budgets().worst_case(model, req), prompt * 3000 + 1000 * 4000);

  write(money.prices_file,
        "version: v3\nmodels:\n  - match: \"m\"\n    input: lots\n    output: 4\n");
  const auto refused = treasury->reload_prices();
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message, HasSubstr("prices.yaml:4:"));
  EXPECT_THAT(refused.error().message, HasSubstr("input"));
  EXPECT_EQ(treasury->prices()->version(), "v2");
  EXPECT_EQ(treasury->budgets().worst_case(model, req), prompt * 3000 + 1000 * 4000);
}

TEST_F(TreasuryPrices, WithoutAPricesFileAReloadKeepsTheBuiltInTable) {
  auto treasury = open(MoneyOptions{});
  const auto built_in = treasury->prices();
  ASSERT_FALSE(built_in->entries().empty());
  EXPECT_TRUE(treasury->reload_prices().ok());
  EXPECT_EQ(treasury->prices(), built_in);
}

}  // namespace treasury_test
}  // namespace parley::bot::money
