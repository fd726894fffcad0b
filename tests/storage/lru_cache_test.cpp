// Tests of LruCache: true LRU order, both limits, counters, and the stale-insert guard.
#include "parley/storage/lru_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "parley/storage/hot_cache.h"

namespace parley::storage {
namespace lru_cache_test {

using Cache = LruCache<int, std::string>;

size_t string_bytes(const int&, const std::string& v) { return v.size(); }

TEST(LruCache, EvictsLeastRecentlyUsedByEntries) {
  Cache c({.max_entries = 3, .max_bytes = 1 << 20}, string_bytes);
  c.put(1, "a");
  c.put(2, "b");
  c.put(3, "c");
  ASSERT_TRUE(c.get(1));  // 1 is now most recent; 2 is the oldest
  c.put(4, "d");
  EXPECT_FALSE(c.contains(2));
  EXPECT_TRUE(c.contains(1));
  EXPECT_TRUE(c.contains(3));
  EXPECT_TRUE(c.contains(4));
  EXPECT_EQ(c.stats().evictions, 1u);
  EXPECT_EQ(c.stats().entries, 3u);
}

TEST(LruCache, EvictsByBytes) {
  Cache c({.max_entries = 100, .max_bytes = 10}, string_bytes);
  c.put(1, "aaaa");
  c.put(2, "bbbb");
  c.put(3, "cccc");  // 12 bytes > 10: evict 1
  EXPECT_FALSE(c.contains(1));
  EXPECT_EQ(c.stats().bytes, 8u);
  c.put(4, std::string(11, 'x'));  // larger than the whole cache: not cached, nothing evicted
  EXPECT_FALSE(c.contains(4));
  EXPECT_TRUE(c.contains(2));
  EXPECT_TRUE(c.contains(3));
}

TEST(LruCache, ReplacingUpdatesBytes) {
  Cache c({.max_entries = 10, .max_bytes = 100}, string_bytes);
  c.put(1, "aaaa");
  c.put(1, "aa");
  EXPECT_EQ(c.stats().bytes, 2u);
  EXPECT_EQ(c.stats().entries, 1u);
  EXPECT_EQ(*c.get(1), "aa");
}

TEST(LruCache, CountsHitsAndMisses) {
  Cache c({.max_entries = 10, .max_bytes = 100}, string_bytes);
  c.put(1, "a");
  (void)c.get(1);
  (void)c.get(1);
  (void)c.get(2);
  const auto s = c.stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_NEAR(s.hit_rate(), 2.0 / 3.0, 1e-9);
}

TEST(LruCache, OnCommitModifiesOrDrops) {
  Cache c({.max_entries = 10, .max_bytes = 100}, string_bytes);
  c.put(1, "a");
  EXPECT_TRUE(c.on_commit(1, [](std::string& v) {
    v += "bc";
    return true;
  }));
  EXPECT_EQ(*c.get(1), "abc");
  EXPECT_EQ(c.stats().bytes, 3u);
  EXPECT_FALSE(c.on_commit(2, [](std::string&) { return true; })) << "absent keys are untouched";
  c.invalidate(1);
  EXPECT_FALSE(c.contains(1));
  EXPECT_EQ(c.stats().bytes, 0u);
}

TEST(LruCache, RefusesAnInsertLoadedBeforeACommit) {
  Cache c({.max_entries = 10, .max_bytes = 100}, string_bytes);
  const uint64_t ticket = c.ticket(7);
  // A commit touches key 7 while the reader is still loading the old value.
  c.on_commit(7, [](std::string&) { return true; });
  EXPECT_FALSE(c.put_if_fresh(7, "stale", ticket));
  EXPECT_FALSE(c.contains(7));
  EXPECT_EQ(c.stats().stale_inserts_refused, 1u);
  // A load that starts after the commit may cache.
  EXPECT_TRUE(c.put_if_fresh(7, "fresh", c.ticket(7)));
  EXPECT_EQ(*c.get(7), "fresh");
}

TEST(LruCache, ZeroEntriesCachesNothing) {
  Cache c({.max_entries = 0, .max_bytes = 100}, string_bytes);
  c.put(1, "a");
  EXPECT_FALSE(c.contains(1));
}

TEST(LruCache, ConcurrentUseKeepsAccountsConsistent) {
  Cache c({.max_entries = 64, .max_bytes = 1 << 20}, string_bytes);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c, t] {
      for (int i = 0; i < 20'000; ++i) {
        const int key = (i * 7 + t) % 200;
        if (!c.get(key)) c.put(key, std::string(static_cast<size_t>(key % 13), 'x'));
        if (i % 17 == 0)
          c.on_commit(key, [](std::string& v) {
            v += "y";
            return true;
          });
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto s = c.stats();
  EXPECT_LE(s.entries, 64u);
  EXPECT_EQ(s.hits + s.misses, 80'000u);
  // bytes must equal the sum over what is cached
  size_t sum = 0;
  for (int k = 0; k < 200; ++k) {
    if (auto v = c.get(k)) sum += v->size();
  }
  EXPECT_EQ(c.stats().bytes, sum);
}

TEST(HotCache, ChargesHistoriesByTheirText) {
  HotCache c({.max_entries = 10, .max_bytes = 1 << 20}, cache_entry_bytes);
  auto small = std::make_shared<History>();
  auto big = std::make_shared<History>();
  auto msg = std::make_shared<StoredMessage>();
  msg->text = std::string(10'000, 'x');
  big->push_back(msg);
  c.put({CacheKind::history, 1}, std::shared_ptr<const History>(small));
  const size_t small_bytes = c.stats().bytes;
  c.put({CacheKind::history, 2}, std::shared_ptr<const History>(big));
  EXPECT_GT(c.stats().bytes - small_bytes, 10'000u);
  // Memory and history keys with the same id are different entries.
  c.put({CacheKind::memory, 1}, std::make_shared<const Memory>());
  EXPECT_EQ(c.stats().entries, 3u);
}

}  // namespace lru_cache_test
}  // namespace parley::storage
