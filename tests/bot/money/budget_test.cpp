// Budgets: reservations before dispatch, settling to the real cost, calendar periods in a time
// zone (an injected clock across midnight), the soft threshold's cheaper role, unknown prices,
// the per-turn cap — and 50 parallel calls through the real client against a hard cap.
#include "parley/bot/money/budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "fakes/fake_llm.h"
#include "parley/bot/money/treasury.h"
#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::bot::money {
namespace budget_test {

using ::testing::HasSubstr;

// 1 USD per 1M prompt tokens, 2 USD per 1M completion tokens: 1,000 / 2,000 nano-dollars each.
constexpr const char* kPrices = R"(
version: "test-1"
models:
  - match: "priced*"
    input: 1
    output: 2
)";

class RecordingSink final : public AlertSink {
 public:
  void raise(AlertRaise a) override {
    std::lock_guard lock(mu);
    alerts.push_back(std::move(a));
  }
  std::vector<std::string> kinds() {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const auto& a : alerts) out.push_back(a.kind);
    return out;
  }
  std::mutex mu;
  std::vector<AlertRaise> alerts;
};

llm::ChatRequest request(int max_tokens) {
  llm::ChatRequest r;
  r.messages = {llm::Message::user("hello")};
  r.max_tokens = max_tokens;
  return r;
}

llm::Attempt attempt(const std::string& model, int64_t prompt, int64_t completion,
                     std::optional<double> cost = std::nullopt) {
  llm::Attempt a;
  a.model_asked = a.model_answered = model;
  a.usage.prompt_tokens = prompt;
  a.usage.completion_tokens = completion;
  a.usage.cost_usd = cost;
  return a;
}

class BudgetTest : public ::testing::Test {
 protected:
  std::unique_ptr<BudgetKeeper> keeper(BudgetOptions o) {
    return std::make_unique<BudgetKeeper>(std::move(o), prices, clock, &sink);
  }
  std::shared_ptr<const PriceTable> prices =
      std::make_shared<const PriceTable>(PriceTable::parse(kPrices, "test"));
  ManualClock clock{1'764'892'800'000};  // 2025-12-05 00:00:00 UTC
  RecordingSink sink;
  llm::ResolvedModel model{"p", "priced-1", nlohmann::json::object()};
};

TEST_F(BudgetTest, WorstCaseIsPromptEstimatePlusMaxTokensAtTheModelsPrice) {
  auto k = keeper({});
  const auto req = request(1000);
  const int64_t prompt = llm::estimate_prompt_tokens(req);
  EXPECT_EQ(k->worst_case(model, req), prompt * 1000 + 1000 * 2000);
  EXPECT_FALSE(k->worst_case({"p", "unpriced", nlohmann::json::object()}, req).has_value());
}

TEST_F(BudgetTest, ReservationsKeepConcurrentCallsUnderTheCap) {
  BudgetOptions o;
  o.global_daily = 10'000'000;  // $0.01
  o.min_max_tokens = 1000;      // whole calls only: none asks for fewer tokens to fit
  auto k = keeper(o);
  const auto req = request(1000);
  const int64_t worst = *k->worst_case(model, req);
  // 50 admissions at once, none settled yet: only as many as fit are let through.
  std::vector<std::thread> threads;
  std::atomic<int> admitted{0};
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&] {
      llm::CallOptions opts;
      if (k->admit(opts, model, req).ok) ++admitted;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), static_cast<int>(10'000'000 / worst));
  const auto g = k->gauges();
  ASSERT_FALSE(g.empty());
  EXPECT_LE(g[0].reserved, 10'000'000);
  EXPECT_EQ(g[0].spent, 0);
}

