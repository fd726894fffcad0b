#include "cli/ask_command.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <future>
#include <iostream>

#include "app/exit_codes.h"
#include "parley/bot/app/app.h"
#include "parley/bot/pipeline/turn.h"

namespace parley::bot::cli {

namespace asio = net::asio;

int run_ask(const config::Config& cfg, const AskOptions& options) {
  int failed = app::kExitFailed;
  auto app = app::App::open(cfg, app::Mode::ask, failed);
  if (!app) return failed;
  auto& engine = app->engine();

  pipeline::InboundMessage in;
  in.channel = "console";
  const std::string user = app::console_user(options.user);
  in.author = user;
  in.author_name = user;
  // The terminal's user, judged by the same access policy as `parley run`'s console (by
  // default an admin); `ask` is local, so a refusal is an error, not a polite reply.
  const auto access = cfg.access.decide(in.channel, in.author);
  if (!access.allowed) {
    fmt::print(
        stderr,
        "parley: the access policy does not admit console:{} (see access: in the configuration)\n",
        user);
    return app::kExitFailed;
  }
  in.admin = access.admin;
  in.conversation = options.conversation.empty() ? "ask-" + user : options.conversation;
  in.text = options.text;

  std::promise<pipeline::TurnResult> done;
  asio::co_spawn(asio::make_strand(app->io()), engine.run(in),
                 [&done](const std::exception_ptr& e, pipeline::TurnResult r) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       r.error = Error{ErrorCode::internal, ex.what()};
                     }
                   }
                   done.set_value(std::move(r));
                 });
  pipeline::TurnResult r = done.get_future().get();

  int rc = app::kExitOk;
  if (r.error && r.outbox_id == 0) {
    rc = app::report_error(*r.error);
  } else if (r.duplicate) {
    fmt::print(stderr, "parley: this message was already received; no new reply\n");
  } else {
    // The console "sends" by printing: begin (committed first, so that a crash after the
    // print never sends it again), print, mark sent.
    if (auto begun = app->store().outbox().begin_send(r.outbox_id).get(); !begun) {
      app->shutdown();
      return app::report_error(begun.error());
    }
    if (options.json) {
      nlohmann::json j = {{"reply", r.reply},
                          {"stop", to_string(r.stop)},
                          {"command", r.command},
                          {"model", r.model},
                          {"tokens",
                           {{"prompt", r.usage.prompt_tokens},
                            {"completion", r.usage.completion_tokens},
                            {"cached", r.usage.cached_tokens},
                            {"reasoning", r.usage.reasoning_tokens},
                            {"estimated", r.usage.estimated}}},
                          {"cost_usd", r.usage.cost_usd ? nlohmann::json(*r.usage.cost_usd)
                                                        : nlohmann::json(nullptr)},
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
    if (auto marked = app->store().outbox().mark_sent(r.outbox_id).get(); !marked) {
      spdlog::error("ask: marking the reply sent failed: {}", marked.error().describe());
    }
    if (r.stop == pipeline::TurnStop::llm_error) rc = app::kExitFailed;
  }
  app->shutdown();
  return rc;
}

}  // namespace parley::bot::cli
