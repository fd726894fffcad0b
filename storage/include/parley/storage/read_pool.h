// ReadPool: a small fixed set of read-only connections, never the writer's. WAL lets them read
// concurrently with the writer; each sees the last committed state when its read begins.
//
// Thread safety: acquire() is safe from any thread; a Lease is used by one thread. acquire()
// blocks while every connection is leased (the pool is sized to the reader threads).
#pragma once

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "parley/base/result.h"
#include "parley/storage/sqlite.h"

namespace parley::storage {

class ReadPool {
 public:
  class Lease {
   public:
    Lease(ReadPool* pool, Connection* conn) : pool_(pool), conn_(conn) {}
    Lease(Lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), conn_(o.conn_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->release(conn_);
    }
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_; }

   private:
    ReadPool* pool_;
    Connection* conn_;
  };

  static Result<std::unique_ptr<ReadPool>> open(const std::filesystem::path& path, size_t size,
                                                ConnectionOptions options);

  Lease acquire();
  [[nodiscard]] size_t size() const { return all_.size(); }

 private:
  ReadPool() = default;
  void release(Connection* conn);

  std::vector<std::unique_ptr<Connection>> all_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Connection*> free_;  // GUARDED_BY(mu_)
};

}  // namespace parley::storage
