-- Money (issue 7). SQLite cannot change a CHECK in place: `usage` and `credit_alerts` are
-- rebuilt, their rows kept.
--
-- usage.cost_source says where the row's cost comes from: the provider's usage.cost
-- ('provider'), the price table ('estimate'), both ('both'), or neither ('none': no price and
-- no cost reported — never a silent zero). usage.capability names the capability whose results
-- the call follows (a tool step), so that spend can be reported per capability.
CREATE TABLE usage_new (
  id                     INTEGER PRIMARY KEY,
  ts                     INTEGER NOT NULL,
  conversation_id        INTEGER REFERENCES conversations(id) ON DELETE SET NULL,
  user_id                INTEGER REFERENCES users(id) ON DELETE SET NULL,
  purpose                TEXT    NOT NULL,
  model_requested        TEXT    NOT NULL,
  model_answered         TEXT,
  provider               TEXT,
  prompt_tokens          INTEGER NOT NULL DEFAULT 0,
  completion_tokens      INTEGER NOT NULL DEFAULT 0,
  cached_tokens          INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens       INTEGER NOT NULL DEFAULT 0,
  latency_ms             INTEGER NOT NULL DEFAULT 0,
  cost_actual_nanousd    INTEGER,
  cost_estimated_nanousd INTEGER,
  cost_source            TEXT    NOT NULL CHECK (cost_source IN ('provider', 'estimate', 'both', 'none')),
  pricing_version        TEXT,
  capability_steps       INTEGER NOT NULL DEFAULT 0,
  success                INTEGER NOT NULL CHECK (success IN (0, 1)),
  error_kind             TEXT,
  tokens_estimated       INTEGER NOT NULL DEFAULT 0 CHECK (tokens_estimated IN (0, 1)),
  generation_id          TEXT,
  capability             TEXT
);
INSERT INTO usage_new(id, ts, conversation_id, user_id, purpose, model_requested, model_answered,
                      provider, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
                      latency_ms, cost_actual_nanousd, cost_estimated_nanousd, cost_source,
                      pricing_version, capability_steps, success, error_kind, tokens_estimated,
                      generation_id)
SELECT id, ts, conversation_id, user_id, purpose, model_requested, model_answered, provider,
       prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, latency_ms,
       cost_actual_nanousd, cost_estimated_nanousd,
       CASE WHEN cost_actual_nanousd IS NOT NULL AND cost_estimated_nanousd IS NOT NULL THEN 'both'
            WHEN cost_actual_nanousd IS NOT NULL THEN 'provider'
            WHEN cost_estimated_nanousd IS NOT NULL THEN 'estimate'
            ELSE 'none' END,
       pricing_version, capability_steps, success, error_kind, tokens_estimated, generation_id
FROM usage;
DROP TABLE usage;
ALTER TABLE usage_new RENAME TO usage;
CREATE INDEX usage_ts ON usage(ts);
CREATE INDEX usage_model_ts ON usage(model_answered, ts);
CREATE INDEX usage_user_ts ON usage(user_id, ts);
CREATE INDEX usage_user_ts_cost ON usage(user_id, ts, cost_actual_nanousd, cost_estimated_nanousd);

-- Alerts: deduplicated per (kind, subject, severity, period_key) — a warning and a later critical
-- of the same kind are two alerts; subject is what the alert is about
-- when a kind can concern several things (the model of an unknown_price, the user of a budget),
-- period_key the calendar period it counts in ('2026-12-05', '2026-12'). value/threshold/unit
-- are the figures that raised it (dollars, percent, hours, a count); acked_* record who
-- acknowledged it.
CREATE TABLE credit_alerts_new (
  id           INTEGER PRIMARY KEY,
  ts           INTEGER NOT NULL,
  kind         TEXT    NOT NULL,
  severity     TEXT    NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  subject      TEXT    NOT NULL DEFAULT '',
  period_key   TEXT    NOT NULL,
  message      TEXT    NOT NULL,
  value        REAL,
  threshold    REAL,
  unit         TEXT    NOT NULL DEFAULT '',
  delivered_at INTEGER,
  acked_at     INTEGER,
  acked_by     TEXT,
  UNIQUE (kind, subject, severity, period_key)
);
INSERT INTO credit_alerts_new(id, ts, kind, severity, period_key, message, delivered_at)
SELECT id, ts, kind, severity, period_key, message, delivered_at FROM credit_alerts;
DROP TABLE credit_alerts;
ALTER TABLE credit_alerts_new RENAME TO credit_alerts;
CREATE INDEX credit_alerts_open ON credit_alerts(acked_at, id);

-- What OpenRouter's /api/v1/key reports beside the limit (usage per day/week/month) and what
-- /api/v1/credits reports when the key may read it (NULL when it may not).
ALTER TABLE credit_balance ADD COLUMN usage_daily_nanousd INTEGER;
ALTER TABLE credit_balance ADD COLUMN usage_weekly_nanousd INTEGER;
ALTER TABLE credit_balance ADD COLUMN usage_monthly_nanousd INTEGER;
ALTER TABLE credit_balance ADD COLUMN total_credits_nanousd INTEGER;
ALTER TABLE credit_balance ADD COLUMN total_usage_nanousd INTEGER;
