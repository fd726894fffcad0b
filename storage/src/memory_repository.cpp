#include "parley/storage/memory_repository.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "fts_match_stats.h"
#include "parley/base/text.h"

namespace parley::storage {

namespace {
constexpr const char* kGetMemorySql =
    "SELECT id, user_id, content, tags, importance, created_at, updated_at FROM memories "
    "WHERE id = ?";
// No bm25() here: it computes document frequencies over every user's memories. Ranking is
// done below over this user's matches (see fts_match_stats.h).
constexpr const char* kRecallSql =
    "SELECT m.id, m.user_id, m.content, m.tags, m.importance, m.created_at, m.updated_at, "
    "parley_match_stats(memories_fts) "
    "FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid "
    "WHERE memories_fts MATCH ?";
constexpr const char* kUserCountSql = "SELECT count(*) FROM memories WHERE user_id = ?";
constexpr const char* kListSql =
    "SELECT id, user_id, content, tags, importance, created_at, updated_at FROM memories "
    "WHERE user_id = ? ORDER BY updated_at DESC, id DESC LIMIT ?";

// BM25 (Robertson/Spärck Jones idf, as Lucene), tags weighted half of content.
constexpr double kK1 = 1.2;
constexpr double kB = 0.75;
constexpr double kTagWeight = 0.5;

Memory read_memory(const Statement& st) {
  Memory m;
  m.id = st.column_int64(0);
  m.user_id = st.column_int64(1);
  m.content = st.column_text(2);
  m.tags = st.column_text(3);
  m.importance = static_cast<int>(st.column_int64(4));
  m.created_at = st.column_int64(5);
  m.updated_at = st.column_int64(6);
  return m;
}

Status validate(const NewMemory& m) {
  if (m.content.empty()) return fail(ErrorCode::invalid_argument, "memory content is empty");
  if (m.user_id <= 0) return fail(ErrorCode::invalid_argument, "memory has no user");
  return {};
}
}  // namespace

std::string MemoryRepository::match_expression(int64_t user_id, std::string_view query) {
  std::string words;
  for (const auto word : search_words(query)) {
    if (!words.empty()) words += " OR ";
    // Only word bytes are kept, so no quote can appear inside.
    words += '"';
    words.append(word);
    words += '"';
  }
  if (words.empty()) return {};
  // Words match content and tags only; the user_id column scopes the match to one user.
  return fmt::format("user_id : \"{}\" AND {{content tags}} : ({})", user_id, words);
}

WriteJob MemoryRepository::make_add_job(NewMemory memory) {
  auto rec = std::make_shared<Memory>();
  rec->user_id = memory.user_id;
  rec->content = std::move(memory.content);
  rec->tags = std::move(memory.tags);
  rec->importance = memory.importance;
  rec->created_at = rec->updated_at = clock_.now_ms();

  WriteJob job;
  job.what = "add memory";
  job.apply = [rec](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "INSERT INTO memories(user_id, content, tags, importance, created_at, updated_at) "
        "VALUES (?,?,?,?,?,?)");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)
                   ->bind_all(rec->user_id, rec->content, rec->tags, rec->importance,
                              rec->created_at, rec->updated_at)
                   .run());
    rec->id = conn.last_insert_rowid();
    return WriteAck{rec->id, true};
  };
  job.on_commit = [this, rec](const WriteAck&) {
    // A new id cannot be cached yet; bump its stripe anyway and cache the fresh record.
    const CacheKey key{CacheKind::memory, rec->id};
    cache_.on_commit(key, [](CacheValue&) { return false; });
    cache_.put(key, std::shared_ptr<const Memory>(rec));
  };
  return job;
}

void MemoryRepository::add(NewMemory memory, WriteCallback done) {
  if (auto v = validate(memory); !v) {
    done(fail(std::move(v).error()));
    return;
  }
  WriteJob job = make_add_job(std::move(memory));
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

std::future<Result<WriteAck>> MemoryRepository::add(NewMemory memory) {
  if (auto v = validate(memory); !v) return failed_write(std::move(v).error());
  return writes_.submit_for_future(make_add_job(std::move(memory)));
}

std::future<Result<WriteAck>> MemoryRepository::update(int64_t id, NewMemory memory) {
  if (memory.content.empty()) {
    return failed_write(Error{ErrorCode::invalid_argument, "memory content is empty"});
  }
  const int64_t now = clock_.now_ms();
  auto next = std::make_shared<Memory>();
  next->id = id;
  next->content = std::move(memory.content);
  next->tags = std::move(memory.tags);
  next->importance = memory.importance;
  next->updated_at = now;

  WriteJob job;
  job.what = "update memory";
  job.apply = [next](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "UPDATE memories SET content = ?, tags = ?, importance = ?, updated_at = ? WHERE id = ? "
        "RETURNING user_id, created_at");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(next->content, next->tags, next->importance, next->updated_at, next->id);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) return fail(ErrorCode::not_found, fmt::format("no memory with id {}", next->id));
    next->user_id = (*st)->column_int64(0);
    next->created_at = (*st)->column_int64(1);
    return WriteAck{next->id, false};
  };
  job.on_commit = [this, next](const WriteAck&) {
    cache_.on_commit(CacheKey{CacheKind::memory, next->id}, [&](CacheValue& v) {
      v = std::shared_ptr<const Memory>(next);
      return true;
    });
  };
  return writes_.submit_for_future(std::move(job));
}

