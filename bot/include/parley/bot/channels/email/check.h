// check_email: what `parley email check` shows before `parley run` uses the mailbox — it logs in
// to the IMAP and the SMTP server as parley would and reports what matters: the IMAP
// capabilities (IDLE, UIDPLUS, MOVE, CONDSTORE), the mailbox's UIDVALIDITY and UIDNEXT, and the
// SMTP extensions (STARTTLS, AUTH mechanisms). Blocking (its own io_context); the CLI's only.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "parley/bot/channels/email/options.h"

namespace parley::bot::channels::email {

struct EmailCheck {
  bool imap_ok = false;
  std::string imap_error;  // why not (never a password)
  std::set<std::string> imap_capabilities;
  bool imap_tls = false;
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 0;
  uint32_t messages = 0;

  bool smtp_ok = false;
  std::string smtp_error;
  std::string smtp_greeting;
  std::set<std::string> smtp_extensions;
  std::set<std::string> smtp_mechanisms;
  bool smtp_tls = false;
  bool smtp_authenticated = false;
};

EmailCheck check_email(const EmailOptions& options, const std::string& imap_password,
                       const std::string& smtp_password);

}  // namespace parley::bot::channels::email
