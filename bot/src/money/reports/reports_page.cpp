#include "parley/bot/money/reports/reports_page.h"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "parley/base/text.h"
#include "parley/base/usd.h"

namespace parley::bot::money {

namespace {

using nlohmann::json;

json money(int64_t nanousd) { return {{"nanousd", nanousd}, {"usd", exact_usd(nanousd)}}; }

// floor(spent · 100 / cap) without overflow; empty without a cap.
std::optional<int64_t> percent(int64_t spent, int64_t cap) {
  if (cap <= 0) return std::nullopt;
  if (spent <= 0) return 0;
  const int64_t whole = spent / cap;
  if (whole > INT64_MAX / 100 - 100) return INT64_MAX / 100;
  const int64_t rest = spent % cap;
  const int64_t part = cap <= INT64_MAX / 100 ? rest * 100 / cap : rest / (cap / 100);
  return whole * 100 + part;
}

// The page's view of the data: days sorted, models by cost, sums per (day, model).
struct Shape {
  std::vector<std::string> days;
  std::vector<std::pair<std::string, int64_t>> models;  // name, total cost
  std::map<std::string, size_t> day_index;
  std::map<std::string, size_t> model_index;
  // [day][model]: cost, and whether the pair appears in the data.
  std::vector<std::vector<std::optional<int64_t>>> cost;
  std::vector<int64_t> day_total;
  std::vector<std::pair<int64_t, int64_t>> tokens;  // [day]: prompt, completion
};

Shape shape_of(const ReportsPageData& d) {
  Shape s;
  std::set<std::string> days;
  std::map<std::string, int64_t> model_cost;
  for (const auto& c : d.cost_series) {
    days.insert(c.day);
    model_cost[c.model] += c.cost_nanousd;
  }
  for (const auto& t : d.tokens) days.insert(t.day);
  s.days.assign(days.begin(), days.end());
  for (size_t i = 0; i < s.days.size(); ++i) s.day_index[s.days[i]] = i;
  s.models.assign(model_cost.begin(), model_cost.end());
  std::stable_sort(s.models.begin(), s.models.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  for (size_t i = 0; i < s.models.size(); ++i) s.model_index[s.models[i].first] = i;
  s.cost.assign(s.days.size(), std::vector<std::optional<int64_t>>(s.models.size()));
  s.day_total.assign(s.days.size(), 0);
  s.tokens.assign(s.days.size(), {0, 0});
  for (const auto& c : d.cost_series) {
    const size_t di = s.day_index[c.day];
    auto& cell = s.cost[di][s.model_index[c.model]];
    cell = cell.value_or(0) + c.cost_nanousd;
    s.day_total[di] += c.cost_nanousd;
  }
  for (const auto& t : d.tokens) {
    auto& cell = s.tokens[s.day_index[t.day]];
    cell.first += t.prompt_tokens;
    cell.second += t.completion_tokens;
  }
  return s;
}

// ---- formatting (display only; the exact figures are in data-value) ----

// Dollars with the decimals a reader needs: six below a cent, four below a dollar, else two.
std::string usd(int64_t nanousd) {
  const uint64_t v =
      nanousd < 0 ? 0 - static_cast<uint64_t>(nanousd) : static_cast<uint64_t>(nanousd);
  return usd_fixed(nanousd, v == 0 ? 2 : (v < 10'000'000u ? 6 : (v < 1'000'000'000u ? 4 : 2)));
}

// 1234567 → "1,234,567".
std::string grouped(int64_t n) {
  std::string digits =
      std::to_string(n < 0 ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n));
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

const date::time_zone* zone_or_utc(const std::string& name) {
  try {
    return date::locate_zone(name.empty() ? "UTC" : name);
  } catch (const std::exception&) {
    return date::locate_zone("UTC");
  }
}

std::string local_time(const date::time_zone* tz, int64_t ms) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  const auto t = date::floor<seconds>(date::sys_time<milliseconds>(milliseconds(ms)));
  return date::format("%F %H:%M %Z", date::make_zoned(tz, t));
}

// A "nice" axis step (1, 2 or 5 × 10^k) giving about four ticks up to `max`.
int64_t nice_step(int64_t max) {
  if (max <= 0) return 1;
  const int64_t rough = std::max<int64_t>(1, max / 4);
  int64_t magnitude = 1;
  while (magnitude <= rough / 10) magnitude *= 10;
  for (int64_t m : {1, 2, 5, 10}) {
    if (m * magnitude >= rough) return m * magnitude;
  }
  return 10 * magnitude;
}

std::string hue_color(size_t i) {
  // Golden-angle hues: neighbours in the legend stay far apart however many models there are.
  const int hue = static_cast<int>(static_cast<double>(i) * 137.508) % 360;
  return fmt::format("hsl({},62%,46%)", hue);
}

std::string num(double v) { return fmt::format("{:.1f}", v); }

// An element showing a string of the data: <tag data-json="ptr">text</tag>.
std::string str_el(std::string_view tag, const std::string& ptr, const std::string& text,
                   std::string_view attrs = "") {
  return fmt::format("<{0} data-json=\"{1}\"{2}>{3}</{0}>", tag, html_escape(ptr),
                     attrs.empty() ? "" : " " + std::string(attrs), html_escape(text));
}

// An element showing a number of the data: exact value in data-value, `shown` as its text.
std::string num_el(std::string_view tag, const std::string& ptr, int64_t value,
                   const std::string& shown, std::string_view attrs = "") {
  return fmt::format(R"(<{0} data-json="{1}" data-value="{2}"{3}>{4}</{0}>)", tag, html_escape(ptr),
                     value, attrs.empty() ? "" : " " + std::string(attrs), html_escape(shown));
}

constexpr const char* kCss = R"(
:root{--fg:#1d2430;--muted:#5b6573;--line:#d9dee5;--bg:#f6f7f9;--card:#fff;--ok:#2e8b57;--warn:#d08700;--over:#c62828}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:16px 24px;background:#1d2430;color:#fff}
header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:#c9d1dc}
main{padding:16px 24px;max-width:1100px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:0 0 16px}
h2{font-size:16px;margin:0 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{min-width:140px;padding:8px 12px;border:1px solid var(--line);border-radius:6px}
.card .label{color:var(--muted);font-size:12px}
.card .big{font-size:20px;font-weight:600}
.empty{color:var(--muted);font-style:italic}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:right;vertical-align:top}
th:first-child,td:first-child,td.text,th.text{text-align:left}
td.text{max-width:420px;overflow-wrap:anywhere}
details summary{cursor:pointer;color:var(--muted)}
svg{display:block;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:var(--muted)}
svg .axis{stroke:var(--muted);stroke-width:1}
svg .grid{stroke:var(--line);stroke-width:1}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin:6px 0;padding:0;list-style:none}
.legend li{display:flex;align-items:center;gap:6px;overflow-wrap:anywhere}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;flex:none}
.gauge{margin:6px 0 12px}
.gauge .name{font-weight:600}
.gauge .track{height:14px;background:#e8ebef;border-radius:7px;overflow:hidden;max-width:520px}
.gauge .fill{height:100%;background:var(--ok)}
.gauge.warn .fill{background:var(--warn)}
.gauge.over .fill{background:var(--over)}
.sev-critical{color:var(--over);font-weight:600}
.sev-warning{color:var(--warn);font-weight:600}
.sev-info{color:var(--muted)}
)";

// ---- sections ----

void totals_section(std::string& out, const ReportsPageData& d) {
  const auto& t = d.totals;
  out += R"(<section id="totals"><h2>Totals</h2><div class="cards">)";
  auto card = [&](const char* label, const std::string& ptr, int64_t v, const std::string& shown) {
    out += fmt::format(R"(<div class="card"><div class="label">{}</div>{}</div>)", label,
                       num_el("div", ptr, v, shown, "class=\"big\""));
  };
  card("spend (cost)", "/totals/cost/nanousd", t.cost_nanousd, usd(t.cost_nanousd));
  card("provider's cost", "/totals/cost_actual/nanousd", t.cost_actual_nanousd,
       usd(t.cost_actual_nanousd));
  card("estimated cost", "/totals/cost_estimated/nanousd", t.cost_estimated_nanousd,
       usd(t.cost_estimated_nanousd));
  card("calls", "/totals/calls", t.calls, grouped(t.calls));
  card("failed", "/totals/failed", t.failed, grouped(t.failed));
  card("calls without cost", "/totals/calls_without_cost", t.calls_without_cost,
       grouped(t.calls_without_cost));
  card("prompt tokens", "/totals/prompt_tokens", t.prompt_tokens, grouped(t.prompt_tokens));
  card("completion tokens", "/totals/completion_tokens", t.completion_tokens,
       grouped(t.completion_tokens));
  out +=
      "</div><p class=\"empty\">cost: the provider's cost when it reported one, else the price "
      "table's estimate.</p></section>";
}

void budgets_section(std::string& out, const ReportsPageData& d) {
  out += "<section id=\"budgets\"><h2>Budgets</h2>";
  if (d.budgets.empty()) out += "<p class=\"empty\">No budgets configured.</p>";
  for (size_t i = 0; i < d.budgets.size(); ++i) {
    const auto& g = d.budgets[i];
    const std::string base = fmt::format("/budgets/{}", i);
    const auto pct = percent(g.spent_nanousd, g.cap_nanousd);
    const int64_t shown = std::min<int64_t>(pct.value_or(0), 100);
    const char* cls = !pct ? "" : (*pct >= 100 ? " over" : (*pct >= 80 ? " warn" : ""));
    out +=
        fmt::format("<div class=\"gauge{}\"><div>{}: {}", cls,
                    str_el("span", base + "/name", g.name, "class=\"name\""),
                    num_el("span", base + "/spent/nanousd", g.spent_nanousd, usd(g.spent_nanousd)));
    if (pct) {
      out += fmt::format(" of {} ({}%)",
                         num_el("span", base + "/cap/nanousd", g.cap_nanousd, usd(g.cap_nanousd)),
                         num_el("span", base + "/percent", *pct, std::to_string(*pct)));
    } else {
      out += " (no cap)";
    }
    out += fmt::format(
        "</div><div class=\"track\" role=\"meter\" aria-valuemin=\"0\" aria-valuemax=\"100\" "
        "aria-valuenow=\"{0}\"><div class=\"fill\" style=\"width:{0}%\"></div></div></div>",
        shown);
  }
  out += "</section>";
}

// Geometry shared by the two vertical bar charts.
constexpr double kW = 760;
constexpr double kH = 280;
constexpr double kLeft = 78;
constexpr double kRight = 12;
constexpr double kTop = 12;
constexpr double kBottom = 36;
constexpr double kPlotW = kW - kLeft - kRight;
constexpr double kPlotH = kH - kTop - kBottom;

// The y axis with its ticks (labels carry `tick_attr`="exact value"), the x labels (every k-th
// day), and the slot width per day.
double axes(std::string& out, const Shape& s, int64_t max, std::string_view tick_attr,
            const std::function<std::string(int64_t)>& label, int64_t* ymax) {
  const int64_t step = nice_step(max);
  const int64_t top = std::max<int64_t>(step, (max + step - 1) / step * step);
  *ymax = top;
  for (int64_t v = 0; v <= top; v += step) {
    const double y = kTop + kPlotH - static_cast<double>(v) / static_cast<double>(top) * kPlotH;
    out += fmt::format(R"(<line class="grid" x1="{0}" x2="{1}" y1="{2}" y2="{2}"/>)", num(kLeft),
                       num(kW - kRight), num(y));
    out += fmt::format(R"(<text x="{}" y="{}" text-anchor="end" {}="{}">{}</text>)", num(kLeft - 6),
                       num(y + 4), tick_attr, v, html_escape(label(v)));
  }
  out += fmt::format(R"(<line class="axis" x1="{0}" x2="{1}" y1="{2}" y2="{2}"/>)", num(kLeft),
                     num(kW - kRight), num(kTop + kPlotH));
  const double slot = kPlotW / static_cast<double>(std::max<size_t>(s.days.size(), 1));
  const size_t every = std::max<size_t>(1, (s.days.size() + 11) / 12);
  for (size_t i = 0; i < s.days.size(); i += every) {
    const std::string& day = s.days[i];
    const std::string shown = day.size() == 10 ? day.substr(5) : day;  // "MM-DD"
    out += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)",
                       num(kLeft + (static_cast<double>(i) + 0.5) * slot), num(kH - kBottom + 16),
                       html_escape(shown));
  }
  return slot;
}

double bar_height(int64_t v, int64_t ymax) {
  if (v <= 0 || ymax <= 0) return 0;
  return static_cast<double>(v) / static_cast<double>(ymax) * kPlotH;
}

void spend_section(std::string& out, const ReportsPageData& d, const Shape& s) {
  out += "<section id=\"spend\"><h2>Spend per day, by model</h2>";
  int64_t max = 0;
  for (int64_t t : s.day_total) max = std::max(max, t);
  if (s.models.empty()) {
    out += "<p class=\"empty\">No calls in this period.</p></section>";
    return;
  }
  out += fmt::format(
      "<svg viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\" "
      "aria-label=\"spend per day stacked by model\">",
      kW, kH);
  int64_t ymax = 1;
  const double slot = axes(
      out, s, max, "data-nanousd", [](int64_t v) { return usd(v); }, &ymax);
  const double bw = std::min(40.0, slot * 0.7);
  for (size_t di = 0; di < s.days.size(); ++di) {
    const double x = kLeft + static_cast<double>(di) * slot + (slot - bw) / 2;
    double y = kTop + kPlotH;
    size_t j = 0;  // index in cost_by_day[di].models (present models only)
    for (size_t mi = 0; mi < s.models.size(); ++mi) {
      const auto& cell = s.cost[di][mi];
      if (!cell) continue;
      const double h = bar_height(*cell, ymax);
      y -= h;
      out += fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
          "data-json=\"/cost_by_day/{}/models/{}/cost/nanousd\" data-value=\"{}\"><title>{} {}: "
          "{}</title></rect>",
          num(x), num(y), num(bw), num(h), hue_color(mi), di, j, *cell, html_escape(s.days[di]),
          html_escape(s.models[mi].first), usd(*cell));
      ++j;
    }
  }
  out += "</svg><ul class=\"legend\">";
  for (size_t mi = 0; mi < s.models.size(); ++mi) {
    const std::string base = fmt::format("/models/{}", mi);
    out += fmt::format(
        R"(<li><span class="swatch" style="background:{}"></span>{} {}</li>)", hue_color(mi),
        str_el("span", base + "/model", s.models[mi].first),
        num_el("span", base + "/cost/nanousd", s.models[mi].second, usd(s.models[mi].second)));
  }
  out += "</ul><details><summary>numbers</summary><table><thead><tr><th>day</th>";
  for (size_t mi = 0; mi < s.models.size(); ++mi) {
    out += str_el("th", fmt::format("/models/{}/model", mi), s.models[mi].first, "class=\"text\"");
  }
  out += "<th>total</th></tr></thead><tbody>";
  for (size_t di = 0; di < s.days.size(); ++di) {
    out += "<tr>" + str_el("td", fmt::format("/cost_by_day/{}/day", di), s.days[di]);
    size_t j = 0;
    for (size_t mi = 0; mi < s.models.size(); ++mi) {
      const auto& cell = s.cost[di][mi];
      if (!cell) {
        out += "<td></td>";
        continue;
      }
      out += num_el("td", fmt::format("/cost_by_day/{}/models/{}/cost/nanousd", di, j), *cell,
                    usd(*cell));
      ++j;
    }
    out += num_el("td", fmt::format("/cost_by_day/{}/total/nanousd", di), s.day_total[di],
                  usd(s.day_total[di])) +
           "</tr>";
  }
  out += "</tbody></table></details></section>";
  static_cast<void>(d);
}

void tokens_section(std::string& out, const Shape& s) {
  out += "<section id=\"tokens\"><h2>Tokens per day</h2>";
  if (s.days.empty()) {
    out += "<p class=\"empty\">No calls in this period.</p></section>";
    return;
  }
  int64_t max = 0;
  for (const auto& [p, c] : s.tokens) max = std::max({max, p, c});
  constexpr const char* kPromptColor = "#3b6fb6";
  constexpr const char* kCompletionColor = "#e07b39";
  out += fmt::format(
      "<svg viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\" "
      "aria-label=\"prompt and completion tokens per day\">",
      kW, kH);
  int64_t ymax = 1;
  const double slot = axes(
      out, s, max, "data-tokens", [](int64_t v) { return grouped(v); }, &ymax);
  const double bw = std::min(18.0, slot * 0.35);
  for (size_t di = 0; di < s.days.size(); ++di) {
    const double center = kLeft + (static_cast<double>(di) + 0.5) * slot;
    const auto [prompt, completion] = s.tokens[di];
    const double hp = bar_height(prompt, ymax);
    const double hc = bar_height(completion, ymax);
    out += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
        "data-json=\"/tokens_by_day/{}/prompt_tokens\" data-value=\"{}\"><title>{} prompt: "
        "{}</title></rect>",
        num(center - bw), num(kTop + kPlotH - hp), num(bw), num(hp), kPromptColor, di, prompt,
        html_escape(s.days[di]), grouped(prompt));
    out += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
        "data-json=\"/tokens_by_day/{}/completion_tokens\" data-value=\"{}\"><title>{} "
        "completion: {}</title></rect>",
        num(center), num(kTop + kPlotH - hc), num(bw), num(hc), kCompletionColor, di, completion,
        html_escape(s.days[di]), grouped(completion));
  }
  out += fmt::format(
      "</svg><ul class=\"legend\"><li><span class=\"swatch\" style=\"background:{}\"></span>"
      "prompt</li><li><span class=\"swatch\" style=\"background:{}\"></span>completion</li></ul>",
      kPromptColor, kCompletionColor);
  out +=
      "<details><summary>numbers</summary><table><thead><tr><th>day</th><th>prompt</th>"
      "<th>completion</th></tr></thead><tbody>";
  for (size_t di = 0; di < s.days.size(); ++di) {
    const std::string base = fmt::format("/tokens_by_day/{}", di);
    out += "<tr>" + str_el("td", base + "/day", s.days[di]) +
           num_el("td", base + "/prompt_tokens", s.tokens[di].first, grouped(s.tokens[di].first)) +
           num_el("td", base + "/completion_tokens", s.tokens[di].second,
                  grouped(s.tokens[di].second)) +
           "</tr>";
  }
  out += "</tbody></table></details></section>";
}

