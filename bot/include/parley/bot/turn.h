// TurnEngine: one inbound message through the bot, as DESIGN.md draws it — stored (deduplicated
// on channel and platform id) before anything else, then a /command (no LLM) or an LLM turn
// (context: the active system prompt, the capability instructions, the user's recalled
// memories, the conversation's recent history from the hot cache; then the tool loop), and the
// reply stored and put in the outbox before it is handed to the channel.
//
// The user's text reaches the model only as a user message, never in the system role; the
// system prompt says to treat it as untrusted.
//
// Two halves, so that a channel's message is committed before it is acknowledged and before
// it waits in its conversation's lane: accept() stores it (any strand), respond() answers a
// batch of accepted messages of one conversation — usually one; a burst merged by the lane is
// answered by one turn that sees every message of it in the history. run() is both, for one
// message (`parley ask`).
//
// Thread safety: respond() for one conversation must run on that conversation's strand (its
// lane), one turn at a time; different conversations run concurrently. accept() may run
// anywhere, concurrently.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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
  // Set by the access policy (the dispatcher), never by a channel: may use admin-only
  // capabilities.
  bool admin = false;
  // Receives the reply's text as the model generates it (LLM turns; the HTTP channel's
  // ?stream=1); `restart`: discard what came so far (a retry or a new model call). Called on
  // the turn's strand; not stored. Empty: not streamed.
  std::function<void(const std::string& text, bool restart)> on_text;
};

// A message after accept(): stored (or found to be a redelivery), with its ids.
struct Accepted {
  InboundMessage message;
  int64_t user_id = 0;
  int64_t conversation_id = 0;
  int64_t message_id = 0;
  bool duplicate = false;
  std::optional<Error> error;  // nothing stored
};

struct TurnResult {
  bool duplicate = false;  // this platform id was already stored: no new turn, no new reply
  bool command = false;    // answered by a /command, without the LLM
  bool refused = false;    // the access policy turned the sender away (reply: what to tell them,
                           // empty when they were already told)
  bool primary = true;     // false: merged into a later message's turn, which carries the reply
  std::chrono::seconds retry_after{0};  // rate_limited: when to send again
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

// The result for a message that gets no turn: a redelivery (duplicate) or a storage failure.
TurnResult result_without_turn(const Accepted& message);

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

  // Stores the message (deduplicated on channel and platform id), creating its user and
  // conversation on first sight. `message` by reference: see net.h.
  net::asio::awaitable<Accepted> accept(const InboundMessage& message);
  // Answers `batch` (accepted, not duplicates, one conversation, in order; non-empty): one turn
  // for the last message, the others in its history. A batch holding a /command has just it.
  net::asio::awaitable<TurnResult> respond(const std::vector<Accepted>& batch);
  // accept() then respond() for one message.
  net::asio::awaitable<TurnResult> run(InboundMessage message);

 private:
  struct Context {
    llm::ChatRequest request;
    std::vector<std::string> offered;  // the capabilities offered as tools this turn
  };
  net::asio::awaitable<Result<Context>> context(const std::vector<Accepted>& batch,
                                                const capabilities::Caller& caller,
                                                const capabilities::CapabilitiesConfig& config);

  Deps deps_;
  TurnOptions options_;
  CommandRouter commands_;
  std::unique_ptr<ToolLoop> loop_;
};

}  // namespace parley::bot
