// memory: remember, recall, forget, list with their answers; recall of a natural question (stop
// words dropped, any word matches); the blended recall score (relevance, recency, importance)
// and its settings; every error case, schema errors naming arguments.<field>; per-user
// isolation (Bob can neither recall, list nor forget Alice's memories, by any id or any words,
// and learns nothing from trying); the /remember, /recall, /forget, /memories command forms;
// update (/memory edit), kinds, and a duplicate never remembered twice.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "capabilities/builtins/user_store_fixture.h"

namespace parley::capabilities {
namespace memory_test {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr int64_t kDayMs = 86'400'000;

class MemoryTest : public UserStoreFixture {
 protected:
  json memory(const UserScope& who, const json& args) { return ok("memory", &who, args); }
  Result<json> try_memory(const UserScope& who, const json& args) {
    return call("memory", &who, args);
  }
  int64_t remember(const UserScope& who, const std::string& content, int importance = 3) {
    return memory(who, {{"action", "remember"},
                        {"content", content},
                        {"importance", importance}})["memory"]["id"]
        .get<int64_t>();
  }
  // Recall with the capability's settings set to `settings` (defaults for the rest).
  json recall(const UserScope& who, const std::string& query, const json& settings = {},
              int limit = 0) {
    InvokeContext ctx;
    ctx.caller.user_id = who.user_id();
    ctx.data = &who;
    ctx.services = &services_;
    if (settings.is_object()) ctx.settings = settings;
    json args{{"action", "recall"}, {"query", query}};
    if (limit > 0) args["limit"] = limit;
    auto r = registry_.find("memory")->invoke(ctx, args);
    EXPECT_TRUE(r.ok()) << query << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : json();
  }
  std::vector<int64_t> recalled(const UserScope& who, const std::string& query) {
    std::vector<int64_t> ids;
    const json answer = recall(who, query);  // kept: a range-for over a temporary's member dangles
    for (const auto& m : answer["memories"]) ids.push_back(m["id"].get<int64_t>());
    return ids;
  }
};

using Ids = std::vector<int64_t>;

TEST_F(MemoryTest, RememberRecallForgetList) {
  auto saved = memory(*alice_, {{"action", "remember"},
                                {"content", "  My cat is called Miso "},
                                {"tags", {"pets", "cat"}},
                                {"importance", 4}});
  const int64_t miso = saved["memory"]["id"].get<int64_t>();
  EXPECT_EQ(saved["text"],
            "I'll remember that (#" + std::to_string(miso) + "): My cat is called Miso");
  EXPECT_EQ(saved["memory"]["content"], "My cat is called Miso");
  EXPECT_EQ(saved["memory"]["tags"], (json{"pets", "cat"}));
  EXPECT_EQ(saved["memory"]["importance"], 4);
  EXPECT_EQ(saved["memory"]["created_at"], "2026-11-23T14:04:05Z");
  clock_.advance_ms(1000);
  const int64_t tea =
      memory(*alice_, {{"action", "remember"}, {"content", "Prefers green tea"}})["memory"]["id"]
          .get<int64_t>();
  EXPECT_EQ(memory(*alice_, {{"action", "list"}})["memories"][0]["importance"], 3)
      << "importance 3 by default";

  auto list = memory(*alice_, {{"action", "list"}});
  ASSERT_EQ(list["memories"].size(), 2u);
  EXPECT_EQ(list["truncated"], false);
  EXPECT_EQ(list["text"], "I remember, newest first:\n#" + std::to_string(tea) +
                              " Prefers green tea\n#" + std::to_string(miso) +
                              " My cat is called Miso [pets, cat]");
  EXPECT_EQ(memory(*alice_, {{"action", "list"}, {"limit", 1}})["truncated"], true);

  auto found = recall(*alice_, "What is my cat's name?");
  ASSERT_EQ(found["memories"].size(), 1u);
  EXPECT_EQ(found["memories"][0]["id"], miso);
  EXPECT_EQ(found["text"],
            "I remember:\n#" + std::to_string(miso) + " My cat is called Miso [pets, cat]");
  EXPECT_EQ(recalled(*alice_, "pets"), Ids{miso}) << "tags are recalled too";

  auto forgot = memory(*alice_, {{"action", "forget"}, {"id", miso}});
  EXPECT_EQ(forgot["text"], "Forgot #" + std::to_string(miso) + ": My cat is called Miso");
  EXPECT_TRUE(recalled(*alice_, "cat").empty()) << "the index follows the delete";
  EXPECT_EQ(recall(*alice_, "cat")["text"], "Nothing about cat yet.");
  ASSERT_EQ(memory(*alice_, {{"action", "list"}})["memories"].size(), 1u);
  auto again = try_memory(*alice_, {{"action", "forget"}, {"id", miso}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::not_found);
  EXPECT_EQ(again.error().message, "memory: you have no memory #" + std::to_string(miso));

  ASSERT_TRUE(memory(*alice_, {{"action", "forget"}, {"id", tea}})["memory"].is_object());
  EXPECT_EQ(memory(*alice_, {{"action", "list"}})["text"],
            "I don't remember anything about you yet.");
}

TEST_F(MemoryTest, NaturalQuestionFindsTheFact) {
  Capability* cap = registry_.find_command("remember");
  ASSERT_NE(cap, nullptr);
  const auto args = cap->parse_command("remember", "that I love pizza and tacos");
  ASSERT_TRUE(args.ok());
  const int64_t food = memory(*alice_, *args)["memory"]["id"].get<int64_t>();
  remember(*alice_, "I have a dentist appointment on Friday");
  remember(*alice_, "I do yoga every Tuesday");
  remember(*alice_, "What I want for my birthday is a bike");

  auto answer = recall(*alice_, "what do I love to eat?");
  ASSERT_EQ(answer["memories"].size(), 1u)
      << "'what', 'do', 'I', 'to' match every memory and are not what was asked: " << answer.dump();
  EXPECT_EQ(answer["memories"][0]["id"], food);
  EXPECT_EQ(answer["memories"][0]["content"], "I love pizza and tacos");
  EXPECT_EQ(answer["text"], "I remember:\n#" + std::to_string(food) + " I love pizza and tacos");
  EXPECT_EQ(recalled(*alice_, "Do I like tacos or burritos?"), Ids{food}) << "any word matches";
  EXPECT_EQ(recalled(*alice_, "loving pizzas"), Ids{food}) << "stemmed";
  EXPECT_EQ(recall(*bob_, "pizza")["text"], "Nothing about pizza yet.");
  EXPECT_EQ(recall(*alice_, "what about the weather?")["text"],
            "Nothing about what about the weather yet.");
  // A question of stop words only is asked as it is.
  EXPECT_EQ(recall(*alice_, "what do I?")["memories"].size(), 4u);
}

TEST_F(MemoryTest, RecallBlendsRelevanceRecencyAndImportance) {
  // Equally relevant: the newer one first.
  const int64_t green = remember(*alice_, "I like green tea");
  clock_.advance_ms(90 * kDayMs);
  const int64_t black = remember(*alice_, "I like black tea");
  auto tea = recall(*alice_, "tea");
  ASSERT_EQ(tea["memories"].size(), 2u);
  EXPECT_EQ(tea["memories"][0]["id"], black);
  EXPECT_EQ(tea["memories"][1]["id"], green);
  EXPECT_DOUBLE_EQ(tea["memories"][0]["relevance"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(tea["memories"][1]["relevance"].get<double>(), 1.0);
  EXPECT_NEAR(tea["memories"][1]["recency"].get<double>(), 0.125, 1e-9) << "3 half-lives";
  // score = 0.7 × 1 + 0.2 × 0.125 + 0.1 × 3/5
  EXPECT_NEAR(tea["memories"][1]["score"].get<double>(), 0.7 + 0.025 + 0.06, 1e-9);

  // Equally relevant and recent: the more important one first.
  const int64_t minor = remember(*alice_, "the plumber comes on monday", 1);
  const int64_t major = remember(*alice_, "the surgeon comes on monday", 5);
  EXPECT_EQ(recalled(*alice_, "monday"), (Ids{major, minor}));

  // Relevance dominates with the default weights: the old memory holding both words beats a
  // new one holding one.
  const int64_t both = remember(*alice_, "green tea with jasmine every morning");
  clock_.advance_ms(60 * kDayMs);
  const int64_t one = remember(*alice_, "jasmine flowers in the garden");
  const Ids blended = recalled(*alice_, "green tea jasmine");
  ASSERT_FALSE(blended.empty());
  EXPECT_EQ(blended.front(), both);
  (void)one;

  // Settings change the weights: recency alone puts the newest first.
  auto newest = recall(*alice_, "green tea jasmine",
                       {{"weight_relevance", 0}, {"weight_recency", 1}, {"weight_importance", 0}});
  EXPECT_EQ(newest["memories"][0]["id"], one);
  // And the half-life: with 60 days, the 60-day-old memory's recency is one half.
  auto half = recall(*alice_, "morning", {{"half_life_days", 60}});
  ASSERT_EQ(half["memories"].size(), 1u);
  EXPECT_NEAR(half["memories"][0]["recency"].get<double>(), 0.5, 1e-9);
}

TEST_F(MemoryTest, RecallLimitFromArgumentsOrSettings) {
  for (int i = 0; i < 12; ++i) remember(*alice_, "garden note " + std::to_string(i));
  EXPECT_EQ(recall(*alice_, "garden")["memories"].size(), 5u) << "recall_limit 5 by default";
  EXPECT_EQ(recall(*alice_, "garden", {}, 3)["memories"].size(), 3u);
  EXPECT_EQ(recall(*alice_, "garden", {{"recall_limit", 8}})["memories"].size(), 8u);
  EXPECT_EQ(recall(*alice_, "garden", {{"recall_limit", 8}}, 12)["memories"].size(), 12u);
}

TEST_F(MemoryTest, QuerySyntaxIsOnlyWords) {
  const int64_t mine = remember(*alice_, "alpha beta");
  remember(*bob_, "secret of bob: alpha gamma");
  const std::string bob_id = std::to_string(bob_->user_id());
  for (const std::string& q :
       {std::string("alpha\" OR \"gamma"), "user_id : " + bob_id, "alpha OR user_id:" + bob_id,
        std::string("NEAR(alpha gamma)"), std::string("{user_id content} : alpha"),
        std::string("gamma*"), std::string("-alpha ^alpha (alpha"), std::string("*** \"\" ()")}) {
    auto r = try_memory(*alice_, {{"action", "recall"}, {"query", q}});
    ASSERT_TRUE(r.ok()) << q << ": " << r.error().describe();
    for (const auto& m : (*r)["memories"]) EXPECT_EQ(m["id"], mine) << q;
  }
}

TEST_F(MemoryTest, UsersCannotReachEachOthersMemoriesByAnyIdOrWords) {
  const int64_t a1 = remember(*alice_, "alice lives in Lisbon");
  const int64_t b1 = remember(*bob_, "bob lives in Porto");
  const int64_t a2 = remember(*alice_, "alice is allergic to peanuts", 5);

  EXPECT_EQ(recalled(*bob_, "Lisbon peanuts alice allergic"), Ids{});
  EXPECT_EQ(recalled(*bob_, "where do I live?"), Ids{b1});
  EXPECT_EQ(recalled(*alice_, "where do I live?"), Ids{a1});
  EXPECT_EQ(recalled(*alice_, "Porto"), Ids{});
  auto bobs = memory(*bob_, {{"action", "list"}});
  ASSERT_EQ(bobs["memories"].size(), 1u);
  EXPECT_EQ(bobs["memories"][0]["id"], b1);
  EXPECT_EQ(bobs["text"].get<std::string>().find("alice"), std::string::npos);

  // Every id Alice has (and the ones around them): the same answer as an id nobody has.
  for (int64_t id = 1; id <= a2 + 3; ++id) {
    if (id == b1) continue;
    auto r = try_memory(*bob_, {{"action", "forget"}, {"id", id}});
    ASSERT_FALSE(r.ok()) << id;
    EXPECT_EQ(r.error().code, ErrorCode::not_found);
    EXPECT_EQ(r.error().message, "memory: you have no memory #" + std::to_string(id));
  }
  EXPECT_EQ(memory(*alice_, {{"action", "list"}})["memories"].size(), 2u);
  EXPECT_EQ(recalled(*alice_, "peanuts"), Ids{a2}) << "the index still holds Alice's memories";
  EXPECT_EQ(try_memory(*alice_, {{"action", "forget"}, {"id", b1}}).error().code,
            ErrorCode::not_found);
  EXPECT_EQ(recalled(*bob_, "Porto"), Ids{b1});
}

TEST_F(MemoryTest, ArgumentErrors) {
  struct Case {
    json args;
    std::string says;
  };
  for (const auto& c : {
           Case{{{"action", "remember"}}, "memory: remember needs a non-empty \"content\""},
           Case{{{"action", "remember"}, {"content", " \n "}},
                "memory: remember needs a non-empty \"content\""},
           Case{{{"action", "remember"}, {"content", ""}}, "arguments.content"},
           Case{{{"action", "remember"}, {"content", std::string(1001, 'x')}}, "arguments.content"},
           Case{{{"action", "remember"}, {"content", 42}}, "arguments.content"},
           Case{{{"action", "remember"}, {"content", "c"}, {"tags", "food"}}, "arguments.tags"},
           Case{{{"action", "remember"}, {"content", "c"}, {"tags", {"two words"}}},
                "arguments.tags[0]"},
           Case{{{"action", "remember"}, {"content", "c"}, {"tags", {"ok", 3}}},
                "arguments.tags[1]"},
           Case{{{"action", "remember"}, {"content", "c"}, {"tags", json(std::vector<int>(11, 1))}},
                "arguments.tags"},
           Case{{{"action", "remember"}, {"content", "c"}, {"importance", 0}},
                "arguments.importance"},
           Case{{{"action", "remember"}, {"content", "c"}, {"importance", 6}},
                "arguments.importance"},
           Case{{{"action", "remember"}, {"content", "c"}, {"importance", 2.5}},
                "arguments.importance"},
           Case{{{"action", "remember"}, {"content", "c"}, {"importance", "high"}},
                "arguments.importance"},
           Case{{{"action", "recall"}}, "memory: recall needs a \"query\""},
           Case{{{"action", "recall"}, {"query", "  "}}, "memory: recall needs a \"query\""},
           Case{{{"action", "recall"}, {"query", ""}}, "arguments.query"},
           Case{{{"action", "recall"}, {"query", std::string(501, 'q')}}, "arguments.query"},
           Case{{{"action", "recall"}, {"query", "q"}, {"limit", 0}}, "arguments.limit"},
           Case{{{"action", "recall"}, {"query", "q"}, {"limit", 51}}, "arguments.limit"},
           Case{{{"action", "list"}, {"limit", "5"}}, "arguments.limit"},
           Case{{{"action", "forget"}}, "memory: forget needs the memory's \"id\""},
           Case{{{"action", "forget"}, {"id", "1"}}, "arguments.id"},
           Case{{{"action", "forget"}, {"id", 0}}, "arguments.id"},
           Case{{{"action", "learn"}}, "arguments.action"},
           Case{{{"content", "c"}}, "arguments.action"},
           Case{{{"action", "list"}, {"user_id", 1}}, "arguments.user_id"},
       }) {
    auto r = try_memory(*alice_, c.args);
    ASSERT_FALSE(r.ok()) << c.args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << c.args.dump();
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.args.dump();
  }
  EXPECT_TRUE(memory(*alice_, {{"action", "list"}})["memories"].empty());
  auto none = call("memory", nullptr, {{"action", "list"}});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::unavailable);
  EXPECT_THAT(none.error().message, HasSubstr("memory:"));
}

TEST_F(MemoryTest, CommandForms) {
  Capability* cap = registry_.find("memory");
  ASSERT_NE(cap, nullptr);
  for (const char* command : {"remember", "recall", "forget", "memories"}) {
    EXPECT_EQ(registry_.find_command(command), cap) << command;
  }
  EXPECT_EQ(*cap->parse_command("remember", "I love pizza"),
            (json{{"action", "remember"}, {"content", "I love pizza"}}));
  EXPECT_EQ(*cap->parse_command("remember", " that  my cat is Miso "),
            (json{{"action", "remember"}, {"content", "my cat is Miso"}}));
  EXPECT_EQ(*cap->parse_command("remember", "that"),
            (json{{"action", "remember"}, {"content", "that"}}));
  EXPECT_EQ(*cap->parse_command("recall", "food I like"),
            (json{{"action", "recall"}, {"query", "food I like"}}));
  EXPECT_EQ(*cap->parse_command("forget", "#3"), (json{{"action", "forget"}, {"id", 3}}));
  EXPECT_EQ(*cap->parse_command("forget", "3"), (json{{"action", "forget"}, {"id", 3}}));
  EXPECT_EQ(*cap->parse_command("memories", " "), (json{{"action", "list"}}));
  for (const auto& [command, text] :
       std::vector<std::pair<std::string, std::string>>{{"remember", ""},
                                                        {"recall", " "},
                                                        {"forget", ""},
                                                        {"forget", "x"},
                                                        {"forget", "0"},
                                                        {"memories", "all"}}) {
    auto r = cap->parse_command(command, text);
    ASSERT_FALSE(r.ok()) << command << " " << text;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  }
  EXPECT_THAT(cap->parse_command("memories", "all").error().message,
              HasSubstr("/remember TEXT | /recall WORDS | /forget ID | /memories [export]"));
  EXPECT_THAT(cap->parse_command("forget", "x").error().message, HasSubstr("'x'"));

  const int64_t id =
      memory(*alice_,
             *cap->parse_command("remember", "the spare key is under the pot"))["memory"]["id"]
          .get<int64_t>();
  EXPECT_EQ(
      memory(*alice_, *cap->parse_command("recall", "where is the key?"))["memories"][0]["id"], id);
  EXPECT_EQ(memory(*alice_, *cap->parse_command("memories", ""))["memories"].size(), 1u);
  EXPECT_EQ(memory(*alice_, *cap->parse_command("forget", std::to_string(id)))["memory"]["id"], id);
  EXPECT_EQ(cap->flags().side_effects, SideEffects::unsafe);
}

TEST_F(MemoryTest, UpdateKindsAndDuplicates) {
  auto saved = memory(
      *alice_, {{"action", "remember"}, {"content", "Prefers green tea"}, {"kind", "preference"}});
  const int64_t tea = saved["memory"]["id"].get<int64_t>();
  EXPECT_EQ(saved["memory"]["kind"], "preference");
  EXPECT_EQ(saved["memory"]["source"], "tool") << "asked for by the model";
  auto dup = memory(*alice_, {{"action", "remember"}, {"content", "prefers GREEN tea"}});
  EXPECT_EQ(dup["duplicate"], true);
  EXPECT_EQ(dup["memory"]["id"], tea);
  EXPECT_EQ(dup["text"],
            "I already remember that (#" + std::to_string(tea) + "): Prefers green tea");
  EXPECT_EQ(
      memory(*alice_, {{"action", "list"}})["text"],
      "I remember, newest first:\n#" + std::to_string(tea) + " (preference) Prefers green tea");

  auto updated = memory(*alice_, {{"action", "update"},
                                  {"id", tea},
                                  {"content", "Prefers oolong tea"},
                                  {"kind", "preference"}});
  EXPECT_EQ(updated["text"], "Updated #" + std::to_string(tea) + ": Prefers oolong tea");
  EXPECT_EQ(recalled(*alice_, "oolong"), Ids{tea});
  EXPECT_TRUE(recalled(*alice_, "green").empty());

  auto foreign =
      try_memory(*bob_, {{"action", "update"}, {"id", tea}, {"content", "Bob was here"}});
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().message, "memory: you have no memory #" + std::to_string(tea));
  auto no_id = try_memory(*alice_, {{"action", "update"}, {"content", "x"}});
  ASSERT_FALSE(no_id.ok());
  EXPECT_THAT(no_id.error().message, HasSubstr("\"id\""));
  auto bad_kind = try_memory(*alice_, {{"action", "remember"}, {"content", "x"}, {"kind", "mood"}});
  ASSERT_FALSE(bad_kind.ok());
  EXPECT_THAT(bad_kind.error().message, HasSubstr("kind"));

  Capability* cap = registry_.find("memory");
  EXPECT_EQ(registry_.find_command("memory"), cap);
  EXPECT_EQ(*cap->parse_command("memory", "edit 12  I love sushi "),
            (json{{"action", "update"}, {"id", 12}, {"content", "I love sushi"}}));
  EXPECT_FALSE(cap->parse_command("memory", "edit 12").ok());
  EXPECT_FALSE(cap->parse_command("memory", "delete 12").ok());

  // /memories export: the user's current memories as JSON.
  const json exported = memory(*alice_, *cap->parse_command("memories", "export"));
  ASSERT_EQ(exported["memories"].size(), 1u);
  const json back = json::parse(exported["text"].get<std::string>());
  EXPECT_EQ(back[0]["content"], "Prefers oolong tea");
  EXPECT_EQ(back[0]["kind"], "preference");
  EXPECT_TRUE(memory(*bob_, {{"action", "export"}})["memories"].empty());

  // /core: always in mind, seen and edited by the user.
  EXPECT_EQ(*cap->parse_command("core", ""), (json{{"action", "core"}}));
  EXPECT_EQ(*cap->parse_command("core", "set pronouns she/her"),
            (json{{"action", "core"}, {"key", "pronouns"}, {"value", "she/her"}}));
  EXPECT_EQ(*cap->parse_command("core", "unset pronouns"),
            (json{{"action", "core"}, {"key", "pronouns"}}));
  EXPECT_FALSE(cap->parse_command("core", "set pronouns").ok());
  EXPECT_EQ(memory(*alice_, *cap->parse_command("core", "set pronouns she/her"))["text"],
            "Noted: pronouns: she/her");
  EXPECT_EQ(memory(*alice_, {{"action", "core"}})["text"],
            "Always in mind about you:\npronouns: she/her");
  EXPECT_EQ(memory(*bob_, {{"action", "core"}})["core"], json::object());
  EXPECT_EQ(memory(*alice_, *cap->parse_command("core", "unset pronouns"))["text"],
            "Removed pronouns.");
  auto gone = try_memory(*alice_, {{"action", "core"}, {"key", "pronouns"}});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::not_found);
}

TEST_F(MemoryTest, UndoRevertsOnlyAutomaticChangesAndOffTheRecordIsPerConversation) {
  Capability* cap = registry_.find("memory");
  ASSERT_NE(cap, nullptr);
  EXPECT_EQ(registry_.find_command("undo"), cap);
  EXPECT_EQ(registry_.find_command("offtherecord"), cap);
  EXPECT_EQ(*cap->parse_command("undo", ""), (json{{"action", "undo"}}));
  EXPECT_EQ(*cap->parse_command("offtherecord", ""),
            (json{{"action", "off_record"}, {"on", true}}));
  EXPECT_EQ(*cap->parse_command("offtherecord", "off"),
            (json{{"action", "off_record"}, {"on", false}}));
  EXPECT_FALSE(cap->parse_command("offtherecord", "maybe").ok());
  EXPECT_FALSE(cap->parse_command("undo", "3").ok());

  // The user's own memory is not "automatic": nothing to undo.
  remember(*alice_, "I love pizza");
  EXPECT_EQ(memory(*alice_, {{"action", "undo"}})["undone"], nullptr);
  // One extraction wrote (source `extracted`): undone, it is forgotten.
  storage::NewMemory m;
  m.user_id = alice_->user_id();
  m.content = "Lives in Lisbon";
  m.source = "extracted";
  const int64_t id = store_->memories().add(m).get()->row_id;
  const json undone = memory(*alice_, {{"action", "undo"}});
  EXPECT_EQ(undone["undone"]["memory"], id);
  EXPECT_THAT(undone["text"].get<std::string>(), HasSubstr("Lives in Lisbon"));
  EXPECT_FALSE(store_->memories().get(id).ok());
  // Bob cannot undo Alice's.
  m.content = "Has a cat";
  const int64_t cat = store_->memories().add(m).get()->row_id;
  EXPECT_EQ(memory(*bob_, {{"action", "undo"}})["undone"], nullptr);
  EXPECT_TRUE(store_->memories().get(cat).ok());

  // Off the record needs the conversation it is said in.
  const int64_t conv = store_->directory().ensure_conversation("console", "alice").get()->row_id;
  InvokeContext ctx;
  ctx.caller.user_id = alice_->user_id();
  ctx.data = &*alice_;
  ctx.services = &services_;
  ctx.conversation_id = conv;
  auto on = cap->invoke(ctx, {{"action", "off_record"}, {"on", true}});
  ASSERT_TRUE(on.ok()) << on.error().describe();
  EXPECT_TRUE(store_->memories().extraction_state(conv)->off_record);
  ASSERT_TRUE(cap->invoke(ctx, {{"action", "off_record"}, {"on", false}}).ok());
  EXPECT_FALSE(store_->memories().extraction_state(conv)->off_record);
  auto nowhere = try_memory(*alice_, {{"action", "off_record"}});
  ASSERT_FALSE(nowhere.ok());
  EXPECT_EQ(nowhere.error().code, ErrorCode::invalid_argument);
}

}  // namespace memory_test
}  // namespace parley::capabilities
