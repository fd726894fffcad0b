#include "parley/storage/alert_repository.h"

#include <memory>

namespace parley::storage {

namespace {

constexpr const char* kAlertColumns =
    "id, ts, kind, severity, subject, period_key, message, value, threshold, unit, delivered_at, "
    "acked_at, coalesce(acked_by, '')";

AlertRecord read_alert(const Statement& st) {
  AlertRecord a;
  a.id = st.column_int64(0);
  a.ts = st.column_int64(1);
  a.kind = st.column_text(2);
  a.severity = st.column_text(3);
  a.subject = st.column_text(4);
  a.period_key = st.column_text(5);
  a.message = st.column_text(6);
  if (!st.column_is_null(7)) a.value = st.column_double(7);
  if (!st.column_is_null(8)) a.threshold = st.column_double(8);
  a.unit = st.column_text(9);
  if (!st.column_is_null(10)) a.delivered_at = st.column_int64(10);
  if (!st.column_is_null(11)) a.acked_at = st.column_int64(11);
  a.acked_by = st.column_text(12);
  return a;
}

}  // namespace

void AlertRepository::raise(AlertRecord alert, WriteCallback done) {
  if (alert.ts == 0) alert.ts = clock_.now_ms();
  auto a = std::make_shared<AlertRecord>(std::move(alert));
  WriteJob job;
  job.what = "raise alert";
  job.apply = [a](Connection& conn) -> Result<WriteAck> {
    auto ins = conn.cached(
        "INSERT INTO credit_alerts(ts, kind, severity, subject, period_key, message, value, "
        "threshold, unit) VALUES (?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(kind, subject, severity, period_key) DO NOTHING RETURNING id");
    if (!ins) return fail(std::move(ins).error());
    (*ins)->bind_all(a->ts, a->kind, a->severity, a->subject, a->period_key, a->message, a->value,
                     a->threshold, a->unit);
    auto row = (*ins)->step();
    if (!row) return fail(std::move(row).error());
    if (*row) {
      const int64_t id = (*ins)->column_int64(0);
      (*ins)->reset();
      return WriteAck{id, true};
    }
    auto found = conn.cached(
        "SELECT id FROM credit_alerts WHERE kind = ? AND subject = ? AND severity = ? AND "
        "period_key = ?");
    if (!found) return fail(std::move(found).error());
    (*found)->bind_all(a->kind, a->subject, a->severity, a->period_key);
    auto f = (*found)->step();
    if (!f) return fail(std::move(f).error());
    const int64_t id = *f ? (*found)->column_int64(0) : 0;
    (*found)->reset();
    return WriteAck{id, false};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

std::future<Result<WriteAck>> AlertRepository::raise(AlertRecord alert) {
  auto promise = std::make_shared<std::promise<Result<WriteAck>>>();
  auto future = promise->get_future();
  raise(std::move(alert), [promise](Result<WriteAck> r) { promise->set_value(std::move(r)); });
  return future;
}

Result<std::vector<AlertRecord>> AlertRepository::list(bool open_only, int limit) {
  auto conn = reads_.acquire();
  auto st = conn->cached(
      std::string("SELECT ") + kAlertColumns +
      " FROM credit_alerts WHERE (? = 0 OR acked_at IS NULL) ORDER BY id DESC LIMIT ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(static_cast<int64_t>(open_only ? 1 : 0), static_cast<int64_t>(limit));
  std::vector<AlertRecord> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    out.push_back(read_alert(**st));
  }
  return out;
}

Result<std::optional<AlertRecord>> AlertRepository::find(int64_t id) {
  auto conn = reads_.acquire();
  auto st =
      conn->cached(std::string("SELECT ") + kAlertColumns + " FROM credit_alerts WHERE id = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(id);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<AlertRecord>();
  auto a = read_alert(**st);
  (*st)->reset();
  return std::optional<AlertRecord>(std::move(a));
}

std::future<Result<WriteAck>> AlertRepository::ack(int64_t id, std::string by) {
  const int64_t now = clock_.now_ms();
  WriteJob job;
  job.what = "acknowledge alert";
  job.apply = [id, now, by = std::move(by)](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "UPDATE credit_alerts SET acked_at = ?, acked_by = ? WHERE id = ? AND acked_at IS NULL");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(now, by, id);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    return WriteAck{id, conn.changes() > 0};
  };
  return writes_.submit_for_future(std::move(job));
}

void AlertRepository::mark_delivered(int64_t id, WriteCallback done) {
  const int64_t now = clock_.now_ms();
  WriteJob job;
  job.what = "mark alert delivered";
  job.apply = [id, now](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached("UPDATE credit_alerts SET delivered_at = ? WHERE id = ?");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(now, id);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    return WriteAck{id, true};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

}  // namespace parley::storage
