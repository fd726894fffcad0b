// Tests of the hybrid store: repositories over the write queue, the hot cache kept in step
// with commits, FTS recall scoped to a user, health and online backup.
#include "parley/storage/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include "support/temp_dir.h"

namespace parley::storage {
namespace store_test {

using parley::testing::TempDir;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  void reopen(StoreOptions o = {}) {
    store_.reset();
    o.path = dir_ / "parley.db";
    o.clock = &clock_;
    auto s = Store::open(o);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    store_ = std::move(*s);
    conv_ = store_->directory().ensure_conversation("console", "main").get()->row_id;
    user_ = store_->directory().ensure_user("console", "alice", "Alice").get()->row_id;
  }

  NewMessage msg(std::string text, std::optional<std::string> platform_id = std::nullopt) {
    NewMessage m;
    m.conversation_id = conv_;
    m.channel = "console";
    m.platform_id = std::move(platform_id);
    m.author = "alice";
    m.text = std::move(text);
    return m;
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
  int64_t conv_ = 0;
  int64_t user_ = 0;
};

TEST_F(StoreTest, OpenMigratesAndReportsHealth) {
  EXPECT_EQ(store_->migration().to, latest_schema_version());
  const auto h = store_->health();
  EXPECT_TRUE(h.ok());
  EXPECT_EQ(h.schema_version, latest_schema_version());
  EXPECT_GT(h.wal_bytes, 0);
  EXPECT_EQ(h.readers, 4u);
  EXPECT_EQ(h.queue.jobs_committed, 2u);  // the conversation and the user
  EXPECT_TRUE(store_->integrity_check().ok());
}

TEST_F(StoreTest, RedeliveredMessageIsRecognised) {
  auto first = store_->messages().append(msg("hello", "m-1")).get();
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_TRUE(first->inserted);
  auto again = store_->messages().append(msg("hello (redelivered)", "m-1")).get();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->inserted);
  EXPECT_EQ(again->row_id, first->row_id);
  auto found = store_->messages().find("console", "m-1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->text, "hello") << "the original is kept";
  // Same platform id on another channel is another message.
  auto other = msg("hi", "m-1");
  other.channel = "http";
  EXPECT_TRUE(store_->messages().append(other).get()->inserted);
}

TEST_F(StoreTest, MessagesWithoutPlatformIdNeverCollide) {
  auto a = store_->messages().append(msg("one")).get();
  auto b = store_->messages().append(msg("two")).get();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->row_id, b->row_id);
}

TEST_F(StoreTest, BadMessagesFailClearlyAndAloneAndKeepTheRest) {
  auto no_channel = msg("x");
  no_channel.channel.clear();
  auto r1 = store_->messages().append(no_channel).get();
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.error().code, ErrorCode::invalid_argument);

  auto bad_role = msg("x", "p-1");
  bad_role.role = "robot";
  auto bad_meta = msg("y", "p-2");
  bad_meta.metadata = "{not json";
  auto no_conv = msg("z", "p-3");
  no_conv.conversation_id = 999'999;
  auto f1 = store_->messages().append(bad_role);
  auto f2 = store_->messages().append(bad_meta);
  auto f3 = store_->messages().append(no_conv);
  auto good = store_->messages().append(msg("fine", "p-4"));
  for (auto* f : {&f1, &f2, &f3}) {
    auto r = f->get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << r.error().message;
    EXPECT_NE(r.error().message.find("constraint failed"), std::string::npos) << r.error().message;
  }
  EXPECT_TRUE(good.get().ok());
  auto h = store_->messages().recent(conv_);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ((*h)->size(), 1u);
  EXPECT_EQ((*h)->back()->text, "fine");
}

TEST_F(StoreTest, RecentHistoryIsCachedAndUpdatedOnCommit) {
  reopen(StoreOptions{.history_messages = 3});
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->messages().append(msg("m" + std::to_string(i))).get().ok());
  }
  auto h1 = store_->messages().recent(conv_);
  ASSERT_TRUE(h1.ok());
  ASSERT_EQ((*h1)->size(), 3u);
  EXPECT_EQ((*h1)->front()->text, "m2");
  EXPECT_EQ((*h1)->back()->text, "m4");
  const auto misses = store_->cache().stats().misses;

  ASSERT_TRUE(store_->messages().append(msg("m5")).get().ok());
  // Read after the acknowledged write: from the cache, and already containing m5.
  auto h2 = store_->messages().recent(conv_);
  ASSERT_TRUE(h2.ok());
  EXPECT_EQ(store_->cache().stats().misses, misses) << "served from the cache";
  ASSERT_EQ((*h2)->size(), 3u);
  EXPECT_EQ((*h2)->front()->text, "m3");
  EXPECT_EQ((*h2)->back()->text, "m5");
  EXPECT_GT((*h2)->back()->id, 0);
  // The earlier snapshot is unchanged (shared, immutable).
  EXPECT_EQ((*h1)->back()->text, "m4");
}