void users_section(std::string& out, const ReportsPageData& d) {
  out += "<section id=\"users\"><h2>Top users by cost</h2>";
  if (d.top_users.empty()) {
    out += "<p class=\"empty\">No users in this period.</p></section>";
    return;
  }
  constexpr double kRow = 26;
  constexpr double kName = 190;
  constexpr double kValue = 110;
  constexpr double kWidth = 760;
  const double height = kRow * static_cast<double>(d.top_users.size()) + 8;
  int64_t max = 1;
  for (const auto& u : d.top_users) max = std::max(max, u.cost_nanousd);
  out += fmt::format(
      "<svg viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\" "
      "aria-label=\"top users by cost\">",
      kWidth, num(height));
  for (size_t i = 0; i < d.top_users.size(); ++i) {
    const auto& u = d.top_users[i];
    const std::string base = fmt::format("/top_users/{}", i);
    const double y = 4 + kRow * static_cast<double>(i);
    const double w = u.cost_nanousd <= 0 ? 0
                                         : static_cast<double>(u.cost_nanousd) /
                                               static_cast<double>(max) * (kWidth - kName - kValue);
    // The name is clipped to its column by a nested viewport.
    out +=
        fmt::format(R"(<svg x="0" y="{}" width="{}" height="{}">{}</svg>)", num(y), num(kName - 8),
                    num(kRow), str_el("text", base + "/name", u.name, R"(x="0" y="17")"));
    out += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#3b6fb6\" "
        "data-json=\"{}/cost/nanousd\" data-value=\"{}\"><title>{}</title></rect>",
        num(kName), num(y + 4), num(w), num(kRow - 8), base, u.cost_nanousd, usd(u.cost_nanousd));
    out += num_el("text", base + "/cost/nanousd", u.cost_nanousd, usd(u.cost_nanousd),
                  fmt::format(R"(x="{}" y="{}")", num(kName + w + 6), num(y + 17)));
  }
  out +=
      "</svg><details><summary>numbers</summary><table><thead><tr><th>user</th><th>id</th>"
      "<th>calls</th><th>cost</th></tr></thead><tbody>";
  for (size_t i = 0; i < d.top_users.size(); ++i) {
    const auto& u = d.top_users[i];
    const std::string base = fmt::format("/top_users/{}", i);
    out += "<tr>" + str_el("td", base + "/name", u.name, "class=\"text\"") +
           (u.user_id ? num_el("td", base + "/user_id", *u.user_id, std::to_string(*u.user_id))
                      : std::string("<td></td>")) +
           num_el("td", base + "/calls", u.calls, grouped(u.calls)) +
           num_el("td", base + "/cost/nanousd", u.cost_nanousd, usd(u.cost_nanousd)) + "</tr>";
  }
  out += "</tbody></table></details></section>";
}

