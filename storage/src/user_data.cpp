#include "parley/storage/user_data.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <memory>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/base/base64.h"
#include "parley/base/time_format.h"
#include "parley/storage/memory_repository.h"
#include "parley/storage/sqlite.h"

namespace parley::storage {
namespace {

using nlohmann::json;

// Tables never exported row by row or erased by the generic pass: the profile and identities
// have their own place in the document (and are kept), the ledger is kept.
const std::set<std::string, std::less<>> kOwnPlace = {"users", "identities"};
const std::set<std::string, std::less<>> kKeptOnErase = {"users", "identities", "usage"};

// The person's identities, as a subquery of (channel, external_id) rows.
constexpr const char* kIdentities =
    "SELECT channel, external_id FROM identities WHERE user_id = ?1";

// The rows of a prepared statement as objects of their columns.
Result<json> rows_of(Statement& st) {
  json rows = json::array();
  sqlite3_stmt* h = st.handle();
  for (;;) {
    auto more = st.step();
    if (!more) return fail(std::move(more).error());
    if (!*more) break;
    json row = json::object();
    const int n = sqlite3_column_count(h);
    for (int c = 0; c < n; ++c) {
      const char* name = sqlite3_column_name(h, c);
      switch (sqlite3_column_type(h, c)) {
        case SQLITE_INTEGER: row[name] = st.column_int64(c); break;
        case SQLITE_FLOAT: row[name] = st.column_double(c); break;
        case SQLITE_TEXT: row[name] = st.column_text(c); break;
        case SQLITE_BLOB: row[name] = json{{"base64", base64_encode(st.column_blob(c))}}; break;
        default: row[name] = nullptr; break;
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// A table that holds a person's rows: directly (user_id) or through a foreign key to one that
// does (`parent`, joined on `from` = parent.`to`).
struct OwnedTable {
  std::string name;
  std::string parent;  // empty: the table has user_id itself
  std::string from;
  std::string to;
};

// Every ordinary table of the schema that holds rows of one user, from the schema itself.
Result<std::vector<OwnedTable>> owned_tables(Connection& conn) {
  auto names = conn.prepare(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
      "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name");
  if (!names) return fail(std::move(names).error());
  std::vector<std::string> tables;
  for (;;) {
    auto more = names->step();
    if (!more) return fail(std::move(more).error());
    if (!*more) break;
    tables.push_back(names->column_text(0));
  }
  std::set<std::string, std::less<>> with_user;
  for (const auto& t : tables) {
    auto col = conn.prepare("SELECT 1 FROM pragma_table_info(?) WHERE name = 'user_id'");
    if (!col) return fail(std::move(col).error());
    col->bind_all(t);
    auto has = col->step();
    if (!has) return fail(std::move(has).error());
    if (*has) with_user.insert(t);
  }
  std::vector<OwnedTable> out;
  for (const auto& t : tables) {
    if (with_user.contains(t)) {
      out.push_back({t, {}, {}, {}});
      continue;
    }
    auto fks = conn.prepare(
        "SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?) ORDER BY id");
    if (!fks) return fail(std::move(fks).error());
    fks->bind_all(t);
    for (;;) {
      auto more = fks->step();
      if (!more) return fail(std::move(more).error());
      if (!*more) break;
      const std::string parent = fks->column_text(0);
      if (parent == "users" || !with_user.contains(parent)) continue;
      out.push_back({t, parent, fks->column_text(1), fks->column_text(2)});
      break;  // one way to the owner is enough
    }
  }
  return out;
}

// SQL identifiers come from the schema; quoted all the same.
std::string sql_name(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

std::string owned_rows_sql(const OwnedTable& t, std::string_view verb) {
  if (t.parent.empty()) {
    return fmt::format("{} FROM {} WHERE user_id = ?1", verb, sql_name(t.name));
  }
  return fmt::format("{} FROM {} WHERE {} IN (SELECT {} FROM {} WHERE user_id = ?1)", verb,
                     sql_name(t.name), sql_name(t.from), sql_name(t.to), sql_name(t.parent));
}

// Conversations where a user message came from one of the person's identities; `only`: and
// from no one else.
std::string conversations_sql(bool only) {
  std::string sql = fmt::format(
      "SELECT c.id FROM conversations c WHERE EXISTS (SELECT 1 FROM messages m WHERE "
      "m.conversation_id = c.id AND m.role = 'user' AND (m.channel, m.author) IN ({}))",
      kIdentities);
  if (only) {
    sql += fmt::format(
        " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND "
        "m.role = 'user' AND (m.channel, m.author) NOT IN ({}))",
        kIdentities);
  }
  return sql;
}

Result<std::vector<int64_t>> ids_of(Connection& conn, const std::string& sql, int64_t user_id) {
  auto st = conn.prepare(sql);
  if (!st) return fail(std::move(st).error());
  st->bind_all(user_id);
  std::vector<int64_t> ids;
  for (;;) {
    auto more = st->step();
    if (!more) return fail(std::move(more).error());
    if (!*more) break;
    ids.push_back(st->column_int64(0));
  }
  return ids;
}

// Runs a statement bound to the user id; the rows it changed.
Result<int64_t> run_counted(Connection& conn, const std::string& sql, int64_t user_id) {
  auto st = conn.prepare(sql);
  if (!st) return fail(std::move(st).error());
  st->bind_all(user_id);
  PARLEY_TRY(st->run());
  return static_cast<int64_t>(sqlite3_changes(conn.handle()));
}

}  // namespace

Result<json> UserData::export_user(int64_t user_id) {
  auto lease = reads_.acquire();
  Connection& conn = *lease;
  // One read transaction: the document is one consistent state.
  PARLEY_TRY(conn.exec("BEGIN"));
  struct End {
    Connection& c;
    ~End() { (void)c.exec("COMMIT"); }
  } end{conn};

  auto user = conn.prepare("SELECT * FROM users WHERE id = ?1");
  if (!user) return fail(std::move(user).error());
  user->bind_all(user_id);
  auto users = rows_of(*user);
  if (!users) return fail(std::move(users).error());
  if (users->empty()) {
    return fail(ErrorCode::not_found, fmt::format("export: there is no user {}", user_id));
  }
  json doc{{"format", "parley-export/1"},
           {"exported_at", iso_utc(clock_.now_ms())},
           {"user", (*users)[0]}};

  auto identities = conn.prepare("SELECT * FROM identities WHERE user_id = ?1 ORDER BY id");
  if (!identities) return fail(std::move(identities).error());
  identities->bind_all(user_id);
  auto idents = rows_of(*identities);
  if (!idents) return fail(std::move(idents).error());
  doc["identities"] = std::move(*idents);

  auto tables = owned_tables(conn);
  if (!tables) return fail(std::move(tables).error());
  json records = json::object();
  for (const auto& t : *tables) {
    if (kOwnPlace.contains(t.name)) continue;
    auto st = conn.prepare(owned_rows_sql(t, "SELECT *") + " ORDER BY rowid");
    if (!st) {
      // WITHOUT ROWID tables have no rowid to order by.
      st = conn.prepare(owned_rows_sql(t, "SELECT *"));
      if (!st) return fail(std::move(st).error());
    }
    st->bind_all(user_id);
    auto rows = rows_of(*st);
    if (!rows) return fail(std::move(rows).error());
    if (!rows->empty()) records[t.name] = std::move(*rows);
  }
  doc["records"] = std::move(records);

  // Conversations they wrote in: every message of those only they wrote in, their own
  // messages elsewhere.
  auto only = ids_of(conn, conversations_sql(true), user_id);
  if (!only) return fail(std::move(only).error());
  const std::set<int64_t> private_ids(only->begin(), only->end());
  auto all = ids_of(conn, conversations_sql(false), user_id);
  if (!all) return fail(std::move(all).error());
  json conversations = json::array();
  for (const int64_t id : *all) {
    const bool mine = private_ids.contains(id);
    auto c = conn.prepare(
        "SELECT id, channel, external_id, title, created_at FROM conversations WHERE id = ?1");
    if (!c) return fail(std::move(c).error());
    c->bind_all(id);
    auto head = rows_of(*c);
    if (!head) return fail(std::move(head).error());
    if (head->empty()) continue;
    json conversation = (*head)[0];
    conversation["only_you"] = mine;
    auto m = conn.prepare(
        mine ? std::string("SELECT id, role, author, text, created_at FROM messages "
                           "WHERE conversation_id = ?2 ORDER BY id")
             : fmt::format("SELECT id, role, author, text, created_at FROM messages "
                           "WHERE conversation_id = ?2 AND role = 'user' AND (channel, author) "
                           "IN ({}) ORDER BY id",
                           kIdentities));
    if (!m) return fail(std::move(m).error());
    m->bind_all(user_id, id);
    auto messages = rows_of(*m);
    if (!messages) return fail(std::move(messages).error());
    conversation["messages"] = std::move(*messages);
    conversations.push_back(std::move(conversation));
  }
  doc["conversations"] = std::move(conversations);
  return doc;
}

void UserData::erase_user(int64_t user_id, std::function<void(Result<ErasedCounts>)> done) {
  struct Erased {
    ErasedCounts counts;
    std::vector<int64_t> conversations;  // whose history cache entries go
    std::vector<int64_t> memories;       // whose record cache entries go
  };
  auto erased = std::make_shared<Erased>();
  WriteJob job;
  job.what = "forget everything";
  job.apply = [erased, user_id](Connection& conn) -> Result<WriteAck> {
    *erased = Erased{};  // apply may run again after a batch rollback
    auto exists = conn.prepare("SELECT 1 FROM users WHERE id = ?1");
    if (!exists) return fail(std::move(exists).error());
    exists->bind_all(user_id);
    auto found = exists->step();
    if (!found) return fail(std::move(found).error());
    if (!*found) {
      return fail(ErrorCode::not_found, fmt::format("forget: there is no user {}", user_id));
    }
    exists->reset();

    auto count = [&](const std::string& table, Result<int64_t> n) -> Status {
      if (!n) return fail(std::move(n).error());
      if (*n > 0) erased->counts[table] += *n;
      return {};
    };
    auto written = ids_of(conn, conversations_sql(false), user_id);
    if (!written) return fail(std::move(written).error());
    erased->conversations = *written;
    auto memories = ids_of(conn, "SELECT id FROM memories WHERE user_id = ?1", user_id);
    if (!memories) return fail(std::move(memories).error());
    erased->memories = *memories;

    // Cached embeddings of their texts: their memories' and their messages' (queries are
    // embedded from what they wrote).
    std::vector<std::string> hashes;
    {
      auto texts = conn.prepare(
          fmt::format("SELECT content FROM memories WHERE user_id = ?1 UNION "
                      "SELECT text FROM messages WHERE role = 'user' AND (channel, author) IN ({})",
                      kIdentities));
      if (!texts) return fail(std::move(texts).error());
      texts->bind_all(user_id);
      for (;;) {
        auto more = texts->step();
        if (!more) return fail(std::move(more).error());
        if (!*more) break;
        hashes.push_back(MemoryRepository::embedding_text_hash(texts->column_text(0)));
      }
    }
    for (const auto& hash : hashes) {
      auto st = conn.cached("DELETE FROM embedding_cache WHERE text_hash = ?");
      if (!st) return fail(std::move(st).error());
      PARLEY_TRY((*st)->bind_all(hash).run());
      if (const int n = sqlite3_changes(conn.handle()); n > 0) {
        erased->counts["embedding_cache"] += n;
      }
    }

    // Every summary of a conversation they wrote in (it may quote them), then, in the
    // conversations only they wrote in, the replies sent and every message, and elsewhere their
    // own messages. (In this order: the conversations are found by their messages.)
    PARLEY_TRY(count("conversation_summaries",
                     run_counted(conn,
                                 fmt::format("DELETE FROM conversation_summaries WHERE "
                                             "conversation_id IN ({})",
                                             conversations_sql(false)),
                                 user_id)));
    const std::string only = conversations_sql(true);
    PARLEY_TRY(count("outbox", run_counted(conn,
                                           fmt::format("DELETE FROM outbox WHERE state <> "
                                                       "'pending' AND conversation_id IN ({})",
                                                       only),
                                           user_id)));
    PARLEY_TRY(count(
        "messages",
        run_counted(conn, fmt::format("DELETE FROM messages WHERE conversation_id IN ({})", only),
                    user_id)));
    PARLEY_TRY(count("messages", run_counted(conn,
                                             fmt::format("DELETE FROM messages WHERE role = "
                                                         "'user' AND (channel, author) IN ({})",
                                                         kIdentities),
                                             user_id)));

    // Every other table with their rows; children by foreign key first, then the owners (whose
    // own children go by ON DELETE CASCADE, and their FTS rows by the tables' triggers).
    auto tables = owned_tables(conn);
    if (!tables) return fail(std::move(tables).error());
    for (const bool children : {true, false}) {
      for (const auto& t : *tables) {
        if (t.parent.empty() == children || kKeptOnErase.contains(t.name)) continue;
        PARLEY_TRY(count(t.name, run_counted(conn, owned_rows_sql(t, "DELETE"), user_id)));
      }
    }
    return WriteAck{user_id, false};
  };
  job.on_commit = [this, erased, user_id](const WriteAck&) {
    for (const int64_t id : erased->conversations) {
      cache_.invalidate(CacheKey{CacheKind::history, id});
    }
    for (const int64_t id : erased->memories) cache_.invalidate(CacheKey{CacheKind::memory, id});
    cache_.invalidate(CacheKey{CacheKind::recall, user_id});
  };
  job.done = [erased, done = std::move(done)](Result<WriteAck> ack) {
    if (!ack) return done(fail(std::move(ack).error()));
    done(erased->counts);
  };
  writes_.submit(std::move(job));
}

}  // namespace parley::storage
