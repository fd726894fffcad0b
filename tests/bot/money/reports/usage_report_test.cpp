// Usage reports: period specs (errors naming the option and value), exact money in JSON and CSV,
// RFC 4180 quoting, the text table, and the /reports page data built from a real store.
#include "parley/bot/money/reports/usage_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::bot::money {
namespace usage_report_test {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kNow = 1'709'985'600'000;  // 2024-03-09T12:00:00Z
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

TEST(ResolvePeriod, SinceCountsBackFromNow) {
  auto p = resolve_period({"7d", "", ""}, "UTC", kNow);
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->from_ms, kNow - 7 * kDay);
  EXPECT_EQ(p->to_ms, kNow + 1);
  EXPECT_EQ(p->spec, "--since 7d");
  EXPECT_EQ(resolve_period({"24h", "", ""}, "UTC", kNow)->from_ms, kNow - kDay);
  EXPECT_EQ(resolve_period({"2w", "", ""}, "UTC", kNow)->from_ms, kNow - 14 * kDay);
  EXPECT_EQ(resolve_period({}, "UTC", kNow)->from_ms, kNow - 7 * kDay);  // default
}

TEST(ResolvePeriod, FromToAreWholeLocalDaysInclusive) {
  // New York, across the DST change of 2024-03-10 (a 23-hour day).
  auto p = resolve_period({"", "2024-03-09", "2024-03-10"}, "America/New_York", kNow);
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ(p->from_ms, 1'709'960'400'000);  // 2024-03-09T05:00:00Z
  EXPECT_EQ(p->to_ms, 1'710'129'600'000);    // 2024-03-11T04:00:00Z
  EXPECT_EQ(p->to_ms - p->from_ms, 47 * kHour);
  EXPECT_EQ(p->zone, "America/New_York");
  // --from alone: through today (in the zone).
  auto open = resolve_period({"", "2024-03-01", ""}, "UTC", kNow);
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->to_ms, 1'710'028'800'000);  // 2024-03-10T00:00:00Z
  EXPECT_EQ(open->spec, "--from 2024-03-01 --to 2024-03-09");
}

TEST(ResolvePeriod, ErrorsNameTheOptionAndTheValue) {
  struct Case {
    PeriodSpec spec;
    std::string zone;
    std::vector<std::string> words;
  };
  const std::vector<Case> cases = {
      {{"7x", "", ""}, "UTC", {"--since", "'7x'"}},
      {{"0d", "", ""}, "UTC", {"--since", "'0d'"}},
      {{"-3d", "", ""}, "UTC", {"--since", "'-3d'"}},
      {{"1.5d", "", ""}, "UTC", {"--since", "'1.5d'"}},
      {{"d", "", ""}, "UTC", {"--since", "'d'"}},
      {{"7", "", ""}, "UTC", {"--since", "'7'"}},
      {{"99999999999d", "", ""}, "UTC", {"--since", "'99999999999d'"}},
      {{"", "2024-02-30", ""}, "UTC", {"--from", "'2024-02-30'"}},
      {{"", "yesterday", ""}, "UTC", {"--from", "'yesterday'"}},
      {{"", "2024-03-01", "2024-3-5"}, "UTC", {"--to", "'2024-3-5'"}},
      {{"", "2024-03-05", "2024-03-01"}, "UTC", {"--from 2024-03-05", "--to 2024-03-01"}},
      {{"", "", "2024-03-01"}, "UTC", {"--to 2024-03-01", "--from"}},
      {{"7d", "2024-03-01", ""}, "UTC", {"--since 7d", "--from"}},
      {{"7d", "", ""}, "Mars/Olympus_Mons", {"--tz", "'Mars/Olympus_Mons'"}},
  };
  for (const auto& c : cases) {
    auto p = resolve_period(c.spec, c.zone, kNow);
    ASSERT_FALSE(p.ok()) << c.spec.since << c.spec.from << c.spec.to << c.zone;
    EXPECT_EQ(p.error().code, ErrorCode::invalid_argument);
    for (const auto& w : c.words) EXPECT_THAT(p.error().message, HasSubstr(w));
  }
}

TEST(ParseUsageQuery, ReadsEveryParameterAndNamesTheBadOne) {
  auto q = parse_usage_query("since=24h&by=model&tz=America%2FNew_York&format=csv&user=7");
  ASSERT_TRUE(q.ok()) << q.error().describe();
  EXPECT_EQ(q->request.period.since, "24h");
  EXPECT_EQ(q->request.group_by, storage::UsageGroupBy::model);
  EXPECT_EQ(q->request.zone, "America/New_York");
  EXPECT_EQ(q->format, ReportFormat::csv);
  EXPECT_EQ(q->request.user_id, 7);
  auto dates = parse_usage_query("from=2024-03-01&to=2024-03-09&");
  ASSERT_TRUE(dates.ok());
  EXPECT_EQ(dates->request.period.from, "2024-03-01");
  EXPECT_EQ(dates->request.period.to, "2024-03-09");
  EXPECT_EQ(dates->format, ReportFormat::json);  // the API's default
  EXPECT_EQ(dates->request.group_by, storage::UsageGroupBy::day);
  EXPECT_TRUE(parse_usage_query("").ok());
  EXPECT_EQ(parse_usage_query("by=none")->request.group_by, storage::UsageGroupBy::none);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"by=week", "by: 'week'"},       {"format=xml", "format: 'xml'"},
      {"user=alice", "user: 'alice'"}, {"colour=red", "unknown parameter 'colour'"},
      {"tz=%ZZ", "malformed"},         {"since=7d%2", "malformed"},
      {"tz=%-1", "malformed"}};
  for (const auto& [query, words] : bad) {
    auto r = parse_usage_query(query);
    ASSERT_FALSE(r.ok()) << query;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_THAT(r.error().message, HasSubstr(words)) << query;
  }
}

