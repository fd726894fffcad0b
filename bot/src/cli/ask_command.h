// `parley ask "text"`: one turn through the whole bot — stored, answered (a /command or the
// LLM with tools), the reply stored, queued in the outbox, printed, marked sent. Works on the
// same database as a running `parley run`.
#pragma once

#include <string>

#include "parley/bot/config/config.h"

namespace parley::bot::cli {

struct AskOptions {
  std::string text;
  std::string user;          // the console user; empty: $USER, else "console"
  std::string conversation;  // empty: "ask-<user>"
  bool json = false;
};

int run_ask(const config::Config& config, const AskOptions& options);

}  // namespace parley::bot::cli
