// InstanceLock: one serving process per database. Two processes on one bot account is the
// classic cause of duplicate replies. An advisory lock (flock) on <db>.lock, released by the
// kernel when the process ends (also by kill -9); the file holds the holder's pid for messages.
// Not thread-safe; one per process and database.
#pragma once

#include <filesystem>
#include <string>

#include "parley/base/result.h"

namespace parley::bot::app {

class InstanceLock {
 public:
  InstanceLock() = default;
  ~InstanceLock();
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

  // Takes the lock for `db`: already_exists (naming the holder's pid) when another process
  // holds it, unavailable when the lock file cannot be opened.
  Status acquire(const std::filesystem::path& db);
  // The pid written by the process holding the lock ("?" when unreadable); after a failed
  // acquire().
  [[nodiscard]] const std::string& holder() const { return holder_; }

 private:
  std::string path_;
  std::string holder_;
  int fd_ = -1;
};

}  // namespace parley::bot::app
