// Tool selection: which capabilities a turn offers the model as tools. Every tool offered costs
// prompt tokens on every model call of the turn (its description and JSON Schema), so a turn
// offers only the relevant ones:
//
//   - the core (by default `memory`: remembering and recalling is the bot's main job);
//   - a capability whose name, /command names or keywords() appear in the user's message, or
//     in the last few messages of the conversation (a follow-up such as "at 9 then" still
//     reaches the reminder asked for in the message before);
//   - a capability used in the last few turns of this conversation.
//
// Matching is case-insensitive and by word stem: the text is cut into words (letters and
// digits; '_', '-', apostrophes and the rest separate words) and a keyword matches any word, or
// run of words for a keyword with spaces, that it begins ("remind" matches "Reminders"). A
// keyword with other characters ("+", "://", ".com") matches anywhere in the text. A name also
// matches without a final 's' ("notes" matches "note") and by its parts ("web_fetch": "web",
// "fetch").
//
// Deterministic and explainable: the same inputs give the same selection, and every capability
// offered comes with the reason it was. Selection never grants anything: only permitted
// capabilities are considered, and ToolLoop checks permission again on every call.
//
// Thread safety: free functions over immutable inputs; safe from any thread.
#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "parley/bot/clients/llm/types.h"
#include "parley/capabilities/capability.h"
#include "parley/capabilities/config.h"
#include "parley/storage/records.h"

namespace parley::bot::pipeline {

// One earlier message of the conversation, as far as selection cares.
struct RecentMessage {
  std::string role;  // "user" or "assistant"
  std::string text;
  std::vector<std::string> tools_used;  // assistant: the capabilities its turn called
};

struct ToolSelectionOptions {
  std::vector<std::string> core = {"memory"};  // always offered (when permitted)
  size_t recent_text_messages = 4;             // the last N messages whose text is matched too
  size_t recent_tool_messages = 6;             // the last N messages whose tools_used stay offered
};

struct ToolSelection {
  std::vector<std::string> offered;        // registry order (sorted by name)
  std::map<std::string, std::string> why;  // name -> "core", "'remind' in the message", …
  // "calc ('+' in the message), memory (core)": for a debug log line.
  [[nodiscard]] std::string describe() const;
};

// The capabilities `caller` may use on `channel` under `config` (enabled, allowed), in registry
// order: what ToolLoop offers when no selection is given.
std::vector<std::string> permitted_capabilities(const capabilities::Registry& registry,
                                                const capabilities::CapabilitiesConfig& config,
                                                const capabilities::Caller& caller,
                                                std::string_view channel);

// The capabilities to offer for `text` (the message being answered). `permitted` bounds the
// result; names that are not in the registry are ignored. `recent` is the conversation before
// `text`, oldest first (any length: only the last few count, see options); the message being
// answered may be its last element too, it is then not counted twice.
ToolSelection select_tools(const capabilities::Registry& registry,
                           std::span<const std::string> permitted, std::string_view text,
                           std::span<const RecentMessage> recent,
                           const ToolSelectionOptions& options = {});

// The last `n` user and assistant messages of a stored history, oldest first, with the tools
// each assistant reply's metadata lists under "tools" (an array of names; see TurnEngine).
std::vector<RecentMessage> recent_messages(const storage::History& history, size_t n);

// The name a model calls `name` by. OpenAI-compatible APIs take function names of letters,
// digits, '_' and '-' only, so an MCP tool "files.read_file" is offered as "files__read_file"
// (its prefix, "__", the tool with any other '.' as '_'); a built-in's name is unchanged.
std::string wire_name(std::string_view name);

// The tool definition a model is given for `capability`: its wire name, description and the JSON
// Schema of its parameters without the keywords that only bound a value the model would not
// send anyway (minLength, maxLength, minItems, maxItems, pattern, a boolean additionalProperties)
// and without the root's `$schema`.
// Calls are still checked against the full schema; a call outside those bounds gets a tool error
// naming the field.
llm::ToolDefinition tool_definition(const capabilities::Capability& capability);

}  // namespace parley::bot::pipeline
