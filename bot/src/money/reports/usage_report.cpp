#include "parley/bot/money/reports/usage_report.h"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <vector>

#include "parley/base/text.h"
#include "parley/base/time_format.h"
#include "parley/base/usd.h"

namespace parley::bot::money {

namespace {

using Ms = std::chrono::milliseconds;

Result<const date::time_zone*> zone_named(const std::string& name) {
  try {
    return date::locate_zone(name.empty() ? "UTC" : name);
  } catch (const std::exception&) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("--tz: unknown time zone '{}' (expected an IANA name such as "
                            "Europe/Paris or UTC)",
                            name));
  }
}

// Epoch ms of local midnight starting `d` (the first instant of the day across a DST gap).
int64_t day_start_ms(const date::time_zone* tz, date::local_days d) {
  return std::chrono::duration_cast<Ms>(tz->to_sys(d, date::choose::earliest).time_since_epoch())
      .count();
}

date::local_days today(const date::time_zone* tz, int64_t now_ms) {
  return date::floor<date::days>(tz->to_local(date::sys_time<Ms>(Ms(now_ms))));
}

// "YYYY-MM-DD", a real calendar day.
std::optional<date::local_days> parse_local_day(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  auto number = [&](size_t pos, size_t len) -> std::optional<int> {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  const auto y = number(0, 4);
  const auto m = number(5, 2);
  const auto d = number(8, 2);
  if (!y || !m || !d) return std::nullopt;
  const date::year_month_day ymd{date::year(*y), date::month(static_cast<unsigned>(*m)),
                                 date::day(static_cast<unsigned>(*d))};
  if (!ymd.ok()) return std::nullopt;
  return date::local_days(ymd);
}

// "24h" / "7d" / "2w" → milliseconds.
std::optional<int64_t> parse_since(std::string_view s) {
  if (s.size() < 2) return std::nullopt;
  int64_t unit = 0;
  switch (s.back()) {
    case 'h': unit = 3'600'000; break;
    case 'd': unit = 86'400'000; break;
    case 'w': unit = 7 * 86'400'000LL; break;
    default: return std::nullopt;
  }
  const std::string_view digits = s.substr(0, s.size() - 1);
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n <= 0) return std::nullopt;
  if (n > int64_t{100} * 366 * 86'400'000 / unit) return std::nullopt;  // a century is plenty
  return n * unit;
}

// What a terminal may print of an untrusted name: control characters become '?', and at most
// `max` code points (the last one an ellipsis when cut).
std::string printable(std::string_view s, size_t max) {
  std::string out;
  size_t points = 0;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool starts_point = (c & 0xC0) != 0x80;
    if (starts_point && ++points > max) {
      // Drop the previous code point for the ellipsis.
      while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) {
        out.pop_back();
      }
      if (!out.empty()) out.pop_back();
      out += "…";
      return out;
    }
    out += (c < 0x20 || c == 0x7F) ? '?' : static_cast<char>(c);
  }
  return out;
}

std::string optional_ms(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "-"; }

nlohmann::json row_json(const storage::UsageReportRow& r, bool with_key) {
  nlohmann::json j;
  if (with_key) {
    j["key"] = r.key;
    if (!r.label.empty()) j["label"] = r.label;
    if (r.id) j["id"] = *r.id;
  }
  j["calls"] = r.calls;
  j["failed"] = r.failed;
  j["prompt_tokens"] = r.prompt_tokens;
  j["completion_tokens"] = r.completion_tokens;
  j["cached_tokens"] = r.cached_tokens;
  j["reasoning_tokens"] = r.reasoning_tokens;
  j["cost"] = money_json(r.cost_nanousd);
  j["cost_actual"] = money_json(r.cost_actual_nanousd);
  j["cost_estimated"] = money_json(r.cost_estimated_nanousd);
  j["calls_without_cost"] = r.calls_without_cost;
  j["latency_p50_ms"] = r.latency_p50_ms ? nlohmann::json(*r.latency_p50_ms) : nlohmann::json();
  j["latency_p95_ms"] = r.latency_p95_ms ? nlohmann::json(*r.latency_p95_ms) : nlohmann::json();
  return j;
}

// %XX and '+' decoded; empty when a % escape is malformed.
std::optional<std::string> url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      unsigned v = 0;
      const auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec != std::errc() || end != s.data() + i + 3) return std::nullopt;
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

