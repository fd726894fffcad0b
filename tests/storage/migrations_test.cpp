// Tests of forward-only migrations: a new database, an older one upgraded in one transaction,
// a failing migration that leaves nothing behind, and a newer database refused.
#include "parley/storage/migrations.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace parley::storage {
namespace migrations_test {

using parley::testing::TempDir;

Connection open_db(const std::filesystem::path& p) {
  auto c = Connection::open(p);
  EXPECT_TRUE(c.ok()) << c.error().describe();
  return std::move(*c);
}

bool has_table(Connection& c, const std::string& name) {
  auto st = c.prepare("SELECT count(*) FROM sqlite_schema WHERE name = ?");
  st->bind_all(name);
  (void)st->step();
  return st->column_int64(0) == 1;
}

TEST(Migrations, BuiltinListIsNumberedFromOne) {
  const auto all = builtin_migrations();
  ASSERT_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].version, static_cast<int>(i) + 1);
  EXPECT_EQ(latest_schema_version(), all.back().version);
  EXPECT_EQ(all.front().name, "initial");
}

TEST(Migrations, NewDatabaseGetsEveryTable) {
  TempDir dir;
  auto c = open_db(dir / "db");
  EXPECT_EQ(*schema_version(c), 0);
  auto r = migrate(c);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->from, 0);
  EXPECT_EQ(r->to, latest_schema_version());
  for (const char* t :
       {"users",           "identities",    "conversations",   "messages",        "memories",
        "memories_fts",    "prompts",       "prompt_history",  "usage",           "credit_balance",
        "credit_alerts",   "reminders",     "outbox",          "notes",           "notes_fts",
        "access_refusals", "channel_state", "journal_entries", "journal_fts",     "mood_logs",
        "habits",          "habit_logs",    "goals",           "goal_milestones", "decisions",
        "decisions_fts",   "expenses",      "lists",           "list_items",      "events",
        "schema_version"}) {
    EXPECT_TRUE(has_table(c, t)) << t;
  }
  // Opening again is a no-op.
  auto again = migrate(c);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->from, again->to);
}

TEST(Migrations, RemindersKnowTheirChannelAndWhenTheyFired) {
  TempDir dir;
  auto c = open_db(dir / "db");
  ASSERT_TRUE(migrate(c).ok());
  std::vector<std::string> columns;
  auto st = c.prepare("SELECT name FROM pragma_table_info('reminders') ORDER BY cid");
  ASSERT_TRUE(st.ok());
  while (*st->step()) columns.push_back(st->column_text(0));
  EXPECT_EQ(columns, (std::vector<std::string>{"id", "user_id", "conversation_id", "due_at", "text",
                                               "state", "created_at", "channel", "fired_at"}));
  EXPECT_TRUE(has_table(c, "reminders_user")) << "the index of a user's own list";
  EXPECT_TRUE(has_table(c, "reminders_due"));
}

TEST(Migrations, OlderDatabaseIsUpgradedInOrder) {
  TempDir dir;
  const std::vector<Migration> v1 = {{1, "one", "CREATE TABLE a(x INTEGER);"}};
  const std::vector<Migration> v3 = {
      {1, "one", "CREATE TABLE a(x INTEGER);"},
      {2, "two", "ALTER TABLE a ADD COLUMN y TEXT; INSERT INTO a VALUES (1, 'two');"},
      {3, "three", "CREATE TABLE b AS SELECT * FROM a;"}};
  auto c = open_db(dir / "db");
  ASSERT_TRUE(migrate(c, v1).ok());
  EXPECT_EQ(*schema_version(c), 1);
  auto r = migrate(c, v3);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->from, 1);
  EXPECT_EQ(r->to, 3);
  EXPECT_EQ(*c.query_text("SELECT y FROM b"), "two");
  EXPECT_EQ(*c.query_int64("SELECT count(*) FROM schema_version"), 3);
}

TEST(Migrations, FailingMigrationRollsBackTheWholeUpgrade) {
  TempDir dir;
  const std::vector<Migration> v1 = {{1, "one", "CREATE TABLE a(x INTEGER);"}};
  const std::vector<Migration> broken = {{1, "one", "CREATE TABLE a(x INTEGER);"},
                                         {2, "two", "CREATE TABLE c(z INTEGER);"},
                                         {3, "three", "INSERT INTO missing VALUES (1);"}};
  auto c = open_db(dir / "db");
  ASSERT_TRUE(migrate(c, v1).ok());
  auto r = migrate(c, broken);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("0003_three"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("no such table: missing"), std::string::npos);
  EXPECT_EQ(*schema_version(c), 1) << "one transaction: migration 2 must be undone too";
  EXPECT_FALSE(has_table(c, "c"));
}

TEST(Migrations, NewerDatabaseIsRefusedNamingBothVersions) {
  TempDir dir;
  const std::vector<Migration> v2 = {{1, "one", "CREATE TABLE a(x INTEGER);"},
                                     {2, "two", "CREATE TABLE b(x INTEGER);"}};
  const std::vector<Migration> v1 = {{1, "one", "CREATE TABLE a(x INTEGER);"}};
  auto c = open_db(dir / "db");
  ASSERT_TRUE(migrate(c, v2).ok());
  auto r = migrate(c, v1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("version 2"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("version 1"), std::string::npos) << r.error().message;
  EXPECT_EQ(*schema_version(c), 2);
}

TEST(Migrations, GapInListIsRejected) {
  TempDir dir;
  const std::vector<Migration> gap = {{1, "one", "SELECT 1;"}, {3, "three", "SELECT 1;"}};
  auto c = open_db(dir / "db");
  auto r = migrate(c, gap);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(*schema_version(c), 0);
}

TEST(Migrations, SchemaEnforcesItsConstraints) {
  TempDir dir;
  auto c = open_db(dir / "db");
  ASSERT_TRUE(migrate(c).ok());
  ASSERT_TRUE(c.exec("INSERT INTO conversations(id, channel, external_id, created_at) "
                     "VALUES (1, 'console', 'main', 0)")
                  .ok());
  EXPECT_FALSE(c.exec("INSERT INTO messages(conversation_id, channel, role, text, created_at) "
                      "VALUES (1, 'console', 'robot', 'x', 0)")
                   .ok())
      << "role is checked";
  EXPECT_FALSE(c.exec("INSERT INTO messages(conversation_id, channel, role, text, created_at) "
                      "VALUES (99, 'console', 'user', 'x', 0)")
                   .ok())
      << "foreign keys are on";
  EXPECT_FALSE(c.exec("INSERT INTO messages(conversation_id, channel, role, text, created_at, "
                      "metadata) VALUES (1, 'console', 'user', 'x', 0, '{broken')")
                   .ok())
      << "metadata must be JSON";
  EXPECT_FALSE(c.exec("INSERT INTO outbox(channel, target, body, state, created_at, updated_at) "
                      "VALUES ('console', 't', 'b', 'lost', 0, 0)")
                   .ok());
}

}  // namespace migrations_test
}  // namespace parley::storage
