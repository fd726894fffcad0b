#include "parley/storage/sqlite.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <mutex>

namespace parley::storage {

ErrorCode error_code_for_sqlite(int rc) noexcept {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
                 ? ErrorCode::already_exists
                 : ErrorCode::invalid_argument;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR: return ErrorCode::unavailable;
    case SQLITE_FULL:
    case SQLITE_NOMEM: return ErrorCode::resource_exhausted;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return ErrorCode::data_loss;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return ErrorCode::permission_denied;
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG: return ErrorCode::invalid_argument;
    default: return ErrorCode::internal;
  }
}

Error sqlite_error(sqlite3* db, int rc, std::string_view sql) {
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string text = fmt::format("sqlite: {} (code {})", msg != nullptr ? msg : "?", rc);
  if (!sql.empty()) {
    constexpr size_t kMaxSql = 300;
    text += fmt::format(" in: {}", sql.size() > kMaxSql ? std::string(sql.substr(0, kMaxSql)) + "…"
                                                        : std::string(sql));
  }
  return Error{error_code_for_sqlite(rc), std::move(text)};
}

// ---- Statement ----

void Statement::Finalizer::operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }

Statement::Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}

namespace {
Status bind_result(sqlite3* db, sqlite3_stmt* stmt, int rc) {
  if (rc == SQLITE_OK) return {};
  return fail(sqlite_error(db, rc, sqlite3_sql(stmt)));
}
}  // namespace

Statement& Statement::bind(int index, int64_t value) {
  if (bind_error_.ok()) {
    bind_error_ = bind_result(db_, stmt_.get(), sqlite3_bind_int64(stmt_.get(), index, value));
  }
  return *this;
}

Statement& Statement::bind(int index, double value) {
  if (bind_error_.ok()) {
    bind_error_ = bind_result(db_, stmt_.get(), sqlite3_bind_double(stmt_.get(), index, value));
  }
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  if (bind_error_.ok()) {
    // A non-null pointer even for an empty view, so that "" binds as '' and not NULL.
    const char* data = value.data() != nullptr ? value.data() : "";
    bind_error_ = bind_result(
        db_, stmt_.get(),
        sqlite3_bind_text64(stmt_.get(), index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  return *this;
}

Statement& Statement::bind(int index, std::span<const std::byte> value) {
  if (bind_error_.ok()) {
    static constexpr char kEmpty = 0;
    const void* data = value.data() != nullptr ? static_cast<const void*>(value.data()) : &kEmpty;
    bind_error_ =
        bind_result(db_, stmt_.get(),
                    sqlite3_bind_blob64(stmt_.get(), index, data, value.size(), SQLITE_TRANSIENT));
  }
  return *this;
}

Statement& Statement::bind(int index, std::nullptr_t) {
  if (bind_error_.ok()) {
    bind_error_ = bind_result(db_, stmt_.get(), sqlite3_bind_null(stmt_.get(), index));
  }
  return *this;
}

Result<bool> Statement::step() {
  if (!bind_error_.ok()) {
    Error e = bind_error_.error();
    bind_error_ = {};
    return fail(std::move(e));
  }
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // sqlite3_step returns the extended code with the v2 prepare interface.
  Error e = sqlite_error(db_, rc, sqlite3_sql(stmt_.get()));
  sqlite3_reset(stmt_.get());
  return fail(std::move(e));
}

Status Statement::run() {
  for (;;) {
    auto r = step();
    if (!r) return fail(std::move(r).error());
    if (!*r) break;
  }
  reset();
  return {};
}

void Statement::reset() noexcept {
  if (stmt_) {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
  }
  bind_error_ = {};
}

int64_t Statement::column_int64(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
double Statement::column_double(int col) const { return sqlite3_column_double(stmt_.get(), col); }
bool Statement::column_is_null(int col) const {
  return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL;
}
std::optional<int64_t> Statement::column_opt_int64(int col) const {
  if (column_is_null(col)) return std::nullopt;
  return column_int64(col);
}
std::string Statement::column_text(int col) const {
  const auto* text = sqlite3_column_text(stmt_.get(), col);
  const int n = sqlite3_column_bytes(stmt_.get(), col);
  if (text == nullptr) return {};
  return {reinterpret_cast<const char*>(text), static_cast<size_t>(n)};
}
std::string_view Statement::column_blob(int col) const {
  const void* data = sqlite3_column_blob(stmt_.get(), col);
  const int n = sqlite3_column_bytes(stmt_.get(), col);
  if (data == nullptr) return {};
  return {static_cast<const char*>(data), static_cast<size_t>(n)};
}
std::string_view Statement::sql() const {
  const char* s = stmt_ ? sqlite3_sql(stmt_.get()) : nullptr;
  return s != nullptr ? std::string_view(s) : std::string_view();
}

// ---- Connection ----

void Connection::Closer::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }

namespace {
// Process-wide SQLite settings, applied before the first connection. Memory statistics take a
// global mutex on every allocation; parley does not read them.
void configure_sqlite_once() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}
}  // namespace

Result<Connection> Connection::open(const std::filesystem::path& path,
                                    const ConnectionOptions& options) {
  configure_sqlite_once();
  const bool ro = options.mode == ConnectionOptions::Mode::read_only;
  const int flags = (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Connection conn;
  conn.db_.reset(raw);  // even on failure, the handle must be closed
  conn.path_ = path;
  conn.read_only_ = ro;
  if (rc != SQLITE_OK) {
    Error e = sqlite_error(raw, rc, {});
    e.message = fmt::format("cannot open {}: {}", path.string(), e.message);
    return fail(std::move(e));
  }
  sqlite3_extended_result_codes(raw, 1);
  // The first statements are where a file that is not a database, or is corrupt, shows.
  if (auto r = conn.apply_pragmas(options); !r) {
    Error e = std::move(r).error();
    e.message = fmt::format("cannot open {}: {}", path.string(), e.message);
    return fail(std::move(e));
  }
  if (options.on_open) PARLEY_TRY(options.on_open(conn));
  return conn;
}

Status Connection::apply_pragmas(const ConnectionOptions& o) {
  sqlite3_busy_timeout(db_.get(), o.busy_timeout_ms);
  std::string sql = fmt::format(
      "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-{}; "
      "PRAGMA mmap_size={};",
      o.page_cache_kib, o.mmap_size_bytes);
  PARLEY_TRY(exec(sql));
  if (read_only_) return {};
  // The journal mode is a property of the file; set it from the writable connection.
  auto mode = query_text(o.wal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE");
  if (!mode) return fail(std::move(mode).error());
  const std::string want = o.wal ? "wal" : "delete";
  if (*mode != want) {
    return fail(ErrorCode::unavailable,
                fmt::format("{}: journal_mode is {}, wanted {}", path_.string(), *mode, want));
  }
  // A WAL that grew while a long reader held back its reset (another process's open read
  // transaction) is cut back to this size once it resets, rather than staying large.
  return exec(fmt::format("PRAGMA synchronous={}; PRAGMA journal_size_limit={};", o.synchronous,
                          int64_t{64} << 20));
}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::move(other.db_);
    cache_ = std::move(other.cache_);
    kept_tokenizer_ = std::move(other.kept_tokenizer_);
    path_ = std::move(other.path_);
    read_only_ = other.read_only_;
  }
  return *this;
}

Connection::~Connection() { close(); }

void Connection::close() noexcept {
  cache_.clear();
  kept_tokenizer_.reset();
  if (db_ && !read_only_) {
    // Gathers statistics the planner needs; cheap when nothing changed.
    sqlite3_exec(db_.get(), "PRAGMA optimize;", nullptr, nullptr, nullptr);
  }
  db_.reset();
}

Status Connection::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  const int rc = sqlite3_exec(db_.get(), s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    // sqlite3_exec reports the primary code; the extended one is still on the handle.
    const int ext = sqlite3_extended_errcode(db_.get());
    return fail(error_code_for_sqlite((ext & 0xff) == rc ? ext : rc),
                fmt::format("sqlite: {} (code {}) in: {}", msg, rc,
                            s.size() > 300 ? s.substr(0, 300) + "…" : s));
  }
  return {};
}

Result<Statement> Connection::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return fail(sqlite_error(db_.get(), rc, sql));
  }
  return Statement(stmt, db_.get());
}

