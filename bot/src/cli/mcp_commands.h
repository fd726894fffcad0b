// `parley mcp list | tools SERVER | call SERVER TOOL --json ARGS`: the MCP servers of
// capabilities.yaml (mcp_servers:) as an operator checks them before the bot uses them — what is
// configured; a server started, its tools listed as the bot would name them (<prefix>.<tool>)
// with the hints they declare; one tool called and its result printed. Each command starts the
// server itself and stops it (SIGTERM, then SIGKILL after a grace; an HTTP session is ended).
// Exit 0 on success, 1 when the server cannot start or the tool reports an error, 2 for bad
// input (an unknown server, arguments that are not a JSON object, a variable not set).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "parley/bot/clients/mcp/mcp_client.h"
#include "parley/bot/config/config.h"
#include "parley/capabilities/config.h"

namespace parley::bot::cli {

class McpCommands {
 public:
  explicit McpCommands(CLI::App& app);

  [[nodiscard]] bool selected() const {
    return list_->parsed() || tools_->parsed() || call_->parsed();
  }
  // Returns the process exit code.
  int run(const config::Config& cfg);

 private:
  CLI::App* list_ = nullptr;
  CLI::App* tools_ = nullptr;
  CLI::App* call_ = nullptr;
  bool json_ = false;
  std::string server_;
  std::string tool_;
  std::string arguments_ = "{}";
};

}  // namespace parley::bot::cli
