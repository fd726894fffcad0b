// RecallIndex: one user's memories as recall ranks them, held in the hot cache (CacheKind::recall)
// so that MemoryRepository::recall_ranked runs in memory. Built (Builder) from one query on the
// user's rows (MemoryRepository::recall_index), it holds for each of the user's memories that is
// not forgotten — current or superseded, flagged — its record, the tokens of its content and tags
// as memories_fts has them (FtsTokenizer), a posting list per token, and its int8 vector of one
// (model, dimensions): all the vectors in one contiguous array, scanned exactly. BM25 over it
// gives exactly what the FTS5 path (MemoryRepository::recall) gives: the same tokens, the same
// statistics of the user's documents, the same arithmetic (bm25_scores) and order (bm25_before).
//
// Freshness: an index is immutable. A commit that writes the user's memories or vectors makes a
// new one (patched): the same shared base, plus a small copied delta of the memories written
// since — O(kMaxDelta) work, done under the cache's mutex. Past kMaxDelta memories, or when a
// change cannot be applied cheaply, the entry is dropped and the next recall reads it again.
//
// Thread safety: a RecallIndex is immutable; share it freely (shared_ptr<const RecallIndex>). A
// Builder is used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fts_match_stats.h"
#include "parley/base/result.h"
#include "parley/storage/records.h"
#include "parley/storage/vector_codec.h"

namespace parley::storage {

namespace detail {

// The BM25 score of each of `candidates` documents, as recall has always ranked them
// (Robertson/Spärck Jones idf as Lucene, k1 1.2, b 0.75, tags weighted half of content).
// counts[(c · phrases + p) · 2] and [… + 1]: phrase p's instances in candidate c's content and
// tags; doc_tokens[c]: its tokens (content and tags). user_docs: the documents searched (at least
// the candidates). Document frequencies and the average length are the candidates': every one
// of the user's documents holding a query word is a candidate.
std::vector<double> bm25_scores(size_t phrases, const std::vector<int32_t>& doc_tokens,
                                const std::vector<int32_t>& counts, int64_t user_docs);

// BM25's order: score, then importance, then the newer (higher id) first.
inline bool bm25_before(double score_a, int importance_a, int64_t id_a, double score_b,
                        int importance_b, int64_t id_b) {
  if (score_a != score_b) return score_a > score_b;
  if (importance_a != importance_b) return importance_a > importance_b;
  return id_a > id_b;
}

}  // namespace detail

// One memory of the delta: its record and tokens, and its vector of the index's (model,
// dimensions) if it has one (empty: none).
struct RecallDoc {
  std::shared_ptr<const Memory> memory;
  std::vector<std::string> content;  // tokens
  std::vector<std::string> tags;     // tokens
  std::vector<int8_t> vector;
  float scale = 0;
};

// What one commit did to a user's memories.
struct RecallChange {
  // Written (added, rewritten, superseded, restored), as doc_of makes them (no vector): their
  // vectors are unchanged (a new memory has none), so the index keeps the one it holds.
  std::vector<std::shared_ptr<const RecallDoc>> written;
  std::vector<int64_t> forgotten;
  // A vector stored (put_vector).
  struct Vector {
    int64_t memory_id = 0;
    std::string model;
    int dimensions = 0;
    std::shared_ptr<const QuantizedVector> value;
  };
  std::optional<Vector> vector;
  // What changed is not known in detail (the words could not be tokenised): drop the index.
  bool unknown = false;
};

class RecallIndex {
 public:
  // Past this many memories changed since the build, a change drops the entry instead.
  static constexpr size_t kMaxDelta = 64;

  // Builds an index from rows in any order. model empty: no vectors.
  class Builder {
   public:
    Builder(std::string model, int dimensions);
    // A row of the user's; `vector` (exactly dimensions bytes, else data_loss) and its scale when
    // it has one.
    Status add(const detail::FtsTokenizer& tokenizer, std::shared_ptr<const Memory> memory,
               std::optional<std::string_view> vector, double scale);
    std::shared_ptr<const RecallIndex> finish();

