#include "parley/capabilities/builtins.h"

#include "builtins/builtins_internal.h"

namespace parley::capabilities {

// One line per built-in: adding one is a new file in this folder plus a line here.
Status register_builtins(Registry& registry) {
  PARLEY_TRY(registry.add(builtins::make_calc()));
  PARLEY_TRY(registry.add(builtins::make_time()));
  PARLEY_TRY(registry.add(builtins::make_todo()));
  PARLEY_TRY(registry.add(builtins::make_notes()));
  PARLEY_TRY(registry.add(builtins::make_memory()));
  PARLEY_TRY(registry.add(builtins::make_reminders()));
  PARLEY_TRY(registry.add(builtins::make_web_fetch()));
  PARLEY_TRY(registry.add(builtins::make_usage()));
  PARLEY_TRY(registry.add(builtins::make_credits()));
  PARLEY_TRY(registry.add(builtins::make_alerts()));
  PARLEY_TRY(registry.add(builtins::make_account()));
  PARLEY_TRY(registry.add(builtins::make_expenses()));
  PARLEY_TRY(registry.add(builtins::make_lists()));
  PARLEY_TRY(registry.add(builtins::make_habits()));
  PARLEY_TRY(registry.add(builtins::make_goals()));
  PARLEY_TRY(registry.add(builtins::make_journal()));
  PARLEY_TRY(registry.add(builtins::make_mood()));
  PARLEY_TRY(registry.add(builtins::make_decisions()));
  PARLEY_TRY(registry.add(builtins::make_events()));
  return {};
}

}  // namespace parley::capabilities
