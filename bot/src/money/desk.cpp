#include "parley/bot/money/desk.h"

#include <fmt/format.h>

#include "parley/base/time_format.h"
#include "parley/base/usd.h"
#include "parley/bot/money/alerts.h"

namespace parley::bot::money {

using nlohmann::json;

namespace {

json usd_or_null(const std::optional<int64_t>& v) {
  return v ? json(exact_usd(*v)) : json(nullptr);
}

std::string ago(int64_t now, int64_t then) {
  const int64_t s = std::max<int64_t>(0, (now - then) / 1000);
  if (s < 120) return fmt::format("{} s ago", s);
  if (s < int64_t{2} * 3600) return fmt::format("{} min ago", s / 60);
  if (s < int64_t{2} * 86400) return fmt::format("{} h ago", s / 3600);
  return fmt::format("{} days ago", s / 86400);
}

}  // namespace

Desk::Desk(storage::AlertRepository& alerts, storage::CreditRepository& credits,
           const BudgetKeeper* budgets, const CreditMonitor* monitor, std::string provider,
           const parley::Clock& clock)
    : alerts_(alerts),
      credits_(credits),
      budgets_(budgets),
      monitor_(monitor),
      provider_(std::move(provider)),
      clock_(clock) {}

Result<json> Desk::credits() const {
  const int64_t now = clock_.now_ms();
  std::optional<storage::CreditSnapshot> latest;
  std::optional<int64_t> balance;
  std::optional<double> runway;
  std::string last_error;
  int64_t last_poll = 0;
  bool credits_allowed = true;
  if (monitor_ != nullptr) {
    const CreditStatus st = monitor_->status();
    latest = st.latest;
    balance = st.balance_nanousd;
    runway = st.runway_hours;
    last_error = st.last_error;
    last_poll = st.last_poll_ms;
    credits_allowed = st.credits_endpoint_allowed;
  }
  if (!latest) {
    auto stored = credits_.latest(provider_);
    if (!stored) return fail(std::move(stored).error());
    latest = std::move(*stored);
    if (latest) balance = CreditMonitor::balance_of(*latest);
  }
  json j;
  j["provider"] = provider_;
  j["monitored"] = monitor_ != nullptr;
  j["polled_at"] = latest ? json(iso_utc(latest->ts)) : json(nullptr);
  j["last_poll_ms"] = last_poll != 0 ? json(last_poll) : latest ? json(latest->ts) : json(nullptr);
  j["last_error"] = last_error.empty() ? json(nullptr) : json(last_error);
  j["credits_endpoint_allowed"] = credits_allowed;
  j["balance_usd"] = usd_or_null(balance);
  j["balance_nanousd"] = balance ? json(*balance) : json(nullptr);
  j["runway_hours"] = runway ? json(*runway) : json(nullptr);
  if (latest) {
    j["limit_usd"] = usd_or_null(latest->limit_nanousd);
    j["limit_remaining_usd"] = usd_or_null(latest->remaining_nanousd);
    j["key_usage_usd"] = exact_usd(latest->usage_nanousd);
    j["usage_daily_usd"] = usd_or_null(latest->usage_daily_nanousd);
    j["usage_weekly_usd"] = usd_or_null(latest->usage_weekly_nanousd);
    j["usage_monthly_usd"] = usd_or_null(latest->usage_monthly_nanousd);
    j["total_credits_usd"] = usd_or_null(latest->total_credits_nanousd);
    j["total_usage_usd"] = usd_or_null(latest->total_usage_nanousd);
    j["is_free_tier"] = latest->is_free_tier;
  }
  json budgets = json::array();
  std::string budget_text;
  if (budgets_ != nullptr) {
    for (const auto& g : budgets_->gauges()) {
      budgets.push_back({{"name", g.name},
                         {"period", g.period},
                         {"spent_usd", exact_usd(g.spent)},
                         {"reserved_usd", exact_usd(g.reserved)},
                         {"cap_usd", exact_usd(g.cap)},
                         {"remaining_usd", exact_usd(g.cap - g.spent - g.reserved)},
                         {"spent_nanousd", g.spent},
                         {"cap_nanousd", g.cap}});
      budget_text += fmt::format("{}{} {} of {}", budget_text.empty() ? "" : "; ", g.name,
                                 format_usd(g.spent), format_usd(g.cap));
    }
  }
  j["budgets"] = std::move(budgets);
  auto open = alerts_.list(true, 1000);
  if (!open) return fail(std::move(open).error());
  j["open_alerts"] = open->size();

  std::string text;
  if (!latest) {
    text = fmt::format("{}: no credit poll yet{}.", provider_,
                       last_error.empty() ? "" : fmt::format(" (last attempt: {})", last_error));
  } else {
    text = fmt::format("{}: balance {}", provider_,
                       balance ? format_usd(*balance) : std::string("unknown"));
    if (latest->limit_nanousd) {
      text += fmt::format(" (key limit {})", format_usd(*latest->limit_nanousd));
    }
    if (runway) text += fmt::format(", runway {:.0f} h", *runway);
    if (latest->usage_daily_nanousd) {
      text += fmt::format(", spent today {}", format_usd(*latest->usage_daily_nanousd));
    }
    text += fmt::format("; polled {}", ago(now, latest->ts));
    if (!last_error.empty()) text += fmt::format(" (last poll: {})", last_error);
    text += ".";
  }
  if (!budget_text.empty()) text += " Budgets: " + budget_text + ".";
  text += open->empty() ? " No open alerts."
                        : fmt::format(" {} open alert{} (/alerts).", open->size(),
                                      open->size() == 1 ? "" : "s");
  j["text"] = text;
  return j;
}

Result<json> Desk::alerts(bool open_only) const {
  auto list = alerts_.list(open_only, 100);
  if (!list) return fail(std::move(list).error());
  json arr = json::array();
  std::string text;
  for (const auto& a : *list) {
    arr.push_back(alert_json(a));
    text += (text.empty() ? "" : "\n") + alert_line(a);
  }
  if (list->empty()) text = open_only ? "No open alerts." : "No alerts.";
  return json{{"alerts", std::move(arr)}, {"open_only", open_only}, {"text", text}};
}

Result<json> Desk::ack(int64_t id, const std::string& by) const {
  auto found = alerts_.find(id);
  if (!found) return fail(std::move(found).error());
  if (!*found) return fail(ErrorCode::not_found, fmt::format("alerts: there is no alert #{}", id));
  auto r = alerts_.ack(id, by).get();
  if (!r) return fail(std::move(r).error());
  const bool now_acked = r->inserted;
  return json{{"id", id},
              {"acknowledged", true},
              {"already", !now_acked},
              {"text", now_acked ? fmt::format("Alert #{} acknowledged.", id)
                                 : fmt::format("Alert #{} was already acknowledged by {}.", id,
                                               (*found)->acked_by)}};
}

}  // namespace parley::bot::money
