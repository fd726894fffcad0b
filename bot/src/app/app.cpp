#include "parley/bot/app/app.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>

#include "app/capabilities_setup.h"
#include "app/exit_codes.h"
#include "app/instance_lock.h"
#include "pipeline/await_write.h"

namespace parley::bot::app {

namespace asio = net::asio;
namespace caps = parley::capabilities;

std::string console_user(const std::string& given) {
  if (!given.empty()) return given;
  const char* env_user = std::getenv("USER");  // NOLINT(concurrency-mt-unsafe): start-up only
  return env_user != nullptr && *env_user != '\0' ? env_user : "console";
}

std::filesystem::path console_history_file() {
  const char* home = std::getenv("HOME");  // NOLINT(concurrency-mt-unsafe): start-up only
  if (home == nullptr || *home == '\0') return {};
  return std::filesystem::path(home) / ".parley_history";
}

std::filesystem::path console_files_dir(const config::Config& cfg) {
  std::error_code ec;
  auto db = std::filesystem::absolute(cfg.storage.path, ec);
  if (ec) db = cfg.storage.path;
  return db.parent_path() / "files";
}

App::App(config::Config cfg, Mode mode) : cfg_(std::move(cfg)), mode_(mode) {}

std::unique_ptr<App> App::open(const config::Config& cfg, Mode mode, int& exit_code) {
  std::unique_ptr<App> app(new App(cfg, mode));
  if (mode != Mode::ask) {
    auto lock = std::make_unique<InstanceLock>();
    if (auto st = lock->acquire(cfg.storage.path); st.ok()) {
      app->lock_ = std::move(lock);
    } else if (mode == Mode::serve || st.error().code != ErrorCode::already_exists) {
      fmt::print(stderr, "parley: {}\n", st.error().message);
      exit_code = app::kExitFailed;
      return nullptr;
    } else {
      app->elsewhere_ =
          fmt::format("through the `parley run` (pid {}) serving this database", lock->holder());
    }
  }
  if (auto st = app->build(); !st.ok()) {
    exit_code = st.error().code == ErrorCode::invalid_argument && st.error().message.empty()
                    ? app::kExitBadInput
                    : app::report_error(st.error());
    return nullptr;
  }
  if (mode != Mode::ask) app->handle_signals();
  return app;
}

void App::handle_signals() {
  // Graceful shutdown: the first SIGINT/SIGTERM stops accepting and lets running turns finish
  // (up to the grace period); a second one exits at once (every acknowledged write is already
  // committed). Installed before any channel accepts, so that a signal arriving as soon as one
  // does (a supervisor stopping a process that has just said it is ready) is never the
  // default action, which would end the process without its drain.
  // A write to a pipe or socket whose reader is gone (a terminal's pipe closed, a client that
  // went away) is an error to handle where it happens, never the end of the process.
  (void)std::signal(SIGPIPE, SIG_IGN);
  // SIGHUP, an operator's "reload": capabilities.yaml and prices.yaml are read again now (a
  // running bot also reloads them when they change), rather than the process ending.
  signals_ = std::make_unique<asio::signal_set>(ioc_, SIGINT, SIGTERM, SIGHUP);
  on_signal_ = [this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reading the configuration files again");
      if (reloader_) reloader_->trigger();
      if (prices_watcher_) prices_watcher_->trigger();
      signals_->async_wait(on_signal_);
      return;
    }
    if (signal_count_.fetch_add(1) == 0) {
      request_stop(sig == SIGINT ? "SIGINT" : "SIGTERM");
      signals_->async_wait(on_signal_);
    } else {
      spdlog::warn("second signal: stopping now");
      std::_Exit(app::kExitFailed);
    }
  };
  signals_->async_wait(on_signal_);
}

