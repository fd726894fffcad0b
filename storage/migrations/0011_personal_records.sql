-- Personal records (capabilities/src/builtins/: journal, mood, habits, goals, decisions,
-- expenses, lists, events). Every row belongs to one user and every statement is scoped by it.
-- Timestamps are Unix epoch milliseconds (UTC) as everywhere else; a `day` is the user's
-- calendar day, 'YYYY-MM-DD', in the zone the user was in when it was written (so that
-- "today's mood" stays that day whatever the zone does later). Scores are integers 1–10, money
-- integer minor units of an ISO 4217 currency, never floating point.

-- journal: entries with optional scores, soft-deleted (deleted_at) and restorable.
CREATE TABLE journal_entries (
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  day         TEXT    NOT NULL,
  at          INTEGER NOT NULL,  -- when it happened (epoch ms)
  title       TEXT    NOT NULL DEFAULT '',
  body        TEXT    NOT NULL CHECK (length(body) > 0),
  mood        INTEGER CHECK (mood BETWEEN 1 AND 10),
  energy      INTEGER CHECK (energy BETWEEN 1 AND 10),
  stress      INTEGER CHECK (stress BETWEEN 1 AND 10),
  sleep_hours REAL    CHECK (sleep_hours BETWEEN 0 AND 24),
  tags        TEXT    NOT NULL DEFAULT '[]',  -- JSON array of lowercase words
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  deleted_at  INTEGER  -- NULL: kept
);
CREATE INDEX journal_user_day ON journal_entries(user_id, day, id);

