// notes: save (with or without a title), list, search (all words, then any; stemming; FTS
// syntax in the query is only words), delete with the index kept in step; every error case;
// per-user isolation (Bob can neither list, find nor delete Alice's notes, by any id or any
// query); the /notes command forms.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "capabilities/builtins/user_store_fixture.h"

namespace parley::capabilities {
namespace notes_test {

using nlohmann::json;
using ::testing::HasSubstr;

class NotesTest : public UserStoreFixture {
 protected:
  json notes(const UserScope& who, const json& args) { return ok("notes", &who, args); }
  Result<json> try_notes(const UserScope& who, const json& args) {
    return call("notes", &who, args);
  }
  int64_t save(const UserScope& who, const std::string& body, const std::string& title = {}) {
    json args{{"action", "save"}, {"body", body}};
    if (!title.empty()) args["title"] = title;
    clock_.advance_ms(1000);  // newest first is then well defined
    return notes(who, args)["note"]["id"].get<int64_t>();
  }
  std::vector<int64_t> found(const UserScope& who, const std::string& query) {
    std::vector<int64_t> ids;
    const json answer = notes(who, {{"action", "search"}, {"query", query}});
    for (const auto& n : answer["notes"]) {
      ids.push_back(n["id"].get<int64_t>());
    }
    return ids;
  }
};

using Ids = std::vector<int64_t>;

TEST_F(NotesTest, SaveListSearchDelete) {
  auto saved = notes(
      *alice_,
      {{"action", "save"}, {"title", "Wifi"}, {"body", "The wifi password is on the router"}});
  const int64_t wifi = saved["note"]["id"].get<int64_t>();
  EXPECT_EQ(saved["text"], "Saved note #" + std::to_string(wifi) + ".");
  EXPECT_EQ(saved["note"]["title"], "Wifi");
  EXPECT_EQ(saved["note"]["created_at"], "2026-11-23T14:04:05Z");
  const int64_t dentist = save(*alice_, "Dentist on Tuesday at 10, bring the insurance card");

  auto list = notes(*alice_, {{"action", "list"}});
  ASSERT_EQ(list["notes"].size(), 2u);
  EXPECT_EQ(list["notes"][0]["id"], dentist) << "newest first";
  EXPECT_EQ(list["text"], "Your notes, newest first:\n#" + std::to_string(dentist) +
                              " Dentist on Tuesday at 10, bring the insurance card\n#" +
                              std::to_string(wifi) + " Wifi — The wifi password is on the router");

  auto hit = notes(*alice_, {{"action", "search"}, {"query", "router password"}});
  ASSERT_EQ(hit["notes"].size(), 1u);
  EXPECT_EQ(hit["notes"][0]["id"], wifi);
  EXPECT_EQ(hit["matched"], "all");
  EXPECT_THAT(hit["text"].get<std::string>(), HasSubstr("Note matching all words"));
  EXPECT_EQ(found(*alice_, "wifi"), Ids{wifi}) << "titles are searched";
  EXPECT_EQ(found(*alice_, "TUESDAY"), Ids{dentist});

  auto removed = notes(*alice_, {{"action", "delete"}, {"id", wifi}});
  EXPECT_EQ(removed["text"], "Deleted note #" + std::to_string(wifi) + ": Wifi");
  EXPECT_TRUE(found(*alice_, "router").empty()) << "the index follows the delete";
  EXPECT_EQ(notes(*alice_, {{"action", "search"}, {"query", "router"}})["text"],
            "No note matches \"router\".");
  ASSERT_EQ(notes(*alice_, {{"action", "list"}})["notes"].size(), 1u);
  auto again = try_notes(*alice_, {{"action", "delete"}, {"id", wifi}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::not_found);
  EXPECT_EQ(again.error().message, "notes: you have no note #" + std::to_string(wifi));
}

TEST_F(NotesTest, SearchPrefersAllWordsThenAnyAndStems) {
  const int64_t shoes = save(*alice_, "new running shoes for the marathon");
  const int64_t milk = save(*alice_, "buy milk and eggs");
  const int64_t eggs = save(*alice_, "eggs benedict recipe");
  EXPECT_EQ(found(*alice_, "milk eggs"), Ids{milk});
  auto any = notes(*alice_, {{"action", "search"}, {"query", "eggs shoes"}});
  EXPECT_EQ(any["matched"], "any");
  ASSERT_EQ(any["notes"].size(), 3u);
  EXPECT_EQ(any["notes"][0]["id"], eggs) << "newest first";
  EXPECT_EQ(any["notes"][2]["id"], shoes);
  EXPECT_EQ(found(*alice_, "run"), Ids{shoes}) << "porter stemming";
  EXPECT_EQ(found(*alice_, "Marathons!"), Ids{shoes});
}

TEST_F(NotesTest, QuerySyntaxIsOnlyWords) {
  const int64_t mine = save(*alice_, "alpha beta");
  save(*bob_, "secret of bob: alpha gamma");
  const std::string bob_id = std::to_string(bob_->user_id());
  for (const std::string& q :
       {std::string("alpha\" OR \"gamma"), "user_id : " + bob_id, "alpha OR user_id:" + bob_id,
        std::string("NEAR(alpha gamma)"), std::string("{user_id body} : alpha"),
        std::string("alpha*"), std::string("-alpha ^alpha (alpha")}) {
    auto r = try_notes(*alice_, {{"action", "search"}, {"query", q}});
    ASSERT_TRUE(r.ok()) << q << ": " << r.error().describe();
    for (const auto& n : (*r)["notes"]) EXPECT_EQ(n["id"], mine) << q;
  }
  auto nothing = try_notes(*alice_, {{"action", "search"}, {"query", "*** \"\" ()"}});
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.error().code, ErrorCode::invalid_argument);
  EXPECT_THAT(nothing.error().message, HasSubstr("notes: search needs at least one word"));
}

TEST_F(NotesTest, UsersCannotReachEachOthersNotesByAnyIdOrQuery) {
  const int64_t a1 = save(*alice_, "alice shopping list: bread", "Shopping");
  const int64_t b1 = save(*bob_, "bob shopping list: beer", "Shopping");
  const int64_t a2 = save(*alice_, "alice diary: shopping was fun");

  EXPECT_EQ(found(*bob_, "shopping"), Ids{b1});
  EXPECT_EQ(found(*bob_, "alice bread diary"), Ids{}) << "neither all nor any of Alice's words";
  EXPECT_EQ(found(*alice_, "shopping"), (Ids{a2, a1}));
  EXPECT_EQ(found(*alice_, "beer"), Ids{});
  auto bobs = notes(*bob_, {{"action", "list"}});
  ASSERT_EQ(bobs["notes"].size(), 1u);
  EXPECT_EQ(bobs["notes"][0]["id"], b1);

  for (int64_t id = 1; id <= a2 + 3; ++id) {
    if (id == b1) continue;
    auto r = try_notes(*bob_, {{"action", "delete"}, {"id", id}});
    ASSERT_FALSE(r.ok()) << id;
    EXPECT_EQ(r.error().code, ErrorCode::not_found);
    EXPECT_EQ(r.error().message, "notes: you have no note #" + std::to_string(id))
        << "the same answer as for an id nobody has";
  }
  EXPECT_EQ(notes(*alice_, {{"action", "list"}})["notes"].size(), 2u);
  EXPECT_EQ(found(*alice_, "bread"), Ids{a1}) << "the index still holds Alice's notes";
  EXPECT_EQ(try_notes(*alice_, {{"action", "delete"}, {"id", b1}}).error().code,
            ErrorCode::not_found);
  EXPECT_EQ(found(*bob_, "beer"), Ids{b1});
}

TEST_F(NotesTest, ArgumentErrors) {
  struct Case {
    json args;
    std::string says;
  };
  for (const auto& c : {
           Case{{{"action", "save"}}, "notes: save needs a non-empty \"body\""},
           Case{{{"action", "save"}, {"title", "t"}, {"body", " \n "}},
                "notes: save needs a non-empty \"body\""},
           Case{{{"action", "save"}, {"body", ""}}, "arguments.body"},
           Case{{{"action", "save"}, {"body", std::string(10'001, 'x')}}, "arguments.body"},
           Case{{{"action", "save"}, {"body", "b"}, {"title", std::string(201, 't')}},
                "arguments.title"},
           Case{{{"action", "save"}, {"body", 42}}, "arguments.body"},
           Case{{{"action", "search"}}, "notes: search needs at least one word"},
           Case{{{"action", "search"}, {"query", ""}}, "arguments.query"},
           Case{{{"action", "search"}, {"query", std::string(501, 'q')}}, "arguments.query"},
           Case{{{"action", "delete"}}, "notes: delete needs the note's \"id\""},
           Case{{{"action", "delete"}, {"id", "1"}}, "arguments.id"},
           Case{{{"action", "delete"}, {"id", -1}}, "arguments.id"},
           Case{{{"action", "edit"}}, "arguments.action"},
           Case{{{"action", "list"}, {"user_id", 1}}, "arguments.user_id"},
       }) {
    auto r = try_notes(*alice_, c.args);
    ASSERT_FALSE(r.ok()) << c.args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.args.dump();
  }
  EXPECT_EQ(notes(*alice_, {{"action", "list"}})["text"], "You have no notes.");
  EXPECT_EQ(call("notes", nullptr, {{"action", "list"}}).error().code, ErrorCode::unavailable);
}

TEST_F(NotesTest, CommandForms) {
  Capability* cap = registry_.find_command("notes");
  ASSERT_EQ(cap, registry_.find("notes"));
  const auto parse = [&](std::string_view text) { return cap->parse_command("notes", text); };
  EXPECT_EQ(*parse("save the wifi password is on the router"),
            (json{{"action", "save"}, {"body", "the wifi password is on the router"}}));
  EXPECT_EQ(*parse("search wifi router"), (json{{"action", "search"}, {"query", "wifi router"}}));
  EXPECT_EQ(*parse("delete 3"), (json{{"action", "delete"}, {"id", 3}}));
  EXPECT_EQ(*parse("delete #3"), (json{{"action", "delete"}, {"id", 3}}));
  EXPECT_EQ(*parse("list"), (json{{"action", "list"}}));
  EXPECT_EQ(*parse(" "), (json{{"action", "list"}}));
  for (const char* bad : {"save", "search", "delete", "delete x", "list 3", "edit 3"}) {
    auto r = parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << bad;
  }
  EXPECT_THAT(parse("edit 3").error().message, HasSubstr("/notes save TEXT"));

  const int64_t id = notes(*alice_, *parse("save call the plumber"))["note"]["id"].get<int64_t>();
  EXPECT_EQ(notes(*alice_, *parse("search plumber"))["notes"][0]["id"], id);
  EXPECT_EQ(notes(*alice_, *parse("delete " + std::to_string(id)))["note"]["id"], id);
  EXPECT_EQ(cap->flags().side_effects, SideEffects::unsafe);
}

}  // namespace notes_test
}  // namespace parley::capabilities
