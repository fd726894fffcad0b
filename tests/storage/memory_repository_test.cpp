// Tests of the memory model (migration 0009): kinds, exact duplicates never added, changed facts
// superseded rather than deleted, forgetting as a mark with a trail, importers' ids, the purge,
// recall_ranked — the one recall the tool, the prompt and the CLI share — and its vectors
// (hybrid recall, the embedding cache).
#include "parley/storage/memory_repository.h"

#include <gtest/gtest.h>

#include <future>

#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::storage {
namespace memory_repository_test {

using parley::testing::TempDir;

constexpr int64_t kDayMs = 86'400'000;

class MemoryRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions o;
    o.path = dir_ / "parley.db";
    o.clock = &clock_;
    clock_.set_ms(1'800'000'000'000);
    auto s = Store::open(o);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    store_ = std::move(*s);
    alice_ = store_->directory().ensure_user("console", "alice", "Alice").get()->row_id;
    bob_ = store_->directory().ensure_user("console", "bob", "Bob").get()->row_id;
  }

  MemoryRepository& mem() { return store_->memories(); }

  NewMemory memory(int64_t user, std::string text, std::string kind = "fact", int importance = 3) {
    NewMemory m;
    m.user_id = user;
    m.content = std::move(text);
    m.kind = std::move(kind);
    m.importance = importance;
    return m;
  }

  // A write through a callback API, waited for.
  template <typename F>
  Result<WriteAck> wait(F&& submit) {
    std::promise<Result<WriteAck>> p;
    auto f = p.get_future();
    submit([&p](Result<WriteAck> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  std::vector<std::string> recalled(int64_t user, std::string_view query, size_t limit = 5,
                                    bool include_superseded = false) {
    RecallRequest r;
    r.user_id = user;
    r.query = query;
    r.limit = limit;
    r.now_ms = clock_.now_ms();
    r.include_superseded = include_superseded;
    auto hits = mem().recall_ranked(r);
    EXPECT_TRUE(hits.ok()) << hits.error().describe();
    std::vector<std::string> out;
    if (hits.ok()) {
      for (const auto& h : *hits) out.push_back(h.memory->content);
    }
    return out;
  }

  // A unit-ish vector of 8 dimensions pointing mostly along `axis`, a little along `lean`.
  static std::vector<float> direction(size_t axis, size_t lean = 7, float amount = 0.1F) {
    std::vector<float> v(8, 0.0F);
    v[axis] = 1.0F;
    v[lean] += amount;
    return v;
  }

  Result<WriteAck> put(int64_t id, std::vector<float> v, std::string model = "embed-a") {
    const int dims = static_cast<int>(v.size());
    return mem().put_vector(id, std::move(model), dims, v).get();
  }

  RecallRequest vector_request(int64_t user, std::string_view query, std::vector<float> v,
                               std::string model = "embed-a") {
    RecallRequest r;
    r.user_id = user;
    r.query = query;
    r.limit = 5;
    r.now_ms = clock_.now_ms();
    r.vector_dimensions = static_cast<int>(v.size());
    r.query_vector = std::move(v);
    r.vector_model = std::move(model);
    return r;
  }

  std::vector<std::string> contents(const Result<std::vector<RankedMemory>>& hits) {
    EXPECT_TRUE(hits.ok()) << hits.error().describe();
    std::vector<std::string> out;
    if (hits.ok()) {
      for (const auto& h : *hits) out.push_back(h.memory->content);
    }
    return out;
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
  int64_t alice_ = 0;
  int64_t bob_ = 0;
};

TEST_F(MemoryRepositoryTest, AMemoryKeepsItsKindTimeConfidenceAndSourceAndLeavesATrail) {
  NewMemory m = memory(alice_, "Started a new job at Acme", "event", 4);
  m.event_at = clock_.now_ms() - 3 * kDayMs;
  m.confidence = 0.8;
  m.source = "extracted";
  m.model = "fake-small";
  m.reason = "said so on Monday";
  auto ack = mem().add(std::move(m)).get();
  ASSERT_TRUE(ack.ok()) << ack.error().describe();
  EXPECT_TRUE(ack->inserted);
  auto got = mem().get(ack->row_id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->kind, "event");
  EXPECT_EQ((*got)->event_at, clock_.now_ms() - 3 * kDayMs);
  EXPECT_DOUBLE_EQ((*got)->confidence, 0.8);
  EXPECT_EQ((*got)->source, "extracted");
  EXPECT_EQ((*got)->content_hash, MemoryRepository::content_hash("started a new JOB at  acme"));
  EXPECT_TRUE((*got)->current());

  auto events = mem().events_for_user(alice_);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].op, "ADD");
  EXPECT_EQ((*events)[0].memory_id, ack->row_id);
  EXPECT_EQ((*events)[0].new_text, "Started a new job at Acme");
  EXPECT_EQ((*events)[0].model, "fake-small");
  EXPECT_EQ((*events)[0].reason, "said so on Monday");
}

TEST_F(MemoryRepositoryTest, BadKindSourceOrConfidenceIsRefusedWithTheValueNamed) {
  auto bad_kind = mem().add(memory(alice_, "x", "feeling")).get();
  ASSERT_FALSE(bad_kind.ok());
  EXPECT_NE(bad_kind.error().message.find("'feeling'"), std::string::npos);
  NewMemory m = memory(alice_, "x");
  m.source = "rumour";
  EXPECT_NE(mem().add(m).get().error().message.find("'rumour'"), std::string::npos);
  m.source = "user";
  m.confidence = 1.5;
  EXPECT_FALSE(mem().add(m).get().ok());
}

TEST_F(MemoryRepositoryTest, AnExactDuplicateIsNeverASecondMemory) {
  auto first = mem().add(memory(alice_, "I love pizza")).get();
  ASSERT_TRUE(first.ok());
  auto again = mem().add(memory(alice_, "  i LOVE   pizza. ")).get();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->inserted);
  EXPECT_EQ(again->row_id, first->row_id);
  EXPECT_EQ(mem().list_for_user(alice_)->size(), 1u);
  auto events = mem().events_for_user(alice_);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].op, "NOOP");
  // Another user's identical text is theirs.
  auto bobs = mem().add(memory(bob_, "I love pizza")).get();
  ASSERT_TRUE(bobs.ok());
  EXPECT_TRUE(bobs->inserted);
}

