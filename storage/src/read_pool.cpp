#include "parley/storage/read_pool.h"

namespace parley::storage {

Result<std::unique_ptr<ReadPool>> ReadPool::open(const std::filesystem::path& path, size_t size,
                                                 ConnectionOptions options) {
  options.mode = ConnectionOptions::Mode::read_only;
  std::unique_ptr<ReadPool> pool(new ReadPool());
  for (size_t i = 0; i < std::max<size_t>(size, 1); ++i) {
    auto conn = Connection::open(path, options);
    if (!conn) return fail(std::move(conn).error());
    pool->all_.push_back(std::make_unique<Connection>(std::move(*conn)));
    pool->free_.push_back(pool->all_.back().get());
  }
  return pool;
}

ReadPool::Lease ReadPool::acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !free_.empty(); });
  Connection* c = free_.back();
  free_.pop_back();
  return {this, c};
}

void ReadPool::release(Connection* conn) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(conn);
  }
  cv_.notify_one();
}

}  // namespace parley::storage
