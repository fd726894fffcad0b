#include "parley/prompts/render.h"

#include <date/tz.h>
#include <fmt/format.h>

#include <exception>

namespace parley::prompts {

Result<std::string> format_now(std::chrono::system_clock::time_point now, std::string_view tz) {
  try {
    const auto* zone = date::locate_zone(tz);
    const auto local = date::make_zoned(zone, date::floor<std::chrono::minutes>(now));
    return date::format("%A %d %B %Y, %H:%M", local) +
           fmt::format(" ({}, {})", tz, date::format("%Z", local));
  } catch (const std::exception& e) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("unknown time zone '{}': {}", tz, e.what()));
  }
}

std::string format_short(std::chrono::system_clock::time_point t, std::string_view tz,
                         bool day_only) {
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(tz);
  } catch (const std::exception&) {
    zone = date::locate_zone("UTC");
  }
  const auto local = date::make_zoned(zone, date::floor<std::chrono::minutes>(t));
  return date::format(day_only ? "%a %d %b" : "%a %d %b %H:%M", local);
}

Result<Template::Values> values_for(const RenderContext& ctx) {
  auto now = format_now(ctx.now, ctx.user_timezone);
  if (!now) return fail(std::move(now).error());
  return Template::Values{
      {"user.name", ctx.user_name},
      {"channel", ctx.channel},
      {"now", *now},
      {"capabilities", ctx.capabilities},
      {"memories", ctx.memories},
      {"summary", ctx.summary},
      {"events", ctx.events},
  };
}

}  // namespace parley::prompts