// A row from before content_hash (its hash '') is a duplicate by its exact text (the lookup now
// reads the (user_id, content_hash) index for both kinds of row, not every row of the user).
TEST_F(MemoryRepositoryTest, ARowFromBeforeContentHashIsADuplicateByItsText) {
  auto first = mem().add(memory(alice_, "I love pizza")).get();
  ASSERT_TRUE(first.ok());
  auto cleared = store_->writes()
                     .submit([&](Connection& conn) -> parley::Result<WriteAck> {
                       auto st = conn.cached("UPDATE memories SET content_hash = '' WHERE id = ?");
                       if (!st) return parley::fail(std::move(st).error());
                       (*st)->bind_all(first->row_id);
                       if (auto r = (*st)->step(); !r) return parley::fail(std::move(r).error());
                       return WriteAck{first->row_id, true};
                     })
                     .get();
  ASSERT_TRUE(cleared.ok()) << cleared.error().describe();
  auto again = mem().add(memory(alice_, "I love pizza")).get();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->inserted);
  EXPECT_EQ(again->row_id, first->row_id);
  auto other = mem().add(memory(alice_, "I love pasta")).get();
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->inserted);
}

TEST_F(MemoryRepositoryTest, AChangedFactIsSupersededNeverDeleted) {
  const int64_t old_id = mem().add(memory(alice_, "Lives in Porto")).get()->row_id;
  clock_.advance_ms(30 * kDayMs);
  NewMemory now = memory(alice_, "Moved to Lisbon");
  now.reason = "moved to";
  auto ack = wait([&](WriteCallback cb) { mem().supersede_for_user(old_id, now, std::move(cb)); });
  ASSERT_TRUE(ack.ok()) << ack.error().describe();
  const int64_t new_id = ack->row_id;

  auto old_row = mem().get(old_id);
  ASSERT_TRUE(old_row.ok()) << "still there";
  EXPECT_EQ((*old_row)->superseded_by, new_id);
  EXPECT_EQ((*old_row)->valid_to, clock_.now_ms());
  EXPECT_FALSE((*old_row)->current());

  EXPECT_EQ(recalled(alice_, "where does she live? Porto Lisbon"),
            std::vector<std::string>{"Moved to Lisbon"});
  const auto history = recalled(alice_, "Porto Lisbon", 5, true);
  EXPECT_EQ(history.size(), 2u) << "what she used to …";
  ASSERT_EQ(mem().list_for_user(alice_)->size(), 1u);
  EXPECT_EQ(mem().list_for_user(alice_)->at(0)->id, new_id);

  auto events = mem().events_for_user(alice_);
  ASSERT_FALSE(events->empty());
  EXPECT_EQ((*events)[0].op, "SUPERSEDE");
  EXPECT_EQ((*events)[0].old_text, "Lives in Porto");
  EXPECT_EQ((*events)[0].new_text, "Moved to Lisbon");
  EXPECT_EQ((*events)[0].related_id, new_id);

  // Only a current memory of the same user can be superseded.
  auto twice =
      wait([&](WriteCallback cb) { mem().supersede_for_user(old_id, now, std::move(cb)); });
  EXPECT_EQ(twice.error().code, ErrorCode::not_found);
  NewMemory bobs = memory(bob_, "Moved to Madrid");
  auto foreign =
      wait([&](WriteCallback cb) { mem().supersede_for_user(new_id, bobs, std::move(cb)); });
  EXPECT_EQ(foreign.error().code, ErrorCode::not_found);
}

