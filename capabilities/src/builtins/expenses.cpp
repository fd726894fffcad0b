// expenses: what the caller spent (table expenses, migration 0011) — add, month and week totals
// per category with each category's share and a sparkline of daily spending, list, remove.
//
// Money is integer minor units of an ISO 4217 currency, never floating point: the amount comes
// in as decimal text ("12.34", a string in the tool's schema so that no JSON number, and no
// double, ever carries it) and is parsed digit by digit; it is formatted back the same way.
// Currencies are never summed together (there is no exchange rate): every total is per
// currency. Asked for a chart ("chart": true, which /expenses month and week set), a month or
// week also comes as a PNG of bars per category, one panel and scale per currency (chart.h).
//
// Days are the caller's calendar days ('YYYY-MM-DD' in Caller::time_zone, builtins/when.h): an
// expense at 23:30 local on the last day of a month belongs to that month, whatever UTC says.
// Every statement is scoped by the UserScope's user id: another user's expense number is
// answered exactly like one that does not exist. Writes go through the store's write queue and
// answer once committed; reads use the read pool.
#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "builtins/builtins_internal.h"
#include "builtins/chart.h"
#include "builtins/trend.h"
#include "builtins/when.h"

namespace parley::capabilities::builtins {
namespace {
namespace expenses_detail {

using nlohmann::json;
using storage::Connection;
using storage::WriteAck;

constexpr const char* kCap = "expenses";
constexpr size_t kMaxNote = 200;
constexpr size_t kMaxDay = 40;
constexpr size_t kMaxAmountText = 24;
constexpr size_t kMaxIntegerDigits = 12;  // below 10^15 minor units in every currency
constexpr int64_t kMaxListed = 50;
constexpr int64_t kLatestListed = 20;
constexpr const char* kAmountPattern = "^[0-9]+([.][0-9]+)?$";
constexpr const char* kCurrencyPattern = "^[A-Z]{3}$";
constexpr const char* kCategoryPattern = "^[a-z][a-z0-9_-]{0,39}$";
constexpr const char* kMonthPattern = "^[0-9]{4}-[0-9]{2}$";
constexpr const char* kUsage =
    "/expenses add AMOUNT [CURRENCY] CATEGORY [NOTE] | /expenses month [YYYY-MM] | "
    "/expenses week | /expenses list [DAY|YYYY-MM] | /expenses remove ID";

// ISO 4217 minor-unit exponents that are not 2 (every other well-formed code has 2), as lists of
// codes separated by one space.
constexpr std::string_view kNoMinorUnit =
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF";
constexpr std::string_view kThousandths = "BHD IQD JOD KWD LYD OMR TND";

bool listed_in(std::string_view codes, std::string_view code) {
  for (size_t i = 0; i + 3 <= codes.size(); i += 4) {
    if (codes.substr(i, 3) == code) return true;
  }
  return false;
}

// Common codes that a person may type in lowercase in a command ("12 eur groceries"): answered
// with "write it in capitals" rather than read as the category.
constexpr std::array<std::string_view, 18> kCommonCodes{"eur", "usd", "gbp", "chf", "jpy", "cad",
                                                        "aud", "nzd", "sek", "nok", "dkk", "pln",
                                                        "czk", "huf", "cny", "inr", "brl", "mxn"};

int exponent_of(std::string_view currency) {
  if (listed_in(kNoMinorUnit, currency)) return 0;
  if (listed_in(kThousandths, currency)) return 3;
  return 2;
}

bool is_currency_code(std::string_view s) {
  return s.size() == 3 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

int64_t scale_of(int n) {
  int64_t p = 1;
  for (int i = 0; i < n; ++i) p *= 10;
  return p;
}

Unexpected bad(std::string message) {
  return fail(ErrorCode::invalid_argument, fmt::format("{}: {}", kCap, message));
}

// Digits with at most one '.' between digits: "12", "12.34" (what kAmountPattern accepts).
bool is_decimal_text(std::string_view text) {
  const auto digits = [](std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const auto dot = text.find('.');
  if (dot == std::string_view::npos) return digits(text);
  return digits(text.substr(0, dot)) && digits(text.substr(dot + 1));
}

// "12.34" in `currency` → 1234. Digits, at most one '.', no sign, no exponent, no more decimals
// than the currency has, more than zero.
Result<int64_t> parse_amount(std::string_view text, std::string_view currency) {
  if (!is_decimal_text(text)) {
    return bad(fmt::format("the amount '{}' is not a decimal number like 12.34", text));
  }
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view frac =
      dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  const int exponent = exponent_of(currency);
  if (frac.size() > static_cast<size_t>(exponent)) {
    return bad(exponent == 0
                   ? fmt::format("the amount '{}' has decimals, but {} has none", text, currency)
                   : fmt::format("the amount '{}' has {} decimals, but {} has {}", text,
                                 frac.size(), currency, exponent));
  }
  std::string_view significant = whole;
  while (significant.size() > 1 && significant.front() == '0') significant.remove_prefix(1);
  if (significant.size() > kMaxIntegerDigits) {
    return bad(fmt::format("the amount '{}' is too large", text));
  }
  int64_t minor = 0;
  for (char c : significant) minor = minor * 10 + (c - '0');
  int64_t fraction = 0;
  for (char c : frac) fraction = fraction * 10 + (c - '0');
  minor =
      minor * scale_of(exponent) + fraction * scale_of(exponent - static_cast<int>(frac.size()));
  if (minor <= 0) return bad(fmt::format("the amount '{}' must be more than zero", text));
  return minor;
}

// 1234 EUR → "12.34", 1500 JPY → "1500", 1250 KWD → "1.250" (no amount is near the int64
// limit, see kMaxIntegerDigits).
std::string format_minor(int64_t minor, std::string_view currency) {
  return format_minor_units(minor, exponent_of(currency));
}

std::string format_money(int64_t minor, std::string_view currency) {
  return fmt::format("{} {}", format_minor(minor, currency), currency);
}

// part/whole as a whole percent, rounded, in integers (both scaled down together first when
// they are large, which changes no rounded percent that matters).
int64_t share_percent(int64_t part, int64_t whole) {
  if (whole <= 0) return 0;
  while (whole > 1'000'000'000'000'000) {
    part /= 1000;
    whole /= 1000;
  }
  if (whole == 0) return 0;
  return (part * 100 + whole / 2) / whole;
}

struct Expense {
  int64_t id = 0;
  std::string day;
  int64_t amount_minor = 0;
  std::string currency;
  std::string category;
  std::string note;
  int64_t created_at = 0;
};

std::string day_label(std::string_view day) {
  auto d = parse_day_string(day);
  return d ? human_day(*d) : std::string(day);
}

json to_json(const Expense& e) {
  return {{"id", e.id},
          {"day", e.day},
          {"amount_minor", e.amount_minor},
          {"amount", format_minor(e.amount_minor, e.currency)},
          {"currency", e.currency},
          {"category", e.category},
          {"note", e.note},
          {"created_at", iso_utc(e.created_at)}};
}

std::string line_of(const Expense& e) {
  return fmt::format("#{} {} {} {}{}", e.id, day_label(e.day),
                     format_money(e.amount_minor, e.currency), e.category,
                     e.note.empty() ? std::string() : " — " + e.note);
}

Unexpected no_such_expense(int64_t id) {
  // The same answer whether the id is free or another user's: nothing about others leaks.
  return fail(ErrorCode::not_found, fmt::format("expenses: you have no expense #{}", id));
}

// A "YYYY-MM" month (strict), or nullopt.
std::optional<date::year_month> parse_month(std::string_view text) {
  if (text.size() != 7 || text[4] != '-') return std::nullopt;
  auto first = parse_day_string(fmt::format("{}-01", text));
  if (!first) return std::nullopt;
  const date::year_month_day ymd{*first};
  return ymd.year() / ymd.month();
}

std::string month_label(date::year_month ym) {
  return date::format("%B %Y", date::local_days{ym / 1});
}

// A period of whole days of the caller, both ends included.
struct Period {
  date::local_days from;
  date::local_days to;
  std::string label;
};

struct CategoryTotal {
  std::string category;
  int64_t minor = 0;
  int64_t count = 0;
};

struct CurrencyTotals {
  int64_t minor = 0;
  int64_t count = 0;
  std::vector<CategoryTotal> categories;
  std::map<std::string, int64_t> by_day;
};

// Totals of `period` per currency (by code), per category (largest first) and per day.
Result<std::map<std::string, CurrencyTotals>> totals_of(const UserScope& scope,
                                                        const Period& period) {
  std::map<std::string, CurrencyTotals> out;
  auto conn = scope.store().reads().acquire();
  const std::string from = day_string(period.from);
  const std::string to = day_string(period.to);
  {
    auto st = conn->cached(
        "SELECT currency, category, sum(amount_minor), count(*) FROM expenses "
        "WHERE user_id = ? AND day >= ? AND day <= ? GROUP BY currency, category");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(scope.user_id(), from, to);
    for (;;) {
      auto row = (*st)->step();
      if (!row) return fail(std::move(row).error());
      if (!*row) break;
      auto& c = out[(*st)->column_text(0)];
      c.categories.push_back(
          {(*st)->column_text(1), (*st)->column_int64(2), (*st)->column_int64(3)});
      c.minor += c.categories.back().minor;
      c.count += c.categories.back().count;
    }
  }
  {
    auto st = conn->cached(
        "SELECT currency, day, sum(amount_minor) FROM expenses "
        "WHERE user_id = ? AND day >= ? AND day <= ? GROUP BY currency, day");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(scope.user_id(), from, to);
    for (;;) {
      auto row = (*st)->step();
      if (!row) return fail(std::move(row).error());
      if (!*row) break;
      out[(*st)->column_text(0)].by_day[(*st)->column_text(1)] = (*st)->column_int64(2);
    }
  }
  for (auto& [currency, c] : out) {
    std::sort(c.categories.begin(), c.categories.end(),
              [](const CategoryTotal& a, const CategoryTotal& b) {
                return a.minor != b.minor ? a.minor > b.minor : a.category < b.category;
              });
  }
  return out;
}

// The chart of `totals`: a panel per currency (at most kMaxPanels, by code), a bar per category
// (largest first; beyond kMaxBars the smallest as one bar), added to `answer` with the numbers
// drawn.
void add_chart(json& answer, const std::map<std::string, CurrencyTotals>& totals,
               const Period& period, const std::string& filename) {
  namespace e = expense_chart;
  ExpenseChart chart;
  json currencies = json::array();
  json not_drawn = json::array();
  for (const auto& [currency, c] : totals) {
    if (chart.panels.size() == e::kMaxPanels) {
      not_drawn.push_back(currency);
      continue;
    }
    ExpensePanel panel{
        currency,
        exponent_of(currency),
        fmt::format("{}: {} in {} expense{}", currency, format_minor(c.minor, currency), c.count,
                    c.count == 1 ? "" : "s"),
        {}};
    json bars = json::array();
    const size_t kept = c.categories.size() <= e::kMaxBars ? c.categories.size() : e::kMaxBars - 1;
    for (size_t i = 0; i < kept; ++i) {
      const auto& cat = c.categories[i];
      panel.bars.push_back({cat.category, cat.minor});
      bars.push_back({{"label", cat.category},
                      {"category", cat.category},
                      {"total_minor", cat.minor},
                      {"total", format_minor(cat.minor, currency)}});
    }
    if (kept < c.categories.size()) {
      int64_t rest = 0;
      for (size_t i = kept; i < c.categories.size(); ++i) rest += c.categories[i].minor;
      const size_t merged = c.categories.size() - kept;
      const std::string label = fmt::format("{} more categories", merged);
      panel.bars.push_back({label, rest});
      bars.push_back({{"label", label},
                      {"category", nullptr},
                      {"categories", merged},
                      {"total_minor", rest},
                      {"total", format_minor(rest, currency)}});
    }
    int64_t largest = 0;
    for (const auto& b : panel.bars) largest = std::max(largest, b.minor);
    const ExpenseScale scale = expense_scale(largest);
    currencies.push_back({{"currency", currency},
                          {"total_minor", c.minor},
                          {"scale", {{"step_minor", scale.step}, {"max_minor", scale.max}}},
                          {"bars", std::move(bars)}});
    chart.panels.push_back(std::move(panel));
  }
  chart.title = fmt::format("Spending in {} ({} – {})", period.label, human_day(period.from),
                            human_day(period.to));
  if (!not_drawn.empty()) {
    chart.title += fmt::format(", {} of {} currencies", chart.panels.size(), totals.size());
  }
  json numbers{{"from", day_string(period.from)},
               {"to", day_string(period.to)},
               {"period", period.label},
               {"currencies", std::move(currencies)}};
  if (!not_drawn.empty()) numbers["currencies_not_drawn"] = std::move(not_drawn);
  attach_chart(answer, kCap, filename, std::move(numbers), expense_chart_svg(chart),
               fmt::format("no expenses in {}", period.label));
}

// The report of `period`: per currency its total, its categories with their shares, and a
// sparkline of its daily spending (one bar per day of the period, the highest day full); with a
// chart of the categories when `chart_file` names one.
Result<json> report(const UserScope& scope, const Period& period,
                    const std::optional<std::string>& chart_file) {
  auto totals = totals_of(scope, period);
  if (!totals) return fail(std::move(totals).error());
  json currencies = json::array();
  const std::string span = period.from == period.to ? human_day(period.from)
                                                    : fmt::format("{} – {}", human_day(period.from),
                                                                  human_day(period.to));
  std::string text;
  for (const auto& [currency, c] : *totals) {
    json categories = json::array();
    std::string lines;
    for (const auto& cat : c.categories) {
      const int64_t share = share_percent(cat.minor, c.minor);
      categories.push_back({{"category", cat.category},
                            {"total_minor", cat.minor},
                            {"total", format_minor(cat.minor, currency)},
                            {"count", cat.count},
                            {"share_percent", share}});
      lines +=
          fmt::format("\n  {} {} ({}%)", cat.category, format_money(cat.minor, currency), share);
    }
    json daily = json::array();
    std::vector<std::optional<double>> series;
    int64_t highest = 0;
    for (auto d = period.from; d <= period.to; d += date::days{1}) {
      const std::string day = day_string(d);
      const auto it = c.by_day.find(day);
      const int64_t minor = it == c.by_day.end() ? 0 : it->second;
      highest = std::max(highest, minor);
      daily.push_back({{"day", day}, {"total_minor", minor}});
      // The bar heights alone are relative (a picture of the days, not an amount): exact
      // totals stay in integers above.
      series.emplace_back(static_cast<double>(minor));
    }
    const std::string spark = sparkline(series, 0, static_cast<double>(highest));
    currencies.push_back({{"currency", currency},
                          {"total_minor", c.minor},
                          {"total", format_minor(c.minor, currency)},
                          {"count", c.count},
                          {"categories", std::move(categories)},
                          {"daily", std::move(daily)},
                          {"sparkline", spark}});
    text += fmt::format("\n{} in {} expense{}{}\n  by day {}", format_money(c.minor, currency),
                        c.count, c.count == 1 ? "" : "s", lines, spark);
  }
  if (totals->empty()) {
    text = fmt::format("No expenses in {} ({}).", period.label, span);
  } else {
    text = fmt::format("Spending in {} ({}):{}", period.label, span, text);
  }
  json answer{{"from", day_string(period.from)},
              {"to", day_string(period.to)},
              {"period", period.label},
              {"currencies", std::move(currencies)},
              {"text", std::move(text)}};
  if (chart_file) add_chart(answer, *totals, period, *chart_file);
  return answer;
}

class Expenses final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return kCap; }
  [[nodiscard]] std::string_view description() const override {
    return "The user's expenses: record spending, totals per category for a month or week "
           "(per currency, never converted), list, remove.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"expens", "spent", "spend", "paid", "bought", "receipt", "€", "£", "$"};
  }
  [[nodiscard]] json parameters() const override {
    return {
        {"type", "object"},
        {"additionalProperties", false},
        {"required", {"action"}},
        {"properties",
         {{"action", {{"type", "string"}, {"enum", {"add", "month", "week", "list", "remove"}}}},
          {"amount",
           {{"type", "string"},
            {"pattern", kAmountPattern},
            {"maxLength", kMaxAmountText},
            {"description", "decimal text, e.g. \"12.34\" (add)"}}},
          {"currency",
           {{"type", "string"},
            {"pattern", kCurrencyPattern},
            {"description",
             "ISO 4217 code, e.g. EUR (add; default: the default_currency setting)"}}},
          {"category",
           {{"type", "string"},
            {"pattern", kCategoryPattern},
            {"description", "one lowercase word, e.g. groceries (add)"}}},
          {"note",
           {{"type", "string"}, {"maxLength", kMaxNote}, {"description", "what it was (add)"}}},
          {"day",
           {{"type", "string"},
            {"minLength", 1},
            {"maxLength", kMaxDay},
            {"description", "today, yesterday, 2026-11-20, monday (add, list; default today)"}}},
          {"month",
           {{"type", "string"},
            {"pattern", kMonthPattern},
            {"description", "YYYY-MM (month, list; default this month)"}}},
          {"id", {{"type", "integer"}, {"minimum", 1}, {"description", "expense number (remove)"}}},
          {"chart",
           {{"type", "boolean"},
            {"description", "month, week: also attach a PNG chart of the categories"}}}}}};
  }
  [[nodiscard]] json settings_schema() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"properties",
             {{"default_currency",
               {{"type", "string"},
                {"pattern", kCurrencyPattern},
                {"description", "ISO 4217 code used when an expense names no currency"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"expenses", kUsage,
             "your spending, e.g. /expenses add 12.34 EUR groceries apples, /expenses month"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view /*command*/,
                                           std::string_view text) const override {
    const auto [action, rest] = split_first_word(text);
    // A month or week typed as a command comes with its chart.
    if (action.empty() || (action == "month" && rest.empty())) {
      return json{{"action", "month"}, {"chart", true}};
    }
    if (action == "month") {
      if (!parse_month(rest)) {
        return bad(fmt::format("'{}' is not a month; write it like 2026-11", rest));
      }
      return json{{"action", "month"}, {"month", std::string(rest)}, {"chart", true}};
    }
    if (action == "week" && rest.empty()) return json{{"action", "week"}, {"chart", true}};
    if (action == "list") {
      if (rest.empty()) return json{{"action", "list"}};
      if (parse_month(rest)) return json{{"action", "list"}, {"month", std::string(rest)}};
      // Only the syntax here (the day is read again at the call, with its clock and zone), so
      // that what is no day is said as such rather than as the schema's "arguments.day: …".
      if (auto day = parse_day(rest, 0, zone_of("UTC"), kCap); !day) {
        return bad(fmt::format("'{}' is neither a day ({}) nor a month (2026-11); usage: {}",
                               utf8_first_chars(rest, 40), kDayForms, kUsage));
      }
      return json{{"action", "list"}, {"day", std::string(rest)}};
    }
    if (action == "remove" && !rest.empty()) {
      auto id = parse_id(rest, kCap);
      if (!id) return fail(std::move(id).error());
      return json{{"action", "remove"}, {"id", *id}};
    }
    if (action == "add" && !rest.empty()) return parse_add(rest);
    return bad(fmt::format("usage: {}", kUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const Zone zone = zone_of(ctx.caller.time_zone);
    const int64_t now = clock_of(ctx).now_ms();
    const date::local_days today = local_day(zone, now);
    const auto action = args.at("action").get<std::string>();
    const bool chart = args.value("chart", false);
    if (args.contains("chart") && action != "month" && action != "week") {
      return done(bad(fmt::format("{} does not take \"chart\" (month and week do)", action)));
    }
    if (action == "month") {
      date::year_month ym =
          date::year_month_day{today}.year() / date::year_month_day{today}.month();
      if (args.contains("month")) {
        auto m = parse_month(args.at("month").get<std::string>());
        if (!m) {
          return done(bad(fmt::format("\"month\" '{}' is not a month; write it like 2026-11",
                                      args.at("month").get<std::string>())));
        }
        ym = *m;
      }
      Period p{date::local_days{ym / 1}, date::local_days{ym / date::last}, month_label(ym)};
      // This month so far: no bars for days still to come.
      if (p.from <= today && today < p.to) p.to = today;
      const auto file = fmt::format("expenses-{}.png", day_string(p.from).substr(0, 7));
      return done(report(**scope, p, chart ? std::optional(file) : std::nullopt));
    }
    if (action == "week") {
      const auto file = fmt::format("expenses-week-to-{}.png", day_string(today));
      return done(report(**scope, Period{today - date::days{6}, today, "the last 7 days"},
                         chart ? std::optional(file) : std::nullopt));
    }
    if (action == "list") return done(list(**scope, args, now, zone));
    if (action == "add") return add(ctx, **scope, args, now, zone, std::move(done));
    if (!args.contains("id")) return done(bad("remove needs the expense's \"id\""));
    return remove(**scope, args.at("id").get<int64_t>(), std::move(done));
  }

 private:
  // "AMOUNT [CURRENCY] CATEGORY [NOTE]"
  static Result<json> parse_add(std::string_view text) {
    const auto [amount, after_amount] = split_first_word(text);
    if (!is_decimal_text(amount) || amount.size() > kMaxAmountText) {
      return bad(
          fmt::format("'{}' is not an amount; write it like 12.34 (usage: /expenses add "
                      "12.34 EUR groceries apples)",
                      amount));
    }
    json args{{"action", "add"}, {"amount", std::string(amount)}};
    auto [first, after_first] = split_first_word(after_amount);
    std::string_view word = first;
    std::string_view rest = after_first;
    const bool all_upper = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
      return c >= 'A' && c <= 'Z';
    });
    if (all_upper && word.size() > 1) {
      if (!is_currency_code(word)) {
        return bad(
            fmt::format("'{}' is not a currency: give an ISO 4217 code of three capital "
                        "letters, like EUR",
                        word));
      }
      args["currency"] = std::string(word);
      const auto [category, note] = split_first_word(rest);
      word = category;
      rest = note;
    } else if (std::find(kCommonCodes.begin(), kCommonCodes.end(), word) != kCommonCodes.end()) {
      std::string upper(word);
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return bad(fmt::format("write the currency in capitals: {} rather than '{}'", upper, word));
    }
    if (word.empty()) {
      return bad("add needs a category, e.g. /expenses add 12.34 EUR groceries apples");
    }
    std::string category(word);
    for (char& c : category) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // As kCategoryPattern says, so that a word it refuses is this usage rather than a schema
    // error about "arguments.category".
    const bool plain =
        category.size() <= 40 && category[0] >= 'a' && category[0] <= 'z' &&
        std::all_of(category.begin(), category.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        });
    if (!plain) {
      return bad(
          fmt::format("'{}' is not a category: one word of letters, digits, '_' or '-', "
                      "starting with a letter (usage: /expenses add 12.34 EUR groceries "
                      "apples)",
                      word));
    }
    args["category"] = std::move(category);
    if (!rest.empty()) args["note"] = std::string(rest);
    return args;
  }

  void add(const InvokeContext& ctx, const UserScope& scope, const json& args, int64_t now,
           const Zone& zone, Done done) const {
    if (!args.contains("amount")) return done(bad("add needs an \"amount\", e.g. \"12.34\""));
    if (!args.contains("category")) {
      return done(bad("add needs a \"category\", one lowercase word like groceries"));
    }
    std::string currency;
    if (args.contains("currency")) {
      currency = args.at("currency").get<std::string>();
    } else {
      const json& s = ctx.settings;
      if (s.is_object() && s.contains("default_currency") && s.at("default_currency").is_string()) {
        currency = s.at("default_currency").get<std::string>();
      }
    }
    if (currency.empty()) {
      return done(bad(
          "which currency? Give one (\"currency\": \"EUR\", or /expenses add 12.34 EUR "
          "groceries), or set default_currency in the settings of expenses in capabilities.yaml"));
    }
    if (!is_currency_code(currency)) {
      return done(bad(fmt::format("the currency '{}' is not three capital letters", currency)));
    }
    auto minor = parse_amount(args.at("amount").get<std::string>(), currency);
    if (!minor) return done(fail(std::move(minor).error()));
    const std::string note(trim(args.value("note", std::string())));
    auto day = parse_day(args.value("day", std::string("today")), now, zone, kCap);
    if (!day) return done(fail(std::move(day).error()));

    auto e = std::make_shared<Expense>();
    e->day = day_string(*day);
    e->amount_minor = *minor;
    e->currency = std::move(currency);
    e->category = args.at("category").get<std::string>();
    e->note = note;
    e->created_at = now;
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "expenses add",
        [e, user](Connection& conn) -> Result<WriteAck> {
          auto st = conn.cached(
              "INSERT INTO expenses(user_id, day, amount_minor, currency, category, note, "
              "created_at) VALUES (?,?,?,?,?,?,?)");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)
                         ->bind_all(user, e->day, e->amount_minor, e->currency, e->category,
                                    e->note, e->created_at)
                         .run());
          e->id = conn.last_insert_rowid();
          return WriteAck{e->id, true};
        },
        [e] {
          return json{{"expense", to_json(*e)}, {"text", "Added " + line_of(*e)}};
        },
        std::move(done));
  }

