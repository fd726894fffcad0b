// Memories: what parley remembers about a user. Writes go through the write queue; the FTS5
// index follows by triggers in the same transaction. Recall is a bm25 top-k scoped to the user
// inside the index; records are served from the hot cache.
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <future>
#include <memory>
#include <string_view>
#include <vector>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/hot_cache.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/records.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

class MemoryRepository {
 public:
  MemoryRepository(WriteQueue& writes, ReadPool& reads, HotCache& cache, const Clock& clock)
      : writes_(writes), reads_(reads), cache_(cache), clock_(clock) {}

  void add(NewMemory memory, WriteCallback done);
  std::future<Result<WriteAck>> add(NewMemory memory);
  // Replaces content, tags and importance; not_found when the id does not exist.
  std::future<Result<WriteAck>> update(int64_t id, NewMemory memory);
  std::future<Result<WriteAck>> remove(int64_t id);
  // Removes memory `id` only when it belongs to `user_id`, in one statement on the writer (no
  // window between a check and the delete); otherwise not_found, the same for an id that does
  // not exist and for another user's. For callers that act on behalf of one user.
  void remove_for_user(int64_t user_id, int64_t id, WriteCallback done);

  Result<std::shared_ptr<const Memory>> get(int64_t id);
  // Up to `limit` of the user's memories, most recently updated first (ties: newest id first).
  Result<std::vector<std::shared_ptr<const Memory>>> list_for_user(int64_t user_id,
                                                                   size_t limit = 50);
  // Up to `limit` of the user's memories matching any word of `query`, best first (BM25 with
  // statistics of this user's memories only; ties: importance, then newest). Any text is
  // accepted: words are quoted, never parsed as FTS5 syntax. No words: no hits.
  Result<std::vector<MemoryHit>> recall(int64_t user_id, std::string_view query, size_t limit = 10);

  // The FTS5 MATCH expression recall() uses (exposed for tests and benchmarks).
  static std::string match_expression(int64_t user_id, std::string_view query);

 private:
  WriteJob make_add_job(NewMemory memory);

  WriteQueue& writes_;
  ReadPool& reads_;
  HotCache& cache_;
  const Clock& clock_;
};

}  // namespace parley::storage
