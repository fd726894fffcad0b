// UserData: the export holds everything of one person and nothing of anyone else (their rows in
// every table, found from the schema; their vectors; their private conversations whole and their
// own messages elsewhere); erasure removes exactly that — FTS rows, vectors, cached embeddings,
// summaries and hot cache entries included — and keeps the ledger, the identities and the
// other person's data.
#include "parley/storage/user_data.h"

#include <gtest/gtest.h>

#include <future>
#include <set>

#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::storage {
namespace user_data_test {

using nlohmann::json;
using parley::testing::TempDir;

class UserDataTest : public ::testing::Test {
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
    bob_ = store_->directory().ensure_user("discord", "b0b", "Bob").get()->row_id;
    // Alice on Discord too: one person, two identities.
    exec(
        "INSERT INTO identities(user_id, channel, external_id, created_at) "
        "VALUES (" +
        std::to_string(alice_) + ", 'discord', 'a11ce', 0)");

    private_ = store_->directory().ensure_conversation("console", "alice-session").get()->row_id;
    group_ = store_->directory().ensure_conversation("discord", "guild-channel").get()->row_id;
    append(private_, "console", "user", "alice", "my cat is called Miso");
    append(private_, "console", "assistant", "parley", "Miso is a lovely name");
    append(group_, "discord", "user", "a11ce", "alice says the plan is Tuesday");
    append(group_, "discord", "user", "b0b", "bob agrees about Tuesday");
    append(group_, "discord", "assistant", "parley", "Tuesday it is");
    summary(private_, "Alice has a cat, Miso");
    summary(group_, "Alice and Bob plan Tuesday");

    const int64_t miso = remember(alice_, "Alice's cat is called Miso");
    remember(bob_, "Bob's dog is called Rex");
    ASSERT_TRUE(
        store_->memories().put_vector(miso, "embed", 4, std::vector<float>{1, 0, 0, 0}).get().ok());
    ASSERT_TRUE(store_->memories()
                    .put_cached_embedding("embed", 4, "Alice's cat is called Miso",
                                          std::vector<float>{1, 0, 0, 0})
                    .get()
                    .ok());
    ASSERT_TRUE(store_->memories()
                    .put_cached_embedding("embed", 4, "Bob's dog is called Rex",
                                          std::vector<float>{0, 1, 0, 0})
                    .get()
                    .ok());
    for (const int64_t user : {alice_, bob_}) {
      const std::string u = std::to_string(user);
      exec("INSERT INTO notes(user_id, title, body, created_at, updated_at) VALUES (" + u +
           ", 'n', 'note of " + u + "', 0, 0)");
      exec("INSERT INTO journal_entries(user_id, day, at, body, created_at, updated_at) VALUES (" +
           u + ", '2027-01-15', 0, 'journal of " + u + " gardening', 0, 0)");
      exec("INSERT INTO habits(user_id, name, frequency, start_day, created_at) VALUES (" + u +
           ", 'run', 'daily', '2027-01-01', 0)");
      exec(
          "INSERT INTO habit_logs(habit_id, user_id, day, done, at) SELECT id, user_id, "
          "'2027-01-02', 1, 0 FROM habits WHERE user_id = " +
          u);
      exec(
          "INSERT INTO expenses(user_id, day, amount_minor, currency, category, created_at) "
          "VALUES (" +
          u + ", '2027-01-15', 1234, 'EUR', 'food', 0)");
      UsageRecord r;
      r.user_id = user;
      r.purpose = "turn";
      r.model_requested = "m";
      r.prompt_tokens = 10;
      ASSERT_TRUE(store_->usage().record(r).get().ok());
    }
    ASSERT_TRUE(store_->messages().recent(private_).ok());  // the history is cached now
  }

  void exec(const std::string& sql) {
    std::promise<Result<WriteAck>> p;
    WriteJob job;
    job.what = "test";
    job.apply = [sql](Connection& c) -> Result<WriteAck> {
      PARLEY_TRY(c.exec(sql));
      return WriteAck{};
    };
    job.done = [&p](Result<WriteAck> r) { p.set_value(std::move(r)); };
    store_->writes().submit(std::move(job));
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << sql << ": " << r.error().describe();
  }

  int64_t count(const std::string& sql) {
    auto lease = store_->reads().acquire();
    auto n = lease->query_int64(sql);
    EXPECT_TRUE(n.ok()) << sql;
    return n.ok() ? *n : -1;
  }

  void append(int64_t conversation, const std::string& channel, const std::string& role,
              const std::string& author, const std::string& text) {
    NewMessage m;
    m.conversation_id = conversation;
    m.channel = channel;
    m.role = role;
    m.author = author;
    m.text = text;
    ASSERT_TRUE(store_->messages().append(std::move(m)).get().ok());
  }

  void summary(int64_t conversation, const std::string& text) {
    ConversationSummary s;
    s.conversation_id = conversation;
    s.through_message_id = 1;
    s.text = text;
    std::promise<Result<WriteAck>> p;
    store_->messages().add_summary(s, [&p](Result<WriteAck> r) { p.set_value(std::move(r)); });
    ASSERT_TRUE(p.get_future().get().ok());
  }

  int64_t remember(int64_t user, const std::string& text) {
    NewMemory m;
    m.user_id = user;
    m.content = text;
    m.kind = "fact";
    auto r = store_->memories().add(std::move(m)).get();
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->row_id : 0;
  }

