// CommandRouter: "/name text" typed in any channel runs the capability that answers to /name,
// without the LLM — the same access rules, rate limits and timeouts as when the model calls it.
// `/help` lists what this caller may use here, one line each. Every outcome is one clear line
// (errors included) for the channel to send back.
//
// Thread safety: run() may be called concurrently for different conversations; it must run on
// a strand (the conversation's lane), like ToolLoop::run.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parley/bot/net.h"
#include "parley/capabilities/capability.h"
#include "parley/capabilities/config.h"
#include "parley/capabilities/rate_limiter.h"
#include "parley/storage/outbox_file.h"

namespace parley::bot::pipeline {

// True for "/word…" (a slash and a letter): a command, not a message for the model.
bool is_command(std::string_view text);

struct CommandReply {
  bool ok = false;
  std::string capability;                  // empty for /help and unknown commands
  std::string text;                        // one line (or, for /help and lists, a few) to send back
  std::vector<storage::OutboxFile> files;  // files the result carries, sent with the text
};

class CommandRouter {
 public:
  CommandRouter(const capabilities::Registry& registry, capabilities::RateLimiter& limiter)
      : registry_(registry), limiter_(limiter) {}

  net::asio::awaitable<CommandReply> run(
      std::string text, capabilities::InvokeContext context,
      std::shared_ptr<const capabilities::CapabilitiesConfig> config);

  [[nodiscard]] std::string help(const capabilities::InvokeContext& context,
                                 const capabilities::CapabilitiesConfig& config) const;

 private:
  const capabilities::Registry& registry_;
  capabilities::RateLimiter& limiter_;
};

// The text a user sees for a capability result: its "text" field when it has one, else the
// JSON, shortened.
std::string result_text(const nlohmann::json& result);

}  // namespace parley::bot::pipeline