constexpr const char* kCostDefinition =
    "cost = the provider's cost when it reported one, else the price table's estimate "
    "(coalesce(actual, estimate) per call); calls with neither are counted in calls_without_cost";

}  // namespace

Result<ReportPeriod> resolve_period(const PeriodSpec& spec, const std::string& zone,
                                    int64_t now_ms) {
  auto tz = zone_named(zone);
  if (!tz) return fail(std::move(tz).error());
  ReportPeriod p;
  p.zone = zone.empty() ? "UTC" : zone;
  if (!spec.since.empty() && (!spec.from.empty() || !spec.to.empty())) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("--since {} cannot be combined with --from/--to: give one or the other",
                            spec.since));
  }
  if (spec.from.empty() && !spec.to.empty()) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("--to {} needs --from (the first day of the period)", spec.to));
  }
  if (!spec.from.empty()) {
    const auto from = parse_local_day(spec.from);
    if (!from) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("--from: '{}' is not a date (expected YYYY-MM-DD)", spec.from));
    }
    auto to = today(*tz, now_ms);
    if (!spec.to.empty()) {
      const auto parsed = parse_local_day(spec.to);
      if (!parsed) {
        return fail(ErrorCode::invalid_argument,
                    fmt::format("--to: '{}' is not a date (expected YYYY-MM-DD)", spec.to));
      }
      to = *parsed;
    }
    if (to < *from) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("--from {} is after --to {}", spec.from, date::format("%F", to)));
    }
    p.from_ms = day_start_ms(*tz, *from);
    p.to_ms = day_start_ms(*tz, to + date::days(1));
    p.spec = fmt::format("--from {} --to {}", spec.from, date::format("%F", to));
    return p;
  }
  const std::string since = spec.since.empty() ? "7d" : spec.since;
  const auto span = parse_since(since);
  if (!span) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("--since: '{}' is not a duration (expected a whole number and h, d "
                            "or w: 24h, 7d, 30d)",
                            since));
  }
  p.from_ms = now_ms - *span;
  p.to_ms = now_ms + 1;  // up to now, inclusive
  p.spec = "--since " + since;
  return p;
}

Result<UsageReportResult> build_usage_report(storage::UsageRepository& usage,
                                             const UsageReportRequest& request, int64_t now_ms) {
  auto period = resolve_period(request.period, request.zone, now_ms);
  if (!period) return fail(std::move(period).error());
  storage::UsageReportQuery q;
  q.from_ms = period->from_ms;
  q.to_ms = period->to_ms;
  q.user_id = request.user_id;
  q.group_by = request.group_by;
  q.zone = period->zone;
  auto report = usage.report(q);
  if (!report) return fail(std::move(report).error());
  UsageReportResult r;
  r.period = std::move(*period);
  r.group_by = request.group_by;
  r.generated_at_ms = now_ms;
  r.report = std::move(*report);
  return r;
}

std::optional<ReportFormat> parse_report_format(std::string_view s) noexcept {
  if (s == "table") return ReportFormat::table;
  if (s == "json") return ReportFormat::json;
  if (s == "csv") return ReportFormat::csv;
  return std::nullopt;
}

Result<UsageQueryParams> parse_usage_query(std::string_view query) {
  UsageQueryParams p;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const auto key = url_decode(pair.substr(0, eq));
    const auto value =
        url_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!key || !value) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("malformed query parameter '{}'", std::string(pair)));
    }
    if (*key == "since") {
      p.request.period.since = *value;
    } else if (*key == "from") {
      p.request.period.from = *value;
    } else if (*key == "to") {
      p.request.period.to = *value;
    } else if (*key == "tz") {
      p.request.zone = *value;
    } else if (*key == "by") {
      const auto by = storage::parse_usage_group_by(*value);
      if (!by) {
        return fail(ErrorCode::invalid_argument,
                    fmt::format("by: '{}' is not one of day, model, user, conversation, "
                                "capability, none",
                                *value));
      }
      p.request.group_by = *by;
    } else if (*key == "format") {
      const auto format = parse_report_format(*value);
      if (!format) {
        return fail(ErrorCode::invalid_argument,
                    fmt::format("format: '{}' is not one of table, json, csv", *value));
      }
      p.format = *format;
    } else if (*key == "user") {
      int64_t id = 0;
      const auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), id);
      if (ec != std::errc() || end != value->data() + value->size() || id <= 0) {
        return fail(ErrorCode::invalid_argument,
                    fmt::format("user: '{}' is not a user id", *value));
      }
      p.request.user_id = id;
    } else {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("unknown parameter '{}' (expected since, from, to, tz, by, format, "
                              "user)",
                              *key));
    }
  }
  return p;
}

