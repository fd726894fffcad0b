// TurnEngine: one inbound message through the bot, as DESIGN.md draws it — stored (deduplicated
// on channel and platform id) before anything else, then a /command (no LLM) or an LLM turn
// (context: the active system prompt, the capability instructions, the user's recalled
// memories, the conversation's recent history from the hot cache; then the tool loop), and the
// reply stored and put in the outbox before it is handed to the channel.
//
// The user's text reaches the model only as a user message, never in the system role; the
// system prompt says to treat it as untrusted.
//
// Thread safety: run() for one conversation must run on that conversation's strand (its lane),
// one turn at a time; different conversations run concurrently.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "parley/base/clock.h"
#include "parley/bot/command_router.h"
#include "parley/bot/llm/client.h"
#include "parley/bot/net.h"
#include "parley/bot/tool_loop.h"
#include "parley/capabilities/live_config.h"
#include "parley/prompts/library.h"
#include "parley/storage/store.h"

namespace parley::bot {

struct InboundMessage {
  std::string channel;                     // console, http, discord, email
  std::optional<std::string> platform_id;  // the channel's message id (redelivery dedupe)
  std::string conversation;                // the channel's conversation key
  std::string author;                      // the channel's user key
  std::string author_name;                 // shown to the model; empty: the key
  std::string text;
};

struct TurnResult {
  bool duplicate = false;  // this platform id was already stored: no new turn, no new reply
  bool command = false;    // answered by a /command, without the LLM
  bool refused = false;    // the access policy turned the sender away (reply: what to tell them,
                           // empty when they were already told)
  bool primary = true;     // false: merged into a later message's turn, which carries the reply
  std::string reply;
  int64_t user_id = 0;
  int64_t conversation_id = 0;
  int64_t message_id = 0;  // the stored inbound message
  int64_t reply_id = 0;    // the stored reply message
  int64_t outbox_id = 0;   // the reply's outbox entry (pending until the channel sends it)
  std::string stop;        // answered, iteration_limit, deadline, llm_error, command, …
  std::string model;       // the model that answered last (LLM turns)
  llm::Usage usage;        // summed over every model call of the turn
  int llm_calls = 0;
  int steps = 0;           // tool calls
  std::chrono::microseconds latency{0};      // the whole turn
  std::chrono::microseconds llm_latency{0};  // time inside model calls
  std::optional<Error> error;  // a storage failure: nothing could be stored or answered
};

struct TurnOptions {
  std::chrono::milliseconds deadline{180'000};  // the whole turn, every model call included
  int max_iterations = 8;
  size_t recalled_memories = 5;
  int64_t history_token_budget = 3000;  // recent messages kept, newest first, within this
};

class TurnEngine {
 public:
  struct Deps {
    storage::Store& store;
    prompts::PromptLibrary& prompts;
    const capabilities::Registry& registry;
    capabilities::LiveConfig& config;
    capabilities::RateLimiter& limiter;
    llm::LlmClient* llm = nullptr;  // null: no LLM configured (commands still work)
    std::string no_llm_message;     // what to answer then
    const Clock& clock;
    capabilities::Services services;
    std::string time_zone = "UTC";  // for users without one
  };

  TurnEngine(Deps deps, TurnOptions options = {});

  net::asio::awaitable<TurnResult> run(InboundMessage message);

 private:
  net::asio::awaitable<Result<llm::ChatRequest>> context(const InboundMessage& in,
                                                         const capabilities::Caller& caller,
                                                         int64_t conversation_id,
                                                         const capabilities::CapabilitiesConfig& config);

  Deps deps_;
  TurnOptions options_;
  CommandRouter commands_;
  std::unique_ptr<ToolLoop> loop_;
};

}  // namespace parley::bot
