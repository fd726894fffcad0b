// The messages of the pipeline: what a channel hands the bot (InboundMessage), what a stored
// message is (Accepted) and what comes back (TurnResult, with why the turn ended as TurnStop).
// Channels include this header, never the turn engine. Plain data.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/result.h"
#include "parley/bot/clients/llm/chat_stream.h"
#include "parley/storage/outbox_file.h"

namespace parley::bot::pipeline {

// Why a turn ended (or why there was none). Text only at the edges: to_string() gives the
// stable name that JSON answers, logs and the stored reply metadata carry.
enum class TurnStop {
  answered,         // the model answered
  iteration_limit,  // the tool loop ran out of iterations
  deadline,         // the turn's deadline passed
  llm_error,        // every model and retry failed
  budget,           // a budget refused the model call
  command,          // a /command answered, no model
  no_llm,           // no LLM is configured
  context_error,    // the context could not be built
  duplicate,        // a redelivery: already stored, no new turn
  storage_error,    // nothing could be stored
  refused,          // the access policy turned the sender away
  rate_limited,     // the sender is over the rate limit
  overloaded,       // too many messages in flight (lanes.max_active): nothing kept, try again
};
std::string_view to_string(TurnStop stop) noexcept;

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
  // Only the author reads the answer (a DM, a terminal): their memories may go into the prompt.
  // False in a group channel (the channel decides).
  bool private_audience = true;
  // Receives the reply's text as the model generates it (LLM turns; the HTTP channel's
  // ?stream=1); `restart`: discard what came so far (a retry or a new model call). Called on
  // the turn's strand; not stored. Empty: not streamed.
  std::function<void(const std::string& text, bool restart)> on_text;
  // Cuts a reply into the parts the platform sends as separate messages (Discord: 2,000
  // characters). Each part becomes its own outbox entry (TurnResult::parts). Empty: the reply is
  // one entry. Called on the turn's strand; not stored.
  std::function<std::vector<std::string>(const std::string& reply)> split;
  // Set for a message already stored (its id) whose turn a crash cut short: it is not stored
  // again, and answered only if it is still owed (never twice). See Dispatcher::answer_unanswered.
  std::optional<int64_t> stored_id;
};

// A message after accept(): stored (or found to be a redelivery), with its ids.
struct Accepted {
  InboundMessage message;
  int64_t user_id = 0;
  int64_t conversation_id = 0;
  int64_t message_id = 0;
  bool duplicate = false;
  // A duplicate's earlier answer, when there is one: its text and files, and its outbox entry
  // when that is still pending (see TurnResult::earlier_pending_outbox_id).
  std::optional<std::string> earlier_reply;
  std::vector<storage::OutboxFile> earlier_files;
  int64_t earlier_pending_outbox_id = 0;
  std::optional<Error> error;  // nothing stored
};

struct TurnResult {
  // This platform id was already stored: no new turn, no new reply; `reply` and `files` are the
  // earlier answer's when there is one (redelivery is idempotent for clients too).
  bool duplicate = false;
  bool command = false;  // answered by a /command, without the LLM
  bool refused = false;  // the access policy turned the sender away (reply: what to tell them,
                         // empty when they were already told)
  bool primary = true;   // false: merged into a later message's turn, which carries the reply
  std::chrono::seconds retry_after{0};  // rate_limited: when to send again
  std::string reply;
  int64_t user_id = 0;
  int64_t conversation_id = 0;
  int64_t message_id = 0;  // the stored inbound message
  int64_t reply_id = 0;    // the stored reply message
  int64_t outbox_id = 0;   // the reply's outbox entry (pending until the channel sends it)
  // The reply as InboundMessage::split cut it, when it did: one outbox entry per part, with the
  // ids outbox_id, outbox_id + 1, … (each bracketed by sending/sent on its own). Empty: the
  // entry outbox_id holds the whole reply.
  std::vector<std::string> parts;
  // Files sent with the reply (a chart, an export), stored with its outbox entry — the last
  // part's, when it was cut — each with its token (the HTTP channel's /files/<token>/<name>).
  std::vector<storage::OutboxFile> files;
  TurnStop stop = TurnStop::answered;
  std::string model;  // the model that answered last (LLM turns)
  llm::Usage usage;   // summed over every model call of the turn
  int llm_calls = 0;
  int steps = 0;                             // tool calls
  std::chrono::microseconds latency{0};      // the whole turn
  std::chrono::microseconds llm_latency{0};  // time inside model calls
  std::optional<Error> error;  // a storage failure: nothing could be stored or answered
  // A duplicate whose earlier answer is still owed (pending in the outbox): a channel that
  // answers in the response to the request (HTTP, which has no outbox pump) brackets this entry
  // around the response; a channel that pushes leaves it to the pump.
  int64_t earlier_pending_outbox_id = 0;
};

// The result for a message that gets no turn: a redelivery (duplicate) or a storage failure.
TurnResult result_without_turn(const Accepted& message);

}  // namespace parley::bot::pipeline
