#include "parley/storage/memory_repository.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "fts_match_stats.h"
#include "parley/base/text.h"
#include "parley/storage/vector_codec.h"
#include "recall_index.h"

namespace parley::storage {

namespace {
#define PARLEY_MEMORY_COLUMNS(m)                                                                   \
  m "id, " m "user_id, " m "content, " m "tags, " m "importance, " m "created_at, " m              \
    "updated_at, " m "kind, " m "event_at, " m "valid_to, " m "superseded_by, " m "confidence, " m \
    "source, " m "source_message_id, " m "content_hash, " m "access_count, " m                     \
    "last_accessed_at, " m "deleted_at, " m "external_id"
constexpr int kMemoryColumnCount = 19;
constexpr const char* kGetMemorySql =
    "SELECT " PARLEY_MEMORY_COLUMNS("") " FROM memories WHERE id = ? AND deleted_at IS NULL";
// No bm25() here: it computes document frequencies over every user's memories. Ranking is
// done below over this user's matches (see fts_match_stats.h).
// Forgotten memories never match; superseded ones only when asked (the second parameter).
constexpr const char* kRecallSql =
    "SELECT " PARLEY_MEMORY_COLUMNS("m.") ", parley_match_stats(memories_fts) "
    "FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid "
    "WHERE memories_fts MATCH ? AND m.deleted_at IS NULL AND (? OR m.superseded_by IS NULL)";
constexpr const char* kUserCountSql =
    "SELECT count(*) FROM memories WHERE user_id = ? AND deleted_at IS NULL AND (? OR "
    "superseded_by IS NULL)";
constexpr const char* kListSql =
    "SELECT " PARLEY_MEMORY_COLUMNS("") " FROM memories "
    "WHERE user_id = ? AND deleted_at IS NULL AND superseded_by IS NULL "
    "ORDER BY updated_at DESC, id DESC LIMIT ?";
constexpr const char* kEventsSql =
    "SELECT id, memory_id, user_id, op, old_text, new_text, related_id, reason, source, "
    "source_message_id, model, created_at FROM memory_events WHERE user_id = ? "
    "ORDER BY id DESC LIMIT ?";

// A user's recall index: every memory of theirs not forgotten, with its vector of (model,
// dimensions) when it has one (LEFT JOIN: memories first, each vector by its primary key).
constexpr const char* kRecallIndexSql =
    "SELECT " PARLEY_MEMORY_COLUMNS("m.") ", v.scale, v.vector FROM memories m "
    "LEFT JOIN memory_vectors v ON v.model = ? AND v.dimensions = ? AND v.memory_id = m.id "
    "WHERE m.user_id = ? AND m.deleted_at IS NULL";
constexpr const char* kRecallIndexWordsSql =
    "SELECT " PARLEY_MEMORY_COLUMNS("") " FROM memories WHERE user_id = ? AND deleted_at IS NULL";

std::optional<int64_t> optional_int(const Statement& st, int col) {
  if (st.column_is_null(col)) return std::nullopt;
  return st.column_int64(col);
}

Memory read_memory(const Statement& st) {
  Memory m;
  m.id = st.column_int64(0);
  m.user_id = st.column_int64(1);
  m.content = st.column_text(2);
  m.tags = st.column_text(3);
  m.importance = static_cast<int>(st.column_int64(4));
  m.created_at = st.column_int64(5);
  m.updated_at = st.column_int64(6);
  m.kind = st.column_text(7);
  m.event_at = optional_int(st, 8);
  m.valid_to = optional_int(st, 9);
  m.superseded_by = st.column_int64(10);
  m.confidence = st.column_double(11);
  m.source = st.column_text(12);
  m.source_message_id = st.column_int64(13);
  m.content_hash = st.column_text(14);
  m.access_count = st.column_int64(15);
  m.last_accessed_at = optional_int(st, 16);
  m.deleted_at = optional_int(st, 17);
  m.external_id = st.column_text(18);
  return m;
}

Status validate(const NewMemory& m) {
  if (m.content.empty()) return fail(ErrorCode::invalid_argument, "memory content is empty");
  if (m.user_id <= 0) return fail(ErrorCode::invalid_argument, "memory has no user");
  if (!memory_kind_known(m.kind)) {
    return fail(ErrorCode::invalid_argument, fmt::format("memory kind '{}' is not one of fact, "
                                                         "preference, event, emotion, goal, habit, "
                                                         "decision, identity, procedure, insight",
                                                         m.kind));
  }
  if (!(m.confidence >= 0 && m.confidence <= 1)) {
    return fail(ErrorCode::invalid_argument, "memory confidence is not in 0..1");
  }
  if (m.source != "user" && m.source != "tool" && m.source != "extracted" && m.source != "import") {
    return fail(ErrorCode::invalid_argument,
                fmt::format("memory source '{}' is not user, tool, extracted or import", m.source));
  }
  return {};
}

std::optional<int64_t> nonzero(int64_t v) {
  if (v == 0) return std::nullopt;
  return v;
}
std::optional<std::string> nonempty(const std::string& v) {
  if (v.empty()) return std::nullopt;
  return v;
}

// An event about `memory_id` caused by the write `m` (its reason, source and model).
MemoryEvent event_of(const NewMemory& m, int64_t memory_id, std::string op, int64_t now) {
  MemoryEvent e;
  e.memory_id = memory_id;
  e.user_id = m.user_id;
  e.op = std::move(op);
  e.reason = m.reason;
  e.source = m.source;
  e.source_message_id = m.source_message_id;
  e.model = m.model;
  e.created_at = now;
  return e;
}

// One row of the trail.
Status record_event(Connection& conn, const MemoryEvent& e) {
  auto st = conn.cached(
      "INSERT INTO memory_events(memory_id, user_id, op, old_text, new_text, related_id, reason, "
      "source, source_message_id, model, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  if (!st) return fail(std::move(st).error());
  return (*st)
      ->bind_all(e.memory_id, e.user_id, e.op, e.old_text, e.new_text, nonzero(e.related_id),
                 e.reason, e.source, nonzero(e.source_message_id), e.model, e.created_at)
      .run();
}

// The user's live (neither forgotten nor superseded) memory with this text, if any: an exact
// duplicate is never a new memory. Rows from before content_hash ('' there) are compared by text.
Result<std::optional<Memory>> live_duplicate(Connection& conn, int64_t user_id,
                                             const std::string& hash, const std::string& content) {
  auto st = conn.cached("SELECT " PARLEY_MEMORY_COLUMNS(
      "") " FROM memories WHERE user_id = ? "
          "AND deleted_at IS NULL AND superseded_by IS NULL AND content_hash IN (?, '') "
          "AND (content_hash = ? OR content = ?) LIMIT 1");
  if (!st) return fail(std::move(st).error());
  // `content_hash IN (…)` lets the lookup use all of memories_hash (user_id, content_hash):
  // with the OR alone SQLite used user_id only and read every live memory of the user, for
  // every memory added (a user with 10,000 memories: 10,000 rows read per add).
  (*st)->bind_all(user_id, hash, hash, content);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<Memory>();
  return std::optional<Memory>(read_memory(**st));
}

Result<std::optional<Memory>> read_one(Connection& conn, const char* sql, int64_t a, int64_t b) {
  auto st = conn.cached(sql);
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(a, b);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<Memory>();
  return std::optional<Memory>(read_memory(**st));
}

constexpr const char* kLiveOfUserSql =
    "SELECT " PARLEY_MEMORY_COLUMNS("") " FROM memories WHERE id = ? AND user_id = ? AND "
    "deleted_at IS NULL";
}  // namespace

bool memory_kind_known(std::string_view kind) {
  return std::any_of(std::begin(kMemoryKinds), std::end(kMemoryKinds),
                     [&](const char* k) { return kind == k; });
}

std::string MemoryRepository::content_hash(std::string_view content) {
  // FNV-1a 64 of the words, lower-cased (ASCII), single-spaced.
  uint64_t h = 1469598103934665603ULL;
  bool first = true;
  for (const auto word : search_words(content)) {
    if (!first) h = (h ^ static_cast<unsigned char>(' ')) * 1099511628211ULL;
    first = false;
    for (const char c : word) {
      const auto u = static_cast<unsigned char>(c);
      const unsigned char lower = (u >= 'A' && u <= 'Z') ? static_cast<unsigned char>(u + 32) : u;
      h = (h ^ lower) * 1099511628211ULL;
    }
  }
  return fmt::format("{:016x}", h);
}

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

Memory MemoryRepository::record_of(const NewMemory& m, int64_t now) {
  Memory rec;
  rec.user_id = m.user_id;
  rec.content = m.content;
  rec.tags = m.tags;
  rec.importance = m.importance;
  rec.created_at = rec.updated_at = now;
  rec.kind = m.kind;
  rec.event_at = m.event_at;
  rec.confidence = m.confidence;
  rec.source = m.source;
  rec.source_message_id = m.source_message_id;
  rec.content_hash = content_hash(m.content);
  rec.external_id = m.external_id;
  return rec;
}

namespace {
// Inserts `rec` (its id set from the row), with its ADD event.
Status insert_memory(Connection& conn, Memory& rec, const NewMemory& m) {
  auto st = conn.cached(
      "INSERT INTO memories(user_id, content, tags, importance, created_at, updated_at, kind, "
      "event_at, confidence, source, source_message_id, content_hash, external_id) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!st) return fail(std::move(st).error());
  PARLEY_TRY((*st)
                 ->bind_all(rec.user_id, rec.content, rec.tags, rec.importance, rec.created_at,
                            rec.updated_at, rec.kind, rec.event_at, rec.confidence, rec.source,
                            nonzero(rec.source_message_id), rec.content_hash,
                            nonempty(rec.external_id))
                 .run());
  rec.id = conn.last_insert_rowid();
  MemoryEvent e = event_of(m, rec.id, "ADD", rec.created_at);
  e.new_text = rec.content;
  return record_event(conn, e);
}

// Rewrites `old` (a live memory) with what `m` says, keeping its identity; `rec` is the result.
Status rewrite_memory(Connection& conn, const Memory& old, const NewMemory& m, int64_t now,
                      Memory& rec) {
  rec = old;
  rec.content = m.content;
  rec.tags = m.tags;
  rec.importance = m.importance;
  rec.kind = m.kind;
  if (m.event_at) rec.event_at = m.event_at;
  rec.confidence = m.confidence;
  rec.content_hash = MemoryRepository::content_hash(m.content);
  rec.updated_at = now;
  auto st = conn.cached(
      "UPDATE memories SET content = ?, tags = ?, importance = ?, kind = ?, event_at = ?, "
      "confidence = ?, content_hash = ?, updated_at = ? WHERE id = ?");
  if (!st) return fail(std::move(st).error());
  PARLEY_TRY((*st)
                 ->bind_all(rec.content, rec.tags, rec.importance, rec.kind, rec.event_at,
                            rec.confidence, rec.content_hash, rec.updated_at, rec.id)
                 .run());
  MemoryEvent e = event_of(m, rec.id, "UPDATE", now);
  e.old_text = old.content;
  e.new_text = rec.content;
  return record_event(conn, e);
}
}  // namespace

namespace {
using Records = std::vector<std::shared_ptr<const Memory>>;
using Apply = std::function<Result<WriteAck>(Connection&)>;

// `apply`, then, when it succeeds, the records it wrote (`touched`) as the recall index holds
// them, tokenised on the writer's connection into `change` for the job's on_commit. Starts over
// when the writer replays the batch.
Apply noting_written(std::shared_ptr<RecallChange> change, std::shared_ptr<const Records> touched,
                     Apply apply) {
  return [change = std::move(change), touched = std::move(touched),
          apply = std::move(apply)](Connection& conn) -> Result<WriteAck> {
    *change = RecallChange{};
    auto ack = apply(conn);
    if (!ack || touched->empty()) return ack;
    // Should the words not tokenise, the write stands and the index is read again.
    auto tokenizer = detail::FtsTokenizer::of(conn);
    if (!tokenizer) {
      change->unknown = true;
      return ack;
    }
    for (const auto& rec : *touched) {
      auto doc = RecallIndex::doc_of(**tokenizer, rec);
      if (!doc) {
        change->unknown = true;
        break;
      }
      change->written.push_back(std::move(*doc));
    }
    return ack;
  };
}
}  // namespace

void MemoryRepository::patch_recall_index(int64_t user_id, const RecallChange& change) {
  if (change.written.empty() && change.forgotten.empty() && !change.vector && !change.unknown) {
    return;  // nothing of the user's memories changed (a duplicate: a NOOP event only)
  }
  std::shared_ptr<const RecallIndex> replaced;  // freed after the cache's mutex is released
  cache_.on_commit(CacheKey{CacheKind::recall, user_id}, [&](CacheValue& value) {
    auto* index = std::get_if<std::shared_ptr<const RecallIndex>>(&value);
    if (index == nullptr) return false;
    replaced = *index;
    auto next = replaced->patched(change);
    if (!next) return false;
    *index = std::move(next);
    return true;
  });
}

void MemoryRepository::drop_recall_index(int64_t user_id) {
  RecallChange unknown;
  unknown.unknown = true;
  patch_recall_index(user_id, unknown);
}

void MemoryRepository::cache_records(const std::vector<std::shared_ptr<const Memory>>& records) {
  for (const auto& rec : records) {
    const CacheKey key{CacheKind::memory, rec->id};
    cache_.on_commit(key, [](CacheValue&) { return false; });
    cache_.put(key, rec);
  }
}

WriteJob MemoryRepository::make_add_job(NewMemory memory) {
  auto m = std::make_shared<NewMemory>(std::move(memory));
  auto touched = std::make_shared<std::vector<std::shared_ptr<const Memory>>>();
  auto recall = std::make_shared<RecallChange>();
  const int64_t now = clock_.now_ms();

  WriteJob job;
  job.what = "add memory";
  job.apply = [m, touched, now](Connection& conn) -> Result<WriteAck> {
    touched->clear();
    auto rec = std::make_shared<Memory>(record_of(*m, now));
    // An importer's id already known: that memory is updated, not added again.
    if (!m->external_id.empty()) {
      auto st = conn.cached("SELECT " PARLEY_MEMORY_COLUMNS(
          "") " FROM memories WHERE user_id = "
              "? AND external_id = ?");
      if (!st) return fail(std::move(st).error());
      (*st)->bind_all(m->user_id, m->external_id);
      auto row = (*st)->step();
      if (!row) return fail(std::move(row).error());
      if (*row) {
        Memory old = read_memory(**st);
        (*st)->reset();
        if (old.deleted_at) {
          // Forgotten by the user: an import never brings it back.
          return WriteAck{old.id, false};
        }
        const bool same = old.content == m->content && old.kind == m->kind &&
                          old.importance == m->importance && old.tags == m->tags &&
                          (!m->event_at || old.event_at == m->event_at);
        if (same || old.superseded_by != 0) return WriteAck{old.id, false};  // nothing new
        PARLEY_TRY(rewrite_memory(conn, old, *m, now, *rec));
        touched->push_back(rec);
        return WriteAck{rec->id, false};
      }
    }
    auto same = live_duplicate(conn, m->user_id, rec->content_hash, rec->content);
    if (!same) return fail(std::move(same).error());
    if (*same) {
      MemoryEvent e = event_of(*m, (*same)->id, "NOOP", now);
      e.new_text = m->content;
      e.reason = "the same text is already remembered";
      PARLEY_TRY(record_event(conn, e));
      return WriteAck{(*same)->id, false};
    }
    PARLEY_TRY(insert_memory(conn, *rec, *m));
    touched->push_back(rec);
    return WriteAck{rec->id, true};
  };
  job.apply = noting_written(recall, touched, std::move(job.apply));
  job.on_commit = [this, touched, recall, user = m->user_id](const WriteAck&) {
    cache_records(*touched);
    patch_recall_index(user, *recall);
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

void MemoryRepository::update_for_user(int64_t id, NewMemory memory, WriteCallback done) {
  if (auto v = validate(memory); !v) {
    done(fail(std::move(v).error()));
    return;
  }
  auto m = std::make_shared<NewMemory>(std::move(memory));
  auto touched = std::make_shared<std::vector<std::shared_ptr<const Memory>>>();
  auto recall = std::make_shared<RecallChange>();
  const int64_t now = clock_.now_ms();
  WriteJob job;
  job.what = "update memory";
  job.apply = [m, touched, id, now](Connection& conn) -> Result<WriteAck> {
    touched->clear();
    auto old = read_one(conn, kLiveOfUserSql, id, m->user_id);
    if (!old) return fail(std::move(old).error());
    if (!*old) return fail(ErrorCode::not_found, fmt::format("no memory with id {}", id));
    auto rec = std::make_shared<Memory>();
    PARLEY_TRY(rewrite_memory(conn, **old, *m, now, *rec));
    touched->push_back(rec);
    return WriteAck{id, false};
  };
  job.apply = noting_written(recall, touched, std::move(job.apply));
  job.on_commit = [this, touched, recall, user = m->user_id](const WriteAck&) {
    cache_records(*touched);
    patch_recall_index(user, *recall);
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

std::future<Result<WriteAck>> MemoryRepository::update(int64_t id, NewMemory memory) {
  auto promise = std::make_shared<std::promise<Result<WriteAck>>>();
  auto future = promise->get_future();
  if (memory.user_id <= 0) {
    // Callers that do not know the user (tests, tools of the operator): the row's own.
    auto found = get(id);
    if (!found) {
      promise->set_value(fail(std::move(found).error()));
      return future;
    }
    memory.user_id = (*found)->user_id;
  }
  update_for_user(id, std::move(memory),
                  [promise](Result<WriteAck> r) { promise->set_value(std::move(r)); });
  return future;
}

void MemoryRepository::supersede_for_user(int64_t old_id, NewMemory memory, WriteCallback done) {
  if (auto v = validate(memory); !v) {
    done(fail(std::move(v).error()));
    return;
  }
  auto m = std::make_shared<NewMemory>(std::move(memory));
  auto touched = std::make_shared<std::vector<std::shared_ptr<const Memory>>>();
  auto recall = std::make_shared<RecallChange>();
  const int64_t now = clock_.now_ms();
  WriteJob job;
  job.what = "supersede memory";
  job.apply = [m, touched, old_id, now](Connection& conn) -> Result<WriteAck> {
    touched->clear();
    auto old = read_one(conn, kLiveOfUserSql, old_id, m->user_id);
    if (!old) return fail(std::move(old).error());
    if (!*old || (*old)->superseded_by != 0) {
      return fail(ErrorCode::not_found, fmt::format("no current memory with id {}", old_id));
    }
    auto rec = std::make_shared<Memory>(record_of(*m, now));
    PARLEY_TRY(insert_memory(conn, *rec, *m));
    auto st = conn.cached("UPDATE memories SET valid_to = ?, superseded_by = ? WHERE id = ?");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)->bind_all(now, rec->id, old_id).run());
    auto before = std::make_shared<Memory>(**old);
    before->valid_to = now;
    before->superseded_by = rec->id;
    MemoryEvent e = event_of(*m, old_id, "SUPERSEDE", now);
    e.old_text = (*old)->content;
    e.new_text = rec->content;
    e.related_id = rec->id;
    PARLEY_TRY(record_event(conn, e));
    touched->push_back(before);
    touched->push_back(rec);
    return WriteAck{rec->id, true};
  };
  job.apply = noting_written(recall, touched, std::move(job.apply));
  job.on_commit = [this, touched, recall, user = m->user_id](const WriteAck&) {
    cache_records(*touched);
    patch_recall_index(user, *recall);
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

std::future<Result<WriteAck>> MemoryRepository::remove(int64_t id) {
  auto user = std::make_shared<int64_t>(0);
  WriteJob job;
  job.what = "remove memory";
  job.apply = [id, user](Connection& conn) -> Result<WriteAck> {
    auto owner = conn.cached("SELECT user_id FROM memories WHERE id = ?");
    if (!owner) return fail(std::move(owner).error());
    (*owner)->bind_all(id);
    auto row = (*owner)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) return fail(ErrorCode::not_found, fmt::format("no memory with id {}", id));
    *user = (*owner)->column_int64(0);
    (*owner)->reset();
    auto st = conn.cached("DELETE FROM memories WHERE id = ?");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)->bind_all(id).run());
    return WriteAck{id, false};
  };
  job.on_commit = [this, id, user](const WriteAck&) {
    cache_.invalidate(CacheKey{CacheKind::memory, id});
    // Dropped, not patched: the memory it superseded (superseded_by … ON DELETE SET NULL) is
    // current again.
    drop_recall_index(*user);
  };
  return writes_.submit_for_future(std::move(job));
}

void MemoryRepository::remove_for_user(int64_t user_id, int64_t id, WriteCallback done,
                                       std::string reason) {
  const int64_t now = clock_.now_ms();
  WriteJob job;
  job.what = "forget memory";
  job.apply = [user_id, id, now, reason = std::move(reason)](Connection& conn) -> Result<WriteAck> {
    auto old = read_one(conn, kLiveOfUserSql, id, user_id);
    if (!old) return fail(std::move(old).error());
    if (!*old) return fail(ErrorCode::not_found, fmt::format("no memory with id {}", id));
    auto st = conn.cached("UPDATE memories SET deleted_at = ? WHERE id = ?");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)->bind_all(now, id).run());
    MemoryEvent e;
    e.memory_id = id;
    e.user_id = user_id;
    e.op = "FORGET";
    e.old_text = (*old)->content;
    e.reason = reason;
    e.source = "user";
    e.created_at = now;
    PARLEY_TRY(record_event(conn, e));
    return WriteAck{id, false};
  };
  job.on_commit = [this, id, user_id](const WriteAck&) {
    cache_.invalidate(CacheKey{CacheKind::memory, id});
    RecallChange forgotten;
    forgotten.forgotten.push_back(id);
    patch_recall_index(user_id, forgotten);
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

namespace {
// The user's newest automatic change not undone yet, whose memory is still theirs (not
// forgotten since), with what undoing it needs; none when there is nothing to undo.
Result<std::optional<MemoryEvent>> last_undoable(Connection& conn, int64_t user_id) {
  auto st = conn.cached(
      "SELECT e.id, e.memory_id, e.op, e.old_text, e.new_text, e.related_id FROM memory_events e "
      "JOIN memories m ON m.id = e.memory_id "
      "WHERE e.user_id = ? AND e.source = 'extracted' AND e.op IN ('ADD', 'UPDATE', 'SUPERSEDE') "
      "AND m.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM memory_events u "
      "WHERE u.user_id = e.user_id AND u.reason = 'undo:' || e.id) "
      "ORDER BY e.id DESC LIMIT 1");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(user_id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<MemoryEvent>();
  MemoryEvent e;
  e.id = (*st)->column_int64(0);
  e.memory_id = (*st)->column_int64(1);
  e.user_id = user_id;
  e.op = (*st)->column_text(2);
  if (!(*st)->column_is_null(3)) e.old_text = (*st)->column_text(3);
  if (!(*st)->column_is_null(4)) e.new_text = (*st)->column_text(4);
  e.related_id = (*st)->column_int64(5);
  e.source = "extracted";
  (*st)->reset();
  return std::optional<MemoryEvent>(std::move(e));
}

// Marks the user's memory `id` forgotten by an undo (its FORGET event says which).
Status forget_by_undo(Connection& conn, const Memory& m, const std::string& reason, int64_t now) {
  auto st = conn.cached("UPDATE memories SET deleted_at = ? WHERE id = ?");
  if (!st) return fail(std::move(st).error());
  PARLEY_TRY((*st)->bind_all(now, m.id).run());
  MemoryEvent e;
  e.memory_id = m.id;
  e.user_id = m.user_id;
  e.op = "FORGET";
  e.old_text = m.content;
  e.reason = reason;
  e.source = "user";
  e.created_at = now;
  return record_event(conn, e);
}
}  // namespace

void MemoryRepository::undo_last_extracted(int64_t user_id,
                                           std::function<void(Result<MemoryEvent>)> done) {
  const int64_t now = clock_.now_ms();
  auto undone = std::make_shared<MemoryEvent>();
  auto touched = std::make_shared<std::vector<std::shared_ptr<const Memory>>>();
  auto forgotten = std::make_shared<std::vector<int64_t>>();
  auto recall = std::make_shared<RecallChange>();
  WriteJob job;
  job.what = "undo an automatic memory change";
  job.apply = [user_id, now, undone, touched, forgotten](Connection& conn) -> Result<WriteAck> {
    touched->clear();
    forgotten->clear();
    auto found = last_undoable(conn, user_id);
    if (!found) return fail(std::move(found).error());
    if (!*found) {
      return fail(ErrorCode::not_found, "no automatic change to your memories is left to undo");
    }
    *undone = **found;
    const std::string reason = fmt::format("undo:{}", undone->id);
    auto target = read_one(conn, kLiveOfUserSql, undone->memory_id, user_id);
    if (!target) return fail(std::move(target).error());
    if (!*target) return fail(ErrorCode::not_found, "the memory to undo is gone");
    const Memory& m = **target;
    if (undone->op == "ADD") {
      PARLEY_TRY(forget_by_undo(conn, m, reason, now));
      forgotten->push_back(m.id);
    } else if (undone->op == "UPDATE") {
      NewMemory back;
      back.user_id = user_id;
      back.content = undone->old_text.value_or(m.content);
      back.tags = m.tags;
      back.importance = m.importance;
      back.kind = m.kind;
      back.confidence = m.confidence;
      back.source = "user";
      back.reason = reason;
      auto rec = std::make_shared<Memory>();
      PARLEY_TRY(rewrite_memory(conn, m, back, now, *rec));
      touched->push_back(rec);
    } else {  // SUPERSEDE: the old memory current again, its successor forgotten
      auto successor = read_one(conn, kLiveOfUserSql, undone->related_id, user_id);
      if (!successor) return fail(std::move(successor).error());
      if (*successor) {
        PARLEY_TRY(forget_by_undo(conn, **successor, reason, now));
        forgotten->push_back((*successor)->id);
      }
      auto st = conn.cached(
          "UPDATE memories SET valid_to = NULL, superseded_by = NULL, updated_at = ? WHERE id = ?");
      if (!st) return fail(std::move(st).error());
      PARLEY_TRY((*st)->bind_all(now, m.id).run());
      auto rec = std::make_shared<Memory>(m);
      rec->valid_to.reset();
      rec->superseded_by = 0;
      rec->updated_at = now;
      MemoryEvent e;
      e.memory_id = m.id;
      e.user_id = user_id;
      e.op = "RESTORE";
      e.new_text = m.content;
      e.reason = reason;
      e.source = "user";
      e.created_at = now;
      PARLEY_TRY(record_event(conn, e));
      touched->push_back(rec);
    }
    return WriteAck{m.id, false};
  };
  job.apply = noting_written(recall, touched, std::move(job.apply));
  job.on_commit = [this, touched, forgotten, recall, user_id](const WriteAck&) {
    for (const int64_t id : *forgotten) cache_.invalidate(CacheKey{CacheKind::memory, id});
    cache_records(*touched);
    recall->forgotten = *forgotten;
    patch_recall_index(user_id, *recall);
  };
  job.done = [undone, done = std::move(done)](Result<WriteAck> ack) {
    if (!ack) return done(fail(std::move(ack).error()));
    done(*undone);
  };
  writes_.submit(std::move(job));
}

void MemoryRepository::relate(int64_t memory_id, int64_t related_id, std::string type,
                              double strength, WriteCallback done) {
  if (memory_id <= 0 || related_id <= 0 || memory_id == related_id || type.empty() ||
      !(strength >= 0 && strength <= 1)) {
    done(fail(ErrorCode::invalid_argument,
              fmt::format("memory relation {} → {} ({}, {}) is not valid", memory_id, related_id,
                          type, strength)));
    return;
  }
  const int64_t now = clock_.now_ms();
  WriteJob job;
  job.what = "relate memories";
  job.apply = [memory_id, related_id, type = std::move(type), strength,
               now](Connection& conn) -> Result<WriteAck> {
    // Both the same user's: a relation never links two people's memories.
    auto same = conn.cached(
        "SELECT count(*) FROM memories a JOIN memories b ON a.user_id = b.user_id "
        "WHERE a.id = ? AND b.id = ?");
    if (!same) return fail(std::move(same).error());
    (*same)->bind_all(memory_id, related_id);
    auto row = (*same)->step();
    if (!row) return fail(std::move(row).error());
    const bool ok = *row && (*same)->column_int64(0) == 1;
    (*same)->reset();
    if (!ok) {
      return fail(ErrorCode::not_found,
                  fmt::format("memories {} and {} are not one user's", memory_id, related_id));
    }
    auto st = conn.cached(
        "INSERT INTO memory_relations(memory_id, related_id, type, strength, created_at) "
        "VALUES (?,?,?,?,?) ON CONFLICT(memory_id, related_id, type) DO UPDATE SET "
        "strength = excluded.strength");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)->bind_all(memory_id, related_id, type, strength, now).run());
    return WriteAck{memory_id, true};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

Result<std::vector<MemoryRepository::Relation>> MemoryRepository::relations(int64_t memory_id) {
  std::vector<Relation> out;
  auto conn = reads_.acquire();
  auto st = conn->cached(
      "SELECT related_id, type, strength FROM memory_relations WHERE memory_id = ? "
      "ORDER BY strength DESC, related_id");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(memory_id);
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    out.push_back({(*st)->column_int64(0), (*st)->column_text(1), (*st)->column_double(2)});
  }
  return out;
}

Result<MemoryRepository::ExtractionState> MemoryRepository::extraction_state(
    int64_t conversation_id) {
  auto conn = reads_.acquire();
  auto st =
      conn->cached("SELECT memory_off, memory_extracted_through FROM conversations WHERE id = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(conversation_id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) {
    return fail(ErrorCode::not_found, fmt::format("no conversation with id {}", conversation_id));
  }
  ExtractionState out{(*st)->column_int64(0) != 0, (*st)->column_int64(1)};
  (*st)->reset();
  return out;
}

void MemoryRepository::set_off_record(int64_t conversation_id, bool off, WriteCallback done) {
  WriteJob job;
  job.what = "set off the record";
  job.apply = [conversation_id, off](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached("UPDATE conversations SET memory_off = ? WHERE id = ?");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)->bind_all(off ? 1 : 0, conversation_id).run());
    if (conn.changes() == 0) {
      return fail(ErrorCode::not_found, fmt::format("no conversation with id {}", conversation_id));
    }
    return WriteAck{conversation_id, false};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

void MemoryRepository::set_extracted_through(int64_t conversation_id, int64_t message_id,
                                             WriteCallback done) {
  WriteJob job;
  job.what = "mark messages read for memories";
  job.apply = [conversation_id, message_id](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "UPDATE conversations SET memory_extracted_through = max(memory_extracted_through, ?) "
        "WHERE id = ?");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)->bind_all(message_id, conversation_id).run());
    if (conn.changes() == 0) {
      return fail(ErrorCode::not_found, fmt::format("no conversation with id {}", conversation_id));
    }
    return WriteAck{conversation_id, false};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

std::future<Result<WriteAck>> MemoryRepository::purge_forgotten(int64_t before_ms) {
  auto users = std::make_shared<std::vector<int64_t>>();
  WriteJob job;
  job.what = "purge forgotten memories";
  job.apply = [before_ms, users](Connection& conn) -> Result<WriteAck> {
    users->clear();
    auto owners = conn.cached(
        "SELECT DISTINCT user_id FROM memories WHERE deleted_at IS NOT NULL AND deleted_at < ?");
    if (!owners) return fail(std::move(owners).error());
    (*owners)->bind_all(before_ms);
    for (;;) {
      auto row = (*owners)->step();
      if (!row) return fail(std::move(row).error());
      if (!*row) break;
      users->push_back((*owners)->column_int64(0));
    }
    // Their vectors and relations go with them (ON DELETE CASCADE); the trail stays.
    auto st = conn.cached("DELETE FROM memories WHERE deleted_at IS NOT NULL AND deleted_at < ?");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)->bind_all(before_ms).run());
    return WriteAck{conn.changes(), false};
  };
  // Forgotten memories are in no recall index, but a memory one of them superseded is current
  // again (superseded_by … ON DELETE SET NULL): those users' indexes are read again.
  job.on_commit = [this, users](const WriteAck&) {
    for (const int64_t user : *users) drop_recall_index(user);
  };
  return writes_.submit_for_future(std::move(job));
}

namespace {
// A vector and what it is for, validated and quantised before the job is queued (the caller's
// span does not outlive the call).
Result<QuantizedVector> checked_vector(const std::string& model, int dimensions,
                                       std::span<const float> v) {
  if (model.empty()) return fail(ErrorCode::invalid_argument, "vector has no model");
  if (dimensions <= 0 || v.size() != static_cast<size_t>(dimensions)) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("vector of {} elements for {} dimensions", v.size(), dimensions));
  }
  return quantize(v);
}
}  // namespace