Status App::build() {
  auto opened = storage::Store::open(cfg_.storage);
  if (!opened) return fail(opened.error());
  store_ = std::move(*opened);
  // Every message stored so far came before this start: only those can be owed by the last stop.
  auto last = store_->messages().last_id();
  if (!last) return fail(last.error());
  stored_before_start_ = *last;
  library_ = std::make_unique<prompts::PromptLibrary>(*store_);
  if (auto seeded = library_->seed_defaults(); !seeded) return fail(seeded.error());
  if (owns_database()) {
    if (auto settled = store_->outbox().settle_after_restart(); settled.ok() && *settled > 0) {
      spdlog::warn(
          "{} repl{} may have been sent just before the last stop: marked unknown, not sent again",
          *settled, *settled == 1 ? "y" : "ies");
    }
    // Files sent with replies (charts, exports) are served under /files/<token> for a while,
    // then deleted, so the database does not keep every chart ever drawn; one still owed stays.
    constexpr int64_t kFileRetentionMs = int64_t{30} * 86'400'000;
    const int64_t files_before = SystemClock::instance().now_ms() - kFileRetentionMs;
    if (auto pruned = store_->outbox().prune_files(files_before).get(); !pruned) {
      spdlog::warn("outbox: deleting old files failed: {}", pruned.error().describe());
    } else if (pruned->row_id > 0) {
      spdlog::info("outbox: {} file(s) of replies older than 30 days deleted", pruned->row_id);
    }
    // Memories a user forgot are kept for a grace period (an undo, a mistaken /forget), then
    // purged with their vectors; the trail (memory_events) stays.
    constexpr int64_t kForgottenGraceMs = int64_t{30} * 86'400'000;
    const int64_t before = SystemClock::instance().now_ms() - kForgottenGraceMs;
    if (auto purged = store_->memories().purge_forgotten(before).get(); !purged) {
      spdlog::warn("memory: purging forgotten memories failed: {}", purged.error().describe());
    } else if (purged->row_id > 0) {
      spdlog::info("memory: {} memor{} forgotten over 30 days ago purged", purged->row_id,
                   purged->row_id == 1 ? "y" : "ies");
    }
  }

  if (auto st = caps::register_builtins(registry_); !st.ok()) return st;
  auto caps_config = app::initial_capabilities(cfg_, registry_);
  // Each problem is printed already; an empty message says so.
  if (!caps_config) return fail(ErrorCode::invalid_argument, "");
  live_ = std::make_unique<caps::LiveConfig>(registry_, std::move(*caps_config));

  work_.emplace(asio::make_work_guard(ioc_));
  const unsigned n = mode_ == Mode::serve ? std::max(2u, std::thread::hardware_concurrency()) : 1u;
  for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { ioc_.run(); });
  workers_.emplace(1);
  // Idle connections kept for reuse: enough for steady traffic; after a burst of thousands of
  // waiting turns, the rest close instead of holding a descriptor and buffers each.
  multi_ = std::make_unique<http::CurlMulti>(ioc_.get_executor(),
                                             http::CurlMulti::Options{.max_connects = 256});
  // A fetched page completes on the worker: web_fetch reduces its HTML (up to megabytes,
  // through libxml2) there, not on an io thread; the tool call resumes on its own executor.
  fetcher_ = std::make_unique<http::WebFetcher>(*multi_, worker());
  // The MCP servers start now, in every mode; their tools join the registry as each is ready.
  // `parley ask` answers one message: it waits for them (each within its initialize timeout).
  mcp_ = std::make_unique<mcp::McpServers>(ioc_.get_executor(), *multi_, registry_);
  mcp_->apply(*live_->current());
  if (mode_ == Mode::ask) mcp_->wait_settled(std::chrono::seconds(15));
  auto treasury = money::Treasury::open(cfg_.money, *store_, multi_.get(), ioc_.get_executor());
  if (!treasury) return fail(treasury.error());
  treasury_ = std::move(*treasury);
  resolved_ = llm::resolve_llm(cfg_.llm, llm::process_env());
  client_ = treasury_->make_client(*multi_, resolved_);
  // Credits are polled by the process that owns the database (one poller per account).
  if (owns_database()) monitor_state_ = treasury_->prepare_monitor(resolved_);

  caps::Services services{&SystemClock::instance(), fetcher_.get(), &treasury_->desk(), {}};
  services.reminders_fire_elsewhere = elsewhere_;
  // Set before serving starts and never reset while it runs.
  services.reminders_changed = [this] {
    if (reminders_) reminders_->poke();
  };
  services.reminders_reach = [this](const std::string& channel) {
    std::lock_guard lock(silent_mu_);
    return silent_channels_.count(channel) == 0;
  };
  // Memory recall by meaning as well as words, when an `embed` role is configured.
  embedder_ = pipeline::MemoryEmbedder::make(*store_, client_.get(), cfg_.memory.dimensions);
  if (embedder_) {
    spdlog::info("memory: recall by words and by meaning ({}, {} dimensions)", embedder_->model(),
                 embedder_->dimensions());
    services.memory_written = [this](int64_t user, int64_t id, const std::string& text) {
      embedder_->embed_memory(id, text, user, ioc_.get_executor());
    };
  }
  // Memories without a vector of this model (imports, a model change) are embedded in the
  // background by the process that owns the database.
  if (embedder_ && mode_ == Mode::serve && owns_database()) {
    asio::co_spawn(ioc_, embedder_->backfill(), asio::detached);
  }
  pipeline::TurnEngine::Deps deps{*store_,
                                  *library_,
                                  registry_,
                                  *live_,
                                  limiter_,
                                  client_.get(),
                                  resolved_.not_configured,
                                  SystemClock::instance(),
                                  std::move(services)};
  deps.embedder = embedder_.get();
  // Memories from conversations, by the process that serves them (not `parley ask`).
  if (client_ && cfg_.memory.extraction.enabled && mode_ == Mode::serve) {
    pipeline::MemoryExtractor::Deps xdeps{*store_,         *client_,
                                          *library_,       SystemClock::instance(),
                                          embedder_.get(), deps.services.memory_written};
    extractor_ = std::make_unique<pipeline::MemoryExtractor>(
        std::move(xdeps), cfg_.memory.extraction, ioc_.get_executor());
    deps.extractor = extractor_.get();
  }
  pipeline::TurnOptions turn_options;
  turn_options.deadline = resolved_.timeouts.turn;
  turn_options.owed_window = cfg_.answer_unanswered_within;
  engine_ = std::make_unique<pipeline::TurnEngine>(std::move(deps), turn_options);
  lanes_ = std::make_unique<pipeline::Lanes>(ioc_.get_executor(), *engine_, cfg_.lanes);
  dispatcher_ = std::make_unique<pipeline::Dispatcher>(*store_, *lanes_, cfg_.access, limiter_);
  if (owns_database()) {
    pump_ = std::make_unique<pipeline::OutboxPump>(ioc_.get_executor(), *store_, cfg_.outbox_retry);
    dispatcher_->on_push([this](int64_t id) { pump_->push(id); });
  }
  // New alerts are shown where asked (on_alert), and the owner also puts them in the outbox of
  // the admin conversations named in money.alerts.deliver_to.
  treasury_->alerts().on_new([this,
                              targets = cfg_.money.deliver_to](const storage::AlertRecord& a) {
    if (show_alert_) show_alert_("alert " + money::alert_line(a));
    if (!pump_) return;
    for (const auto& target : targets) {
      const auto colon = target.find(':');
      std::string channel = target.substr(0, colon);
      std::string id = target.substr(colon + 1);
      const std::string body = "alert " + money::alert_line(a) +
                               (a.acked_at ? "" : fmt::format(" — /alerts ack {}", a.id));
      store_->directory().ensure_conversation(
          channel, id, "alerts", [this, channel, id, body](Result<storage::WriteAck> conv) {
            if (!conv) {
              spdlog::error("alert delivery to {}:{}: {}", channel, id, conv.error().describe());
              return;
            }
            store_->outbox().add(conv->row_id, channel, id, body,
                                 [this](Result<storage::WriteAck> added) {
                                   if (added) pump_->push(added->row_id);
                                 });
          });
    }
  });
  if (!owns_database()) return {};
  // Reminders fire on time (overdue ones at once, marked late) into their conversation's outbox.
  reminders_ = std::make_unique<pipeline::ReminderScheduler>(
      ioc_.get_executor(), *store_, SystemClock::instance(),
      [this](const caps::DueReminder&, int64_t outbox_id) { pump_->push(outbox_id); });
  if (!cfg_.capabilities_file.empty()) {
    // A rejected edit is an alert for the admins (once per day per distinct first problem).
    reloader_ = std::make_unique<config::ConfigReloader>(
        ioc_.get_executor(), cfg_.capabilities_file, *live_,
        [this, file = cfg_.capabilities_file.string()](const caps::ConfigCheck& check) {
          const std::string first =
              check.problems.empty() ? std::string("invalid") : check.problems.front().describe();
          treasury_->alerts().raise(
              {"config_rejected", money::Severity::warning, first.substr(0, 300), "",
               fmt::format("{}: an edit was rejected ({} problem{}; first: {}); the last good "
                           "configuration stays in force",
                           file, check.problems.size(), check.problems.size() == 1 ? "" : "s",
                           first),
               static_cast<double>(check.problems.size()), std::nullopt, "problems"});
        });
    // MCP servers follow the file: added ones start, removed ones stop, changed ones restart.
    reloader_->on_applied([this](const caps::CapabilitiesConfig& config) { mcp_->apply(config); });
  }
  if (!cfg_.money.prices_file.empty()) {
    prices_watcher_ = std::make_unique<config::FileWatcher>(
        ioc_.get_executor(), cfg_.money.prices_file, [this] { reload_prices(); });
  }
  return {};
}

