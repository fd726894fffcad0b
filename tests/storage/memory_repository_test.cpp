// Tests of the memory model (migration 0009): kinds, exact duplicates never added, changed facts
// superseded rather than deleted, forgetting as a mark with a trail, importers' ids, the purge,
// and recall_ranked — the one recall the tool, the prompt and the CLI share.
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

}  // namespace memory_repository_test
}  // namespace parley::storage
