// account: /export gives one JSON file with the caller's data and no one else's; /forget
// everything asks first and deletes on "confirm"; neither runs because a model asked; the
// command forms, including the two-word /forget everything.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "capabilities/builtins/user_store_fixture.h"

namespace parley::capabilities {
namespace account_test {

using nlohmann::json;
using ::testing::HasSubstr;

class AccountTest : public UserStoreFixture {
 protected:
  // As the user typing the command (direct) or as a model's tool call.
  Result<json> account(const UserScope& who, const json& args, bool direct = true) {
    InvokeContext ctx;
    ctx.caller.user_id = who.user_id();
    ctx.data = &who;
    ctx.services = &services_;
    ctx.direct = direct;
    return registry_.find("account")->invoke(ctx, args);
  }
  int64_t rows(const std::string& table, int64_t user) {
    auto conn = store_->reads().acquire();
    auto n = conn->query_int64("SELECT count(*) FROM " + table +
                               " WHERE user_id = " + std::to_string(user));
    return n.ok() ? *n : -1;
  }
};

TEST_F(AccountTest, ExportIsOneJsonFileOfTheCallersDataOnly) {
  ok("notes", &*alice_, {{"action", "save"}, {"body", "alice's secret recipe"}});
  ok("notes", &*bob_, {{"action", "save"}, {"body", "bob's fishing spot"}});
  ok("todo", &*alice_, {{"action", "add"}, {"text", "buy flour"}});
  auto r = account(*alice_, {{"action", "export"}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ((*r)["attachments"].size(), 1u);
  const json& file = (*r)["attachments"][0];
  EXPECT_EQ(file["filename"], "parley-export-2026-11-23.json");
  EXPECT_EQ(file["media_type"], "application/json");
  const json doc = json::parse(file["text"].get<std::string>());
  EXPECT_EQ(doc["user"]["display_name"], "Alice");
  EXPECT_EQ(doc["records"]["notes"][0]["body"], "alice's secret recipe");
  EXPECT_EQ(doc["records"]["list_items"][0]["text"], "buy flour");
  EXPECT_EQ(file["text"].get<std::string>().find("fishing"), std::string::npos);
  EXPECT_THAT((*r)["text"].get<std::string>(), HasSubstr("parley-export-2026-11-23.json"));
  EXPECT_THAT((*r)["text"].get<std::string>(), HasSubstr("1 notes"));
}

TEST_F(AccountTest, ForgetEverythingAsksFirstThenDeletesOnlyTheCallers) {
  ok("notes", &*alice_, {{"action", "save"}, {"body", "alice's note"}});
  ok("memory", &*alice_, {{"action", "remember"}, {"content", "Alice plays the oboe"}});
  ok("notes", &*bob_, {{"action", "save"}, {"body", "bob's note"}});

  auto ask = account(*alice_, {{"action", "forget_everything"}});
  ASSERT_TRUE(ask.ok());
  EXPECT_FALSE((*ask)["confirmed"].get<bool>());
  EXPECT_THAT((*ask)["text"].get<std::string>(), HasSubstr("/forget everything confirm"));
  EXPECT_EQ(rows("notes", alice_->user_id()), 1) << "nothing deleted before the confirmation";

  auto done = account(*alice_, {{"action", "forget_everything"}, {"confirm", true}});
  ASSERT_TRUE(done.ok()) << done.error().describe();
  EXPECT_TRUE((*done)["confirmed"].get<bool>());
  EXPECT_EQ((*done)["erased"]["notes"], 1);
  EXPECT_EQ((*done)["erased"]["memories"], 1);
  EXPECT_EQ(rows("notes", alice_->user_id()), 0);
  EXPECT_EQ(rows("memories", alice_->user_id()), 0);
  EXPECT_EQ(rows("notes", bob_->user_id()), 1);
  EXPECT_EQ(ok("memory", &*alice_, {{"action", "list"}})["memories"].size(), 0u);
}

TEST_F(AccountTest, AModelCannotExportOrDelete) {
  ok("notes", &*alice_, {{"action", "save"}, {"body", "alice's note"}});
  for (const json& args :
       {json{{"action", "export"}}, json{{"action", "forget_everything"}, {"confirm", true}}}) {
    auto r = account(*alice_, args, /*direct=*/false);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::permission_denied);
    EXPECT_THAT(r.error().message, HasSubstr("tell them to type /"));
  }
  EXPECT_EQ(rows("notes", alice_->user_id()), 1);
}

TEST_F(AccountTest, CommandForms) {
  Capability* cap = registry_.find("account");
  EXPECT_EQ(*cap->parse_command("export", ""), (json{{"action", "export"}}));
  EXPECT_EQ(*cap->parse_command("forget everything", ""),
            (json{{"action", "forget_everything"}, {"confirm", false}}));
  EXPECT_EQ(*cap->parse_command("forget everything", " confirm "),
            (json{{"action", "forget_everything"}, {"confirm", true}}));
  EXPECT_FALSE(cap->parse_command("forget everything", "please").ok());
  EXPECT_FALSE(cap->parse_command("export", "all").ok());
  // The two-word command is the account's; /forget ID stays the memory's.
  EXPECT_EQ(registry_.find_command("forget everything"), cap);
  EXPECT_EQ(registry_.find_command("forget"), registry_.find("memory"));
}

TEST(AccountRegistry, ACommandIsOneOrTwoWords) {
  class Named final : public Capability {
   public:
    explicit Named(std::string command) : command_(std::move(command)) {}
    [[nodiscard]] std::string_view name() const override { return "named"; }
    [[nodiscard]] std::string_view description() const override { return "test"; }
    [[nodiscard]] json parameters() const override { return {{"type", "object"}}; }
    [[nodiscard]] std::vector<CommandSpec> commands() const override {
      return {{command_, "/" + command_, "test"}};
    }

   private:
    std::string command_;
  };
  for (const char* bad : {"forget  everything", "forget everything now", " forget", "Forget"}) {
    Registry r;
    EXPECT_FALSE(r.add(std::make_unique<Named>(bad)).ok()) << bad;
  }
  Registry r;
  EXPECT_TRUE(r.add(std::make_unique<Named>("forget everything")).ok());
}

}  // namespace account_test
}  // namespace parley::capabilities