void MemoryRepository::put_vector(int64_t memory_id, std::string model, int dimensions,
                                  std::span<const float> v, WriteCallback done) {
  auto q = checked_vector(model, dimensions, v);
  if (!q) {
    done(fail(std::move(q).error()));
    return;
  }
  const int64_t now = clock_.now_ms();
  auto stored = std::make_shared<RecallChange>();
  stored->vector = RecallChange::Vector{memory_id, std::move(model), dimensions,
                                        std::make_shared<const QuantizedVector>(std::move(*q))};
  auto user = std::make_shared<int64_t>(0);
  WriteJob job;
  job.what = "put memory vector";
  job.apply = [memory_id, stored, user, now](Connection& conn) -> Result<WriteAck> {
    const RecallChange::Vector& vec = *stored->vector;
    // A forgotten memory is never embedded again (a background job may race the forget).
    auto live = conn.cached("SELECT user_id FROM memories WHERE id = ? AND deleted_at IS NULL");
    if (!live) return fail(std::move(live).error());
    (*live)->bind_all(memory_id);
    auto found = (*live)->step();
    if (!found) return fail(std::move(found).error());
    if (*found) *user = (*live)->column_int64(0);
    (*live)->reset();
    if (!*found) return fail(ErrorCode::not_found, fmt::format("no memory with id {}", memory_id));
    auto had = conn.cached(
        "SELECT 1 FROM memory_vectors WHERE model = ? AND dimensions = ? AND memory_id = ?");
    if (!had) return fail(std::move(had).error());
    (*had)->bind_all(vec.model, vec.dimensions, memory_id);
    auto replaced = (*had)->step();
    if (!replaced) return fail(std::move(replaced).error());
    (*had)->reset();
    auto st = conn.cached(
        "INSERT INTO memory_vectors(memory_id, model, dimensions, scale, vector, created_at) "
        "VALUES (?,?,?,?,?,?) ON CONFLICT(model, dimensions, memory_id) DO UPDATE SET "
        "scale = excluded.scale, vector = excluded.vector, created_at = excluded.created_at");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)
                   ->bind_all(memory_id, vec.model, vec.dimensions,
                              static_cast<double>(vec.value->scale), encode(*vec.value), now)
                   .run());
    return WriteAck{memory_id, !*replaced};
  };
  job.on_commit = [this, stored, user](const WriteAck&) { patch_recall_index(*user, *stored); };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