TEST_F(MemoryRepositoryTest, UpdatingKeepsTheIdAndTheOldTextInTheTrail) {
  const int64_t id = mem().add(memory(alice_, "Favourite tea is green")).get()->row_id;
  auto ack = wait([&](WriteCallback cb) {
    mem().update_for_user(id, memory(alice_, "Favourite tea is oolong", "preference"),
                          std::move(cb));
  });
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ((*mem().get(id))->content, "Favourite tea is oolong");
  EXPECT_EQ((*mem().get(id))->kind, "preference");
  auto events = mem().events_for_user(alice_);
  EXPECT_EQ((*events)[0].op, "UPDATE");
  EXPECT_EQ((*events)[0].old_text, "Favourite tea is green");
  auto foreign = wait([&](WriteCallback cb) {
    mem().update_for_user(id, memory(bob_, "Bob's now"), std::move(cb));
  });
  EXPECT_EQ(foreign.error().code, ErrorCode::not_found) << "another user's id reads as free";
  EXPECT_EQ((*mem().get(id))->content, "Favourite tea is oolong");
  EXPECT_EQ(recalled(alice_, "oolong").size(), 1u) << "the index follows";
  EXPECT_TRUE(recalled(alice_, "green").empty());
}

TEST_F(MemoryRepositoryTest, ForgettingMarksTheMemoryKeepsTheTrailAndThePurgeRemovesIt) {
  const int64_t id = mem().add(memory(alice_, "Allergic to peanuts")).get()->row_id;
  auto ack =
      wait([&](WriteCallback cb) { mem().remove_for_user(alice_, id, std::move(cb), "asked to"); });
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(mem().get(id).error().code, ErrorCode::not_found);
  EXPECT_TRUE(recalled(alice_, "peanuts").empty());
  EXPECT_TRUE(mem().list_for_user(alice_)->empty());
  auto again = wait([&](WriteCallback cb) { mem().remove_for_user(alice_, id, std::move(cb)); });
  EXPECT_EQ(again.error().code, ErrorCode::not_found);
  // Remembering it again is a new memory (the forgotten one is not brought back).
  auto re = mem().add(memory(alice_, "Allergic to peanuts")).get();
  ASSERT_TRUE(re.ok());
  EXPECT_TRUE(re->inserted);
  EXPECT_NE(re->row_id, id);

  auto events = mem().events_for_user(alice_);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[1].op, "FORGET");
  EXPECT_EQ((*events)[1].old_text, "Allergic to peanuts");

  clock_.advance_ms(31 * kDayMs);
  auto purged = mem().purge_forgotten(clock_.now_ms() - 30 * kDayMs).get();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged->row_id, 1);
  EXPECT_EQ(mem().events_for_user(alice_)->size(), 3u) << "the trail outlives the row";
}

