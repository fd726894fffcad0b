// TurnEngine: one inbound message through the bot, as DESIGN.md draws it — stored (deduplicated
// on channel and platform id) before anything else, then a /command (no LLM) or an LLM turn
// (context: the active system prompt, the capability instructions, the user's recalled
// memories, the conversation's recent history from the hot cache; then the tool loop), and the
// reply stored and put in the outbox before it is handed to the channel.
//
// The user's text reaches the model only as a user message, never in the system role; the
// system prompt says to treat it as untrusted.
//
// A redelivery is a duplicate (no second turn), except for a message an earlier process took in
// within the last hour and never answered (a crash ended its turn): it is answered then, once.
//
// Two halves (the TurnHandler the lanes drive, turn_handler.h), so that a channel's message is
// committed before it is acknowledged and before it waits in its conversation's lane: accept()
// stores it (any strand), respond() answers a batch of accepted messages of one conversation —
// usually one; a burst merged by the lane is answered by one turn that sees every message of it
// in the history. run() is both, for one message (`parley ask`).
//
// Thread safety: respond() for one conversation must run on that conversation's strand (its
// lane), one turn at a time; different conversations run concurrently. accept() may run
// anywhere, concurrently.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "parley/base/clock.h"
#include "parley/bot/clients/llm/client.h"
#include "parley/bot/net.h"
#include "parley/bot/pipeline/command_router.h"
#include "parley/bot/pipeline/memory_embedder.h"
#include "parley/bot/pipeline/memory_extractor.h"
#include "parley/bot/pipeline/message.h"
#include "parley/bot/pipeline/tool_loop.h"
#include "parley/bot/pipeline/turn_handler.h"
#include "parley/capabilities/live_config.h"
#include "parley/prompts/library.h"
#include "parley/storage/store.h"

namespace parley::bot::pipeline {

struct TurnOptions {
  std::chrono::milliseconds deadline{180'000};  // the whole turn, every model call included
  int max_iterations = 8;
  size_t recalled_memories = 5;
  int64_t history_token_budget = 3000;  // recent messages kept, newest first, within this
  // Completion tokens a conversation summary may take (the `summary` prompt asks for ten
  // short lines).
  int summary_max_tokens = 400;
  // A message stored before this start but never answered is answered (once, on its
  // redelivery or by Dispatcher::answer_unanswered) only this recently.
  std::chrono::milliseconds owed_window{3'600'000};
};

class TurnEngine : public TurnHandler {
 public:
  struct Deps {
    storage::Store& store;
    prompts::PromptLibrary& prompts;
    const capabilities::Registry& registry;
    capabilities::LiveConfig& config;
    capabilities::RateLimiter& limiter;
    llm::LlmClient* llm = nullptr;  // null: no LLM configured (commands still work)
    std::string no_llm_message;     // what to answer then
    const parley::Clock& clock;
    capabilities::Services services;
    std::string time_zone = "UTC";  // for users without one
    // Vectors for memory recall; null: recall by words only (no `embed` role).
    MemoryEmbedder* embedder = nullptr;
    // Memories written from conversations on their own (after an LLM turn in a conversation
    // only the user reads, and before a span of history is summarised); null: none.
    MemoryExtractor* extractor = nullptr;
  };

  TurnEngine(Deps deps, TurnOptions options = {});
  ~TurnEngine() override;
  struct SummaryState;  // (turn.cpp)
  TurnEngine(const TurnEngine&) = delete;
  TurnEngine& operator=(const TurnEngine&) = delete;

  // TurnHandler (see there): accept() stores the message, respond() answers a batch.
  net::asio::awaitable<Accepted> accept(const InboundMessage& message) override;
  net::asio::awaitable<TurnResult> respond(const std::vector<Accepted>& batch) override;
  // accept() then respond() for one message.
  net::asio::awaitable<TurnResult> run(InboundMessage message);

 private:
  // The messages a turn's history no longer holds, not yet in the conversation's summary:
  // summarised after the reply (the previous summary + these), for the next turns' {{summary}}.
  struct SummaryJob {
    int64_t conversation_id = 0;
    int64_t user_id = 0;
    int64_t through = 0;  // the newest message of the span
    std::string user_name;
    std::string channel;
    std::string previous;  // the summary so far ("" none)
    std::string span;      // "name: text" lines, oldest first
    // Read for memories first (when there is an extractor and the user alone reads it).
    std::optional<ExtractionSubject> mine;
  };
  struct Context {
    llm::ChatRequest request;
    std::vector<std::string> offered;  // the capabilities offered as tools this turn
    std::optional<SummaryJob> summary;
  };
  // Starts summarising `job` in the background (once per conversation at a time).
  void start_summary(SummaryJob job, const net::Executor& executor);
  net::asio::awaitable<Result<Context>> context(const std::vector<Accepted>& batch,
                                                const capabilities::Caller& caller,
                                                const capabilities::CapabilitiesConfig& config);

  // Whether a redelivered message is owed its answer: stored by an earlier process (a crash
  // ended its turn), within the last hour, never answered, and not taken as owed already.
  bool owed(const Accepted& accepted);
  // A duplicate's earlier answer (its text and files, and its outbox entry while pending).
  void earlier_answer(Accepted& accepted);

  Deps deps_;
  TurnOptions options_;
  CommandRouter commands_;
  std::unique_ptr<ToolLoop> loop_;
  int64_t stored_before_start_ = 0;  // messages up to this id were stored by earlier processes
  std::mutex owed_mu_;               // taken only for a redelivery of such a message
  std::set<int64_t> owed_taken_;
  std::shared_ptr<SummaryState> summaries_;  // shared with summaries still running
};

}  // namespace parley::bot::pipeline
