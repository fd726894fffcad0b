#include "parley/bot/usage/ledger.h"

#include <spdlog/spdlog.h>

namespace parley::bot::usage {

storage::UsageRecord UsageLedger::to_record(const llm::CallOptions& options, const llm::Attempt& a) {
  storage::UsageRecord r;
  if (options.conversation_id != 0) r.conversation_id = options.conversation_id;
  if (options.user_id != 0) r.user_id = options.user_id;
  r.purpose = options.purpose;
  r.model_requested = a.model_asked;
  r.model_answered = a.model_answered;
  r.provider = a.provider;
  r.prompt_tokens = a.usage.prompt_tokens;
  r.completion_tokens = a.usage.completion_tokens;
  r.cached_tokens = a.usage.cached_tokens;
  r.reasoning_tokens = a.usage.reasoning_tokens;
  r.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(a.latency).count();
  if (a.usage.cost_usd) {
    r.cost_actual_nanousd = storage::usd_to_nanousd(*a.usage.cost_usd);
    r.cost_source = "actual";
  }
  r.success = a.failure == llm::FailureKind::none;
  if (!r.success) r.error_kind = std::string(llm::to_string(a.failure));
  r.tokens_estimated = a.usage.estimated;
  r.generation_id = a.generation_id;
  return r;
}

llm::AttemptObserver UsageLedger::observer() {
  return [this](const llm::CallOptions& options, const llm::Attempt& attempt) {
    repository_.record(to_record(options, attempt), [this](Result<storage::WriteAck> r) {
      if (r.ok()) {
        written_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      failed_.fetch_add(1, std::memory_order_relaxed);
      spdlog::error("usage ledger: a usage row could not be written: {}", r.error().describe());
    });
  };
}

}  // namespace parley::bot::usage