TEST_F(StoreTest, ReadAfterAckNeverSeesStaleHistoryUnderConcurrency) {
  // Writers append while readers keep loading the same conversation: each writer, after its
  // ack, must find recent() reaching at least its own message.
  std::atomic<int> stale{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop) (void)store_->messages().recent(conv_);
    });
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 150; ++i) {
        const std::string text = "w" + std::to_string(w) + "-" + std::to_string(i);
        auto ack = store_->messages().append(msg(text)).get();
        if (!ack.ok()) {
          ++stale;
          continue;
        }
        // Not stale: the history reaches at least this message. (Other writers may have pushed
        // it out of the window since, so its newest message may be a later one.)
        auto h = store_->messages().recent(conv_);
        if (!h.ok() || (*h)->empty() || (*h)->back()->id < ack->row_id) ++stale;
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(stale.load(), 0);
}

TEST_F(StoreTest, MemoriesAreRecalledForTheirUserOnly) {
  const int64_t bob = store_->directory().ensure_user("console", "bob", "Bob").get()->row_id;
  auto& mem = store_->memories();
  ASSERT_TRUE(mem.add({user_, "Alice's cat is called Miso", "pets", 3}).get().ok());
  ASSERT_TRUE(mem.add({user_, "Alice prefers tea over coffee", "food", 1}).get().ok());
  ASSERT_TRUE(mem.add({bob, "Bob has a cat called Tiger", "pets", 5}).get().ok());

  auto hits = mem.recall(user_, "what is my cat's name?");
  ASSERT_TRUE(hits.ok()) << hits.error().describe();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].memory->content, "Alice's cat is called Miso");

  auto drinks = mem.recall(user_, "coffee");
  ASSERT_TRUE(drinks.ok());
  ASSERT_EQ(drinks->size(), 1u);

  auto tags = mem.recall(bob, "pets");
  ASSERT_TRUE(tags.ok());
  ASSERT_EQ(tags->size(), 1u) << "tags are searchable";
  EXPECT_EQ((*tags)[0].memory->user_id, bob);
}

TEST_F(StoreTest, RecallTreatsQueryAsWordsNeverAsSyntax) {
  ASSERT_TRUE(store_->memories().add({user_, "the meeting is on Friday", "", 0}).get().ok());
  for (const char* hostile : {"\"", "friday\" OR user_id : \"2", "NEAR(", "*", "AND OR NOT",
                              "user_id:1", "-friday", "{content}: x", "^friday", "", "   "}) {
    auto r = store_->memories().recall(user_, hostile);
    ASSERT_TRUE(r.ok()) << hostile << ": " << r.error().describe();
  }
  const auto expr = MemoryRepository::match_expression(7, "a \"b\" c");
  EXPECT_EQ(expr, "user_id : \"7\" AND {content tags} : (\"a\" OR \"b\" OR \"c\")");
  auto found = store_->memories().recall(user_, "Friday?!");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->size(), 1u);
}

TEST_F(StoreTest, RecallRanksBestFirstAndRespectsLimit) {
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(
        store_->memories().add({user_, "note number " + std::to_string(i), "", 0}).get().ok());
  }
  ASSERT_TRUE(store_->memories().add({user_, "garden garden garden", "", 0}).get().ok());
  ASSERT_TRUE(
      store_->memories().add({user_, "the garden needs water and a long note", "", 0}).get().ok());
  auto hits = store_->memories().recall(user_, "garden", 10);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_EQ((*hits)[0].memory->content, "garden garden garden");
  EXPECT_GT((*hits)[0].score, (*hits)[1].score);
  auto many = store_->memories().recall(user_, "note", 5);
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->size(), 5u);
}

