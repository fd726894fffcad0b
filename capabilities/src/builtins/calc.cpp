// calc: arithmetic with muParser (operators, parentheses, ^, functions such as sqrt and sin,
// constants _pi and _e). A Parser is built per call, so calls share nothing.
#include <muParser.h>

#include <cfenv>
#include <cmath>
#include <regex>

#include "builtins/builtins_internal.h"

namespace parley::capabilities::builtins {
namespace {

using nlohmann::json;

constexpr size_t kMaxExpression = 500;
// Integers up to 2^53 are exact in a double, so they print as integers.
constexpr double kMaxExactInteger = 9007199254740992.0;

// muParser's messages end with " at position N" when they have one; the position is reported
// once, in front.
std::string without_position(const std::string& message) {
  static const std::regex kSuffix(R"( (found )?at position -?\d+\.?$)");
  std::string m = std::regex_replace(message, kSuffix, "");
  if (!m.empty() && m.back() == '.') m.pop_back();
  return m;
}

json answer(double value) {
  if (value == 0) value = 0;  // no "-0"
  if (std::trunc(value) == value && std::fabs(value) <= kMaxExactInteger) {
    const auto i = static_cast<int64_t>(value);
    return {{"result", i}, {"text", std::to_string(i)}};
  }
  return {{"result", value}, {"text", fmt::format("{:.12g}", value)}};
}

class Calc final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "calc"; }
  [[nodiscard]] std::string_view description() const override {
    return "Evaluates an arithmetic expression.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"+",    "*",     "^",     "%",       "calcul", "comput",  "arithmetic", "math",
            "plus", "minus", "times", "multipl", "divid",  "percent", "sqrt",       "square root"};
  }
  [[nodiscard]] json parameters() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"required", {"expression"}},
            {"properties",
             {{"expression",
               {{"type", "string"},
                {"minLength", 1},
                {"maxLength", kMaxExpression},
                {"description",
                 "e.g. 2*(3+4)^2; functions sqrt sin cos log ln abs min max; constants _pi "
                 "_e"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::none, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"calc", "/calc EXPRESSION", "evaluates arithmetic, e.g. /calc 2*(3+4)"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view /*command*/,
                                           std::string_view text) const override {
    const auto expression = trim(text);
    if (expression.empty()) {
      return fail(ErrorCode::invalid_argument, "calc: usage: /calc EXPRESSION, e.g. /calc 2*(3+4)");
    }
    return json{{"expression", std::string(expression)}};
  }

 protected:
  Result<json> invoke_(const InvokeContext& /*ctx*/, const json& args) override {
    const auto expression = args.at("expression").get<std::string>();
    double value = 0;
    int results = 0;
    // The floating-point flags are per thread; they tell a division by zero from an overflow.
    std::feclearexcept(FE_ALL_EXCEPT);
    try {
      mu::Parser parser;
      parser.SetExpr(expression);
      value = parser.Eval();
      results = parser.GetNumResults();
    } catch (const mu::ParserError& e) {
      const std::string message = without_position(e.GetMsg());
      if (e.GetPos() >= 0) {
        return fail(ErrorCode::invalid_argument,
                    fmt::format("calc: syntax error at position {}: {}", e.GetPos(), message));
      }
      return fail(ErrorCode::invalid_argument, fmt::format("calc: {}", message));
    }
    const bool divided_by_zero = std::fetestexcept(FE_DIVBYZERO) != 0;
    const bool overflowed = std::fetestexcept(FE_OVERFLOW) != 0;
    if (results != 1) {
      return fail(ErrorCode::invalid_argument,
                  "calc: one expression at a time (a comma separates expressions)");
    }
    if (!std::isfinite(value)) {
      if (divided_by_zero) return fail(ErrorCode::invalid_argument, "calc: division by zero");
      if (overflowed) {
        return fail(ErrorCode::invalid_argument, "calc: the result is too large (overflow)");
      }
      return fail(ErrorCode::invalid_argument,
                  "calc: the result is not a finite number (e.g. 0/0 or sqrt(-1))");
    }
    return answer(value);
  }
};

}  // namespace

std::unique_ptr<Capability> make_calc() { return std::make_unique<Calc>(); }

}  // namespace parley::capabilities::builtins
