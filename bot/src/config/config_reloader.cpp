#include "parley/bot/config/config_reloader.h"

#include <spdlog/spdlog.h>

namespace parley::bot::config {

ConfigReloader::ConfigReloader(const net::Executor& executor, std::filesystem::path file,
                               capabilities::LiveConfig& live, OnRejected on_rejected,
                               std::chrono::milliseconds debounce)
    : file_(std::move(file)),
      live_(live),
      on_rejected_(std::move(on_rejected)),
      watcher_(
          executor, file_, [this] { reload(); }, debounce) {}

void ConfigReloader::reload() {
  const auto check = live_.reload(file_.string());
  if (check.ok()) {
    spdlog::info("{}: reloaded; in force from the next turn (configuration #{})", file_.string(),
                 live_.generation());
    if (on_applied_) on_applied_(*live_.current());
    return;
  }
  for (const auto& p : check.problems) spdlog::error("{}", p.describe());
  spdlog::error(
      "{}: the edit was rejected ({} problem{}); the last good configuration stays in force",
      file_.string(), check.problems.size(), check.problems.size() == 1 ? "" : "s");
  if (on_rejected_) on_rejected_(check);
}

}  // namespace parley::bot::config
