// Store: the hybrid SQLite store. Owns the write connection (inside the WriteQueue and its one
// writer thread), a pool of read-only connections, and the LRU hot cache; hands out the typed
// repositories. Opening migrates the database (or refuses one newer than this binary).
//
// Thread safety: every method is safe from any thread. Destruction drains the write queue:
// every write submitted before is committed (or failed) before the Store is gone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/channel_state_repository.h"
#include "parley/storage/core_repository.h"
#include "parley/storage/credit_repository.h"
#include "parley/storage/directory.h"
#include "parley/storage/hot_cache.h"
#include "parley/storage/memory_repository.h"
#include "parley/storage/message_repository.h"
#include "parley/storage/migrations.h"
#include "parley/storage/outbox_repository.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/spend_repository.h"
#include "parley/storage/sqlite.h"
#include "parley/storage/usage_repository.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

class UserData;

namespace detail {
class Checkpointer;
}

struct StoreOptions {
  std::filesystem::path path = "data/parley.db";
  ConnectionOptions connection{};
  size_t readers = 4;
  WriteQueueOptions queue{};
  CacheLimits cache{};
  size_t history_messages = 50;  // per cached conversation
  // WAL pages after which the checkpointer thread runs a checkpoint (SQLite's default
  // auto-checkpoint threshold); 0 leaves checkpoints to SQLite, on the writer thread.
  int checkpoint_pages = 1000;
  const Clock* clock = &SystemClock::instance();
};

struct Health {
  std::filesystem::path path;
  int schema_version = 0;
  WriteQueueStats queue;
  CacheStats cache;
  int64_t db_bytes = 0;
  int64_t wal_bytes = 0;
  size_t readers = 0;
  uint64_t checkpoints = 0;       // by the checkpointer thread
  uint64_t checkpoints_busy = 0;  // found a reader or the writer in the way
  int64_t last_checkpoint_us = 0;
  // Healthy: the writer runs and the last batch did not fail.
  [[nodiscard]] bool ok() const { return queue.running && !queue.last_batch_failed; }
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  MessageRepository& messages() { return *messages_; }
  MemoryRepository& memories() { return *memories_; }
  Directory& directory() { return *directory_; }
  UsageRepository& usage() { return *usage_; }
  SpendRepository& spend() { return *spend_; }
  CreditRepository& credits() { return *credits_; }
  OutboxRepository& outbox() { return *outbox_; }
  ChannelStateRepository& channel_state() { return *channel_state_; }
  CoreRepository& core() { return *core_; }
  UserData& user_data() { return *user_data_; }
  WriteQueue& writes() { return *writes_; }
  ReadPool& reads() { return *reads_; }
  HotCache& cache() { return *cache_; }

  [[nodiscard]] Health health() const;
  [[nodiscard]] const MigrationReport& migration() const { return migration_; }
  [[nodiscard]] const std::filesystem::path& path() const { return options_.path; }

  // PRAGMA integrity_check on a read connection.
  Status integrity_check();
  // Online backup (sqlite3_backup_*) to `dest`, which must not exist; the copy is then opened
  // and checked. Concurrent writes go on; the copy is a consistent snapshot.
  Status backup(const std::filesystem::path& dest);

 private:
  explicit Store(StoreOptions options);

  StoreOptions options_;
  MigrationReport migration_;
  std::unique_ptr<HotCache> cache_;
  std::unique_ptr<ReadPool> reads_;
  std::unique_ptr<detail::Checkpointer> checkpointer_;  // outlives the writer connection
  std::unique_ptr<WriteQueue> writes_;  // destroyed first (declared last): drains before reads_
  std::unique_ptr<MessageRepository> messages_;
  std::unique_ptr<MemoryRepository> memories_;
  std::unique_ptr<Directory> directory_;
  std::unique_ptr<UsageRepository> usage_;
  std::unique_ptr<SpendRepository> spend_;
  std::unique_ptr<CreditRepository> credits_;
  std::unique_ptr<OutboxRepository> outbox_;
  std::unique_ptr<ChannelStateRepository> channel_state_;
  std::unique_ptr<CoreRepository> core_;
  std::unique_ptr<UserData> user_data_;
};

// Size of a file, 0 when it does not exist.
int64_t file_size_or_zero(const std::filesystem::path& p);

}  // namespace parley::storage
