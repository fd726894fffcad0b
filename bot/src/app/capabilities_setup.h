// The capabilities a process starts with: the built-ins in a registry, and the configuration
// from the capabilities.yaml the configuration names (or the embedded defaults).
#pragma once

#include <optional>

#include "parley/bot/config/config.h"
#include "parley/capabilities/builtins.h"
#include "parley/capabilities/config.h"

namespace parley::bot::app {

// The configuration to start with; nullopt when the file has problems (each printed to stderr,
// with file:line:column and key).
inline std::optional<capabilities::CapabilitiesConfig> initial_capabilities(
    const config::Config& cfg, const capabilities::Registry& registry) {
  if (cfg.capabilities_file.empty()) return capabilities::default_capabilities_config(registry);
  auto check = capabilities::load_capabilities_config(cfg.capabilities_file.string(), registry);
  if (!check.ok()) {
    fmt::print(stderr, "{}", check.describe());
    return std::nullopt;
  }
  return std::move(check.config);
}

}  // namespace parley::bot::app
