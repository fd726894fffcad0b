-- parley schema, version 1. Timestamps are Unix epoch milliseconds (UTC).
-- Money is stored exactly, as integer nano-dollars (1 USD = 1e9), so sums are exact.

CREATE TABLE users (
  id           INTEGER PRIMARY KEY,
  display_name TEXT    NOT NULL,
  timezone     TEXT    NOT NULL DEFAULT 'UTC',
  is_admin     INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
  created_at   INTEGER NOT NULL
);

-- One row per (channel, external id): a Discord user id, an email address, a console login.
CREATE TABLE identities (
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  channel     TEXT    NOT NULL,
  external_id TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  UNIQUE (channel, external_id)
);
CREATE INDEX identities_user ON identities(user_id);

CREATE TABLE conversations (
  id          INTEGER PRIMARY KEY,
  channel     TEXT    NOT NULL,
  external_id TEXT    NOT NULL,  -- channel id, email thread root, console session
  title       TEXT,
  created_at  INTEGER NOT NULL,
  UNIQUE (channel, external_id)
);

-- UNIQUE(channel, platform_id) recognises a redelivered message. Messages parley writes
-- itself (assistant, tool) may have no platform id: NULLs never collide.
CREATE TABLE messages (
  id              INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  channel         TEXT    NOT NULL,
  platform_id     TEXT,
  role            TEXT    NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
  author          TEXT    NOT NULL DEFAULT '',
  text            TEXT    NOT NULL,
  created_at      INTEGER NOT NULL,
  metadata        TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  UNIQUE (channel, platform_id)
);
CREATE INDEX messages_conversation ON messages(conversation_id, id);

CREATE TABLE memories (
  id         INTEGER PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  content    TEXT    NOT NULL CHECK (length(content) > 0),
  tags       TEXT    NOT NULL DEFAULT '',
  importance INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX memories_user ON memories(user_id, importance DESC, updated_at DESC);

-- External-content FTS5 index over memories. user_id is an indexed column so that recall is
-- scoped to one user inside the index ("user_id : 42 AND (...)"), not filtered afterwards.
CREATE VIRTUAL TABLE memories_fts USING fts5(
  user_id, content, tags,
  content = 'memories', content_rowid = 'id',
  tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
  INSERT INTO memories_fts(rowid, user_id, content, tags)
  VALUES (new.id, new.user_id, new.content, new.tags);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, user_id, content, tags)
  VALUES ('delete', old.id, old.user_id, old.content, old.tags);
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF user_id, content, tags ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, user_id, content, tags)
  VALUES ('delete', old.id, old.user_id, old.content, old.tags);
  INSERT INTO memories_fts(rowid, user_id, content, tags)
  VALUES (new.id, new.user_id, new.content, new.tags);
END;

CREATE TABLE prompts (
  name           TEXT    PRIMARY KEY,
  active_version INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
);
CREATE TABLE prompt_history (
  id          INTEGER PRIMARY KEY,
  prompt_name TEXT    NOT NULL REFERENCES prompts(name) DEFERRABLE INITIALLY DEFERRED,
  version     INTEGER NOT NULL CHECK (version >= 1),
  text        TEXT    NOT NULL,
  author      TEXT    NOT NULL DEFAULT '',
  reason      TEXT    NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  UNIQUE (prompt_name, version)
);

-- One row per LLM call.
CREATE TABLE usage (
  id                    INTEGER PRIMARY KEY,
  ts                    INTEGER NOT NULL,
  conversation_id       INTEGER REFERENCES conversations(id) ON DELETE SET NULL,
  user_id               INTEGER REFERENCES users(id) ON DELETE SET NULL,
  purpose               TEXT    NOT NULL,  -- reply, summary, memory, capability, …
  model_requested       TEXT    NOT NULL,
  model_answered        TEXT,
  provider              TEXT,
  prompt_tokens         INTEGER NOT NULL DEFAULT 0,
  completion_tokens     INTEGER NOT NULL DEFAULT 0,
  cached_tokens         INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens      INTEGER NOT NULL DEFAULT 0,
  latency_ms            INTEGER NOT NULL DEFAULT 0,
  cost_actual_nanousd    INTEGER,  -- provider's usage.cost; NULL when not reported
  cost_estimated_nanousd INTEGER,  -- from prices.yaml; NULL when the price is unknown
  cost_source           TEXT    NOT NULL CHECK (cost_source IN ('actual', 'estimated', 'unknown')),
  pricing_version       TEXT,
  capability_steps      INTEGER NOT NULL DEFAULT 0,
  success               INTEGER NOT NULL CHECK (success IN (0, 1)),
  error_kind            TEXT
);
CREATE INDEX usage_ts ON usage(ts);
CREATE INDEX usage_model_ts ON usage(model_answered, ts);
CREATE INDEX usage_user_ts ON usage(user_id, ts);

-- Snapshots of the provider's credit state (OpenRouter /api/v1/key and /credits).
CREATE TABLE credit_balance (
  id                  INTEGER PRIMARY KEY,
  ts                  INTEGER NOT NULL,
  provider            TEXT    NOT NULL,
  limit_nanousd       INTEGER,  -- NULL: no limit
  usage_nanousd       INTEGER NOT NULL,
  remaining_nanousd   INTEGER,
  is_free_tier        INTEGER NOT NULL DEFAULT 0,
  raw                 TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(raw))
);
CREATE INDEX credit_balance_provider_ts ON credit_balance(provider, ts);

-- Alerts are deduplicated per (kind, period_key), e.g. ('low_balance', '2026-11-23').
CREATE TABLE credit_alerts (
  id           INTEGER PRIMARY KEY,
  ts           INTEGER NOT NULL,
  kind         TEXT    NOT NULL,
  severity     TEXT    NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  period_key   TEXT    NOT NULL,
  message      TEXT    NOT NULL,
  delivered_at INTEGER,
  UNIQUE (kind, period_key)
);

CREATE TABLE reminders (
  id              INTEGER PRIMARY KEY,
  user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  conversation_id INTEGER REFERENCES conversations(id) ON DELETE SET NULL,
  due_at          INTEGER NOT NULL,
  text            TEXT    NOT NULL,
  state           TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'fired', 'cancelled')),
  created_at      INTEGER NOT NULL
);
CREATE INDEX reminders_due ON reminders(state, due_at);

-- Replies owed. Written before the send, marked sent after; 'unknown' when a crash may have
-- happened after the send (never sent twice).
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY,
  conversation_id INTEGER REFERENCES conversations(id) ON DELETE SET NULL,
  channel         TEXT    NOT NULL,
  target          TEXT    NOT NULL,
  body            TEXT    NOT NULL,
  state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'unknown')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX outbox_state ON outbox(state, id);
