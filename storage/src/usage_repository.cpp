#include "parley/storage/usage_repository.h"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <array>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

#include "parley/storage/spend_repository.h"

namespace parley::storage {

namespace {

constexpr int64_t kMsPerDay = 86'400'000;

// The SQL function parley_zone_day(ts) → 'YYYY-MM-DD', the local day of epoch-ms `ts` in one
// zone. Registered per report on the leased read connection; SQLite owns the instance (deleted
// when the function is replaced or the connection closes). Rows arrive roughly in time order,
// so the zone's offset interval and the last day's text are cached.
class ZoneDays {
 public:
  explicit ZoneDays(const date::time_zone* tz) : tz_(tz) {}

  // Empty on overflow (a ts no real row has).
  std::optional<std::string_view> day(int64_t ts) {
    if (ts < begin_ms_ || ts >= end_ms_) {
      using std::chrono::milliseconds;
      using std::chrono::seconds;
      const auto s = date::floor<seconds>(date::sys_time<milliseconds>(milliseconds(ts)));
      const date::sys_info info = tz_->get_info(s);
      begin_ms_ = to_ms(info.begin.time_since_epoch().count());
      end_ms_ = to_ms(info.end.time_since_epoch().count());
      offset_ms_ = to_ms(info.offset.count());
    }
    int64_t local = 0;
    if (__builtin_add_overflow(ts, offset_ms_, &local)) return std::nullopt;
    const int64_t d = local / kMsPerDay - ((local % kMsPerDay) < 0 ? 1 : 0);  // floor
    if (d != last_day_ || text_.empty()) {
      const date::year_month_day ymd{date::sys_days{date::days{d}}};
      text_ = fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()),
                          static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
      last_day_ = d;
    }
    return text_;
  }

 private:
  static int64_t to_ms(int64_t seconds) {
    if (seconds > INT64_MAX / 1000) return INT64_MAX;
    if (seconds < INT64_MIN / 1000) return INT64_MIN;
    return seconds * 1000;
  }

  const date::time_zone* tz_;
  int64_t begin_ms_ = 0;  // [begin, end) of the cached offset; empty at first
  int64_t end_ms_ = 0;
  int64_t offset_ms_ = 0;
  int64_t last_day_ = 0;
  std::string text_;
};

void parley_zone_day_fn(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) noexcept {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  auto* days = static_cast<ZoneDays*>(sqlite3_user_data(ctx));
  try {
    const auto d = days->day(sqlite3_value_int64(argv[0]));
    if (!d) {
      sqlite3_result_null(ctx);
      return;
    }
    sqlite3_result_text(ctx, d->data(), static_cast<int>(d->size()), SQLITE_TRANSIENT);
  } catch (const std::exception& e) {
    sqlite3_result_error(ctx, e.what(), -1);
  }
}

void parley_zone_day_destroy(void* p) noexcept { delete static_cast<ZoneDays*>(p); }

Result<const date::time_zone*> find_zone(const std::string& name) {
  try {
    return date::locate_zone(name.empty() ? "UTC" : name);
  } catch (const std::exception&) {
    return fail(
        ErrorCode::invalid_argument,
        fmt::format("unknown time zone '{}' (expected an IANA name such as Europe/Paris)", name));
  }
}

// (Re)defines parley_zone_day(ts) on `conn` for `tz`.
Status register_zone_day(Connection& conn, const date::time_zone* tz) {
  auto days = std::make_unique<ZoneDays>(tz);
  const int rc = sqlite3_create_function_v2(
      conn.handle(), "parley_zone_day", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY,
      days.get(), parley_zone_day_fn, nullptr, nullptr, parley_zone_day_destroy);
  // On failure SQLite has already called the destructor with the pointer.
  static_cast<void>(days.release());
  if (rc != SQLITE_OK) {
    return fail(sqlite_error(conn.handle(), rc, "create function parley_zone_day"));
  }
  return {};
}

// One read transaction, so that a report's statements see the same committed state.
class ReadSnapshot {
 public:
  static Result<ReadSnapshot> begin(Connection& conn) {
    if (auto st = conn.exec("BEGIN"); !st) return fail(std::move(st).error());
    return ReadSnapshot(conn);
  }
  ReadSnapshot(ReadSnapshot&& o) noexcept : conn_(std::exchange(o.conn_, nullptr)) {}
  ReadSnapshot& operator=(ReadSnapshot&&) = delete;
  ~ReadSnapshot() {
    if (conn_ != nullptr) static_cast<void>(conn_->exec("COMMIT"));
  }

