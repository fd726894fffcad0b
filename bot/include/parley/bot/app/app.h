// App: the process assembled once, for `parley run`, `chat` and `ask` — the store with its
// prompts seeded, the capabilities (built-ins, capabilities.yaml), the io_context and its
// threads, the curl multi handle and web fetcher, the money (Treasury: prices, budgets, ledger,
// alerts, credit monitor), the LLM client, the MCP servers whose tools are capabilities, the
// turn engine, lanes and dispatcher (the Inbox every channel delivers to), the outbox pump and
// the reminder scheduler.
//
// Owning the database: one process serves a database at a time (an advisory lock on
// <db>.lock; two processes on one bot would answer everything twice). `serve` (parley run)
// requires the lock; `chat` takes it when it is free and then fires reminders and sends owed
// replies for its own console; `ask` never takes it. Only the owner runs the background work
// (reminders, outbox pump, credit monitor, capabilities.yaml reload, alert delivery).
//
// Life cycle: open() → add_channel()… → start() → wait() → stop_channels… → shutdown().
// Ownership: the App owns everything it builds; members are declared in dependency order, so
// they are destroyed in reverse. Channels are the caller's, and must outlive shutdown().
// Thread safety: open/add_channel/start/wait/shutdown from the thread that opened the App;
// request_stop() from anywhere.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "parley/bot/channels/channel.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/clients/http/web_fetcher.h"
#include "parley/bot/clients/llm/client.h"
#include "parley/bot/clients/llm/provider.h"
#include "parley/bot/clients/mcp/mcp_servers.h"
#include "parley/bot/config/config.h"
#include "parley/bot/config/config_reloader.h"
#include "parley/bot/config/file_watcher.h"
#include "parley/bot/money/treasury.h"
#include "parley/bot/net.h"
#include "parley/bot/pipeline/dispatcher.h"
#include "parley/bot/pipeline/lanes.h"
#include "parley/bot/pipeline/outbox_pump.h"
#include "parley/bot/pipeline/reminder_scheduler.h"
#include "parley/bot/pipeline/turn.h"
#include "parley/capabilities/builtins.h"
#include "parley/capabilities/live_config.h"
#include "parley/capabilities/rate_limiter.h"
#include "parley/prompts/library.h"
#include "parley/storage/store.h"

namespace parley::bot::app {

class InstanceLock;

enum class Mode {
  serve,  // parley run: owns the database or refuses to start
  chat,   // parley chat: owns it when no parley run does
  ask,    // parley ask: one turn, never owns it
};

// The console user: `given`, else $USER, else "console".
std::string console_user(const std::string& given);
// ~/.parley_history (empty when $HOME is not set).
std::filesystem::path console_history_file();
// Where the console writes files sent with replies: "files" beside the database.
std::filesystem::path console_files_dir(const config::Config& cfg);

class App {
 public:
  // Builds the process; on failure prints what was wrong on stderr and sets `exit_code` (the
  // codes of exit_codes.h), returning null.
  static std::unique_ptr<App> open(const config::Config& cfg, Mode mode, int& exit_code);

  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Starts `channel` delivering to the dispatcher; a channel that can push is also given the
  // outbox's entries nobody waits for (when this process owns the database).
  Status add_channel(channels::Channel& channel);
  // `show` gets one line per new alert raised in this process ("alert warning unknown_price …"),
  // e.g. for a terminal conversation whose log lines go to a file. Before start().
  void on_alert(std::function<void(const std::string& line)> show) {
    show_alert_ = std::move(show);
  }
  // Starts the background work (owner only). (Serve and chat handle signals from open() on:
  // the first SIGINT/SIGTERM calls request_stop(), a second one exits at once.) Ready from here.
  void start();
  // /readyz answers 200 from here on (when the store is healthy): the channels are serving.
  // start() does it too; `parley run` calls it before its ready line, which comes before the
  // console (and so start()) because the console owns the terminal from then on.
  void mark_ready() { ready_ = true; }
  // Asks wait() to return (once; later calls do nothing). Any thread.
  void request_stop(const std::string& why);
  // Blocks until request_stop().
  void wait();
  // Stops the background work, waits up to `grace` for running turns and for `channels`' work
  // in flight (stop them first), then stops the io threads. Idempotent.
  void shutdown(std::chrono::seconds grace = std::chrono::seconds(0),
                const std::vector<channels::Channel*>& channels = {});