TEST_F(MemoryRepositoryTest, AnImportersIdUpdatesItsMemoryInsteadOfAddingASecond) {
  NewMemory m = memory(alice_, "Plays the cello");
  m.source = "import";
  m.external_id = "notion-17";
  const auto first = mem().add(m).get();
  ASSERT_TRUE(first.ok());
  m.content = "Plays the cello and the piano";
  const auto second = mem().add(m).get();
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->inserted);
  EXPECT_EQ(second->row_id, first->row_id);
  EXPECT_EQ((*mem().get(first->row_id))->content, "Plays the cello and the piano");
  EXPECT_EQ(mem().list_for_user(alice_)->size(), 1u);
  // The same external id is another user's own.
  m.user_id = bob_;
  EXPECT_TRUE(mem().add(m).get()->inserted);
}

TEST_F(MemoryRepositoryTest, RecallDropsStopWordsAndRanksTheFactAsked) {
  for (const char* text : {"I have a cat called Miso", "My sister lives in Berlin",
                           "I love to eat ramen", "I do yoga on Tuesdays"}) {
    ASSERT_TRUE(mem().add(memory(alice_, text)).get().ok());
  }
  const auto hits = recalled(alice_, "what do I love to eat?", 5);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0], "I love to eat ramen");
  EXPECT_EQ(hits.size(), 1u) << "\"I\", \"do\", \"to\" match nothing by themselves";
  EXPECT_EQ(MemoryRepository::content_words("what do I love to eat?"), "love eat");
  EXPECT_EQ(MemoryRepository::content_words("who are you?"), "who are you?");
  EXPECT_TRUE(recalled(bob_, "ramen").empty()) << "never another user's";
}

TEST_F(MemoryRepositoryTest, AMisspeltNameFindsTheUsersWordSpeltClosestToIt) {
  for (const char* text :
       {"My sister Katarina lives in Graz", "Priyanka is my manager", "I drink green tea"}) {
    ASSERT_TRUE(mem().add(memory(alice_, text)).get().ok());
  }
  ASSERT_TRUE(mem().add(memory(bob_, "Katharina plays the cello")).get().ok());
  EXPECT_EQ(recalled(alice_, "how is Katharina?"),
            std::vector<std::string>{"My sister Katarina lives in Graz"})
      << "Bob's Katharina is spelt as asked, but never Alice's";
  EXPECT_EQ(recalled(alice_, "Pryanka"), std::vector<std::string>{"Priyanka is my manager"});
  EXPECT_TRUE(recalled(alice_, "Kubernetes").empty()) << "nothing spelt close: no hit";
  // A word the user does use is never replaced; without the fuzzy path, no hit.
  EXPECT_EQ(recalled(alice_, "tea"), std::vector<std::string>{"I drink green tea"});
  RecallRequest exact;
  exact.user_id = alice_;
  exact.query = "how is Katharina?";
  exact.now_ms = clock_.now_ms();
  exact.fuzzy = false;
  EXPECT_TRUE(mem().recall_ranked(exact)->empty());
}

