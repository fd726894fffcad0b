// `parley email check [--json]`: logs in to the IMAP and SMTP servers of channels.email (or
// PARLEY_IMAP_URL / PARLEY_SMTP_URL) as `parley run` would, and prints the capabilities that
// matter (IDLE, UIDPLUS, MOVE, CONDSTORE; STARTTLS and the AUTH mechanisms) and the mailbox's
// UIDVALIDITY and UIDNEXT. Exit 0 when both answer, 1 with one clear line when either does not.
#pragma once

#include <CLI/CLI.hpp>

#include "parley/bot/config/config.h"

namespace parley::bot::cli {

class EmailCommands {
 public:
  explicit EmailCommands(CLI::App& app);

  [[nodiscard]] bool selected() const { return check_->parsed(); }
  // Returns the process exit code.
  int run(const config::Config& cfg);

 private:
  CLI::App* check_ = nullptr;
  bool json_ = false;
};

}  // namespace parley::bot::cli