std::future<Result<WriteAck>> MemoryRepository::put_vector(int64_t memory_id, std::string model,
                                                           int dimensions,
                                                           std::span<const float> v) {
  auto promise = std::make_shared<std::promise<Result<WriteAck>>>();
  auto future = promise->get_future();
  put_vector(memory_id, std::move(model), dimensions, v,
             [promise](Result<WriteAck> r) { promise->set_value(std::move(r)); });
  return future;
}

Result<std::vector<int64_t>> MemoryRepository::memories_without_vector(int64_t user_id,
                                                                       std::string_view model,
                                                                       int dimensions,
                                                                       size_t limit) {
  std::vector<int64_t> out;
  if (limit == 0) return out;
  auto conn = reads_.acquire();
  auto st = conn->cached(
      "SELECT m.id FROM memories m WHERE m.user_id = ? AND m.deleted_at IS NULL AND "
      "m.superseded_by IS NULL AND NOT EXISTS (SELECT 1 FROM memory_vectors v WHERE v.model = ? "
      "AND v.dimensions = ? AND v.memory_id = m.id) ORDER BY m.id LIMIT ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(user_id, model, dimensions,
                  static_cast<int64_t>(std::min<size_t>(limit, 1u << 30)));
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    out.push_back((*st)->column_int64(0));
  }
  return out;
}

