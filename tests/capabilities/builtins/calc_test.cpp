// calc: results and their text (integers without ".0", others to 12 significant digits),
// syntax errors with muParser's position, division by zero and other non-finite results,
// arguments refused by the schema before calc runs, the /calc command, concurrent calls.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "parley/capabilities/builtins.h"
#include "parley/capabilities/capability.h"

namespace parley::capabilities {
namespace calc_test {

using nlohmann::json;
using ::testing::HasSubstr;

class CalcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(register_builtins(registry_).ok());
    calc_ = registry_.find("calc");
    ASSERT_NE(calc_, nullptr);
  }
  Result<json> eval_args(const json& args) { return calc_->invoke(InvokeContext{}, args); }
  Result<json> eval(const std::string& expression) {
    return eval_args(json{{"expression", expression}});
  }
  Error error_of(const std::string& expression) {
    auto r = eval(expression);
    EXPECT_FALSE(r.ok()) << expression << " = " << (r.ok() ? r->dump() : "");
    return r.ok() ? Error{} : r.error();
  }

  Registry registry_;
  Capability* calc_ = nullptr;
};

TEST_F(CalcTest, IntegerResultHasNoFraction) {
  auto r = eval("123*456");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(*r, (json{{"result", 56088}, {"text", "56088"}}));
  EXPECT_TRUE((*r)["result"].is_number_integer());
}

TEST_F(CalcTest, ParenthesesPowersFunctionsAndNegatives) {
  EXPECT_EQ((*eval("2*(3+4)"))["text"], "14");
  EXPECT_EQ((*eval("2^10"))["result"], 1024);
  EXPECT_EQ((*eval("sqrt(16) - 10"))["text"], "-6");
  EXPECT_EQ((*eval("-0"))["text"], "0");
  EXPECT_EQ((*eval("8/2"))["text"], "4");
}

TEST_F(CalcTest, FractionsGetTwelveSignificantDigits) {
  EXPECT_EQ((*eval("1/3"))["text"], "0.333333333333");
  EXPECT_EQ((*eval("0.1+0.2"))["text"], "0.3");
  EXPECT_EQ((*eval("2^0.5"))["text"], "1.41421356237");
  EXPECT_EQ((*eval("_pi"))["text"], "3.14159265359");
  EXPECT_DOUBLE_EQ((*eval("1/4"))["result"].get<double>(), 0.25);
  // Beyond 2^53 integers are no longer exact: printed as a double.
  EXPECT_EQ((*eval("1e20"))["text"], "1e+20");
}

TEST_F(CalcTest, SyntaxErrorNamesMuParsersPosition) {
  const auto e = error_of("1+*2");
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
  EXPECT_EQ(e.message, "calc: syntax error at position 2: Unexpected operator \"*\"");
  EXPECT_THAT(error_of("2*(3+4").message, HasSubstr("calc: syntax error at position"));
  EXPECT_THAT(error_of("2*(3+4").message, HasSubstr("Missing parenthesis"));
  EXPECT_THAT(error_of("x+1").message,
              HasSubstr("syntax error at position 0: Unexpected token \"x\""));
  EXPECT_THAT(error_of("3 4").message, HasSubstr("position 2"));
  EXPECT_EQ(error_of("x+1").code, ErrorCode::invalid_argument);
}

TEST_F(CalcTest, DivisionByZeroIsAClearError) {
  const auto e = error_of("1/0");
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
  EXPECT_EQ(e.message, "calc: division by zero");
  EXPECT_EQ(error_of("5 + 2/(3-3)").message, "calc: division by zero");
}

TEST_F(CalcTest, OtherNonFiniteResultsAreErrors) {
  for (const char* ex : {"0/0", "sqrt(-1)"}) {
    const auto e = error_of(ex);
    EXPECT_EQ(e.code, ErrorCode::invalid_argument) << ex;
    EXPECT_THAT(e.message, HasSubstr("calc: the result is not a finite number")) << ex;
  }
  const auto big = error_of("1e308*10");
  EXPECT_EQ(big.code, ErrorCode::invalid_argument);
  EXPECT_THAT(big.message, HasSubstr("overflow"));
  // A division by zero earlier does not taint a later, finite evaluation on the same thread.
  EXPECT_EQ((*eval("1+1"))["text"], "2");
}

TEST_F(CalcTest, OneExpressionAtATime) {
  const auto e = error_of("1,2");
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
  EXPECT_THAT(e.message, HasSubstr("one expression at a time"));
}

TEST_F(CalcTest, ArgumentsOfTheWrongShapeAreRefusedBeforeCalcRuns) {
  for (const json& args : {json{{"expression", 5}}, json{{"expression", ""}},
                           json{{"expression", std::string(501, '1')}}, json::object(),
                           json{{"expression", "1"}, {"extra", true}}}) {
    auto r = eval_args(args);
    ASSERT_FALSE(r.ok()) << args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << args.dump();
    EXPECT_THAT(r.error().message, HasSubstr("calc: invalid arguments")) << args.dump();
  }
  EXPECT_THAT(eval_args(json{{"expression", 5}}).error().message,
              HasSubstr("arguments.expression"));
  EXPECT_THAT(eval_args(json{{"expression", std::string(501, '1')}}).error().message,
              HasSubstr("arguments.expression"));
  std::string longest = "1";
  while (longest.size() + 2 <= 500) longest += "+1";
  longest += ' ';
  ASSERT_EQ(longest.size(), 500u);
  EXPECT_EQ((*eval(longest))["result"], 250) << "500 characters are allowed";
}

TEST_F(CalcTest, CommandTextBecomesTheExpression) {
  EXPECT_EQ(registry_.find_command("calc"), calc_);
  auto args = calc_->parse_command("calc", "  2*(3+4) ");
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(*args, (json{{"expression", "2*(3+4)"}}));
  EXPECT_EQ((*eval_args(*args))["text"], "14");
  auto empty = calc_->parse_command("calc", "   ");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::invalid_argument);
  EXPECT_THAT(empty.error().message, HasSubstr("/calc EXPRESSION"));
}

TEST_F(CalcTest, ReadsNothingAndWritesNothing) {
  EXPECT_EQ(calc_->flags().side_effects, SideEffects::none);
  EXPECT_FALSE(calc_->flags().needs_network);
}

TEST_F(CalcTest, ConcurrentCallsDoNotInterfere) {
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if ((i + t) % 3 == 0) {
          auto r = eval("1/0");
          if (r.ok() || r.error().message != "calc: division by zero") ++wrong;
        } else {
          auto r = eval(std::to_string(i) + "*" + std::to_string(t + 1));
          if (!r.ok() || (*r)["result"] != i * (t + 1)) ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace calc_test
}  // namespace parley::capabilities