asio::awaitable<void> App::watch_storage() {
  std::optional<int64_t> failing_since;
  std::string first_error;
  // While writes fail, a write as small as any probes the database each second, so that it is
  // found working again without a message (which readiness keeps away).
  std::function<void(storage::WriteCallback)> probe = [this](storage::WriteCallback done) {
    store_->channel_state().put("parley", "storage_probe",
                                std::to_string(SystemClock::instance().now_ms()), std::move(done));
  };
  for (;;) {
    storage_timer_->expires_after(std::chrono::seconds(1));
    boost::system::error_code ec;
    co_await storage_timer_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || watch_stopped_.load()) co_return;
    auto health = store_->health();
    if (failing_since) {
      (void)co_await pipeline::await_write(probe);
      health = store_->health();
    }
    const int64_t now = SystemClock::instance().now_ms();
    // A WAL a long reader keeps from resetting grows with every write: reported, once a day.
    if (cfg_.wal_alert_bytes > 0 && health.wal_bytes > cfg_.wal_alert_bytes) {
      treasury_->alerts().raise(
          {"wal_large", money::Severity::warning, "", "",
           fmt::format("the database's WAL is {} MiB (storage.wal_alert_mib: {}): a long read "
                       "transaction, likely another process's, keeps checkpoints from resetting "
                       "it ({} checkpoint(s) found it busy); it shrinks back once that ends",
                       health.wal_bytes >> 20, cfg_.wal_alert_bytes >> 20, health.checkpoints_busy),
           static_cast<double>(health.wal_bytes >> 20),
           static_cast<double>(cfg_.wal_alert_bytes >> 20), "MiB"});
    }
    // A slow or hanging disk: every write, so every message's acknowledgement, waits for it.
    // Reported once a day; /healthz shows the last commit's time.
    if (cfg_.slow_commit.count() > 0 &&
        health.queue.last_commit_latency_us > cfg_.slow_commit.count() * 1000) {
      const int64_t ms = health.queue.last_commit_latency_us / 1000;
      treasury_->alerts().raise(
          {"storage_slow", money::Severity::warning, "", "",
           fmt::format("a database commit took {} ms (storage.slow_commit_ms: {}): the disk is "
                       "slow, so messages are acknowledged late; nothing is lost",
                       ms, cfg_.slow_commit.count()),
           static_cast<double>(ms), static_cast<double>(cfg_.slow_commit.count()), "ms"});
    }
    if (health.queue.last_batch_failed && !failing_since) {
      failing_since = now;
      first_error = health.queue.last_error;
      treasury_->alerts().raise(
          {"storage_failing", money::Severity::critical, "", "",
           fmt::format("the database takes no writes ({}): messages are refused (HTTP 503) "
                       "until it does; nothing acknowledged is lost",
                       first_error.substr(0, 200)),
           std::nullopt, std::nullopt, ""});
    } else if (!health.queue.last_batch_failed && failing_since) {
      const int64_t seconds = (now - *failing_since) / 1000;
      treasury_->alerts().raise(
          {"storage_recovered", money::Severity::warning, "", "",
           fmt::format("the database takes writes again after {} s of failures (first: {})",
                       seconds, first_error.substr(0, 200)),
           static_cast<double>(seconds), std::nullopt, "s"});
      spdlog::info("storage: writes work again after {} s", seconds);
      failing_since.reset();
    }
  }
}