std::future<Result<WriteAck>> MemoryRepository::remove(int64_t id) {
  WriteJob job;
  job.what = "remove memory";
  job.apply = [id](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached("DELETE FROM memories WHERE id = ?");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)->bind_all(id).run());
    if (conn.changes() == 0) {
      return fail(ErrorCode::not_found, fmt::format("no memory with id {}", id));
    }
    return WriteAck{id, false};
  };
  job.on_commit = [this, id](const WriteAck&) {
    cache_.invalidate(CacheKey{CacheKind::memory, id});
  };
  return writes_.submit_for_future(std::move(job));
}

void MemoryRepository::remove_for_user(int64_t user_id, int64_t id, WriteCallback done) {
  WriteJob job;
  job.what = "remove memory";
  job.apply = [user_id, id](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached("DELETE FROM memories WHERE id = ? AND user_id = ?");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)->bind_all(id, user_id).run());
    if (conn.changes() == 0) {
      return fail(ErrorCode::not_found, fmt::format("no memory with id {}", id));
    }
    return WriteAck{id, false};
  };
  job.on_commit = [this, id](const WriteAck&) {
    cache_.invalidate(CacheKey{CacheKind::memory, id});
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

Result<std::vector<std::shared_ptr<const Memory>>> MemoryRepository::list_for_user(int64_t user_id,
                                                                                   size_t limit) {
  std::vector<std::shared_ptr<const Memory>> out;
  if (limit == 0) return out;
  auto conn = reads_.acquire();
  auto st = conn->cached(kListSql);
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(user_id, static_cast<int64_t>(std::min<size_t>(limit, 1u << 30)));
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    out.push_back(std::make_shared<const Memory>(read_memory(**st)));
  }
  return out;
}

Result<std::shared_ptr<const Memory>> MemoryRepository::get(int64_t id) {
  return read_through<Memory>(
      cache_, CacheKey{CacheKind::memory, id}, [&]() -> Result<std::shared_ptr<const Memory>> {
        auto conn = reads_.acquire();
        auto st = conn->cached(kGetMemorySql);
        if (!st) return fail(std::move(st).error());
        (*st)->bind_all(id);
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        if (!*row) return fail(ErrorCode::not_found, fmt::format("no memory with id {}", id));
        return std::make_shared<const Memory>(read_memory(**st));
      });
}

Result<std::vector<MemoryHit>> MemoryRepository::recall(int64_t user_id, std::string_view query,
                                                        size_t limit) {
  std::vector<MemoryHit> hits;
  const std::string match = match_expression(user_id, query);
  if (match.empty() || limit == 0) return hits;

  struct Candidate {
    std::shared_ptr<const Memory> memory;
    detail::MatchStats stats;
  };
  std::vector<Candidate> candidates;
  int64_t user_docs = 0;
  {
    auto conn = reads_.acquire();
    auto st = conn->cached(kRecallSql);
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(match);
    for (;;) {
      auto row = (*st)->step();
      if (!row) return fail(std::move(row).error());
      if (!*row) break;
      const auto blob = (*st)->column_blob(7);
      candidates.push_back(
          {std::make_shared<const Memory>(read_memory(**st)),
           detail::decode_match_stats(blob.data(), static_cast<int>(blob.size()))});
    }
    if (candidates.empty()) return hits;
    auto count = conn->cached(kUserCountSql);
    if (!count) return fail(std::move(count).error());
    (*count)->bind_all(user_id);
    auto row = (*count)->step();
    if (!row) return fail(std::move(row).error());
    user_docs = (*count)->column_int64(0);
  }

  // Statistics of this user's documents: every one of them that holds a query word is a
  // candidate, so document frequencies are exact; the average length is that of the
  // candidates (the user's other memories do not take part).
  const size_t phrases = candidates.front().stats.content.size();
  std::vector<double> df(phrases, 0.0);
  double total_tokens = 0;
  for (const auto& c : candidates) {
    total_tokens += c.stats.doc_tokens;
    for (size_t p = 0; p < phrases && p < c.stats.content.size(); ++p) {
      if (c.stats.content[p] + c.stats.tags[p] > 0) df[p] += 1;
    }
  }
  const double n = std::max(static_cast<double>(user_docs), static_cast<double>(candidates.size()));
  const double avg_len = std::max(1.0, total_tokens / static_cast<double>(candidates.size()));
  std::vector<double> idf(phrases);
  for (size_t p = 0; p < phrases; ++p) {
    idf[p] = std::log(1.0 + (n - df[p] + 0.5) / (df[p] + 0.5));
  }

  hits.reserve(candidates.size());
  for (auto& c : candidates) {
    const double norm = kK1 * (1.0 - kB + kB * c.stats.doc_tokens / avg_len);
    double score = 0;
    for (size_t p = 0; p < phrases && p < c.stats.content.size(); ++p) {
      const double tf = c.stats.content[p] + kTagWeight * c.stats.tags[p];
      if (tf > 0) score += idf[p] * tf * (kK1 + 1.0) / (tf + norm);
    }
    hits.push_back(MemoryHit{std::move(c.memory), score});
  }
  const size_t keep = std::min(limit, hits.size());
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(keep), hits.end(),
                    [](const MemoryHit& a, const MemoryHit& b) {
                      if (a.score != b.score) return a.score > b.score;
                      if (a.memory->importance != b.memory->importance) {
                        return a.memory->importance > b.memory->importance;
                      }
                      return a.memory->id > b.memory->id;  // newer first
                    });
  hits.resize(keep);
  return hits;
}

}  // namespace parley::storage