TEST_F(StoreTest, RecallRanksWithTheUsersOwnStatistics) {
  // For Alice, "lisbon" is rare (1 of 6 memories) and "tea" common (5 of 6): the Lisbon memory
  // ranks first. Statistics over everyone (Bob's 50 Lisbon memories) would rank it last.
  const int64_t bob = store_->directory().ensure_user("console", "bob", "Bob").get()->row_id;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(
        store_->memories().add({bob, "trip to lisbon " + std::to_string(i), "", 0}).get().ok());
  }
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        store_->memories().add({user_, "drinks tea at " + std::to_string(i), "", 0}).get().ok());
  }
  ASSERT_TRUE(store_->memories().add({user_, "was born in lisbon", "", 0}).get().ok());
  auto hits = store_->memories().recall(user_, "tea lisbon", 3);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 3u);
  EXPECT_EQ((*hits)[0].memory->content, "was born in lisbon");
  for (const auto& h : *hits) EXPECT_EQ(h.memory->user_id, user_);
}

TEST_F(StoreTest, MemoryUpdateAndRemoveKeepCacheAndIndexInStep) {
  auto& mem = store_->memories();
  auto id = mem.add({user_, "lives in Lisbon", "home", 2}).get()->row_id;
  auto cached = mem.get(id);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ((*cached)->content, "lives in Lisbon");

  ASSERT_TRUE(mem.update(id, {user_, "lives in Porto", "home", 4}).get().ok());
  auto after = mem.get(id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)->content, "lives in Porto");
  EXPECT_EQ((*after)->importance, 4);
  EXPECT_EQ((*after)->user_id, user_);
  EXPECT_TRUE(mem.recall(user_, "Lisbon")->empty()) << "the FTS index follows the update";
  EXPECT_EQ(mem.recall(user_, "Porto")->size(), 1u);

  ASSERT_TRUE(mem.remove(id).get().ok());
  auto gone = mem.get(id);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::not_found);
  EXPECT_TRUE(mem.recall(user_, "Porto")->empty());

  auto missing = mem.update(424242, {user_, "x", "", 0}).get();
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  auto empty = mem.add({user_, "", "", 0}).get();
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::invalid_argument);
}

TEST_F(StoreTest, MemoriesListedAndRemovedForTheirUserOnly) {
  const int64_t bob = store_->directory().ensure_user("console", "bob", "Bob").get()->row_id;
  auto& mem = store_->memories();
  const int64_t a1 = mem.add({user_, "alice one", "", 1}).get()->row_id;
  clock_.advance_ms(1000);
  const int64_t b1 = mem.add({bob, "bob one", "", 1}).get()->row_id;
  clock_.advance_ms(1000);
  const int64_t a2 = mem.add({user_, "alice two", "", 1}).get()->row_id;

  auto alices = mem.list_for_user(user_);
  ASSERT_TRUE(alices.ok()) << alices.error().describe();
  ASSERT_EQ(alices->size(), 2u);
  EXPECT_EQ((*alices)[0]->id, a2) << "most recently updated first";
  EXPECT_EQ((*alices)[1]->id, a1);
  EXPECT_EQ(mem.list_for_user(user_, 1)->size(), 1u);
  EXPECT_TRUE(mem.list_for_user(user_, 0)->empty());

  const auto remove_for = [&](int64_t user, int64_t id) {
    std::promise<Result<WriteAck>> p;
    auto f = p.get_future();
    mem.remove_for_user(user, id, [&p](Result<WriteAck> r) { p.set_value(std::move(r)); });
    return f.get();
  };
  auto foreign = remove_for(bob, a1);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().code, ErrorCode::not_found);
  EXPECT_EQ(foreign.error().message, "no memory with id " + std::to_string(a1))
      << "another user's id reads like a free one";
  EXPECT_EQ(remove_for(bob, 424242).error().message, "no memory with id 424242");
  ASSERT_TRUE(mem.get(a1).ok()) << "still there";
  EXPECT_EQ(mem.recall(user_, "one")->size(), 1u);

  ASSERT_TRUE(remove_for(user_, a1).ok());
  EXPECT_EQ(mem.get(a1).error().code, ErrorCode::not_found) << "the cache follows";
  EXPECT_TRUE(mem.recall(user_, "one")->empty()) << "and the index";
  EXPECT_EQ(mem.list_for_user(bob)->size(), 1u);
  EXPECT_EQ((*mem.list_for_user(bob))[0]->id, b1);
}

