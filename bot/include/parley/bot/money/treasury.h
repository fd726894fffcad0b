// Treasury: the money side of one process, built once from parley.yaml's `money:` section —
// the price table, the alerts (AlertCenter over `credit_alerts`), the budgets (BudgetKeeper,
// the LLM client's spend gate), the usage ledger (the client's attempt observer) — and the
// one way the process builds an LlmClient, so that no client exists without its ledger and
// its budgets.
//
// Ownership: owns what it builds; the store, the curl handle and the executor must outlive it.
// Thread safety: the members are as thread-safe as their own types.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/clients/llm/client.h"
#include "parley/bot/money/alerts.h"
#include "parley/bot/money/budget.h"
#include "parley/bot/money/credit_monitor.h"
#include "parley/bot/money/desk.h"
#include "parley/bot/money/ledger.h"
#include "parley/bot/money/options.h"
#include "parley/bot/money/prices.h"
#include "parley/bot/net.h"
#include "parley/storage/alert_repository.h"
#include "parley/storage/store.h"

namespace parley::bot::money {

// The price table parley.yaml names, else the shipped one. Throws PriceError.
std::shared_ptr<const PriceTable> load_prices(const MoneyOptions& money);

class Treasury {
 public:
  // Fails (naming the file and line) when the price table cannot be read.
  static Result<std::unique_ptr<Treasury>> open(
      const MoneyOptions& money, storage::Store& store, http::CurlMulti* multi,
      net::Executor executor, const parley::Clock& clock = SystemClock::instance());

  // Stops the monitor and waits until the store has acknowledged every write this accounting
  // started (usage rows, alerts): their callbacks refer to it.
  ~Treasury();
  Treasury(const Treasury&) = delete;
  Treasury& operator=(const Treasury&) = delete;

  // The LLM client over `resolved`, observed by the ledger and gated by the budgets; null when
  // no LLM is configured.
  std::unique_ptr<llm::LlmClient> make_client(http::CurlMulti& multi,
                                              const llm::ResolvedLlm& resolved);

  // Builds the credit monitor when `money.credits` asks for it (auto: when the default provider
  // is OpenRouter and has a key). Returns what it decided, for the start-up banner. Call before
  // the first LLM call and before desk() is handed out (the desk then reads the monitor).
  std::string prepare_monitor(const llm::ResolvedLlm& resolved);
  // Starts the monitor's polls (after AlertCenter::on_new is set).
  void start();
  // Stops the monitor (no callbacks after it returns). Idempotent.
  void stop();

  [[nodiscard]] const MoneyOptions& config() const { return money_; }
  CreditMonitor* monitor() { return monitor_.get(); }
  // Credits, budgets and alerts for every front end (chat, HTTP, CLI).
  Desk& desk() { return *desk_; }
  // The price table in force (prices.yaml, or the built-in one).
  [[nodiscard]] std::shared_ptr<const PriceTable> prices() const { return prices_.load(); }
  // Reads prices.yaml again (money.prices_file; nothing to do without one) and puts it in force
  // for the next call and admission. A file with problems is refused with them (file:line:
  // column: key: …) and the table in force stays.
  Status reload_prices();
  storage::AlertRepository& alert_store() { return *alert_store_; }
  AlertCenter& alerts() { return *alerts_; }
  BudgetKeeper& budgets() { return *budgets_; }
  UsageLedger& ledger() { return *ledger_; }

 private:
  Treasury() = default;

  MoneyOptions money_;
  std::atomic<std::shared_ptr<const PriceTable>> prices_;
  std::unique_ptr<storage::AlertRepository> alert_store_;
  std::unique_ptr<AlertCenter> alerts_;
  std::unique_ptr<BudgetKeeper> budgets_;
  std::unique_ptr<UsageLedger> ledger_;
  storage::Store* store_ = nullptr;
  http::CurlMulti* multi_ = nullptr;
  std::optional<net::Executor> executor_;
  const parley::Clock* clock_ = nullptr;
  std::unique_ptr<CreditMonitor> monitor_;
  std::unique_ptr<Desk> desk_;
};

}  // namespace parley::bot::money
