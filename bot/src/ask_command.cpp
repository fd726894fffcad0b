#include "ask_command.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <future>
#include <iostream>
#include <thread>

#include "capabilities_setup.h"
#include "exit_codes.h"
#include "parley/bot/http/curl_multi.h"
#include "parley/bot/llm/client.h"
#include "parley/bot/turn.h"
#include "parley/bot/usage/ledger.h"
#include "parley/capabilities/builtins.h"
#include "parley/capabilities/live_config.h"
#include "parley/capabilities/rate_limiter.h"
#include "parley/prompts/library.h"

namespace parley::bot {

namespace caps = parley::capabilities;
namespace asio = net::asio;

int run_ask(const Config& cfg, const AskOptions& options) {
  auto opened = storage::Store::open(cfg.storage);
  if (!opened) return report_error(opened.error());
  auto& store = **opened;
  prompts::PromptLibrary library(store);
  if (auto seeded = library.seed_defaults(); !seeded) return report_error(seeded.error());

  caps::Registry registry;
  if (auto st = caps::register_builtins(registry); !st.ok()) return report_error(st.error());
  auto caps_config = initial_capabilities(cfg, registry);
  if (!caps_config) return kExitBadInput;
  caps::LiveConfig live(registry, std::move(*caps_config));
  caps::RateLimiter limiter;

  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  std::thread io([&ioc] { ioc.run(); });
  http::CurlMulti multi(ioc.get_executor());
  usage::UsageLedger ledger(store.usage());
  const auto resolved = llm::resolve_llm(cfg.llm, llm::process_env());
  std::unique_ptr<llm::LlmClient> client;
  if (resolved.configured()) client = std::make_unique<llm::LlmClient>(multi, resolved, ledger.observer());

  TurnEngine::Deps deps{store, library, registry, live, limiter, client.get(), resolved.not_configured,
                        SystemClock::instance(), caps::Services{&SystemClock::instance()}};
  TurnOptions turn_options;
  turn_options.deadline = resolved.timeouts.turn;
  TurnEngine engine(std::move(deps), turn_options);

  InboundMessage in;
  in.channel = "console";
  std::string user = options.user;
  if (user.empty()) {
    const char* env_user = std::getenv("USER");  // NOLINT(concurrency-mt-unsafe): start-up only
    user = env_user != nullptr && *env_user != '\0' ? env_user : "console";
  }
  in.author = user;
  in.author_name = user;
  in.conversation = options.conversation.empty() ? "ask-" + user : options.conversation;
  in.text = options.text;

  std::promise<TurnResult> done;
  asio::co_spawn(asio::make_strand(ioc), engine.run(in),
                 [&done](std::exception_ptr e, TurnResult r) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       r.error = Error{ErrorCode::internal, ex.what()};
                     }
                   }
                   done.set_value(std::move(r));
                 });
  TurnResult r = done.get_future().get();

  int rc = kExitOk;
  if (r.error && r.outbox_id == 0) {
    rc = report_error(*r.error);
  } else if (r.duplicate) {
    fmt::print(stderr, "parley: this message was already received; no new reply\n");
  } else {
    // The console "sends" by printing: begin, print, mark sent.
    (void)store.outbox().begin_send(r.outbox_id).get();
    if (options.json) {
      nlohmann::json j = {{"reply", r.reply},
                          {"stop", r.stop},
                          {"command", r.command},
                          {"model", r.model},
                          {"tokens",
                           {{"prompt", r.usage.prompt_tokens},
                            {"completion", r.usage.completion_tokens},
                            {"cached", r.usage.cached_tokens},
                            {"reasoning", r.usage.reasoning_tokens},
                            {"estimated", r.usage.estimated}}},
                          {"cost_usd", r.usage.cost_usd ? nlohmann::json(*r.usage.cost_usd) : nlohmann::json(nullptr)},
                          {"llm_calls", r.llm_calls},
                          {"steps", r.steps},
                          {"latency_ms", static_cast<double>(r.latency.count()) / 1000.0},
                          {"llm_latency_ms", static_cast<double>(r.llm_latency.count()) / 1000.0},
                          {"conversation_id", r.conversation_id},
                          {"message_id", r.message_id},
                          {"reply_id", r.reply_id}};
      std::cout << j.dump(2) << "\n" << std::flush;
    } else {
      std::cout << r.reply << "\n" << std::flush;
    }
    (void)store.outbox().mark_sent(r.outbox_id).get();
    if (r.stop == "llm_error") rc = kExitFailed;
  }
  multi.shutdown();
  work.reset();
  io.join();
  return rc;
}

}  // namespace parley::bot
