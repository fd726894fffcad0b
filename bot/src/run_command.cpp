#include "run_command.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <thread>

#include "bot_stack.h"
#include "capabilities_setup.h"
#include "exit_codes.h"
#include "parley/bot/money_pages.h"
#include "parley/bot/channels/console.h"
#include "parley/bot/channels/http_server.h"
#include "parley/bot/config_reloader.h"
#include "parley/bot/http/curl_multi.h"
#include "parley/bot/http/web_fetcher.h"
#include "parley/bot/dispatcher.h"
#include "parley/bot/lanes.h"
#include "parley/bot/reminder_scheduler.h"
#include "parley/bot/llm/client.h"
#include "parley/bot/report.h"
#include "parley/bot/turn.h"
#include "parley/bot/usage/accounting.h"
#include "parley/capabilities/builtins.h"
#include "parley/capabilities/live_config.h"
#include "parley/capabilities/rate_limiter.h"
#include "parley/prompts/library.h"

#ifndef PARLEY_VERSION
#define PARLEY_VERSION "0.0.0"
#endif

namespace parley::bot {

namespace asio = net::asio;
namespace caps = parley::capabilities;

namespace {

// One serving process per database: two processes on one bot account is the classic cause of
// duplicate replies. An advisory lock on <db>.lock, released by the kernel when the process
// ends (also by kill -9). The file holds the pid for the message.
class InstanceLock {
 public:
  ~InstanceLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status acquire(const std::filesystem::path& db) {
    path_ = db.string() + ".lock";
    if (db.has_parent_path()) std::filesystem::create_directories(db.parent_path());
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      return fail(ErrorCode::unavailable, fmt::format("cannot open {}: {}", path_, std::strerror(errno)));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char pid[32] = {};
      const auto n = ::pread(fd_, pid, sizeof pid - 1, 0);
      const std::string who = n > 0 ? std::string(pid, static_cast<size_t>(n)) : std::string("?");
      return fail(ErrorCode::already_exists,
                  fmt::format("another parley (pid {}) is already serving {}; two processes on one "
                              "bot would answer every message twice. Stop it first, or use "
                              "`parley ask` beside it.",
                              who.substr(0, who.find('\n')), db.string()));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0) (void)::pwrite(fd_, pid.data(), pid.size(), 0);
    return {};
  }

 private:
  std::string path_;
  int fd_ = -1;
};

Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return fail(ErrorCode::invalid_argument, fmt::format("--http {}: expected HOST:PORT", listen));
  }
  int port = -1;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535) {
    return fail(ErrorCode::invalid_argument, fmt::format("--http {}: the port must be 0-65535", listen));
  }
  return std::pair<std::string, uint16_t>{listen.substr(0, colon), static_cast<uint16_t>(port)};
}

nlohmann::json turn_json(const TurnResult& r) {
  return {{"reply", r.reply},
          {"duplicate", r.duplicate},
          {"stop", r.stop},
          {"command", r.command},
          {"primary", r.primary},
          {"model", r.model},
          {"conversation_id", r.conversation_id},
          {"message_id", r.message_id},
          {"tokens",
           {{"prompt", r.usage.prompt_tokens},
            {"completion", r.usage.completion_tokens},
            {"estimated", r.usage.estimated}}},
          {"cost_usd", r.usage.cost_usd ? nlohmann::json(*r.usage.cost_usd) : nlohmann::json(nullptr)},
          {"steps", r.steps},
          {"latency_ms", static_cast<double>(r.latency.count()) / 1000.0},
          {"llm_latency_ms", static_cast<double>(r.llm_latency.count()) / 1000.0}};
}

}  // namespace