void alerts_section(std::string& out, const ReportsPageData& d, const date::time_zone* tz) {
  out += "<section id=\"alerts\"><h2>Open alerts</h2>";
  if (d.alerts.empty()) {
    out += "<p class=\"empty\">No open alerts.</p></section>";
    return;
  }
  out +=
      "<table><thead><tr><th>id</th><th class=\"text\">time</th><th class=\"text\">kind</th>"
      "<th class=\"text\">severity</th><th class=\"text\">message</th></tr></thead><tbody>";
  for (size_t i = 0; i < d.alerts.size(); ++i) {
    const auto& a = d.alerts[i];
    const std::string base = fmt::format("/alerts/{}", i);
    const std::string sev =
        a.severity == "critical" || a.severity == "warning" || a.severity == "info" ? a.severity
                                                                                    : "info";
    out += "<tr>" + num_el("td", base + "/id", a.id, std::to_string(a.id)) +
           num_el("td", base + "/ts_ms", a.ts_ms, local_time(tz, a.ts_ms), "class=\"text\"") +
           str_el("td", base + "/kind", a.kind, "class=\"text\"") +
           str_el("td", base + "/severity", a.severity, "class=\"text sev-" + sev + "\"") +
           str_el("td", base + "/message", a.message, "class=\"text\"") + "</tr>";
  }
  out += "</tbody></table></section>";
}

}  // namespace

