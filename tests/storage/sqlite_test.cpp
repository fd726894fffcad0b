// Tests of the SQLite RAII layer: pragmas, statements, the statement cache, errors and
// transactions.
#include "parley/storage/sqlite.h"

#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace parley::storage {
namespace sqlite_test {

using parley::testing::TempDir;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = Connection::open(dir_ / "t.db");
    ASSERT_TRUE(c.ok()) << c.error().describe();
    conn_ = std::move(*c);
  }
  TempDir dir_;
  Connection conn_;
};

TEST_F(SqliteTest, AppliesPragmas) {
  EXPECT_EQ(*conn_.query_text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(*conn_.query_int64("PRAGMA synchronous"), 1);  // NORMAL
  EXPECT_EQ(*conn_.query_int64("PRAGMA foreign_keys"), 1);
  EXPECT_EQ(*conn_.query_int64("PRAGMA temp_store"), 2);  // MEMORY
  EXPECT_EQ(*conn_.query_int64("PRAGMA busy_timeout"), 5000);
  EXPECT_EQ(*conn_.query_int64("PRAGMA cache_size"), -8192);
  EXPECT_GT(*conn_.query_int64("PRAGMA mmap_size"), 0);
}

TEST_F(SqliteTest, BindsAndReadsEveryType) {
  ASSERT_TRUE(conn_.exec("CREATE TABLE t(i INTEGER, d REAL, s TEXT, n TEXT)").ok());
  auto ins = conn_.prepare("INSERT INTO t VALUES (?,?,?,?)");
  ASSERT_TRUE(ins.ok());
  std::optional<std::string> none;
  ASSERT_TRUE(ins->bind_all(int64_t{42}, 2.5, std::string_view("héllo"), none).run().ok());
  ASSERT_TRUE(ins->bind_all(int64_t{7}, 0.0, std::string_view(""), std::optional<std::string>("x"))
                  .run()
                  .ok());
  auto sel = conn_.prepare("SELECT i, d, s, n FROM t ORDER BY i DESC");
  ASSERT_TRUE(sel.ok());
  ASSERT_TRUE(*sel->step());
  EXPECT_EQ(sel->column_int64(0), 42);
  EXPECT_DOUBLE_EQ(sel->column_double(1), 2.5);
  EXPECT_EQ(sel->column_text(2), "héllo");
  EXPECT_TRUE(sel->column_is_null(3));
  ASSERT_TRUE(*sel->step());
  EXPECT_FALSE(sel->column_is_null(2)) << "an empty string binds as '', not NULL";
  EXPECT_EQ(sel->column_text(3), "x");
  EXPECT_FALSE(*sel->step());
}

TEST_F(SqliteTest, ErrorsCarryMessageAndStatement) {
  auto bad = conn_.prepare("SELEC nonsense");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("syntax error"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("SELEC nonsense"), std::string::npos) << bad.error().message;

  ASSERT_TRUE(conn_.exec("CREATE TABLE u(k TEXT UNIQUE NOT NULL)").ok());
  auto ins = conn_.prepare("INSERT INTO u VALUES (?)");
  ASSERT_TRUE(ins->bind_all("a").run().ok());
  auto dup = ins->bind_all("a").run();
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::already_exists);
  EXPECT_NE(dup.error().message.find("UNIQUE constraint failed: u.k"), std::string::npos);
  EXPECT_NE(dup.error().message.find("INSERT INTO u"), std::string::npos);

  auto null = ins->bind_all(nullptr).run();
  ASSERT_FALSE(null.ok());
  EXPECT_EQ(null.error().code, ErrorCode::invalid_argument);

  auto ex = conn_.exec("INSERT INTO u VALUES ('a')");
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.error().code, ErrorCode::already_exists) << ex.error().message;
}

TEST_F(SqliteTest, StatementCacheReusesAndResets) {
  ASSERT_TRUE(conn_.exec("CREATE TABLE t(v INTEGER); INSERT INTO t VALUES (1),(2),(3)").ok());
  sqlite3_stmt* first = nullptr;
  {
    auto st = conn_.cached("SELECT v FROM t ORDER BY v");
    ASSERT_TRUE(st.ok());
    first = (*st)->handle();
    ASSERT_TRUE(*(*st)->step());
    EXPECT_EQ((*st)->column_int64(0), 1);
  }  // left mid-result: the handle resets it
  auto again = conn_.cached("SELECT v FROM t ORDER BY v");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->handle(), first);
  ASSERT_TRUE(*(*again)->step());
  EXPECT_EQ((*again)->column_int64(0), 1) << "a cached statement starts from the first row";
}

TEST_F(SqliteTest, TransactionRollsBackUnlessCommitted) {
  ASSERT_TRUE(conn_.exec("CREATE TABLE t(v INTEGER)").ok());
  {
    auto txn = Transaction::begin(conn_);
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(conn_.exec("INSERT INTO t VALUES (1)").ok());
  }
  EXPECT_EQ(*conn_.query_int64("SELECT count(*) FROM t"), 0);
  {
    auto txn = Transaction::begin(conn_);
    ASSERT_TRUE(conn_.exec("INSERT INTO t VALUES (1)").ok());
    ASSERT_TRUE(txn->commit().ok());
  }
  EXPECT_EQ(*conn_.query_int64("SELECT count(*) FROM t"), 1);
}

TEST_F(SqliteTest, ReadOnlyConnectionCannotWrite) {
  ASSERT_TRUE(conn_.exec("CREATE TABLE t(v INTEGER)").ok());
  auto ro = Connection::open(dir_ / "t.db", {.mode = ConnectionOptions::Mode::read_only});
  ASSERT_TRUE(ro.ok()) << ro.error().describe();
  auto w = ro->exec("INSERT INTO t VALUES (1)");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, ErrorCode::permission_denied) << w.error().message;
}

TEST(SqliteOpen, MissingDirectoryNamesThePath) {
  auto c = Connection::open("/nonexistent-dir-parley/x.db");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("/nonexistent-dir-parley/x.db"), std::string::npos);
}

TEST(SqliteOpen, NotADatabaseIsDataLoss) {
  TempDir dir;
  {
    std::FILE* f = std::fopen((dir / "junk.db").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const std::string junk(8192, 'x');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  auto c = Connection::open(dir / "junk.db");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::data_loss) << c.error().message;
}

TEST_F(SqliteTest, IntegrityCheckOk) { EXPECT_TRUE(conn_.integrity_check().ok()); }

}  // namespace sqlite_test
}  // namespace parley::storage
