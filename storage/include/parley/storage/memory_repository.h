// Memories: what parley remembers about a user. Writes go through the write queue; the FTS5
// index follows by triggers in the same transaction. Recall (recall_ranked) runs in memory over
// the user's recall index in the hot cache (CacheKind::recall): BM25 over the user's memories,
// fused with an exact scan of their int8 vectors when the caller has the query's embedding.
// The index is read from SQLite with one query on the user's first recall (and again after it
// was dropped or evicted), and every commit that writes the user's memories or vectors patches
// it (a small delta over a shared base; dropped instead when the delta would grow past a few
// dozen memories, or after remove and purge_forgotten, which can make a superseded memory
// current again). Records are served from the hot cache too.
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/hot_cache.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/records.h"
#include "parley/storage/vector_codec.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

struct RecallChange;  // private to the storage library (src/recall_index.h)

// How recall blends its signals (see recall_ranked).
struct RecallWeights {
  double relevance = 0.7;
  double recency = 0.2;
  double importance = 0.1;
  double half_life_days = 30;
};

struct RecallRequest {
  int64_t user_id = 0;
  std::string_view query;
  size_t limit = 5;
  RecallWeights weights{};
  int64_t now_ms = 0;
  // Superseded memories too ("what did I used to …"); forgotten ones never.
  bool include_superseded = false;
  std::vector<std::string> kinds{};  // only these kinds; empty: every kind
  // A word none of the user's memories holds (4 letters or more) stands for the user's word
  // spelt closest to it, when one is close enough (a misspelt name): recall_ranked only.
  bool fuzzy = true;
  // The query's embedding, of vector_model with vector_dimensions (== its size): recall then
  // also ranks the user's vectors of that (model, dimensions) and fuses both lists. None: BM25
  // alone.
  std::optional<std::vector<float>> query_vector{};
  std::string vector_model{};
  int vector_dimensions = 0;
};

struct RankedMemory {
  std::shared_ptr<const Memory> memory;
  double score = 0;  // the blend, 0..1 with the default weights
  double relevance = 0;
  double recency = 0;
  double importance = 0;
};

class MemoryRepository {
 public:
  MemoryRepository(WriteQueue& writes, ReadPool& reads, HotCache& cache, const Clock& clock)
      : writes_(writes), reads_(reads), cache_(cache), clock_(clock) {}

  // Adds a memory, with its ADD event. An exact duplicate of one of the user's current
  // memories (the same words, any case or spacing) is not added: a NOOP event, and the ack
  // names the existing memory (inserted = false). A known external_id updates its memory (an
  // UPDATE event) unless the user forgot it, it was superseded, or nothing in it changed.
  void add(NewMemory memory, WriteCallback done);
  std::future<Result<WriteAck>> add(NewMemory memory);
  // Rewrites the text, tags, importance, kind, time and confidence of the user's (memory.
  // user_id's) live memory `id`, with an UPDATE event holding the old text; not_found when it
  // is not theirs, does not exist or was forgotten (the same answer for all three).
  void update_for_user(int64_t id, NewMemory memory, WriteCallback done);
  // update_for_user; a memory.user_id of 0 means the row's own user.
  std::future<Result<WriteAck>> update(int64_t id, NewMemory memory);
  // A changed fact: `memory` is added and the user's current memory `old_id` ends (valid_to,
  // superseded_by), with a SUPERSEDE event; nothing is deleted. The ack names the new memory.
  void supersede_for_user(int64_t old_id, NewMemory memory, WriteCallback done);
  // Deletes the row for good (its vectors and relations too); the trail stays.
  std::future<Result<WriteAck>> remove(int64_t id);
  // The user forgets memory `id`: marked forgotten (never recalled, listed or imported again)
  // with a FORGET event, in one job on the writer (no window between the check and the mark);
  // not_found for an id that does not exist, is another user's, or was already forgotten.
  void remove_for_user(int64_t user_id, int64_t id, WriteCallback done, std::string reason = "");
  // Deletes for good what was forgotten before `before_ms`; the ack's row_id is how many.
  std::future<Result<WriteAck>> purge_forgotten(int64_t before_ms);
  // The user's trail, newest first.
  Result<std::vector<MemoryEvent>> events_for_user(int64_t user_id, size_t limit = 50);

