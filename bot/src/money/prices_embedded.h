// The shipped price table (config/prices.yaml) compiled into the binary (generated; see
// storage/embed_files.cmake): the prices used when parley.yaml names no `money.prices` file.
#pragma once

#include <vector>

#include "parley/base/embedded_file.h"

namespace parley::bot::detail {

const std::vector<EmbeddedFile>& embedded_prices();

}  // namespace parley::bot::detail
