// The migration files compiled into the binary (generated source; see embed_files.cmake).
#pragma once

#include <vector>

#include "parley/base/embedded_file.h"

namespace parley::storage::detail {

const std::vector<EmbeddedFile>& embedded_migrations();

}  // namespace parley::storage::detail
