// Checkpointer: runs WAL checkpoints on its own thread and connection, so that the writer
// thread never waits for one. In WAL mode with synchronous=NORMAL the checkpoint is the only
// place SQLite calls fsync; left to SQLite's auto-checkpoint it would stall whichever commit
// crossed the threshold (milliseconds at the ack-latency tail).
//
// The writer connection's auto-checkpoint is turned off and its WAL hook calls request() after
// each commit with the WAL's size; past the threshold the checkpointer wakes and runs a PASSIVE
// checkpoint (it never blocks the writer or readers; what it cannot copy yet it copies next
// time).
//
// Thread safety: request() and stats() are safe from any thread (request() is called on the
// writer thread from inside SQLite). Destruction stops and joins the thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "parley/base/result.h"
#include "parley/storage/sqlite.h"

namespace parley::storage::detail {

struct CheckpointStats {
  uint64_t checkpoints = 0;
  uint64_t busy = 0;  // attempts that found the database busy (retried on the next request)
  int64_t last_us = 0;
  int64_t last_wal_pages = 0;
};

class Checkpointer {
 public:
  // `conn` is a writable connection of its own; `threshold_pages` > 0.
  Checkpointer(Connection conn, int threshold_pages);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Installs the WAL hook on the writer's connection and turns its auto-checkpoint off.
  // REQUIRES: `writer` outlives nothing of this object's (destroy the writer first).
  void attach(Connection& writer);

  void request(int wal_pages) noexcept;
  [[nodiscard]] CheckpointStats stats() const;

 private:
  void run();

  Connection conn_;  // used only by the checkpointer thread after construction
  const int threshold_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;    // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> checkpoints_{0}, busy_{0};
  std::atomic<int64_t> last_us_{0}, last_pages_{0};
  std::thread thread_;
};

}  // namespace parley::storage::detail
