#include "parley/bot/app/channels.h"

#include <unistd.h>

#include <fmt/format.h>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

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

// Label values escaped as the Prometheus text format wants them.
std::string label_value(const std::string& v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return out;
}

std::string labels_text(const std::vector<std::pair<std::string, std::string>>& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (const auto& [k, v] : labels) {
    out += fmt::format("{}{}=\"{}\"", out.size() > 1 ? "," : "", k, label_value(v));
  }
  return out + "}";
}

// The channels' figures in the Prometheus text format, each metric's HELP and TYPE once.
std::string channel_metrics_text(const std::vector<const channels::Channel*>& list) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<channels::ChannelFigure>> by_name;
  for (const auto* channel : list) {
    for (auto& f : channel->figures()) {
      if (by_name.count(f.name) == 0) order.push_back(f.name);
      by_name[f.name].push_back(std::move(f));
    }
  }
  std::string out;
  for (const auto& name : order) {
    const auto& figures = by_name[name];
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, figures.front().help, name,
                       figures.front().type);
    for (const auto& f : figures) {
      out += fmt::format("{}{} {}\n", name, labels_text(f.labels), f.value);
    }
  }
  return out;
}

// /healthz's "channels": each channel's figures as {metric, labels…, value}, by channel.
nlohmann::json channel_health(const std::vector<const channels::Channel*>& list) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto* channel : list) {
    auto figures = channel->figures();
    if (figures.empty()) continue;
    auto& mine = out[std::string(channel->name())] = nlohmann::json::array();
    for (const auto& f : figures) {
      nlohmann::json row = {{"metric", f.name}};
      for (const auto& [k, v] : f.labels) row[k] = v;
      row["value"] = f.value;
      mine.push_back(std::move(row));
    }
  }
  return out;
}

// The /commands of the capabilities enabled in capabilities.yaml, and /help. Who may use
// them is decided when they are used (the access rules), as for a typed /command.
std::vector<channels::discord::SlashCommand> slash_commands(const App& app) {
  std::vector<channels::discord::SlashCommand> out;
  const auto config = app.capabilities().current();
  for (const auto& name : app.registry().names()) {
    const auto& capability = *app.registry().find(name);
    if (!config->for_capability(capability).enabled) continue;
    for (const auto& c : capability.commands()) out.push_back({c.name, c.help, c.usage});
  }
  out.push_back({"help", "The commands you can use here", "/help"});
  return out;
}

}  // namespace

channels::discord::DiscordOptions discord_options(const config::Config& cfg) {
  auto options = cfg.channels.discord;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): start-up only
  if (const char* base = std::getenv("PARLEY_DISCORD_API_BASE"); base != nullptr && *base != 0) {
    options.api_base = base;
  }
  return options;
}

std::string discord_token(const channels::discord::DiscordOptions& options) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): start-up only
  const char* token = std::getenv(options.token_env.c_str());
  return token != nullptr ? std::string(token) : std::string();
}

Result<std::vector<std::unique_ptr<channels::Channel>>> serve_channels(
    App& app, const config::Config& cfg, const ChannelChoices& choices) {
  std::vector<std::unique_ptr<channels::Channel>> out;
  // Every channel, for /metrics and /healthz (filled at the end; the channels outlive the HTTP
  // server's requests: run_bot stops and drains them all before they are destroyed).
  auto serving = std::make_shared<std::vector<const channels::Channel*>>();

  // http: POST /v1/messages, /healthz, /readyz and the money pages.
  {
    auto listen = channels::parse_listen(choices.http_listen.empty() ? cfg.channels.http.listen
                                                                     : choices.http_listen);
    if (!listen) return fail(listen.error());
    channels::HttpServerOptions server;
    server.host = listen->first;
    server.port = listen->second;
    server.pages = [&app, serving](const channels::PageRequest& pr) {
      auto page = money_page(pr, app.treasury(), app.store());
      if (pr.path == "/metrics" && page && page->status == 200) {
        page->body += channel_metrics_text(*serving);
      }
      return page;
    };
    server.health = [serving] { return channel_health(*serving); };
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
    const auto options = discord_options(cfg);
    std::string token = discord_token(options);
    if (!token.empty()) {
      channels::discord::DiscordChannel::Deps deps{
          app.executor(), app.multi(), app.store().channel_state(),
          [&app](const std::string& kind, const std::string& line) {
            app.treasury().alerts().raise({kind, money::Severity::critical, line.substr(0, 300), "",
                                           line, 1.0, std::nullopt, "problems"});
          },
          [&app] { return slash_commands(app); }};
      out.push_back(std::make_unique<channels::discord::DiscordChannel>(std::move(deps), options,
                                                                        std::move(token)));
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
  for (const auto& channel : out) serving->push_back(channel.get());
  return out;
}

}  // namespace parley::bot::app