TEST_F(MemoryRepositoryTest, ParaphrasesDoNotFillTheSlotsAndKindsFilter) {
  ASSERT_TRUE(mem().add(memory(alice_, "Alice likes hiking in the Alps")).get().ok());
  ASSERT_TRUE(mem().add(memory(alice_, "Alice likes hiking in the Alps a lot")).get().ok());
  ASSERT_TRUE(mem().add(memory(alice_, "Goal: hike the Alps in June", "goal")).get().ok());
  const auto hits = recalled(alice_, "hiking Alps", 3);
  EXPECT_EQ(hits.size(), 2u) << "the paraphrase gave its slot away";
  RecallRequest r;
  r.user_id = alice_;
  r.query = "Alps";
  r.limit = 5;
  r.now_ms = clock_.now_ms();
  r.kinds = {"goal"};
  auto goals = mem().recall_ranked(r);
  ASSERT_TRUE(goals.ok());
  ASSERT_EQ(goals->size(), 1u);
  EXPECT_EQ((*goals)[0].memory->kind, "goal");
}

TEST_F(MemoryRepositoryTest, RecencyAndImportanceBreakTiesBetweenEquallyRelevantMemories) {
  const int64_t old_id = mem().add(memory(alice_, "Dentist appointment", "event", 3)).get()->row_id;
  clock_.advance_ms(90 * kDayMs);
  const int64_t new_id =
      mem().add(memory(alice_, "Dentist appointment moved", "event", 3)).get()->row_id;
  RecallRequest r;
  r.user_id = alice_;
  r.query = "dentist";
  r.limit = 2;
  r.now_ms = clock_.now_ms();
  auto hits = mem().recall_ranked(r);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_EQ((*hits)[0].memory->id, new_id);
  EXPECT_EQ((*hits)[1].memory->id, old_id);
  EXPECT_GT((*hits)[0].recency, 0.99);
  EXPECT_NEAR((*hits)[1].recency, 0.125, 1e-9) << "three half-lives of 30 days";
}

TEST_F(MemoryRepositoryTest, FusionRecallsAMemoryWithNoWordInCommonWhenItsVectorIsClose) {
  const int64_t car =
      mem().add(memory(alice_, "Drives a red car to work", "fact", 4)).get()->row_id;
  const int64_t cat = mem().add(memory(alice_, "Has a cat called Miso")).get()->row_id;
  const int64_t tea = mem().add(memory(alice_, "Drinks automobile-free oolong tea")).get()->row_id;
  ASSERT_TRUE(put(car, direction(0)).ok());
  ASSERT_TRUE(put(cat, direction(1)).ok());
  ASSERT_TRUE(put(tea, direction(2)).ok());

  EXPECT_TRUE(recalled(alice_, "which automobile do I own") ==
              std::vector<std::string>{"Drinks automobile-free oolong tea"})
      << "BM25 alone finds the word, not the meaning";
  auto hits = mem().recall_ranked(
      vector_request(alice_, "which automobile do I own", direction(0, 6, 0.2F)));
  const auto got = contents(hits);
  ASSERT_EQ(got.size(), 2u) << "orthogonal vectors are not found";
  EXPECT_EQ(got[0], "Drives a red car to work");
  EXPECT_EQ(got[1], "Drinks automobile-free oolong tea");
  EXPECT_DOUBLE_EQ((*hits)[0].relevance, 1.0) << "relevance is the rrf over the query's best";
  EXPECT_DOUBLE_EQ((*hits)[1].relevance, 1.0) << "both first in one list: the same rrf";

  // In both lists beats either alone.
  ASSERT_TRUE(put(tea, direction(0, 5, 0.5F)).ok());
  hits = mem().recall_ranked(vector_request(alice_, "automobile", direction(0, 6)));
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_EQ((*hits)[0].memory->id, tea);
  EXPECT_NEAR((*hits)[1].relevance, (1.0 / 61) / (1.0 / 61 + 1.0 / 62), 1e-9);
  EXPECT_TRUE(recalled(bob_, "automobile").empty());
  EXPECT_TRUE(
      contents(mem().recall_ranked(vector_request(bob_, "automobile", direction(0)))).empty())
      << "never another user's vectors";
}

