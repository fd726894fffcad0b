// A user's upcoming events, for the bot's prompt. The `events` built-in (capabilities/src/
// builtins/events.cpp) adds, lists, updates, removes and exports a user's events (table events,
// migration 0011); this is the read the bot needs to mention what is coming up when it is
// relevant.
//
// Thread safety: safe from any thread; reads the last committed state through the read pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "parley/base/result.h"

namespace parley::storage {
class Store;
}

namespace parley::capabilities {

struct UpcomingEvent {
  int64_t id = 0;
  std::string title;
  int64_t starts_at = 0;  // Unix epoch ms, UTC; an all-day event: the day's first instant in zone
  std::string zone;       // IANA name the event was given in (its day, for an all-day event)
  bool all_day = false;
  std::optional<int64_t> duration_minutes;  // none: a moment (timed) or one day (all-day)
  std::string place;
  std::vector<std::string> people;
  int importance = 3;  // 1 (minor) … 5 (most important)
};

// Events of `user_id` that are not over at `now_ms` (still running, or starting later) and start
// before `now_ms + within_ms`, in start order (then by id), at most `limit`. An event without a
// duration is over once it has started; an all-day event lasts until its last day ends in its
// zone.
Result<std::vector<UpcomingEvent>> upcoming_events(storage::Store& store, int64_t user_id,
                                                   int64_t now_ms, int64_t within_ms, size_t limit);

}  // namespace parley::capabilities
