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
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

// "Monday 23 November 2026, 14:05 (Europe/Lisbon, WET)"; invalid_argument for an unknown zone.
Result<std::string> format_now(std::chrono::system_clock::time_point now, std::string_view tz);

// Every known variable, filled from `ctx`.
Result<Template::Values> values_for(const RenderContext& ctx);

}  // namespace parley::prompts
