// lists: add (a new list on first use, names without case), show (open items first), done,
// undone, remove (optionally checked against the list named), clear, lists, delete_list with
// their answers; the list named "todo" shared with the todo capability both ways; isolation
// between users by item number and by list name; argument errors; the /list and /lists forms
// (a leading quantity with or without a known unit).
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "capabilities/builtins/user_store_fixture.h"

namespace parley::capabilities {
namespace lists_test {

using nlohmann::json;
using ::testing::HasSubstr;

class ListsTest : public UserStoreFixture {
 protected:
  json lists(const UserScope& who, const json& args) { return ok("lists", &who, args); }
  Result<json> try_lists(const UserScope& who, const json& args) {
    return call("lists", &who, args);
  }
  int64_t add(const UserScope& who, const std::string& list, const std::string& text) {
    return lists(who, {{"action", "add"}, {"list", list}, {"text", text}})["item"]["id"]
        .get<int64_t>();
  }
  Result<json> parse(std::string_view command, std::string_view text) {
    return registry_.find_command(command)->parse_command(command, text);
  }
  // A /list or /lists command as the user types it.
  Result<json> command(const UserScope& who, std::string_view command_name, std::string_view text) {
    auto args = parse(command_name, text);
    if (!args) return args;
    return try_lists(who, *args);
  }
  json run(const UserScope& who, std::string_view command_name, std::string_view text) {
    auto r = command(who, command_name, text);
    EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : json();
  }
};

TEST_F(ListsTest, AddShowDoneUndoneRemove) {
  auto apples = lists(*alice_, {{"action", "add"},
                                {"list", "Groceries"},
                                {"text", " apples "},
                                {"quantity", 2},
                                {"unit", "KG"}});
  const int64_t a = apples["item"]["id"].get<int64_t>();
  EXPECT_EQ(apples["text"], fmt::format("Added #{} to groceries (a new list): 2 kg apples", a));
  EXPECT_EQ(apples["created_list"], true);
  EXPECT_EQ(apples["item"], (json{{"id", a},
                                  {"list", "groceries"},
                                  {"text", "apples"},
                                  {"quantity", 2.0},
                                  {"unit", "kg"},
                                  {"done", false},
                                  {"created_at", "2026-11-23T14:04:05Z"},
                                  {"done_at", nullptr}}));
  auto milk = lists(*alice_, {{"action", "add"},
                              {"list", "GROCERIES"},
                              {"text", "milk"},
                              {"quantity", 1.5},
                              {"unit", "l"}});
  const int64_t m = milk["item"]["id"].get<int64_t>();
  EXPECT_EQ(milk["text"], fmt::format("Added #{} to groceries: 1.5 l milk", m));
  EXPECT_EQ(milk["created_list"], false) << "names are compared without case";
  const int64_t l = lists(*alice_, {{"action", "add"},
                                    {"list", "groceries"},
                                    {"text", "lemons"},
                                    {"quantity", 3}})["item"]["id"]
                        .get<int64_t>();
  const int64_t bread = add(*alice_, "groceries", "bread");

  clock_.advance_ms(60'000);
  auto done = lists(*alice_, {{"action", "done"}, {"id", a}});
  EXPECT_EQ(done["text"], fmt::format("Done #{} on groceries: 2 kg apples", a));
  EXPECT_EQ(done["item"]["done_at"], "2026-11-23T14:05:05Z");
  EXPECT_EQ(lists(*alice_, {{"action", "done"}, {"id", a}})["text"],
            fmt::format("#{} on groceries: 2 kg apples was already done", a));

  auto shown = lists(*alice_, {{"action", "show"}, {"list", "groceries"}});
  EXPECT_EQ(shown["list"], "groceries");
  EXPECT_EQ(shown["open"], 3);
  ASSERT_EQ(shown["items"].size(), 4u);
  EXPECT_EQ(shown["items"][3]["id"], a) << "open items first";
  EXPECT_EQ(shown["text"], fmt::format("groceries — 3 open, 1 done:\n#{} 1.5 l milk\n#{} 3 "
                                       "lemons\n#{} bread\n#{} [done] 2 kg apples",
                                       m, l, bread, a));

  auto undone = lists(*alice_, {{"action", "undone"}, {"id", a}});
  EXPECT_EQ(undone["text"], fmt::format("Open again #{} on groceries: 2 kg apples", a));
  EXPECT_EQ(undone["item"]["done"], false);
  EXPECT_EQ(lists(*alice_, {{"action", "undone"}, {"id", a}})["text"],
            fmt::format("#{} on groceries: 2 kg apples was already open", a));

  auto removed = lists(*alice_, {{"action", "remove"}, {"id", l}, {"list", "Groceries"}});
  EXPECT_EQ(removed["text"], fmt::format("Removed #{} on groceries: 3 lemons", l));
  auto gone = try_lists(*alice_, {{"action", "remove"}, {"id", l}});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::not_found);
  EXPECT_EQ(gone.error().message, fmt::format("lists: you have no item #{}", l));
  EXPECT_EQ(lists(*alice_, {{"action", "show"}, {"list", "groceries"}})["items"].size(), 3u);
}

TEST_F(ListsTest, AnItemNumberOnAnotherListIsNotFoundThere) {
  const int64_t socks = add(*alice_, "packing", "socks");
  add(*alice_, "groceries", "milk");
  auto r = try_lists(*alice_, {{"action", "done"}, {"id", socks}, {"list", "groceries"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::not_found);
  EXPECT_EQ(r.error().message, fmt::format("lists: you have no item #{} on groceries", socks));
  EXPECT_EQ(lists(*alice_, {{"action", "show"}, {"list", "packing"}})["open"], 1);
  EXPECT_EQ(
      lists(*alice_, {{"action", "done"}, {"id", socks}, {"list", "packing"}})["item"]["done"],
      true);
}

TEST_F(ListsTest, ListsClearAndDelete) {
  EXPECT_EQ(lists(*alice_, {{"action", "lists"}})["text"],
            "You have no lists yet; start one with /list groceries add milk.");
  const int64_t milk = add(*alice_, "groceries", "milk");
  const int64_t eggs = add(*alice_, "groceries", "eggs");
  add(*alice_, "groceries", "bread");
  add(*alice_, "packing", "socks");
  lists(*alice_, {{"action", "done"}, {"id", milk}});
  lists(*alice_, {{"action", "done"}, {"id", eggs}});

  auto all = lists(*alice_, {{"action", "lists"}});
  EXPECT_EQ(all["lists"], (json{{{"name", "groceries"}, {"open", 1}, {"total", 3}},
                                {{"name", "packing"}, {"open", 1}, {"total", 1}}}));
  EXPECT_EQ(all["text"], "Your lists:\ngroceries: 1 open of 3\npacking: 1 open of 1");

  auto cleared = lists(*alice_, {{"action", "clear"}, {"list", "groceries"}});
  EXPECT_EQ(cleared["cleared"], 2);
  EXPECT_EQ(cleared["text"], "Cleared 2 done items from groceries.");
  auto shown = lists(*alice_, {{"action", "show"}, {"list", "groceries"}});
  ASSERT_EQ(shown["items"].size(), 1u);
  EXPECT_EQ(shown["items"][0]["text"], "bread");
  EXPECT_EQ(lists(*alice_, {{"action", "clear"}, {"list", "groceries"}})["text"],
            "groceries has no done items to clear.");

  auto deleted = lists(*alice_, {{"action", "delete_list"}, {"list", "Packing"}});
  EXPECT_EQ(deleted["text"], "Deleted the list packing and its 1 item (1 open).");
  EXPECT_EQ(deleted["deleted_items"], 1);
  for (const char* action : {"show", "clear", "delete_list"}) {
    auto r = try_lists(*alice_, {{"action", action}, {"list", "packing"}});
    ASSERT_FALSE(r.ok()) << action;
    EXPECT_EQ(r.error().code, ErrorCode::not_found) << action;
    EXPECT_EQ(r.error().message, "lists: you have no list named 'packing' (/lists shows yours)");
  }
  // Its items went with it.
  auto conn = store_->reads().acquire();
  auto st = conn->prepare("SELECT count(*) FROM list_items WHERE user_id = ?");
  ASSERT_TRUE(st.ok());
  st->bind_all(alice_->user_id());
  ASSERT_TRUE(*st->step());
  EXPECT_EQ(st->column_int64(0), 1);

  lists(*alice_, {{"action", "clear"}, {"list", "groceries"}});
  lists(*alice_, {{"action", "remove"}, {"id", shown["items"][0]["id"]}});
  EXPECT_EQ(lists(*alice_, {{"action", "show"}, {"list", "groceries"}})["text"],
            "groceries is empty.");
  EXPECT_EQ(lists(*alice_, {{"action", "delete_list"}, {"list", "groceries"}})["text"],
            "Deleted the list groceries (it was empty).");
}

TEST_F(ListsTest, TodoIsTheListNamedTodo) {
  // Added with /todo, seen and ticked off through /list todo.
  const int64_t milk =
      ok("todo", &*alice_, {{"action", "add"}, {"text", "buy milk"}})["item"]["id"].get<int64_t>();
  auto shown = run(*alice_, "list", "todo");
  ASSERT_EQ(shown["items"].size(), 1u);
  EXPECT_EQ(shown["items"][0]["id"], milk);
  EXPECT_EQ(shown["items"][0]["text"], "buy milk");
  EXPECT_EQ(run(*alice_, "lists", "")["lists"][0],
            (json{{"name", "todo"}, {"open", 1}, {"total", 1}}));

  // Added with /list todo, seen and ticked off through /todo.
  auto added = run(*alice_, "list", "Todo add call mom");
  EXPECT_EQ(added["created_list"], false) << "the list /todo made";
  const int64_t call_mom = added["item"]["id"].get<int64_t>();
  auto todos = ok("todo", &*alice_, {{"action", "list"}});
  ASSERT_EQ(todos["items"].size(), 2u);
  EXPECT_EQ(todos["items"][1]["id"], call_mom);
  EXPECT_EQ(todos["items"][1]["text"], "call mom");
  EXPECT_EQ(ok("todo", &*alice_, {{"action", "done"}, {"id", call_mom}})["item"]["done"], true);
  EXPECT_EQ(run(*alice_, "list", "todo")["items"][1]["done"], true);
  run(*alice_, "list", "todo done " + std::to_string(milk));
  EXPECT_EQ(ok("todo", &*alice_, {{"action", "list"}})["text"], "Nothing left to do.");
  run(*alice_, "list", "todo clear");
  EXPECT_EQ(ok("todo", &*alice_, {{"action", "list"}, {"include_done", true}})["text"],
            "Your todo list is empty.");

  // A list made first by /list todo is the one /todo uses.
  auto bobs = run(*bob_, "list", "todo add water plants");
  EXPECT_EQ(bobs["created_list"], true);
  auto bob_todos = ok("todo", &*bob_, {{"action", "list"}});
  ASSERT_EQ(bob_todos["items"].size(), 1u);
  EXPECT_EQ(bob_todos["items"][0]["id"], bobs["item"]["id"]);
  // Deleting the todo list is allowed and says what went; /todo starts a new one.
  EXPECT_EQ(run(*bob_, "list", "todo delete")["text"],
            "Deleted the list todo and its 1 item (1 open).");
  EXPECT_EQ(ok("todo", &*bob_, {{"action", "list"}})["text"], "Nothing left to do.");
  ok("todo", &*bob_, {{"action", "add"}, {"text", "again"}});
  EXPECT_EQ(run(*bob_, "list", "todo")["items"].size(), 1u);
}

TEST_F(ListsTest, UsersCannotReachEachOthersListsOrItems) {
  const int64_t a1 = add(*alice_, "groceries", "alice milk");
  add(*alice_, "secret plans", "alice two");
  const int64_t b1 = add(*bob_, "groceries", "bob bread");
  EXPECT_EQ(lists(*bob_, {{"action", "add"}, {"list", "groceries"}, {"text", "x"}})["created_list"],
            false)
      << "Bob's own groceries";

  auto bobs = lists(*bob_, {{"action", "show"}, {"list", "groceries"}});
  ASSERT_EQ(bobs["items"].size(), 2u);
  EXPECT_EQ(bobs["items"][0]["id"], b1);
  EXPECT_EQ(bobs["text"].get<std::string>().find("alice"), std::string::npos);
  EXPECT_EQ(lists(*bob_, {{"action", "lists"}})["lists"].size(), 1u);
  // Alice's list name answers like one nobody has.
  for (const char* action : {"show", "clear", "delete_list"}) {
    auto r = try_lists(*bob_, {{"action", action}, {"list", "secret plans"}});
    ASSERT_FALSE(r.ok()) << action;
    EXPECT_EQ(r.error().code, ErrorCode::not_found);
    EXPECT_EQ(r.error().message,
              "lists: you have no list named 'secret plans' (/lists shows yours)");
  }
  // Alice's item numbers answer like numbers nobody has.
  for (int64_t id = 1; id <= b1 + 3; ++id) {
    if (id == b1 || id == b1 + 1) continue;
    for (const char* action : {"done", "undone", "remove"}) {
      auto r = try_lists(*bob_, {{"action", action}, {"id", id}});
      ASSERT_FALSE(r.ok()) << action << " #" << id;
      EXPECT_EQ(r.error().code, ErrorCode::not_found);
      EXPECT_EQ(r.error().message, "lists: you have no item #" + std::to_string(id));
    }
  }
  auto alices = lists(*alice_, {{"action", "show"}, {"list", "groceries"}});
  ASSERT_EQ(alices["items"].size(), 1u);
  EXPECT_EQ(alices["items"][0]["id"], a1);
  EXPECT_EQ(alices["items"][0]["done"], false);
  EXPECT_EQ(lists(*alice_, {{"action", "lists"}})["lists"].size(), 2u);
}

TEST_F(ListsTest, ArgumentErrors) {
  struct Case {
    json args;
    std::string says;
  };
  for (const auto& c : {
           Case{{{"action", "add"}, {"list", "groceries"}},
                "lists: add needs a non-empty \"text\""},
           Case{{{"action", "add"}, {"list", "groceries"}, {"text", "  "}},
                "lists: add needs a non-empty \"text\""},
           Case{{{"action", "add"}, {"text", "milk"}}, "lists: add needs the \"list\" name"},
           Case{{{"action", "add"}, {"list", "  "}, {"text", "milk"}},
                "lists: \"list\" needs a name"},
           Case{{{"action", "add"}, {"list", "g"}, {"text", "milk"}, {"unit", "kg"}},
                "lists: the unit 'kg' needs a \"quantity\""},
           Case{{{"action", "add"}, {"list", "g"}, {"text", "milk"}, {"quantity", 0}},
                "arguments.quantity"},
           Case{{{"action", "add"}, {"list", "g"}, {"text", "milk"}, {"quantity", -1}},
                "arguments.quantity"},
           Case{{{"action", "add"}, {"list", "g"}, {"text", "milk"}, {"quantity", "2"}},
                "arguments.quantity"},
           Case{{{"action", "add"}, {"list", std::string(61, 'x')}, {"text", "milk"}},
                "arguments.list"},
           Case{{{"action", "add"}, {"list", "g"}, {"text", std::string(501, 'x')}},
                "arguments.text"},
           Case{{{"action", "show"}}, "lists: show needs the \"list\" name"},
           Case{{{"action", "clear"}}, "lists: clear needs the \"list\" name"},
           Case{{{"action", "delete_list"}}, "lists: delete_list needs the \"list\" name"},
           Case{{{"action", "done"}}, "lists: done needs the item's \"id\""},
           Case{{{"action", "undone"}, {"list", "g"}}, "lists: undone needs the item's \"id\""},
           Case{{{"action", "remove"}, {"id", 0}}, "arguments.id"},
           Case{{{"action", "add"}, {"list", "g"}, {"text", "m"}, {"user_id", 2}},
                "arguments.user_id"},
           Case{{{"action", "tick"}}, "arguments.action"},
       }) {
    auto r = try_lists(*alice_, c.args);
    ASSERT_FALSE(r.ok()) << c.args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.args.dump();
  }
  EXPECT_EQ(lists(*alice_, {{"action", "lists"}})["lists"].size(), 0u) << "nothing written";
}

TEST_F(ListsTest, NoStorageScopeNoLists) {
  auto r = call("lists", nullptr, {{"action", "lists"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_THAT(r.error().message, HasSubstr("lists:"));
}

// Found by schema_args_fuzz: a list's name longer than the schema's 60 characters was refused
// as "arguments.list: expected at most 60 characters", a field the user never wrote.
TEST_F(ListsTest, ACommandsListNameLongerThanAllowedIsSaidAsSuch) {
  const auto r = parse("list", std::string(61, 'g') + " add eggs");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_THAT(r.error().message, HasSubstr("a list's name has at most 60 characters"));
  EXPECT_TRUE(parse("list", std::string(60, 'g') + " add eggs").ok());
}

TEST_F(ListsTest, CommandForms) {
  ASSERT_EQ(registry_.find_command("list"), registry_.find("lists"));
  ASSERT_EQ(registry_.find_command("lists"), registry_.find("lists"));
  const json g{{"list", "groceries"}, {"action", "add"}};
  const auto item = [&](json extra) {
    json a = g;
    for (auto& [k, v] : extra.items()) a[k] = v;
    return a;
  };
  EXPECT_EQ(*parse("list", "groceries add 2 kg apples"),
            item({{"quantity", 2.0}, {"unit", "kg"}, {"text", "apples"}}));
  EXPECT_EQ(*parse("list", "groceries add 3 lemons"),
            item({{"quantity", 3.0}, {"text", "lemons"}}));
  EXPECT_EQ(*parse("list", "groceries add 2 KG green apples"),
            item({{"quantity", 2.0}, {"unit", "kg"}, {"text", "green apples"}}));
  EXPECT_EQ(*parse("list", "groceries add 500g flour"),
            item({{"quantity", 500.0}, {"unit", "g"}, {"text", "flour"}}));
  EXPECT_EQ(*parse("list", "groceries add 1.5 l milk"),
            item({{"quantity", 1.5}, {"unit", "l"}, {"text", "milk"}}));
  EXPECT_EQ(*parse("list", "groceries add 6 bottles water"),
            item({{"quantity", 6.0}, {"unit", "bottles"}, {"text", "water"}}));
  EXPECT_EQ(*parse("list", "groceries add apples"), item({{"text", "apples"}}));
  EXPECT_EQ(*parse("list", "groceries add 7up"), item({{"text", "7up"}}));
  EXPECT_EQ(*parse("list", "groceries add 42"), item({{"text", "42"}}));
  EXPECT_EQ(*parse("list", "groceries"), (json{{"list", "groceries"}, {"action", "show"}}));
  EXPECT_EQ(*parse("list", "groceries show"), (json{{"list", "groceries"}, {"action", "show"}}));
  EXPECT_EQ(*parse("list", "groceries done 3"),
            (json{{"list", "groceries"}, {"action", "done"}, {"id", 3}}));
  EXPECT_EQ(*parse("list", "groceries undone #3"),
            (json{{"list", "groceries"}, {"action", "undone"}, {"id", 3}}));
  EXPECT_EQ(*parse("list", "groceries remove 3"),
            (json{{"list", "groceries"}, {"action", "remove"}, {"id", 3}}));
  EXPECT_EQ(*parse("list", "groceries clear"), (json{{"list", "groceries"}, {"action", "clear"}}));
  EXPECT_EQ(*parse("list", "groceries delete"),
            (json{{"list", "groceries"}, {"action", "delete_list"}}));
  EXPECT_EQ(*parse("lists", ""), (json{{"action", "lists"}}));
  EXPECT_EQ(*parse("list", ""), (json{{"action", "lists"}}));
  struct Bad {
    std::string command;
    std::string text;
    std::string says;
  };
  for (const auto& b : {
           Bad{"list", "groceries add 0 apples", "lists: the quantity '0' must be more than 0"},
           Bad{"list", "groceries add 0kg apples", "lists: the quantity '0kg' must be more than 0"},
           Bad{"list", "groceries add 9999999 apples", "is too large"},
           Bad{"list", "groceries add", "usage: /list NAME"},
           Bad{"list", "groceries done", "usage:"},
           Bad{"list", "groceries done three", "'three'"},
           Bad{"list", "groceries clear now", "usage:"},
           Bad{"list", "groceries frobnicate", "usage:"},
           Bad{"lists", "groceries", "usage:"},
       }) {
    auto r = parse(b.command, b.text);
    ASSERT_FALSE(r.ok()) << b.text;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << b.text;
    EXPECT_THAT(r.error().message, HasSubstr(b.says)) << b.text;
  }

  // Parsed commands run as they are.
  auto added = run(*alice_, "list", "groceries add 2 kg apples");
  EXPECT_EQ(added["text"].get<std::string>().substr(added["text"].get<std::string>().find(':')),
            ": 2 kg apples");
  const std::string id = std::to_string(added["item"]["id"].get<int64_t>());
  run(*alice_, "list", "groceries add 3 lemons");
  EXPECT_EQ(run(*alice_, "list", "groceries done " + id)["item"]["done"], true);
  EXPECT_THAT(run(*alice_, "list", "groceries")["text"].get<std::string>(),
              HasSubstr("3 lemons\n#" + id + " [done] 2 kg apples"));
  EXPECT_EQ(run(*alice_, "lists", "")["text"], "Your lists:\ngroceries: 1 open of 2");
  EXPECT_EQ(run(*alice_, "list", "groceries clear")["cleared"], 1);
  EXPECT_EQ(run(*alice_, "list", "groceries delete")["deleted_items"], 1);
  EXPECT_EQ(registry_.find("lists")->flags().side_effects, SideEffects::unsafe);
}

}  // namespace lists_test
}  // namespace parley::capabilities
