// An MCP server's tool as a capability: named "<prefix>.<tool>", checked against the tool's own
// input schema before the call (Capability::invoke), called through the server's McpClient with
// the call's deadline (the capability's timeout capped by the turn's: the server is sent
// notifications/cancelled when it passes), and governed by capabilities.yaml like a built-in.
//
// What a server says is untrusted: its description is cut to one line of at most 200 bytes
// (and the turn's system prompt names MCP tools without it), a tool without annotations is
// unsafe (never repeated in a turn; capabilities.yaml's `side_effects` overrides), and its
// results are text for the model (see McpCallResult), never instructions to parley.
//
// Ownership: the capability holds the client weakly; once the server is stopped or replaced,
// a call gets `unavailable`. Thread safety: as Capability (immutable after construction).
#pragma once

#include <memory>
#include <string>

#include "parley/bot/clients/mcp/mcp_client.h"
#include "parley/capabilities/capability.h"

namespace parley::bot::mcp {

inline constexpr size_t kMaxToolDescriptionBytes = 200;

// What a tool's annotations make of it: readOnlyHint → none; idempotentHint with
// destructiveHint false → idempotent; anything else unsafe (the spec's defaults: a tool is
// destructive and not idempotent unless it says otherwise; a destructive write done twice is
// never repeated automatically, even when the server calls it idempotent).
capabilities::SideEffects side_effects_of(const McpTool& tool);

// The server's description (or title) as one line of at most kMaxToolDescriptionBytes:
// control characters and runs of white space become one space; cut on a UTF-8 boundary.
std::string tool_description(const McpTool& tool);

std::unique_ptr<capabilities::Capability> make_mcp_capability(std::weak_ptr<McpClient> client,
                                                              const net::Executor& executor,
                                                              const std::string& server,
                                                              const std::string& prefix,
                                                              const McpTool& tool);

// The MCP server a capability made here belongs to ("" for any other capability).
std::string mcp_server_of(const capabilities::Capability& capability);

}  // namespace parley::bot::mcp
