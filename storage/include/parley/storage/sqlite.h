// Thin RAII layer over the SQLite C API: Connection owns a sqlite3*, Statement a sqlite3_stmt*.
// Errors carry SQLite's message and the SQL text of the statement that failed.
//
// Thread safety: a Connection and its statements belong to one thread at a time (SQLite is
// built serialized, but parley never shares a connection: the writer owns the only write
// connection, readers borrow read-only ones from ReadPool).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "parley/base/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace parley::storage {

class Connection;

struct ConnectionOptions {
  enum class Mode { read_write_create, read_only };
  Mode mode = Mode::read_write_create;
  int busy_timeout_ms = 5000;
  int page_cache_kib = 8192;  // PRAGMA cache_size = -N (KiB), per connection
  int64_t mmap_size_bytes = 256LL << 20;
  bool wal = true;  // journal_mode=WAL; false only for benchmarks of the old way
  std::string synchronous = "NORMAL";
  // Runs once the connection is open and configured (e.g. to register SQL functions).
  std::function<Status(Connection&)> on_open{};
};

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3_stmt* stmt, sqlite3* db);
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;

  // Binding, 1-based as in SQLite. Text and blobs are copied (SQLITE_TRANSIENT).
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, const std::string& value) {
    return bind(index, std::string_view(value));
  }
  // A BLOB (an empty span binds a zero-length BLOB, not NULL).
  Statement& bind(int index, std::span<const std::byte> value);
  Statement& bind(int index, std::nullptr_t);
  template <typename T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind(index, nullptr);
  }
  // Binds the arguments to parameters 1..N after resetting the statement.
  template <typename... Args>
  Statement& bind_all(const Args&... args) {
    reset();
    int i = 0;
    (bind(++i, args), ...);
    return *this;
  }

  // Steps once: true when a row is available, false when done.
  Result<bool> step();
  // Steps to completion, discarding rows.
  Status run();
  void reset() noexcept;

  [[nodiscard]] int64_t column_int64(int col) const;
  [[nodiscard]] double column_double(int col) const;
  [[nodiscard]] std::string column_text(int col) const;
  // Valid until the next step/reset of this statement.
  [[nodiscard]] std::string_view column_blob(int col) const;
  [[nodiscard]] bool column_is_null(int col) const;
  [[nodiscard]] std::optional<int64_t> column_opt_int64(int col) const;
  [[nodiscard]] std::string_view sql() const;
  [[nodiscard]] sqlite3_stmt* handle() const { return stmt_.get(); }

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const noexcept;
  };
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  sqlite3* db_ = nullptr;
  Status bind_error_;  // first bind failure, reported by step()
};

class Connection {
 public:
  // Opens (creating it when the mode allows) and applies parley's pragmas.
  static Result<Connection> open(const std::filesystem::path& path,
                                 const ConnectionOptions& options = {});

  Connection() = default;
  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();

  // Runs one or more statements without results.
  Status exec(std::string_view sql);
  Result<Statement> prepare(std::string_view sql);
  // A prepared statement cached on this connection, ready to bind. The handle resets the
  // statement when it goes out of scope, so no read snapshot outlives its use.
  class CachedStatement;
  Result<CachedStatement> cached(std::string_view sql);

  // Single-value conveniences.
  Result<int64_t> query_int64(std::string_view sql);
  Result<std::string> query_text(std::string_view sql);

  [[nodiscard]] int64_t last_insert_rowid() const;
  [[nodiscard]] int changes() const;
  [[nodiscard]] sqlite3* handle() const { return db_.get(); }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] bool read_only() const { return read_only_; }

  // PRAGMA integrity_check: ok, or an error listing the first problems.
  Status integrity_check();

  // Closes now (PRAGMA optimize first on a writable connection).
  void close() noexcept;

  // What the storage internals keep per connection, made on first use and dropped before the
  // handle closes: the recall index's FTS tokenizer (detail::FtsTokenizer::of), which cost as
  // much to make as the search it serves.
  [[nodiscard]] std::shared_ptr<void>& kept_tokenizer() { return kept_tokenizer_; }

 private:
  struct Closer {
    void operator()(sqlite3* db) const noexcept;
  };
  Status apply_pragmas(const ConnectionOptions& options);

  std::unique_ptr<sqlite3, Closer> db_;
  // Declared after db_, so destroyed before it; close() also clears it first.
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, Statement, SqlHash, std::equal_to<>> cache_;
  std::shared_ptr<void> kept_tokenizer_;  // also before db_'s end: close() clears it
  std::filesystem::path path_;
  bool read_only_ = false;
};

class Connection::CachedStatement {
 public:
  explicit CachedStatement(Statement* s) : s_(s) {}
  CachedStatement(CachedStatement&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  CachedStatement& operator=(CachedStatement&&) = delete;
  ~CachedStatement() {
    if (s_ != nullptr) s_->reset();
  }
  Statement* operator->() const { return s_; }
  Statement& operator*() const { return *s_; }

 private:
  Statement* s_;
};

// BEGIN IMMEDIATE … COMMIT; rolls back in the destructor unless committed.
class Transaction {
 public:
  static Result<Transaction> begin(Connection& conn);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status commit();

 private:
  explicit Transaction(Connection& conn) : conn_(&conn) {}
  Connection* conn_;
};

// Maps a SQLite result code to parley's error codes (constraint violations → invalid_argument
// or already_exists; busy/locked → unavailable; full/ioerr → resource_exhausted/unavailable;
// corrupt → data_loss).
ErrorCode error_code_for_sqlite(int rc) noexcept;
Error sqlite_error(sqlite3* db, int rc, std::string_view sql);

}  // namespace parley::storage
