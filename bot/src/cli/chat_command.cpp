#include "cli/chat_command.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>

#include "app/exit_codes.h"
#include "parley/bot/app/app.h"
#include "parley/bot/channels/channel.h"
#include "parley/bot/channels/console/console.h"
#include "parley/bot/pipeline/dispatcher.h"
#include "parley/bot/pipeline/lanes.h"
#include "parley/bot/pipeline/turn.h"

namespace parley::bot::cli {

namespace asio = net::asio;

namespace {

std::string greeting(const app::App& app) {
  if (!app.llm().configured()) {
    return fmt::format("{}\n\nCommands (/help) work without it. Ctrl-D or /quit to leave.\n",
                       app.llm_line());
  }
  return fmt::format("parley chat with {}; /help lists commands; Ctrl-D or /quit to leave.\n",
                     app.llm_line());
}

}  // namespace

int run_chat(const config::Config& cfg, const ChatOptions& options) {
  int failed = app::kExitFailed;
  auto app = app::App::open(cfg, app::Mode::chat, failed);
  if (!app) return failed;
  const std::string user = app::console_user(options.user);

  fmt::print("{}", greeting(*app));
  std::fflush(stdout);  // the console writes to its own descriptor from here on

  channels::ConsoleOptions console_options;
  console_options.user = user;
  console_options.user_name = user;
  console_options.conversation =
      options.conversation.empty() ? "chat-" + user : options.conversation;
  console_options.history_file = app::console_history_file();
  console_options.files_dir = app::console_files_dir(cfg);
  console_options.quit_lines = {"/quit", "/exit"};
  console_options.on_eof = [&app] { app->request_stop(""); };
  channels::ConsoleChannel console(app->executor(), console_options);

  // Alerts (an unknown model price, a budget nearly spent) as a line of their own.
  app->on_alert([&console](const std::string& line) {
    console.send(channels::OutboundMessage{0, "", "⚠ " + line, {}}, [](const Status&) {});
  });
  int rc = app::kExitOk;
  if (auto st = app->add_channel(console); !st.ok()) {
    rc = app::report_error(st.error());
  } else {
    // SIGINT/SIGTERM end the chat like Ctrl-D (running turns finish); a second one exits at
    // once. When no `parley run` holds the database, reminders fire here too.
    app->start();
    app->wait();
  }
  console.stop();
  // Every running turn finishes: the chat's user waits for the answer they asked for.
  app->shutdown(std::chrono::hours(24), {&console});
  return rc;
}

}  // namespace parley::bot::cli
