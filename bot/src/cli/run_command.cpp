#include "cli/run_command.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "app/exit_codes.h"
#include "parley/bot/app/app.h"

#ifndef PARLEY_VERSION
#define PARLEY_VERSION "0.0.0"
#endif

namespace parley::bot::cli {

int run_bot(const config::Config& cfg, const RunOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  int rc = app::kExitFailed;
  auto app = app::App::open(cfg, app::Mode::serve, rc);
  if (!app) return rc;
  auto built = app::serve_channels(*app, cfg, options.channels);
  if (!built) return app::report_error(built.error());

  // Every channel but the console starts before the banner; the console after it, since it
  // writes to the terminal from then on.
  std::vector<channels::Channel*> serving;
  channels::Channel* console = nullptr;
  for (auto& channel : *built) {
    if (channel->name() == "console") {
      console = channel.get();
      continue;
    }
    if (auto st = app->add_channel(*channel); !st.ok()) {
      app->shutdown();
      return app::report_error(st.error());
    }
    serving.push_back(channel.get());
  }
  // Whoever waits for the ready line finds /readyz answering 200.
  app->mark_ready();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::string where;
  for (const auto* channel : serving) where += (where.empty() ? "" : ", ") + channel->banner();
  fmt::print("parley {} ready in {} ms: {} (database {})\n", PARLEY_VERSION, ms.count(), where,
             cfg.storage.path.string());
  fmt::print("llm: {}\n", app->llm_line());
  fmt::print("memory: {}\n", app->memory_line());
  fmt::print("{}\n", app->monitor_state());
  if (console != nullptr && ::isatty(STDIN_FILENO) == 1) {
    fmt::print("console: talk to parley here; /help lists commands; Ctrl-D stops it\n");
  }
  std::fflush(stdout);
  if (console != nullptr) {
    if (auto st = app->add_channel(*console); !st.ok()) {
      spdlog::warn("console: {}; serving the other channels", st.error().message);
    } else {
      serving.push_back(console);
    }
  }
  // After every channel: the outbox pump sends what is owed to the channels it knows.
  app->start();

  app->wait();
  for (auto* channel : serving) channel->stop();
  app->shutdown(options.grace, serving);
  spdlog::info("stopped; closing the database");
  return app::kExitOk;
}

}  // namespace parley::bot::cli
