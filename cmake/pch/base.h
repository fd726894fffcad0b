// Precompiled for storage/, prompts/ and capabilities/ (parley_pch, CMakeLists.txt): the standard
// library, JSON and logging that nearly every file of theirs includes. Nothing of Asio, Beast or
// curl: those stay above them (scripts/check_layers). Every file still includes what it uses
// (scripts/lint builds without precompiled headers).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>
