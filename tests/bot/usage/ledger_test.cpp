// Every LLM attempt writes its usage row — successes, retries, failures — with what it
// consumed, through the ledger observer.
#include "parley/bot/usage/ledger.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "fakes/fake_llm.h"
#include "parley/storage/store.h"
#include "temp_dir.h"

namespace parley::bot::usage {
namespace {

using fakes::FakeReply;

TEST(UsageLedger, EveryAttemptWritesItsRow) {
  testing::TempDir dir;
  storage::StoreOptions so;
  so.path = dir / "l.db";
  auto store = std::move(storage::Store::open(so).value());
  const int64_t user = store->directory().ensure_user("console", "alice", "Alice").get().value().row_id;
  const int64_t conv = store->directory().ensure_conversation("console", "c1").get().value().row_id;

  net::asio::io_context ioc;
  auto work = net::asio::make_work_guard(ioc);
  std::thread t([&] { ioc.run(); });
  fakes::FakeLlmServer fake;
  http::CurlMulti multi(ioc.get_executor());
  llm::LlmSettings s;
  s.provider = "fake";
  s.providers["fake"] = llm::ProviderConfig{"fake", fake.base_url(), "", {}};
  s.roles["smart"] = {llm::ModelRef{"", "m"}};
  s.retry.base_backoff = std::chrono::milliseconds(1);
  UsageLedger ledger(store->usage());
  llm::LlmClient client(multi, llm::resolve_llm(s, [](const std::string&) { return std::optional<std::string>(); }),
                        ledger.observer());

  fake.push(FakeReply::error(503));
  fakes::FakeUsage u;
  u.prompt_tokens = 40;
  u.completion_tokens = 4;
  u.cost = 0.000321;
  auto ok = FakeReply::text("hello", u);
  ok.generation_id = "gen-7";
  fake.push(ok);
  llm::ChatRequest req;
  req.messages = {llm::Message::user("hi")};
  llm::CallOptions opts;
  opts.user_id = user;
  opts.conversation_id = conv;
  opts.purpose = "turn";
  std::promise<llm::LlmResponse> p;
  client.call(req, opts, ioc.get_executor(), [&](llm::LlmResponse r) { p.set_value(std::move(r)); });
  const auto r = p.get_future().get();
  ASSERT_TRUE(r.ok());
  // The rows are written without waiting: wait for them.
  for (int i = 0; i < 200 && ledger.written() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(ledger.written(), 2u);
  EXPECT_EQ(ledger.failed(), 0u);

  const auto sum = store->usage().summary({user, 0, INT64_MAX}).value();
  EXPECT_EQ(sum.calls, 2);
  EXPECT_EQ(sum.failed, 1);
  EXPECT_EQ(sum.prompt_tokens, 40);
  EXPECT_EQ(sum.cost_actual_nanousd, 321'000);
  EXPECT_EQ(sum.calls_without_cost, 1);

  auto conn = store->reads().acquire();
  auto st = conn->cached(
      "SELECT success, error_kind, model_requested, model_answered, provider, generation_id, "
      "cost_source, conversation_id, purpose FROM usage ORDER BY id");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 0);
  EXPECT_EQ((*st)->column_text(1), "server error");
  EXPECT_EQ((*st)->column_text(2), "m");
  EXPECT_TRUE((*st)->column_is_null(3)) << "no model answered the 503";
  EXPECT_EQ((*st)->column_text(6), "unknown");
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 1);
  EXPECT_EQ((*st)->column_text(3), "m");
  EXPECT_EQ((*st)->column_text(4), "fake");
  EXPECT_EQ((*st)->column_text(5), "gen-7");
  EXPECT_EQ((*st)->column_text(6), "actual");
  EXPECT_EQ((*st)->column_int64(7), conv);
  EXPECT_EQ((*st)->column_text(8), "turn");

  multi.shutdown();
  work.reset();
  ioc.stop();
  t.join();
}

}  // namespace
}  // namespace parley::bot::usage