TEST(CsvField, QuotesPerRfc4180) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("cr\r"), "\"cr\r\"");
}

// A user or conversation name is chosen by whoever talks to the bot; the export is opened in a
// spreadsheet, which runs a cell starting with = + - @ (or a tab or CR) as a formula.
TEST(CsvField, NeutralisesWhatASpreadsheetWouldRunAsAFormula) {
  EXPECT_EQ(csv_field("=HYPERLINK(\"http://evil\")"), "\"'=HYPERLINK(\"\"http://evil\"\")\"");
  EXPECT_EQ(csv_field("=1+2"), "'=1+2");
  EXPECT_EQ(csv_field("+1"), "'+1");
  EXPECT_EQ(csv_field("-2+3"), "'-2+3");
  EXPECT_EQ(csv_field("@SUM(A1:A9)"), "'@SUM(A1:A9)");
  EXPECT_EQ(csv_field("\t=1"), "'\t=1");
  EXPECT_EQ(csv_field("\r=1"), "\"'\r=1\"");
  EXPECT_EQ(csv_field("=a,b"), "\"'=a,b\"");
  // Only the first character matters.
  EXPECT_EQ(csv_field("a=b"), "a=b");
  EXPECT_EQ(csv_field("alice@example.org"), "alice@example.org");
  EXPECT_EQ(csv_field("2026-11-23"), "2026-11-23");
}

TEST(MoneyJson, IsExact) {
  EXPECT_EQ(money_json(1'234'500),
            nlohmann::json({{"nanousd", 1'234'500}, {"usd", "0.001234500"}}));
  EXPECT_EQ(money_json(12'000'000'001)["usd"], "12.000000001");
  EXPECT_EQ(money_json(-5)["usd"], "-0.000000005");
}

UsageReportResult sample_result() {
  UsageReportResult r;
  r.period = {kNow - 7 * kDay, kNow + 1, "UTC", "--since 7d"};
  r.group_by = storage::UsageGroupBy::model;
  r.generated_at_ms = kNow;
  storage::UsageReportRow a;
  a.key = "acme/model, \"large\"";
  a.calls = 3;
  a.failed = 1;
  a.prompt_tokens = 1200;
  a.cost_nanousd = 1'234'500;
  a.cost_actual_nanousd = 1'234'500;
  a.latency_p50_ms = 120;
  a.latency_p95_ms = 480;
  storage::UsageReportRow b;
  b.key = "evil\x1b[31mred";
  b.calls = 1;
  b.calls_without_cost = 1;
  r.report.rows = {a, b};
  r.report.totals = a;
  r.report.totals.key = "total";
  r.report.totals.calls = 4;
  r.report.totals.calls_without_cost = 1;
  return r;
}

TEST(UsageReportJson, CarriesExactIntegersAndUsdStrings) {
  const auto j = usage_report_json(sample_result());
  EXPECT_EQ(j["group_by"], "model");
  EXPECT_EQ(j["period"]["from_ms"], kNow - 7 * kDay);
  EXPECT_EQ(j["period"]["zone"], "UTC");
  ASSERT_EQ(j["rows"].size(), 2U);
  EXPECT_EQ(j["rows"][0]["key"], "acme/model, \"large\"");
  EXPECT_EQ(j["rows"][0]["cost"]["nanousd"], 1'234'500);
  EXPECT_EQ(j["rows"][0]["cost"]["usd"], "0.001234500");
  EXPECT_EQ(j["rows"][0]["latency_p95_ms"], 480);
  EXPECT_TRUE(j["rows"][1]["latency_p50_ms"].is_null());
  EXPECT_EQ(j["totals"]["calls"], 4);
  EXPECT_FALSE(j["totals"].contains("key"));
}

TEST(UsageReportCsv, HeaderRowsAndTotalsWithQuoting) {
  const std::string csv = usage_report_csv(sample_result());
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < csv.size()) {
    const size_t end = csv.find("\r\n", pos);
    ASSERT_NE(end, std::string::npos) << "every line ends in CRLF";
    lines.push_back(csv.substr(pos, end - pos));
    pos = end + 2;
  }
  ASSERT_EQ(lines.size(), 4U);
  EXPECT_EQ(lines[0].rfind("kind,key,label,id,calls,", 0), 0U);
  EXPECT_EQ(lines[1].rfind("model,\"acme/model, \"\"large\"\"\",,,3,1,1200,", 0), 0U) << lines[1];
  EXPECT_THAT(lines[1], HasSubstr(",1234500,0.001234500,"));
  EXPECT_EQ(lines[3].rfind("total,total,,,4,", 0), 0U) << lines[3];
  // Same number of fields on every line (no field holds a comma outside quotes here but row 1).
  EXPECT_EQ(std::count(lines[0].begin(), lines[0].end(), ','), 18);
  EXPECT_EQ(std::count(lines[3].begin(), lines[3].end(), ','), 18);
}

TEST(UsageReportCsv, ANameThatLooksLikeAFormulaIsExportedAsText) {
  auto r = sample_result();
  r.report.rows[1].key = "@SUM(1+1)*cmd|' /C calc'!A0";
  r.report.rows[1].label = "-1,=2";
  const std::string csv = usage_report_csv(r);
  EXPECT_THAT(csv, HasSubstr("\r\nmodel,'@SUM(1+1)*cmd|' /C calc'!A0,\"'-1,=2\",,1,")) << csv;
}

TEST(UsageReportTable, AlignsColumnsAndDefusesTerminalEscapes) {
  const std::string table = usage_report_table(sample_result());
  EXPECT_THAT(table, Not(HasSubstr("\x1b")));
  EXPECT_THAT(table, HasSubstr("evil?[31mred"));
  EXPECT_THAT(table, HasSubstr("$0.001235"));  // rounded to the micro-dollar for reading
  EXPECT_THAT(table, HasSubstr("1 call(s) had neither"));
  // The "calls" column ends at the same place on the header, each row and the totals.
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < table.size()) {
    const size_t end = table.find('\n', pos);
    lines.push_back(table.substr(pos, end - pos));
    pos = end + 1;
  }
  const size_t calls_end = lines[1].find("calls") + 5;
  for (const auto& l : lines) {
    if (l.rfind("acme", 0) == 0 || l.rfind("total", 0) == 0) {
      EXPECT_EQ(l.substr(calls_end - 1, 1).find_first_of("0123456789"), 0U) << l;
      EXPECT_EQ(l[calls_end], ' ') << l;
    }
  }
}

