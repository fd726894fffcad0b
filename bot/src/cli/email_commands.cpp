#include "cli/email_commands.h"

#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "app/exit_codes.h"
#include "parley/bot/app/channels.h"
#include "parley/bot/channels/email/check.h"

namespace parley::bot::cli {

namespace {

// The capabilities worth showing, in this order, each marked present or missing.
std::string email_features(const std::set<std::string>& have,
                           const std::vector<std::string>& want) {
  std::string out;
  for (const auto& w : want) {
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", w, have.count(w) != 0 ? "yes" : "no");
  }
  return out;
}

std::string email_joined(const std::set<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : " ") + i;
  return out.empty() ? "(none)" : out;
}

}  // namespace

EmailCommands::EmailCommands(CLI::App& app) {
  auto* email = app.add_subcommand("email", "the email channel");
  email->require_subcommand(1);
  check_ = email->add_subcommand("check",
                                 "log in to the IMAP and SMTP servers and show what they offer");
  check_->add_flag("--json", json_, "print JSON");
}

int EmailCommands::run(const config::Config& cfg) {
  const auto options = app::email_options(cfg);
  if (!options) {
    fmt::print(stderr, "parley: {}\n", options.error().message);
    return app::kExitFailed;
  }
  if (!options->configured) {
    fmt::print(stderr,
               "parley: email: not configured (channels.email in parley.yaml, or "
               "PARLEY_IMAP_URL and PARLEY_SMTP_URL)\n");
    return app::kExitFailed;
  }
  const auto c = channels::email::check_email(
      *options, app::email_password(options->imap, "PARLEY_IMAP_PASSWORD"),
      app::email_password(options->smtp, "PARLEY_SMTP_PASSWORD"));
  const bool ok = c.imap_ok && c.smtp_ok;
  if (json_) {
    nlohmann::json j = {{"ok", ok},
                        {"imap",
                         {{"ok", c.imap_ok},
                          {"host", options->imap.host},
                          {"mailbox", options->imap.mailbox},
                          {"capabilities", c.imap_capabilities},
                          {"uidvalidity", c.uidvalidity},
                          {"uidnext", c.uidnext},
                          {"messages", c.messages}}},
                        {"smtp",
                         {{"ok", c.smtp_ok},
                          {"host", options->smtp.host},
                          {"extensions", c.smtp_extensions},
                          {"auth_mechanisms", c.smtp_mechanisms},
                          {"tls", c.smtp_tls},
                          {"authenticated", c.smtp_authenticated}}}};
    if (!c.imap_error.empty()) j["imap"]["error"] = c.imap_error;
    if (!c.smtp_error.empty()) j["smtp"]["error"] = c.smtp_error;
    fmt::print("{}\n", j.dump(2));
    return ok ? app::kExitOk : app::kExitFailed;
  }
  if (c.imap_ok) {
    fmt::print("imap: {} as {}: {}\n", options->imap.host, options->imap.user,
               email_features(c.imap_capabilities, {"IDLE", "UIDPLUS", "MOVE", "CONDSTORE"}));
    fmt::print("mailbox: {}: UIDVALIDITY {}, UIDNEXT {}, {} message(s)\n", options->imap.mailbox,
               c.uidvalidity, c.uidnext, c.messages);
    if (c.imap_capabilities.count("IDLE") == 0) {
      fmt::print("warning: no IDLE: new mail is found by polling every {} s\n",
                 options->poll_interval_s);
    }
  } else {
    fmt::print(stderr, "parley: email: IMAP: {}\n", c.imap_error);
  }
  if (c.smtp_ok) {
    fmt::print("smtp: {}: STARTTLS {}, TLS {}, AUTH {}{}\n", options->smtp.host,
               c.smtp_extensions.count("STARTTLS") != 0 ? "offered" : "not offered",
               c.smtp_tls ? "on" : "off", email_joined(c.smtp_mechanisms),
               c.smtp_authenticated ? " (logged in)" : "");
  } else {
    fmt::print(stderr, "parley: email: SMTP: {}\n", c.smtp_error);
  }
  return ok ? app::kExitOk : app::kExitFailed;
}

}  // namespace parley::bot::cli