  Result<ErasedCounts> erase(int64_t user) {
    std::promise<Result<ErasedCounts>> p;
    store_->user_data().erase_user(user,
                                   [&p](Result<ErasedCounts> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  static std::set<std::string> texts_of(const json& messages) {
    std::set<std::string> out;
    for (const auto& m : messages) out.insert(m.at("text").get<std::string>());
    return out;
  }

  TempDir dir_;
  ManualClock clock_{0};
  std::unique_ptr<Store> store_;
  int64_t alice_ = 0;
  int64_t bob_ = 0;
  int64_t private_ = 0;
  int64_t group_ = 0;
};

TEST_F(UserDataTest, TheExportHoldsEverythingOfThePersonAndNothingOfAnyoneElse) {
  auto doc = store_->user_data().export_user(alice_);
  ASSERT_TRUE(doc.ok()) << doc.error().describe();
  EXPECT_EQ((*doc)["format"], "parley-export/1");
  EXPECT_EQ((*doc)["user"]["display_name"], "Alice");
  EXPECT_EQ((*doc)["identities"].size(), 2u);
  const json& records = (*doc)["records"];
  for (const char* table : {"memories", "memory_vectors", "memory_events", "notes",
                            "journal_entries", "habits", "habit_logs", "expenses", "usage"}) {
    ASSERT_TRUE(records.contains(table)) << table << " in " << records.dump();
    for (const auto& row : records[table]) {
      if (row.contains("user_id")) {
        EXPECT_EQ(row["user_id"], alice_) << table;
      }
    }
  }
  EXPECT_EQ(records["memories"].size(), 1u);
  EXPECT_EQ(records["memories"][0]["content"], "Alice's cat is called Miso");
  EXPECT_TRUE(records["memory_vectors"][0]["vector"].contains("base64"));
  EXPECT_EQ(records["expenses"][0]["amount_minor"], 1234);
  EXPECT_FALSE(doc->dump().find("Rex") != std::string::npos) << "nothing of Bob's";
  EXPECT_FALSE(doc->dump().find("note of " + std::to_string(bob_)) != std::string::npos);

  ASSERT_EQ((*doc)["conversations"].size(), 2u);
  for (const auto& c : (*doc)["conversations"]) {
    if (c["id"] == private_) {
      EXPECT_TRUE(c["only_you"].get<bool>());
      EXPECT_EQ(texts_of(c["messages"]),
                (std::set<std::string>{"my cat is called Miso", "Miso is a lovely name"}));
    } else {
      EXPECT_FALSE(c["only_you"].get<bool>());
      EXPECT_EQ(texts_of(c["messages"]), std::set<std::string>{"alice says the plan is Tuesday"})
          << "only her own words from a conversation with others";
    }
  }
  EXPECT_EQ(store_->user_data().export_user(99'999).error().code, ErrorCode::not_found);
}

TEST_F(UserDataTest, ErasureRemovesHerDataWithItsIndexesAndKeepsTheLedgerAndBob) {
  const int64_t bob_rows_before =
      count("SELECT count(*) FROM notes WHERE user_id = " + std::to_string(bob_)) +
      count("SELECT count(*) FROM journal_entries WHERE user_id = " + std::to_string(bob_)) +
      count("SELECT count(*) FROM memories WHERE user_id = " + std::to_string(bob_));
  auto erased = erase(alice_);
  ASSERT_TRUE(erased.ok()) << erased.error().describe();
  EXPECT_EQ(erased->at("memories"), 1);
  EXPECT_EQ(erased->at("memory_vectors"), 1);
  EXPECT_EQ(erased->at("journal_entries"), 1);
  EXPECT_EQ(erased->at("messages"), 3) << "her two conversations' worth: 2 private + 1 of hers";
  EXPECT_EQ(erased->at("conversation_summaries"), 2);
  EXPECT_EQ(erased->at("embedding_cache"), 1);
  EXPECT_FALSE(erased->contains("usage")) << "the ledger is kept";

  const std::string a = std::to_string(alice_);
  for (const char* table : {"memories", "memory_events", "notes", "journal_entries", "habits",
                            "habit_logs", "expenses"}) {
    EXPECT_EQ(count(std::string("SELECT count(*) FROM ") + table + " WHERE user_id = " + a), 0)
        << table;
  }
  EXPECT_EQ(count("SELECT count(*) FROM memory_vectors"), 0);
  // The full-text indexes no longer know her words; Bob's are still found.
  EXPECT_EQ(count("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH 'miso'"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM journal_fts WHERE journal_fts MATCH 'gardening'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM notes_fts WHERE notes_fts MATCH 'note'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM embedding_cache"), 1) << "Bob's cached embedding stays";
  EXPECT_EQ(count("SELECT count(*) FROM usage WHERE user_id = " + a), 1);
  EXPECT_EQ(count("SELECT count(*) FROM identities WHERE user_id = " + a), 2);

  // Bob's words and the bot's reply in the group stay; the private conversation is empty, also
  // through the hot cache.
  EXPECT_EQ(
      count("SELECT count(*) FROM messages WHERE conversation_id = " + std::to_string(group_)), 2);
  auto history = store_->messages().recent(private_);
  ASSERT_TRUE(history.ok());
  EXPECT_TRUE((*history)->empty());
  const int64_t bob_rows_after =
      count("SELECT count(*) FROM notes WHERE user_id = " + std::to_string(bob_)) +
      count("SELECT count(*) FROM journal_entries WHERE user_id = " + std::to_string(bob_)) +
      count("SELECT count(*) FROM memories WHERE user_id = " + std::to_string(bob_));
  EXPECT_EQ(bob_rows_after, bob_rows_before);

  // Nothing left to export but the profile, the identities and the ledger.
  auto doc = store_->user_data().export_user(alice_);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["conversations"].size(), 0u);
  EXPECT_EQ((*doc)["records"].size(), 1u) << (*doc)["records"].dump();
  EXPECT_TRUE((*doc)["records"].contains("usage"));

  EXPECT_EQ(erase(99'999).error().code, ErrorCode::not_found);
}

}  // namespace user_data_test
}  // namespace parley::storage
