// Every LLM attempt writes its usage row — successes, retries, failures — with what it
// consumed, through the ledger observer.
#include "parley/bot/money/ledger.h"

#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "fakes/fake_llm.h"
#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::bot::money {
namespace ledger_test {

using fakes::FakeReply;

TEST(UsageLedger, EveryAttemptWritesItsRow) {
  testing::TempDir dir;
  storage::StoreOptions so;
  so.path = dir / "l.db";
  auto store = std::move(storage::Store::open(so).value());
  const int64_t user =
      store->directory().ensure_user("console", "alice", "Alice").get().value().row_id;
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
  llm::LlmClient client(
      multi, llm::resolve_llm(s, [](const std::string&) { return std::optional<std::string>(); }),
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
  client.call(req, opts, ioc.get_executor(),
              [&](llm::LlmResponse r) { p.set_value(std::move(r)); });
  const auto r = p.get_future().get();
  ASSERT_TRUE(r.ok());
  // The rows are written without waiting: wait for them.
  for (int i = 0; i < 200 && ledger.written() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
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
  EXPECT_EQ((*st)->column_text(6), "none");
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 1);
  EXPECT_EQ((*st)->column_text(3), "m");
  EXPECT_EQ((*st)->column_text(4), "fake");
  EXPECT_EQ((*st)->column_text(5), "gen-7");
  EXPECT_EQ((*st)->column_text(6), "provider");
  EXPECT_EQ((*st)->column_int64(7), conv);
  EXPECT_EQ((*st)->column_text(8), "turn");

  multi.shutdown();
  work.reset();
  ioc.stop();
  t.join();
}

class RecordingSink final : public AlertSink {
 public:
  void raise(AlertRaise a) override {
    std::lock_guard lock(mu);
    alerts.push_back(std::move(a));
  }
  std::mutex mu;
  std::vector<AlertRaise> alerts;
};

llm::Attempt attempt(const std::string& model, int64_t prompt, int64_t completion,
                     std::optional<double> cost) {
  llm::Attempt a;
  a.provider = "p";
  a.model_asked = a.model_answered = model;
  a.usage.prompt_tokens = prompt;
  a.usage.completion_tokens = completion;
  a.usage.cost_usd = cost;
  return a;
}

// Both costs land in the row, with where they came from and the pricing version; a model with
// no price has a null estimate and raises unknown_price once; an estimate far from the
// provider's cost is logged once per model per day; 402 and repeated 429s raise alerts.
TEST(UsageLedger, PricesAlertsAndDivergence) {
  testing::TempDir dir;
  storage::StoreOptions so;
  so.path = dir / "p.db";
  auto store = std::move(storage::Store::open(so).value());
  auto prices = std::make_shared<const PriceTable>(PriceTable::parse(
      "version: v9\nmodels:\n  - match: \"priced\"\n    input: 1\n    output: 2\n", "t"));
  RecordingSink sink;
  ManualClock clock(1'764'892'800'000);
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  LedgerOptions lo;
  lo.rate_limit_alert = 3;
  UsageLedger ledger(store->usage(), prices, &sink, clock, lo);
  auto observe = ledger.observer();
  llm::CallOptions opts;
  observe(opts, attempt("priced", 1000, 100, 0.0012));  // estimate 1,200,000: the same
  observe(opts,
          attempt("priced", 1000, 100, 0.0100));  // estimate 1,200,000 vs 10,000,000: diverges
  observe(opts, attempt("priced", 1000, 100, 0.0100));  // … logged once
  observe(opts, attempt("priced", 1000, 100, std::nullopt));
  observe(opts, attempt("mystery", 10, 10, std::nullopt));
  observe(opts, attempt("mystery", 10, 10, 0.001));
  auto billing = attempt("priced", 0, 0, std::nullopt);
  billing.failure = llm::FailureKind::billing;
  observe(opts, billing);
  auto limited = attempt("priced", 0, 0, std::nullopt);
  limited.failure = llm::FailureKind::rate_limited;
  for (int i = 0; i < 3; ++i) observe(opts, limited);
  for (int i = 0; i < 200 && ledger.written() < 10; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  spdlog::set_default_logger(previous);
  ASSERT_EQ(ledger.written(), 10u);

  auto conn = store->reads().acquire();
  auto st = conn->cached(
      "SELECT cost_actual_nanousd, cost_estimated_nanousd, cost_source, pricing_version FROM usage "
      "ORDER BY id LIMIT 6");
  ASSERT_TRUE(st.ok());
  auto row = [&] { EXPECT_TRUE((*st)->step().value()); };
  row();
  EXPECT_EQ((*st)->column_int64(0), 1'200'000);
  EXPECT_EQ((*st)->column_int64(1), 1'200'000);
  EXPECT_EQ((*st)->column_text(2), "both");
  EXPECT_EQ((*st)->column_text(3), "v9");
  row();
  row();
  row();
  EXPECT_TRUE((*st)->column_is_null(0));
  EXPECT_EQ((*st)->column_text(2), "estimate");
  row();
  EXPECT_TRUE((*st)->column_is_null(0));
  EXPECT_TRUE((*st)->column_is_null(1)) << "no price: no estimate, never a zero";
  EXPECT_EQ((*st)->column_text(2), "none");
  row();
  EXPECT_EQ((*st)->column_int64(0), 1'000'000);
  EXPECT_TRUE((*st)->column_is_null(1));
  EXPECT_EQ((*st)->column_text(2), "provider");
  (*st)->reset();

  std::vector<std::string> kinds;
  for (const auto& a : sink.alerts) kinds.push_back(a.kind);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "unknown_price"), 1);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "billing_error"), 1);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "rate_limited"), 1);
  const std::string text = log.str();
  const auto first = text.find("differs from the provider's cost");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(text.find("differs from the provider's cost", first + 1), std::string::npos)
      << "once per model per day";
  EXPECT_NE(text.find("0.001200000 estimated, 0.010000000 charged"), std::string::npos) << text;

  // The next day the divergence is logged again.
  clock.advance_ms(86'400'000);
  observe(opts, attempt("priced", 1000, 100, 0.0100));
  for (int i = 0; i < 200 && ledger.written() < 11; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto totals = ledger.totals();
  EXPECT_EQ(totals.at({"priced", "ok"}).calls, 5u);
  EXPECT_EQ(totals.at({"priced", "rate limited"}).calls, 3u);
}

}  // namespace ledger_test
}  // namespace parley::bot::money