void App::reload_prices() {
  const std::string file = cfg_.money.prices_file.string();
  if (auto st = treasury_->reload_prices(); !st.ok()) {
    const std::string& problem = st.error().message;  // names file:line:column and the key
    spdlog::error("{}", problem);
    spdlog::error("{}: the edit was rejected; the prices in force stay", file);
    treasury_->alerts().raise(
        {"config_rejected", money::Severity::warning, problem.substr(0, 300), "",
         fmt::format("{}: an edit was rejected ({}); the prices in force stay", file, problem), 1.0,
         std::nullopt, "problems"});
    return;
  }
  const auto prices = treasury_->prices();
  spdlog::info("{}: reloaded; {} model prices (version {}) in force from the next call", file,
               prices->entries().size(), prices->version().empty() ? "unnamed" : prices->version());
}

Status App::add_channel(channels::Channel& channel) {
  if (!channel.can_push()) {
    std::lock_guard lock(silent_mu_);
    silent_channels_.emplace(channel.name());
  }
  if (auto st = channel.start(*dispatcher_); !st.ok()) return st;
  if (pump_) pump_->add(channel);
  return {};
}

void App::start() {
  if (started_) return;
  started_ = true;
  if (owns_database()) {
    if (reloader_) {
      if (auto st = reloader_->start(); !st.ok()) {
        spdlog::warn("{} will not be reloaded while running: {}", cfg_.capabilities_file.string(),
                     st.error().message);
        reloader_.reset();
      }
    }
    if (prices_watcher_) {
      if (auto st = prices_watcher_->start(); !st.ok()) {
        spdlog::warn("{} will not be reloaded while running: {}", cfg_.money.prices_file.string(),
                     st.error().message);
        prices_watcher_.reset();
      }
    }
    reminders_->start();
    treasury_->start();
    pump_->start();
    storage_timer_ = std::make_unique<asio::steady_timer>(ioc_);
    asio::co_spawn(ioc_, watch_storage(), asio::detached);
    // Messages the last stop left stored but unanswered are answered now, once.
    if (cfg_.answer_unanswered_within.count() > 0) {
      asio::co_spawn(
          ioc_,
          dispatcher_->answer_unanswered(cfg_.answer_unanswered_within, SystemClock::instance(),
                                         stored_before_start_),
          [](const std::exception_ptr& e, size_t answered) {
            if (e) {
              spdlog::error("recovery: answering unanswered messages stopped on an exception");
            } else if (answered > 0) {
              spdlog::info("recovery: {} unanswered message(s) answered", answered);
            }
          });
    }
  }
  ready_ = true;
}