Result<std::vector<Memory>> MemoryRepository::unembedded_after(int64_t after_id,
                                                               std::string_view model,
                                                               int dimensions, size_t limit) {
  std::vector<Memory> out;
  if (limit == 0) return out;
  auto conn = reads_.acquire();
  auto st = conn->cached("SELECT " PARLEY_MEMORY_COLUMNS(
      "m.") " FROM memories m WHERE m.id > ? AND m.deleted_at IS NULL AND "
            "m.superseded_by IS NULL AND NOT EXISTS (SELECT 1 FROM memory_vectors v WHERE "
            "v.model = ? AND v.dimensions = ? AND v.memory_id = m.id) ORDER BY m.id LIMIT ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(after_id, model, dimensions,
                  static_cast<int64_t>(std::min<size_t>(limit, 1u << 30)));
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    out.push_back(read_memory(**st));
  }
  return out;
}

std::string MemoryRepository::embedding_text_hash(std::string_view text) {
  uint64_t h = 1469598103934665603ULL;
  for (const char c : text) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  return fmt::format("{:016x}-{}", h, text.size());
}

Result<std::optional<QuantizedVector>> MemoryRepository::vector_of(int64_t memory_id,
                                                                   std::string_view model,
                                                                   int dimensions) {
  auto conn = reads_.acquire();
  auto st = conn->cached(
      "SELECT scale, vector FROM memory_vectors WHERE model = ? AND dimensions = ? AND "
      "memory_id = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(model, dimensions, memory_id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<QuantizedVector>();
  auto q = decode((*st)->column_blob(1), (*st)->column_double(0), dimensions);
  (*st)->reset();
  if (!q) {
    return fail(ErrorCode::data_loss,
                fmt::format("vector of memory {} ({}): {}", memory_id, model, q.error().message));
  }
  return std::optional<QuantizedVector>(std::move(*q));
}

Result<std::optional<QuantizedVector>> MemoryRepository::cached_embedding(std::string_view model,
                                                                          int dimensions,
                                                                          std::string_view text) {
  auto conn = reads_.acquire();
  auto st = conn->cached(
      "SELECT scale, vector FROM embedding_cache WHERE model = ? AND dimensions = ? AND "
      "text_hash = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(model, dimensions, embedding_text_hash(text));
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<QuantizedVector>();
  auto q = decode((*st)->column_blob(1), (*st)->column_double(0), dimensions);
  if (!q) {
    return fail(ErrorCode::data_loss,
                fmt::format("embedding cache row of {}: {}", model, q.error().message));
  }
  return std::optional<QuantizedVector>(std::move(*q));
}

void MemoryRepository::put_cached_embedding(std::string model, int dimensions,
                                            std::string_view text, std::span<const float> v,
                                            WriteCallback done) {
  auto q = checked_vector(model, dimensions, v);
  if (!q) {
    done(fail(std::move(q).error()));
    return;
  }
  const int64_t now = clock_.now_ms();
  WriteJob job;
  job.what = "put cached embedding";
  job.apply = [model = std::move(model), dimensions, hash = embedding_text_hash(text),
               q = std::move(*q), now](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "INSERT INTO embedding_cache(model, dimensions, text_hash, scale, vector, created_at) "
        "VALUES (?,?,?,?,?,?) ON CONFLICT(model, dimensions, text_hash) DO UPDATE SET "
        "scale = excluded.scale, vector = excluded.vector, created_at = excluded.created_at");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)
                   ->bind_all(model, dimensions, hash, static_cast<double>(q.scale), encode(q), now)
                   .run());
    return WriteAck{0, true};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

std::future<Result<WriteAck>> MemoryRepository::put_cached_embedding(std::string model,
                                                                     int dimensions,
                                                                     std::string_view text,
                                                                     std::span<const float> v) {
  auto promise = std::make_shared<std::promise<Result<WriteAck>>>();
  auto future = promise->get_future();
  put_cached_embedding(std::move(model), dimensions, text, v,
                       [promise](Result<WriteAck> r) { promise->set_value(std::move(r)); });
  return future;
}

Result<std::vector<MemoryHit>> MemoryRepository::nearest(int64_t user_id,
                                                         const QuantizedVector& query,
                                                         std::string_view model, int dimensions,
                                                         size_t limit, bool include_superseded) {
  std::vector<MemoryHit> out;
  if (limit == 0) return out;
  struct Scored {
    int64_t id;
    float similarity;
  };
  std::vector<Scored> scored;
  {
    auto conn = reads_.acquire();
    // Driven by the user's memories, each vector found by its primary key: other users' and
    // other models' vectors are never read. CROSS JOIN fixes that order; left to itself (no
    // ANALYZE) the planner scans every user's vectors of the model.
    auto st = conn->cached(
        "SELECT m.id, v.scale, v.vector FROM memories m CROSS JOIN memory_vectors v ON v.model = ? "
        "AND "
        "v.dimensions = ? AND v.memory_id = m.id WHERE m.user_id = ? AND m.deleted_at IS NULL AND "
        "(? OR m.superseded_by IS NULL)");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(model, dimensions, user_id, static_cast<int64_t>(include_superseded ? 1 : 0));
    for (;;) {
      auto row = (*st)->step();
      if (!row) return fail(std::move(row).error());
      if (!*row) break;
      auto d = dot(query, (*st)->column_blob(2), static_cast<float>((*st)->column_double(1)));
      if (!d) return fail(ErrorCode::data_loss, d.error().message);
      // Orthogonal or opposite: not found, however few vectors the user has.
      if (*d > 0) scored.push_back({(*st)->column_int64(0), *d});
    }
  }
  const size_t keep = std::min(limit, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(keep),
                    scored.end(), [](const Scored& a, const Scored& b) {
                      if (a.similarity != b.similarity) return a.similarity > b.similarity;
                      return a.id > b.id;  // newer first
                    });
  scored.resize(keep);
  out.reserve(keep);
  for (const auto& s : scored) {
    auto m = get(s.id);
    if (!m) {
      if (m.error().code == ErrorCode::not_found) continue;  // forgotten since the scan
      return fail(std::move(m).error());
    }
    out.push_back(MemoryHit{std::move(*m), static_cast<double>(s.similarity)});
  }
  return out;
}

Result<std::vector<MemoryEvent>> MemoryRepository::events_for_user(int64_t user_id, size_t limit) {
  std::vector<MemoryEvent> out;
  auto conn = reads_.acquire();
  auto st = conn->cached(kEventsSql);
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(user_id, static_cast<int64_t>(std::min<size_t>(limit, 1u << 30)));
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    MemoryEvent e;
    e.id = (*st)->column_int64(0);
    e.memory_id = (*st)->column_int64(1);
    e.user_id = (*st)->column_int64(2);
    e.op = (*st)->column_text(3);
    if (!(*st)->column_is_null(4)) e.old_text = (*st)->column_text(4);
    if (!(*st)->column_is_null(5)) e.new_text = (*st)->column_text(5);
    e.related_id = (*st)->column_int64(6);
    e.reason = (*st)->column_text(7);
    e.source = (*st)->column_text(8);
    e.source_message_id = (*st)->column_int64(9);
    e.model = (*st)->column_text(10);
    e.created_at = (*st)->column_int64(11);
    out.push_back(std::move(e));
  }
  return out;
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
                                                        size_t limit, bool include_superseded) {
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
    (*st)->bind_all(match, static_cast<int64_t>(include_superseded ? 1 : 0));
    for (;;) {
      auto row = (*st)->step();
      if (!row) return fail(std::move(row).error());
      if (!*row) break;
      const auto blob = (*st)->column_blob(kMemoryColumnCount);
      candidates.push_back(
          {std::make_shared<const Memory>(read_memory(**st)),
           detail::decode_match_stats(blob.data(), static_cast<int>(blob.size()))});
    }
    if (candidates.empty()) return hits;
    auto count = conn->cached(kUserCountSql);
    if (!count) return fail(std::move(count).error());
    (*count)->bind_all(user_id, static_cast<int64_t>(include_superseded ? 1 : 0));
    auto row = (*count)->step();
    if (!row) return fail(std::move(row).error());
    user_docs = (*count)->column_int64(0);
  }

  // Statistics of this user's documents (see bm25_scores). The first phrase is the user_id
  // column's: it has no instances in content or tags, so it adds nothing to any score.
  const size_t phrases = candidates.front().stats.content.size();
  std::vector<int32_t> doc_tokens;
  std::vector<int32_t> counts(candidates.size() * phrases * 2, 0);
  doc_tokens.reserve(candidates.size());
  for (size_t c = 0; c < candidates.size(); ++c) {
    const auto& stats = candidates[c].stats;
    doc_tokens.push_back(stats.doc_tokens);
    for (size_t p = 0; p < phrases && p < stats.content.size(); ++p) {
      counts[(c * phrases + p) * 2] = stats.content[p];
      counts[(c * phrases + p) * 2 + 1] = stats.tags[p];
    }
  }
  const std::vector<double> scores = detail::bm25_scores(phrases, doc_tokens, counts, user_docs);
  hits.reserve(candidates.size());
  for (size_t c = 0; c < candidates.size(); ++c) {
    hits.push_back(MemoryHit{std::move(candidates[c].memory), scores[c]});
  }
  const size_t keep = std::min(limit, hits.size());
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(keep), hits.end(),
                    [](const MemoryHit& a, const MemoryHit& b) {
                      return detail::bm25_before(a.score, a.memory->importance, a.memory->id,
                                                 b.score, b.memory->importance, b.memory->id);
                    });
  hits.resize(keep);
  return hits;
}

}  // namespace parley::storage

