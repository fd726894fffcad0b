// Text and JSON renderings of the store's Health (for `parley db check`, later /metrics).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "parley/storage/store.h"

namespace parley::bot::cli {

std::string health_text(const storage::Health& h);
nlohmann::json health_json(const storage::Health& h);
// "1.5 MiB", "312 B".
std::string human_bytes(int64_t bytes);

}  // namespace parley::bot::cli
