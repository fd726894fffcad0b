// TurnHandler: the two halves of a turn as the lanes drive them — accept() stores one inbound
// message, respond() answers a batch of stored messages of one conversation. TurnEngine
// (turn.h) is the implementation; the lanes hold a TurnHandler so that their ordering, merging
// and accounting can be tested over a fake that decides when each turn ends.
//
// Thread safety (what an implementation may assume, and the lanes guarantee): respond() for
// one conversation runs on that conversation's strand, one turn at a time; different
// conversations run concurrently. accept() may run anywhere, concurrently.
#pragma once

#include <vector>

#include "parley/bot/net.h"
#include "parley/bot/pipeline/message.h"

namespace parley::bot::pipeline {

class TurnHandler {
 public:
  virtual ~TurnHandler() = default;
  // Stores `message` (deduplicated on channel and platform id; a redelivery comes back with
  // `duplicate` set, a storage failure with `error`), creating its user and conversation on
  // first sight. `message` by reference: see net.h.
  virtual net::asio::awaitable<Accepted> accept(const InboundMessage& message) = 0;
  // Answers `batch` (accepted, not duplicates, one conversation, in order; non-empty): one turn
  // for the last message, the others in its history. A batch holding a /command has just it.
  virtual net::asio::awaitable<TurnResult> respond(const std::vector<Accepted>& batch) = 0;
};

}  // namespace parley::bot::pipeline
