#include "parley/bot/app/channels.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "parley/bot/app/money_pages.h"
#include "parley/bot/channels/console/console.h"
#include "parley/bot/channels/http/http_channel.h"

namespace parley::bot::app {

Result<std::vector<std::unique_ptr<channels::Channel>>> serve_channels(
    App& app, const config::Config& cfg, const ChannelChoices& choices) {
  std::vector<std::unique_ptr<channels::Channel>> out;

  // http: POST /v1/messages, /healthz, /readyz and the money pages.
  {
    auto listen = channels::parse_listen(choices.http_listen.empty() ? cfg.channels.http.listen
                                                                     : choices.http_listen);
    if (!listen) return fail(listen.error());
    channels::HttpServerOptions server;
    server.host = listen->first;
    server.port = listen->second;
    server.pages = [&app](const channels::PageRequest& pr) {
      return money_page(pr, app.treasury(), app.store());
    };
    if (!cfg.channels.http.token_env.empty()) {
      // NOLINTNEXTLINE(concurrency-mt-unsafe): start-up only
      if (const char* token = std::getenv(cfg.channels.http.token_env.c_str())) {
        server.bearer_token = token;
      }
    }
    out.push_back(std::make_unique<channels::HttpChannel>(app.executor(), std::move(server),
                                                          [&app] { return app.ready(); }));
  }

  // console: the terminal parley runs in, when there is one (or when asked for).
  const bool terminal = ::isatty(STDIN_FILENO) == 1;
  if (choices.console == ChannelChoices::Console::on ||
      (choices.console == ChannelChoices::Console::automatic && terminal)) {
    channels::ConsoleOptions co;
    co.user = console_user("");
    co.conversation = "console-" + co.user;
    if (terminal) {
      co.history_file = console_history_file();
      co.quit_lines = {"/quit", "/exit"};
      co.on_eof = [&app] { app.request_stop("console closed"); };
    }
    out.push_back(std::make_unique<channels::ConsoleChannel>(app.executor(), co));
  }
  return out;
}

}  // namespace parley::bot::app
