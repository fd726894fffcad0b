// Tests of the recall index (storage/src/recall_index.h): recall_ranked over the user's index in
// the hot cache answers exactly as recall_ranked_uncached (FTS5 and the SQLite scan) does, stays
// fresh after every kind of write, never caches a load that raced a commit, never mixes users,
// and is bounded by the cache's byte limit.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <future>
#include <random>
#include <string>
#include <vector>

#include "parley/storage/hot_cache.h"
#include "parley/storage/memory_repository.h"
#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::storage {
namespace recall_index_test {

using parley::testing::TempDir;

constexpr int64_t kDayMs = 86'400'000;
constexpr int kDims = 8;

// Words chosen to meet the tokenizer's corners: case, diacritics (remove_diacritics 2), porter
// stems, curly apostrophes and underscores (one word for recall's split, two tokens for FTS5),
// emoji and dashes (no token at all), digits, stop words.
const std::vector<std::string> kWords = {
    "coffee", "Coffee",  "café",     "cafe",  "running", "runs",   "ran",     "runner",    "it’s",
    "it's",   "don't",   "naïve",    "naive", "foo_bar", "bar",    "über",    "Zürich",    "zurich",
    "tea",    "green",   "greens",   "🙂",  "—",       "sister", "sisters", "Lisbon",    "lisbon",
    "2024",   "10k",     "jazz",     "JAZZ",  "piano",   "pianos", "garden",  "gardening", "the",
    "and",    "of",      "I",        "my",    "what",    "loves",  "love",    "loved",     "dog",
    "dogs",   "Biscuit", "biscuits", "foo",   "it",      "s",      "bar_foo"};

class RecallIndexTest : public ::testing::Test {
 protected:
  void SetUp() override { open_store(CacheLimits{}); }

  void open_store(CacheLimits limits) {
    store_.reset();
    StoreOptions o;
    o.path = dir_ / "parley.db";
    o.clock = &clock_;
    o.cache = limits;
    clock_.set_ms(1'800'000'000'000);
    auto s = Store::open(o);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    store_ = std::move(*s);
    alice_ = store_->directory().ensure_user("console", "alice", "Alice").get()->row_id;
    bob_ = store_->directory().ensure_user("console", "bob", "Bob").get()->row_id;
  }

  MemoryRepository& mem() { return store_->memories(); }
  bool index_cached(int64_t user) {
    return store_->cache().contains(CacheKey{CacheKind::recall, user});
  }

  static NewMemory memory(int64_t user, std::string text, std::string tags = "", int importance = 3,
                          std::string source = "user") {
    NewMemory m;
    m.user_id = user;
    m.content = std::move(text);
    m.tags = std::move(tags);
    m.importance = importance;
    m.source = std::move(source);
    return m;
  }

