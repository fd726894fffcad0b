#include "chat_command.h"

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

#include "bot_stack.h"
#include "exit_codes.h"
#include "parley/bot/channels/channel.h"
#include "parley/bot/channels/console.h"
#include "parley/bot/dispatcher.h"
#include "parley/bot/lanes.h"
#include "parley/bot/turn.h"

namespace parley::bot {

namespace asio = net::asio;

namespace {

std::string greeting(const llm::ResolvedLlm& llm) {
  if (!llm.configured()) {
    return fmt::format("{}\n\nCommands (/help) work without it. Ctrl-D or /quit to leave.\n",
                       llm.not_configured);
  }
  const auto& model = llm.roles.at(llm.default_role).front();
  return fmt::format(
      "parley chat with {} via {}; /help lists commands; Ctrl-D or /quit to leave.\n", model.model,
      model.provider);
}

std::filesystem::path history_file() {
  const char* home = std::getenv("HOME");  // NOLINT(concurrency-mt-unsafe): start-up only
  if (home == nullptr || *home == '\0') return {};
  return std::filesystem::path(home) / ".parley_history";
}

}  // namespace

int run_chat(const Config& cfg, const ChatOptions& options) {
  int failed = kExitFailed;
  auto stack = BotStack::open(cfg, failed);
  if (!stack) return failed;
  const std::string user = console_user(options.user);

  fmt::print("{}", greeting(stack->llm()));
  std::fflush(stdout);  // the console writes to its own descriptor from here on

  LaneOptions lane_options;
  lane_options.debounce = cfg.lanes.debounce;
  lane_options.max_wait = cfg.lanes.max_wait;
  Lanes lanes(stack->executor(), stack->engine(), lane_options);
  Dispatcher inbox(stack->store(), lanes, cfg.access, stack->limiter());
  std::promise<void> finished;
  std::atomic<bool> finishing{false};
  const std::function<void()> finish = [&finished, &finishing] {
    if (!finishing.exchange(true)) finished.set_value();
  };

  channels::ConsoleOptions console_options;
  console_options.user = user;
  console_options.user_name = user;
  console_options.conversation =
      options.conversation.empty() ? "chat-" + user : options.conversation;
  console_options.history_file = history_file();
  console_options.quit_lines = {"/quit", "/exit"};
  console_options.on_eof = finish;
  channels::ConsoleChannel console(stack->executor(), console_options);

  // SIGINT/SIGTERM end the chat like Ctrl-D (running turns finish); a second one exits at once.
  asio::signal_set signal_set(stack->io(), SIGINT, SIGTERM);
  std::atomic<int> signals{0};
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (signals.fetch_add(1) == 0) {
          finish();
          signal_set.async_wait(on_signal);
        } else {
          std::_Exit(kExitFailed);
        }
      };
  signal_set.async_wait(on_signal);

  int rc = kExitOk;
  if (auto st = console.start(inbox); !st.ok()) {
    rc = report_error(st.error());
  } else {
    finished.get_future().wait();
  }
  console.stop();
  while (console.active() > 0 || lanes.active() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  asio::post(stack->io(), [&signal_set] { signal_set.cancel(); });
  stack->shutdown();
  return rc;
}

}  // namespace parley::bot
