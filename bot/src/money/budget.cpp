#include "parley/bot/money/budget.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "parley/base/usd.h"
#include "parley/storage/usage_repository.h"

namespace parley::bot::money {

namespace {

std::chrono::system_clock::time_point at(int64_t ms) {
  return std::chrono::system_clock::time_point{std::chrono::milliseconds{ms}};
}

// Turns whose counters have not moved for this long are forgotten.
constexpr int64_t kTurnIdleMs = int64_t{60} * 60 * 1000;

}  // namespace

AttemptCost price_attempt(const PriceTable* prices, const llm::Attempt& a, int64_t at_ms) {
  AttemptCost cost;
  cost.model = a.model_answered.empty() ? a.model_asked : a.model_answered;
  if (a.usage.cost_usd) cost.actual = storage::usd_to_nanousd(*a.usage.cost_usd);
  if (prices != nullptr) {
    TokenCounts tokens{a.usage.prompt_tokens, a.usage.completion_tokens, a.usage.cached_tokens,
                       a.usage.reasoning_tokens};
    auto e = prices->estimate(cost.model, tokens, at(at_ms));
    // The answering model may carry a dated suffix the table does not know; the one asked is
    // the next best name for it.
    if (!e && cost.model != a.model_asked) e = prices->estimate(a.model_asked, tokens, at(at_ms));
    if (e) {
      cost.estimated = e->nanousd;
      cost.pricing_version = e->pricing_version;
    }
  }
  return cost;
}

BudgetKeeper::BudgetKeeper(BudgetOptions options, std::shared_ptr<const PriceTable> prices,
                           const parley::Clock& clock, AlertSink* alerts)
    : options_(std::move(options)),
      prices_(std::move(prices)),
      clock_(clock),
      alerts_(alerts),
      periods_(options_.zone) {}

Status BudgetKeeper::preload(storage::ReadPool& reads) {
  const int64_t now = clock_.now_ms();
  const int64_t day = periods_.day_start(now);
  const int64_t month = periods_.month_start(now);
  auto conn = reads.acquire();
  auto st = conn->cached(
      "SELECT user_id, "
      "coalesce(sum(CASE WHEN ts >= ?1 THEN coalesce(cost_actual_nanousd, cost_estimated_nanousd, "
      "0) END), 0), "
      "coalesce(sum(coalesce(cost_actual_nanousd, cost_estimated_nanousd, 0)), 0) "
      "FROM usage WHERE ts >= ?2 GROUP BY user_id");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(day, month);
  const std::string dk = periods_.day_key(now);
  const std::string mk = periods_.month_key(now);
  std::lock_guard lock(mu_);
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    const int64_t day_spent = (*st)->column_int64(1);
    const int64_t month_spent = (*st)->column_int64(2);
    counters_["g/d/" + dk].spent += day_spent;
    counters_["g/m/" + mk].spent += month_spent;
    if (!(*st)->column_is_null(0)) {
      const std::string u = fmt::format("u{}", (*st)->column_int64(0));
      counters_[fmt::format("{}/d/{}", u, dk)].spent += day_spent;
      counters_[fmt::format("{}/m/{}", u, mk)].spent += month_spent;
    }
  }
  return {};
}

