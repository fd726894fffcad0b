#include "checkpointer.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <chrono>

namespace parley::storage::detail {

namespace {
int on_wal_commit(void* self, sqlite3* /*db*/, const char* /*name*/, int pages) noexcept {
  static_cast<Checkpointer*>(self)->request(pages);
  return SQLITE_OK;
}
}  // namespace

Checkpointer::Checkpointer(Connection conn, int threshold_pages)
    : conn_(std::move(conn)), threshold_(threshold_pages) {
  thread_ = std::thread([this] { run(); });
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Checkpointer::attach(Connection& writer) {
  sqlite3_wal_autocheckpoint(writer.handle(), 0);
  sqlite3_wal_hook(writer.handle(), on_wal_commit, this);
}

void Checkpointer::request(int wal_pages) noexcept {
  last_pages_.store(wal_pages, std::memory_order_relaxed);
  if (wal_pages < threshold_) return;
  {
    std::lock_guard lock(mu_);
    if (wanted_) return;
    wanted_ = true;
  }
  cv_.notify_one();
}

CheckpointStats Checkpointer::stats() const {
  return CheckpointStats{checkpoints_.load(), busy_.load(), last_us_.load(), last_pages_.load()};
}

void Checkpointer::run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || wanted_; });
      if (stopping_) return;
      wanted_ = false;
    }
    const auto start = std::chrono::steady_clock::now();
    int log_pages = 0;
    int copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(conn_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                             &log_pages, &copied);
    if (rc == SQLITE_OK) {
      checkpoints_.fetch_add(1, std::memory_order_relaxed);
      last_us_ = std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count();
    } else if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
      busy_.fetch_add(1, std::memory_order_relaxed);
    } else {
      spdlog::error("WAL checkpoint of {} failed: {}", conn_.path().string(),
                    sqlite_error(conn_.handle(), rc, "wal_checkpoint").message);
    }
  }
}

}  // namespace parley::storage::detail
