// Epoch milliseconds (how parley stores time) as text, in UTC: one copy of each format.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley {

// "2026-12-05T11:28:38Z" (seconds, the sub-second part dropped).
std::string iso_utc(int64_t ms);
// "2026-12-05": the UTC day a moment falls in (before 1970 too).
std::string utc_day(int64_t ms);
// "2026-12-05 11:28": for tables people read.
std::string utc_minute(int64_t ms);
// The moment "2026-12-05" (midnight UTC), "2026-12-05T11:28[:38][.123]" (UTC) or the same
// with "Z" or an offset ("+01:00", "-0530") names; nullopt for anything else or a date that
// does not exist (2026-02-30).
std::optional<int64_t> parse_iso_utc(std::string_view text);

}  // namespace parley
