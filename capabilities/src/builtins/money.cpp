// credits and alerts: the LLM account's money for admins — balance, limit, runway, budgets
// (/credits) and the alerts raised about them (/alerts, /alerts all, /alerts ack ID). Both ask
// the process's MoneyDesk (Services::money); without one (a process with no accounting) they
// say so.
#include <charconv>

#include "builtins/builtins_internal.h"
#include "parley/capabilities/money_desk.h"

namespace parley::capabilities::builtins {
namespace {

using nlohmann::json;

Result<const MoneyDesk*> desk_of(const InvokeContext& ctx, std::string_view capability) {
  if (ctx.services == nullptr || ctx.services->money == nullptr) {
    return fail(ErrorCode::unavailable,
                fmt::format("{}: this process keeps no accounts", capability));
  }
  return ctx.services->money;
}

class Credits final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "credits"; }
  [[nodiscard]] std::string_view description() const override {
    return "The LLM account's balance, limit, runway and the budgets (admins).";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"credit", "credits", "balance", "budget", "runway", "limit"};
  }
  [[nodiscard]] json parameters() const override {
    return {{"type", "object"}, {"additionalProperties", false}, {"properties", json::object()}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::none, true, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"credits", "/credits", "the LLM account's balance, runway and budgets (admins)"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view, std::string_view text) const override {
    if (!trim(text).empty()) {
      return fail(ErrorCode::invalid_argument, "credits: /credits takes no arguments");
    }
    return json::object();
  }

 protected:
  Result<json> invoke_(const InvokeContext& ctx, const json&) override {
    auto desk = desk_of(ctx, "credits");
    if (!desk) return fail(std::move(desk).error());
    return (*desk)->credits();
  }
};

class Alerts final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "alerts"; }
  [[nodiscard]] std::string_view description() const override {
    return "Alerts about LLM spend and credit (admins): list them, or acknowledge one by id.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"alert", "alerts", "warning", "acknowledge", "ack"};
  }
  [[nodiscard]] json parameters() const override {
    return {
        {"type", "object"},
        {"additionalProperties", false},
        {"properties",
         {{"action", {{"type", "string"}, {"enum", {"list", "all", "ack"}}, {"default", "list"}}},
          {"id",
           {{"type", "integer"},
            {"minimum", 1},
            {"description", "the alert to acknowledge (ack)"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::idempotent, true, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"alerts", "/alerts [all | ack ID]",
             "open alerts about LLM spend and credit; ack one (admins)"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view, std::string_view text) const override {
    auto [word, rest] = split_first_word(trim(text));
    if (word.empty() || word == "list") return json{{"action", "list"}};
    if (word == "all") return json{{"action", "all"}};
    if (word == "ack") {
      int64_t id = 0;
      const auto r = std::from_chars(rest.data(), rest.data() + rest.size(), id);
      if (rest.empty() || r.ec != std::errc() || r.ptr != rest.data() + rest.size() || id < 1) {
        return fail(ErrorCode::invalid_argument,
                    fmt::format("alerts: expected /alerts ack ID with a number, got '{}'", rest));
      }
      return json{{"action", "ack"}, {"id", id}};
    }
    return fail(
        ErrorCode::invalid_argument,
        fmt::format("alerts: unknown '{}' (expected /alerts, /alerts all or /alerts ack ID)",
                    word));
  }

 protected:
  Result<json> invoke_(const InvokeContext& ctx, const json& args) override {
    auto desk = desk_of(ctx, "alerts");
    if (!desk) return fail(std::move(desk).error());
    const std::string action = args.value("action", std::string("list"));
    if (action == "ack") {
      if (!args.contains("id")) {
        return fail(ErrorCode::invalid_argument, "alerts: ack needs arguments.id");
      }
      const std::string by =
          ctx.channel.empty() ? ctx.caller.name : ctx.channel + ":" + ctx.caller.name;
      return (*desk)->ack(args.at("id").get<int64_t>(), by);
    }
    return (*desk)->alerts(action != "all");
  }
};

}  // namespace

std::unique_ptr<Capability> make_credits() { return std::make_unique<Credits>(); }
std::unique_ptr<Capability> make_alerts() { return std::make_unique<Alerts>(); }

}  // namespace parley::capabilities::builtins