  // Undoes the user's newest automatic change (an ADD, UPDATE or SUPERSEDE extraction made)
  // that is not undone yet and whose memory the user has not forgotten since: an added memory
  // is forgotten, an updated one gets its old text back, a superseded one is current again and
  // its successor forgotten — each with an event whose reason is "undo:<event id>". `done` gets
  // the event undone; not_found when there is nothing to undo.
  void undo_last_extracted(int64_t user_id, std::function<void(Result<MemoryEvent>)> done);
  // A link extraction found between two of the user's memories (replaced when known).
  void relate(int64_t memory_id, int64_t related_id, std::string type, double strength,
              WriteCallback done);
  // The related memories of `memory_id`: (related id, type, strength), strongest first.
  struct Relation {
    int64_t related_id = 0;
    std::string type;
    double strength = 0;
  };
  Result<std::vector<Relation>> relations(int64_t memory_id);

  // A conversation as automatic extraction sees it: "off the record" (nothing read from it),
  // and the newest message already read for memories.
  struct ExtractionState {
    bool off_record = false;
    int64_t extracted_through = 0;
  };
  // not_found for an unknown conversation.
  Result<ExtractionState> extraction_state(int64_t conversation_id);
  // Turns "off the record" on or off for the conversation; not_found when it does not exist.
  void set_off_record(int64_t conversation_id, bool off, WriteCallback done);
  // The conversation's messages up to `message_id` have been read (the mark never moves back).
  void set_extracted_through(int64_t conversation_id, int64_t message_id, WriteCallback done);

  // A memory, current or superseded; not_found once forgotten.
  Result<std::shared_ptr<const Memory>> get(int64_t id);
  // Up to `limit` of the user's current memories, most recently updated first (ties: newest
  // id first).
  Result<std::vector<std::shared_ptr<const Memory>>> list_for_user(int64_t user_id,
                                                                   size_t limit = 50);
  // Up to `limit` of the user's memories matching any word of `query`, best first (BM25 with
  // statistics of this user's memories only; ties: importance, then newest). Any text is
  // accepted: words are quoted, never parsed as FTS5 syntax. No words: no hits.
  // Current memories only, unless include_superseded.
  Result<std::vector<MemoryHit>> recall(int64_t user_id, std::string_view query, size_t limit = 10,
                                        bool include_superseded = false);

  // Recall as the tool, the prompt's {{memories}} and the CLI all use it: the query's content
  // words (stop words dropped unless nothing else is left), BM25 over the user's memories
  // (4 × limit candidates; exactly recall()'s ranking: the same tokens, statistics and ties),
  // then
  //
  //   score = w_relevance · bm25 / bm25_best
  //         + w_recency   · 0.5 ^ (age_days / half_life_days)
  //         + w_importance · importance / 5
  //
  // (age: now − updated_at, never negative), best first; a memory whose words overlap one
  // already chosen by 80% or more (a paraphrase) gives its slot to the next.
  //
  // The fuzzy path (request.fuzzy): a query word of 4 letters or more that none of the user's
  // memories holds is searched as the user's word spelt closest to it (RecallIndex::
  // closest_term: trigram sets alike by 40% or more, the same first letter, at most three
  // letters longer or shorter), so a misspelt name ("Katharina") finds "Katarina" by words
  // alone. recall_ranked_uncached has no fuzzy path.
  //
  // With a query_vector the candidates are also the 4 × limit of the user's memories whose
  // vectors of (vector_model, vector_dimensions) are closest (an exact scan; dot > 0 only,
  // the same current/superseded rule), and relevance is the reciprocal rank fusion of both
  // lists, Σ 1 / (60 + rank), divided by the query's best. invalid_argument when the vector is
  // zero, the model empty or its size not vector_dimensions.
  //
  // Cost: in memory, over the user's recall index (see the top of this file) — a few
  // milliseconds for 10,000 memories. The first recall of a user (or the first with a vector of
  // another model, or after the index was dropped) reads it from SQLite first: one query on the
  // user's rows and their vectors, about as long as recall_ranked_uncached. An index larger than
  // the hot cache's max_bytes is built for each call and never kept.
  Result<std::vector<RankedMemory>> recall_ranked(const RecallRequest& request);
  // The same answer from SQLite alone, on every call: FTS5 (recall()) and a scan of the user's
  // rows in memory_vectors. The reference the recall index is tested against; far slower for a
  // user with many memories in a big database.
  Result<std::vector<RankedMemory>> recall_ranked_uncached(const RecallRequest& request);

