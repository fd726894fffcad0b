// Epoch milliseconds (how parley stores time) as text, in UTC: one copy of each format.
#pragma once

#include <cstdint>
#include <string>

namespace parley {

// "2026-12-05T11:28:38Z" (seconds, the sub-second part dropped).
std::string iso_utc(int64_t ms);
// "2026-12-05": the UTC day a moment falls in (before 1970 too).
std::string utc_day(int64_t ms);
// "2026-12-05 11:28": for tables people read.
std::string utc_minute(int64_t ms);

}  // namespace parley