std::vector<BudgetKeeper::Scope> BudgetKeeper::scopes_for(const llm::CallOptions& o,
                                                          int64_t now) const {
  std::vector<Scope> out;
  const std::string dk = periods_.day_key(now);
  const std::string mk = periods_.month_key(now);
  // The global day and month are always counted (spend alerts read them); cap 0 here means
  // "no cap" only through has_cap below.
  const int64_t d0 = periods_.day_start(now);
  const int64_t d1 = periods_.next_day(now);
  const int64_t m0 = periods_.month_start(now);
  const int64_t m1 = periods_.next_month(now);
  out.push_back(
      {"g/d/" + dk, "daily", dk, options_.global_daily.value_or(-1), false, false, d0, d1});
  out.push_back(
      {"g/m/" + mk, "monthly", mk, options_.global_monthly.value_or(-1), false, false, m0, m1});
  if (o.user_id != 0) {
    const std::string u = fmt::format("u{}", o.user_id);
    if (options_.user_daily) {
      out.push_back({u + "/d/" + dk, "your daily", dk, *options_.user_daily, true, false, d0, d1});
    }
    if (options_.user_monthly) {
      out.push_back(
          {u + "/m/" + mk, "your monthly", mk, *options_.user_monthly, true, false, m0, m1});
    }
  }
  if (options_.per_turn) {
    // A call outside any turn is a turn of its own: its key is never shared.
    out.push_back({o.turn_key.empty() ? std::string() : "t/" + o.turn_key, "per-request", "",
                   *options_.per_turn, false, true});
  }
  return out;
}

std::string BudgetKeeper::refusal(const Scope& s, const Counter& c, int64_t now) const {
  if (s.turn) {
    return fmt::format(
        "This request would go over the per-request LLM budget of {}. Please ask something shorter "
        "or simpler. /commands still work.",
        format_usd(s.cap));
  }
  const bool daily = s.period.size() == 10;
  const int64_t reset = daily ? periods_.next_day(now) : periods_.next_month(now);
  const std::string when =
      daily ? fmt::format("at midnight ({})", periods_.zone())
            : fmt::format("on {} ({})", periods_.day_key(reset), periods_.zone());
  const std::string whose = s.user ? "Your" : "The bot's";
  const std::string which = s.user ? s.name.substr(5) : s.name;  // "your daily" → "daily"
  if (c.spent >= s.cap) {
    return fmt::format(
        "{} {} LLM budget is used up ({} of {}); it resets {}. /commands still work.", whose, which,
        format_usd(c.spent), format_usd(s.cap), when);
  }
  return fmt::format(
      "{} {} LLM budget has too little left for this request ({} of {} left); it resets {}. "
      "/commands still work.",
      whose, which, format_usd(s.cap - c.spent - c.reserved), format_usd(s.cap), when);
}

std::optional<int> BudgetKeeper::default_max_tokens() const {
  if (!options_.any_cap()) return std::nullopt;
  return options_.default_max_tokens;
}

std::optional<int64_t> BudgetKeeper::worst_case(const llm::ResolvedModel& model,
                                                const llm::ChatRequest& request) const {
  int64_t max_tokens = options_.default_max_tokens;
  if (request.max_tokens) {
    max_tokens = *request.max_tokens;
  } else if (auto it = model.options.find("max_tokens");
             it != model.options.end() && it->is_number_integer()) {
    max_tokens = it->get<int64_t>();
  }
  return worst_case(model, Bound{llm::estimate_prompt_tokens(request), max_tokens});
}

std::optional<int64_t> BudgetKeeper::worst_case(const llm::ResolvedModel& model,
                                                const Bound& bound) const {
  return worst_case(model.model, bound);
}

std::optional<int64_t> BudgetKeeper::worst_case(const std::string& model,
                                                const Bound& bound) const {
  const auto prices = prices_.load();
  if (!prices) return std::nullopt;
  const ModelPrice* price = prices->find(model, at(clock_.now_ms()));
  if (price == nullptr) return std::nullopt;
  // Every completion token at the dearer of the output and reasoning prices, every prompt
  // token at the full input price: an upper bound for the counts the request allows.
  const int64_t out = bound.completion_tokens;
  TokenCounts worst{bound.prompt_tokens, out, 0, price->reasoning > price->output ? out : 0};
  auto e = prices->estimate(model, worst, at(clock_.now_ms()));
  if (!e) return std::nullopt;
  return e->nanousd;
}