TEST_F(MemoryRepositoryTest, AVectorOfAnotherModelOrDimensionIsIgnored) {
  const int64_t car = mem().add(memory(alice_, "Drives a red car to work")).get()->row_id;
  ASSERT_TRUE(put(car, direction(0), "embed-b").ok());
  std::vector<float> wide(16, 0.0F);
  wide[0] = 1.0F;
  ASSERT_TRUE(put(car, wide).ok());
  EXPECT_TRUE(
      contents(mem().recall_ranked(vector_request(alice_, "automobile", direction(0)))).empty());
  EXPECT_EQ(
      contents(mem().recall_ranked(vector_request(alice_, "automobile", direction(0), "embed-b"))),
      std::vector<std::string>{"Drives a red car to work"});

  // A bad query vector is refused, not silently ignored.
  auto zero = vector_request(alice_, "automobile", std::vector<float>(8, 0.0F));
  EXPECT_EQ(mem().recall_ranked(zero).error().code, ErrorCode::invalid_argument);
  auto short_one = vector_request(alice_, "automobile", direction(0));
  short_one.vector_dimensions = 16;
  EXPECT_EQ(mem().recall_ranked(short_one).error().code, ErrorCode::invalid_argument);
}

TEST_F(MemoryRepositoryTest, ForgottenMemoriesVectorsAreNotReturnedAndThePurgeDeletesThem) {
  const int64_t car = mem().add(memory(alice_, "Drives a red car to work")).get()->row_id;
  const int64_t old_car = mem().add(memory(alice_, "Drove a blue van")).get()->row_id;
  ASSERT_TRUE(put(car, direction(0)).ok());
  ASSERT_TRUE(put(old_car, direction(0, 7, 0.2F)).ok());
  ASSERT_TRUE(put(old_car, direction(0, 7, 0.2F), "embed-b").ok());
  ASSERT_EQ(
      contents(mem().recall_ranked(vector_request(alice_, "automobile", direction(0)))).size(), 2u);

  // Superseded: only when asked.
  ASSERT_TRUE(wait([&](WriteCallback cb) {
                mem().supersede_for_user(car, memory(alice_, "Cycles to work"), std::move(cb));
              }).ok());
  EXPECT_EQ(contents(mem().recall_ranked(vector_request(alice_, "automobile", direction(0)))),
            std::vector<std::string>{"Drove a blue van"});
  auto with_old = vector_request(alice_, "automobile", direction(0));
  with_old.include_superseded = true;
  EXPECT_EQ(contents(mem().recall_ranked(with_old)).size(), 2u);

  ASSERT_TRUE(
      wait([&](WriteCallback cb) { mem().remove_for_user(alice_, old_car, std::move(cb)); }).ok());
  EXPECT_TRUE(
      contents(mem().recall_ranked(vector_request(alice_, "automobile", direction(0)))).empty());
  EXPECT_EQ(put(old_car, direction(0)).error().code, ErrorCode::not_found)
      << "a forgotten memory is not embedded again";

  auto count_vectors = [&](int64_t id) {
    auto conn = store_->reads().acquire();
    auto st = conn->cached("SELECT count(*) FROM memory_vectors WHERE memory_id = ?");
    EXPECT_TRUE(st.ok());
    (*st)->bind_all(id);
    EXPECT_TRUE(*(*st)->step());
    return (*st)->column_int64(0);
  };
  EXPECT_EQ(count_vectors(old_car), 2) << "forgetting marks; the row and its vectors stay";
  clock_.advance_ms(31 * kDayMs);
  ASSERT_EQ(mem().purge_forgotten(clock_.now_ms() - 30 * kDayMs).get()->row_id, 1);
  EXPECT_EQ(count_vectors(old_car), 0) << "ON DELETE CASCADE";
  EXPECT_EQ(count_vectors(car), 1);
}

