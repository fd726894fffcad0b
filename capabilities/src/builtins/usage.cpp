// usage: the caller's own LLM calls, tokens and cost for a period (today, this week, this month
// — calendar periods in the caller's time zone — or everything); admins may ask for everyone.
// Reads the usage ledger (storage::UsageRepository); money is summed in integer nano-dollars
// and shown in dollars.
#include <date/date.h>
#include <date/tz.h>

#include <stdexcept>

#include "builtins/builtins_internal.h"

namespace parley::capabilities::builtins {
namespace {

using nlohmann::json;

// [from, to) in epoch ms for the period, in `zone`, around `now_ms`.
Result<std::pair<int64_t, int64_t>> period_bounds(const std::string& period,
                                                  const std::string& zone_name, int64_t now_ms) {
  if (period == "all") return std::pair<int64_t, int64_t>{0, INT64_MAX};
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(zone_name.empty() ? "UTC" : zone_name);
  } catch (const std::runtime_error&) {
    zone = date::locate_zone("UTC");
  }
  using std::chrono::milliseconds;
  const date::sys_time<milliseconds> now{milliseconds{now_ms}};
  const auto local = zone->to_local(now);
  const auto today = date::floor<date::days>(local);
  date::local_days from = today;
  date::local_days to = today + date::days{1};
  if (period == "week") {
    // Weeks start on Monday.
    const date::weekday wd{today};
    from = today - (wd - date::Monday);
    to = from + date::days{7};
  } else if (period == "month") {
    const date::year_month_day ymd{today};
    from = date::local_days{ymd.year() / ymd.month() / 1};
    to = date::local_days{(ymd.year() / ymd.month() + date::months{1}) / 1};
  } else if (period != "today") {
    return fail(
        ErrorCode::invalid_argument,
        fmt::format("usage: unknown period '{}' (expected today, week, month or all)", period));
  }
  auto start = [&](date::local_days d) {
    return std::chrono::duration_cast<milliseconds>(
               zone->to_sys(d, date::choose::earliest).time_since_epoch())
        .count();
  };
  return std::pair<int64_t, int64_t>{start(from), start(to)};
}

class Usage final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "usage"; }
  [[nodiscard]] std::string_view description() const override {
    return "The user's LLM usage: calls, tokens and cost.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"token", "cost", "spend", "spent", "billing", "credit", "llm", "quota"};
  }
  [[nodiscard]] json parameters() const override {
    return {
        {"type", "object"},
        {"additionalProperties", false},
        {"properties",
         {{"period",
           {{"type", "string"}, {"enum", {"today", "week", "month", "all"}}, {"default", "today"}}},
          {"everyone", {{"type", "boolean"}, {"description", "all users (admins only)"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::none, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"usage", "/usage [today|week|month|all] [everyone]",
             "your LLM calls, tokens and cost for a period"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view /*command*/,
                                           std::string_view text) const override {
    json args = json::object();
    auto rest = trim(text);
    while (!rest.empty()) {
      auto [word, tail] = split_first_word(rest);
      if (word == "everyone" || word == "all-users") {
        args["everyone"] = true;
      } else if (!args.contains("period") &&
                 (word == "today" || word == "week" || word == "month" || word == "all")) {
        args["period"] = std::string(word);
      } else {
        // Not a period the schema would refuse later as "arguments.period: …", nor a second
        // one silently taking the first one's place.
        return fail(ErrorCode::invalid_argument,
                    fmt::format("usage: '{}' is not a period (today, week, month or all) nor "
                                "everyone; usage: /usage [today|week|month|all] [everyone]",
                                word));
      }
      rest = tail;
    }
    return args;
  }

 protected:
  Result<json> invoke_(const InvokeContext& ctx, const json& args) override {
    auto scope = scope_of(ctx, "usage");
    if (!scope) return fail(std::move(scope).error());
    const std::string period = args.value("period", std::string("today"));
    const bool everyone = args.value("everyone", false);
    if (everyone && !ctx.caller.admin) {
      return fail(ErrorCode::permission_denied, "usage: only admins may see everyone's usage");
    }
    auto bounds = period_bounds(period, ctx.caller.time_zone, clock_of(ctx).now_ms());
    if (!bounds) return fail(std::move(bounds).error());
    storage::UsageQuery q;
    if (!everyone) q.user_id = (*scope)->user_id();
    q.from_ms = bounds->first;
    q.to_ms = bounds->second;
    auto s = (*scope)->store().usage().summary(q);
    if (!s) return fail(std::move(s).error());
    const std::string who = everyone ? "Everyone" : "You";
    const std::string when = period == "all"     ? "in all"
                             : period == "today" ? "today"
                                                 : "this " + period;
    std::string text;
    if (s->calls == 0) {
      text = fmt::format("{} made no LLM calls {}.", who, when == "in all" ? "yet" : when);
    } else {
      text = fmt::format("{} {}: {} LLM call{}{}, {} prompt + {} completion tokens", who, when,
                         s->calls, s->calls == 1 ? "" : "s",
                         s->failed > 0 ? fmt::format(" ({} failed)", s->failed) : "",
                         s->prompt_tokens, s->completion_tokens);
      if (s->cost_actual_nanousd > 0) {
        text += fmt::format(", {} billed", format_usd(s->cost_actual_nanousd));
      }
      if (s->cost_estimated_nanousd > 0) {
        text += fmt::format(", {} estimated", format_usd(s->cost_estimated_nanousd));
      }
      if (s->calls_without_cost > 0) {
        text += fmt::format(" ({} without a known cost)", s->calls_without_cost);
      }
      text += ".";
    }
    return json{{"period", period},
                {"everyone", everyone},
                {"from", iso_utc(q.from_ms)},
                {"to", q.to_ms == INT64_MAX ? json(nullptr) : json(iso_utc(q.to_ms))},
                {"calls", s->calls},
                {"failed", s->failed},
                {"prompt_tokens", s->prompt_tokens},
                {"completion_tokens", s->completion_tokens},
                {"cached_tokens", s->cached_tokens},
                {"reasoning_tokens", s->reasoning_tokens},
                {"cost_actual_usd", static_cast<double>(s->cost_actual_nanousd) / 1e9},
                {"cost_estimated_usd", static_cast<double>(s->cost_estimated_nanousd) / 1e9},
                {"calls_without_cost", s->calls_without_cost},
                {"text", text}};
  }
};

}  // namespace

std::unique_ptr<Capability> make_usage() { return std::make_unique<Usage>(); }

}  // namespace parley::capabilities::builtins