Result<Connection::CachedStatement> Connection::cached(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto st = prepare(sql);
    if (!st) return fail(std::move(st).error());
    it = cache_.emplace(std::string(sql), std::move(*st)).first;
  } else {
    it->second.reset();
  }
  return CachedStatement(&it->second);
}

Result<int64_t> Connection::query_int64(std::string_view sql) {
  auto st = prepare(sql);
  if (!st) return fail(std::move(st).error());
  auto row = st->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return fail(ErrorCode::not_found, fmt::format("no row from: {}", sql));
  return st->column_int64(0);
}

Result<std::string> Connection::query_text(std::string_view sql) {
  auto st = prepare(sql);
  if (!st) return fail(std::move(st).error());
  auto row = st->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return fail(ErrorCode::not_found, fmt::format("no row from: {}", sql));
  return st->column_text(0);
}

int64_t Connection::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_.get()); }
int Connection::changes() const { return sqlite3_changes(db_.get()); }

Status Connection::integrity_check() {
  auto st = prepare("PRAGMA integrity_check(20)");
  if (!st) return fail(std::move(st).error());
  std::string problems;
  for (;;) {
    auto row = st->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    std::string line = st->column_text(0);
    if (line == "ok") return {};
    if (!problems.empty()) problems += "; ";
    problems += line;
  }
  return fail(ErrorCode::data_loss,
              fmt::format("integrity_check of {} failed: {}", path_.string(), problems));
}

// ---- Transaction ----

Result<Transaction> Transaction::begin(Connection& conn) {
  PARLEY_TRY(conn.exec("BEGIN IMMEDIATE"));
  return Transaction(conn);
}

Transaction::Transaction(Transaction&& other) noexcept : conn_(other.conn_) {
  other.conn_ = nullptr;
}

Transaction::~Transaction() {
  if (conn_ != nullptr) {
    (void)conn_->exec("ROLLBACK");
  }
}

Status Transaction::commit() {
  if (conn_ == nullptr) return fail(ErrorCode::internal, "transaction already finished");
  auto r = conn_->exec("COMMIT");
  if (r.ok()) conn_ = nullptr;
  return r;
}

}  // namespace parley::storage