TEST_F(StoreTest, CheckpointsRunOffTheWriterThread) {
  reopen(StoreOptions{.checkpoint_pages = 20});
  const int64_t db_before = store_->health().db_bytes;
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(
        store_->messages().append(msg(std::string(400, 'x') + std::to_string(i))).get().ok());
  }
  // The checkpointer copies the WAL into the database file on its own thread. Its first
  // checkpoints may copy only pages that already exist in the file (or none, past a reader's
  // snapshot), so wait for the file to grow, not for the first checkpoint.
  for (int i = 0; i < 500 && store_->health().db_bytes <= db_before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto h = store_->health();
  EXPECT_GT(h.checkpoints, 0u);
  EXPECT_GT(h.db_bytes, db_before) << "pages reached the main database file";
  EXPECT_TRUE(store_->integrity_check().ok());
}

TEST_F(StoreTest, EnsureUserAndConversationAreIdempotent) {
  auto again = store_->directory().ensure_user("console", "alice", "Someone else").get();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->row_id, user_);
  EXPECT_FALSE(again->inserted);
  EXPECT_EQ(*store_->directory().find_user("console", "alice"), user_);
  auto conv = store_->directory().ensure_conversation("console", "main").get();
  EXPECT_EQ(conv->row_id, conv_);
  EXPECT_FALSE(conv->inserted);
  EXPECT_EQ(store_->directory().find_user("discord", "alice").error().code, ErrorCode::not_found);
  EXPECT_EQ(*store_->directory().identity_of(user_), "console:alice");
  EXPECT_EQ(store_->directory().identity_of(user_ + 1000).error().code, ErrorCode::not_found);
}

