// `parley run` as a served bot: the HTTP channel against the fake LLM, redelivery, 100
// conversations at once with every reply in order, one instance per database, and a graceful
// stop on SIGTERM.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "fakes/fake_llm.h"
#include "parley/storage/store.h"
#include "served_bot.h"
#include "support/temp_dir.h"

namespace run_test {

using nlohmann::json;
using parley::fakes::FakeLlmServer;
using parley::fakes::FakeReply;
using parley::testing::TempDir;
using ::testing::HasSubstr;

using Served = parley::testing::ServedBot;

parley::testing::Http request(const std::string& url, const std::string& body = "") {
  return parley::testing::http_request(url, body);
}

std::string last_user_text(const parley::fakes::RecordedRequest& r) {
  const auto& m = r.json["messages"];
  for (auto it = m.rbegin(); it != m.rend(); ++it) {
    if ((*it)["role"] == "user") return (*it)["content"];
  }
  return "";
}

TEST(Run, ServesHttpDedupesKeepsOrderRefusesASecondInstanceAndStopsGracefully) {
  TempDir dir;
  FakeLlmServer fake;
  fake.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    auto reply = FakeReply::text("echo: " + last_user_text(r));
    reply.delay_before_headers = std::chrono::milliseconds(20);
    return reply;
  });
  Served bot(dir.path(), fake.base_url());
  ASSERT_FALSE(bot.url().empty()) << "no ready line: " << bot.ready_line();
  EXPECT_THAT(bot.ready_line(), HasSubstr("ready in"));

  EXPECT_EQ(request(bot.url() + "/healthz").status, 200);
  EXPECT_EQ(request(bot.url() + "/readyz").status, 200);

  // A turn through the LLM, and a /command without it.
  auto r = request(bot.url() + "/v1/messages",
                   R"({"conversation": "c0", "user": "alice", "text": "hi", "id": "m-1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["reply"], "echo: hi");
  EXPECT_EQ(j["duplicate"], false);
  auto calc = json::parse(request(bot.url() + "/v1/messages",
                                  R"({"conversation": "c0", "user": "alice", "text": "/calc 6*7"})")
                              .body);
  EXPECT_EQ(calc["reply"], "42");

  // The same inbound id again: one stored message, one reply.
  const size_t llm_before = fake.request_count();
  auto again =
      json::parse(request(bot.url() + "/v1/messages",
                          R"({"conversation": "c0", "user": "alice", "text": "hi", "id": "m-1"})")
                      .body);
  EXPECT_EQ(again["duplicate"], true);
  EXPECT_EQ(fake.request_count(), llm_before);

  // Malformed input is a clear 400.
  EXPECT_EQ(request(bot.url() + "/v1/messages", "{not json").status, 400);

  // A second `parley run` on the same database refuses.
  auto second =
      parley::testing::parley(dir.path(), "run --http 127.0.0.1:0",
                              "env PARLEY_LLM_BASE_URL=" + fake.base_url() + " PARLEY_LLM_MODEL=m");
  EXPECT_EQ(second.code, 1);
  EXPECT_THAT(second.err, HasSubstr("already serving"));

  // 100 conversations at once, 3 messages each in sequence: every reply answers its message.
  std::vector<std::thread> users;
  std::atomic<int> wrong{0};
  for (int c = 0; c < 100; ++c) {
    users.emplace_back([&, c] {
      for (int k = 0; k < 3; ++k) {
        const std::string text = "c" + std::to_string(c) + " m" + std::to_string(k);
        const json body = {{"conversation", "conv-" + std::to_string(c)},
                           {"user", "u" + std::to_string(c)},
                           {"text", text}};
        auto resp = request(bot.url() + "/v1/messages", body.dump());
        if (resp.status != 200 || json::parse(resp.body)["reply"] != "echo: " + text) ++wrong;
      }
    });
  }
  for (auto& t : users) t.join();
  EXPECT_EQ(wrong.load(), 0);

  EXPECT_EQ(bot.stop(), 0) << "SIGTERM stops it cleanly";

  // Everything acknowledged is stored, in order per conversation; nothing owed is left.
  parley::storage::StoreOptions so;
  so.path = dir / "data/parley.db";
  auto store = std::move(parley::storage::Store::open(so).value());
  EXPECT_TRUE(store->integrity_check().ok());
  EXPECT_TRUE(store->outbox().pending().value().empty());
  auto conn = store->reads().acquire();
  auto st = conn->cached(
      "SELECT m.role, m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id "
      "WHERE c.external_id = 'conv-7' ORDER BY m.id");
  ASSERT_TRUE(st.ok());
  std::vector<std::string> seen;
  while ((*st)->step().value()) seen.push_back((*st)->column_text(0) + ":" + (*st)->column_text(1));
  EXPECT_EQ(seen, (std::vector<std::string>{"user:c7 m0", "assistant:echo: c7 m0", "user:c7 m1",
                                            "assistant:echo: c7 m1", "user:c7 m2",
                                            "assistant:echo: c7 m2"}));
}

}  // namespace run_test
