// A true LRU cache (O(1) get/put/erase) bounded by entry count and by bytes, with hit, miss
// and eviction counters.
//
// Freshness: a reader that loads a value from SQLite and then caches it could race a commit
// of the same key and cache a stale copy. The writer calls on_commit(key, …) after every
// commit, which bumps a generation stripe for the key; a reader takes ticket(key) *before*
// its SQLite read and caches with put_if_fresh(key, value, ticket), which refuses when a commit
// touched that stripe in between. Collisions only cost a skipped insert, never staleness.
//
// Thread safety: all methods are safe to call concurrently. One mutex guards the map and list
// and is held only for O(1) work (the size function and on_commit's modifier run under it and
// must be cheap and must not call back into the cache). Values should be cheap to copy
// (typically shared_ptr<const T>): get() returns a copy.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace parley::storage {

struct CacheLimits {
  size_t max_entries = 10'000;
  size_t max_bytes = 64u << 20;
};

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  uint64_t stale_inserts_refused = 0;
  size_t entries = 0;
  size_t bytes = 0;
  size_t max_entries = 0;
  size_t max_bytes = 0;
  [[nodiscard]] double hit_rate() const {
    const uint64_t total = hits + misses;
    return total == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(total);
  }
};

template <typename K, typename V, typename Hash = std::hash<K>>
class LruCache {
 public:
  // Bytes charged for an entry (key, value and bookkeeping).
  using SizeFn = std::function<size_t(const K&, const V&)>;

  LruCache(CacheLimits limits, SizeFn size_of) : limits_(limits), size_of_(std::move(size_of)) {}
  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;

  // The value, marked most recently used; nullopt on a miss.
  std::optional<V> get(const K& key) {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) {
      ++misses_;
      return std::nullopt;
    }
    ++hits_;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->value;
  }

  [[nodiscard]] bool contains(const K& key) const {
    std::lock_guard lock(mu_);
    return index_.count(key) != 0;
  }

  // Inserts or replaces, then evicts least recently used entries until within both limits.
  // A value larger than max_bytes on its own is not cached.
  void put(const K& key, V value) {
    std::lock_guard lock(mu_);
    put_locked(key, std::move(value));
  }

  // The generation of key's stripe; take it before reading the value from the database.
  [[nodiscard]] uint64_t ticket(const K& key) const {
    return stripes_[stripe_of(key)].load(std::memory_order_acquire);
  }

  // put() unless a commit touched key's stripe since `ticket`. Returns whether it was cached.
  bool put_if_fresh(const K& key, V value, uint64_t ticket) {
    std::lock_guard lock(mu_);
    if (stripes_[stripe_of(key)].load(std::memory_order_relaxed) != ticket) {
      ++stale_refused_;
      return false;
    }
    put_locked(key, std::move(value));
    return true;
  }

  // Called by the writer after a commit that changed key. If key is cached, modify(V&)
  // returns false to drop the entry or true to keep the (modified) entry. Returns whether the
  // key was cached.
  template <typename Modify>
  bool on_commit(const K& key, Modify&& modify) {
    std::lock_guard lock(mu_);
    stripes_[stripe_of(key)].fetch_add(1, std::memory_order_release);
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    Node& node = *it->second;
    if (!modify(node.value)) {
      erase_locked(it);
      return true;
    }
    bytes_ -= node.bytes;
    node.bytes = size_of_(node.key, node.value);
    bytes_ += node.bytes;
    trim_locked();
    return true;
  }

  // Forgets key (after a delete) and invalidates loads in flight.
  void invalidate(const K& key) {
    on_commit(key, [](V&) { return false; });
  }

  void clear() {
    std::lock_guard lock(mu_);
    index_.clear();
    order_.clear();
    bytes_ = 0;
  }

  [[nodiscard]] CacheStats stats() const {
    std::lock_guard lock(mu_);
    return CacheStats{hits_,         misses_, evictions_,          stale_refused_,
                      index_.size(), bytes_,  limits_.max_entries, limits_.max_bytes};
  }

 private:
  struct Node {
    K key;
    V value;
    size_t bytes;
  };
  using List = std::list<Node>;
  using Index = std::unordered_map<K, typename List::iterator, Hash>;
  static constexpr size_t kStripes = 1024;

  [[nodiscard]] size_t stripe_of(const K& key) const { return Hash{}(key) % kStripes; }

  void put_locked(const K& key, V value) {
    const size_t bytes = size_of_(key, value);
    auto it = index_.find(key);
    if (bytes > limits_.max_bytes || limits_.max_entries == 0) {
      if (it != index_.end()) erase_locked(it);
      return;
    }
    if (it != index_.end()) {
      Node& node = *it->second;
      bytes_ -= node.bytes;
      node.value = std::move(value);
      node.bytes = bytes;
      bytes_ += bytes;
      order_.splice(order_.begin(), order_, it->second);
    } else {
      order_.push_front(Node{key, std::move(value), bytes});
      index_.emplace(key, order_.begin());
      bytes_ += bytes;
    }
    trim_locked();
  }

  void trim_locked() {
    while (!order_.empty() && (index_.size() > limits_.max_entries || bytes_ > limits_.max_bytes)) {
      auto last = std::prev(order_.end());
      erase_locked(index_.find(last->key));
      ++evictions_;
    }
  }

  void erase_locked(typename Index::iterator it) {
    bytes_ -= it->second->bytes;
    order_.erase(it->second);
    index_.erase(it);
  }

  const CacheLimits limits_;
  const SizeFn size_of_;
  mutable std::mutex mu_;
  List order_;        // GUARDED_BY(mu_), most recent first
  Index index_;       // GUARDED_BY(mu_)
  size_t bytes_ = 0;  // GUARDED_BY(mu_)
  uint64_t hits_ = 0, misses_ = 0, evictions_ = 0, stale_refused_ = 0;  // GUARDED_BY(mu_)
  std::array<std::atomic<uint64_t>, kStripes> stripes_{};
};

}  // namespace parley::storage