  // This process holds the database's instance lock (and runs the background work).
  [[nodiscard]] bool owns_database() const { return lock_ != nullptr; }
  // Accepting work: started and not stopping (/readyz).
  [[nodiscard]] bool ready() const { return ready_.load() && store_->health().ok(); }

  storage::Store& store() { return *store_; }
  pipeline::TurnEngine& engine() { return *engine_; }
  pipeline::Dispatcher& dispatcher() { return *dispatcher_; }
  pipeline::Lanes& lanes() { return *lanes_; }
  money::Treasury& treasury() { return *treasury_; }
  http::CurlMulti& multi() { return *multi_; }
  mcp::McpServers& mcp() { return *mcp_; }
  const capabilities::Registry& registry() const { return registry_; }
  const capabilities::LiveConfig& capabilities() const { return *live_; }
  net::asio::io_context& io() { return ioc_; }
  net::Executor executor() { return ioc_.get_executor(); }
  // The worker beside the io threads (after start()): for work that may take long.
  net::Executor worker() { return workers_->get_executor(); }
  const llm::ResolvedLlm& llm() const { return resolved_; }
  // "mock-model via http://127.0.0.1:5000/v1", or why no LLM is configured.
  [[nodiscard]] std::string llm_line() const;
  // How memory recall works here (words only, or words and meaning through `embed`).
  [[nodiscard]] std::string memory_line() const;
  // What the credit monitor decided (for the banner).
  [[nodiscard]] const std::string& monitor_state() const { return monitor_state_; }

 private:
  // prices.yaml changed: put it in force, or keep the table in force and alert the admins.
  void reload_prices();
  // Once a second (owner): a database that stops taking writes (a full disk, another process's
  // lock, an I/O error) is an alert; while it fails, a small write probes it, so that it is
  // found working again without waiting for a message (which readiness keeps away), and that
  // is an alert too, with how long it lasted.
  net::asio::awaitable<void> watch_storage();
  App(config::Config cfg, Mode mode);
  Status build();
  void handle_signals();

  const config::Config cfg_;
  const Mode mode_;
  std::unique_ptr<InstanceLock> lock_;
  std::string elsewhere_;  // chat beside a run: where reminders fire instead
  // Channels added that cannot push (HTTP): a reminder set there would never arrive.
  mutable std::mutex silent_mu_;
  std::set<std::string, std::less<>> silent_channels_;  // guarded by silent_mu_
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<prompts::PromptLibrary> library_;
  capabilities::Registry registry_;
  std::unique_ptr<capabilities::LiveConfig> live_;
  capabilities::RateLimiter limiter_;
  net::IoContext ioc_;
  std::optional<net::asio::executor_work_guard<net::asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  // One thread for work too long for an io thread (a report scanning the whole ledger).
  std::optional<net::asio::thread_pool> workers_;
  int64_t stored_before_start_ = 0;  // the last message id when the store opened
  std::unique_ptr<http::CurlMulti> multi_;
  std::unique_ptr<http::WebFetcher> fetcher_;
  std::unique_ptr<mcp::McpServers> mcp_;  // the MCP servers of capabilities.yaml
  std::unique_ptr<money::Treasury> treasury_;
  llm::ResolvedLlm resolved_;
  std::unique_ptr<llm::LlmClient> client_;
  std::unique_ptr<pipeline::MemoryEmbedder> embedder_;    // null: no `embed` role
  std::unique_ptr<pipeline::MemoryExtractor> extractor_;  // null: no extraction here
  std::string monitor_state_;
  std::unique_ptr<pipeline::TurnEngine> engine_;
  std::unique_ptr<pipeline::Lanes> lanes_;
  std::unique_ptr<pipeline::Dispatcher> dispatcher_;
  std::unique_ptr<pipeline::OutboxPump> pump_;
  std::unique_ptr<pipeline::ReminderScheduler> reminders_;
  std::unique_ptr<config::ConfigReloader> reloader_;
  std::unique_ptr<config::FileWatcher>
      prices_watcher_;  // money.prices, when parley.yaml names a file
  std::unique_ptr<net::asio::steady_timer> storage_timer_;
  std::atomic<bool> watch_stopped_{false};
  std::unique_ptr<net::asio::signal_set> signals_;
  std::function<void(const boost::system::error_code&, int)> on_signal_;
  std::atomic<int> signal_count_{0};
  std::atomic<bool> ready_{false};
  std::atomic<bool> stop_once_{false};
  std::promise<void> stop_requested_;
  std::function<void(const std::string&)> show_alert_;
  bool started_ = false;
  bool shut_down_ = false;
};

}  // namespace parley::bot::app