nlohmann::json money_json(int64_t nanousd) {
  return {{"nanousd", nanousd}, {"usd", exact_usd(nanousd)}};
}

std::string csv_field(std::string_view s) {
  // A spreadsheet reads a cell starting with one of these as a formula (OWASP's CSV injection:
  // a user named "=HYPERLINK(…)"); a leading quote makes it text.
  const bool formula = !s.empty() && std::string_view("=+-@\t\r").find(s.front()) != s.npos;
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    return formula ? "'" + std::string(s) : std::string(s);
  }
  std::string out = formula ? "\"'" : "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string usage_report_table(const UsageReportResult& r) {
  using Row = storage::UsageReportRow;
  const bool keyed = r.group_by != storage::UsageGroupBy::none;
  struct Column {
    std::string title;
    bool right;
  };
  const std::vector<Column> columns = {
      {keyed ? std::string(storage::to_string(r.group_by)) : "", false},
      {"calls", true},
      {"failed", true},
      {"prompt", true},
      {"completion", true},
      {"cached", true},
      {"reasoning", true},
      {"cost", true},
      {"actual", true},
      {"estimate", true},
      {"no cost", true},
      {"p50 ms", true},
      {"p95 ms", true}};
  auto cells = [&](const Row& row, bool total) {
    std::string key = total ? "total" : printable(row.key, 40);
    if (!total && !row.label.empty()) key += " " + printable(row.label, 40);
    return std::vector<std::string>{key,
                                    std::to_string(row.calls),
                                    std::to_string(row.failed),
                                    std::to_string(row.prompt_tokens),
                                    std::to_string(row.completion_tokens),
                                    std::to_string(row.cached_tokens),
                                    std::to_string(row.reasoning_tokens),
                                    usd_fixed(row.cost_nanousd, 6),
                                    usd_fixed(row.cost_actual_nanousd, 6),
                                    usd_fixed(row.cost_estimated_nanousd, 6),
                                    std::to_string(row.calls_without_cost),
                                    optional_ms(row.latency_p50_ms),
                                    optional_ms(row.latency_p95_ms)};
  };
  std::vector<std::vector<std::string>> lines;
  lines.reserve(r.report.rows.size() + 1);
  for (const auto& row : r.report.rows) lines.push_back(cells(row, false));
  lines.push_back(cells(r.report.totals, true));
  std::vector<size_t> width(columns.size());
  for (size_t c = 0; c < columns.size(); ++c) width[c] = utf8_length(columns[c].title);
  for (const auto& l : lines) {
    for (size_t c = 0; c < l.size(); ++c) width[c] = std::max(width[c], utf8_length(l[c]));
  }
  auto print = [&](const std::vector<std::string>& l) {
    std::string out;
    for (size_t c = 0; c < l.size(); ++c) {
      const std::string pad(width[c] - utf8_length(l[c]), ' ');
      if (c > 0) out += "  ";
      out += columns[c].right ? pad + l[c] : (c + 1 == l.size() ? l[c] : l[c] + pad);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = fmt::format("usage {} → {} ({}, {}), by {}\n", iso_utc(r.period.from_ms),
                                iso_utc(r.period.to_ms), r.period.spec, r.period.zone,
                                storage::to_string(r.group_by));
  std::vector<std::string> titles;
  titles.reserve(columns.size());
  for (const auto& c : columns) titles.push_back(c.title);
  out += print(titles);
  size_t rule = 0;
  for (size_t c = 0; c < width.size(); ++c) rule += width[c] + (c > 0 ? 2 : 0);
  std::string dashes;
  for (size_t i = 0; i < rule; ++i) dashes += '-';
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    if (i == 0) out += dashes + "\n";
    out += print(lines[i]);
  }
  out += dashes + "\n" + print(lines.back());
  out += "cost: the provider's cost when reported, else the price table's estimate";
  if (r.report.totals.calls_without_cost > 0) {
    out += fmt::format("; {} call(s) had neither and are not in it",
                       r.report.totals.calls_without_cost);
  }
  return out + "\n";
}

