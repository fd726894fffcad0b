#include "parley/capabilities/live_config.h"

namespace parley::capabilities {

ConfigCheck LiveConfig::reload(const std::string& path) {
  ConfigCheck check = load_capabilities_config(path, registry_);
  if (check.ok()) {
    current_.store(std::make_shared<const CapabilitiesConfig>(check.config),
                   std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  return check;
}

}  // namespace parley::capabilities