namespace parley::storage {

namespace {

constexpr double kRecallMsPerDay = 86'400'000.0;
constexpr int kMaxImportance = 5;
// Recall ranks this many times the asked-for number of best BM25 hits by the blended score.
constexpr size_t kCandidateFactor = 4;
// Two memories whose words overlap this much (Jaccard) say the same thing: the lower-ranked
// one gives its slot to something else.
constexpr double kParaphraseOverlap = 0.8;
// The fuzzy path (recall_ranked): words of at least this many letters, and how alike in
// spelling (trigram sets) the user's word that stands for one must be.
constexpr size_t kFuzzyMinLetters = 4;
constexpr double kFuzzySimilarity = 0.4;
// Reciprocal rank fusion's k (Cormack et al. 2009): damps the weight of the first few ranks.
constexpr double kRrfK = 60;
// How far recall follows superseded_by from a superseded memory to the memories that replaced it.
constexpr size_t kMaxSupersedeHops = 16;

// Words a question is made of that say nothing about what is asked ("what do I love to eat?"):
// they would match nearly every memory. The pieces of contractions are here too ("don't" is
// the words "don" and "t").
const std::set<std::string, std::less<>>& stop_words() {
  static const std::set<std::string, std::less<>> kWords = {
      "a",      "about", "all",    "am",       "an",     "and",   "any",    "anything", "are",
      "as",     "at",    "be",     "been",     "but",    "by",    "can",    "could",    "d",
      "did",    "didn",  "do",     "does",     "doesn",  "don",   "for",    "from",     "had",
      "has",    "have",  "he",     "her",      "here",   "him",   "his",    "how",      "i",
      "if",     "in",    "into",   "is",       "isn",    "it",    "its",    "know",     "ll",
      "m",      "me",    "mine",   "my",       "myself", "of",    "on",     "or",       "our",
      "please", "re",    "recall", "remember", "s",      "she",   "should", "so",       "some",
      "t",      "tell",  "than",   "that",     "the",    "their", "them",   "there",    "these",
      "they",   "this",  "those",  "to",       "us",     "ve",    "was",    "wasn",     "we",
      "were",   "what",  "when",   "where",    "which",  "who",   "whom",   "whose",    "why",
      "will",   "with",  "would",  "you",      "your",   "yours"};
  return kWords;
}

std::string lower_ascii(std::string_view word) {
  std::string out(word);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

// The content words of `text`, lower-cased (what a paraphrase keeps).
std::set<std::string> word_set(std::string_view text) {
  std::set<std::string> out;
  for (const auto w : search_words(text)) {
    std::string lower = lower_ascii(w);
    if (stop_words().count(lower) == 0) out.insert(std::move(lower));
  }
  return out;
}

double overlap(const std::set<std::string>& a, const std::set<std::string>& b) {
  if (a.empty() || b.empty()) return 0;
  size_t both = 0;
  for (const auto& w : a) both += b.count(w);
  return static_cast<double>(both) / static_cast<double>(a.size() + b.size() - both);
}

// `ranked` (best first) reordered so that no superseded memory comes before a memory among
// them that replaced it, directly or through others: the current value of a changed fact ranks
// above the old one even when the old one's words match the question better. Otherwise the
// order is kept; a memory that waits goes right after the last of its successors. `get` looks a
// memory up by id (MemoryRepository::get).
template <typename Get>
Result<std::vector<RankedMemory>> after_successors(std::vector<RankedMemory> ranked, Get&& get) {
  std::set<int64_t> present;
  for (const auto& m : ranked) present.insert(m.memory->id);
  std::vector<std::vector<int64_t>> successors(ranked.size());
  for (size_t i = 0; i < ranked.size(); ++i) {
    int64_t next = ranked[i].memory->superseded_by;
    for (size_t hops = 0; next != 0 && hops < kMaxSupersedeHops; ++hops) {
      if (present.count(next) != 0) successors[i].push_back(next);
      auto m = get(next);
      if (!m) {
        if (m.error().code == ErrorCode::not_found) break;  // forgotten: the chain ends here
        return fail(std::move(m).error());
      }
      next = (*m)->superseded_by;
    }
  }
  std::vector<RankedMemory> out;
  out.reserve(ranked.size());
  std::set<int64_t> placed;
  std::vector<size_t> waiting;  // best first
  const auto ready = [&](size_t i) {
    return std::all_of(successors[i].begin(), successors[i].end(),
                       [&](int64_t id) { return placed.count(id) != 0; });
  };
  const auto place = [&](size_t i) {
    placed.insert(ranked[i].memory->id);
    out.push_back(std::move(ranked[i]));
  };
  for (size_t i = 0; i < ranked.size(); ++i) {
    if (!ready(i)) {
      waiting.push_back(i);
      continue;
    }
    place(i);
    // Each one placed may release one waiting for it, and that one another.
    for (auto it = std::find_if(waiting.begin(), waiting.end(), ready); it != waiting.end();
         it = std::find_if(waiting.begin(), waiting.end(), ready)) {
      place(*it);
      waiting.erase(it);
    }
  }
  for (const size_t i : waiting) place(i);  // only with a cycle, which supersession never makes
  return out;
}

}  // namespace

std::string MemoryRepository::content_words(std::string_view query) {
  std::string out;
  for (const auto word : search_words(query)) {
    if (stop_words().count(lower_ascii(word)) != 0) continue;
    if (!out.empty()) out += ' ';
    out += word;
  }
  return out.empty() ? std::string(query) : out;
}

namespace {
// The query vector of a request, validated and quantised; none without one.
Result<std::optional<QuantizedVector>> query_vector_of(const RecallRequest& r) {
  if (!r.query_vector) return std::optional<QuantizedVector>();
  const std::vector<float>& v = *r.query_vector;
  if (r.vector_model.empty()) return fail(ErrorCode::invalid_argument, "query vector has no model");
  if (r.vector_dimensions <= 0 || v.size() != static_cast<size_t>(r.vector_dimensions)) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("query vector of {} elements for {} dimensions", v.size(),
                            r.vector_dimensions));
  }
  auto query = quantize(v);
  if (!query) return fail(std::move(query).error());
  return std::optional<QuantizedVector>(std::move(*query));
}

// The BM25 hits and the query vector's nearest fused by reciprocal rank: each hit's score
// becomes Σ 1 / (60 + rank) over the lists it is in.
std::vector<MemoryHit> fused(const std::vector<MemoryHit>& bm25,
                             const std::vector<MemoryHit>& near) {
  std::map<int64_t, MemoryHit> by_id;
  for (const auto* list : {&bm25, &near}) {
    for (size_t i = 0; i < list->size(); ++i) {
      const MemoryHit& h = (*list)[i];
      const double share = 1.0 / (kRrfK + static_cast<double>(i + 1));
      by_id.try_emplace(h.memory->id, MemoryHit{h.memory, 0.0}).first->second.score += share;
    }
  }
  std::vector<MemoryHit> out;
  out.reserve(by_id.size());
  for (auto& [id, h] : by_id) out.push_back(std::move(h));
  std::stable_sort(out.begin(), out.end(), [](const MemoryHit& a, const MemoryHit& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.memory->id > b.memory->id;
  });
  return out;
}
}  // namespace