  template <typename F>
  Result<WriteAck> wait(F&& submit) {
    std::promise<Result<WriteAck>> p;
    auto f = p.get_future();
    submit([&p](Result<WriteAck> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  int64_t add(int64_t user, std::string text, std::string tags = "") {
    auto ack = mem().add(memory(user, std::move(text), std::move(tags))).get();
    EXPECT_TRUE(ack.ok()) << ack.error().describe();
    return ack.ok() ? ack->row_id : 0;
  }

  static std::vector<float> direction(size_t axis) {
    std::vector<float> v(kDims, 0.05F);
    v[axis] = 1.0F;
    return v;
  }

  RecallRequest request(int64_t user, std::string_view query,
                        std::optional<std::vector<float>> v = std::nullopt,
                        std::string model = "embed-a") {
    RecallRequest r;
    r.user_id = user;
    r.query = query;
    r.limit = 5;
    r.now_ms = clock_.now_ms();
    r.fuzzy = false;  // the SQL reference has no fuzzy path
    if (v) {
      r.vector_dimensions = static_cast<int>(v->size());
      r.query_vector = std::move(v);
      r.vector_model = std::move(model);
    }
    return r;
  }

  std::vector<int64_t> ids(const RecallRequest& r) {
    auto hits = mem().recall_ranked(r);
    EXPECT_TRUE(hits.ok()) << hits.error().describe();
    std::vector<int64_t> out;
    if (hits.ok()) {
      for (const auto& h : *hits) out.push_back(h.memory->id);
    }
    return out;
  }

  static bool has(const std::vector<int64_t>& v, int64_t id) {
    return std::find(v.begin(), v.end(), id) != v.end();
  }

  // recall_ranked (the index) and recall_ranked_uncached (SQLite) give the same memories in the
  // same order with the same figures, all of the user asked about.
  void expect_same(const RecallRequest& r, const std::string& what) {
    auto fast = mem().recall_ranked(r);
    auto slow = mem().recall_ranked_uncached(r);
    ASSERT_TRUE(fast.ok()) << what << ": " << fast.error().describe();
    ASSERT_TRUE(slow.ok()) << what << ": " << slow.error().describe();
    ASSERT_EQ(fast->size(), slow->size()) << what;
    for (size_t i = 0; i < fast->size(); ++i) {
      const RankedMemory& f = (*fast)[i];
      const RankedMemory& s = (*slow)[i];
      EXPECT_EQ(f.memory->id, s.memory->id) << what << " #" << i;
      EXPECT_EQ(f.memory->content, s.memory->content) << what << " #" << i;
      EXPECT_EQ(f.memory->user_id, r.user_id) << what << " #" << i;
      EXPECT_EQ(f.score, s.score) << what << " #" << i;
      EXPECT_EQ(f.relevance, s.relevance) << what << " #" << i;
    }
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
  int64_t alice_ = 0;
  int64_t bob_ = 0;
};

// Random memories, queries and writes over the tricky vocabulary.
class Randomised {
 public:
  explicit Randomised(uint64_t seed) : rng_(seed) {}

  std::string text(int min_words, int max_words) {
    const int n = std::uniform_int_distribution<int>(min_words, max_words)(rng_);
    static const char* kGlue[] = {" ", " ", " ", ", ", "! ", " - ", "? "};
    std::string out;
    for (int i = 0; i < n; ++i) {
      if (i > 0) out += kGlue[pick(std::size(kGlue))];
      out += kWords[pick(kWords.size())];
    }
    return out;
  }
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  std::vector<float> vector() {
    std::vector<float> v(kDims);
    for (auto& x : v) x = std::uniform_real_distribution<float>(-1.0F, 1.0F)(rng_);
    return v;
  }

 private:
  std::mt19937_64 rng_;
};

TEST_F(RecallIndexTest, RanksExactlyAsTheSqlPathOnRandomisedMemoriesBeforeAndAfterWrites) {
  Randomised gen(20250301);
  std::vector<int64_t> alices;
  std::vector<std::future<Result<WriteAck>>> pending;
  for (int i = 0; i < 240; ++i) {
    clock_.advance_ms(static_cast<int64_t>(gen.pick(3)) * kDayMs);
    const int64_t user = i % 4 == 0 ? bob_ : alice_;
    NewMemory m = memory(user, gen.text(1, 12), gen.chance(0.3) ? gen.text(1, 3) : "",
                         static_cast<int>(gen.pick(6)));
    m.kind = kMemoryKinds[gen.pick(std::size(kMemoryKinds))];
    pending.push_back(mem().add(std::move(m)));
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    auto ack = pending[i].get();
    ASSERT_TRUE(ack.ok()) << ack.error().describe();
    if (i % 4 != 0 && ack->inserted) alices.push_back(ack->row_id);
  }
  // Vectors for most, of two models; a few changed facts and forgotten memories.
  for (const int64_t id : alices) {
    if (gen.chance(0.85)) {
      ASSERT_TRUE(mem().put_vector(id, "embed-a", kDims, gen.vector()).get());
    }
    if (gen.chance(0.3)) {
      ASSERT_TRUE(mem().put_vector(id, "embed-b", kDims, gen.vector()).get());
    }
  }
  for (int i = 0; i < 12; ++i) {
    const int64_t id = alices[gen.pick(alices.size())];
    if (i % 2 == 0) {
      (void)wait([&](WriteCallback cb) {
        mem().supersede_for_user(id, memory(alice_, gen.text(2, 8)), std::move(cb));
      });
    } else {
      (void)wait([&](WriteCallback cb) { mem().remove_for_user(alice_, id, std::move(cb)); });
    }
  }

  std::deque<std::string> queries;  // what the requests' string_views see
  const auto random_request = [&](int64_t user) {
    std::string& query = queries.emplace_back(gen.text(1, 4));
    if (gen.chance(0.2)) query = "what do I know about " + query + "?";
    std::optional<std::vector<float>> v;
    if (gen.chance(0.5)) v = gen.vector();
    RecallRequest r = request(user, query, v, gen.chance(0.15) ? "embed-b" : "embed-a");
    r.limit = 1 + gen.pick(8);
    r.include_superseded = gen.chance(0.3);
    if (gen.chance(0.15)) r.kinds = {"fact", "preference", "event"};
    return r;
  };
  for (int i = 0; i < 150; ++i) {
    const RecallRequest r = random_request(i % 5 == 0 ? bob_ : alice_);
    expect_same(r, "query " + std::to_string(i) + " \"" + std::string(r.query) + "\"");
  }
  EXPECT_TRUE(index_cached(alice_));

  // Every kind of write, each followed by recalls over the patched index.
  for (int i = 0; i < 60; ++i) {
    clock_.advance_ms(kDayMs);
    const int64_t id = alices[gen.pick(alices.size())];
    switch (i % 6) {
      case 0: {
        auto ack = mem().add(memory(alice_, gen.text(2, 10), "", 4, "extracted")).get();
        if (ack.ok() && ack->inserted) alices.push_back(ack->row_id);
        break;
      }
      case 1:
        (void)wait([&](WriteCallback cb) {
          mem().update_for_user(id, memory(alice_, gen.text(2, 10), gen.text(1, 2)), std::move(cb));
        });
        break;
      case 2:
        (void)wait([&](WriteCallback cb) {
          mem().supersede_for_user(id, memory(alice_, gen.text(2, 8)), std::move(cb));
        });
        break;
      case 3:
        (void)wait([&](WriteCallback cb) { mem().remove_for_user(alice_, id, std::move(cb)); });
        break;
      case 4: (void)mem().put_vector(id, "embed-a", kDims, gen.vector()).get(); break;
      default: {
        std::promise<void> undone;
        mem().undo_last_extracted(alice_, [&](Result<MemoryEvent>) { undone.set_value(); });
        undone.get_future().get();
      }
    }
    for (int q = 0; q < 3; ++q) {
      const RecallRequest r = random_request(alice_);
      expect_same(r, "after write " + std::to_string(i) + " \"" + std::string(r.query) + "\"");
    }
  }
}

TEST_F(RecallIndexTest, EveryKindOfWriteShowsInTheNextRecall) {
  const int64_t porto = add(alice_, "Lives in Porto");
  const int64_t tea = add(alice_, "Favourite tea is green");
  add(alice_, "Has a dog called Biscuit");
  ASSERT_TRUE(mem().put_vector(tea, "embed-a", kDims, direction(0)).get());
  EXPECT_TRUE(has(ids(request(alice_, "Porto", direction(0))), porto));
  ASSERT_TRUE(index_cached(alice_));

  // Added.
  const int64_t piano = add(alice_, "Plays the piano");
  EXPECT_TRUE(has(ids(request(alice_, "piano")), piano));
  // Updated (an import by external_id, then an update).
  NewMemory imported = memory(alice_, "Sister lives in Zürich");
  imported.external_id = "x-1";
  const int64_t sister = mem().add(imported).get()->row_id;
  EXPECT_TRUE(has(ids(request(alice_, "zurich")), sister)) << "diacritics folded as FTS5 does";
  imported.content = "Sister lives in Oslo";
  ASSERT_TRUE(mem().add(imported).get().ok());
  EXPECT_TRUE(has(ids(request(alice_, "Oslo")), sister));
  EXPECT_FALSE(has(ids(request(alice_, "Zürich")), sister));
  ASSERT_TRUE(wait([&](WriteCallback cb) {
    mem().update_for_user(tea, memory(alice_, "Favourite tea is oolong"), std::move(cb));
  }));
  EXPECT_TRUE(has(ids(request(alice_, "oolong")), tea));
  EXPECT_TRUE(ids(request(alice_, "green")).empty());
  EXPECT_TRUE(has(ids(request(alice_, "", direction(0))), tea)) << "its vector stays";
  // Re-embedded.
  EXPECT_FALSE(has(ids(request(alice_, "", direction(3))), piano));
  ASSERT_TRUE(mem().put_vector(piano, "embed-a", kDims, direction(3)).get());
  EXPECT_EQ(ids(request(alice_, "", direction(3))).at(0), piano);
  // Superseded.
  auto moved = wait([&](WriteCallback cb) {
    mem().supersede_for_user(porto, memory(alice_, "Moved to Lisbon"), std::move(cb));
  });
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(ids(request(alice_, "Porto Lisbon")), std::vector<int64_t>{moved->row_id});
  RecallRequest history = request(alice_, "Porto Lisbon");
  history.include_superseded = true;
  EXPECT_EQ(ids(history).size(), 2u);
  // Forgotten.
  ASSERT_TRUE(wait([&](WriteCallback cb) { mem().remove_for_user(alice_, piano, std::move(cb)); }));
  EXPECT_TRUE(ids(request(alice_, "piano")).empty());
  EXPECT_FALSE(has(ids(request(alice_, "", direction(3))), piano));
  // Undone (an automatic add).
  auto extracted = mem().add(memory(alice_, "Learning the guitar", "", 3, "extracted")).get();
  ASSERT_TRUE(extracted.ok());
  EXPECT_TRUE(has(ids(request(alice_, "guitar")), extracted->row_id));
  std::promise<Result<MemoryEvent>> undone;
  mem().undo_last_extracted(alice_, [&](Result<MemoryEvent> e) { undone.set_value(std::move(e)); });
  ASSERT_TRUE(undone.get_future().get().ok());
  EXPECT_TRUE(ids(request(alice_, "guitar")).empty());
  EXPECT_TRUE(index_cached(alice_)) << "patched, not read again";

  // Removed for good: the memory it superseded is current again (ON DELETE SET NULL).
  ASSERT_TRUE(mem().remove(moved->row_id).get().ok());
  EXPECT_EQ(ids(request(alice_, "Porto Lisbon")), std::vector<int64_t>{porto});
  // Purged: likewise for a forgotten successor.
  auto again = wait([&](WriteCallback cb) {
    mem().supersede_for_user(porto, memory(alice_, "Moved to Vienna"), std::move(cb));
  });
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(
      wait([&](WriteCallback cb) { mem().remove_for_user(alice_, again->row_id, std::move(cb)); }));
  EXPECT_TRUE(ids(request(alice_, "Porto Vienna")).empty());
  ASSERT_TRUE(ids(request(alice_, "tea")).size() == 1u);
  ASSERT_TRUE(index_cached(alice_));
  clock_.advance_ms(kDayMs);
  ASSERT_TRUE(mem().purge_forgotten(clock_.now_ms()).get().ok());
  EXPECT_EQ(ids(request(alice_, "Porto Vienna")), std::vector<int64_t>{porto});
  expect_same(request(alice_, "Porto Vienna Lisbon tea dog"), "after the purge");
}

TEST_F(RecallIndexTest, ManyWritesAfterARecallStayExact) {
  Randomised gen(7);
  add(alice_, "Loves jazz and coffee");
  expect_same(request(alice_, "jazz"), "first");
  std::vector<int64_t> added;
  for (int i = 0; i < 150; ++i) {  // more than the delta holds: the index is read again
    added.push_back(add(alice_, gen.text(2, 8) + " jazz"));
    if (i % 10 == 0) expect_same(request(alice_, "jazz coffee " + gen.text(1, 2)), "write");
  }
  expect_same(request(alice_, "jazz"), "last");
}

TEST_F(RecallIndexTest, ALoadThatRacedACommitIsNotCached) {
  add(alice_, "Lives in Porto");
  int64_t raced = 0;
  mem().set_recall_index_loaded_hook([&](int64_t user) {
    if (raced != 0 || user != alice_) return;
    raced = add(alice_, "Works in Porto harbour");  // committed after the read, before the put
  });
  const auto before = store_->cache().stats().stale_inserts_refused;
  const auto first = ids(request(alice_, "Porto"));
  ASSERT_NE(raced, 0);
  EXPECT_EQ(first.size(), 1u) << "what the read saw";
  EXPECT_FALSE(index_cached(alice_)) << "a stale index is never cached";
  EXPECT_EQ(store_->cache().stats().stale_inserts_refused, before + 1);
  EXPECT_TRUE(has(ids(request(alice_, "Porto")), raced));
  EXPECT_TRUE(index_cached(alice_));
}

TEST_F(RecallIndexTest, UsersAreNeverMixed) {
  const int64_t alices = add(alice_, "Loves green tea");
  const int64_t bobs = add(bob_, "Loves green tea");
  ASSERT_NE(alices, bobs);
  ASSERT_TRUE(mem().put_vector(alices, "embed-a", kDims, direction(1)).get());
  ASSERT_TRUE(mem().put_vector(bobs, "embed-a", kDims, direction(2)).get());
  EXPECT_EQ(ids(request(alice_, "green tea", direction(2))), std::vector<int64_t>{alices});
  EXPECT_EQ(ids(request(bob_, "green tea", direction(1))), std::vector<int64_t>{bobs});
  // Writes of one user's patch only that user's index.
  const int64_t alices_coffee = add(alice_, "Drinks coffee with green tea");
  ASSERT_TRUE(mem().put_vector(alices_coffee, "embed-a", kDims, direction(2)).get());
  ASSERT_TRUE(index_cached(bob_));
  EXPECT_EQ(ids(request(bob_, "green tea coffee", direction(2))), std::vector<int64_t>{bobs});
  EXPECT_EQ(ids(request(alice_, "coffee", direction(2))).at(0), alices_coffee);
  // Another user's id never reaches this user's index.
  auto foreign =
      wait([&](WriteCallback cb) { mem().remove_for_user(bob_, alices, std::move(cb)); });
  EXPECT_EQ(foreign.error().code, ErrorCode::not_found);
  EXPECT_TRUE(has(ids(request(alice_, "green tea")), alices));
  expect_same(request(bob_, "green tea coffee", direction(1)), "bob");
  expect_same(request(alice_, "green tea coffee", direction(1)), "alice");
}

TEST_F(RecallIndexTest, TheCachesByteLimitBoundsTheIndex) {
  Randomised gen(11);
  open_store(CacheLimits{.max_entries = 100, .max_bytes = 256u << 10});
  std::vector<std::future<Result<WriteAck>>> pending;
  for (int i = 0; i < 1000; ++i) pending.push_back(mem().add(memory(alice_, gen.text(6, 12))));
  for (int i = 0; i < 40; ++i) pending.push_back(mem().add(memory(bob_, gen.text(6, 12))));
  for (auto& p : pending) ASSERT_TRUE(p.get().ok());

  // Alice's index is larger than the whole cache: built for each call, never kept.
  expect_same(request(alice_, "coffee jazz"), "too large to cache");
  EXPECT_FALSE(index_cached(alice_));
  EXPECT_LE(store_->cache().stats().bytes, store_->cache().stats().max_bytes);
  // Bob's fits, and is charged for what it holds (at least its records' text).
  expect_same(request(bob_, "coffee jazz"), "small");
  ASSERT_TRUE(index_cached(bob_));
  const CacheStats stats = store_->cache().stats();
  EXPECT_LE(stats.bytes, stats.max_bytes);
  EXPECT_GT(stats.bytes, 40u * sizeof(Memory));
}

}  // namespace recall_index_test
}  // namespace parley::storage