void App::request_stop(const std::string& why) {
  if (stop_once_.exchange(true)) return;
  if (!why.empty()) spdlog::info("{}: stopping (finishing running turns)", why);
  stop_requested_.set_value();
}

void App::wait() { stop_requested_.get_future().wait(); }

void App::shutdown(std::chrono::seconds grace, const std::vector<channels::Channel*>& channels) {
  if (shut_down_) return;
  shut_down_ = true;
  ready_ = false;
  if (reloader_) reloader_->stop();
  if (prices_watcher_) prices_watcher_->stop();
  watch_stopped_ = true;
  if (storage_timer_) asio::post(ioc_, [this] { storage_timer_->cancel(); });
  if (reminders_) reminders_->stop();
  if (treasury_) treasury_->stop();
  if (pump_) pump_->stop();
  const auto busy = [&] {
    size_t n = lanes_ ? lanes_->active() : 0;
    for (const auto* c : channels) n += c->in_flight();
    return n;
  };
  const auto grace_end = std::chrono::steady_clock::now() + grace;
  while (busy() > 0 && std::chrono::steady_clock::now() < grace_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (lanes_ && lanes_->active() > 0) {
    spdlog::warn("{} turn(s) still running at the end of the grace period", lanes_->active());
  }
  // Conversations waiting to be read for memories are read now, within what is left of the
  // grace period.
  if (extractor_ && std::chrono::steady_clock::now() < grace_end) {
    auto flushed = std::make_shared<std::promise<void>>();
    auto done = flushed->get_future();
    asio::co_spawn(ioc_, extractor_->flush(grace_end),
                   [flushed](const std::exception_ptr&) { flushed->set_value(); });
    done.wait_until(grace_end);
  }
  // MCP servers stop before the multi handle their HTTP sessions end through (a stdio child
  // has its grace after SIGTERM).
  if (mcp_) mcp_->stop(std::chrono::seconds(5));
  if (multi_) multi_->shutdown();
  if (signals_) asio::post(ioc_, [this] { signals_->cancel(); });
  work_.reset();
  // The owner stops at once (what is still running had its grace period; timers of the
  // background work may still be armed); ask and a chat beside a run let the io_context run
  // out, so that a turn's last writes are acknowledged.
  if (owns_database()) ioc_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  if (workers_) {
    workers_->stop();
    workers_->join();
  }
  // What a stopped io_context still holds (a memory extraction's coroutine, a turn past the
  // grace period, the completions of transfers still open) is destroyed now, while the
  // services its frames refer to still exist.
  // The writes queued before have run first (their acknowledgements are posted to it).
  if (store_) {
    (void)store_->writes()
        .submit(
            [](storage::Connection&) -> Result<storage::WriteAck> { return storage::WriteAck{}; },
            {}, "shutdown barrier")
        .wait();
  }
  if (multi_) multi_->close_now();
  // The worker's queue, too (close_now() posted the web fetches' completions there).
  workers_.reset();
  ioc_.destroy_pending();
}

App::~App() { shutdown(); }

std::string App::memory_line() const {
  if (!embedder_) return pipeline::memory_recall_line(resolved_);
  return fmt::format("recall by words and meaning ({}, {} dimensions)", embedder_->model(),
                     embedder_->dimensions());
}

std::string App::llm_line() const {
  if (!resolved_.configured()) return resolved_.not_configured;
  const auto& model = resolved_.roles.at(resolved_.default_role).front();
  const auto provider = resolved_.providers.find(model.provider);
  if (provider == resolved_.providers.end()) {
    return fmt::format("{} via {}", model.model, model.provider);
  }
  // The endpoint actually used (PARLEY_LLM_BASE_URL may point elsewhere), without userinfo.
  std::string url = provider->second.config.base_url;
  if (const auto scheme = url.find("://"); scheme != std::string::npos) {
    const auto host_end = url.find('/', scheme + 3);
    const auto at = url.rfind('@', host_end);
    if (at != std::string::npos && at > scheme) url.erase(scheme + 3, at - scheme - 2);
  }
  return fmt::format("{} via {} ({})", model.model, model.provider, url);
}

}  // namespace parley::bot::app
