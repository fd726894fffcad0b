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
#include "parley/bot/channels/email/email_channel.h"
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
    for (const auto& c : capability.commands()) {
      // A two-word command ("forget everything") has no Discord form: it is typed as a message.
      if (c.name.find(' ') != std::string::npos) continue;
      out.push_back({c.name, c.help, c.usage});
    }
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

namespace {

// "imap://user@host:port/box" → the server (and the mailbox); invalid_argument naming `var`.
Status apply_mail_url(const char* var, const std::string& url, const char* plain_scheme,
                      const char* tls_scheme, channels::email::MailServer& server,
                      std::string* mailbox) {
  namespace em = channels::email;
  const size_t colon = url.find("://");
  const std::string scheme = colon == std::string::npos ? "" : url.substr(0, colon);
  if (scheme != plain_scheme && scheme != tls_scheme) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("{}: expected {}://USER@HOST:PORT or {}://…, found '{}'", var,
                            plain_scheme, tls_scheme, url.substr(0, 40)));
  }
  std::string rest = url.substr(colon + 3);
  std::string path;
  if (const size_t slash = rest.find('/'); slash != std::string::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (const size_t at = rest.rfind('@'); at != std::string::npos) {
    server.user = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (server.user.find(':') != std::string::npos) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("{}: put the password in its own variable, not in the URL", var));
    }
  }
  if (const size_t c = rest.rfind(':');
      c != std::string::npos && rest.find(']') == std::string::npos) {
    try {
      const int port = std::stoi(rest.substr(c + 1));
      if (port < 1 || port > 65'535) throw std::out_of_range("port");
      server.port = static_cast<uint16_t>(port);
    } catch (const std::exception&) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("{}: '{}' is not a port", var, rest.substr(c + 1)));
    }
    rest = rest.substr(0, c);
  }
  if (rest.empty()) return fail(ErrorCode::invalid_argument, fmt::format("{}: no host", var));
  server.host = rest;
  if (scheme == tls_scheme) {
    server.tls = em::MailTls::implicit;
  } else {
    // Plain only where no network is crossed; STARTTLS everywhere else.
    server.tls =
        channels::email::loopback_address(rest) ? em::MailTls::none : em::MailTls::starttls;
  }
  if (mailbox != nullptr && !path.empty()) *mailbox = path;
  return {};
}

std::string env_or_empty(const char* name) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): start-up only
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

}  // namespace

Result<channels::email::EmailOptions> email_options(const config::Config& cfg) {
  auto options = cfg.channels.email;
  if (const std::string url = env_or_empty("PARLEY_IMAP_URL"); !url.empty()) {
    options.configured = true;
    if (auto st = apply_mail_url("PARLEY_IMAP_URL", url, "imap", "imaps", options.imap,
                                 &options.imap.mailbox);
        !st.ok()) {
      return fail(st.error());
    }
  }
  if (const std::string url = env_or_empty("PARLEY_SMTP_URL"); !url.empty()) {
    if (auto st = apply_mail_url("PARLEY_SMTP_URL", url, "smtp", "smtps", options.smtp, nullptr);
        !st.ok()) {
      return fail(st.error());
    }
  }
  if (const std::string from = env_or_empty("PARLEY_EMAIL_FROM"); !from.empty()) {
    options.smtp.from = from;
  }
  if (!options.configured) return options;
  if (options.imap.host.empty()) {
    return fail(ErrorCode::invalid_argument,
                "email: no IMAP server (channels.email.imap.host or PARLEY_IMAP_URL)");
  }
  if (options.smtp.host.empty()) {
    return fail(ErrorCode::invalid_argument,
                "email: no SMTP server (channels.email.smtp.host or PARLEY_SMTP_URL)");
  }
  if (options.smtp.from.empty()) {
    return fail(ErrorCode::invalid_argument,
                "email: no address to answer from (channels.email.smtp.from or PARLEY_EMAIL_FROM)");
  }
  for (const auto* s : {static_cast<const channels::email::MailServer*>(&options.imap),
                        static_cast<const channels::email::MailServer*>(&options.smtp)}) {
    if (s->tls == channels::email::MailTls::none && !channels::email::loopback_address(s->host)) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("email: {} is not a loopback address: tls: none (no encryption) is "
                              "refused there; use starttls or implicit",
                              s->host));
    }
  }
  if (options.imap.processed == channels::email::EmailOptions::Imap::Processed::move &&
      options.imap.move_to.empty()) {
    return fail(ErrorCode::invalid_argument, "email: processed: move needs a folder");
  }
  return options;
}

std::string email_password(const channels::email::MailServer& server, const char* override_var) {
  if (std::string p = env_or_empty(override_var); !p.empty()) return p;
  return server.password_env.empty() ? std::string() : env_or_empty(server.password_env.c_str());
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
      if (auto file = channels::file_page(pr, app.store().outbox())) return file;
      auto page = money_page(pr, app.treasury(), app.store());
      if (pr.path == "/metrics" && page && page->status == 200) {
        page->body += channel_metrics_text(*serving);
      }
      return page;
    };
    server.page_executor = app.worker();
    server.health = [serving] { return channel_health(*serving); };
    server.storage_health = [&app] {
      const auto h = app.store().health();
      return nlohmann::json{
          {"ok", h.ok()},
          {"queue_depth", h.queue.queue_depth},
          {"last_commit_ms", static_cast<double>(h.queue.last_commit_latency_us) / 1000.0},
          {"last_batch", h.queue.last_batch_size},
          {"wal_bytes", h.wal_bytes},
          {"last_error", h.queue.last_error}};
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

  // email: when channels.email (or PARLEY_IMAP_URL) is given.
  {
    auto options = email_options(cfg);
    if (!options) return fail(options.error());
    if (options->configured) {
      channels::email::EmailChannel::Deps deps{
          app.executor(), app.store().channel_state(),
          [&app](const std::string& kind, const std::string& line) {
            app.treasury().alerts().raise({kind, money::Severity::critical, line.substr(0, 300), "",
                                           line, 1.0, std::nullopt, "problems"});
          }};
      const std::string imap_password = email_password(options->imap, "PARLEY_IMAP_PASSWORD");
      const std::string smtp_password = email_password(options->smtp, "PARLEY_SMTP_PASSWORD");
      out.push_back(std::make_unique<channels::email::EmailChannel>(std::move(deps), *options,
                                                                    imap_password, smtp_password));
    } else {
      out.push_back(std::make_unique<Off>(
          "email", "email off: no channels.email in parley.yaml nor PARLEY_IMAP_URL"));
    }
  }

  // console: the terminal parley runs in, when there is one (or when asked for).
  const bool terminal = ::isatty(STDIN_FILENO) == 1;
  if (choices.console == ChannelChoices::Console::on ||
      (choices.console == ChannelChoices::Console::automatic && terminal)) {
    channels::ConsoleOptions co;
    co.user = console_user("");
    co.conversation = "console-" + co.user;
    co.files_dir = console_files_dir(cfg);
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
