-- Budgets across processes on one database (parley run beside parley ask): a call's worst case
-- is held here, checked against its caps in the same transaction, before it is sent; the hold
-- goes in the transaction that writes the call's usage row.
--
-- spend_holds: one row per (hold, cap it counts against). A hold whose process died is
-- dropped once it expires (after the call's deadline could have passed).
CREATE TABLE spend_holds (
  hold        INTEGER NOT NULL,
  scope       TEXT    NOT NULL,  -- "g/d/2026-12-07", "u4/m/2026-12", …
  amount      INTEGER NOT NULL,  -- nano-dollars
  expires_at  INTEGER NOT NULL,  -- epoch ms
  owner       TEXT    NOT NULL,  -- "pid 1234": for people reading the table
  PRIMARY KEY (hold, scope)
) WITHOUT ROWID;
CREATE INDEX spend_holds_scope ON spend_holds(scope);
CREATE INDEX spend_holds_expires ON spend_holds(expires_at);

-- spend_counters: a cap's period spend, summed from the usage rows up to `counted_through`
-- (a usage id) — a cache of the ledger, brought up to date by each hold from the rows after
-- it, so that a check reads a few new rows rather than a month of them.
CREATE TABLE spend_counters (
  scope            TEXT    PRIMARY KEY,
  user_id          INTEGER,            -- NULL: everyone's spend
  from_ts          INTEGER NOT NULL,   -- the period, epoch ms, [from_ts, to_ts)
  to_ts            INTEGER NOT NULL,
  spent            INTEGER NOT NULL,   -- nano-dollars: coalesce(actual, estimate, 0) summed
  counted_through  INTEGER NOT NULL    -- the last usage id summed
) WITHOUT ROWID;
-- Counters of periods long over are dropped (a cache: one needed again is summed afresh).
CREATE INDEX spend_counters_to ON spend_counters(to_ts);
