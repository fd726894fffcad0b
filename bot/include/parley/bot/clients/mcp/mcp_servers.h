// McpServers: the MCP servers capabilities.yaml enables, running while the bot runs, their tools
// in the registry as the group of their server ("<prefix>.<tool>", see mcp_capability.h).
//
// A server's tools come into the registry when it is ready, change when it says they changed,
// and are withdrawn while it is down (McpClient restarts it with back-off and a breaker). A
// tool the registry refuses (a schema the validator cannot check, a name too long) stays out,
// with the reason logged and shown by status(); a tool capabilities.yaml configures that the
// server does not list is logged with the file's line and column.
//
// apply() follows a new configuration: servers added are started, those removed or disabled
// are stopped (their tools withdrawn at once), those whose settings changed are restarted;
// unchanged ones keep running.
//
// Thread safety: every method may be called from any thread; the clients' callbacks run on
// their strands. A mutex guards the table of servers; it is never taken in a turn's path
// (turns read the registry, lock-free).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "parley/bot/clients/mcp/mcp_client.h"
#include "parley/capabilities/config.h"

namespace parley::bot::mcp {

// The client settings of a server entry: its variables and token read from the environment by
// name (invalid_argument naming the variable that is not set; never its value).
Result<McpServerConfig> mcp_server_config(const capabilities::McpServerSpec& spec);

class McpServers {
 public:
  // Borrows the CurlMulti (HTTP servers) and the registry, which must outlive this.
  McpServers(const net::Executor& executor, http::CurlMulti& multi,
             capabilities::Registry& registry);
  // REQUIRES: stop() has returned, or no thread runs the io_context.
  ~McpServers();
  McpServers(const McpServers&) = delete;
  McpServers& operator=(const McpServers&) = delete;

  // Starts, stops and restarts servers to match `config` (see above).
  void apply(const capabilities::CapabilitiesConfig& config);
  // Stops every server (calls in flight get `cancelled`), waiting up to `within`; no server
  // starts again.
  void stop(std::chrono::milliseconds within);
  // Waits up to `within` until no enabled server is still starting (for a one-turn process
  // that wants the tools before it asks). True when none is.
  bool wait_settled(std::chrono::milliseconds within);

  struct ServerStatus {
    std::string server;
    std::string prefix;
    std::string transport;
    std::string state;  // starting, ready, down, broken, disabled
    std::string why;
    pid_t pid = 0;                                             // a stdio server's running child
    std::vector<std::string> tools;                            // as capabilities
    std::vector<std::pair<std::string, std::string>> refused;  // tool, why
  };
  // Every configured server, by name.
  [[nodiscard]] std::vector<ServerStatus> status() const;

 private:
  struct Entry;
  void start_locked(const capabilities::McpServerSpec& spec);
  void retire_locked(Entry& entry);
  void tools_changed(const std::string& server, uint64_t generation, std::vector<McpTool> tools);
  void state_changed(const std::string& server, uint64_t generation, McpClient::State state,
                     std::string why);

  net::Executor executor_;
  http::CurlMulti& multi_;
  capabilities::Registry& registry_;
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable changed_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  std::map<std::string, std::string> tool_locations_;  // configured tool → FILE:LINE:COLUMN
  std::vector<std::shared_ptr<McpClient>> stopping_;
  uint64_t next_generation_ = 0;
  bool stopped_ = false;
};

}  // namespace parley::bot::mcp
