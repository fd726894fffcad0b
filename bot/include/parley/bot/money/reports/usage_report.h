// Usage reports: what `parley report usage`, GET /api/usage and the /reports page show. Turns a
// period spec (--since 7d | --from D --to D, days in a time zone) into a query on the usage
// ledger, and renders the result as an aligned text table, JSON or CSV.
//
// Money stays integer nano-dollars until it is printed: JSON carries the exact integer beside a
// decimal string ({"nanousd": 1234500, "usd": "0.001234500"}), CSV both columns, the table
// dollars. "cost" is the one figure per call defined in usage_repository.h:
// coalesce(actual, estimate).
//
// Thread safety: free functions over values; build_* read the repository (safe from any thread).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "parley/base/result.h"
#include "parley/bot/money/reports/reports_page.h"
#include "parley/storage/usage_repository.h"

namespace parley::bot::money {

// The period options as given (all empty: the last 7 days).
struct PeriodSpec {
  std::string since;  // "24h", "7d", "2w": that long before now, up to now
  std::string from;   // "YYYY-MM-DD": from the start of this local day…
  std::string to;     // "YYYY-MM-DD": …to the end of this one (inclusive); empty: today
};

struct ReportPeriod {
  int64_t from_ms = 0;       // inclusive
  int64_t to_ms = 0;         // exclusive
  std::string zone = "UTC";  // the IANA zone days are counted in
  std::string spec;          // how it was asked: "--since 7d", "--from 2026-12-01 --to 2026-12-05"
};

// Errors are invalid_argument and name the option and the bad value, e.g.
// "--since: '7x' is not a duration (expected a number and h, d or w: 24h, 7d, 30d)".
Result<ReportPeriod> resolve_period(const PeriodSpec& spec, const std::string& zone,
                                    int64_t now_ms);

struct UsageReportRequest {
  PeriodSpec period;
  storage::UsageGroupBy group_by = storage::UsageGroupBy::day;
  std::string zone = "UTC";
  std::optional<int64_t> user_id;  // empty: everyone
};

struct UsageReportResult {
  ReportPeriod period;
  storage::UsageGroupBy group_by = storage::UsageGroupBy::day;
  int64_t generated_at_ms = 0;
  storage::UsageReport report;
};

Result<UsageReportResult> build_usage_report(storage::UsageRepository& usage,
                                             const UsageReportRequest& request, int64_t now_ms);

enum class ReportFormat { table, json, csv };
// "table" | "json" | "csv"; empty when unknown.
std::optional<ReportFormat> parse_report_format(std::string_view s) noexcept;

// Columns aligned, numbers right-aligned; untrusted names have control characters replaced
// (no terminal escapes) and are cut at 40 characters.
std::string usage_report_table(const UsageReportResult& r);
// {"period": {...}, "group_by", "generated_at_ms", "cost_definition", "rows": [...], "totals"}.
// Strings are as stored: dump with nlohmann::json::error_handler_t::replace.
nlohmann::json usage_report_json(const UsageReportResult& r);
// RFC 4180: a header line, one line per row and a last line of totals (kind "total"), CRLF;
// names that a spreadsheet would read as a formula are neutralised (csv_field).
std::string usage_report_csv(const UsageReportResult& r);
std::string usage_report_render(const UsageReportResult& r, ReportFormat format);

// GET /api/usage?since=7d&by=model&tz=Europe/Paris&format=csv (also from, to, user=<id>;
// by=none: totals only):
// the query string (undecoded; %XX and '+' are decoded here) as a request and a format (default
// json). The period itself is checked by build_usage_report. Errors are invalid_argument naming
// the parameter and the value.
struct UsageQueryParams {
  UsageReportRequest request;
  ReportFormat format = ReportFormat::json;
};
Result<UsageQueryParams> parse_usage_query(std::string_view query);

// {"nanousd": n, "usd": "0.001234500"}.
nlohmann::json money_json(int64_t nanousd);
// One RFC 4180 field: quoted (quotes doubled) when it holds a comma, quote, CR or LF; a field
// starting with '=', '+', '-', '@', a tab or a CR gets a leading "'", so that a spreadsheet
// opening the export shows it as text rather than running it as a formula.
std::string csv_field(std::string_view s);

// The usage parts of the /reports page for the period — spend per day × model, tokens per day,
// the top `top_users` users by cost, totals; budgets and alerts are left to the caller.
Result<ReportsPageData> build_reports_page_data(storage::UsageRepository& usage,
                                                const ReportPeriod& period, int64_t now_ms,
                                                size_t top_users = 10);

}  // namespace parley::bot::money
