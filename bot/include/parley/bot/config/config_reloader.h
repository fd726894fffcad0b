// ConfigReloader: keeps a running bot's capabilities configuration in step with its file. When
// capabilities.yaml changes (FileWatcher), it is read and checked; a valid version is put in
// force for the next turn (LiveConfig), an invalid one is rejected — each problem logged with
// file:line:column and key, and reported to `on_rejected` (the admin alerts hang here) — and
// the last good configuration stays in force.
//
// Thread safety: as FileWatcher; the callbacks run on the watcher's strand.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "parley/bot/config/file_watcher.h"
#include "parley/capabilities/live_config.h"

namespace parley::bot::config {

class ConfigReloader {
 public:
  using OnRejected = std::function<void(const capabilities::ConfigCheck&)>;
  using OnApplied = std::function<void(const capabilities::CapabilitiesConfig&)>;

  ConfigReloader(const net::Executor& executor, std::filesystem::path file,
                 capabilities::LiveConfig& live, OnRejected on_rejected = {},
                 std::chrono::milliseconds debounce = std::chrono::milliseconds(200));

  // Told of each configuration put in force (the MCP servers follow it). Before start().
  void on_applied(OnApplied f) { on_applied_ = std::move(f); }

  Status start() { return watcher_.start(); }
  void stop() { watcher_.stop(); }

  // What a reload does, callable directly (tests).
  void reload();
  // A reload on the watcher's strand, one at a time with the file's own (SIGHUP).
  void trigger() { watcher_.trigger(); }

 private:
  std::filesystem::path file_;
  capabilities::LiveConfig& live_;
  OnRejected on_rejected_;
  OnApplied on_applied_;
  FileWatcher watcher_;
};

}  // namespace parley::bot::config
