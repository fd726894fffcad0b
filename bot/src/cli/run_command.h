// `parley run`: the bot serving its channels until SIGINT/SIGTERM — the console (the terminal
// it runs in), HTTP (POST /v1/messages, /healthz, /readyz) and whatever `channels:` configures —
// with replies owed from before a restart and fired reminders sent through the channels that
// can push, capabilities.yaml reloaded when it changes, one process per database.
#pragma once

#include <chrono>

#include "parley/bot/app/channels.h"
#include "parley/bot/config/config.h"

namespace parley::bot::cli {

struct RunOptions {
  app::ChannelChoices channels;
  std::chrono::seconds grace{20};  // running turns may finish within this after a stop signal
};

int run_bot(const config::Config& config, const RunOptions& options);

}  // namespace parley::bot::cli
