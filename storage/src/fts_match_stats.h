// FTS5 glue for recall. parley_match_stats(): an FTS5 auxiliary function returning, for the
// current row, the row's token count and, per query phrase, its instances in the content and tags
// columns. FtsTokenizer: memories_fts's own tokenizer, for the recall index (recall_index.h),
// which ranks in memory and must split, fold and stem exactly as the MATCH does.
//
// It exists because FTS5's bm25() computes each phrase's document frequency over the whole
// index (all users): for a common word in a million memories that is tens of milliseconds per
// query. Recall ranks in C++ instead, with statistics of the one user's own documents.
//
// Result: a blob of int32 values: [doc_tokens, content_0, tags_0, content_1, tags_1, …] with one
// pair per phrase of the MATCH expression, in expression order.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "parley/base/result.h"
#include "parley/storage/sqlite.h"

namespace parley::storage::detail {

// Registers parley_match_stats on `conn` (a no-op if FTS5 is missing: then recall fails
// with SQLite's "no such function" naming it).
Status register_match_stats(Connection& conn);

struct MatchStats {
  int32_t doc_tokens = 0;
  std::vector<int32_t> content;  // per phrase
  std::vector<int32_t> tags;     // per phrase
};
MatchStats decode_match_stats(const void* blob, int bytes);

// SQLite's FTS5 tokenizer as memories_fts declares it (tokenize = 'porter unicode61
// remove_diacritics 2', migration 0001): the same code, tables and arguments, so the tokens are
// the index's. Not thread-safe (unicode61 folds into a buffer of its own): one user at a time.
// It must not outlive the connection it was opened on.
class FtsTokenizer {
 public:
  // unavailable when this SQLite has no FTS5 (or no porter tokenizer).
  static Result<FtsTokenizer> open(Connection& conn);
  // The one kept on `conn` (made by open() on first use); valid while `conn` stays open. Like
  // the connection, for one thread at a time.
  static Result<const FtsTokenizer*> of(Connection& conn);
  FtsTokenizer(FtsTokenizer&& other) noexcept;
  FtsTokenizer& operator=(FtsTokenizer&&) = delete;
  FtsTokenizer(const FtsTokenizer&) = delete;
  FtsTokenizer& operator=(const FtsTokenizer&) = delete;
  ~FtsTokenizer();

  // Calls on_token(std::string_view) for each token of `text`, in order: as a document is
  // indexed, or (query) as the words of a MATCH phrase are.
  template <typename OnToken>
  Status tokenize(std::string_view text, bool query, OnToken on_token) const {
    return run(text, query, &on_token,
               [](void* f, std::string_view token) { (*static_cast<OnToken*>(f))(token); });
  }

 private:
  FtsTokenizer(fts5_tokenizer api, Fts5Tokenizer* tokenizer) : api_(api), tokenizer_(tokenizer) {}
  Status run(std::string_view text, bool query, void* f,
             void (*call)(void*, std::string_view)) const;

  fts5_tokenizer api_{};
  Fts5Tokenizer* tokenizer_ = nullptr;
};

}  // namespace parley::storage::detail
