// The built-in capabilities (calc, time, todo, notes, …), one file each under
// capabilities/src/builtins/. Registration is explicit, called from main: static-initializer
// registration is silently dropped from static libraries.
//
// Thread safety: register_builtins() fills a Registry that is not yet shared; call it at
// start-up.
#pragma once

#include "parley/base/result.h"
#include "parley/capabilities/capability.h"

namespace parley::capabilities {

// Adds every built-in capability to `registry`; fails (already_exists, invalid_argument) when
// one of them clashes with what the registry already holds.
Status register_builtins(Registry& registry);

}  // namespace parley::capabilities