TEST(BuildReportsPageData, FillsSeriesTokensTopUsersAndTotalsFromTheStore) {
  testing::TempDir dir;
  ManualClock clock(kNow);
  storage::StoreOptions o;
  o.path = dir / "r.db";
  o.clock = &clock;
  auto store = std::move(storage::Store::open(o).value());
  const int64_t alice = store->directory().ensure_user("console", "alice", "Alice").get()->row_id;
  const int64_t bob = store->directory().ensure_user("console", "bob", "Bob").get()->row_id;
  auto rec = [&](int64_t ts, int64_t user, const char* model, std::optional<int64_t> actual,
                 std::optional<int64_t> estimate) {
    storage::UsageRecord r;
    r.ts = ts;
    r.user_id = user;
    r.purpose = "turn";
    r.model_requested = model;
    r.model_answered = model;
    r.prompt_tokens = 100;
    r.completion_tokens = 10;
    r.cost_actual_nanousd = actual;
    r.cost_estimated_nanousd = estimate;
    ASSERT_TRUE(store->usage().record(r).get().ok());
  };
  rec(kNow - 2 * kDay, alice, "a", 1'000, 900);
  rec(kNow - 2 * kDay + 1, bob, "b", std::nullopt, 50'000);
  rec(kNow - kHour, bob, "a", 7, std::nullopt);
  rec(kNow - 30 * kDay, alice, "a", 999'999, std::nullopt);  // outside the period

  auto period = resolve_period({"7d", "", ""}, "UTC", kNow);
  ASSERT_TRUE(period.ok());
  auto d = build_reports_page_data(store->usage(), *period, kNow, 1);
  ASSERT_TRUE(d.ok()) << d.error().describe();
  EXPECT_EQ(d->zone, "UTC");
  EXPECT_EQ(d->period, "--since 7d");
  ASSERT_EQ(d->cost_series.size(), 3U);
  EXPECT_EQ(d->cost_series[0].day, "2024-03-07");
  ASSERT_EQ(d->tokens.size(), 2U);
  EXPECT_EQ(d->tokens[0].prompt_tokens, 200);
  ASSERT_EQ(d->top_users.size(), 1U);  // top 1
  EXPECT_EQ(d->top_users[0].name, "Bob");
  EXPECT_EQ(d->top_users[0].user_id, bob);
  EXPECT_EQ(d->top_users[0].cost_nanousd, 50'007);
  EXPECT_EQ(d->totals.calls, 3);
  EXPECT_EQ(d->totals.cost_nanousd, 51'007);
  EXPECT_EQ(d->totals.cost_actual_nanousd, 1'007);
  EXPECT_EQ(d->totals.cost_estimated_nanousd, 50'900);
  // The page's JSON says the same.
  const auto j = reports_json(*d);
  EXPECT_EQ(j["totals"]["cost"]["nanousd"], 51'007);
  EXPECT_EQ(j["models"][0]["model"], "b");
}

}  // namespace usage_report_test
}  // namespace parley::bot::money
