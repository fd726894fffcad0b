# Generates a C++ source holding every storage/migrations/NNNN_name.sql as a raw string.
# Invoked at build time (cmake -P) with MIGRATIONS_DIR and OUTPUT set.
file(GLOB files RELATIVE "${MIGRATIONS_DIR}" "${MIGRATIONS_DIR}/*.sql")
list(SORT files)
set(body "")
set(expected 1)
foreach(f IN LISTS files)
  if(NOT f MATCHES "^([0-9][0-9][0-9][0-9])_([a-z0-9_]+)\\.sql$")
    message(FATAL_ERROR "migration file name must be NNNN_name.sql: ${f}")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  if(NOT version EQUAL expected)
    message(FATAL_ERROR "migrations must be numbered 1, 2, 3 … without gaps: ${f} (expected ${expected})")
  endif()
  math(EXPR expected "${expected} + 1")
  file(READ "${MIGRATIONS_DIR}/${f}" sql)
  string(APPEND body "  {${version}, \"${CMAKE_MATCH_2}\", R\"parley_sql(${sql})parley_sql\"},\n")
endforeach()
set(content "// Generated from storage/migrations/*.sql by embed_migrations.cmake. Do not edit.
#include \"migrations_embedded.h\"

namespace parley::storage::detail {
const std::vector<EmbeddedMigration>& embedded_migrations() {
  static const std::vector<EmbeddedMigration> kMigrations = {
${body}  };
  return kMigrations;
}
}  // namespace parley::storage::detail
")
file(WRITE "${OUTPUT}.tmp" "${content}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
