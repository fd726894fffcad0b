#include "parley/bot/app/money_pages.h"

#include <fmt/format.h>

#include <map>

#include "parley/bot/money/reports/metrics.h"
#include "parley/bot/money/reports/reports_page.h"
#include "parley/bot/money/reports/usage_report.h"

namespace parley::bot::app {

namespace {

using nlohmann::json;

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    const size_t eq = part.find('=');
    if (!part.empty()) {
      out[decode(part.substr(0, eq))] =
          eq == std::string_view::npos ? std::string("1") : decode(part.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

channels::Page json_page(const json& body, int status = 200) {
  return {
      status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

channels::Page error_page(int status, const std::string& message) {
  return json_page({{"error", message}}, status);
}

channels::Page from_result(const Result<json>& r) {
  if (r) return json_page(*r);
  return error_page(r.error().code == ErrorCode::not_found ? 404 : 500, r.error().message);
}

money::PeriodSpec period_of(const std::map<std::string, std::string>& q,
                            const std::string& default_since) {  // for /reports
  money::PeriodSpec p;
  if (auto it = q.find("since"); it != q.end()) p.since = it->second;
  if (auto it = q.find("from"); it != q.end()) p.from = it->second;
  if (auto it = q.find("to"); it != q.end()) p.to = it->second;
  if (p.since.empty() && p.from.empty() && p.to.empty()) p.since = default_since;
  return p;
}

// The /reports page's data: the usage parts from the ledger, the budgets and open alerts.
Result<money::ReportsPageData> page_data(const std::map<std::string, std::string>& q,
                                         money::Treasury& money, storage::Store& store,
                                         int64_t now) {
  const std::string zone = q.count("tz") != 0 ? q.at("tz") : money.config().zone;
  auto period = money::resolve_period(period_of(q, "30d"), zone, now);
  if (!period) return fail(std::move(period).error());
  auto data = money::build_reports_page_data(store.usage(), *period, now);
  if (!data) return fail(std::move(data).error());
  for (const auto& g : money.budgets().gauges()) {
    data->budgets.push_back({g.name + " (" + g.period + ")", g.spent, g.cap});
  }
  auto open = money.alert_store().list(true, 50);
  if (!open) return fail(std::move(open).error());
  for (const auto& a : *open) data->alerts.push_back({a.id, a.ts, a.kind, a.severity, a.message});
  return data;
}

}  // namespace

std::optional<channels::Page> money_page(const channels::PageRequest& request,
                                         money::Treasury& money, storage::Store& store,
                                         const parley::Clock& clock) {
  const auto q = parse_query(request.query);
  const int64_t now = clock.now_ms();
  const std::string& path = request.path;
  if (path == "/api/credits") return from_result(money.desk().credits());
  if (path == "/api/alerts") {
    const bool all = q.count("all") != 0 && q.at("all") != "0";
    return from_result(money.desk().alerts(!all));
  }
  if (path == "/api/usage") {
    auto params = money::parse_usage_query(request.query);
    if (!params) return error_page(400, params.error().message);
    if (q.count("tz") == 0) params->request.zone = money.config().zone;
    auto r = money::build_usage_report(store.usage(), params->request, now);
    if (!r) {
      return error_page(r.error().code == ErrorCode::invalid_argument ? 400 : 500,
                        r.error().message);
    }
    switch (params->format) {
      case money::ReportFormat::json: return json_page(money::usage_report_json(*r));
      case money::ReportFormat::csv:
        return channels::Page{
            200, "text/csv; charset=utf-8", money::usage_report_render(*r, params->format), {}};
      case money::ReportFormat::table:
        return channels::Page{
            200, "text/plain; charset=utf-8", money::usage_report_render(*r, params->format), {}};
    }
  }
  if (path == "/api/reports" || path == "/reports") {
    auto data = page_data(q, money, store, now);
    if (!data) {
      return error_page(data.error().code == ErrorCode::invalid_argument ? 400 : 500,
                        data.error().message);
    }
    if (path == "/api/reports") return json_page(money::reports_json(*data));
    return channels::Page{200, "text/html; charset=utf-8", money::render_reports_page(*data), {}};
  }
  if (path == "/metrics") {
    money::MetricsInput in;
    in.ledger = &money.ledger();
    in.budgets = &money.budgets();
    in.health = store.health();
    if (auto* m = money.monitor()) {
      const auto st = m->status();
      in.balance_nanousd = st.balance_nanousd;
      in.runway_hours = st.runway_hours;
      if (st.last_poll_ms != 0) in.last_poll_ms = st.last_poll_ms;
    }
    in.alerts_raised = money.alerts().raised();
    if (auto open = money.alert_store().list(true, 10000); open) {
      in.open_alerts = static_cast<int64_t>(open->size());
    }
    return channels::Page{
        200, "text/plain; version=0.0.4; charset=utf-8", money::prometheus_text(in), {}};
  }
  return std::nullopt;
}

}  // namespace parley::bot::app
