#include "bot_stack.h"

#include <fmt/format.h>

#include <cstdlib>

#include "capabilities_setup.h"
#include "exit_codes.h"

namespace parley::bot {

namespace caps = parley::capabilities;

std::string console_user(const std::string& given) {
  if (!given.empty()) return given;
  const char* env_user = std::getenv("USER");  // NOLINT(concurrency-mt-unsafe): start-up only
  return env_user != nullptr && *env_user != '\0' ? env_user : "console";
}

std::unique_ptr<BotStack> BotStack::open(const Config& cfg, int& exit_code) {
  std::unique_ptr<BotStack> s(new BotStack());
  auto opened = storage::Store::open(cfg.storage);
  if (!opened) {
    exit_code = report_error(opened.error());
    return nullptr;
  }
  s->store_ = std::move(*opened);
  s->library_ = std::make_unique<prompts::PromptLibrary>(*s->store_);
  if (auto seeded = s->library_->seed_defaults(); !seeded) {
    exit_code = report_error(seeded.error());
    return nullptr;
  }

  if (auto st = caps::register_builtins(s->registry_); !st.ok()) {
    exit_code = report_error(st.error());
    return nullptr;
  }
  auto caps_config = initial_capabilities(cfg, s->registry_);
  if (!caps_config) {
    exit_code = kExitBadInput;
    return nullptr;
  }
  s->live_ = std::make_unique<caps::LiveConfig>(s->registry_, std::move(*caps_config));

  s->work_.emplace(net::asio::make_work_guard(s->ioc_));
  s->io_thread_ = std::thread([&ioc = s->ioc_] { ioc.run(); });
  s->multi_ = std::make_unique<http::CurlMulti>(s->ioc_.get_executor());
  auto accounting = usage::Accounting::open(cfg.money, *s->store_, s->multi_.get(), s->ioc_.get_executor());
  if (!accounting) {
    exit_code = report_error(accounting.error());
    return nullptr;
  }
  s->accounting_ = std::move(*accounting);
  s->resolved_ = llm::resolve_llm(cfg.llm, llm::process_env());
  s->client_ = s->accounting_->make_client(*s->multi_, s->resolved_);

  TurnEngine::Deps deps{*s->store_,
                        *s->library_,
                        s->registry_,
                        *s->live_,
                        s->limiter_,
                        s->client_.get(),
                        s->resolved_.not_configured,
                        SystemClock::instance(),
                        caps::Services{&SystemClock::instance(), nullptr, &s->accounting_->desk()}};
  TurnOptions turn_options;
  turn_options.deadline = s->resolved_.timeouts.turn;
  s->engine_ = std::make_unique<TurnEngine>(std::move(deps), turn_options);
  return s;
}

BotStack::~BotStack() { shutdown(); }

void BotStack::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (multi_) multi_->shutdown();
  work_.reset();
  if (io_thread_.joinable()) io_thread_.join();
}

}  // namespace parley::bot
