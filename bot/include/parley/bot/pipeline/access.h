// AccessPolicy: who may talk to the bot, who is an admin, and how fast anyone may go.
//
//   access:
//     mode: open                 # open: anyone may talk; private: only those allowed below
//     allow:                     # per channel; a channel listed here admits only these senders
//       http: [alice, bob]       #   ("*": anyone on that channel)
//     admins: ["console:*"]      # CHANNEL:SENDER ("*": anyone on it); may use admin-only
//                                #   capabilities. Default: the local terminal only.
//     rate_limit: {messages: 30, per_seconds: 60}   # per user, every channel; messages: 0 = off
//     refusal: "…"               # said once to a sender turned away
//
// Admins are always allowed. Admin-only capabilities stay denied to everyone else (deny by
// default). A sender who is turned away hears the refusal once (remembered in the database),
// then nothing: not silence on the first message, not a reply per message.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace parley::bot::pipeline {

struct AccessPolicy {
  enum class Mode { open, private_bot };
  Mode mode = Mode::open;
  std::map<std::string, std::vector<std::string>> allow;
  std::vector<std::string> admins{"console:*"};
  int rate_messages = 30;  // per user within rate_window; 0: no limit
  std::chrono::seconds rate_window{60};
  std::string refusal =
      "Hello! This is a private assistant and it is not set up to talk with you, sorry. "
      "If you think you should have access, please ask its owner.";

  struct Decision {
    bool allowed = false;
    bool admin = false;
  };
  [[nodiscard]] Decision decide(const std::string& channel, const std::string& sender) const;
};

}  // namespace parley::bot::pipeline
