// UserData: everything the store keeps about one person, as one JSON document (/export), and
// the erasure of it (/forget everything).
//
// What is theirs, found from the schema so that a table a later migration adds is included
// without a change here:
//   - every row of a table with a user_id column equal to theirs (memories, notes, reminders,
//     journal, mood, habits, goals, decisions, expenses, lists, events, the usage ledger, …);
//   - the rows that hang off those by a foreign key and have no user_id of their own (memory
//     vectors and relations);
//   - their profile and identities;
//   - the messages they wrote (role user, from one of their identities: channel and author),
//     and every message of the conversations only they wrote in (the bot's replies there too),
//     with those conversations' summaries.
//
// Erasure removes all of that in one transaction, with the full-text rows (the tables' triggers)
// and vectors, the embedding cache's entries for their texts, summaries of every conversation
// they wrote in (a summary may quote them; it is rebuilt from what is left), sent replies of
// their private conversations, and their hot cache entries (history, memory records, the recall
// index). It keeps the user row and identities (so that the person can go on talking, as a
// user with nothing remembered) and the usage ledger (tokens and money, no text: budgets and
// the exact accounts stay true), and replies still owed (pending in the outbox).
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/hot_cache.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

// Rows removed, by table ("messages", "memories", …); zero counts left out.
using ErasedCounts = std::map<std::string, int64_t>;

class UserData {
 public:
  UserData(WriteQueue& writes, ReadPool& reads, HotCache& cache, const Clock& clock)
      : writes_(writes), reads_(reads), cache_(cache), clock_(clock) {}

  // The document: {"format": "parley-export/1", "exported_at", "user", "identities",
  // "records": {table: [row, …]}, "conversations": [{…, "messages": [...]}]}. Rows are objects
  // of their columns (BLOBs as base64); the last committed state. not_found for an unknown user.
  Result<nlohmann::json> export_user(int64_t user_id);

  // Erases it (see the top of this file); `done` gets the counts, after the commit, on the
  // writer's completion thread.
  void erase_user(int64_t user_id, std::function<void(Result<ErasedCounts>)> done);

 private:
  WriteQueue& writes_;
  ReadPool& reads_;
  HotCache& cache_;
  const Clock& clock_;
};

}  // namespace parley::storage