TEST_F(BudgetTest, SettlingReplacesTheReservationWithTheRealCost) {
  BudgetOptions o;
  o.global_daily = 10'000'000;
  auto k = keeper(o);
  llm::CallOptions opts;
  auto adm = k->admit(opts, model, request(1000));
  ASSERT_TRUE(adm.ok);
  EXPECT_GT(adm.reserved_nanousd, 0);
  k->settle(adm, opts, attempt("priced-1", 100, 10));  // 100 × 1000 + 10 × 2000 = 120,000
  auto g = k->gauges();
  EXPECT_EQ(g[0].spent, 120'000);
  EXPECT_EQ(g[0].reserved, 0);
  // The provider's own cost wins over the estimate.
  adm = k->admit(opts, model, request(1000));
  k->settle(adm, opts, attempt("priced-1", 100, 10, 0.0005));
  EXPECT_EQ(k->gauges()[0].spent, 120'000 + 500'000);
}

TEST_F(BudgetTest, AtTheHardCapCallsAreRefusedWithOneClearSentence) {
  BudgetOptions o;
  o.global_daily = 1'000'000;
  auto k = keeper(o);
  llm::CallOptions opts;
  auto adm = k->admit(opts, model, request(100));
  ASSERT_TRUE(adm.ok);
  k->settle(adm, opts, attempt("priced-1", 1000, 0, 0.001));  // exactly the cap
  adm = k->admit(opts, model, request(100));
  EXPECT_FALSE(adm.ok);
  EXPECT_THAT(adm.refusal, HasSubstr("daily LLM budget is used up ($0.0010 of $0.0010)"));
  EXPECT_THAT(adm.refusal, HasSubstr("/commands still work"));
  EXPECT_THAT(sink.kinds(), ::testing::Contains("budget_hard"));
}

// The clock jumps back over midnight (an NTP correction): the day it is again keeps what was
// spent in it, even after the counters of past periods were swept; forward again, the new day
// has its own. Nothing is counted twice, no day starts afresh by mistake.
TEST_F(BudgetTest, AClockJumpingBackOverMidnightKeepsThatDaysSpend) {
  BudgetOptions o;
  o.global_daily = 1'000'000;
  clock.set_ms(1'764'892'800'000 + 86'400'000 - 60'000);  // 2025-12-05 23:59:00 UTC
  auto k = keeper(o);
  llm::CallOptions opts;
  auto adm = k->admit(opts, model, request(10));
  k->settle(adm, opts, attempt("priced-1", 1000, 0, 0.001));  // the 5th's whole cap
  EXPECT_FALSE(k->admit(opts, model, request(10)).ok);
  clock.advance_ms(120'000);  // 00:01 on the 6th
  adm = k->admit(opts, model, request(10));
  ASSERT_TRUE(adm.ok);
  k->settle(adm, opts, attempt("priced-1", 100, 0, 0.0001));
  // Enough admissions for the keeper to sweep the counters of periods that are over.
  for (int i = 0; i < 2100; ++i) {
    auto a = k->admit(opts, model, request(10));
    if (a.ok) k->settle(a, opts, attempt("priced-1", 0, 0, 0.0));
  }
  clock.advance_ms(-90'000);  // back to 23:59:30 on the 5th
  EXPECT_FALSE(k->admit(opts, model, request(10)).ok) << "the 5th's spend is remembered";
  EXPECT_EQ(k->gauges()[0].period, "2025-12-05");
  EXPECT_EQ(k->gauges()[0].spent, 1'000'000) << "counted once";
  clock.advance_ms(90'000);  // the 6th again
  EXPECT_EQ(k->gauges()[0].spent, 100'000) << "the 6th's own";
}

TEST_F(BudgetTest, TheDayRollsOverAtMidnightInTheConfiguredZone) {
  BudgetOptions o;
  o.zone = "Europe/Paris";
  o.global_daily = 1'000'000;
  o.global_monthly = 100'000'000;
  // 2025-12-05 23:59:00 in Paris (UTC+1) is 22:59:00 UTC.
  clock.set_ms(1'764'975'540'000);
  auto k = keeper(o);
  llm::CallOptions opts;
  auto adm = k->admit(opts, model, request(10));
  ASSERT_TRUE(adm.ok);
  k->settle(adm, opts, attempt("priced-1", 1000, 0, 0.001));
  EXPECT_FALSE(k->admit(opts, model, request(10)).ok);
  EXPECT_EQ(k->gauges()[0].period, "2025-12-05");
  // 23:59:59 Paris: still the same day.
  clock.advance_ms(59'000);
  EXPECT_FALSE(k->admit(opts, model, request(10)).ok);
  // 00:00:01 Paris on the 6th (23:00:01 UTC on the 5th): a new day, the month goes on.
  clock.advance_ms(2'000);
  adm = k->admit(opts, model, request(10));
  EXPECT_TRUE(adm.ok);
  const auto g = k->gauges();
  EXPECT_EQ(g[0].period, "2025-12-06");
  EXPECT_EQ(g[0].spent, 0);
  EXPECT_EQ(g[1].period, "2025-12");
  EXPECT_EQ(g[1].spent, 1'000'000);
}

TEST_F(BudgetTest, PerUserCapsCountEachUserApart) {
  BudgetOptions o;
  o.user_daily = 1'000'000;
  auto k = keeper(o);
  llm::CallOptions alice;
  alice.user_id = 1;
  llm::CallOptions bob;
  bob.user_id = 2;
  auto adm = k->admit(alice, model, request(10));
  k->settle(adm, alice, attempt("priced-1", 1000, 0, 0.001));
  const auto refused = k->admit(alice, model, request(10));
  EXPECT_FALSE(refused.ok);
  EXPECT_THAT(refused.refusal, HasSubstr("Your daily LLM budget is used up"));
  EXPECT_TRUE(k->admit(bob, model, request(10)).ok);
}

// A cap whose remainder cannot cover max_tokens: the call asks for what it does cover instead of
// being refused — down to a floor, below which it is refused.
TEST_F(BudgetTest, ACapTooSmallForMaxTokensLowersThemDownToTheFloor) {
  BudgetOptions o;
  o.user_daily = 1'000'000;  // $0.001: 500 completion tokens at most
  o.min_max_tokens = 256;
  auto k = keeper(o);
  llm::CallOptions alice;
  alice.user_id = 1;
  const auto req = request(4096);  // worst case $0.0082: more than the whole cap
  const int64_t prompt = llm::estimate_prompt_tokens(req);
  auto first = k->admit(alice, model, req);
  ASSERT_TRUE(first.ok) << first.refusal;
  ASSERT_TRUE(first.max_tokens);
  EXPECT_EQ(*first.max_tokens, static_cast<int>((1'000'000 - prompt * 1000) / 2000));
  EXPECT_LE(first.reserved_nanousd, 1'000'000);
  EXPECT_EQ(first.reserved_nanousd, prompt * 1000 + *first.max_tokens * 2000);
  EXPECT_TRUE(sink.alerts.empty()) << "no refusal, no alert";
  // With that reserved, what is left (nothing) is below the floor: refused, and said.
  auto second = k->admit(alice, model, req);
  EXPECT_FALSE(second.ok);
  EXPECT_THAT(sink.kinds(), ::testing::Contains("budget_hard"));
  // Settled at less than reserved: 300 tokens' room is back, above the floor.
  k->settle(first, alice, attempt("priced-1", prompt, 100));
  auto third = k->admit(alice, model, req);
  ASSERT_TRUE(third.ok) << third.refusal;
  EXPECT_GE(*third.max_tokens, 256);
  EXPECT_LT(*third.max_tokens, 4096);
  // A request that fits as asked is not touched.
  llm::CallOptions bob;
  bob.user_id = 2;
  auto small = k->admit(bob, model, request(300));
  ASSERT_TRUE(small.ok);
  EXPECT_FALSE(small.max_tokens);
}

// Alerts name a user as the operator knows them, not by parley's internal id.
TEST_F(BudgetTest, AlertsNameTheUserByTheirChannelIdentity) {
  BudgetOptions o;
  o.user_daily = 1'000'000;
  auto k = keeper(o);
  k->name_users([](int64_t id) { return id == 4 ? std::string("http:alice") : std::string(); });
  llm::CallOptions alice;
  alice.user_id = 4;
  auto adm = k->admit(alice, model, request(10));
  k->settle(adm, alice, attempt("priced-1", 1000, 0, 0.001));
  EXPECT_FALSE(k->admit(alice, model, request(10)).ok);
  ASSERT_FALSE(sink.alerts.empty());
  EXPECT_EQ(sink.alerts.back().kind, "budget_hard");
  EXPECT_EQ(sink.alerts.back().subject, "http:alice");
  EXPECT_THAT(sink.alerts.back().message, HasSubstr("http:alice's daily LLM budget reached"));
  EXPECT_THAT(sink.alerts.back().message, ::testing::Not(HasSubstr("user 4")));
  // Without a name (no identity), the id.
  llm::CallOptions nobody;
  nobody.user_id = 9;
  adm = k->admit(nobody, model, request(10));
  k->settle(adm, nobody, attempt("priced-1", 1000, 0, 0.001));
  EXPECT_FALSE(k->admit(nobody, model, request(10)).ok);
  EXPECT_EQ(sink.alerts.back().subject, "user 9");
}

TEST_F(BudgetTest, PastTheSoftThresholdCallsGoToTheCheaperRoleAndAdminsAreTold) {
  BudgetOptions o;
  o.global_daily = 1'000'000;
  o.soft_percent = 80;
  o.cheaper_role = "fast";
  auto k = keeper(o);
  llm::CallOptions opts;
  EXPECT_EQ(k->route(opts, "smart"), "smart");
  auto adm = k->admit(opts, model, request(10));
  k->settle(adm, opts, attempt("priced-1", 800, 0, 0.0008));
  EXPECT_EQ(k->route(opts, "smart"), "fast");
  ASSERT_THAT(sink.kinds(), ::testing::Contains("budget_soft"));
  EXPECT_THAT(sink.alerts.back().message, HasSubstr("80% used"));
  EXPECT_THAT(sink.alerts.back().message, HasSubstr("fast"));
}

TEST_F(BudgetTest, UnknownPricesAreAllowedByDefaultAndRefusedWhenTheOperatorSaysSo) {
  llm::ResolvedModel unpriced{"p", "mystery", nlohmann::json::object()};
  BudgetOptions o;
  o.global_daily = 1'000'000;
  auto k = keeper(o);
  llm::CallOptions opts;
  auto adm = k->admit(opts, unpriced, request(10));
  EXPECT_TRUE(adm.ok);
  EXPECT_EQ(adm.reserved_nanousd, 0);
  // The provider's cost, when it reports one, still counts.
  k->settle(adm, opts, attempt("mystery", 10, 10, 0.0002));
  EXPECT_EQ(k->gauges()[0].spent, 200'000);

  o.refuse_unknown_price = true;
  auto strict = keeper(o);
  const auto refused = strict->admit(opts, unpriced, request(10));
  EXPECT_FALSE(refused.ok);
  EXPECT_THAT(refused.refusal, HasSubstr("price is not known"));
  EXPECT_THAT(sink.kinds(), ::testing::Contains("unknown_price"));
}

// An embeddings batch: its inputs' estimated tokens at the input price, nothing out; settled
// with the tokens the provider counted (or its cost).
TEST_F(BudgetTest, AnEmbeddingsBatchReservesItsInputAndSettlesWithTheRealUsage) {
  BudgetOptions o;
  o.global_daily = 10'000'000;
  auto k = keeper(o);
  const llm::SpendGate::Bound bound{2'000, 0};
  EXPECT_EQ(k->worst_case(model, bound), 2'000 * 1'000);
  llm::CallOptions opts;
  opts.purpose = "memory";
  auto adm = k->admit(opts, model, bound);
  ASSERT_TRUE(adm.ok);
  EXPECT_EQ(adm.reserved_nanousd, 2'000'000);
  EXPECT_EQ(k->gauges()[0].reserved, 2'000'000);
  k->settle(adm, opts, attempt("priced-1", 1'500, 0));
  EXPECT_EQ(k->gauges()[0].reserved, 0);
  EXPECT_EQ(k->gauges()[0].spent, 1'500'000);
  // What no longer fits is refused before it is sent, like a chat call.
  adm = k->admit(opts, model, llm::SpendGate::Bound{9'000, 0});
  EXPECT_FALSE(adm.ok);
  EXPECT_THAT(adm.refusal, HasSubstr("daily LLM budget has too little left"));
}

TEST_F(BudgetTest, ThePerTurnCapCountsEveryCallOfTheTurn) {
  BudgetOptions o;
  o.per_turn = 3'000'000;
  auto k = keeper(o);
  const auto req = request(1000);  // worst case a little over $0.002
  llm::CallOptions turn;
  turn.turn_key = "7-1";
  auto first = k->admit(turn, model, req);
  ASSERT_TRUE(first.ok);
  k->settle(first, turn, attempt("priced-1", 1000, 500));  // $0.002
  // $0.001 left: the next call asks for the ~490 completion tokens that covers.
  const auto second = k->admit(turn, model, req);
  ASSERT_TRUE(second.ok);
  ASSERT_TRUE(second.max_tokens);
  EXPECT_LT(*second.max_tokens, 500);
  EXPECT_GE(*second.max_tokens, 256);
  // With that in flight, nothing is left: refused, and said.
  const auto third = k->admit(turn, model, req);
  EXPECT_FALSE(third.ok);
  EXPECT_THAT(third.refusal, HasSubstr("per-request LLM budget of $0.0030"));
  llm::CallOptions other;
  other.turn_key = "7-2";
  EXPECT_TRUE(k->admit(other, model, req).ok);
}

TEST_F(BudgetTest, SpendAlertsFireAtTheirThresholds) {
  BudgetOptions o;
  o.alert_daily_spend = 500'000;
  auto k = keeper(o);
  llm::CallOptions opts;
  auto adm = k->admit(opts, model, request(10));
  k->settle(adm, opts, attempt("priced-1", 0, 0, 0.0006));
  EXPECT_THAT(sink.kinds(), ::testing::Contains("daily_spend"));
}

// The real client, the real store and ledger, the fake endpoint: 50 calls at once against a
// hard cap. The ledger's recorded spend never passes the cap, and the calls beyond it are
// refused before they are sent.
// The fake provider of the end-to-end tests: every call charges $0.0002 (20 prompt and 100
// completion tokens) after `delay`, so that many are in flight together.
void charge_every_call(fakes::FakeLlmServer& fake, std::chrono::milliseconds delay) {
  fakes::FakeUsage u;
  u.prompt_tokens = 20;
  u.completion_tokens = 100;
  u.cost = 0.0002;  // what the provider charges each call
  fake.set_handler([u, delay](const fakes::RecordedRequest&) {
    auto r = fakes::FakeReply::text("ok", u);
    r.delay_before_headers = delay;
    return std::optional<fakes::FakeReply>(r);
  });
}

// A daily cap of $0.005 with model "m" at $1/$2 per million tokens (prices.yaml in `dir`).
money::MoneyOptions daily_cap_of_half_a_cent(const std::filesystem::path& dir) {
  money::MoneyOptions money;
  money.prices_file = dir / "prices.yaml";
  std::ofstream(money.prices_file)
      << "version: t\nmodels:\n  - match: \"m\"\n    input: 1\n    output: 2\n";
  money.daily = 5'000'000;  // $0.005: ~24 calls' worst case, 25 at the provider's price
  return money;
}

TEST(BudgetEndToEnd, FiftyParallelCallsNeverPassTheHardCap) {
  testing::TempDir dir;
  storage::StoreOptions so;
  so.path = dir / "b.db";
  auto store = std::move(storage::Store::open(so).value());
  net::asio::io_context ioc;
  auto work = net::asio::make_work_guard(ioc);
  std::vector<std::thread> pool;
  for (int i = 0; i < 2; ++i) pool.emplace_back([&] { ioc.run(); });
  fakes::FakeLlmServer fake;
  charge_every_call(fake, std::chrono::milliseconds(100));  // all 50 are in flight together
  http::CurlMulti multi(ioc.get_executor());
  const money::MoneyOptions money = daily_cap_of_half_a_cent(dir.path());
  auto acct = std::move(Treasury::open(money, *store, &multi, ioc.get_executor()).value());
  llm::LlmSettings s;
  s.provider = "fake";
  s.providers["fake"] = llm::ProviderConfig{"fake", fake.base_url(), "", {}};
  s.roles["smart"] = {llm::ModelRef{"", "m"}};
  auto client = acct->make_client(
      multi, llm::resolve_llm(s, [](const std::string&) { return std::optional<std::string>(); }));

  std::vector<std::future<llm::LlmResponse>> calls;
  for (int i = 0; i < 50; ++i) {
    auto p = std::make_shared<std::promise<llm::LlmResponse>>();
    calls.push_back(p->get_future());
    llm::ChatRequest req;
    req.messages = {llm::Message::user("hi")};
    req.max_tokens = 100;
    client->call(req, llm::CallOptions{}, ioc.get_executor(),
                 [p](llm::LlmResponse r) { p->set_value(std::move(r)); });
  }
  int ok = 0;
  int refused = 0;
  for (auto& f : calls) {
    const auto r = f.get();
    if (r.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(r.failure, llm::FailureKind::budget);
      EXPECT_THAT(r.error->message, HasSubstr("daily LLM budget"));
      ++refused;
    }
  }
  for (int i = 0; i < 500 && acct->ledger().written() < static_cast<uint64_t>(ok); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(refused, 0);
  EXPECT_EQ(ok + refused, 50);
  // Refused calls were never sent.
  EXPECT_EQ(fake.requests().size(), static_cast<size_t>(ok));
  const auto sum = store->usage().summary({std::nullopt, 0, INT64_MAX}).value();
  EXPECT_EQ(sum.calls, ok);
  EXPECT_LE(sum.cost_actual_nanousd, 5'000'000);
  multi.shutdown();
  work.reset();
  for (auto& t : pool) t.join();
}

// Two processes on one database (two stores on one file, each with its own treasury and
// client) make 25 calls each at once against one daily cap: together they stay under it, as
// the holds in the database make each see the other's calls in flight. Without them each
// would admit ~24 calls and spend twice the cap.
TEST(BudgetEndToEnd, TwoProcessesOnOneDatabaseNeverPassTheCapTogether) {
  testing::TempDir dir;
  storage::StoreOptions so;
  so.path = dir / "shared.db";
  net::asio::io_context ioc;
  auto work = net::asio::make_work_guard(ioc);
  std::vector<std::thread> pool;
  for (int i = 0; i < 2; ++i) pool.emplace_back([&] { ioc.run(); });
  fakes::FakeLlmServer fake;
  charge_every_call(fake, std::chrono::milliseconds(150));
  const money::MoneyOptions money = daily_cap_of_half_a_cent(dir.path());
  llm::LlmSettings s;
  s.provider = "fake";
  s.providers["fake"] = llm::ProviderConfig{"fake", fake.base_url(), "", {}};
  s.roles["smart"] = {llm::ModelRef{"", "m"}};
  const auto resolved =
      llm::resolve_llm(s, [](const std::string&) { return std::optional<std::string>(); });

  struct Process {
    std::unique_ptr<storage::Store> store;
    std::unique_ptr<http::CurlMulti> multi;
    std::unique_ptr<Treasury> treasury;
    std::unique_ptr<llm::LlmClient> client;
  };
  std::vector<Process> procs(2);
  for (auto& p : procs) {
    p.store = std::move(storage::Store::open(so).value());
    p.multi = std::make_unique<http::CurlMulti>(ioc.get_executor());
    p.treasury =
        std::move(Treasury::open(money, *p.store, p.multi.get(), ioc.get_executor()).value());
    p.client = p.treasury->make_client(*p.multi, resolved);
  }
  std::vector<std::future<llm::LlmResponse>> calls;
  for (int i = 0; i < 50; ++i) {
    auto done = std::make_shared<std::promise<llm::LlmResponse>>();
    calls.push_back(done->get_future());
    llm::ChatRequest req;
    req.messages = {llm::Message::user("hi")};
    req.max_tokens = 100;
    procs[i % 2].client->call(req, llm::CallOptions{}, ioc.get_executor(),
                              [done](llm::LlmResponse r) { done->set_value(std::move(r)); });
  }
  int ok = 0;
  int refused = 0;
  for (auto& f : calls) {
    const auto r = f.get();
    if (r.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(r.failure, llm::FailureKind::budget);
      EXPECT_THAT(r.error->message, HasSubstr("daily LLM budget"));
      ++refused;
    }
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(refused, 0);
  EXPECT_EQ(fake.requests().size(), static_cast<size_t>(ok));
  for (auto& p : procs) p.multi->shutdown();
  work.reset();
  for (auto& t : pool) t.join();
  procs.clear();  // each treasury waits for its usage rows
  storage::StoreOptions ro = so;
  auto store = std::move(storage::Store::open(ro).value());
  const auto sum = store->usage().summary({std::nullopt, 0, INT64_MAX}).value();
  EXPECT_EQ(sum.calls, ok);
  EXPECT_LE(sum.cost_actual_nanousd, 5'000'000) << ok << " calls";
  auto conn = store->reads().acquire();
  auto st = conn->cached("SELECT count(*) FROM spend_holds");
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 0) << "every call's usage row dropped its hold";
}

// The real client, store, ledger and budgets against the fake's embeddings: every batch is
// reserved for and settled, and the ledger records each attempt under the purpose "memory".
TEST(BudgetEndToEnd, EmbeddingCallsAreBudgetedAndRecordedUnderMemory) {
  testing::TempDir dir;
  storage::StoreOptions so;
  so.path = dir / "e.db";
  auto store = std::move(storage::Store::open(so).value());
  net::asio::io_context ioc;
  auto work = net::asio::make_work_guard(ioc);
  std::thread t([&] { ioc.run(); });
  fakes::FakeLlmServer fake;
  http::CurlMulti multi(ioc.get_executor());

  money::MoneyOptions money;
  money.prices_file = dir / "prices.yaml";
  {
    std::ofstream(money.prices_file)
        << "version: t\nmodels:\n  - match: \"emb\"\n    input: 1\n    output: 0\n";
  }
  money.daily = 1'000'000;  // $0.001: 1,000 tokens at $1 per 1M
  auto acct = std::move(Treasury::open(money, *store, &multi, ioc.get_executor()).value());
  llm::LlmSettings s;
  s.provider = "fake";
  s.providers["fake"] = llm::ProviderConfig{"fake", fake.base_url(), "", {}};
  s.roles["smart"] = {llm::ModelRef{"", "m"}};
  s.roles["embed"] = {llm::ModelRef{"", "emb"}};
  auto client = acct->make_client(
      multi, llm::resolve_llm(s, [](const std::string&) { return std::optional<std::string>(); }));
  ASSERT_NE(client, nullptr);

  auto embed = [&](std::vector<std::string> inputs) {
    llm::CallOptions o;
    o.role = std::string(llm::kEmbedRole);
    o.purpose = std::string(llm::kEmbedPurpose);
    std::promise<llm::EmbedResponse> p;
    client->embed({std::move(inputs), 16}, o, ioc.get_executor(),
                  [&p](llm::EmbedResponse r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  std::vector<std::string> inputs;
  for (int i = 0; i < 70; ++i)
    inputs.push_back("a fact worth keeping, number " + std::to_string(i));
  const auto r = embed(inputs);
  ASSERT_TRUE(r.ok()) << r.error->describe();
  const int64_t tokens = r.total_usage().prompt_tokens;
  EXPECT_EQ(tokens, 70 * 6);
  const auto g = acct->budgets().gauges();
  ASSERT_FALSE(g.empty());
  EXPECT_EQ(g[0].spent, tokens * 1'000);
  EXPECT_EQ(g[0].reserved, 0);

  for (int i = 0; i < 500 && acct->ledger().written() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(acct->ledger().written(), 2u);
  auto conn = store->reads().acquire();
  auto st = conn->cached(
      "SELECT purpose, prompt_tokens, completion_tokens, model_requested, cost_estimated_nanousd "
      "FROM usage ORDER BY id");
  ASSERT_TRUE(st.ok());
  int64_t recorded = 0;
  for (int row = 0; row < 2; ++row) {
    ASSERT_TRUE((*st)->step().value());
    EXPECT_EQ((*st)->column_text(0), "memory");
    recorded += (*st)->column_int64(1);
    EXPECT_EQ((*st)->column_int64(2), 0);
    EXPECT_EQ((*st)->column_text(3), "emb");
    EXPECT_EQ((*st)->column_int64(4), (*st)->column_int64(1) * 1'000);
  }
  EXPECT_EQ(recorded, tokens);

  // Past the cap the next batch is refused before it is sent.
  const size_t sent = fake.request_count();
  std::vector<std::string> more(64, std::string(400, 'x'));  // ~6,400 estimated tokens
  const auto refused = embed(more);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.failure, llm::FailureKind::budget);
  EXPECT_EQ(fake.request_count(), sent);

  multi.shutdown();
  work.reset();
  t.join();
}

}  // namespace budget_test
}  // namespace parley::bot::money
