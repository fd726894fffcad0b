#include "parley/bot/money/treasury.h"

#include <fmt/format.h>
#include <unistd.h>

#include "money/prices_embedded.h"
#include "parley/bot/clients/llm/provider.h"

namespace parley::bot::money {

std::shared_ptr<const PriceTable> load_prices(const MoneyOptions& money) {
  if (!money.prices_file.empty()) {
    return std::make_shared<const PriceTable>(PriceTable::load(money.prices_file));
  }
  for (const auto& f : detail::embedded_prices()) {
    if (f.stem == "prices") {
      return std::make_shared<const PriceTable>(
          PriceTable::parse(std::string(f.text), "prices.yaml (built in)"));
    }
  }
  throw PriceError("the built-in price table is missing from this build");
}

Result<std::unique_ptr<Treasury>> Treasury::open(const MoneyOptions& money, storage::Store& store,
                                                 http::CurlMulti* multi, net::Executor executor,
                                                 const parley::Clock& clock) {
  std::unique_ptr<Treasury> a(new Treasury());
  a->money_ = money;
  std::shared_ptr<const PriceTable> prices;
  try {
    prices = load_prices(money);
  } catch (const PriceError& e) {
    return fail(ErrorCode::invalid_argument, e.what());
  }
  a->prices_.store(prices);
  a->alert_store_ =
      std::make_unique<storage::AlertRepository>(store.writes(), store.reads(), clock);
  AlertOptions ao;
  ao.zone = money.zone;
  if (!money.webhook_url_env.empty()) {
    if (auto url = llm::process_env()(money.webhook_url_env); url && !url->empty()) {
      ao.webhook_url = std::move(*url);
    }
  }
  a->alerts_ = std::make_unique<AlertCenter>(*a->alert_store_, clock, ao, multi, executor);
  BudgetOptions bo;
  bo.global_daily = money.daily;
  bo.global_monthly = money.monthly;
  bo.user_daily = money.user_daily;
  bo.user_monthly = money.user_monthly;
  bo.per_turn = money.per_turn;
  bo.soft_percent = money.soft_percent;
  bo.cheaper_role = money.cheaper_role;
  bo.zone = money.zone;
  bo.refuse_unknown_price = money.refuse_unknown_price;
  bo.default_max_tokens = money.default_max_tokens;
  bo.min_max_tokens = money.min_max_tokens;
  bo.alert_daily_spend = money.alert_daily_spend;
  bo.alert_monthly_spend = money.alert_monthly_spend;
  a->budgets_ = std::make_unique<BudgetKeeper>(bo, prices, clock, a->alerts_.get());
  // Alerts name a user as people know them ("http:alice"), not by parley's internal id.
  a->budgets_->name_users([&store](int64_t user_id) {
    auto identity = store.directory().identity_of(user_id);
    return identity ? *identity : std::string();
  });
  if (auto st = a->budgets_->preload(store.reads()); !st.ok()) return fail(st.error());
  // Every process on this database holds its calls' worst cases there: together they cannot
  // pass a cap.
  a->budgets_->share(&store.spend(), fmt::format("pid {}", ::getpid()));
  LedgerOptions lo;
  lo.rate_limit_alert = money.rate_limit_calls;
  lo.rate_limit_window = money.rate_limit_window;
  a->ledger_ = std::make_unique<UsageLedger>(store.usage(), prices, a->alerts_.get(), clock, lo);
  a->store_ = &store;
  a->multi_ = multi;
  a->executor_ = std::move(executor);  // its last use
  a->clock_ = &clock;
  a->desk_ = std::make_unique<Desk>(*a->alert_store_, store.credits(), a->budgets_.get(), nullptr,
                                    "openrouter", clock);
  return a;
}

Status Treasury::reload_prices() {
  if (money_.prices_file.empty()) return {};
  std::shared_ptr<const PriceTable> prices;
  try {
    prices = std::make_shared<const PriceTable>(PriceTable::load(money_.prices_file));
  } catch (const PriceError& e) {
    return fail(ErrorCode::invalid_argument, e.what());
  }
  // Each holder swaps its pointer; what is being priced right now keeps the table it loaded.
  ledger_->set_prices(prices);
  budgets_->set_prices(prices);
  prices_.store(std::move(prices));
  return {};
}

void Treasury::start() {
  if (monitor_) monitor_->start();
}

std::string Treasury::prepare_monitor(const llm::ResolvedLlm& resolved) {
  if (money_.credits == "off") return "credit monitor: off";
  if (multi_ == nullptr || !executor_) {
    return "credit monitor: off (no HTTP client in this process)";
  }
  const auto it = resolved.providers.find("openrouter");
  const bool is_default = resolved.default_provider == "openrouter";
  if (it == resolved.providers.end() || (money_.credits == "auto" && !is_default)) {
    return "credit monitor: off (the default provider is not OpenRouter)";
  }
  if (it->second.api_key.empty()) {
    return fmt::format("credit monitor: off (no OpenRouter key: set {})",
                       it->second.config.api_key_env.empty() ? "OPENROUTER_API_KEY"
                                                             : it->second.config.api_key_env);
  }
  CreditMonitorOptions o;
  o.provider = "openrouter";
  o.base_url = it->second.config.base_url;
  o.api_key = it->second.api_key;
  if (!money_.management_key_env.empty()) {
    if (auto k = llm::process_env()(money_.management_key_env)) o.management_key = std::move(*k);
  }
  o.interval = money_.credits_interval;
  o.every_calls = money_.credits_every_calls;
  o.warning_nanousd = money_.low_balance_warning;
  o.critical_nanousd = money_.low_balance_critical;
  o.runway_hours = money_.runway_hours;
  monitor_ =
      std::make_unique<CreditMonitor>(*executor_, *multi_, store_->credits(), *alerts_, *clock_, o);
  desk_ = std::make_unique<Desk>(*alert_store_, store_->credits(), budgets_.get(), monitor_.get(),
                                 "openrouter", *clock_);
  ledger_->after_attempt([m = monitor_.get()] { m->on_call(); });
  return fmt::format("credit monitor: polling {}/key every {} s and after every {} calls",
                     o.base_url, o.interval.count(), o.every_calls);
}

void Treasury::stop() {
  if (monitor_) monitor_->stop();
}

Treasury::~Treasury() {
  stop();
  if (store_ == nullptr) return;
  // Completions run in commit order on one thread: once this barrier's has run, so have those
  // of every write submitted before it.
  storage::WriteJob barrier;
  barrier.what = "accounting barrier";
  barrier.apply = [](storage::Connection&) -> Result<storage::WriteAck> {
    return storage::WriteAck{0, false};
  };
  auto done = store_->writes().submit_for_future(std::move(barrier));
  (void)done.get();
}

std::unique_ptr<llm::LlmClient> Treasury::make_client(http::CurlMulti& multi,
                                                      const llm::ResolvedLlm& resolved) {
  if (!resolved.configured()) return nullptr;
  return std::make_unique<llm::LlmClient>(multi, resolved, ledger_->observer(), budgets_.get());
}

}  // namespace parley::bot::money
