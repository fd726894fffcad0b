// The /reports page: one self-contained HTML document (inline CSS, server-side inline SVG, no
// JavaScript, no external assets) with spend per day stacked by model, tokens per day, the top
// users by cost, budget gauges, open alerts and totals — and reports_json(), the same numbers as
// JSON.
//
// Every number the page shows is also machine-readable in the DOM: the element that shows it
// carries data-json="<JSON pointer into reports_json()>" and data-value="<exact integer>"
// (money in nano-dollars); an element showing a string from the data (a model, a user name, a
// day) carries data-json alone and its text is that string. Axis ticks carry data-nanousd /
// data-tokens. Every string is HTML-escaped (model and user names are untrusted) and invalid
// UTF-8 is replaced with U+FFFD.
//
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::bot::money {

struct ReportsPageData {
  int64_t generated_at_ms = 0;
  std::string zone = "UTC";  // IANA zone of the days and of the times shown
  std::string period;        // what the page covers, shown as given ("--since 30d")

  struct DayModelCost {
    std::string day;  // "YYYY-MM-DD"
    std::string model;
    int64_t cost_nanousd = 0;  // coalesce(actual, estimate), see usage_repository.h
  };
  std::vector<DayModelCost> cost_series;  // any order; repeated (day, model) pairs add up

  struct DayTokens {
    std::string day;
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
  };
  std::vector<DayTokens> tokens;  // any order; repeated days add up

  struct UserCost {
    std::string name;  // display name (untrusted)
    std::optional<int64_t> user_id;
    int64_t cost_nanousd = 0;
    int64_t calls = 0;
  };
  std::vector<UserCost> top_users;  // drawn in this order

  struct Gauge {
    std::string name;  // "global daily", "user alice monthly"
    int64_t spent_nanousd = 0;
    int64_t cap_nanousd = 0;  // <= 0: no cap (no percentage)
  };
  std::vector<Gauge> budgets;

  struct Alert {
    int64_t id = 0;
    int64_t ts_ms = 0;
    std::string kind;
    std::string severity;  // info | warning | critical
    std::string message;
  };
  std::vector<Alert> alerts;  // the open ones

  struct Totals {
    int64_t calls = 0;
    int64_t failed = 0;
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
    int64_t cost_nanousd = 0;
    int64_t cost_actual_nanousd = 0;
    int64_t cost_estimated_nanousd = 0;
    int64_t calls_without_cost = 0;
  } totals;
};

// The page's numbers: days sorted; models ordered by their total cost (descending, then name);
// cost_by_day[i].models in that model order; money as {"nanousd", "usd"}; budgets with an
// integer "percent" (floor of spent·100/cap; it and "cap" null without a cap). Strings as
// given: dump with
// nlohmann::json::error_handler_t::replace.
nlohmann::json reports_json(const ReportsPageData& data);

// The whole page, "<!DOCTYPE html>…".
std::string render_reports_page(const ReportsPageData& data);

}  // namespace parley::bot::money