int run_bot(const Config& cfg, const RunOptions& options) {
  InstanceLock lock;
  if (auto st = lock.acquire(cfg.storage.path); !st.ok()) {
    fmt::print(stderr, "parley: {}\n", st.error().message);
    return kExitFailed;
  }
  const auto started = std::chrono::steady_clock::now();
  auto opened = storage::Store::open(cfg.storage);
  if (!opened) return report_error(opened.error());
  auto& store = **opened;
  prompts::PromptLibrary library(store);
  if (auto seeded = library.seed_defaults(); !seeded) return report_error(seeded.error());
  if (auto settled = store.outbox().settle_after_restart(); settled.ok() && *settled > 0) {
    spdlog::warn("{} repl{} may have been sent just before the last stop: marked unknown, not sent again",
                 *settled, *settled == 1 ? "y" : "ies");
  }

  caps::Registry registry;
  if (auto st = caps::register_builtins(registry); !st.ok()) return report_error(st.error());
  auto caps_config = initial_capabilities(cfg, registry);
  if (!caps_config) return kExitBadInput;
  caps::LiveConfig live(registry, std::move(*caps_config));
  caps::RateLimiter limiter;

  const unsigned threads = std::max(2u, std::thread::hardware_concurrency());
  asio::io_context ioc(static_cast<int>(threads));
  auto work = asio::make_work_guard(ioc);
  // Idle connections kept for reuse: enough for steady traffic; after a burst of thousands of
  // waiting turns, the rest close instead of holding a descriptor and buffers each.
  http::CurlMulti multi(ioc.get_executor(), http::CurlMulti::Options{.max_connects = 256});
  http::WebFetcher fetcher(multi, ioc.get_executor());
  auto accounting = usage::Accounting::open(cfg.money, store, &multi, ioc.get_executor());
  if (!accounting) return report_error(accounting.error());
  usage::Accounting& money = **accounting;
  const auto resolved = llm::resolve_llm(cfg.llm, llm::process_env());
  std::unique_ptr<llm::LlmClient> client = money.make_client(multi, resolved);

  const std::string monitor_state = money.prepare_monitor(resolved);
  caps::Services services{&SystemClock::instance()};
  services.http = &fetcher;
  services.money = &money.desk();
  TurnEngine::Deps deps{store, library, registry, live, limiter, client.get(), resolved.not_configured,
                        SystemClock::instance(), services};
  TurnOptions turn_options;
  turn_options.deadline = resolved.timeouts.turn;
  TurnEngine engine(std::move(deps), turn_options);
  LaneOptions lane_options;
  lane_options.debounce = cfg.lanes.debounce;
  lane_options.max_wait = cfg.lanes.max_wait;
  Lanes lanes(ioc.get_executor(), engine, lane_options);
  Dispatcher dispatcher(store, lanes, cfg.access, limiter);
  OutboxPump pump(ioc.get_executor(), store);
  // New alerts also go to the admin conversations named in money.alerts.deliver_to.
  money.alerts().on_new([&store, &pump, targets = cfg.money.deliver_to](const storage::AlertRecord& a) {
    for (const auto& target : targets) {
      const auto colon = target.find(':');
      std::string channel = target.substr(0, colon);
      std::string id = target.substr(colon + 1);
      const std::string body = "alert " + usage::alert_line(a) + (a.acked_at ? "" : fmt::format(" — /alerts ack {}", a.id));
      store.directory().ensure_conversation(
          channel, id, "alerts", [&store, &pump, channel, id, body](Result<storage::WriteAck> conv) {
            if (!conv) {
              spdlog::error("alert delivery to {}:{}: {}", channel, id, conv.error().describe());
              return;
            }
            store.outbox().add(conv->row_id, channel, id, body, [&pump](Result<storage::WriteAck> added) {
              if (added) pump.push(added->row_id);
            });
          });
    }
  });

  std::unique_ptr<ConfigReloader> reloader;
  if (!cfg.capabilities_file.empty()) {
    // A rejected edit is an alert for the admins (once per day per distinct first problem).
    reloader = std::make_unique<ConfigReloader>(
        ioc.get_executor(), cfg.capabilities_file, live, [&money, file = cfg.capabilities_file.string()](const caps::ConfigCheck& check) {
          const std::string first = check.problems.empty() ? std::string("invalid") : check.problems.front().describe();
          money.alerts().raise({"config_rejected", usage::Severity::warning, first.substr(0, 300), "",
                                fmt::format("{}: an edit was rejected ({} problem{}; first: {}); the last good "
                                            "configuration stays in force",
                                            file, check.problems.size(), check.problems.size() == 1 ? "" : "s", first),
                                static_cast<double>(check.problems.size()), std::nullopt, "problems"});
        });
    if (auto st = reloader->start(); !st.ok()) {
      spdlog::warn("{} will not be reloaded while running: {}", cfg.capabilities_file.string(),
                   st.error().message);
      reloader.reset();
    }
  }

  // The HTTP channel.
  auto listen = parse_listen(options.http_listen.empty() ? cfg.http.listen : options.http_listen);
  if (!listen) return report_error(listen.error());
  channels::HttpServerOptions http_options;
  http_options.host = listen->first;
  http_options.port = listen->second;
  http_options.pages = [&money, &store](const channels::PageRequest& pr) { return money_page(pr, money, store); };
  if (!cfg.http.token_env.empty()) {
    if (const char* token = std::getenv(cfg.http.token_env.c_str())) http_options.bearer_token = token;  // NOLINT(concurrency-mt-unsafe)
  }
  std::atomic<bool> ready{false};
  channels::HttpServer http_server(
      ioc.get_executor(), http_options,
      [&](channels::MessageRequest req) -> asio::awaitable<channels::MessageResponse> {
        InboundMessage in;
        in.channel = "http";
        in.platform_id = req.id;
        in.conversation = req.conversation;
        in.author = req.user;
        in.author_name = req.user;
        in.text = req.text;
        in.on_text = req.emit;
        const TurnResult r = co_await dispatcher.deliver(in);
        if (r.refused) {
          channels::MessageResponse refused;
          if (r.stop == "rate_limited") {
            refused.status = 429;
            refused.headers.emplace_back("Retry-After", std::to_string(r.retry_after.count()));
          } else {
            refused.status = 403;
          }
          // The sender was already told (once per window, or once ever): a short reason only.
          std::string why = r.reply;
          if (why.empty()) {
            why = r.stop == "rate_limited" ? fmt::format("rate limited: send again in {} s", r.retry_after.count())
                                           : std::string("not allowed");
          }
          refused.body = {{"error", why}, {"stop", r.stop}};
          co_return refused;
        }
        if (r.error && r.outbox_id == 0) {
          co_return channels::MessageResponse{500, {{"error", r.error->message}}, {}};
        }
        if (r.outbox_id != 0) {
          // The answer is handed to the connection now: from here on, after a crash it may
          // have been sent.
          co_await dispatcher.sending(r.outbox_id);
          dispatcher.sent(r.outbox_id);
        }
        co_return channels::MessageResponse{200, turn_json(r), {}};
      },
      [&] { return ready.load() && store.health().ok(); });
  if (auto st = http_server.start(); !st.ok()) return report_error(st.error());

  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });

  // The console: the terminal parley runs in, when there is one (or when asked for).
  std::promise<void> stop_requested;
  std::atomic<bool> stop_once{false};
  const std::function<void(const char*)> request_stop = [&](const char* why) {
    if (stop_once.exchange(true)) return;
    spdlog::info("{}: stopping (finishing running turns, up to {} s; a signal again to stop now)", why,
                 options.grace.count());
    stop_requested.set_value();
  };
  const bool terminal = ::isatty(STDIN_FILENO) == 1;
  std::unique_ptr<channels::ConsoleChannel> console;
  if (options.console == RunOptions::Console::on ||
      (options.console == RunOptions::Console::automatic && terminal)) {
    channels::ConsoleOptions co;
    co.user = console_user("");
    co.conversation = "console-" + co.user;
    if (terminal) {
      if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {  // NOLINT(concurrency-mt-unsafe)
        co.history_file = std::filesystem::path(home) / ".parley_history";
      }
      co.quit_lines = {"/quit", "/exit"};
      co.on_eof = [&request_stop] { request_stop("console closed"); };
    }
    console = std::make_unique<channels::ConsoleChannel>(ioc.get_executor(), co);
  }

  // Graceful shutdown: the first SIGINT/SIGTERM stops accepting and lets running turns finish
  // (up to the grace period); a second one exits at once (the store is still closed cleanly:
  // every acknowledged write is already committed).
  std::atomic<int> signals{0};
  asio::signal_set signal_set(ioc, SIGINT, SIGTERM);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (signals.fetch_add(1) == 0) {
          request_stop(sig == SIGINT ? "SIGINT" : "SIGTERM");
          signal_set.async_wait(on_signal);
        } else {
          spdlog::warn("second signal: stopping now");
          std::_Exit(kExitFailed);
        }
      };
  signal_set.async_wait(on_signal);

  // Reminders fire on time (overdue ones at once, marked late) into their conversation's outbox.
  ReminderScheduler reminders(ioc.get_executor(), store, SystemClock::instance(),
                              [&pump](const caps::DueReminder&, int64_t outbox_id) { pump.push(outbox_id); });
  reminders.start();
  money.start();

  ready = true;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  fmt::print("parley {} ready in {} ms: http://{}:{}/v1/messages (database {})\n", PARLEY_VERSION,
             ms.count(), http_options.host, http_server.port(), cfg.storage.path.string());
  fmt::print("llm: {}\n", resolved.configured()
                              ? fmt::format("{} via {}", resolved.roles.at(resolved.default_role).front().model,
                                            resolved.default_provider)
                              : resolved.not_configured);
  fmt::print("{}\n", monitor_state);
  std::fflush(stdout);
  if (console) {
    if (terminal) fmt::print("console: talk to parley here; /help lists commands; Ctrl-D stops it\n");
    std::fflush(stdout);
    if (auto st = console->start(dispatcher); !st.ok()) {
      spdlog::warn("console: {}; serving the other channels", st.error().message);
      console.reset();
    } else {
      pump.add(*console);
    }
  }
  pump.start();

  stop_requested.get_future().wait();
  ready = false;
  http_server.stop();
  if (reloader) reloader->stop();
  reminders.stop();
  money.stop();
  pump.stop();
  if (console) console->stop();
  const auto grace_end = std::chrono::steady_clock::now() + options.grace;
  while ((lanes.active() > 0 || http_server.active_requests() > 0 || (console && console->active() > 0)) &&
         std::chrono::steady_clock::now() < grace_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (lanes.active() > 0) spdlog::warn("{} turn(s) still running at the end of the grace period", lanes.active());
  multi.shutdown();
  signal_set.cancel();
  work.reset();
  ioc.stop();
  for (auto& t : pool) t.join();
  spdlog::info("stopped; closing the database");
  return kExitOk;
}

}  // namespace parley::bot