-- Scoped to one user inside the index ("user_id : 42 AND (...)") like notes_fts; soft-deleted
-- entries stay indexed (a restore needs nothing) and are filtered by the query.
CREATE VIRTUAL TABLE journal_fts USING fts5(
  user_id, title, body,
  content = 'journal_entries', content_rowid = 'id',
  tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER journal_fts_insert AFTER INSERT ON journal_entries BEGIN
  INSERT INTO journal_fts(rowid, user_id, title, body)
  VALUES (new.id, new.user_id, new.title, new.body);
END;
CREATE TRIGGER journal_fts_delete AFTER DELETE ON journal_entries BEGIN
  INSERT INTO journal_fts(journal_fts, rowid, user_id, title, body)
  VALUES ('delete', old.id, old.user_id, old.title, old.body);
END;
CREATE TRIGGER journal_fts_update AFTER UPDATE OF user_id, title, body ON journal_entries BEGIN
  INSERT INTO journal_fts(journal_fts, rowid, user_id, title, body)
  VALUES ('delete', old.id, old.user_id, old.title, old.body);
  INSERT INTO journal_fts(rowid, user_id, title, body)
  VALUES (new.id, new.user_id, new.title, new.body);
END;

-- mood: several logs a day.
CREATE TABLE mood_logs (
  id         INTEGER PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  day        TEXT    NOT NULL,
  at         INTEGER NOT NULL,
  mood       INTEGER NOT NULL CHECK (mood BETWEEN 1 AND 10),
  energy     INTEGER CHECK (energy BETWEEN 1 AND 10),
  stress     INTEGER CHECK (stress BETWEEN 1 AND 10),
  anxiety    INTEGER CHECK (anxiety BETWEEN 1 AND 10),
  tags       TEXT    NOT NULL DEFAULT '[]',
  cause      TEXT    NOT NULL DEFAULT '',  -- what brought it on (the tool's "trigger")
  activity   TEXT    NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE INDEX mood_logs_user_day ON mood_logs(user_id, day, at);

-- habits: daily, on weekdays, or N times a week; one log per habit and day.
CREATE TABLE habits (
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name        TEXT    NOT NULL COLLATE NOCASE CHECK (length(name) > 0),
  frequency   TEXT    NOT NULL CHECK (frequency IN ('daily', 'weekdays', 'weekly')),
  per_week    INTEGER NOT NULL DEFAULT 7 CHECK (per_week BETWEEN 1 AND 7),  -- weekly: N a week
  target      TEXT    NOT NULL DEFAULT '',  -- e.g. "20 minutes"
  status      TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'archived')),
  start_day   TEXT    NOT NULL,
  reminder_id INTEGER REFERENCES reminders(id) ON DELETE SET NULL,
  paused_on   TEXT,  -- the day it was paused or archived (resume excuses the days since)
  created_at  INTEGER NOT NULL,
  UNIQUE (user_id, name)
);
CREATE TABLE habit_logs (
  habit_id INTEGER NOT NULL REFERENCES habits(id) ON DELETE CASCADE,
  user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  day      TEXT    NOT NULL,
  done     INTEGER NOT NULL CHECK (done IN (0, 1)),  -- 0: skipped
  reason   TEXT    NOT NULL DEFAULT '',  -- why it was skipped
  note     TEXT    NOT NULL DEFAULT '',
  at       INTEGER NOT NULL,
  PRIMARY KEY (habit_id, day)
) WITHOUT ROWID;
CREATE INDEX habit_logs_user_day ON habit_logs(user_id, day);

-- goals: a tree (parent_id), with milestones. priority 1 is the highest.
CREATE TABLE goals (
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  parent_id   INTEGER REFERENCES goals(id) ON DELETE SET NULL,
  title       TEXT    NOT NULL CHECK (length(title) > 0),
  description TEXT    NOT NULL DEFAULT '',
  status      TEXT    NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'paused', 'done', 'abandoned')),
  priority    INTEGER NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
  target_day  TEXT,
  progress    INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  closed_at   INTEGER  -- when it became done or abandoned
);
CREATE INDEX goals_user ON goals(user_id, status, priority, target_day);
CREATE TABLE goal_milestones (
  id         INTEGER PRIMARY KEY,
  goal_id    INTEGER NOT NULL REFERENCES goals(id) ON DELETE CASCADE,
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title      TEXT    NOT NULL CHECK (length(title) > 0),
  target_day TEXT,
  done_at    INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX goal_milestones_goal ON goal_milestones(goal_id, id);

-- decisions: what was decided and why, and later how it went.
CREATE TABLE decisions (
  id           INTEGER PRIMARY KEY,
  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  day          TEXT    NOT NULL,
  title        TEXT    NOT NULL CHECK (length(title) > 0),  -- the decision
  alternatives TEXT    NOT NULL DEFAULT '[]',  -- JSON array of strings
  reasons      TEXT    NOT NULL DEFAULT '',
  confidence   INTEGER CHECK (confidence BETWEEN 1 AND 10),
  expected     TEXT    NOT NULL DEFAULT '',  -- the expected outcome
  outcome      TEXT,  -- what happened (NULL: not known yet)
  satisfaction INTEGER CHECK (satisfaction BETWEEN 1 AND 10),
  outcome_at   INTEGER,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);
CREATE INDEX decisions_user_day ON decisions(user_id, day, id);
-- A self-contained index (SQLite 3.40 has no contentless delete): body is the alternatives,
-- reasons, expected and actual outcome, kept in step by the triggers.
CREATE VIRTUAL TABLE decisions_fts USING fts5(
  user_id, title, body,
  tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER decisions_fts_insert AFTER INSERT ON decisions BEGIN
  INSERT INTO decisions_fts(rowid, user_id, title, body)
  VALUES (new.id, new.user_id, new.title,
          new.alternatives || ' ' || new.reasons || ' ' || new.expected || ' ' ||
          coalesce(new.outcome, ''));
END;
CREATE TRIGGER decisions_fts_delete AFTER DELETE ON decisions BEGIN
  DELETE FROM decisions_fts WHERE rowid = old.id;
END;
CREATE TRIGGER decisions_fts_update AFTER UPDATE ON decisions BEGIN
  DELETE FROM decisions_fts WHERE rowid = old.id;
  INSERT INTO decisions_fts(rowid, user_id, title, body)
  VALUES (new.id, new.user_id, new.title,
          new.alternatives || ' ' || new.reasons || ' ' || new.expected || ' ' ||
          coalesce(new.outcome, ''));
END;

-- expenses: integer minor units (cents) of one currency each; currencies are never summed.
CREATE TABLE expenses (
  id           INTEGER PRIMARY KEY,
  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  day          TEXT    NOT NULL,
  amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
  currency     TEXT    NOT NULL CHECK (length(currency) = 3 AND currency = upper(currency)),
  category     TEXT    NOT NULL CHECK (length(category) > 0),  -- lowercase
  note         TEXT    NOT NULL DEFAULT '',
  created_at   INTEGER NOT NULL
);
CREATE INDEX expenses_user_day ON expenses(user_id, day);

-- lists: named lists of items ("groceries", "packing", "todo"). The todo list is the list named
-- "todo": its items move here, keeping their numbers.
CREATE TABLE lists (
  id         INTEGER PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name       TEXT    NOT NULL COLLATE NOCASE CHECK (length(name) > 0),
  created_at INTEGER NOT NULL,
  UNIQUE (user_id, name)
);
CREATE TABLE list_items (
  id         INTEGER PRIMARY KEY,
  list_id    INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  text       TEXT    NOT NULL CHECK (length(text) > 0),
  quantity   REAL    CHECK (quantity > 0),
  unit       TEXT    NOT NULL DEFAULT '',
  done_at    INTEGER,  -- NULL: open
  created_at INTEGER NOT NULL
);
CREATE INDEX list_items_list ON list_items(list_id, id);
CREATE INDEX list_items_user ON list_items(user_id, id);

INSERT INTO lists(user_id, name, created_at)
  SELECT user_id, 'todo', min(created_at) FROM todos GROUP BY user_id;
INSERT INTO list_items(id, list_id, user_id, text, done_at, created_at)
  SELECT t.id, l.id, t.user_id, t.text, t.done_at, t.created_at
  FROM todos t JOIN lists l ON l.user_id = t.user_id AND l.name = 'todo';
DROP TABLE todos;

-- events: a start instant, the zone it was given in (for the calendar file), a duration.
CREATE TABLE events (
  id           INTEGER PRIMARY KEY,
  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  uid          TEXT    NOT NULL UNIQUE,  -- iCalendar UID, stable across exports
  title        TEXT    NOT NULL CHECK (length(title) > 0),
  starts_at    INTEGER NOT NULL,
  zone         TEXT    NOT NULL,  -- IANA name
  all_day      INTEGER NOT NULL DEFAULT 0 CHECK (all_day IN (0, 1)),
  duration_min INTEGER CHECK (duration_min BETWEEN 0 AND 525600),
  place        TEXT    NOT NULL DEFAULT '',
  people       TEXT    NOT NULL DEFAULT '[]',  -- JSON array of names
  importance   INTEGER NOT NULL DEFAULT 3 CHECK (importance BETWEEN 1 AND 5),
  notes        TEXT    NOT NULL DEFAULT '',
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);
CREATE INDEX events_user_start ON events(user_id, starts_at);