std::optional<std::pair<int64_t, int>> BudgetKeeper::fit(const std::string& model,
                                                         int64_t prompt_tokens, int asked,
                                                         int64_t room) const {
  // Bisection over the worst case, which grows with the completion tokens.
  std::optional<std::pair<int64_t, int>> best;
  int lo = options_.min_max_tokens;
  int hi = asked - 1;
  while (lo <= hi) {
    const int mid = lo + (hi - lo) / 2;
    const auto cost = worst_case(model, Bound{prompt_tokens, mid});
    if (!cost) return best;
    if (*cost <= room) {
      best = std::pair<int64_t, int>{*cost, mid};
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

std::string BudgetKeeper::who(int64_t user_id) const {
  std::string name = name_user_ ? name_user_(user_id) : std::string();
  return name.empty() ? fmt::format("user {}", user_id) : name;
}

void BudgetKeeper::name_in(AlertRaise& alert, int64_t user_id) const {
  if (alert.subject.find(kUserMark) == std::string::npos &&
      alert.message.find(kUserMark) == std::string::npos) {
    return;
  }
  const std::string name = who(user_id);
  for (std::string* text : {&alert.subject, &alert.message}) {
    for (size_t at = text->find(kUserMark); at != std::string::npos;
         at = text->find(kUserMark, at + name.size())) {
      text->replace(at, std::string_view(kUserMark).size(), name);
    }
  }
}

std::string BudgetKeeper::route(const llm::CallOptions& options, const std::string& role) {
  if (!options_.any_cap()) return role;
  const int64_t now = clock_.now_ms();
  std::vector<AlertRaise> raise;
  bool soft = false;
  std::string user;  // named outside the lock (it may read the database), when needed
  {
    std::lock_guard lock(mu_);
    for (const auto& s : scopes_for(options, now)) {
      if (s.turn || s.cap < 0) continue;
      const auto it = counters_.find(s.key);
      const int64_t used = it == counters_.end() ? 0 : it->second.spent + it->second.reserved;
      if (used * 100 >= s.cap * options_.soft_percent) {
        soft = true;
        raise.push_back(
            {"budget_soft", Severity::warning, s.user ? kUserMark : "global", s.period,
             fmt::format("{} LLM budget {}% used ({} of {}){}",
                         s.user ? fmt::format("{}'s {}", kUserMark, s.name.substr(5)) : s.name,
                         s.cap > 0 ? used * 100 / s.cap : 100, format_usd(used), format_usd(s.cap),
                         options_.cheaper_role.empty()
                             ? ""
                             : "; calls now go to the role " + options_.cheaper_role),
             to_usd(used), to_usd(s.cap), "USD"});
      }
    }
  }
  if (alerts_ != nullptr) {
    for (auto& a : raise) {
      name_in(a, options.user_id);
      alerts_->raise(std::move(a));
    }
  }
  return soft && !options_.cheaper_role.empty() ? options_.cheaper_role : role;
}

bool BudgetKeeper::past_soft(const llm::CallOptions& options) const {
  if (!options_.any_cap()) return false;
  const int64_t now = clock_.now_ms();
  std::lock_guard lock(mu_);
  for (const auto& s : scopes_for(options, now)) {
    if (s.turn || s.cap < 0) continue;
    const auto it = counters_.find(s.key);
    const int64_t used = it == counters_.end() ? 0 : it->second.spent + it->second.reserved;
    if (used * 100 >= s.cap * options_.soft_percent) return true;
  }
  return false;
}

BudgetKeeper::Admission BudgetKeeper::admit(const llm::CallOptions& options,
                                            const llm::ResolvedModel& model,
                                            const llm::ChatRequest& request) {
  const std::optional<int64_t> worst = worst_case(model, request);
  if (!worst || !request.max_tokens || *request.max_tokens <= options_.min_max_tokens) {
    return reserve(options, model, worst);
  }
  // Fewer completion tokens when that is what the remainder covers: the most that fit.
  const int64_t prompt = llm::estimate_prompt_tokens(request);
  const int asked = *request.max_tokens;
  const Shrink shrink = [this, &model, prompt, asked](int64_t room) {
    return fit(model.model, prompt, asked, room);
  };
  Admission a = reserve(options, model, worst, shrink);
  // What confirm needs to fit a smaller call to the database's room too.
  a.prompt_tokens = prompt;
  a.asked_max_tokens = a.max_tokens.value_or(asked);
  return a;
}

BudgetKeeper::Admission BudgetKeeper::admit(const llm::CallOptions& options,
                                            const llm::ResolvedModel& model, const Bound& bound) {
  return reserve(options, model, worst_case(model, bound));
}

BudgetKeeper::Admission BudgetKeeper::reserve(const llm::CallOptions& options,
                                              const llm::ResolvedModel& model,
                                              std::optional<int64_t> worst, const Shrink& shrink) {
  Admission a;
  a.model = model.model;
  if (!worst && options_.refuse_unknown_price) {
    a.ok = false;
    a.refusal =
        "I can't use the language model for this: its price is not known, and the operator "
        "has set such calls to be refused. /commands still work.";
    if (alerts_ != nullptr) {
      alerts_->raise({"unknown_price", Severity::warning, model.model, "",
                      fmt::format("model {} has no price in prices.yaml; calls to it are refused",
                                  model.model),
                      std::nullopt, std::nullopt, ""});
    }
    return a;
  }
  if (!options_.any_cap()) return a;
  int64_t amount = worst.value_or(0);
  const int64_t now = clock_.now_ms();
  std::optional<AlertRaise> hard;
  {
    std::lock_guard lock(mu_);
    if (++admits_ % 1024 == 0) sweep_locked(now);
    const auto scopes = scopes_for(options, now);
    if (shrink) {
      // The least room any cap leaves; none spent out (that is a refusal whatever the size).
      std::optional<int64_t> room;
      bool spent_out = false;
      for (const auto& s : scopes) {
        if (s.cap < 0) continue;
        const Counter& c = s.key.empty() ? Counter{} : counters_[s.key];
        spent_out = spent_out || c.spent >= s.cap;
        const int64_t left = s.cap - c.spent - c.reserved;
        room = room ? std::min(*room, left) : left;
      }
      if (!spent_out && room && amount > *room) {
        if (auto fit = shrink(*room)) {
          amount = fit->first;
          a.max_tokens = fit->second;
        }
      }
    }
    for (const auto& s : scopes) {
      if (s.cap < 0) continue;
      const Counter& c = s.key.empty() ? Counter{} : counters_[s.key];
      if (c.spent >= s.cap || c.spent + c.reserved + amount > s.cap) {
        a.ok = false;
        a.refusal = refusal(s, c, now);
        if (!s.turn) hard = hard_alert(s, c, amount, model.model);
        break;
      }
    }
    if (a.ok) {
      a.reserved_nanousd = amount;
      for (const auto& s : scopes) {
        if (s.key.empty()) continue;
        Counter& c = counters_[s.key];
        c.reserved += amount;
        c.touched_ms = now;
        a.scopes.push_back(s.key);
      }
    }
  }
  if (hard && alerts_ != nullptr) {
    name_in(*hard, options.user_id);
    alerts_->raise(std::move(*hard));
  }
  return a;
}

AlertRaise BudgetKeeper::hard_alert(const Scope& s, const Counter& c, int64_t amount,
                                    const std::string& model) const {
  const std::string whose = s.user ? fmt::format("{}'s {}", kUserMark, s.name.substr(5)) : s.name;
  return AlertRaise{
      "budget_hard",
      Severity::critical,
      s.user ? kUserMark : "global",
      s.period,
      c.spent >= s.cap
          ? fmt::format("{} LLM budget reached ({} of {}): LLM calls are refused", whose,
                        format_usd(c.spent), format_usd(s.cap))
          : fmt::format(
                "{} LLM budget has too little left ({} spent, {} in flight, cap {}) for a call "
                "whose worst case is {} (model {}): such calls are refused",
                whose, format_usd(c.spent), format_usd(c.reserved), format_usd(s.cap),
                format_usd(amount), model),
      to_usd(c.spent),
      to_usd(s.cap),
      "USD"};
}

void BudgetKeeper::unreserve(const Admission& admission) {
  std::lock_guard lock(mu_);
  for (const auto& key : admission.scopes) {
    if (auto it = counters_.find(key); it != counters_.end()) {
      it->second.reserved = std::max<int64_t>(0, it->second.reserved - admission.reserved_nanousd);
    }
  }
}

net::asio::awaitable<BudgetKeeper::Admission> BudgetKeeper::confirm(
    const Admission& admitted, const llm::CallOptions& options,
    std::chrono::steady_clock::time_point deadline) {
  Admission a = admitted;
  if (spend_ == nullptr || !a.ok || !options_.any_cap()) co_return a;
  const int64_t now = clock_.now_ms();
  std::vector<Scope> shared;
  for (auto& s : scopes_for(options, now)) {
    if (!s.turn && s.cap >= 0) shared.push_back(std::move(s));
  }
  if (shared.empty()) co_return a;

  storage::SpendHoldRequest req;
  for (const auto& s : shared) {
    req.scopes.push_back({s.key, s.user ? std::optional<int64_t>(options.user_id) : std::nullopt,
                          s.from_ms, s.to_ms, s.cap});
  }
  req.amount = a.reserved_nanousd;
  if (a.asked_max_tokens) {
    req.shrink = [this, model = a.model, prompt = a.prompt_tokens, asked = *a.asked_max_tokens](
                     int64_t room) { return fit(model, prompt, asked, room); };
  }
  // Held until the call's deadline could have passed (an hour at most), and a minute more: a
  // process that dies with a hold stops holding then.
  constexpr int64_t kHourMs = 3'600'000;
  const auto left = deadline - std::chrono::steady_clock::now();
  const int64_t left_ms =
      deadline == std::chrono::steady_clock::time_point::max()
          ? kHourMs
          : std::clamp<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count(),
                                0, kHourMs);
  req.now_ms = now;
  req.expires_ms = now + left_ms + 60'000;
  req.owner = owner_;

  using HoldResult = Result<storage::SpendHoldResult>;
  const std::function<void(std::function<void(HoldResult)>)> start =
      [this, &req](std::function<void(HoldResult)> done) {
        spend_->hold(std::move(req), std::move(done));
      };
  HoldResult held = co_await net::await_callback<HoldResult>(start);

  if (!held) {
    // The database cannot say what the other processes spent: refused rather than unbounded.
    unreserve(a);
    spdlog::warn("LLM call for user {} not sent: the budget could not be checked: {}",
                 options.user_id, held.error().message);
    a.ok = false;
    a.refusal =
        "I can't check the LLM budget right now (the database is not answering), so I did not "
        "call the model. Please try again in a moment. /commands still work.";
    co_return a;
  }
  const storage::SpendHoldResult& r = *held;
  std::optional<AlertRaise> hard;
  {
    // What every process spent refreshes this process's counters (routing, alerts, gauges).
    std::lock_guard lock(mu_);
    for (const auto& f : r.figures) {
      Counter& c = counters_[f.key];
      c.spent = std::max(c.spent, f.spent);
      c.touched_ms = now;
    }
    if (r.ok) {
      if (r.amount != a.reserved_nanousd) {
        // A smaller call fitted the room the other processes left.
        for (const auto& key : a.scopes) {
          if (auto it = counters_.find(key); it != counters_.end()) {
            it->second.reserved += r.amount - a.reserved_nanousd;
          }
        }
        a.reserved_nanousd = r.amount;
      }
    }
  }
  if (r.ok) {
    a.spend_hold = r.hold;
    if (r.shrunk_to) a.max_tokens = *r.shrunk_to;
    co_return a;
  }
  unreserve(a);
  const size_t i = r.refused_by.value_or(0);
  const Scope& s = shared[std::min(i, shared.size() - 1)];
  const storage::SpendFigures& f = r.figures[std::min(i, r.figures.size() - 1)];
  const Counter c{f.spent, f.held, now};
  a.ok = false;
  a.refusal = refusal(s, c, now);
  a.max_tokens.reset();
  hard = hard_alert(s, c, a.reserved_nanousd, a.model);
  if (alerts_ != nullptr) {
    name_in(*hard, options.user_id);
    alerts_->raise(std::move(*hard));
  }
  co_return a;
}

void BudgetKeeper::settle(const Admission& admission, const llm::CallOptions& options,
                          const llm::Attempt& attempt) {
  const int64_t now = clock_.now_ms();
  const int64_t cost = price_attempt(prices_.load().get(), attempt, now).counted();
  std::vector<AlertRaise> raise;
  {
    std::lock_guard lock(mu_);
    for (const auto& key : admission.scopes) {
      auto it = counters_.find(key);
      if (it != counters_.end()) {
        it->second.reserved =
            std::max<int64_t>(0, it->second.reserved - admission.reserved_nanousd);
      }
    }
    // The cost counts in the periods current now (a call across midnight counts in the new day).
    for (const auto& s : scopes_for(options, now)) {
      if (s.key.empty()) continue;
      Counter& c = counters_[s.key];
      c.spent += cost;
      c.touched_ms = now;
      if (s.user || s.turn) continue;
      const auto& threshold =
          s.period.size() == 10 ? options_.alert_daily_spend : options_.alert_monthly_spend;
      // Raised on every settle past the threshold: the sink keeps one per period.
      if (threshold && c.spent >= *threshold) {
        raise.push_back({s.period.size() == 10 ? "daily_spend" : "monthly_spend", Severity::warning,
                         "", s.period,
                         fmt::format("{} LLM spend reached {} (alert threshold {})", s.name,
                                     format_usd(c.spent), format_usd(*threshold)),
                         to_usd(c.spent), to_usd(*threshold), "USD"});
      }
    }
  }
  if (alerts_ != nullptr) {
    for (auto& a : raise) alerts_->raise(std::move(a));
  }
}

void BudgetKeeper::sweep_locked(int64_t now) {
  const std::string dk = periods_.day_key(now);
  const std::string mk = periods_.month_key(now);
  // Yesterday's and its month's stay too: a clock set back over midnight (an NTP correction)
  // is in that day again, and its spend must still count.
  constexpr int64_t kDayMs = 86'400'000;
  const std::string prev_dk = periods_.day_key(now - kDayMs);
  const std::string prev_mk = periods_.month_key(now - kDayMs);
  std::erase_if(counters_, [&](const auto& kv) {
    const auto& [key, c] = kv;
    if (c.reserved != 0) return false;
    if (key.rfind("t/", 0) == 0) return now - c.touched_ms > kTurnIdleMs;
    // Period counters of a period that is over.
    const auto slash = key.rfind('/');
    const std::string period = key.substr(slash + 1);
    return period != dk && period != mk && period != prev_dk && period != prev_mk;
  });
}

std::vector<BudgetKeeper::Gauge> BudgetKeeper::gauges(std::optional<int64_t> user_id) const {
  const int64_t now = clock_.now_ms();
  llm::CallOptions o;
  o.user_id = user_id.value_or(0);
  std::vector<Gauge> out;
  std::lock_guard lock(mu_);
  for (const auto& s : scopes_for(o, now)) {
    if (s.turn || s.cap < 0) continue;
    Gauge g;
    g.name = s.user ? fmt::format("user {} {}", o.user_id, s.name.substr(5)) : "global " + s.name;
    g.period = s.period;
    g.cap = s.cap;
    if (auto it = counters_.find(s.key); it != counters_.end()) {
      g.spent = it->second.spent;
      g.reserved = it->second.reserved;
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace parley::bot::money