Result<std::shared_ptr<const RecallIndex>> MemoryRepository::recall_index(Connection& conn,
                                                                          int64_t user_id,
                                                                          std::string_view model,
                                                                          int dimensions) {
  const CacheKey key{CacheKind::recall, user_id};
  std::shared_ptr<const RecallIndex> other_model;  // replaced below; freed outside the cache
  if (auto hit = cache_.get(key)) {
    auto index = std::get<std::shared_ptr<const RecallIndex>>(std::move(*hit));
    if (model.empty() || index->has_vectors_of(model, dimensions)) return index;
    other_model = std::move(index);
  }
  // Taken before the read (see read_through): a commit in between refuses the insert.
  const uint64_t ticket = cache_.ticket(key);
  auto tokenizer = detail::FtsTokenizer::of(conn);
  if (!tokenizer) return fail(std::move(tokenizer).error());
  RecallIndex::Builder builder(std::string(model), dimensions);
  auto st = conn.cached(model.empty() ? kRecallIndexWordsSql : kRecallIndexSql);
  if (!st) return fail(std::move(st).error());
  if (model.empty()) {
    (*st)->bind_all(user_id);
  } else {
    (*st)->bind_all(model, dimensions, user_id);
  }
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    std::optional<std::string_view> vector;
    double scale = 0;
    if (!model.empty() && !(*st)->column_is_null(kMemoryColumnCount + 1)) {
      vector = (*st)->column_blob(kMemoryColumnCount + 1);
      scale = (*st)->column_double(kMemoryColumnCount);
    }
    PARLEY_TRY(
        builder.add(**tokenizer, std::make_shared<const Memory>(read_memory(**st)), vector, scale));
  }
  std::shared_ptr<const RecallIndex> index = builder.finish();
  if (recall_index_loaded_) recall_index_loaded_(user_id);
  cache_.put_if_fresh(key, index, ticket);
  return index;
}

