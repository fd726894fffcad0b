// `parley chat` end to end with piped input: the real binary and database, /commands without an
// LLM, two turns of one conversation against the fake LLM (the second sees the first), and a
// chat beside a running `parley run` on the same database.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "fakes/fake_llm.h"
#include "parley/storage/store.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace chat_test {

using parley::fakes::FakeLlmServer;
using parley::fakes::FakeReply;
using parley::testing::parley;
using parley::testing::quote;
using parley::testing::TempDir;
using ::testing::HasSubstr;

const std::string kNoLlm =
    "env -u OPENROUTER_API_KEY -u OPENAI_API_KEY -u PARLEY_LLM_API_KEY -u PARLEY_LLM_BASE_URL "
    "-u PARLEY_LLM_MODEL";

std::string with_fake(const FakeLlmServer& fake) {
  return "env -u OPENROUTER_API_KEY -u OPENAI_API_KEY -u PARLEY_LLM_API_KEY PARLEY_LLM_BASE_URL=" +
         fake.base_url() + " PARLEY_LLM_MODEL=fake-model";
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

// role:text of every message of conversation `key`, in order.
std::vector<std::string> stored(const std::filesystem::path& db, const std::string& key) {
  parley::storage::StoreOptions so;
  so.path = db;
  auto store = std::move(parley::storage::Store::open(so).value());
  auto conn = store->reads().acquire();
  auto st = conn->cached(
      "SELECT m.role, m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id "
      "WHERE c.external_id = ?1 ORDER BY m.id");
  EXPECT_TRUE(st.ok());
  std::vector<std::string> seen;
  if (!st.ok()) return seen;
  (*st)->bind(1, key);
  while ((*st)->step().value()) seen.push_back((*st)->column_text(0) + ":" + (*st)->column_text(1));
  return seen;
}

TEST(Chat, CommandsWorkWithoutAnLlmAndAPlainLineGetsTheConfigureParagraph) {
  TempDir dir;
  auto r = parley(dir.path(), "chat --user carol", "printf '/calc 2+3\\nhello\\n' | " + kNoLlm);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  // The greeting says how to configure an LLM and how to quit; the plain line gets the same
  // paragraph as its reply.
  EXPECT_THAT(r.out, HasSubstr("/quit"));
  EXPECT_EQ(count(r.out, "No LLM is configured"), 2u) << r.out;
  const auto five = r.out.find("\n5\n");
  ASSERT_NE(five, std::string::npos) << r.out;
  EXPECT_GT(r.out.find("No LLM is configured", five), five)
      << "the replies come in order: " << r.out;

  const auto db = dir / "data/parley.db";
  const auto seen = stored(db, "chat-carol");
  // Each line is stored as it arrives (the second may be stored before the first is answered);
  // the replies follow their own message.
  ASSERT_EQ(seen.size(), 4u) << ::testing::PrintToString(seen);
  const auto at = [&seen](const std::string& prefix) {
    return std::find_if(seen.begin(), seen.end(),
                        [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
  };
  ASSERT_NE(at("user:/calc 2+3"), seen.end());
  ASSERT_NE(at("assistant:5"), seen.end());
  ASSERT_NE(at("user:hello"), seen.end());
  ASSERT_NE(at("assistant:No LLM is configured"), seen.end()) << ::testing::PrintToString(seen);
  EXPECT_LT(at("user:/calc 2+3"), at("user:hello"));
  EXPECT_LT(at("user:/calc 2+3"), at("assistant:5"));
  EXPECT_LT(at("user:hello"), at("assistant:No LLM is configured"));
  EXPECT_LT(at("assistant:5"), at("assistant:No LLM is configured"));

  // Every printed reply went through the outbox bracket and is marked sent.
  parley::storage::StoreOptions so;
  so.path = db;
  auto store = std::move(parley::storage::Store::open(so).value());
  EXPECT_TRUE(store->outbox().pending().value().empty());
}

TEST(Chat, QuitEndsTheChatAndIsNotSentToTheBot) {
  TempDir dir;
  auto r = parley(dir.path(), "chat --user dan --conversation c-quit",
                  "printf '/calc 1+1\\n/quit\\n/calc 9*9\\n' | " + kNoLlm);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("\n2\n"));
  EXPECT_EQ(r.out.find("81"), std::string::npos) << r.out;
  EXPECT_EQ(stored(dir / "data/parley.db", "c-quit"),
            (std::vector<std::string>{"user:/calc 1+1", "assistant:2"}));
}

TEST(Chat, TwoTurnsOfOneConversationTheSecondSeesTheFirst) {
  TempDir dir;
  FakeLlmServer fake;
  fake.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    const auto& messages = r.json["messages"];
    return FakeReply::text("echo: " + messages.back()["content"].get<std::string>());
  });
  auto r = parley(dir.path(), "chat --user erin",
                  "{ printf 'my name is Zed\\n'; sleep 1; printf 'what is my name?\\n'; } | " +
                      with_fake(fake));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("fake-model"));  // the greeting names the model
  const auto first = r.out.find("echo: my name is Zed\n");
  const auto second = r.out.find("echo: what is my name?\n");
  ASSERT_NE(first, std::string::npos) << r.out;
  ASSERT_NE(second, std::string::npos) << r.out;
  EXPECT_LT(first, second);

  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 2u);
  std::vector<std::string> history;
  for (const auto& m : requests[1].json["messages"]) {
    if (m["role"] == "user" || m["role"] == "assistant") {
      history.push_back(m["role"].get<std::string>() + ":" + m["content"].get<std::string>());
    }
  }
  EXPECT_EQ(history,
            (std::vector<std::string>{"user:my name is Zed", "assistant:echo: my name is Zed",
                                      "user:what is my name?"}));
}

TEST(Chat, WorksBesideARunningParleyRunOnTheSameDatabase) {
  TempDir dir;
  const std::string bin = quote(PARLEY_BINARY);
  // `parley run` in the background (it holds the instance lock once ready), then a chat.
  const std::string script =
      kNoLlm + " " + bin + " run --http 127.0.0.1:0 --grace 1 >run.out 2>run.err & pid=$!\n" +
      "for i in $(seq 200); do grep -q 'ready in' run.out 2>/dev/null && break; sleep 0.05; "
      "done\n" +
      "grep -q 'ready in' run.out || { kill -9 $pid; exit 97; }\n" + "printf '/calc 6*7\\n' | " +
      kNoLlm + " " + bin + " chat --user fay; rc=$?\n" + "kill -TERM $pid; wait $pid; exit $rc";
  auto r = parley::testing::shell(dir.path(), script);
  ASSERT_NE(r.code, 97) << "parley run never got ready: "
                        << parley::testing::slurp(dir / "run.err");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("\n42\n"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("already serving")));
}

}  // namespace chat_test
