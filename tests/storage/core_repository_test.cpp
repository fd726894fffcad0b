// The core block: set, replace, unset per user; keys normalised and checked; the bounds (entries,
// total size) enforced on the writer, each refusal naming its limit.
#include "parley/storage/core_repository.h"

#include <gtest/gtest.h>

#include <future>

#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::storage {
namespace core_repository_test {

class CoreRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions o;
    o.path = dir_ / "parley.db";
    o.clock = &clock_;
    store_ = std::move(Store::open(o).value());
    alice_ = store_->directory().ensure_user("console", "alice", "Alice").get()->row_id;
    bob_ = store_->directory().ensure_user("console", "bob", "Bob").get()->row_id;
  }
  Result<WriteAck> set(int64_t user, std::string key, std::string value) {
    std::promise<Result<WriteAck>> p;
    auto f = p.get_future();
    store_->core().set(user, std::move(key), std::move(value),
                       [&p](Result<WriteAck> r) { p.set_value(std::move(r)); });
    return f.get();
  }
  Result<WriteAck> unset(int64_t user, std::string key) {
    std::promise<Result<WriteAck>> p;
    auto f = p.get_future();
    store_->core().unset(user, std::move(key),
                         [&p](Result<WriteAck> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
  int64_t alice_ = 0;
  int64_t bob_ = 0;
};

using Block = std::vector<std::pair<std::string, std::string>>;

TEST_F(CoreRepositoryTest, SetReplaceUnsetPerUser) {
  ASSERT_TRUE(set(alice_, "Pronouns", "she/her").ok());
  ASSERT_TRUE(set(alice_, "name", "Alice Martin").ok());
  ASSERT_TRUE(set(alice_, "name", "Ali").ok());
  EXPECT_EQ(*store_->core().get(alice_), (Block{{"name", "Ali"}, {"pronouns", "she/her"}}));
  EXPECT_TRUE(store_->core().get(bob_)->empty()) << "never another user's";
  ASSERT_TRUE(unset(alice_, "NAME").ok());
  EXPECT_EQ(*store_->core().get(alice_), (Block{{"pronouns", "she/her"}}));
  EXPECT_EQ(unset(alice_, "name").error().code, ErrorCode::not_found);
}

TEST_F(CoreRepositoryTest, BadKeysValuesAndTheBoundsAreRefusedByName) {
  EXPECT_NE(set(alice_, "two words", "x").error().message.find("'two words'"), std::string::npos);
  EXPECT_FALSE(set(alice_, "", "x").ok());
  EXPECT_FALSE(set(alice_, "name", "").ok());
  EXPECT_FALSE(set(alice_, "name", std::string(201, 'a')).ok());
  for (size_t i = 0; i < CoreRepository::kMaxKeys; ++i) {
    ASSERT_TRUE(set(alice_, "k" + std::to_string(i), "v").ok()) << i;
  }
  auto full = set(alice_, "one-more", "v");
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.error().message.find("at most 12 entries"), std::string::npos);
  EXPECT_TRUE(set(alice_, "k0", "replacing is fine").ok());
  for (size_t i = 0; i < 5; ++i)
    ASSERT_TRUE(set(bob_, "k" + std::to_string(i), std::string(150, 'b')).ok());
  auto big = set(bob_, "k5", std::string(100, 'b'));
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("over 800 characters"), std::string::npos);
}

}  // namespace core_repository_test
}  // namespace parley::storage