   private:
    struct Pending {
      std::shared_ptr<const Memory> memory;
      uint32_t content_begin = 0;
      uint32_t tags_begin = 0;
      uint32_t end = 0;
      int32_t vector_row = -1;
    };
    uint32_t term_of(std::string_view token);

    std::string model_;
    int dimensions_;
    std::vector<Pending> pending_;
    std::vector<uint32_t> tokens_;
    std::unordered_map<std::string, uint32_t> terms_;
    std::vector<int8_t> vectors_;
    std::vector<float> scales_;
    std::vector<uint32_t> vector_pending_;  // per vector row: its index in pending_
  };

  // The tokens of a memory's content and tags, as a delta document.
  static Result<std::shared_ptr<const RecallDoc>> doc_of(const detail::FtsTokenizer& tokenizer,
                                                         std::shared_ptr<const Memory> memory);

  // Whether it holds the user's vectors of (model, dimensions).
  [[nodiscard]] bool has_vectors_of(std::string_view model, int dimensions) const;
  // The bytes it holds (the base, shared with earlier versions, counted in full): O(1).
  [[nodiscard]] size_t bytes() const;

  // This index with `change` applied, sharing its base; null when the change is not cheap to
  // apply (more than kMaxDelta changes, a vector for a memory it does not hold): drop it.
  [[nodiscard]] std::shared_ptr<const RecallIndex> patched(const RecallChange& change) const;

  // Up to `limit` memories holding any of `phrases` (each the tokens of one query word, in
  // order; duplicates count twice, as in a MATCH), best first, scored as MemoryRepository::recall
  // scores them.
  [[nodiscard]] std::vector<MemoryHit> bm25(const std::vector<std::vector<std::string>>& phrases,
                                            size_t limit, bool include_superseded) const;
  // Whether any of the user's memories (current, superseded, changed since) holds `token`.
  [[nodiscard]] bool has_term(std::string_view token) const;
  // The fuzzy path: the user's token spelt closest to `token` (a misspelt name: "katharina" →
  // "katarina"), by the similarity of their trigram sets (each padded with a space at both
  // ends; |A ∩ B| / |A ∪ B|), at least `min_similarity`; only tokens of the same first letter and
  // within three letters of its length are compared. Ties: the shorter, then the first in
  // alphabetical order. nullopt when none is that close.
  [[nodiscard]] std::optional<std::string> closest_term(std::string_view token,
                                                        double min_similarity) const;
  // Up to `limit` memories whose vectors have a dot product > 0 with `query` (of the index's
  // dimensions), closest first (ties: newer first).
  [[nodiscard]] std::vector<MemoryHit> nearest(const QuantizedVector& query, size_t limit,
                                               bool include_superseded) const;

 private:
  struct Base;
  explicit RecallIndex(std::shared_ptr<const Base> base);
  // Where memory `id` is now: its delta entry (a null doc: forgotten since), or its base
  // position, or neither.
  struct Found {
    const std::shared_ptr<const RecallDoc>* delta = nullptr;
    std::optional<uint32_t> base;
  };
  [[nodiscard]] Found find(int64_t id) const;
  [[nodiscard]] std::shared_ptr<RecallDoc> doc_at(uint32_t position) const;
  // Replaces memory `id` with `doc` (null: gone), keeping the counts.
  void set(int64_t id, std::shared_ptr<const RecallDoc> doc);
  [[nodiscard]] std::vector<uint8_t> hidden(bool include_superseded) const;

  std::shared_ptr<const Base> base_;
  // Memories changed since the base was built, by id; a null doc: forgotten.
  std::vector<std::pair<int64_t, std::shared_ptr<const RecallDoc>>> delta_;
  std::vector<uint32_t> shadowed_;  // base positions delta_ replaces
  int64_t docs_ = 0;                // memories held, superseded included
  int64_t current_docs_ = 0;        // of them, current
  size_t delta_bytes_ = 0;
};

}  // namespace parley::storage
