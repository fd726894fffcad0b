// `parley run`: the bot serving its channels until SIGINT/SIGTERM — the console (the terminal
// it runs in) and HTTP (POST /v1/messages, /healthz, /readyz) — with replies owed from before
// a restart and fired reminders sent through the channels that can push, capabilities.yaml
// reloaded when it changes, one process per database.
#pragma once

#include <chrono>
#include <string>

#include "parley/bot/config.h"

namespace parley::bot {

struct RunOptions {
  std::string http_listen;  // HOST:PORT; empty: http.listen from the configuration
  std::chrono::seconds grace{20};  // running turns may finish within this after a stop signal
  // The terminal as a channel: automatic = when stdin is a terminal (Ctrl-D there stops the
  // bot); on = also from a pipe or file (its end only ends the console's input).
  enum class Console { automatic, on, off };
  Console console = Console::automatic;
};

int run_bot(const Config& config, const RunOptions& options);

}  // namespace parley::bot
