#include "parley/storage/migrations.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "migrations_embedded.h"

namespace parley::storage {

std::span<const Migration> builtin_migrations() {
  // File names are NNNN_name; migrate() checks that the numbers run 1..N without gaps.
  static const std::vector<Migration> kAll = [] {
    std::vector<Migration> out;
    for (const auto& f : detail::embedded_migrations()) {
      const auto underscore = f.stem.find('_');
      int version = 0;
      for (char c : f.stem.substr(0, underscore)) {
        version = c >= '0' && c <= '9' ? version * 10 + (c - '0') : -1'000'000;
      }
      out.push_back({version,
                     underscore == std::string_view::npos ? f.stem : f.stem.substr(underscore + 1),
                     f.text});
    }
    return out;
  }();
  return kAll;
}

int latest_schema_version() {
  const auto all = builtin_migrations();
  return all.empty() ? 0 : all.back().version;
}

Result<int> schema_version(Connection& conn) {
  auto exists = conn.query_int64(
      "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='schema_version'");
  if (!exists) return fail(std::move(exists).error());
  if (*exists == 0) return 0;
  auto v = conn.query_int64("SELECT coalesce(max(version), 0) FROM schema_version");
  if (!v) return fail(std::move(v).error());
  return static_cast<int>(*v);
}

Result<MigrationReport> migrate(Connection& conn, std::span<const Migration> migrations) {
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return fail(ErrorCode::internal,
                  fmt::format("migration list is not numbered 1..N: position {} has version {}",
                              i + 1, migrations[i].version));
    }
  }

  // Read and upgrade under one write lock, so two processes opening an old database at once
  // cannot both apply the same migration.
  auto txn = Transaction::begin(conn);
  if (!txn) return fail(std::move(txn).error());
  PARLEY_TRY(
      conn.exec("CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"));
  auto current = schema_version(conn);
  if (!current) return fail(std::move(current).error());
  MigrationReport report{*current, *current};

  if (*current > latest) {
    return fail(ErrorCode::permission_denied,
                fmt::format("{}: database schema version {} is newer than this parley supports "
                            "(version {}); upgrade parley or use a backup made for version {}",
                            conn.path().string(), *current, latest, latest));
  }
  if (*current == latest) {
    // Nothing to do; the transaction only created schema_version if it was missing, which a
    // version-0 database with no migrations would need anyway.
    PARLEY_TRY(txn->commit());
    return report;
  }

  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto record =
      conn.prepare("INSERT INTO schema_version(version, name, applied_at) VALUES (?,?,?)");
  if (!record) return fail(std::move(record).error());
  for (const auto& m : migrations) {
    if (m.version <= *current) continue;
    if (auto r = conn.exec(m.sql); !r) {
      Error e = std::move(r).error();
      e.message = fmt::format("migration {:04}_{} failed (database left at version {}): {}",
                              m.version, m.name, *current, e.message);
      return fail(std::move(e));  // txn's destructor rolls everything back
    }
    PARLEY_TRY(record->bind_all(static_cast<int64_t>(m.version), m.name, int64_t{now_ms}).run());
    report.to = m.version;
  }
  PARLEY_TRY(txn->commit());
  // debug: the CLI reports it itself, and one-line errors stay one line.
  spdlog::debug("database {} migrated from schema version {} to {}", conn.path().string(),
                report.from, report.to);
  return report;
}

}  // namespace parley::storage
