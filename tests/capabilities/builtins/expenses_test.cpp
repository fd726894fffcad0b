// expenses: add, list, remove with their answers; amounts as exact integer minor units (0, 2 and
// 3 decimals) formatted back exactly; every kind of bad input (too many decimals for the
// currency, a sign, an exponent, a JSON number, a malformed currency, no currency and no
// default); the default_currency setting; month and week totals per currency and category with
// shares and daily sparklines; month and week boundaries in the caller's zone (23:30 local on
// the last day of a month, a month and a week with a DST change); currencies never summed;
// isolation between users; the /expenses command forms; the chart of a month or week (bars per
// category, a panel per currency), read back from its PNG's pixels as the categories' totals.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "capabilities/builtins/chart_reader.h"
#include "capabilities/builtins/user_store_fixture.h"
#include "parley/capabilities/json_schema.h"

namespace parley::capabilities {
namespace expenses_test {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kHour = 3'600'000;

class ExpensesTest : public UserStoreFixture {
 protected:
  Result<json> try_expenses(const UserScope& who, const json& args, const std::string& zone = "UTC",
                            const json& settings = json::object()) {
    InvokeContext ctx;
    ctx.caller.user_id = who.user_id();
    ctx.caller.time_zone = zone;
    ctx.settings = settings;
    ctx.data = &who;
    ctx.services = &services_;
    return registry_.find("expenses")->invoke(ctx, args);
  }
  json expenses(const UserScope& who, const json& args, const std::string& zone = "UTC",
                const json& settings = json::object()) {
    auto r = try_expenses(who, args, zone, settings);
    EXPECT_TRUE(r.ok()) << args.dump() << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : json();
  }
  // Adds an expense and returns its number.
  int64_t add(const UserScope& who, const std::string& amount, const std::string& currency,
              const std::string& category, const std::string& day = "today",
              const std::string& zone = "UTC") {
    return expenses(who,
                    {{"action", "add"},
                     {"amount", amount},
                     {"currency", currency},
                     {"category", category},
                     {"day", day}},
                    zone)["expense"]["id"]
        .get<int64_t>();
  }
  Result<json> parse(std::string_view text) {
    return registry_.find_command("expenses")->parse_command("expenses", text);
  }
  // A /expenses command as the user types it.
  Result<json> command(const UserScope& who, std::string_view text,
                       const json& settings = json::object()) {
    auto args = parse(text);
    if (!args) return args;
    return try_expenses(who, *args, "UTC", settings);
  }
  std::vector<std::string> days_of(const json& currency) {
    std::vector<std::string> out;
    for (const auto& d : currency["daily"]) out.push_back(d["day"].get<std::string>());
    return out;
  }
};

TEST_F(ExpensesTest, AddListRemove) {
  auto added = expenses(*alice_, {{"action", "add"},
                                  {"amount", "12.34"},
                                  {"currency", "EUR"},
                                  {"category", "groceries"},
                                  {"note", " apples "}});
  const int64_t id = added["expense"]["id"].get<int64_t>();
  EXPECT_EQ(added["text"],
            "Added #" + std::to_string(id) + " Mon 23 Nov 12.34 EUR groceries — apples");
  EXPECT_EQ(added["expense"]["amount_minor"], 1234);
  EXPECT_EQ(added["expense"]["amount"], "12.34");
  EXPECT_EQ(added["expense"]["currency"], "EUR");
  EXPECT_EQ(added["expense"]["day"], "2026-11-23");
  EXPECT_EQ(added["expense"]["note"], "apples");
  EXPECT_EQ(added["expense"]["created_at"], "2026-11-23T14:04:05Z");
  const int64_t sushi = add(*alice_, "1500", "JPY", "food", "yesterday");
  const int64_t fuel = add(*alice_, "1.25", "KWD", "fuel", "2026-11-23");

  auto list = expenses(*alice_, {{"action", "list"}});
  ASSERT_EQ(list["expenses"].size(), 3u);
  EXPECT_EQ(list["expenses"][0]["id"], fuel) << "latest day first, then latest added";
  EXPECT_EQ(list["expenses"][1]["id"], id);
  EXPECT_EQ(list["expenses"][2]["id"], sushi);
  EXPECT_EQ(list["text"], fmt::format("Your latest expenses:\n#{} Mon 23 Nov 1.250 KWD fuel\n#{} "
                                      "Mon 23 Nov 12.34 EUR groceries — apples\n#{} Sun 22 Nov "
                                      "1500 JPY food",
                                      fuel, id, sushi));

  auto today = expenses(*alice_, {{"action", "list"}, {"day", "today"}});
  ASSERT_EQ(today["expenses"].size(), 2u);
  EXPECT_THAT(today["text"].get<std::string>(), HasSubstr("\nTotal: 12.34 EUR, 1.250 KWD"))
      << "per currency, never summed";
  auto november = expenses(*alice_, {{"action", "list"}, {"month", "2026-11"}});
  EXPECT_EQ(november["expenses"].size(), 3u);
  EXPECT_EQ(expenses(*alice_, {{"action", "list"}, {"month", "2026-10"}})["text"],
            "No expenses in October 2026.");

  auto removed = expenses(*alice_, {{"action", "remove"}, {"id", sushi}});
  EXPECT_EQ(removed["text"], fmt::format("Removed #{} Sun 22 Nov 1500 JPY food", sushi));
  auto again = try_expenses(*alice_, {{"action", "remove"}, {"id", sushi}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::not_found);
  EXPECT_EQ(again.error().message, fmt::format("expenses: you have no expense #{}", sushi));
  EXPECT_EQ(expenses(*alice_, {{"action", "list"}})["expenses"].size(), 2u);
}

TEST_F(ExpensesTest, AmountsAreExactMinorUnits) {
  struct Case {
    std::string amount;
    std::string currency;
    int64_t minor;
    std::string shown;
  };
  for (const auto& c : {
           Case{"0.01", "EUR", 1, "0.01 EUR"}, Case{"12", "EUR", 1200, "12.00 EUR"},
           Case{"12.3", "EUR", 1230, "12.30 EUR"}, Case{"007.50", "USD", 750, "7.50 USD"},
           Case{"0.1", "EUR", 10, "0.10 EUR"}, Case{"1500", "JPY", 1500, "1500 JPY"},
           Case{"25000", "KRW", 25000, "25000 KRW"}, Case{"1.25", "KWD", 1250, "1.250 KWD"},
           Case{"0.005", "BHD", 5, "0.005 BHD"},
           Case{"100", "XPF", 100, "100 XPF"},     // the last of the codes without decimals
           Case{"2.5", "TND", 2500, "2.500 TND"},  // the last of the codes with three
           Case{"999999999999.99", "CHF", 99'999'999'999'999, "999999999999.99 CHF"},
           Case{"19.99", "XYZ", 1999, "19.99 XYZ"},  // an unlisted code has 2 decimals
       }) {
    auto r = expenses(
        *alice_,
        {{"action", "add"}, {"amount", c.amount}, {"currency", c.currency}, {"category", "misc"}});
    EXPECT_EQ(r["expense"]["amount_minor"], c.minor) << c.amount << " " << c.currency;
    EXPECT_THAT(r["text"].get<std::string>(), HasSubstr(" " + c.shown + " misc"));
  }
  // What was stored is the integer.
  auto conn = store_->reads().acquire();
  auto st = conn->prepare(
      "SELECT typeof(amount_minor), amount_minor FROM expenses WHERE currency = 'KWD'");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(*st->step());
  EXPECT_EQ(st->column_text(0), "integer");
  EXPECT_EQ(st->column_int64(1), 1250);
}

TEST_F(ExpensesTest, BadInputIsRefusedAndNamed) {
  struct Case {
    json args;
    std::string says;
  };
  const json add{{"action", "add"}, {"currency", "EUR"}, {"category", "groceries"}};
  const auto with = [&](json extra) {
    json a = add;
    for (auto& [k, v] : extra.items()) a[k] = v;
    return a;
  };
  for (const auto& c : {
           Case{with({{"amount", "12.345"}}),
                "expenses: the amount '12.345' has 3 decimals, but EUR has 2"},
           Case{with({{"amount", "1.5"}, {"currency", "JPY"}}),
                "expenses: the amount '1.5' has decimals, but JPY has none"},
           Case{with({{"amount", "1.2345"}, {"currency", "KWD"}}), "but KWD has 3"},
           Case{with({{"amount", "12.340"}}), "has 3 decimals, but EUR has 2"},
           Case{with({{"amount", "-3"}}), "arguments.amount"},
           Case{with({{"amount", "1e3"}}), "arguments.amount"},
           Case{with({{"amount", "12."}}), "arguments.amount"},
           Case{with({{"amount", ".5"}}), "arguments.amount"},
           Case{with({{"amount", "12,34"}}), "arguments.amount"},
           Case{with({{"amount", ""}}), "arguments.amount"},
           Case{with({{"amount", 12.34}}), "arguments.amount: expected string"},
           Case{with({{"amount", 12}}), "arguments.amount: expected string"},
           Case{with({{"amount", "0"}}), "expenses: the amount '0' must be more than zero"},
           Case{with({{"amount", "0.00"}}), "must be more than zero"},
           Case{with({{"amount", "1234567890123"}}),
                "expenses: the amount '1234567890123' is too large"},
           Case{with({{"amount", "5"}, {"currency", "eur"}}), "arguments.currency"},
           Case{with({{"amount", "5"}, {"currency", "EURO"}}), "arguments.currency"},
           Case{with({{"amount", "5"}, {"currency", "E1R"}}), "arguments.currency"},
           Case{with({{"amount", "5"}, {"category", "Groceries"}}), "arguments.category"},
           Case{with({{"amount", "5"}, {"category", "two words"}}), "arguments.category"},
           Case{with({{"amount", "5"}, {"category", ""}}), "arguments.category"},
           Case{with({{"amount", "5"}, {"day", "someday"}}), "expenses: could not read the day"},
           Case{with({{"amount", "5"}, {"note", std::string(201, 'x')}}), "arguments.note"},
           Case{with({{"amount", "5"}, {"user_id", 2}}), "arguments.user_id"},
           Case{{{"action", "add"}, {"amount", "5"}, {"category", "groceries"}},
                "expenses: which currency? Give one"},
           Case{{{"action", "add"}, {"currency", "EUR"}, {"category", "x"}},
                "expenses: add needs an \"amount\""},
           Case{{{"action", "add"}, {"currency", "EUR"}, {"amount", "5"}},
                "expenses: add needs a \"category\""},
           Case{{{"action", "month"}, {"month", "2026-13"}}, "expenses: \"month\" '2026-13'"},
           Case{{{"action", "month"}, {"month", "2026-1"}}, "arguments.month"},
           Case{{{"action", "list"}, {"month", "2026-11"}, {"day", "today"}}, "not both"},
           Case{{{"action", "remove"}}, "expenses: remove needs the expense's \"id\""},
           Case{{{"action", "remove"}, {"id", 0}}, "arguments.id"},
           Case{{{"action", "spend"}}, "arguments.action"},
       }) {
    auto r = try_expenses(*alice_, c.args);
    ASSERT_FALSE(r.ok()) << c.args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.args.dump();
  }
  // The missing currency says how to give one.
  auto r = try_expenses(*alice_, {{"action", "add"}, {"amount", "5"}, {"category", "x"}});
  EXPECT_THAT(r.error().message, HasSubstr("default_currency"));
  EXPECT_EQ(expenses(*alice_, {{"action", "list"}})["expenses"].size(), 0u) << "nothing written";
}

// Found by schema_args_fuzz: "/expenses add 12.34 /fetch apples" took "/fetch" as the category,
// and the user heard that "arguments.category" does not match a regular expression. The
// command says what a category is instead.
TEST_F(ExpensesTest, ACommandsCategoryThatIsNoWordIsNamedAsSuch) {
  for (const char* text : {"add 12.34 /fetch apples", "add 5 EUR 3d-printing", "add 5 café"}) {
    const auto r = parse(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_THAT(r.error().message, HasSubstr("is not a category: one word of letters")) << text;
  }
  EXPECT_THAT(parse("add 12.34 /fetch apples").error().message, HasSubstr("'/fetch'"));
  EXPECT_EQ(parse("add 5 EUR Home-Office rent")->at("category"), "home-office");
  // "/expenses list" with 61 characters after it was the schema's "arguments.day: expected at
  // most 40 characters"; what is no day is said as such.
  const auto list = parse("list add 12.U4 EU98888888888/notes search 888888071992547409R ns");
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(list.error().message, HasSubstr("is neither a day (today, yesterday"));
  EXPECT_EQ(*parse("list yesterday"), (json{{"action", "list"}, {"day", "yesterday"}}));
  EXPECT_EQ(*parse("list 2026-11"), (json{{"action", "list"}, {"month", "2026-11"}}));
  // And an amount longer than the schema's 24 characters (its "arguments.amount: …").
  const auto amount = parse("add 12.555555555555555555555555555555555555535 EUR food x");
  ASSERT_FALSE(amount.ok());
  EXPECT_THAT(amount.error().message, HasSubstr("is not an amount; write it like 12.34"));
}

TEST_F(ExpensesTest, DefaultCurrencySetting) {
  const json chf{{"default_currency", "CHF"}};
  auto r =
      expenses(*alice_, {{"action", "add"}, {"amount", "4.5"}, {"category", "coffee"}}, "UTC", chf);
  EXPECT_EQ(r["expense"]["currency"], "CHF");
  EXPECT_EQ(r["expense"]["amount_minor"], 450);
  // A currency given wins over the default.
  r = expenses(*alice_,
               {{"action", "add"}, {"amount", "300"}, {"currency", "JPY"}, {"category", "coffee"}},
               "UTC", chf);
  EXPECT_EQ(r["expense"]["currency"], "JPY");
  // The default's decimals apply to the amount.
  auto bad = try_expenses(*alice_, {{"action", "add"}, {"amount", "1.234"}, {"category", "x"}},
                          "UTC", chf);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("CHF has 2"));
  // The setting is checked like the arguments.
  Capability* cap = registry_.find("expenses");
  EXPECT_TRUE(validate(cap->settings_schema(), chf, "settings").ok());
  EXPECT_FALSE(
      validate(cap->settings_schema(), json{{"default_currency", "chf"}}, "settings").ok());
  EXPECT_FALSE(validate(cap->settings_schema(), json{{"currency", "CHF"}}, "settings").ok());
}

TEST_F(ExpensesTest, MonthTotalsPerCurrencyAndCategory) {
  add(*alice_, "50", "EUR", "groceries", "2026-11-02");
  add(*alice_, "30.00", "EUR", "groceries", "2026-11-20");
  add(*alice_, "43.45", "EUR", "transport", "2026-11-20");
  add(*alice_, "15", "USD", "eating-out");
  add(*alice_, "99", "EUR", "groceries", "2026-10-31");  // the month before
  add(*bob_, "1000", "EUR", "groceries", "2026-11-05");  // someone else's

  auto m = expenses(*alice_, {{"action", "month"}});
  EXPECT_EQ(m["from"], "2026-11-01");
  EXPECT_EQ(m["to"], "2026-11-23") << "this month so far";
  EXPECT_EQ(m["period"], "November 2026");
  ASSERT_EQ(m["currencies"].size(), 2u);
  const json& eur = m["currencies"][0];
  EXPECT_EQ(eur["currency"], "EUR");
  EXPECT_EQ(eur["total_minor"], 12345);
  EXPECT_EQ(eur["total"], "123.45");
  EXPECT_EQ(eur["count"], 3);
  ASSERT_EQ(eur["categories"].size(), 2u);
  EXPECT_EQ(eur["categories"][0], (json{{"category", "groceries"},
                                        {"total_minor", 8000},
                                        {"total", "80.00"},
                                        {"count", 2},
                                        {"share_percent", 65}}));
  EXPECT_EQ(eur["categories"][1]["category"], "transport");
  EXPECT_EQ(eur["categories"][1]["share_percent"], 35);
  ASSERT_EQ(eur["daily"].size(), 23u);
  EXPECT_EQ(eur["daily"][1], (json{{"day", "2026-11-02"}, {"total_minor", 5000}}));
  EXPECT_EQ(eur["daily"][19], (json{{"day", "2026-11-20"}, {"total_minor", 7345}}));
  EXPECT_EQ(eur["daily"][0]["total_minor"], 0);
  const std::string eur_spark = "▁▆▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁█▁▁▁";
  EXPECT_EQ(eur["sparkline"], eur_spark);
  const json& usd = m["currencies"][1];
  EXPECT_EQ(usd["currency"], "USD");
  EXPECT_EQ(usd["total"], "15.00");
  EXPECT_EQ(usd["categories"][0]["share_percent"], 100);
  const std::string usd_spark = "▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁█";
  EXPECT_EQ(usd["sparkline"], usd_spark);
  EXPECT_EQ(m["text"],
            "Spending in November 2026 (Sun 1 Nov – Mon 23 Nov):\n"
            "123.45 EUR in 3 expenses\n"
            "  groceries 80.00 EUR (65%)\n"
            "  transport 43.45 EUR (35%)\n"
            "  by day " +
                eur_spark +
                "\n"
                "15.00 USD in 1 expense\n"
                "  eating-out 15.00 USD (100%)\n"
                "  by day " +
                usd_spark);

  // A past month: every day of it.
  auto october = expenses(*alice_, {{"action", "month"}, {"month", "2026-10"}});
  EXPECT_EQ(october["to"], "2026-10-31");
  ASSERT_EQ(october["currencies"].size(), 1u);
  EXPECT_EQ(october["currencies"][0]["total"], "99.00");
  EXPECT_EQ(october["currencies"][0]["daily"].size(), 31u);
  EXPECT_EQ(expenses(*alice_, {{"action", "month"}, {"month", "2026-09"}})["text"],
            "No expenses in September 2026 (Tue 1 Sep – Wed 30 Sep).");
}

TEST_F(ExpensesTest, CurrenciesAreNeverSummedTogether) {
  add(*alice_, "10", "EUR", "travel");
  add(*alice_, "10", "USD", "travel");
  add(*alice_, "1000", "JPY", "travel");
  auto w = expenses(*alice_, {{"action", "week"}});
  ASSERT_EQ(w["currencies"].size(), 3u);
  for (const auto& c : w["currencies"]) {
    ASSERT_EQ(c["categories"].size(), 1u);
    EXPECT_EQ(c["categories"][0]["share_percent"], 100) << c["currency"];
  }
  EXPECT_EQ(w["currencies"][0]["total_minor"], 1000);
  EXPECT_EQ(w["currencies"][1]["total_minor"], 1000);
  EXPECT_EQ(w["currencies"][2]["total_minor"], 1000);
  const std::string text = w["text"].get<std::string>();
  EXPECT_THAT(text, HasSubstr("10.00 EUR in 1 expense\n"));
  EXPECT_THAT(text, HasSubstr("1000 JPY in 1 expense\n"));
  EXPECT_THAT(text, HasSubstr("10.00 USD in 1 expense\n"));
  EXPECT_THAT(text, Not(HasSubstr("20"))) << "no sum across currencies";
}

TEST_F(ExpensesTest, WeekIsTheLastSevenDays) {
  add(*alice_, "1", "EUR", "a", "2026-11-16");  // eight days ago: outside
  add(*alice_, "2", "EUR", "b", "2026-11-17");  // seven days ago, counting today
  add(*alice_, "4", "EUR", "c", "today");
  auto w = expenses(*alice_, {{"action", "week"}});
  EXPECT_EQ(w["from"], "2026-11-17");
  EXPECT_EQ(w["to"], "2026-11-23");
  ASSERT_EQ(w["currencies"].size(), 1u);
  EXPECT_EQ(w["currencies"][0]["total"], "6.00");
  EXPECT_EQ(w["currencies"][0]["sparkline"], "▅▁▁▁▁▁█");
  EXPECT_THAT(w["text"].get<std::string>(),
              HasSubstr("Spending in the last 7 days (Tue 17 Nov – Mon 23 Nov):\n6.00 EUR"));
}

TEST_F(ExpensesTest, MonthEndsAtMidnightOfTheCallersZone) {
  const std::string berlin = "Europe/Berlin";
  // 22:30 UTC on 31 October is 23:30 in Berlin (CET, after the clocks went back on the 25th).
  clock_.set_ms(1'793'485'800'000);  // 2026-10-31T22:30:00Z
  auto late = expenses(
      *alice_, {{"action", "add"}, {"amount", "20"}, {"currency", "EUR"}, {"category", "dinner"}},
      berlin);
  EXPECT_EQ(late["expense"]["day"], "2026-10-31");
  // An hour later it is 00:30 on 1 November in Berlin, still October in UTC.
  clock_.advance_ms(kHour);
  auto early = expenses(
      *alice_, {{"action", "add"}, {"amount", "7"}, {"currency", "EUR"}, {"category", "taxi"}},
      berlin);
  EXPECT_EQ(early["expense"]["day"], "2026-11-01");

  auto november = expenses(*alice_, {{"action", "month"}}, berlin);
  EXPECT_EQ(november["period"], "November 2026");
  ASSERT_EQ(november["currencies"].size(), 1u);
  EXPECT_EQ(november["currencies"][0]["total"], "7.00") << "the 23:30 dinner is October's";
  EXPECT_EQ(november["currencies"][0]["daily"].size(), 1u);

  // October in Berlin: 31 days, the DST change of the 25th included, the dinner on the last.
  auto october = expenses(*alice_, {{"action", "month"}, {"month", "2026-10"}}, berlin);
  ASSERT_EQ(october["currencies"].size(), 1u);
  EXPECT_EQ(october["currencies"][0]["total"], "20.00");
  const auto days = days_of(october["currencies"][0]);
  ASSERT_EQ(days.size(), 31u);
  EXPECT_EQ(days[24], "2026-10-25");
  EXPECT_EQ(days[25], "2026-10-26");
  EXPECT_EQ(days.back(), "2026-10-31");
  EXPECT_EQ(october["currencies"][0]["daily"][30]["total_minor"], 2000);

  // The same instant in UTC is still October: its month is October, with the dinner.
  auto utc = expenses(*alice_, {{"action", "month"}}, "UTC");
  EXPECT_EQ(utc["period"], "October 2026");
  ASSERT_EQ(utc["currencies"].size(), 1u);
  EXPECT_EQ(utc["currencies"][0]["total"], "20.00");
}

TEST_F(ExpensesTest, WeekAcrossTheSpringDstChange) {
  const std::string berlin = "Europe/Berlin";
  // Sunday 29 March 2026, 23:30 in Berlin (CEST since 02:00 that night) is 21:30 UTC.
  clock_.set_ms(1'774'819'800'000);
  const auto add_now = [&](const std::string& amount) {
    return expenses(
        *alice_, {{"action", "add"}, {"amount", amount}, {"currency", "EUR"}, {"category", "misc"}},
        berlin)["expense"]["day"];
  };
  EXPECT_EQ(add_now("3"), "2026-03-29");
  clock_.advance_ms(kHour);  // 00:30 on Monday 30 March in Berlin, 22:30 UTC on the 29th
  EXPECT_EQ(add_now("5"), "2026-03-30");
  add(*alice_, "1", "EUR", "misc", "2026-03-24", berlin);
  add(*alice_, "9", "EUR", "misc", "2026-03-23", berlin);  // eight days back: outside

  auto w = expenses(*alice_, {{"action", "week"}}, berlin);
  EXPECT_EQ(w["from"], "2026-03-24");
  EXPECT_EQ(w["to"], "2026-03-30");
  ASSERT_EQ(w["currencies"].size(), 1u);
  EXPECT_EQ(w["currencies"][0]["total"], "9.00");
  EXPECT_EQ(w["currencies"][0]["daily"][5], (json{{"day", "2026-03-29"}, {"total_minor", 300}}));
  EXPECT_EQ(w["currencies"][0]["daily"][6], (json{{"day", "2026-03-30"}, {"total_minor", 500}}));
  // In UTC the week still ends on the 29th.
  auto utc = expenses(*alice_, {{"action", "week"}}, "UTC");
  EXPECT_EQ(utc["to"], "2026-03-29");
  EXPECT_EQ(utc["currencies"][0]["total"], "13.00");
}

TEST_F(ExpensesTest, UsersCannotReachEachOthersExpenses) {
  const int64_t a = add(*alice_, "12.34", "EUR", "groceries");
  const int64_t b = add(*bob_, "99", "EUR", "groceries");
  auto bobs = expenses(*bob_, {{"action", "list"}});
  ASSERT_EQ(bobs["expenses"].size(), 1u);
  EXPECT_EQ(bobs["expenses"][0]["id"], b);
  auto month = expenses(*bob_, {{"action", "month"}});
  EXPECT_EQ(month["currencies"][0]["total"], "99.00");
  for (int64_t id = 1; id <= b + 2; ++id) {
    if (id == b) continue;
    auto r = try_expenses(*bob_, {{"action", "remove"}, {"id", id}});
    ASSERT_FALSE(r.ok()) << id;
    EXPECT_EQ(r.error().code, ErrorCode::not_found);
    EXPECT_EQ(r.error().message, "expenses: you have no expense #" + std::to_string(id));
  }
  auto alices = expenses(*alice_, {{"action", "list"}});
  ASSERT_EQ(alices["expenses"].size(), 1u);
  EXPECT_EQ(alices["expenses"][0]["id"], a);
  EXPECT_EQ(expenses(*alice_, {{"action", "week"}})["currencies"][0]["total"], "12.34");
}

TEST_F(ExpensesTest, NoStorageScopeNoExpenses) {
  auto r = call("expenses", nullptr, {{"action", "month"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_THAT(r.error().message, HasSubstr("expenses:"));
}

TEST_F(ExpensesTest, CommandForms) {
  EXPECT_EQ(*parse("add 12.34 EUR groceries apples"), (json{{"action", "add"},
                                                            {"amount", "12.34"},
                                                            {"currency", "EUR"},
                                                            {"category", "groceries"},
                                                            {"note", "apples"}}));
  EXPECT_EQ(*parse("add 12.34 groceries"),
            (json{{"action", "add"}, {"amount", "12.34"}, {"category", "groceries"}}));
  EXPECT_EQ(
      *parse("add 3 Coffee with Ann"),
      (json{{"action", "add"}, {"amount", "3"}, {"category", "coffee"}, {"note", "with Ann"}}));
  // A month or week typed as a command comes with its chart.
  EXPECT_EQ(*parse("month"), (json{{"action", "month"}, {"chart", true}}));
  EXPECT_EQ(*parse(""), (json{{"action", "month"}, {"chart", true}}));
  EXPECT_EQ(*parse("month 2026-11"),
            (json{{"action", "month"}, {"month", "2026-11"}, {"chart", true}}));
  EXPECT_EQ(*parse("week"), (json{{"action", "week"}, {"chart", true}}));
  EXPECT_EQ(*parse("list"), (json{{"action", "list"}}));
  EXPECT_EQ(*parse("list 2026-11"), (json{{"action", "list"}, {"month", "2026-11"}}));
  EXPECT_EQ(*parse("list yesterday"), (json{{"action", "list"}, {"day", "yesterday"}}));
  EXPECT_EQ(*parse("remove 7"), (json{{"action", "remove"}, {"id", 7}}));
  EXPECT_EQ(*parse("remove #7"), (json{{"action", "remove"}, {"id", 7}}));
  struct Bad {
    std::string text;
    std::string says;
  };
  for (const auto& b : {
           Bad{"add -3 EUR groceries", "'-3' is not an amount"},
           Bad{"add 1e3 EUR groceries", "'1e3' is not an amount"},
           Bad{"add twelve EUR groceries", "'twelve' is not an amount"},
           Bad{"add .5 EUR groceries", "'.5' is not an amount"},
           Bad{"add 12. EUR groceries", "'12.' is not an amount"},
           Bad{"add 1.2.3 EUR groceries", "'1.2.3' is not an amount"},
           Bad{"add 12 eur groceries", "write the currency in capitals: EUR"},
           Bad{"add 12 EURO groceries", "'EURO' is not a currency"},
           Bad{"add 12 EUR", "add needs a category"},
           Bad{"add 12", "add needs a category"},
           Bad{"add", "usage: /expenses add"},
           Bad{"month 2026-13", "'2026-13' is not a month"},
           Bad{"month november", "'november' is not a month"},
           Bad{"week 2", "usage:"},
           Bad{"remove", "usage:"},
           Bad{"remove seven", "'seven'"},
           Bad{"spend 12", "usage:"},
       }) {
    auto r = parse(b.text);
    ASSERT_FALSE(r.ok()) << b.text;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << b.text;
    EXPECT_THAT(r.error().message, HasSubstr(b.says)) << b.text;
    EXPECT_THAT(r.error().message, ::testing::StartsWith("expenses: ")) << b.text;
  }

  // Parsed commands run as they are.
  auto added = command(*alice_, "add 12.34 EUR groceries apples");
  ASSERT_TRUE(added.ok()) << added.error().describe();
  EXPECT_EQ((*added)["expense"]["note"], "apples");
  auto no_currency = command(*alice_, "add 12.34 groceries");
  ASSERT_FALSE(no_currency.ok());
  EXPECT_THAT(no_currency.error().message, HasSubstr("which currency?"));
  auto with_default = command(*alice_, "add 12.34 groceries", {{"default_currency", "EUR"}});
  ASSERT_TRUE(with_default.ok()) << with_default.error().describe();
  EXPECT_EQ((*with_default)["expense"]["currency"], "EUR");
  auto too_fine = command(*alice_, "add 12.345 EUR groceries");
  ASSERT_FALSE(too_fine.ok());
  EXPECT_THAT(too_fine.error().message, HasSubstr("EUR has 2"));
  auto month = command(*alice_, "month");
  ASSERT_TRUE(month.ok());
  EXPECT_EQ((*month)["currencies"][0]["total"], "24.68");
  EXPECT_TRUE(command(*alice_, "week").ok());
  EXPECT_TRUE(command(*alice_, "month 2026-11").ok());
  EXPECT_EQ((*command(*alice_, "list"))["expenses"].size(), 2u);
  const int64_t id = (*added)["expense"]["id"].get<int64_t>();
  EXPECT_TRUE(command(*alice_, "remove " + std::to_string(id)).ok());
  EXPECT_EQ(registry_.find("expenses")->flags().side_effects, SideEffects::unsafe);
}

// Reads every bar of the chart `answer` carries back from the PNG, and checks it against the
// categories of the answer's own totals (the query): the bars of each currency's panel are its
// categories in order, each as long as its total on that panel's own scale (within a pixel).
void expect_bars_read_back(const json& answer, const std::string& filename) {
  const auto png = chart_reader::png_of(answer, filename);
  ASSERT_TRUE(png);
  const auto picture = chart_reader::Picture::decode(*png);
  ASSERT_TRUE(picture);
  const json& panels = answer["chart"]["currencies"];
  ASSERT_EQ(panels.size(), answer["currencies"].size()) << "one panel per currency";
  std::vector<size_t> bars;
  for (const auto& p : panels) bars.push_back(p["bars"].size());
  EXPECT_EQ(picture->height(),
            chart_reader::panel_top(bars, bars.size()) + builtins::expense_chart::kBottomMargin);
  for (size_t p = 0; p < panels.size(); ++p) {
    const json& query = answer["currencies"][p];
    const json& panel = panels[p];
    EXPECT_EQ(panel["currency"], query["currency"]);
    EXPECT_EQ(panel["total_minor"], query["total_minor"]);
    const auto& categories = query["categories"];
    ASSERT_EQ(panel["bars"].size(), categories.size()) << query["currency"];
    // The panel's scale comes from its own largest category, never from another currency.
    const int64_t largest = categories[0]["total_minor"].get<int64_t>();
    const auto scale = builtins::expense_scale(largest);
    EXPECT_EQ(panel["scale"]["max_minor"], scale.max);
    EXPECT_EQ(panel["scale"]["step_minor"], scale.step);
    const double per_pixel =
        static_cast<double>(scale.max) / builtins::expense_chart::kBarMaxLength;
    for (size_t b = 0; b < categories.size(); ++b) {
      EXPECT_EQ(panel["bars"][b]["category"], categories[b]["category"]);
      EXPECT_EQ(panel["bars"][b]["total_minor"], categories[b]["total_minor"]);
      const double length =
          chart_reader::read_bar_length(*picture, chart_reader::panel_top(bars, p), b);
      EXPECT_NEAR(length * per_pixel, categories[b]["total_minor"].get<double>(), per_pixel)
          << query["currency"] << " " << categories[b]["category"];
    }
  }
}

TEST_F(ExpensesTest, MonthChartBarsReadBackAsTheCategoryTotals) {
  add(*alice_, "50", "EUR", "groceries", "2026-11-02");
  add(*alice_, "30.00", "EUR", "groceries", "2026-11-20");
  add(*alice_, "43.45", "EUR", "transport", "2026-11-20");
  add(*alice_, "3.50", "EUR", "coffee", "2026-11-21");
  add(*alice_, "0.05", "EUR", "tips", "2026-11-21");
  add(*alice_, "15", "USD", "eating-out");
  add(*alice_, "1000", "JPY", "travel", "2026-11-03");
  add(*alice_, "2500", "JPY", "food", "2026-11-04");
  add(*alice_, "1.250", "KWD", "rent", "2026-11-05");
  add(*alice_, "99", "EUR", "groceries", "2026-10-31");  // the month before

  const json plain = expenses(*alice_, {{"action", "month"}});
  EXPECT_FALSE(plain.contains("chart")) << "a tool call without \"chart\" gets no picture";
  EXPECT_FALSE(plain.contains("attachments"));
  const json m = expenses(*alice_, {{"action", "month"}, {"chart", true}});
  EXPECT_EQ(m["text"], plain["text"]) << "the text answer stays as it is";
  EXPECT_FALSE(m.contains("chart_error"));
  EXPECT_EQ(m["chart"]["from"], "2026-11-01");
  EXPECT_EQ(m["chart"]["to"], "2026-11-23");
  ASSERT_EQ(m["chart"]["currencies"].size(), 4u);
  EXPECT_EQ(m["chart"]["currencies"][0]["bars"][0], (json{{"label", "groceries"},
                                                          {"category", "groceries"},
                                                          {"total_minor", 8000},
                                                          {"total", "80.00"}}));
  EXPECT_EQ(m["chart"]["currencies"][1]["bars"][0]["total"], "2500") << "JPY has no decimals";
  EXPECT_EQ(m["chart"]["currencies"][2]["bars"][0]["total"], "1.250") << "KWD has three";
  expect_bars_read_back(m, "expenses-2026-11.png");

  // A past month, by command.
  const auto october = command(*alice_, "month 2026-10");
  ASSERT_TRUE(october.ok()) << october.error().describe();
  expect_bars_read_back(*october, "expenses-2026-10.png");
}

TEST_F(ExpensesTest, WeekChartAndTheSmallestCategoriesAsOneBar) {
  // Fourteen categories: the eleven largest get a bar each, the three smallest one together.
  for (int i = 1; i <= 14; ++i) {
    add(*alice_, fmt::format("{}.{:02}", i * 3, i), "EUR", fmt::format("c{:02}", i));
  }
  add(*alice_, "7", "CHF", "lunch", "2026-11-17");
  add(*alice_, "1", "CHF", "lunch", "2026-11-16");  // eight days ago: outside the week
  const auto week = command(*alice_, "week");
  ASSERT_TRUE(week.ok()) << week.error().describe();
  const json& panels = (*week)["chart"]["currencies"];
  ASSERT_EQ(panels.size(), 2u);
  EXPECT_EQ(panels[0]["currency"], "CHF");
  EXPECT_EQ(panels[0]["bars"][0]["total_minor"], 700);
  const json& eur = panels[1]["bars"];
  ASSERT_EQ(eur.size(), builtins::expense_chart::kMaxBars);
  EXPECT_EQ(eur[0]["category"], "c14");
  EXPECT_EQ(eur[10]["category"], "c04");
  const json& rest = eur[11];
  EXPECT_EQ(rest["label"], "3 more categories");
  EXPECT_EQ(rest["category"], nullptr);
  EXPECT_EQ(rest["categories"], 3);
  EXPECT_EQ(rest["total_minor"], 301 + 602 + 903) << "c01 + c02 + c03";

  const auto png = chart_reader::png_of(*week, "expenses-week-to-2026-11-23.png");
  ASSERT_TRUE(png);
  const auto picture = chart_reader::Picture::decode(*png);
  ASSERT_TRUE(picture);
  const std::vector<size_t> bars{1, builtins::expense_chart::kMaxBars};
  const double per_pixel =
      panels[1]["scale"]["max_minor"].get<double>() / builtins::expense_chart::kBarMaxLength;
  const json& query = (*week)["currencies"][1]["categories"];
  for (size_t b = 0; b < 11; ++b) {
    EXPECT_NEAR(
        chart_reader::read_bar_length(*picture, chart_reader::panel_top(bars, 1), b) * per_pixel,
        query[b]["total_minor"].get<double>(), per_pixel)
        << query[b]["category"];
  }
  EXPECT_NEAR(
      chart_reader::read_bar_length(*picture, chart_reader::panel_top(bars, 1), 11) * per_pixel,
      1806.0, per_pixel);
}

TEST_F(ExpensesTest, AnEmptyMonthHasNothingToDrawAndChartGoesWithMonthAndWeekOnly) {
  const auto empty = command(*alice_, "month 2026-09");
  ASSERT_TRUE(empty.ok()) << empty.error().describe();
  EXPECT_EQ((*empty)["text"], "No expenses in September 2026 (Tue 1 Sep – Wed 30 Sep).");
  EXPECT_EQ((*empty)["chart"], nullptr);
  EXPECT_EQ((*empty)["chart_note"], "nothing to draw: no expenses in September 2026");
  EXPECT_FALSE(empty->contains("attachments"));
  EXPECT_FALSE(empty->contains("chart_error"));
  const auto week = command(*alice_, "week");
  ASSERT_TRUE(week.ok());
  EXPECT_EQ((*week)["chart_note"], "nothing to draw: no expenses in the last 7 days");

  auto r = try_expenses(*alice_, {{"action", "list"}, {"chart", true}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().message, "expenses: list does not take \"chart\" (month and week do)");
  r = try_expenses(*alice_, {{"action", "week"}, {"chart", "true"}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("arguments.chart"));
}

}  // namespace expenses_test
}  // namespace parley::capabilities
