// Forward-only schema migrations. The numbered files under storage/migrations/ are compiled
// into the binary; `migrate` brings a database up to the newest version in one transaction,
// and refuses a database written by a newer parley.
//
// REQUIRES: a writable connection that no other thread uses during the call.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "parley/base/result.h"
#include "parley/storage/sqlite.h"

namespace parley::storage {

struct Migration {
  int version;            // 1, 2, 3 … without gaps
  std::string_view name;  // from the file name, e.g. "initial"
  std::string_view sql;
};

// The migrations built into this binary, in order.
std::span<const Migration> builtin_migrations();
int latest_schema_version();

struct MigrationReport {
  int from = 0;  // 0: a new, empty database
  int to = 0;
};

// The version recorded in schema_version; 0 when the table does not exist yet.
Result<int> schema_version(Connection& conn);

Result<MigrationReport> migrate(Connection& conn,
                                std::span<const Migration> migrations = builtin_migrations());

}  // namespace parley::storage
