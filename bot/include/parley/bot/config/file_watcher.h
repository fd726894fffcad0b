// FileWatcher: calls back when a file changes, on the io_context, through inotify. It watches
// the file's directory, not the file, because editors save by writing a new file and renaming
// it over the old one; events for other files in the directory are ignored. Bursts of events
// (an editor's write, chmod and rename) are coalesced: the callback runs once, `debounce` after
// the last of them.
//
// Thread safety: start() and stop() from any thread, once each; the callback runs on the
// watcher's strand.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>

#include "parley/base/result.h"
#include "parley/bot/net.h"

namespace parley::bot::config {

class FileWatcher {
 public:
  FileWatcher(const net::Executor& executor, std::filesystem::path file,
              std::function<void()> on_change,
              std::chrono::milliseconds debounce = std::chrono::milliseconds(200));
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // unavailable when inotify cannot watch the directory (it must exist).
  Status start();
  void stop();
  // Runs the callback on the watcher's strand as if the file had changed (SIGHUP); never at
  // the same time as a change's. Any thread; nothing after stop().
  void trigger();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace parley::bot::config
