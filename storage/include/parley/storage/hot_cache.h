// The store's LRU hot cache, in one LruCache so that one pair of limits (entries, bytes) bounds
// all of it:
//   history  recent messages of active conversations, by conversation id;
//   memory   memory records, by memory id;
//   recall   a user's recall index (storage/src/recall_index.h), by user id: every memory of
//            theirs that is not forgotten, its tokens and its vector of one (model, dimensions),
//            for MemoryRepository::recall_ranked. Built on a user's first recall, patched by
//            every commit that writes their memories or vectors (or dropped when a patch would
//            not be small), charged for all its bytes; one larger than max_bytes is not kept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <variant>

#include "parley/base/result.h"
#include "parley/storage/lru_cache.h"
#include "parley/storage/records.h"

namespace parley::storage {

enum class CacheKind : uint8_t { history = 1, memory = 2, recall = 3 };

class RecallIndex;  // private to the storage library (src/recall_index.h)

struct CacheKey {
  CacheKind kind;
  int64_t id;
  bool operator==(const CacheKey&) const = default;
};

struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const noexcept {
    // splitmix64 finaliser: spreads sequential ids over the stripes and buckets.
    uint64_t x = static_cast<uint64_t>(k.id) * 4 + static_cast<uint64_t>(k.kind);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return static_cast<size_t>(x);
  }
};

using CacheValue = std::variant<std::shared_ptr<const History>, std::shared_ptr<const Memory>,
                                std::shared_ptr<const RecallIndex>>;
using HotCache = LruCache<CacheKey, CacheValue, CacheKeyHash>;

// Read-through for a HotCache entry holding shared_ptr<const T>: the cached value, or `load()`
// (a Result<shared_ptr<const T>> read from SQLite), cached unless a commit touched `key` while it
// loaded. The freshness ticket is taken before load() runs — the order that makes it safe.
template <typename T, typename Load>
Result<std::shared_ptr<const T>> read_through(HotCache& cache, const CacheKey& key, Load&& load) {
  if (auto hit = cache.get(key)) return std::get<std::shared_ptr<const T>>(*hit);
  const uint64_t ticket = cache.ticket(key);
  Result<std::shared_ptr<const T>> loaded = std::forward<Load>(load)();
  if (loaded.ok()) cache.put_if_fresh(key, *loaded, ticket);
  return loaded;
}

// Approximate heap bytes of an entry (strings, vectors, control blocks, list/map nodes).
size_t cache_entry_bytes(const CacheKey& key, const CacheValue& value);

}  // namespace parley::storage