nlohmann::json usage_report_json(const UsageReportResult& r) {
  nlohmann::json j;
  j["period"] = {{"from_ms", r.period.from_ms},
                 {"to_ms", r.period.to_ms},
                 {"from", iso_utc(r.period.from_ms)},
                 {"to", iso_utc(r.period.to_ms)},
                 {"zone", r.period.zone},
                 {"spec", r.period.spec}};
  j["group_by"] = storage::to_string(r.group_by);
  j["generated_at_ms"] = r.generated_at_ms;
  j["cost_definition"] = kCostDefinition;
  j["rows"] = nlohmann::json::array();
  for (const auto& row : r.report.rows) j["rows"].push_back(row_json(row, true));
  j["totals"] = row_json(r.report.totals, false);
  return j;
}

std::string usage_report_csv(const UsageReportResult& r) {
  std::string out =
      "kind,key,label,id,calls,failed,prompt_tokens,completion_tokens,cached_tokens,"
      "reasoning_tokens,cost_nanousd,cost_usd,cost_actual_nanousd,cost_actual_usd,"
      "cost_estimated_nanousd,cost_estimated_usd,calls_without_cost,latency_p50_ms,"
      "latency_p95_ms\r\n";
  auto line = [&](const storage::UsageReportRow& row, std::string_view kind) {
    auto opt = [](const std::optional<int64_t>& v) {
      return v ? std::to_string(*v) : std::string();
    };
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n", kind,
                       csv_field(row.key), csv_field(row.label), opt(row.id), row.calls, row.failed,
                       row.prompt_tokens, row.completion_tokens, row.cached_tokens,
                       row.reasoning_tokens, row.cost_nanousd, exact_usd(row.cost_nanousd),
                       row.cost_actual_nanousd, exact_usd(row.cost_actual_nanousd),
                       row.cost_estimated_nanousd, exact_usd(row.cost_estimated_nanousd),
                       row.calls_without_cost, opt(row.latency_p50_ms), opt(row.latency_p95_ms));
  };
  for (const auto& row : r.report.rows) line(row, storage::to_string(r.group_by));
  line(r.report.totals, "total");
  return out;
}

std::string usage_report_render(const UsageReportResult& r, ReportFormat format) {
  switch (format) {
    case ReportFormat::json:
      return usage_report_json(r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
             "\n";
    case ReportFormat::csv: return usage_report_csv(r);
    case ReportFormat::table: break;
  }
  return usage_report_table(r);
}

Result<ReportsPageData> build_reports_page_data(storage::UsageRepository& usage,
                                                const ReportPeriod& period, int64_t now_ms,
                                                size_t top_users) {
  storage::UsageReportQuery q;
  q.from_ms = period.from_ms;
  q.to_ms = period.to_ms;
  q.zone = period.zone;
  q.group_by = storage::UsageGroupBy::user;
  auto series = usage.series(q);
  if (!series) return fail(std::move(series).error());
  auto by_user = usage.report(q);
  if (!by_user) return fail(std::move(by_user).error());

  ReportsPageData d;
  d.generated_at_ms = now_ms;
  d.zone = period.zone;
  d.period = period.spec;
  std::map<std::string, ReportsPageData::DayTokens> tokens;
  for (const auto& p : *series) {
    d.cost_series.push_back({p.day, p.model, p.cost_nanousd});
    auto& t = tokens[p.day];
    t.day = p.day;
    t.prompt_tokens += p.prompt_tokens;
    t.completion_tokens += p.completion_tokens;
  }
  for (auto& [day, t] : tokens) d.tokens.push_back(std::move(t));
  for (const auto& row : by_user->rows) {
    if (d.top_users.size() >= top_users) break;
    d.top_users.push_back({row.id ? (row.label.empty() ? row.key : row.label) : "(no user)", row.id,
                           row.cost_nanousd, row.calls});
  }
  const auto& t = by_user->totals;
  d.totals = {t.calls,
              t.failed,
              t.prompt_tokens,
              t.completion_tokens,
              t.cost_nanousd,
              t.cost_actual_nanousd,
              t.cost_estimated_nanousd,
              t.calls_without_cost};
  return d;
}

}  // namespace parley::bot::money
