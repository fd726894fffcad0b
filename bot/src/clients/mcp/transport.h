// Transport: how McpClient's JSON-RPC messages reach one server and come back — a child's
// stdin/stdout (stdio_transport.h) or Streamable HTTP (http_transport.h). One transport per
// connection attempt; a restart makes a new one.
//
// Thread safety: every member is called on the client's strand, and every event is delivered
// on it. A transport keeps itself alive (shared_from_this) while operations are pending, so
// the client may drop it at any time; events after close() are not delivered.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "parley/base/result.h"

namespace parley::bot::mcp {

struct TransportEvents {
  // A JSON-RPC message (request, notification or response) from the server.
  std::function<void(nlohmann::json)> on_message;
  // The connection ended without close(): the child exited, the pipe broke, the HTTP session
  // expired (`expired`: re-initialize at once rather than back off). Delivered once.
  std::function<void(std::string why, bool expired)> on_closed;
  // A request could not be delivered or was refused (HTTP status, transport failure): the
  // request with this id will get no response.
  std::function<void(const nlohmann::json& id, Error)> on_send_failed;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Starts the connection (spawns the child; HTTP: nothing to do until the first message).
  virtual Status open() = 0;
  // Queues one message; order is kept. `deadline`: when its answer stops mattering (HTTP ends
  // the request a little after it; the client's own timer acts first).
  virtual void send(nlohmann::json message, std::chrono::steady_clock::time_point deadline) = 0;
  // The negotiated revision, sent by HTTP as MCP-Protocol-Version.
  virtual void set_protocol_version(const std::string& /*version*/) {}
  // Ends the connection gracefully; `closed` runs on the strand when it is over (the child
  // reaped, the session deleted). No event is delivered afterwards.
  virtual void close(std::function<void()> closed) = 0;
  // Kills at once, without grace, and forgets the connection: for the client's destructor,
  // when no thread runs the strand any more.
  virtual void kill_now() {}
  // The child's process id (stdio) or 0.
  [[nodiscard]] virtual pid_t pid() const { return 0; }
};

}  // namespace parley::bot::mcp
