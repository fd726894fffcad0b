#include "parley/storage/spend_repository.h"

#include <algorithm>
#include <memory>
#include <utility>

namespace parley::storage {

namespace {

// A call's cost as budgets count it (the provider's, else the estimate, else nothing).
constexpr const char* kCost = "coalesce(cost_actual_nanousd, cost_estimated_nanousd, 0)";

// The scope's spend brought up to date through usage id `top`.
Result<int64_t> spent_through(Connection& conn, const SpendScope& s, int64_t top) {
  auto cur = conn.cached("SELECT spent, counted_through FROM spend_counters WHERE scope = ?");
  if (!cur) return fail(std::move(cur).error());
  (*cur)->bind_all(s.key);
  auto row = (*cur)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) {
    // First use of this cap's period: the whole period, through the index on (user_id, ts) for
    // a user's cap and on ts for everyone's. Two statements, not "(? IS NULL OR user_id = ?)":
    // SQLite cannot use the (user_id, ts) index for that, and every user's first turn of a
    // period then read the whole period of everyone's rows.
    auto sum = conn.cached(std::string("SELECT coalesce(sum(") + kCost +
                           "), 0) FROM usage WHERE ts >= ?1 AND ts < ?2 AND id <= ?3 AND " +
                           (s.user_id ? "user_id = ?4" : "?4 IS NULL"));
    if (!sum) return fail(std::move(sum).error());
    (*sum)->bind_all(s.from_ms, s.to_ms, top, s.user_id);
    auto srow = (*sum)->step();
    if (!srow) return fail(std::move(srow).error());
    const int64_t spent = (*sum)->column_int64(0);
    auto ins = conn.cached(
        "INSERT INTO spend_counters(scope, user_id, from_ts, to_ts, spent, counted_through) "
        "VALUES (?,?,?,?,?,?)");
    if (!ins) return fail(std::move(ins).error());
    (*ins)->bind_all(s.key, s.user_id, s.from_ms, s.to_ms, spent, top);
    if (auto done = (*ins)->step(); !done) return fail(std::move(done).error());
    return spent;
  }
  int64_t spent = (*cur)->column_int64(0);
  const int64_t through = (*cur)->column_int64(1);
  if (through >= top) return spent;
  // The rows written since: a range of ids (NOT INDEXED keeps the planner on the rowid range
  // rather than a month of the ts index).
  auto sum = conn.cached(std::string("SELECT coalesce(sum(") + kCost +
                         "), 0) FROM usage NOT INDEXED WHERE id > ?1 AND id <= ?2 AND ts >= ?3 "
                         "AND ts < ?4 AND (?5 IS NULL OR user_id = ?5)");
  if (!sum) return fail(std::move(sum).error());
  (*sum)->bind_all(through, top, s.from_ms, s.to_ms, s.user_id);
  auto srow = (*sum)->step();
  if (!srow) return fail(std::move(srow).error());
  spent += (*sum)->column_int64(0);
  auto up = conn.cached("UPDATE spend_counters SET spent = ?, counted_through = ? WHERE scope = ?");
  if (!up) return fail(std::move(up).error());
  (*up)->bind_all(spent, top, s.key);
  if (auto done = (*up)->step(); !done) return fail(std::move(done).error());
  return spent;
}

Result<int64_t> held_in(Connection& conn, const std::string& key) {
  auto st = conn.cached("SELECT coalesce(sum(amount), 0) FROM spend_holds WHERE scope = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(key);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  return (*st)->column_int64(0);
}

Result<SpendHoldResult> hold_in(Connection& conn, const SpendHoldRequest& r) {
  SpendHoldResult out;
  // Holds of processes that died (or calls that never settled) stop counting once they expire.
  auto sweep = conn.cached("DELETE FROM spend_holds WHERE expires_at < ?");
  if (!sweep) return fail(std::move(sweep).error());
  (*sweep)->bind_all(r.now_ms);
  if (auto done = (*sweep)->step(); !done) return fail(std::move(done).error());

  // Counters of periods over for two days (a clock set back a day still finds its own).
  auto old = conn.cached("DELETE FROM spend_counters WHERE to_ts < ?");
  if (!old) return fail(std::move(old).error());
  (*old)->bind_all(r.now_ms - 2 * 86'400'000);
  if (auto done = (*old)->step(); !done) return fail(std::move(done).error());

  auto top_st = conn.cached("SELECT coalesce(max(id), 0) FROM usage");
  if (!top_st) return fail(std::move(top_st).error());
  auto top_row = (*top_st)->step();
  if (!top_row) return fail(std::move(top_row).error());
  const int64_t top = (*top_st)->column_int64(0);

  std::optional<int64_t> room;
  for (size_t i = 0; i < r.scopes.size(); ++i) {
    const SpendScope& s = r.scopes[i];
    auto spent = spent_through(conn, s, top);
    if (!spent) return fail(std::move(spent).error());
    auto held = held_in(conn, s.key);
    if (!held) return fail(std::move(held).error());
    out.figures.push_back({s.key, *spent, *held});
    if (*spent >= s.cap && !out.refused_by) out.refused_by = i;  // spent out: whatever the size
    const int64_t left = s.cap - *spent - *held;
    room = room ? std::min(*room, left) : left;
  }
  out.amount = r.amount;
  if (!out.refused_by && room && out.amount > *room && r.shrink) {
    if (auto fit = r.shrink(*room)) {
      out.amount = fit->first;
      out.shrunk_to = fit->second;
    }
  }
  if (!out.refused_by) {
    for (size_t i = 0; i < r.scopes.size(); ++i) {
      const auto& f = out.figures[i];
      if (f.spent + f.held + out.amount > r.scopes[i].cap) {
        out.refused_by = i;
        break;
      }
    }
  }
  if (out.refused_by) {
    out.shrunk_to.reset();
    return out;
  }
  // A random id: never one a settled or expired hold had, whose late usage row would drop it.
  auto id_st = conn.cached("SELECT random() & 9223372036854775807");
  if (!id_st) return fail(std::move(id_st).error());
  auto id_row = (*id_st)->step();
  if (!id_row) return fail(std::move(id_row).error());
  out.hold = std::max<int64_t>(1, (*id_st)->column_int64(0));
  auto ins = conn.cached(
      "INSERT INTO spend_holds(hold, scope, amount, expires_at, owner) VALUES (?,?,?,?,?)");
  if (!ins) return fail(std::move(ins).error());
  for (const auto& s : r.scopes) {
    (*ins)->bind_all(out.hold, s.key, out.amount, r.expires_ms, r.owner);
    if (auto done = (*ins)->step(); !done) return fail(std::move(done).error());
  }
  out.ok = true;
  return out;
}

}  // namespace

void SpendRepository::hold(SpendHoldRequest request,
                           std::function<void(Result<SpendHoldResult>)> done) {
  auto req = std::make_shared<SpendHoldRequest>(std::move(request));
  // apply may run twice (a batch replayed after another job failed): the last run's result is
  // the committed one.
  auto result = std::make_shared<std::optional<SpendHoldResult>>();
  WriteJob job;
  job.what = "hold spend";
  job.apply = [req, result](Connection& conn) -> Result<WriteAck> {
    auto r = hold_in(conn, *req);
    if (!r) return fail(std::move(r).error());
    *result = std::move(*r);
    return WriteAck{(*result)->hold, (*result)->ok};
  };
  job.done = [result, done = std::move(done)](Result<WriteAck> ack) {
    if (!ack) {
      done(fail(std::move(ack).error()));
      return;
    }
    done(std::move(**result));
  };
  writes_.submit(std::move(job));
}

Status SpendRepository::release_in(Connection& conn, int64_t hold) {
  auto st = conn.cached("DELETE FROM spend_holds WHERE hold = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(hold);
  if (auto done = (*st)->step(); !done) return fail(std::move(done).error());
  return {};
}

void SpendRepository::release(int64_t hold, WriteCallback done) {
  WriteJob job;
  job.what = "release spend hold";
  job.apply = [hold](Connection& conn) -> Result<WriteAck> {
    if (auto st = release_in(conn, hold); !st) return fail(std::move(st).error());
    return WriteAck{hold, conn.changes() > 0};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

}  // namespace parley::storage