Result<std::vector<RankedMemory>> MemoryRepository::recall_ranked(const RecallRequest& r) {
  if (r.limit == 0) return std::vector<RankedMemory>();
  auto query = query_vector_of(r);
  if (!query) return fail(std::move(query).error());
  const std::string words = content_words(r.query);
  const auto search = search_words(words);
  std::vector<MemoryHit> bm25;
  std::optional<std::vector<MemoryHit>> near;
  if (*query) near.emplace();
  if (search.empty() && !*query) return rank(r, std::move(bm25), std::move(near));

  std::vector<std::vector<std::string>> phrases;  // the tokens of each word, as MATCH has them
  std::shared_ptr<const RecallIndex> index;
  {
    auto conn = reads_.acquire();
    auto tokenizer = detail::FtsTokenizer::of(*conn);
    if (!tokenizer) return fail(std::move(tokenizer).error());
    for (const auto word : search) {
      auto& tokens = phrases.emplace_back();
      PARLEY_TRY(
          (*tokenizer)->tokenize(word, true, [&](std::string_view t) { tokens.emplace_back(t); }));
    }
    auto loaded = recall_index(*conn, r.user_id, *query ? std::string_view(r.vector_model) : "",
                               r.vector_dimensions);
    if (!loaded) return fail(std::move(loaded).error());
    index = std::move(*loaded);
  }
  // The fuzzy path: a word the user's memories never use, long enough to be a name, stands for
  // the user's word spelt closest to it.
  if (r.fuzzy) {
    for (auto& tokens : phrases) {
      if (tokens.size() != 1 || tokens.front().size() < kFuzzyMinLetters ||
          index->has_term(tokens.front())) {
        continue;
      }
      if (auto close = index->closest_term(tokens.front(), kFuzzySimilarity)) {
        tokens.front() = std::move(*close);
      }
    }
  }
  const size_t candidates = r.limit * kCandidateFactor;
  bm25 = index->bm25(phrases, candidates, r.include_superseded);
  if (*query) *near = index->nearest(**query, candidates, r.include_superseded);
  return rank(r, std::move(bm25), std::move(near));
}