 private:
  explicit ReadSnapshot(Connection& conn) : conn_(&conn) {}
  Connection* conn_;
};

// The grouping key of each group_by, as an SQL expression over `usage`.
std::string_view key_sql(UsageGroupBy g) {
  switch (g) {
    case UsageGroupBy::none: return "''";
    case UsageGroupBy::day: return "parley_zone_day(ts)";
    case UsageGroupBy::model: return "coalesce(nullif(model_answered, ''), model_requested)";
    case UsageGroupBy::user: return "user_id";
    case UsageGroupBy::conversation: return "conversation_id";
    case UsageGroupBy::capability: return "coalesce(nullif(capability, ''), '(none)')";
  }
  return "''";
}

// The period, and the user when one is named (?3, bound either way). Not "(?3 IS NULL OR user_id
// = ?3)": SQLite cannot use the (user_id, ts) index for that, and one user's report would read
// the period's rows of every user.
std::string_view period_where(bool one_user) {
  return one_user ? "user_id = ?3 AND ts >= ?1 AND ts < ?2" : "?3 IS NULL AND ts >= ?1 AND ts < ?2";
}
constexpr std::string_view kCostSql = "coalesce(cost_actual_nanousd, cost_estimated_nanousd)";

std::string aggregate_sql(UsageGroupBy g, bool one_user) {
  std::string label = "NULL";
  std::string join;
  if (g == UsageGroupBy::user) {
    label = "x.display_name";
    join = "LEFT JOIN users AS x ON x.id = g.k";
  } else if (g == UsageGroupBy::conversation) {
    label = "x.channel || ':' || x.external_id";
    join = "LEFT JOIN conversations AS x ON x.id = g.k";
  }
  const std::string_view order = g == UsageGroupBy::day ? "g.k" : "g.cost DESC, g.calls DESC, g.k";
  return fmt::format(
      "SELECT g.k, {label}, g.calls, g.failed, g.pt, g.ct, g.cat, g.rt, g.actual, g.est, g.nocost, "
      "g.cost FROM (SELECT {key} AS k, count(*) AS calls, coalesce(sum(success = 0), 0) AS failed, "
      "coalesce(sum(prompt_tokens), 0) AS pt, coalesce(sum(completion_tokens), 0) AS ct, "
      "coalesce(sum(cached_tokens), 0) AS cat, coalesce(sum(reasoning_tokens), 0) AS rt, "
      "coalesce(sum(cost_actual_nanousd), 0) AS actual, "
      "coalesce(sum(cost_estimated_nanousd), 0) AS est, "
      "coalesce(sum(cost_actual_nanousd IS NULL AND cost_estimated_nanousd IS NULL), 0) AS nocost, "
      "coalesce(sum({cost}), 0) AS cost FROM usage WHERE {where} GROUP BY k) AS g {join} "
      "ORDER BY {order}",
      fmt::arg("label", label), fmt::arg("key", key_sql(g)), fmt::arg("cost", kCostSql),
      fmt::arg("where", period_where(one_user)), fmt::arg("join", join), fmt::arg("order", order));
}

// Nearest-rank: the p-th percentile of n sorted values is the one at rank ceil(p·n) (1-based):
// ceil(n/2) = (n + 1) / 2 and ceil(95n/100) = (95n + 99) / 100 in integers.
std::string percentile_sql(UsageGroupBy g, bool one_user) {
  return fmt::format(
      "SELECT k, max(CASE WHEN rn = (n + 1) / 2 THEN latency_ms END), "
      "max(CASE WHEN rn = (95 * n + 99) / 100 THEN latency_ms END) "
      "FROM (SELECT k, latency_ms, row_number() OVER (PARTITION BY k ORDER BY latency_ms) AS rn, "
      "count(*) OVER (PARTITION BY k) AS n "
      "FROM (SELECT {key} AS k, latency_ms FROM usage WHERE {where} AND success = 1)) GROUP BY k",
      fmt::arg("key", key_sql(g)), fmt::arg("where", period_where(one_user)));
}

bool keyed_by_id(UsageGroupBy g) {
  return g == UsageGroupBy::user || g == UsageGroupBy::conversation;
}

// The row key of column `col`: ids in decimal, "(none)" for NULL.
std::string key_at(const Statement& st, int col, UsageGroupBy g) {
  if (st.column_is_null(col)) return "(none)";
  if (keyed_by_id(g)) return std::to_string(st.column_int64(col));
  return st.column_text(col);
}

// Rows of `g` (none: one row, or none when the period is empty), percentiles included.
Result<std::vector<UsageReportRow>> grouped(Connection& conn, const UsageReportQuery& q,
                                            UsageGroupBy g) {
  std::vector<UsageReportRow> rows;
  std::unordered_map<std::string, size_t> index;
  {
    auto st = conn.cached(aggregate_sql(g, q.user_id.has_value()));
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(q.from_ms, q.to_ms, q.user_id);
    while (true) {
      auto more = (*st)->step();
      if (!more) return fail(std::move(more).error());
      if (!*more) break;
      const Statement& s = **st;
      UsageReportRow r;
      r.key = key_at(s, 0, g);
      if (keyed_by_id(g)) r.id = s.column_opt_int64(0);
      r.label = s.column_text(1);
      r.calls = s.column_int64(2);
      r.failed = s.column_int64(3);
      r.prompt_tokens = s.column_int64(4);
      r.completion_tokens = s.column_int64(5);
      r.cached_tokens = s.column_int64(6);
      r.reasoning_tokens = s.column_int64(7);
      r.cost_actual_nanousd = s.column_int64(8);
      r.cost_estimated_nanousd = s.column_int64(9);
      r.calls_without_cost = s.column_int64(10);
      r.cost_nanousd = s.column_int64(11);
      index.emplace(r.key, rows.size());
      rows.push_back(std::move(r));
    }
  }
  auto st = conn.cached(percentile_sql(g, q.user_id.has_value()));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(q.from_ms, q.to_ms, q.user_id);
  while (true) {
    auto more = (*st)->step();
    if (!more) return fail(std::move(more).error());
    if (!*more) break;
    const auto it = index.find(key_at(**st, 0, g));
    if (it == index.end()) continue;  // cannot happen within one snapshot
    rows[it->second].latency_p50_ms = (*st)->column_opt_int64(1);
    rows[it->second].latency_p95_ms = (*st)->column_opt_int64(2);
  }
  return rows;
}

}  // namespace

