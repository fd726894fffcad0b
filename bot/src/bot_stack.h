// BotStack: what a one-process console front end (`parley ask`, `parley chat`) needs to run
// turns on the configured database — the store with its prompts seeded, the capabilities
// (built-ins and their configuration), an io_context with one thread, the curl multi handle,
// the accounting (usage ledger, budgets, alerts), the LLM client (when one is configured) and the TurnEngine over them.
// It takes no instance lock: it works beside a running `parley run`.
//
// Ownership: the stack owns everything it builds; members are declared in dependency order,
// so they are destroyed in reverse. shutdown() (or the destructor) stops the curl handle and
// joins the io thread; whatever runs on the executor must be finished by then.
// Thread safety: the members are as thread-safe as their own types; shutdown() is called once,
// from the thread that built the stack.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "parley/bot/config.h"
#include "parley/bot/http/curl_multi.h"
#include "parley/bot/llm/client.h"
#include "parley/bot/llm/provider.h"
#include "parley/bot/net.h"
#include "parley/bot/turn.h"
#include "parley/bot/usage/accounting.h"
#include "parley/capabilities/builtins.h"
#include "parley/capabilities/live_config.h"
#include "parley/capabilities/rate_limiter.h"
#include "parley/prompts/library.h"
#include "parley/storage/store.h"

namespace parley::bot {

// The console user: `given`, else $USER, else "console".
std::string console_user(const std::string& given);

class BotStack {
 public:
  // Builds the stack; on failure prints what was wrong on stderr and sets `exit_code` (the
  // codes of exit_codes.h), returning null.
  static std::unique_ptr<BotStack> open(const Config& cfg, int& exit_code);

  ~BotStack();
  BotStack(const BotStack&) = delete;
  BotStack& operator=(const BotStack&) = delete;

  // Stops the curl handle, lets the io_context run out and joins its thread. Idempotent.
  void shutdown();

  storage::Store& store() { return *store_; }
  TurnEngine& engine() { return *engine_; }
  capabilities::RateLimiter& limiter() { return limiter_; }
  net::asio::io_context& io() { return ioc_; }
  net::Executor executor() { return ioc_.get_executor(); }
  const llm::ResolvedLlm& llm() const { return resolved_; }
  usage::Accounting& accounting() { return *accounting_; }

 private:
  BotStack() = default;

  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<prompts::PromptLibrary> library_;
  capabilities::Registry registry_;
  std::unique_ptr<capabilities::LiveConfig> live_;
  capabilities::RateLimiter limiter_;
  net::asio::io_context ioc_;
  std::optional<net::asio::executor_work_guard<net::asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  std::unique_ptr<http::CurlMulti> multi_;
  std::unique_ptr<usage::Accounting> accounting_;
  llm::ResolvedLlm resolved_;
  std::unique_ptr<llm::LlmClient> client_;
  std::unique_ptr<TurnEngine> engine_;
  bool shut_down_ = false;
};

}  // namespace parley::bot
