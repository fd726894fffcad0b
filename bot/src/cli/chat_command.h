// `parley chat`: an interactive conversation in the terminal — the console channel (line
// editing and history on a terminal, plain lines from a pipe) over the whole bot, on the
// configured database. Works beside a running `parley run` (takes no instance lock).
// Ends at Ctrl-D (end of input), /quit or /exit, or SIGINT/SIGTERM (a second one exits at once).
#pragma once

#include <string>

#include "parley/bot/config/config.h"

namespace parley::bot::cli {

struct ChatOptions {
  std::string user;          // the console user; empty: $USER, else "console"
  std::string conversation;  // empty: "chat-<user>"
};

int run_chat(const config::Config& config, const ChatOptions& options);

}  // namespace parley::bot::cli
