// The default prompt files compiled into the binary (generated; see storage/embed_files.cmake).
#pragma once

#include <vector>

#include "parley/base/embedded_file.h"

namespace parley::prompts::detail {

const std::vector<EmbeddedFile>& embedded_defaults();

}  // namespace parley::prompts::detail
