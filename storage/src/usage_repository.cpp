#include "parley/storage/usage_repository.h"

#include <cmath>

namespace parley::storage {

int64_t usd_to_nanousd(double usd) noexcept { return std::llround(usd * 1e9); }

WriteJob UsageRepository::make_job(UsageRecord record, WriteCallback done) {
  if (record.ts == 0) record.ts = clock_.now_ms();
  auto r = std::make_shared<UsageRecord>(std::move(record));
  WriteJob job;
  job.what = "record usage";
  job.apply = [r](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "INSERT INTO usage(ts, conversation_id, user_id, purpose, model_requested, model_answered, "
        "provider, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, latency_ms, "
        "cost_actual_nanousd, cost_estimated_nanousd, cost_source, pricing_version, "
        "capability_steps, success, error_kind, tokens_estimated, generation_id) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
    if (!st) return fail(std::move(st).error());
    auto opt_text = [](const std::string& s) { return s.empty() ? std::optional<std::string>() : s; };
    (*st)->bind_all(r->ts, r->conversation_id, r->user_id, r->purpose, r->model_requested,
                    opt_text(r->model_answered), opt_text(r->provider), r->prompt_tokens,
                    r->completion_tokens, r->cached_tokens, r->reasoning_tokens, r->latency_ms,
                    r->cost_actual_nanousd, r->cost_estimated_nanousd, r->cost_source,
                    opt_text(r->pricing_version), r->capability_steps,
                    static_cast<int64_t>(r->success ? 1 : 0), opt_text(r->error_kind),
                    static_cast<int64_t>(r->tokens_estimated ? 1 : 0), opt_text(r->generation_id));
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    return WriteAck{(*st)->column_int64(0), true};
  };
  job.done = std::move(done);
  return job;
}

std::future<Result<WriteAck>> UsageRepository::record(UsageRecord record) {
  return writes_.submit_for_future(make_job(std::move(record), {}));
}

void UsageRepository::record(UsageRecord record, WriteCallback done) {
  writes_.submit(make_job(std::move(record), std::move(done)));
}

Result<UsageSummary> UsageRepository::summary(const UsageQuery& q) {
  auto conn = reads_.acquire();
  auto st = conn->cached(
      "SELECT count(*), coalesce(sum(success = 0), 0), coalesce(sum(prompt_tokens), 0), "
      "coalesce(sum(completion_tokens), 0), coalesce(sum(cached_tokens), 0), "
      "coalesce(sum(reasoning_tokens), 0), coalesce(sum(cost_actual_nanousd), 0), "
      "coalesce(sum(cost_estimated_nanousd), 0), "
      "coalesce(sum(cost_actual_nanousd IS NULL AND cost_estimated_nanousd IS NULL), 0) "
      "FROM usage WHERE ts >= ? AND ts < ? AND (? IS NULL OR user_id = ?)");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(q.from_ms, q.to_ms, q.user_id, q.user_id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  UsageSummary s;
  s.calls = (*st)->column_int64(0);
  s.failed = (*st)->column_int64(1);
  s.prompt_tokens = (*st)->column_int64(2);
  s.completion_tokens = (*st)->column_int64(3);
  s.cached_tokens = (*st)->column_int64(4);
  s.reasoning_tokens = (*st)->column_int64(5);
  s.cost_actual_nanousd = (*st)->column_int64(6);
  s.cost_estimated_nanousd = (*st)->column_int64(7);
  s.calls_without_cost = (*st)->column_int64(8);
  return s;
}

}  // namespace parley::storage
