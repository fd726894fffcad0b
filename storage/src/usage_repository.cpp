#include "parley/storage/usage_repository.h"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <memory>
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

bool keyed_by_id(UsageGroupBy g) {
  return g == UsageGroupBy::user || g == UsageGroupBy::conversation;
}

// total += x as SQLite's sum() adds (NULL adds nothing); an overflow, which sum() reports as an
// error rather than wrapping, sets `overflow`.
void add_to(int64_t& total, const std::optional<int64_t>& x, bool& overflow) {
  if (x && __builtin_add_overflow(total, *x, &total)) overflow = true;
}

// user: the display name; conversation: "channel:external_id"; "" when the row is gone.
Result<std::string> label_of(Connection& conn, int64_t id, UsageGroupBy g) {
  auto st =
      conn.cached(g == UsageGroupBy::user
                      ? "SELECT display_name FROM users WHERE id = ?"
                      : "SELECT channel || ':' || external_id FROM conversations WHERE id = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  std::string label = *row ? (*st)->column_text(0) : std::string();
  (*st)->reset();
  return label;
}

// A report's totals and its groups, from one scan of the period's rows: the sums per group and
// the latencies of its successful calls, whose nearest-rank percentiles are picked in place
// (std::nth_element). SQL's GROUP BY and its row_number() windows sorted every row of the period
// twice for the totals and twice again for the groups: 11-13 s for /reports over 1,000,000
// rows, nearly all of it in SQLite's sorter (bench/reports_load.py).
class ReportScan {
 public:
  explicit ReportScan(UsageGroupBy g) : g_(g) {}

  Status add(const Statement& st) {
    // Columns: 0 key, 1 success, 2 latency_ms, 3 prompt_tokens, 4 completion_tokens,
    // 5 cached_tokens, 6 reasoning_tokens, 7 cost_actual_nanousd, 8 cost_estimated_nanousd.
    Group* group = nullptr;
    if (g_ == UsageGroupBy::none) {
      // the totals only
    } else if (st.column_is_null(0)) {
      group = null_group_ ? &*null_group_ : &null_group_.emplace();
    } else if (keyed_by_id(g_)) {
      group = &by_id_[st.column_int64(0)];
    } else {
      text_key_ = st.column_text(0);
      group = &by_text_[text_key_];
    }
    const bool success = st.column_int64(1) != 0;
    const int64_t latency = st.column_int64(2);
    std::array<std::optional<int64_t>, 6> v;
    for (int i = 0; i < 6; ++i) v[static_cast<size_t>(i)] = st.column_opt_int64(3 + i);
    // The totals keep their own latencies only without groups; with groups, finish() gathers
    // theirs.
    PARLEY_TRY(totals_.add(success, group == nullptr ? std::optional(latency) : std::nullopt, v));
    if (group != nullptr) PARLEY_TRY(group->add(success, latency, v));
    return {};
  }

  // The totals ("total"; every call in the period) and the rows in the report's order.
  Result<UsageReport> finish(Connection& conn) {
    UsageReport report;
    if (g_ != UsageGroupBy::none) {
      const auto gather = [this](const Group& g) {
        totals_.latencies.insert(totals_.latencies.end(), g.latencies.begin(), g.latencies.end());
      };
      if (null_group_) gather(*null_group_);
      for (const auto& [id, group] : by_id_) gather(group);
      for (const auto& [text, group] : by_text_) gather(group);
    }
    report.totals = totals_.row();
    report.totals.key = "total";
    if (g_ == UsageGroupBy::none) return report;
    std::vector<std::pair<RowKey, UsageReportRow>> rows;
    rows.reserve(by_id_.size() + by_text_.size() + 1);
    if (null_group_) rows.emplace_back(RowKey{true, 0, {}}, null_group_->row());
    for (auto& [id, group] : by_id_) rows.emplace_back(RowKey{false, id, {}}, group.row());
    for (auto& [text, group] : by_text_) rows.emplace_back(RowKey{false, 0, text}, group.row());
    for (auto& [k, row] : rows) {
      if (k.null) {
        row.key = "(none)";
      } else if (keyed_by_id(g_)) {
        row.key = std::to_string(k.id);
        row.id = k.id;
        auto label = label_of(conn, k.id, g_);
        if (!label) return fail(std::move(label).error());
        row.label = std::move(*label);
      } else {
        row.key = k.text;
      }
    }
    // As SQL orders the keys: NULL first, then ids by value or text byte by byte.
    const bool by_id = keyed_by_id(g_);
    const auto key_less = [by_id](const RowKey& a, const RowKey& b) {
      if (a.null || b.null) return a.null && !b.null;
      return by_id ? a.id < b.id : a.text < b.text;
    };
    std::sort(rows.begin(), rows.end(), [&](const auto& a, const auto& b) {
      if (g_ != UsageGroupBy::day) {
        if (a.second.cost_nanousd != b.second.cost_nanousd) {
          return a.second.cost_nanousd > b.second.cost_nanousd;
        }
        if (a.second.calls != b.second.calls) return a.second.calls > b.second.calls;
      }
      return key_less(a.first, b.first);
    });
    report.rows.reserve(rows.size());
    for (auto& [k, row] : rows) report.rows.push_back(std::move(row));
    return report;
  }

 private:
  struct RowKey {
    bool null = false;  // the key is NULL: no user, conversation, …
    int64_t id = 0;     // user / conversation
    std::string text;   // the other groups
  };

  // One group's sums and the latencies of its successful calls (`latency` empty: not kept).
  struct Group {
    UsageReportRow sums;
    std::vector<int64_t> latencies;

    Status add(bool success, std::optional<int64_t> latency,
               const std::array<std::optional<int64_t>, 6>& v) {
      sums.calls += 1;
      if (!success) sums.failed += 1;
      if (success && latency) latencies.push_back(*latency);
      const auto& [pt, ct, cat, rt, actual, estimated] = v;
      if (!actual && !estimated) sums.calls_without_cost += 1;
      bool overflow = false;
      add_to(sums.prompt_tokens, pt, overflow);
      add_to(sums.completion_tokens, ct, overflow);
      add_to(sums.cached_tokens, cat, overflow);
      add_to(sums.reasoning_tokens, rt, overflow);
      add_to(sums.cost_actual_nanousd, actual, overflow);
      add_to(sums.cost_estimated_nanousd, estimated, overflow);
      add_to(sums.cost_nanousd, actual ? actual : estimated, overflow);
      if (overflow) return fail(ErrorCode::data_loss, "usage report: integer overflow in a sum");
      return {};
    }

    // Nearest rank: the p-th percentile of n sorted values is the one at rank ceil(p·n)
    // (1-based): ceil(n/2) = (n + 1) / 2 and ceil(95n/100) = (95n + 99) / 100 in integers.
    UsageReportRow row() {
      UsageReportRow out = sums;
      const size_t n = latencies.size();
      if (n > 0) {
        const auto at_rank = [this](size_t rank) {
          auto nth = latencies.begin() + static_cast<std::ptrdiff_t>(rank - 1);
          std::nth_element(latencies.begin(), nth, latencies.end());
          return *nth;
        };
        out.latency_p95_ms = at_rank((95 * n + 99) / 100);
        out.latency_p50_ms = at_rank((n + 1) / 2);
      }
      return out;
    }
  };

  UsageGroupBy g_;
  Group totals_;
  std::optional<Group> null_group_;
  std::unordered_map<int64_t, Group> by_id_;
  std::unordered_map<std::string, Group> by_text_;
  std::string text_key_;
};

Result<UsageReport> scan_report(Connection& conn, const UsageReportQuery& q) {
  auto st = conn.cached(fmt::format(
      "SELECT {key}, success, latency_ms, prompt_tokens, completion_tokens, cached_tokens, "
      "reasoning_tokens, cost_actual_nanousd, cost_estimated_nanousd FROM usage WHERE {where}",
      fmt::arg("key", key_sql(q.group_by)),
      fmt::arg("where", period_where(q.user_id.has_value()))));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(q.from_ms, q.to_ms, q.user_id);
  ReportScan scan(q.group_by);
  while (true) {
    auto more = (*st)->step();
    if (!more) return fail(std::move(more).error());
    if (!*more) break;
    PARLEY_TRY(scan.add(**st));
  }
  (*st)->reset();
  return scan.finish(conn);
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
  // One snapshot for the scan and the labels read after it.
  auto snapshot = ReadSnapshot::begin(*conn);
  if (!snapshot) return fail(std::move(snapshot).error());
  return scan_report(*conn, q);
}

Result<std::vector<UsageSeriesPoint>> UsageRepository::series(const UsageReportQuery& q) {
  auto tz = find_zone(q.zone);
  if (!tz) return fail(std::move(tz).error());
  auto conn = reads_.acquire();
  PARLEY_TRY(register_zone_day(*conn, *tz));
  // One scan, summed per (day, model) in an ordered map, which gives SQL's ORDER BY d, m (text
  // byte by byte): GROUP BY d, m sorted every row of the period first (0.8 s of /reports over
  // 1,000,000 rows).
  auto st = conn->cached(fmt::format(
      "SELECT parley_zone_day(ts), {model}, cost_actual_nanousd, cost_estimated_nanousd, "
      "prompt_tokens, completion_tokens FROM usage WHERE {where}",
      fmt::arg("model", key_sql(UsageGroupBy::model)),
      fmt::arg("where", period_where(q.user_id.has_value()))));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(q.from_ms, q.to_ms, q.user_id);
  std::map<std::pair<std::string, std::string>, UsageSeriesPoint> sums;
  std::pair<std::string, std::string> key;
  while (true) {
    auto more = (*st)->step();
    if (!more) return fail(std::move(more).error());
    if (!*more) break;
    const Statement& row = **st;
    key.first = row.column_text(0);
    key.second = row.column_text(1);
    UsageSeriesPoint& p = sums[key];
    const auto actual = row.column_opt_int64(2);
    const auto estimated = row.column_opt_int64(3);
    p.calls += 1;
    if (!actual && !estimated) p.calls_without_cost += 1;
    bool overflow = false;
    add_to(p.cost_nanousd, actual ? actual : estimated, overflow);
    add_to(p.prompt_tokens, row.column_opt_int64(4), overflow);
    add_to(p.completion_tokens, row.column_opt_int64(5), overflow);
    if (overflow) return fail(ErrorCode::data_loss, "usage series: integer overflow in a sum");
  }
  (*st)->reset();
  std::vector<UsageSeriesPoint> points;
  points.reserve(sums.size());
  for (auto& [k, p] : sums) {
    p.day = k.first;
    p.model = k.second;
    points.push_back(std::move(p));
  }
  return points;
}

}  // namespace parley::storage