Result<std::vector<RankedMemory>> MemoryRepository::recall_ranked_uncached(const RecallRequest& r) {
  if (r.limit == 0) return std::vector<RankedMemory>();
  auto query = query_vector_of(r);
  if (!query) return fail(std::move(query).error());
  const size_t candidates = r.limit * kCandidateFactor;
  auto hits = recall(r.user_id, content_words(r.query), candidates, r.include_superseded);
  if (!hits) return fail(std::move(hits).error());
  std::optional<std::vector<MemoryHit>> near;
  if (*query) {
    auto found = nearest(r.user_id, **query, r.vector_model, r.vector_dimensions, candidates,
                         r.include_superseded);
    if (!found) return fail(std::move(found).error());
    near = std::move(*found);
  }
  return rank(r, std::move(*hits), std::move(near));
}

Result<std::vector<RankedMemory>> MemoryRepository::rank(
    const RecallRequest& r, std::vector<MemoryHit> bm25,
    std::optional<std::vector<MemoryHit>> near) {
  std::vector<RankedMemory> out;
  std::vector<MemoryHit> found = near ? fused(bm25, *near) : std::move(bm25);
  double best = 0;
  for (const auto& h : found) best = std::max(best, h.score);
  const RecallWeights& w = r.weights;
  std::vector<RankedMemory> ranked;
  ranked.reserve(found.size());
  for (auto& h : found) {
    if (!r.kinds.empty() &&
        std::find(r.kinds.begin(), r.kinds.end(), h.memory->kind) == r.kinds.end()) {
      continue;
    }
    RankedMemory m;
    m.relevance = best > 0 ? h.score / best : 1.0;
    const double age_days =
        static_cast<double>(std::max<int64_t>(0, r.now_ms - h.memory->updated_at)) /
        kRecallMsPerDay;
    m.recency = std::exp2(-age_days / std::max(0.01, w.half_life_days));
    m.importance =
        static_cast<double>(std::clamp(h.memory->importance, 0, kMaxImportance)) / kMaxImportance;
    m.score = w.relevance * m.relevance + w.recency * m.recency + w.importance * m.importance;
    m.memory = std::move(h.memory);
    ranked.push_back(std::move(m));
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const RankedMemory& a, const RankedMemory& b) { return a.score > b.score; });
  if (r.include_superseded) {
    auto ordered = after_successors(std::move(ranked), [this](int64_t id) { return get(id); });
    if (!ordered) return fail(std::move(ordered).error());
    ranked = std::move(*ordered);
  }
  // Diversity: a paraphrase of a memory already chosen does not take a slot.
  std::vector<std::set<std::string>> chosen;
  for (auto& m : ranked) {
    if (out.size() == r.limit) break;
    auto words = word_set(m.memory->content);
    if (std::any_of(chosen.begin(), chosen.end(), [&](const std::set<std::string>& c) {
          return overlap(c, words) >= kParaphraseOverlap;
        })) {
      continue;
    }
    chosen.push_back(std::move(words));
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace parley::storage

#undef PARLEY_MEMORY_COLUMNS
