// LiveConfig: the capabilities configuration in force, replaced whole when a reload succeeds.
// A reload that finds problems changes nothing: the last good configuration stays in force and
// the problems are returned for the log (and, once alerts exist, the admins).
//
// Thread safety: current() is lock-free and may be called from any thread (each turn takes one
// snapshot and uses it throughout); reload() may be called from any thread, one at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "parley/capabilities/config.h"

namespace parley::capabilities {

class LiveConfig {
 public:
  LiveConfig(const Registry& registry, CapabilitiesConfig initial)
      : registry_(registry),
        current_(std::make_shared<const CapabilitiesConfig>(std::move(initial))) {}

  [[nodiscard]] std::shared_ptr<const CapabilitiesConfig> current() const {
    return current_.load(std::memory_order_acquire);
  }
  // How many configurations have been put in force (1 for the initial one).
  [[nodiscard]] uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Reads `path`; on success puts it in force. Returns the check either way.
  ConfigCheck reload(const std::string& path);

 private:
  const Registry& registry_;
  std::atomic<std::shared_ptr<const CapabilitiesConfig>> current_;
  std::atomic<uint64_t> generation_{1};
};

}  // namespace parley::capabilities
