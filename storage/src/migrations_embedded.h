// The migrations compiled into the binary (generated source; see embed_migrations.cmake).
#pragma once

#include <string_view>
#include <vector>

namespace parley::storage::detail {

struct EmbeddedMigration {
  int version;
  std::string_view name;
  std::string_view sql;
};

const std::vector<EmbeddedMigration>& embedded_migrations();

}  // namespace parley::storage::detail