nlohmann::json reports_json(const ReportsPageData& d) {
  using nlohmann::json;
  const auto s = shape_of(d);
  json j;
  j["generated_at_ms"] = d.generated_at_ms;
  j["zone"] = d.zone;
  j["period"] = d.period;
  j["cost_definition"] =
      "the provider's cost when it reported one, else the price table's estimate";
  j["days"] = s.days;
  j["models"] = json::array();
  for (const auto& [model, cost] : s.models) {
    j["models"].push_back({{"model", model}, {"cost", money(cost)}});
  }
  j["cost_by_day"] = json::array();
  j["tokens_by_day"] = json::array();
  for (size_t di = 0; di < s.days.size(); ++di) {
    json models = json::array();
    for (size_t mi = 0; mi < s.models.size(); ++mi) {
      if (s.cost[di][mi]) {
        models.push_back({{"model", s.models[mi].first}, {"cost", money(*s.cost[di][mi])}});
      }
    }
    j["cost_by_day"].push_back(
        {{"day", s.days[di]}, {"total", money(s.day_total[di])}, {"models", models}});
    j["tokens_by_day"].push_back({{"day", s.days[di]},
                                  {"prompt_tokens", s.tokens[di].first},
                                  {"completion_tokens", s.tokens[di].second}});
  }
  j["top_users"] = json::array();
  for (const auto& u : d.top_users) {
    j["top_users"].push_back({{"name", u.name},
                              {"user_id", u.user_id ? json(*u.user_id) : json()},
                              {"cost", money(u.cost_nanousd)},
                              {"calls", u.calls}});
  }
  j["budgets"] = json::array();
  for (const auto& g : d.budgets) {
    const auto pct = percent(g.spent_nanousd, g.cap_nanousd);
    j["budgets"].push_back({{"name", g.name},
                            {"spent", money(g.spent_nanousd)},
                            {"cap", g.cap_nanousd > 0 ? money(g.cap_nanousd) : json()},
                            {"percent", pct ? json(*pct) : json()}});
  }
  j["alerts"] = json::array();
  for (const auto& a : d.alerts) {
    j["alerts"].push_back({{"id", a.id},
                           {"ts_ms", a.ts_ms},
                           {"kind", a.kind},
                           {"severity", a.severity},
                           {"message", a.message}});
  }
  const auto& t = d.totals;
  j["totals"] = {{"calls", t.calls},
                 {"failed", t.failed},
                 {"prompt_tokens", t.prompt_tokens},
                 {"completion_tokens", t.completion_tokens},
                 {"cost", money(t.cost_nanousd)},
                 {"cost_actual", money(t.cost_actual_nanousd)},
                 {"cost_estimated", money(t.cost_estimated_nanousd)},
                 {"calls_without_cost", t.calls_without_cost}};
  return j;
}

std::string render_reports_page(const ReportsPageData& d) {
  const auto s = shape_of(d);
  const auto* tz = zone_or_utc(d.zone);
  std::string out;
  out.reserve(16384);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">"
      "<title>parley — usage report</title><style>";
  out += kCss;
  out += "</style></head><body><header><h1>parley — usage report</h1><p>generated ";
  out += num_el("time", "/generated_at_ms", d.generated_at_ms, local_time(tz, d.generated_at_ms));
  out += " · period " + str_el("span", "/period", d.period);
  out += " · days in " + str_el("span", "/zone", d.zone);
  out += "</p></header><main>";
  totals_section(out, d);
  budgets_section(out, d);
  spend_section(out, d, s);
  tokens_section(out, s);
  users_section(out, d);
  alerts_section(out, d, tz);
  out += "</main></body></html>\n";
  return out;
}

}  // namespace parley::bot::money
