#include "parley/bot/app/channels.h"

#include <unistd.h>

#include <fmt/format.h>
#include <cstdlib>
#include <filesystem>

#include "parley/bot/app/money_pages.h"
#include "parley/bot/channels/console/console.h"
#include "parley/bot/channels/discord/discord_channel.h"
#include "parley/bot/channels/http/http_channel.h"

namespace parley::bot::app {

namespace {

// A channel that is configured off: it says why in the banner and does nothing else.
class Off final : public channels::Channel {
 public:
  Off(std::string name, std::string why) : name_(std::move(name)), why_(std::move(why)) {}
  [[nodiscard]] std::string_view name() const override { return name_; }
  [[nodiscard]] bool can_push() const override { return false; }
  Status start(channels::Inbox& /*inbox*/) override { return {}; }
  void stop() override {}
  void send(channels::OutboundMessage /*message*/, std::function<void(Status)> done) override {
    done(fail(ErrorCode::unavailable, fmt::format("{} is off", name_)));
  }
  [[nodiscard]] std::string banner() const override { return why_; }

 private:
  std::string name_;
  std::string why_;
};

}  // namespace

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

  // discord: when a bot token is in the environment (DISCORD_TOKEN or channels.discord.token_env).
  {
    auto options = cfg.channels.discord;
    // NOLINTBEGIN(concurrency-mt-unsafe): start-up only
    const char* token = std::getenv(options.token_env.c_str());
    if (const char* base = std::getenv("PARLEY_DISCORD_API_BASE"); base != nullptr && *base != 0) {
      options.api_base = base;
    }
    // NOLINTEND(concurrency-mt-unsafe)
    if (token != nullptr && *token != '\0') {
      channels::discord::DiscordChannel::Deps deps{
          app.executor(), app.multi(), app.store().channel_state(),
          [&app](const std::string& kind, const std::string& line) {
            app.treasury().alerts().raise({kind, money::Severity::critical, line.substr(0, 300), "",
                                           line, 1.0, std::nullopt, "problems"});
          }};
      out.push_back(std::make_unique<channels::discord::DiscordChannel>(std::move(deps), options,
                                                                        std::string(token)));
    } else {
      out.push_back(std::make_unique<Off>(
          "discord", fmt::format("discord off: no bot token in {}", options.token_env)));
    }
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
