// Exit codes of the `parley` command line, and the one-line error report every command uses.
#pragma once

#include <fmt/format.h>

#include <cstdio>

#include "parley/base/result.h"

namespace parley::bot::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;    // a check or an operation failed
inline constexpr int kExitBadInput = 2;  // usage, bad config or text, unknown names, a newer db

inline int exit_code_for(const Error& e) {
  switch (e.code) {
    case ErrorCode::invalid_argument:
    case ErrorCode::not_found:
    case ErrorCode::already_exists:
    case ErrorCode::permission_denied: return kExitBadInput;
    default: return kExitFailed;
  }
}

// Prints "parley: <message>" on stderr; returns the exit code for `e`.
inline int report_error(const Error& e) {
  fmt::print(stderr, "parley: {}\n", e.message);
  return exit_code_for(e);
}

}  // namespace parley::bot::app
