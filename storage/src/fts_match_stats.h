// parley_match_stats(): an FTS5 auxiliary function returning, for the current row, the row's
// token count and, per query phrase, its instances in the content and tags columns.
//
// It exists because FTS5's bm25() computes each phrase's document frequency over the whole
// index (all users): for a common word in a million memories that is tens of milliseconds per
// query. Recall ranks in C++ instead, with statistics of the one user's own documents.
//
// Result: a blob of int32 values: [doc_tokens, content_0, tags_0, content_1, tags_1, …] with one
// pair per phrase of the MATCH expression, in expression order.
#pragma once

#include <cstdint>
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

}  // namespace parley::storage::detail
