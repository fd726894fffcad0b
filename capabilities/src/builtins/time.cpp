// time: the current date and time in an IANA time zone, the caller's by default. Reads the
// clock of the call (Services::clock) so tests can fix it; zones come from the system tzdata.
#include <date/date.h>
#include <date/tz.h>

#include <stdexcept>

#include "builtins/builtins_internal.h"

namespace parley::capabilities::builtins {
namespace {

using nlohmann::json;

constexpr size_t kMaxZone = 64;  // characters; the longest IANA name has 32

class Time final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "time"; }
  [[nodiscard]] std::string_view description() const override {
    return "The current date and time in a time zone.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"clock", "date", "zone", "utc", "gmt", "hour", "weekday", "what day"};
  }
  [[nodiscard]] json parameters() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"properties",
             {{"zone",
               {{"type", "string"},
                {"maxLength", kMaxZone},
                {"description", "IANA name, e.g. Europe/Paris; default: the user's"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::none, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"time", "/time [ZONE]", "the current time, e.g. /time Europe/Paris"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view /*command*/,
                                           std::string_view text) const override {
    const auto zone = trim(text);
    if (zone.empty()) return json::object();
    // Longer than any IANA name (and than the schema's maxLength, whose error would name a JSON
    // field the user never wrote).
    if (utf8_length(zone) > kMaxZone) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("time: unknown time zone '{}…' (expected an IANA name such as "
                              "Europe/Paris)",
                              utf8_first_chars(zone, 40)));
    }
    return json{{"zone", std::string(zone)}};
  }

 protected:
  Result<json> invoke_(const InvokeContext& ctx, const json& args) override {
    std::string zone_name = args.value("zone", std::string());
    if (trim(zone_name).empty()) zone_name = ctx.caller.time_zone;
    if (trim(zone_name).empty()) zone_name = "UTC";
    zone_name = std::string(trim(zone_name));

    const date::time_zone* zone = nullptr;
    try {
      zone = date::locate_zone(zone_name);
    } catch (const std::runtime_error&) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("time: unknown time zone '{}' (expected an IANA name such as "
                              "Europe/Paris)",
                              zone_name));
    }
    const std::chrono::sys_time<std::chrono::milliseconds> now{
        std::chrono::milliseconds{clock_of(ctx).now_ms()}};
    const auto local = date::make_zoned(zone, date::floor<std::chrono::seconds>(now));
    const auto offset = date::format("%Ez", local);  // "+01:00"
    const auto day = date::year_month_day{date::floor<date::days>(local.get_local_time())};
    const std::string text = fmt::format(
        "{} {} {}, {} ({}, UTC{})", date::format("%A", local), static_cast<unsigned>(day.day()),
        date::format("%B %Y", local), date::format("%H:%M", local), zone_name, offset);
    return json{{"zone", zone_name},
                {"iso", date::format("%Y-%m-%dT%H:%M:%S", local) + offset},
                {"text", text}};
  }
};

}  // namespace

std::unique_ptr<Capability> make_time() { return std::make_unique<Time>(); }

}  // namespace parley::capabilities::builtins
