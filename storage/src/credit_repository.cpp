#include "parley/storage/credit_repository.h"

#include <fmt/format.h>

#include <memory>

namespace parley::storage {

namespace {

constexpr const char* kCreditColumns =
    "id, ts, provider, limit_nanousd, usage_nanousd, remaining_nanousd, is_free_tier, "
    "usage_daily_nanousd, usage_weekly_nanousd, usage_monthly_nanousd, total_credits_nanousd, "
    "total_usage_nanousd, raw";

CreditSnapshot read_snapshot(const Statement& st) {
  CreditSnapshot s;
  s.id = st.column_int64(0);
  s.ts = st.column_int64(1);
  s.provider = st.column_text(2);
  s.limit_nanousd = st.column_opt_int64(3);
  s.usage_nanousd = st.column_int64(4);
  s.remaining_nanousd = st.column_opt_int64(5);
  s.is_free_tier = st.column_int64(6) != 0;
  s.usage_daily_nanousd = st.column_opt_int64(7);
  s.usage_weekly_nanousd = st.column_opt_int64(8);
  s.usage_monthly_nanousd = st.column_opt_int64(9);
  s.total_credits_nanousd = st.column_opt_int64(10);
  s.total_usage_nanousd = st.column_opt_int64(11);
  s.raw = st.column_text(12);
  return s;
}

Status validate(const CreditSnapshot& s) {
  if (s.provider.empty()) {
    return fail(ErrorCode::invalid_argument, "a credit snapshot needs a provider name");
  }
  return {};
}

}  // namespace

WriteJob CreditRepository::make_job(CreditSnapshot snapshot, WriteCallback done) {
  if (snapshot.ts == 0) snapshot.ts = clock_.now_ms();
  if (snapshot.raw.empty()) snapshot.raw = "{}";
  auto s = std::make_shared<CreditSnapshot>(std::move(snapshot));
  WriteJob job;
  job.what = "record credit snapshot";
  job.apply = [s](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "INSERT INTO credit_balance(ts, provider, limit_nanousd, usage_nanousd, "
        "remaining_nanousd, is_free_tier, usage_daily_nanousd, usage_weekly_nanousd, "
        "usage_monthly_nanousd, total_credits_nanousd, total_usage_nanousd, raw) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(s->ts, s->provider, s->limit_nanousd, s->usage_nanousd, s->remaining_nanousd,
                    static_cast<int64_t>(s->is_free_tier ? 1 : 0), s->usage_daily_nanousd,
                    s->usage_weekly_nanousd, s->usage_monthly_nanousd, s->total_credits_nanousd,
                    s->total_usage_nanousd, s->raw);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    return WriteAck{(*st)->column_int64(0), true};
  };
  job.done = std::move(done);
  return job;
}

std::future<Result<WriteAck>> CreditRepository::record(CreditSnapshot snapshot) {
  if (auto ok = validate(snapshot); !ok) return failed_write(std::move(ok).error());
  return writes_.submit_for_future(make_job(std::move(snapshot), {}));
}

void CreditRepository::record(CreditSnapshot snapshot, WriteCallback done) {
  if (auto ok = validate(snapshot); !ok) {
    if (done) done(fail(std::move(ok).error()));
    return;
  }
  writes_.submit(make_job(std::move(snapshot), std::move(done)));
}

Result<std::optional<CreditSnapshot>> CreditRepository::latest(const std::string& provider) {
  auto conn = reads_.acquire();
  auto st = conn->cached(fmt::format(
      "SELECT {} FROM credit_balance WHERE provider = ? ORDER BY ts DESC, id DESC LIMIT 1",
      kCreditColumns));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(provider);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<CreditSnapshot>();
  return std::optional<CreditSnapshot>(read_snapshot(**st));
}

Result<std::vector<CreditSnapshot>> CreditRepository::since(const std::string& provider,
                                                            int64_t from_ms) {
  auto conn = reads_.acquire();
  auto st = conn->cached(
      fmt::format("SELECT {} FROM credit_balance WHERE provider = ? AND ts >= ? ORDER BY ts, id",
                  kCreditColumns));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(provider, from_ms);
  std::vector<CreditSnapshot> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    out.push_back(read_snapshot(**st));
  }
  return out;
}

}  // namespace parley::storage