  // Tests only: runs on the recalling thread after a user's recall index was read from SQLite
  // and before it is offered to the cache (put_if_fresh), so that a test can commit in between.
  // Set it before any recall.
  void set_recall_index_loaded_hook(std::function<void(int64_t user_id)> hook) {
    recall_index_loaded_ = std::move(hook);
  }

  // Stores the vector of memory `memory_id` for (model, dimensions), quantised (see
  // vector_codec.h), replacing the one it had. invalid_argument for an empty model, a length
  // other than `dimensions` or a zero vector; not_found when the memory does not exist or was
  // forgotten. The ack names the memory; inserted is false when a vector was replaced.
  void put_vector(int64_t memory_id, std::string model, int dimensions, std::span<const float> v,
                  WriteCallback done);
  std::future<Result<WriteAck>> put_vector(int64_t memory_id, std::string model, int dimensions,
                                           std::span<const float> v);
  // Up to `limit` of the user's current memories without a vector of (model, dimensions),
  // oldest first: what a background job embeds after a model change.
  Result<std::vector<int64_t>> memories_without_vector(int64_t user_id, std::string_view model,
                                                       int dimensions, size_t limit = 100);
  // The stored vector of memory `memory_id` for (model, dimensions), if it has one.
  Result<std::optional<QuantizedVector>> vector_of(int64_t memory_id, std::string_view model,
                                                   int dimensions);
  // Up to `limit` current memories of any user with an id above `after_id` and no vector of
  // (model, dimensions), by id: the background job that embeds imports and, after a model
  // change, everything again walks them with it.
  Result<std::vector<Memory>> unembedded_after(int64_t after_id, std::string_view model,
                                               int dimensions, size_t limit);
  // Embeddings already paid for, by (model, dimensions, embedding_text_hash(text)).
  Result<std::optional<QuantizedVector>> cached_embedding(std::string_view model, int dimensions,
                                                          std::string_view text);
  // Stores (or replaces) the embedding of `text`; same refusals as put_vector.
  void put_cached_embedding(std::string model, int dimensions, std::string_view text,
                            std::span<const float> v, WriteCallback done);
  std::future<Result<WriteAck>> put_cached_embedding(std::string model, int dimensions,
                                                     std::string_view text,
                                                     std::span<const float> v);
  // The embedding cache's key for `text`: FNV-1a 64 of its exact bytes, and its length. Not
  // content_hash: an embedding depends on case and punctuation, and content_hash gives every
  // text without words ("🙂", "?!") one hash.
  static std::string embedding_text_hash(std::string_view text);

  // The words of `query` recall searches for: stop words dropped ("what do I love to eat?" →
  // "love eat"), or the query itself when every word is one.
  static std::string content_words(std::string_view query);
  // The hash of a memory's normalised text (its words, lower-cased, single-spaced).
  static std::string content_hash(std::string_view content);

  // The FTS5 MATCH expression recall() uses (exposed for tests and benchmarks).
  static std::string match_expression(int64_t user_id, std::string_view query);

 private:
  WriteJob make_add_job(NewMemory memory);
  static Memory record_of(const NewMemory& m, int64_t now);
  void cache_records(const std::vector<std::shared_ptr<const Memory>>& records);
  // The user's memories closest to `query` in (model, dimensions), best first.
  Result<std::vector<MemoryHit>> nearest(int64_t user_id, const QuantizedVector& query,
                                         std::string_view model, int dimensions, size_t limit,
                                         bool include_superseded);
  // recall_ranked's last steps, whichever way the lists were found: `near` (the query vector's
  // nearest; none without a query vector) fused with the BM25 hits by reciprocal rank, then the
  // blend, the order after successors and the diversity.
  Result<std::vector<RankedMemory>> rank(const RecallRequest& r, std::vector<MemoryHit> bm25,
                                         std::optional<std::vector<MemoryHit>> near);
  // The user's recall index, from the cache or read on `conn` and offered to the cache; with its
  // vectors of (model, dimensions) unless model is empty.
  Result<std::shared_ptr<const RecallIndex>> recall_index(Connection& conn, int64_t user_id,
                                                          std::string_view model, int dimensions);
  // After a commit: the user's recall index patched by `change` (or dropped).
  void patch_recall_index(int64_t user_id, const RecallChange& change);
  void drop_recall_index(int64_t user_id);

  WriteQueue& writes_;
  ReadPool& reads_;
  HotCache& cache_;
  const Clock& clock_;
  std::function<void(int64_t)> recall_index_loaded_;  // tests only
};

}  // namespace parley::storage
