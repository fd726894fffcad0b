#include "parley/storage/store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <system_error>

#include "checkpointer.h"
#include "fts_match_stats.h"
#include "parley/storage/user_data.h"
namespace parley::storage {

int64_t file_size_or_zero(const std::filesystem::path& p) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

Result<std::unique_ptr<Store>> Store::open(StoreOptions options) {
  if (options.clock == nullptr) options.clock = &SystemClock::instance();
  const auto dir = options.path.parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return fail(ErrorCode::unavailable,
                  fmt::format("cannot create directory {}: {}", dir.string(), ec.message()));
    }
  }
  // Every connection can rank memory recall (see fts_match_stats.h).
  options.connection.on_open = detail::register_match_stats;
  std::unique_ptr<Store> store(new Store(std::move(options)));
  const StoreOptions& o = store->options_;

  ConnectionOptions wopts = o.connection;
  wopts.mode = ConnectionOptions::Mode::read_write_create;
  auto writer = Connection::open(o.path, wopts);
  if (!writer) return fail(std::move(writer).error());
  auto report = migrate(*writer);
  if (!report) return fail(std::move(report).error());
  store->migration_ = *report;

  auto reads = ReadPool::open(o.path, o.readers, o.connection);
  if (!reads) return fail(std::move(reads).error());
  store->reads_ = std::move(*reads);
  store->cache_ = std::make_unique<HotCache>(o.cache, cache_entry_bytes);
  if (o.checkpoint_pages > 0) {
    auto cp = Connection::open(o.path, wopts);
    if (!cp) return fail(std::move(cp).error());
    store->checkpointer_ =
        std::make_unique<detail::Checkpointer>(std::move(*cp), o.checkpoint_pages);
    store->checkpointer_->attach(*writer);
  }
  store->writes_ = std::make_unique<WriteQueue>(std::move(*writer), o.queue);
  store->messages_ = std::make_unique<MessageRepository>(
      *store->writes_, *store->reads_, *store->cache_, *o.clock, o.history_messages);
  store->memories_ =
      std::make_unique<MemoryRepository>(*store->writes_, *store->reads_, *store->cache_, *o.clock);
  store->directory_ =
      std::make_unique<Directory>(*store->writes_, *store->reads_, *o.clock, store->cache_.get());
  store->usage_ = std::make_unique<UsageRepository>(*store->writes_, *store->reads_, *o.clock);
  store->spend_ = std::make_unique<SpendRepository>(*store->writes_);
  store->credits_ = std::make_unique<CreditRepository>(*store->writes_, *store->reads_, *o.clock);
  store->outbox_ = std::make_unique<OutboxRepository>(*store->writes_, *store->reads_, *o.clock);
  store->channel_state_ =
      std::make_unique<ChannelStateRepository>(*store->writes_, *store->reads_, *o.clock);
  store->core_ = std::make_unique<CoreRepository>(*store->writes_, *store->reads_, *o.clock);
  store->user_data_ =
      std::make_unique<UserData>(*store->writes_, *store->reads_, *store->cache_, *o.clock);
  return store;
}

Store::Store(StoreOptions options) : options_(std::move(options)) {}

Store::~Store() {
  // Drain every write submitted so far before the repositories and readers go away. Readers
  // close before the writer: the last connection to close checkpoints and removes the WAL, and
  // only a writable one can.
  if (writes_) writes_->stop();
  reads_.reset();
  writes_.reset();
  checkpointer_.reset();
}

Health Store::health() const {
  Health h;
  h.path = options_.path;
  h.schema_version = migration_.to;
  h.queue = writes_->stats();
  h.cache = cache_->stats();
  h.db_bytes = file_size_or_zero(options_.path);
  h.wal_bytes = file_size_or_zero(options_.path.string() + "-wal");
  h.readers = reads_->size();
  if (checkpointer_) {
    const auto cp = checkpointer_->stats();
    h.checkpoints = cp.checkpoints;
    h.checkpoints_busy = cp.busy;
    h.last_checkpoint_us = cp.last_us;
  }
  return h;
}

Status Store::integrity_check() {
  auto conn = reads_->acquire();
  return conn->integrity_check();
}

Status Store::backup(const std::filesystem::path& dest) {
  if (std::filesystem::exists(dest)) {
    return fail(ErrorCode::already_exists,
                fmt::format("backup target {} already exists; choose a new path", dest.string()));
  }
  {
    auto target = Connection::open(dest, ConnectionOptions{.wal = false});
    if (!target) return fail(std::move(target).error());
    auto source = reads_->acquire();
    sqlite3_backup* b = sqlite3_backup_init(target->handle(), "main", source->handle(), "main");
    if (b == nullptr) {
      return fail(sqlite_error(target->handle(), sqlite3_errcode(target->handle()), "backup"));
    }
    // Whole database in one step: a consistent snapshot even while the writer commits.
    const int rc = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
      std::filesystem::remove(dest);
      return fail(sqlite_error(target->handle(), rc, "backup"));
    }
  }
  auto copy = Connection::open(dest, ConnectionOptions{.mode = ConnectionOptions::Mode::read_only});
  if (!copy) return fail(std::move(copy).error());
  return copy->integrity_check();
}

}  // namespace parley::storage