// What a crash left unanswered: a conversation whose last message is a user's, recent, and
// neither spent on (usage) nor queued (outbox) for it. Every row here is written in the same
// millisecond (the test clock stands still): what was spent or queued for which message is told
// by id, never by time.
TEST_F(StoreTest, UnansweredMessagesAreTheLastOfTheirConversationWithNothingSpentOrQueued) {
  const auto conversation = [this](const std::string& key) {
    return store_->directory().ensure_conversation("http", key).get()->row_id;
  };
  const auto say = [this](int64_t conv, const std::string& role, const std::string& text) {
    NewMessage m = msg(text);
    m.conversation_id = conv;
    m.channel = "http";
    m.role = role;
    return store_->messages().append(m).get()->row_id;
  };
  const int64_t start = clock_.now_ms();
  const int64_t answered = conversation("answered");
  say(answered, "user", "q1");
  say(answered, "assistant", "a1");
  const int64_t waiting = conversation("waiting");
  say(waiting, "user", "q2");
  const int64_t waiting_id = say(waiting, "user", "q3 (a burst)");
  // Reading the conversation for memories is no answer to it.
  UsageRecord extraction;
  extraction.conversation_id = waiting;
  extraction.purpose = "extraction";
  ASSERT_TRUE(store_->usage().record(extraction).get().ok());
  const int64_t spent = conversation("spent");
  UsageRecord usage;
  usage.conversation_id = spent;
  usage.message_id = say(spent, "user", "q4");
  usage.purpose = "turn";
  ASSERT_TRUE(store_->usage().record(usage).get().ok());
  const int64_t queued = conversation("queued");
  const int64_t q5 = say(queued, "user", "q5");
  const auto queue_reply = [this](int64_t conv, int64_t reply_to) {
    std::promise<Result<WriteAck>> added;
    store_->outbox().add(
        conv, "http", "key", "the reply",
        [&added](Result<WriteAck> r) { added.set_value(std::move(r)); }, {}, reply_to);
    ASSERT_TRUE(added.get_future().get().ok());
  };
  queue_reply(queued, q5);
  // The previous turn's rows (its usage, its reply queued) in the very millisecond of the next
  // message are no answer to it.
  const int64_t asked_again = conversation("asked again");
  const int64_t q7 = say(asked_again, "user", "q7");
  UsageRecord previous;
  previous.conversation_id = asked_again;
  previous.message_id = q7;
  previous.purpose = "turn";
  ASSERT_TRUE(store_->usage().record(previous).get().ok());
  say(asked_again, "assistant", "a7");
  queue_reply(asked_again, q7);
  const int64_t asked_again_id = say(asked_again, "user", "q8");
  // A reminder or an alert queued in the conversation answers nothing, later or not.
  const int64_t reminded = conversation("reminded");
  const int64_t reminded_id = say(reminded, "user", "q9");
  clock_.advance_ms(1);
  ASSERT_TRUE(store_->outbox().add(reminded, "http", "reminded", "a reminder").get().ok());
  // Rows written before the columns said which message they answer: by time, strictly later.
  const int64_t legacy = conversation("legacy");
  say(legacy, "user", "q10");
  const int64_t legacy_same_ms = conversation("legacy same ms");
  const int64_t legacy_same_ms_id = say(legacy_same_ms, "user", "q11");
  clock_.advance_ms(1);
  UsageRecord old_row;
  old_row.conversation_id = legacy;
  old_row.purpose = "turn";
  ASSERT_TRUE(store_->usage().record(old_row).get().ok());
  old_row.conversation_id = legacy_same_ms;
  old_row.ts = clock_.now_ms() - 1;
  ASSERT_TRUE(store_->usage().record(old_row).get().ok());
  clock_.advance_ms(10'000);
  const int64_t later = conversation("later");
  const int64_t later_id = say(later, "user", "q6");

  auto found = store_->messages().unanswered(start, later_id);
  ASSERT_TRUE(found.ok()) << found.error().describe();
  std::vector<int64_t> ids;
  for (const auto& u : *found) ids.push_back(u.message.id);
  EXPECT_EQ(ids, (std::vector<int64_t>{waiting_id, asked_again_id, reminded_id, legacy_same_ms_id,
                                       later_id}));
  EXPECT_EQ((*found)[0].message.text, "q3 (a burst)");
  EXPECT_EQ((*found)[0].conversation_key, "waiting");
  // The window and the id bound.
  EXPECT_EQ(store_->messages().unanswered(start + 5'000, later_id)->size(), 1u);
  EXPECT_EQ(store_->messages().unanswered(start, later_id - 1)->size(), 4u);
  EXPECT_EQ(store_->messages().unanswered(start, later_id, 1)->size(), 1u);
}

TEST_F(StoreTest, DataSurvivesReopen) {
  auto id = store_->messages().append(msg("persist me", "keep-1")).get()->row_id;
  reopen();
  auto m = store_->messages().get(id);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->text, "persist me");
  EXPECT_EQ(m->created_at, clock_.now_ms()) << "timestamps come from the injected clock";
}

TEST_F(StoreTest, BackupIsAConsistentCheckedCopy) {
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(store_->messages().append(msg("b" + std::to_string(i))).get().ok());
  }
  ASSERT_TRUE(store_->memories().add({user_, "backed up memory", "", 0}).get().ok());
  const auto dest = dir_ / "copy.db";
  auto r = store_->backup(dest);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  auto copy = Connection::open(dest, {.mode = ConnectionOptions::Mode::read_only});
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(*copy->query_int64("SELECT count(*) FROM messages"), 100);
  EXPECT_EQ(
      *copy->query_int64("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH 'backed'"), 1);
  auto again = store_->backup(dest);
  ASSERT_FALSE(again.ok()) << "an existing file is never overwritten";
  EXPECT_EQ(again.error().code, ErrorCode::already_exists);
}

TEST_F(StoreTest, NewerDatabaseIsRefused) {
  store_.reset();
  {
    auto c = Connection::open(dir_ / "parley.db");
    ASSERT_TRUE(c->exec("INSERT INTO schema_version VALUES (999, 'future', 0)").ok());
  }
  StoreOptions o;
  o.path = dir_ / "parley.db";
  auto s = Store::open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("999"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find(std::to_string(latest_schema_version())), std::string::npos);
}

TEST_F(StoreTest, ClosingDrainsPendingWrites) {
  std::vector<std::future<Result<WriteAck>>> pending;
  for (int i = 0; i < 300; ++i)
    pending.push_back(store_->messages().append(msg("d" + std::to_string(i))));
  store_.reset();
  for (auto& f : pending) EXPECT_TRUE(f.get().ok());
  reopen();
  auto c = Connection::open(dir_ / "parley.db", {.mode = ConnectionOptions::Mode::read_only});
  EXPECT_EQ(*c->query_int64("SELECT count(*) FROM messages"), 300);
}

}  // namespace store_test
}  // namespace parley::storage
