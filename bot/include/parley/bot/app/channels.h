// The channels `parley run` serves, built from parley.yaml's `channels:` and the command line:
// one block each in channels.cpp. A new channel is a folder under channels/, a block under
// `channels:` in parley.yaml (config/), and one block here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "parley/base/result.h"
#include "parley/bot/app/app.h"
#include "parley/bot/channels/channel.h"
#include "parley/bot/config/config.h"

namespace parley::bot::app {

struct ChannelChoices {
  std::string http_listen;  // HOST:PORT; empty: channels.http.listen
  // The terminal as a channel: automatic = when stdin is a terminal (Ctrl-D there stops the
  // bot); on = also from a pipe or file (its end only ends the console's input).
  enum class Console { automatic, on, off };
  Console console = Console::automatic;
};

// channels.discord with the environment applied (PARLEY_DISCORD_API_BASE over api_base), and
// the bot token from the variable it names; empty: none.
channels::discord::DiscordOptions discord_options(const config::Config& cfg);
std::string discord_token(const channels::discord::DiscordOptions& options);

// channels.email with the environment applied: PARLEY_IMAP_URL
// (imap://USER@HOST:PORT/MAILBOX — STARTTLS, or plain to a loopback address — or imaps://…),
// PARLEY_SMTP_URL (smtp://USER@HOST:PORT, smtps://…) and PARLEY_EMAIL_FROM over the file.
// invalid_argument names a malformed variable.
Result<channels::email::EmailOptions> email_options(const config::Config& cfg);
// The passwords: PARLEY_IMAP_PASSWORD / PARLEY_SMTP_PASSWORD, else the variables password_env
// names; empty: none.
std::string email_password(const channels::email::MailServer& server, const char* override_var);

// Every channel to serve, built (not started). invalid_argument names a bad setting.
Result<std::vector<std::unique_ptr<channels::Channel>>> serve_channels(
    App& app, const config::Config& cfg, const ChannelChoices& choices);

}  // namespace parley::bot::app