std::string_view to_string(UsageGroupBy g) noexcept {
  switch (g) {
    case UsageGroupBy::none: return "none";
    case UsageGroupBy::day: return "day";
    case UsageGroupBy::model: return "model";
    case UsageGroupBy::user: return "user";
    case UsageGroupBy::conversation: return "conversation";
    case UsageGroupBy::capability: return "capability";
  }
  return "none";
}

std::optional<UsageGroupBy> parse_usage_group_by(std::string_view s) noexcept {
  for (auto g : {UsageGroupBy::none, UsageGroupBy::day, UsageGroupBy::model, UsageGroupBy::user,
                 UsageGroupBy::conversation, UsageGroupBy::capability}) {
    if (to_string(g) == s) return g;
  }
  return std::nullopt;
}

int64_t usd_to_nanousd(double usd) noexcept { return std::llround(usd * 1e9); }

std::string cost_source_for(const std::optional<int64_t>& actual,
                            const std::optional<int64_t>& estimated) {
  if (actual && estimated) return "both";
  if (actual) return "provider";
  if (estimated) return "estimate";
  return "none";
}

WriteJob UsageRepository::make_job(UsageRecord record, WriteCallback done) {
  if (record.ts == 0) record.ts = clock_.now_ms();
  record.cost_source = cost_source_for(record.cost_actual_nanousd, record.cost_estimated_nanousd);
  auto r = std::make_shared<UsageRecord>(std::move(record));
  WriteJob job;
  job.what = "record usage";
  job.apply = [r](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "INSERT INTO usage(ts, conversation_id, user_id, purpose, model_requested, model_answered, "
        "provider, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, latency_ms, "
        "cost_actual_nanousd, cost_estimated_nanousd, cost_source, pricing_version, "
        "capability_steps, success, error_kind, tokens_estimated, generation_id, capability, "
        "max_tokens_capped, message_id) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
    if (!st) return fail(std::move(st).error());
    auto opt_text = [](const std::string& s) {
      return s.empty() ? std::optional<std::string>() : s;
    };
    (*st)->bind_all(r->ts, r->conversation_id, r->user_id, r->purpose, r->model_requested,
                    opt_text(r->model_answered), opt_text(r->provider), r->prompt_tokens,
                    r->completion_tokens, r->cached_tokens, r->reasoning_tokens, r->latency_ms,
                    r->cost_actual_nanousd, r->cost_estimated_nanousd, r->cost_source,
                    opt_text(r->pricing_version), r->capability_steps,
                    static_cast<int64_t>(r->success ? 1 : 0), opt_text(r->error_kind),
                    static_cast<int64_t>(r->tokens_estimated ? 1 : 0), opt_text(r->generation_id),
                    opt_text(r->capability), r->max_tokens_capped, r->message_id);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    const int64_t id = (*st)->column_int64(0);
    if (r->spend_hold) {
      if (auto released = SpendRepository::release_in(conn, *r->spend_hold); !released) {
        return fail(std::move(released).error());
      }
    }
    return WriteAck{id, true};
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
  // A user's summary reads the (user_id, ts) index (period_where): memory extraction asks for
  // one per conversation it reads, and reading the period's rows of every user each time made a
  // stop after 40,000 conversations of one day run past its grace period.
  auto st = conn->cached(fmt::format(
      "SELECT count(*), coalesce(sum(success = 0), 0), coalesce(sum(prompt_tokens), 0), "
      "coalesce(sum(completion_tokens), 0), coalesce(sum(cached_tokens), 0), "
      "coalesce(sum(reasoning_tokens), 0), coalesce(sum(cost_actual_nanousd), 0), "
      "coalesce(sum(cost_estimated_nanousd), 0), "
      "coalesce(sum(cost_actual_nanousd IS NULL AND cost_estimated_nanousd IS NULL), 0) "
      "FROM usage WHERE {} AND (?4 IS NULL OR purpose = ?4)",
      period_where(q.user_id.has_value())));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(q.from_ms, q.to_ms, q.user_id, q.purpose);
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

Result<UsageReport> UsageRepository::report(const UsageReportQuery& q) {
  auto conn = reads_.acquire();
  if (q.group_by == UsageGroupBy::day) {
    auto tz = find_zone(q.zone);
    if (!tz) return fail(std::move(tz).error());
    PARLEY_TRY(register_zone_day(*conn, *tz));
  }
  auto snapshot = ReadSnapshot::begin(*conn);
  if (!snapshot) return fail(std::move(snapshot).error());
  UsageReport report;
  auto totals = grouped(*conn, q, UsageGroupBy::none);
  if (!totals) return fail(std::move(totals).error());
  if (!totals->empty()) report.totals = std::move(totals->front());
  report.totals.key = "total";
  if (q.group_by != UsageGroupBy::none) {
    auto rows = grouped(*conn, q, q.group_by);
    if (!rows) return fail(std::move(rows).error());
    report.rows = std::move(*rows);
  }
  return report;
}

Result<std::vector<UsageSeriesPoint>> UsageRepository::series(const UsageReportQuery& q) {
  auto tz = find_zone(q.zone);
  if (!tz) return fail(std::move(tz).error());
  auto conn = reads_.acquire();
  PARLEY_TRY(register_zone_day(*conn, *tz));
  auto st = conn->cached(fmt::format(
      "SELECT parley_zone_day(ts) AS d, {model} AS m, count(*), coalesce(sum({cost}), 0), "
      "coalesce(sum(cost_actual_nanousd IS NULL AND cost_estimated_nanousd IS NULL), 0), "
      "coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) "
      "FROM usage WHERE {where} GROUP BY d, m ORDER BY d, m",
      fmt::arg("model", key_sql(UsageGroupBy::model)), fmt::arg("cost", kCostSql),
      fmt::arg("where", period_where(q.user_id.has_value()))));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(q.from_ms, q.to_ms, q.user_id);
  std::vector<UsageSeriesPoint> points;
  while (true) {
    auto more = (*st)->step();
    if (!more) return fail(std::move(more).error());
    if (!*more) break;
    UsageSeriesPoint p;
    p.day = (*st)->column_text(0);
    p.model = (*st)->column_text(1);
    p.calls = (*st)->column_int64(2);
    p.cost_nanousd = (*st)->column_int64(3);
    p.calls_without_cost = (*st)->column_int64(4);
    p.prompt_tokens = (*st)->column_int64(5);
    p.completion_tokens = (*st)->column_int64(6);
    points.push_back(std::move(p));
  }
  return points;
}

}  // namespace parley::storage
