// todo: add, list (open, or all), done, remove with their answers; every error case; per-user
// isolation (Bob can neither see, complete nor remove Alice's items, by any id, and learns
// nothing from trying); the /todo command forms; nothing without a storage scope.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "capabilities/builtins/user_store_fixture.h"

namespace parley::capabilities {
namespace todo_test {

using nlohmann::json;
using ::testing::HasSubstr;

class TodoTest : public UserStoreFixture {
 protected:
  json todo(const UserScope& who, const json& args) { return ok("todo", &who, args); }
  Result<json> try_todo(const UserScope& who, const json& args) { return call("todo", &who, args); }
  int64_t add(const UserScope& who, const std::string& text) {
    return todo(who, {{"action", "add"}, {"text", text}})["item"]["id"].get<int64_t>();
  }
};

TEST_F(TodoTest, AddListDoneRemove) {
  auto added = todo(*alice_, {{"action", "add"}, {"text", "  buy milk "}});
  const int64_t milk = added["item"]["id"].get<int64_t>();
  EXPECT_EQ(added["text"], "Added #" + std::to_string(milk) + ": buy milk");
  EXPECT_EQ(added["item"]["text"], "buy milk");
  EXPECT_EQ(added["item"]["done"], false);
  EXPECT_EQ(added["item"]["created_at"], "2026-11-23T14:04:05Z");
  const int64_t call_mom = add(*alice_, "call mom");
  EXPECT_GT(call_mom, milk);

  auto list = todo(*alice_, {{"action", "list"}});
  ASSERT_EQ(list["items"].size(), 2u);
  EXPECT_EQ(list["items"][0]["id"], milk);
  EXPECT_EQ(list["items"][1]["text"], "call mom");
  EXPECT_EQ(list["text"], "Your open todos:\n#" + std::to_string(milk) + " buy milk\n#" +
                              std::to_string(call_mom) + " call mom");

  clock_.advance_ms(60'000);
  auto done = todo(*alice_, {{"action", "done"}, {"id", milk}});
  EXPECT_EQ(done["text"], "Done #" + std::to_string(milk) + ": buy milk");
  EXPECT_EQ(done["item"]["done"], true);
  EXPECT_EQ(done["item"]["done_at"], "2026-11-23T14:05:05Z");
  auto again = todo(*alice_, {{"action", "done"}, {"id", milk}});
  EXPECT_EQ(again["text"], "#" + std::to_string(milk) + " was already done: buy milk");
  EXPECT_EQ(again["item"]["done_at"], "2026-11-23T14:05:05Z") << "the first time is kept";

  auto open = todo(*alice_, {{"action", "list"}});
  ASSERT_EQ(open["items"].size(), 1u);
  EXPECT_EQ(open["items"][0]["id"], call_mom);
  auto all = todo(*alice_, {{"action", "list"}, {"include_done", true}});
  ASSERT_EQ(all["items"].size(), 2u);
  EXPECT_EQ(all["items"][0]["id"], call_mom) << "open items first";
  EXPECT_EQ(all["items"][1]["done"], true);
  EXPECT_THAT(all["text"].get<std::string>(), HasSubstr("[done] buy milk"));

  auto removed = todo(*alice_, {{"action", "remove"}, {"id", call_mom}});
  EXPECT_EQ(removed["text"], "Removed #" + std::to_string(call_mom) + ": call mom");
  EXPECT_EQ(todo(*alice_, {{"action", "list"}})["text"], "Nothing left to do.");
  EXPECT_EQ(todo(*alice_, {{"action", "remove"}, {"id", milk}})["item"]["done"], true);
  EXPECT_EQ(todo(*alice_, {{"action", "list"}, {"include_done", true}})["text"],
            "Your todo list is empty.");
}

TEST_F(TodoTest, AnswerComesAfterTheCommit) {
  const int64_t id = add(*alice_, "water plants");
  auto conn = store_->reads().acquire();
  // The todo list is the list named "todo" (migration 0011).
  auto st = conn->prepare(
      "SELECT i.user_id, i.text, i.done_at IS NULL FROM list_items i JOIN lists l "
      "ON l.id = i.list_id AND l.name = 'todo' WHERE i.id = ?");
  ASSERT_TRUE(st.ok());
  st->bind_all(id);
  ASSERT_TRUE(*st->step());
  EXPECT_EQ(st->column_int64(0), alice_->user_id());
  EXPECT_EQ(st->column_text(1), "water plants");
  EXPECT_EQ(st->column_int64(2), 1);
}

TEST_F(TodoTest, UnknownIdsAreNotFound) {
  for (const char* action : {"done", "remove"}) {
    auto r = try_todo(*alice_, {{"action", action}, {"id", 4242}});
    ASSERT_FALSE(r.ok()) << action;
    EXPECT_EQ(r.error().code, ErrorCode::not_found);
    EXPECT_EQ(r.error().message, "todo: you have no item #4242");
  }
}

TEST_F(TodoTest, UsersCannotReachEachOthersItemsByAnyId) {
  const int64_t a1 = add(*alice_, "alice one");
  const int64_t b1 = add(*bob_, "bob one");
  const int64_t a2 = add(*alice_, "alice two");
  ASSERT_TRUE(todo(*alice_, {{"action", "done"}, {"id", a2}})["item"]["done"]);

  auto bobs = todo(*bob_, {{"action", "list"}, {"include_done", true}});
  ASSERT_EQ(bobs["items"].size(), 1u);
  EXPECT_EQ(bobs["items"][0]["id"], b1);
  EXPECT_EQ(bobs["text"].get<std::string>().find("alice"), std::string::npos);

  // Every id Alice has (and the ones around them): the same answer as an id nobody has.
  for (int64_t id = 1; id <= a2 + 3; ++id) {
    if (id == b1) continue;
    for (const char* action : {"done", "remove"}) {
      auto r = try_todo(*bob_, {{"action", action}, {"id", id}});
      ASSERT_FALSE(r.ok()) << action << " #" << id;
      EXPECT_EQ(r.error().code, ErrorCode::not_found);
      EXPECT_EQ(r.error().message, "todo: you have no item #" + std::to_string(id));
    }
  }
  auto alices = todo(*alice_, {{"action", "list"}, {"include_done", true}});
  ASSERT_EQ(alices["items"].size(), 2u);
  EXPECT_EQ(alices["items"][0]["id"], a1);
  EXPECT_EQ(alices["items"][0]["done"], false) << "Bob's 'done' did not touch it";
  EXPECT_EQ(alices["items"][1]["id"], a2);
  // And the other way round.
  EXPECT_EQ(try_todo(*alice_, {{"action", "remove"}, {"id", b1}}).error().code,
            ErrorCode::not_found);
  EXPECT_EQ(todo(*bob_, {{"action", "list"}})["items"].size(), 1u);
}

TEST_F(TodoTest, ArgumentErrors) {
  struct Case {
    json args;
    std::string says;
  };
  for (const auto& c : {
           Case{{{"action", "add"}}, "todo: add needs a non-empty \"text\""},
           Case{{{"action", "add"}, {"text", "   "}}, "todo: add needs a non-empty \"text\""},
           Case{{{"action", "add"}, {"text", ""}}, "arguments.text"},
           Case{{{"action", "add"}, {"text", std::string(501, 'x')}}, "arguments.text"},
           Case{{{"action", "done"}}, "todo: done needs the item's \"id\""},
           Case{{{"action", "remove"}}, "todo: remove needs the item's \"id\""},
           Case{{{"action", "done"}, {"id", "3"}}, "arguments.id"},
           Case{{{"action", "done"}, {"id", 0}}, "arguments.id"},
           Case{{{"action", "done"}, {"id", 1.5}}, "arguments.id"},
           Case{{{"action", "list"}, {"include_done", "yes"}}, "arguments.include_done"},
           Case{{{"action", "frobnicate"}}, "arguments.action"},
           Case{{{"text", "milk"}}, "arguments.action"},
           Case{{{"action", "add"}, {"text", "milk"}, {"user_id", 2}}, "arguments.user_id"},
       }) {
    auto r = try_todo(*alice_, c.args);
    ASSERT_FALSE(r.ok()) << c.args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.args.dump();
  }
  EXPECT_EQ(todo(*alice_, {{"action", "list"}, {"include_done", true}})["items"].size(), 0u);
}

TEST_F(TodoTest, NoStorageScopeNoTodos) {
  auto r = call("todo", nullptr, {{"action", "list"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_THAT(r.error().message, HasSubstr("todo:"));
}

TEST_F(TodoTest, CommandForms) {
  Capability* todo_cap = registry_.find_command("todo");
  ASSERT_EQ(todo_cap, registry_.find("todo"));
  const auto parse = [&](std::string_view text) { return todo_cap->parse_command("todo", text); };
  EXPECT_EQ(*parse("add buy milk"), (json{{"action", "add"}, {"text", "buy milk"}}));
  EXPECT_EQ(*parse("  add   buy  milk "), (json{{"action", "add"}, {"text", "buy  milk"}}));
  EXPECT_EQ(*parse("list"), (json{{"action", "list"}}));
  EXPECT_EQ(*parse(""), (json{{"action", "list"}}));
  EXPECT_EQ(*parse("list all"), (json{{"action", "list"}, {"include_done", true}}));
  EXPECT_EQ(*parse("done 3"), (json{{"action", "done"}, {"id", 3}}));
  EXPECT_EQ(*parse("remove #3"), (json{{"action", "remove"}, {"id", 3}}));
  for (const char* bad : {"done", "done three", "done 0", "done -1", "done 3x", "remove", "add",
                          "list everything", "frobnicate 3"}) {
    auto r = parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << bad;
  }
  EXPECT_THAT(parse("frobnicate").error().message, HasSubstr("/todo add TEXT"));
  EXPECT_THAT(parse("done three").error().message, HasSubstr("'three'"));

  // A parsed command runs as is.
  const int64_t id = todo(*alice_, *parse("add buy milk"))["item"]["id"].get<int64_t>();
  EXPECT_EQ(todo(*alice_, *parse("done " + std::to_string(id)))["item"]["done"], true);
  EXPECT_EQ(todo(*alice_, *parse("list all"))["items"].size(), 1u);
  EXPECT_EQ(todo_cap->flags().side_effects, SideEffects::unsafe);
}

}  // namespace todo_test
}  // namespace parley::capabilities
