// The values a turn fills into a prompt template, with `now` shown in the user's time zone.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "parley/base/result.h"
#include "parley/prompts/template.h"

namespace parley::prompts {

struct RenderContext {
  std::string user_name;
  std::string user_timezone = "UTC";  // an IANA name, e.g. Europe/Lisbon
  std::string channel;
  std::string capabilities;
  std::string memories;
  std::string summary;
  std::string events;  // what is coming up for the user (the events built-in)
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

// "Monday 23 November 2026, 14:05 (Europe/Lisbon, WET)"; invalid_argument for an unknown zone.
Result<std::string> format_now(std::chrono::system_clock::time_point now, std::string_view tz);

// "Tue 08 Dec 18:00" (or "Tue 08 Dec" for a whole day) in zone `tz`; UTC for an unknown zone.
std::string format_short(std::chrono::system_clock::time_point t, std::string_view tz,
                         bool day_only);

// Every known variable, filled from `ctx`.
Result<Template::Values> values_for(const RenderContext& ctx);

}  // namespace parley::prompts