TEST_F(MemoryRepositoryTest, MemoriesWithoutVectorListsOnlyThoseLackingOneForThatModel) {
  const int64_t a = mem().add(memory(alice_, "One")).get()->row_id;
  const int64_t b = mem().add(memory(alice_, "Two")).get()->row_id;
  const int64_t c = mem().add(memory(alice_, "Three")).get()->row_id;
  const int64_t gone = mem().add(memory(alice_, "Four")).get()->row_id;
  ASSERT_TRUE(mem().add(memory(bob_, "Bob's")).get().ok());
  ASSERT_TRUE(
      wait([&](WriteCallback cb) { mem().remove_for_user(alice_, gone, std::move(cb)); }).ok());
  ASSERT_TRUE(put(b, direction(1)).ok());
  ASSERT_TRUE(put(c, direction(2), "embed-b").ok());
  auto missing = mem().memories_without_vector(alice_, "embed-a", 8, 10);
  ASSERT_TRUE(missing.ok()) << missing.error().describe();
  EXPECT_EQ(*missing, (std::vector<int64_t>{a, c}));
  EXPECT_EQ(*mem().memories_without_vector(alice_, "embed-b", 8, 10), (std::vector<int64_t>{a, b}));
  EXPECT_EQ(*mem().memories_without_vector(alice_, "embed-a", 16, 10),
            (std::vector<int64_t>{a, b, c}));
  EXPECT_EQ(*mem().memories_without_vector(alice_, "embed-a", 8, 1), (std::vector<int64_t>{a}));

  // Replacing a vector is one row, not two.
  auto again = put(b, direction(3));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->inserted);
  EXPECT_EQ(put(b, {1.0F, 0.0F}, "").error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(mem().put_vector(b, "embed-a", 8, direction(0, 7, 0.0F)).get()->row_id, b);
  const std::vector<float> too_short{1.0F};
  EXPECT_EQ(mem().put_vector(b, "embed-a", 8, too_short).get().error().code,
            ErrorCode::invalid_argument);
  EXPECT_EQ(mem().put_vector(999'999, "embed-a", 8, direction(0)).get().error().code,
            ErrorCode::not_found);
}

TEST_F(MemoryRepositoryTest, TheEmbeddingCacheRoundTripsByModelDimensionsAndExactText) {
  auto miss = mem().cached_embedding("embed-a", 8, "I love pizza");
  ASSERT_TRUE(miss.ok()) << miss.error().describe();
  EXPECT_FALSE(*miss);
  const auto v = direction(2, 5, 0.4F);
  ASSERT_TRUE(mem().put_cached_embedding("embed-a", 8, "I love pizza", v).get().ok());
  auto hit = mem().cached_embedding("embed-a", 8, "I love pizza");
  ASSERT_TRUE(hit.ok() && *hit);
  auto original = quantize(v);
  ASSERT_TRUE(original.ok());
  EXPECT_EQ((*hit)->values, original->values);
  EXPECT_NEAR(*dot(**hit, *original), 1.0, 0.01);
  EXPECT_FALSE(*mem().cached_embedding("embed-b", 8, "I love pizza"));
  EXPECT_FALSE(*mem().cached_embedding("embed-a", 16, "I love pizza"));
  EXPECT_FALSE(*mem().cached_embedding("embed-a", 8, "i love pizza")) << "the exact text";
  EXPECT_NE(MemoryRepository::embedding_text_hash("🙂"),
            MemoryRepository::embedding_text_hash("?!"));
  // Replaced, not duplicated.
  ASSERT_TRUE(mem().put_cached_embedding("embed-a", 8, "I love pizza", direction(0)).get().ok());
  EXPECT_EQ((*mem().cached_embedding("embed-a", 8, "I love pizza"))->values,
            quantize(direction(0))->values);
  EXPECT_EQ(
      mem().put_cached_embedding("embed-a", 8, "x", std::vector<float>(8, 0.0F)).get().error().code,
      ErrorCode::invalid_argument);
}

}  // namespace memory_repository_test
}  // namespace parley::storage