  static Result<json> list(const UserScope& scope, const json& args, int64_t now,
                           const Zone& zone) {
    if (args.contains("day") && args.contains("month")) {
      return bad("list takes a \"day\" or a \"month\", not both");
    }
    std::string from = "0000-00-00";
    std::string to = "9999-99-99";
    int64_t limit = kLatestListed;
    std::string what = "Your latest expenses";
    std::string none = "You have no expenses.";
    if (args.contains("day")) {
      auto day = parse_day(args.at("day").get<std::string>(), now, zone, kCap);
      if (!day) return fail(std::move(day).error());
      from = to = day_string(*day);
      limit = kMaxListed;
      what = "Your expenses of " + human_day(*day);
      none = "No expenses on " + human_day(*day) + ".";
    } else if (args.contains("month")) {
      auto m = parse_month(args.at("month").get<std::string>());
      if (!m) {
        return bad(fmt::format("\"month\" '{}' is not a month; write it like 2026-11",
                               args.at("month").get<std::string>()));
      }
      from = day_string(date::local_days{*m / 1});
      to = day_string(date::local_days{*m / date::last});
      limit = kMaxListed;
      what = "Your expenses in " + month_label(*m);
      none = "No expenses in " + month_label(*m) + ".";
    }
    std::vector<Expense> found;
    {
      auto conn = scope.store().reads().acquire();
      auto st = conn->cached(
          "SELECT id, day, amount_minor, currency, category, note, created_at FROM expenses "
          "WHERE user_id = ? AND day >= ? AND day <= ? ORDER BY day DESC, id DESC LIMIT ?");
      if (!st) return fail(std::move(st).error());
      (*st)->bind_all(scope.user_id(), from, to, limit + 1);
      for (;;) {
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        if (!*row) break;
        found.push_back({(*st)->column_int64(0), (*st)->column_text(1), (*st)->column_int64(2),
                         (*st)->column_text(3), (*st)->column_text(4), (*st)->column_text(5),
                         (*st)->column_int64(6)});
      }
    }
    const bool more = found.size() > static_cast<size_t>(limit);
    if (more) found.pop_back();
    json out = json::array();
    std::string text = what + ":";
    std::map<std::string, int64_t> sums;
    for (const auto& e : found) {
      out.push_back(to_json(e));
      text += "\n" + line_of(e);
      sums[e.currency] += e.amount_minor;
    }
    json totals = json::array();
    std::vector<std::string> parts;
    for (const auto& [currency, minor] : sums) {
      totals.push_back({{"currency", currency},
                        {"total_minor", minor},
                        {"total", format_minor(minor, currency)}});
      parts.push_back(format_money(minor, currency));
    }
    if (found.empty()) text = none;
    if (more) {
      text += fmt::format("\n(only the latest {} are shown)", limit);
    } else if (limit == kMaxListed && !found.empty()) {
      // A whole day or month is shown: its totals, one per currency.
      text += fmt::format("\nTotal: {}", fmt::join(parts, ", "));
    }
    return json{{"expenses", std::move(out)},
                {"totals", std::move(totals)},
                {"truncated", more},
                {"text", std::move(text)}};
  }

  void remove(const UserScope& scope, int64_t id, Done done) const {
    auto e = std::make_shared<Expense>();
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "expenses remove",
        [e, id, user](Connection& conn) -> Result<WriteAck> {
          auto st = conn.cached(
              "DELETE FROM expenses WHERE id = ? AND user_id = ? "
              "RETURNING day, amount_minor, currency, category, note, created_at");
          if (!st) return fail(std::move(st).error());
          (*st)->bind_all(id, user);
          auto row = (*st)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) return no_such_expense(id);
          *e = Expense{id,
                       (*st)->column_text(0),
                       (*st)->column_int64(1),
                       (*st)->column_text(2),
                       (*st)->column_text(3),
                       (*st)->column_text(4),
                       (*st)->column_int64(5)};
          return WriteAck{id, false};
        },
        [e] {
          return json{{"expense", to_json(*e)}, {"text", "Removed " + line_of(*e)}};
        },
        std::move(done));
  }
};

}  // namespace expenses_detail
}  // namespace

std::unique_ptr<Capability> make_expenses() {
  return std::make_unique<expenses_detail::Expenses>();
}

}  // namespace parley::capabilities::builtins
