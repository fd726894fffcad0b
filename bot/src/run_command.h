// `parley run`: the bot serving its channels until SIGINT/SIGTERM — the HTTP channel
// (POST /v1/messages, /healthz, /readyz), capabilities.yaml reloaded when it changes, one
// process per database.
#pragma once

#include <chrono>
#include <string>

#include "parley/bot/config.h"

namespace parley::bot {

struct RunOptions {
  std::string http_listen;  // HOST:PORT; empty: http.listen from the configuration
  std::chrono::seconds grace{20};  // running turns may finish within this after a stop signal
};

int run_bot(const Config& config, const RunOptions& options);

}  // namespace parley::bot
