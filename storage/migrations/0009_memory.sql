-- Memory as the seed schemas describe it: kinds, time, supersession instead of deletion, an
-- audit trail of every change, relations, conversation summaries, a small per-user core block,
-- and the vectors of hybrid recall. Nothing here is deleted automatically: a changed fact is
-- superseded (valid_to, superseded_by), a forgotten one is marked (deleted_at) and purged with
-- its vectors after a grace period.

-- What a memory is (one column for the layers of the seed schemas).
ALTER TABLE memories ADD COLUMN kind TEXT NOT NULL DEFAULT 'fact' CHECK (kind IN (
  'fact', 'preference', 'event', 'emotion', 'goal', 'habit', 'decision', 'identity',
  'procedure', 'insight'));
-- When it happened (an event, a decision), if known; created_at is when parley learnt it.
ALTER TABLE memories ADD COLUMN event_at INTEGER;
-- Until when it was true: set when a newer memory supersedes it (superseded_by).
ALTER TABLE memories ADD COLUMN valid_to INTEGER;
ALTER TABLE memories ADD COLUMN superseded_by INTEGER REFERENCES memories(id) ON DELETE SET NULL;
ALTER TABLE memories ADD COLUMN confidence REAL NOT NULL DEFAULT 1.0
  CHECK (confidence >= 0 AND confidence <= 1);
-- Who wrote it: the user (a command), the model through the memory tool, automatic
-- extraction, or an operator's import.
ALTER TABLE memories ADD COLUMN source TEXT NOT NULL DEFAULT 'user'
  CHECK (source IN ('user', 'tool', 'extracted', 'import'));
ALTER TABLE memories ADD COLUMN source_message_id INTEGER;
-- Of the normalised text (lower case, blanks collapsed): an exact duplicate is never a new
-- memory. Empty for rows written before this migration (compared by text instead).
ALTER TABLE memories ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE memories ADD COLUMN access_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE memories ADD COLUMN last_accessed_at INTEGER;
ALTER TABLE memories ADD COLUMN deleted_at INTEGER;
-- An importer's own id, unique per user: importing it again updates that memory.
ALTER TABLE memories ADD COLUMN external_id TEXT;

CREATE INDEX memories_hash ON memories(user_id, content_hash) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX memories_external ON memories(user_id, external_id)
  WHERE external_id IS NOT NULL;
CREATE INDEX memories_deleted ON memories(deleted_at) WHERE deleted_at IS NOT NULL;

-- Every change to a memory: the audit trail, and what /undo reverses. memory_id is not a
-- foreign key: the trail outlives a purged memory.
CREATE TABLE memory_events (
  id                INTEGER PRIMARY KEY,
  memory_id         INTEGER NOT NULL,
  user_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  op                TEXT    NOT NULL
    CHECK (op IN ('ADD', 'UPDATE', 'SUPERSEDE', 'NOOP', 'FORGET', 'RESTORE')),
  old_text          TEXT,
  new_text          TEXT,
  -- SUPERSEDE: the memory that replaced this one.
  related_id        INTEGER,
  reason            TEXT    NOT NULL DEFAULT '',
  source            TEXT    NOT NULL DEFAULT 'user',
  source_message_id INTEGER,
  model             TEXT    NOT NULL DEFAULT '',
  created_at        INTEGER NOT NULL
);
CREATE INDEX memory_events_user ON memory_events(user_id, id);
CREATE INDEX memory_events_memory ON memory_events(memory_id, id);

-- Links between memories found by extraction (a goal and its habit, a decision and its
-- outcome).
CREATE TABLE memory_relations (
  memory_id  INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
  related_id INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
  type       TEXT    NOT NULL,
  strength   REAL    NOT NULL DEFAULT 1.0 CHECK (strength >= 0 AND strength <= 1),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (memory_id, related_id, type)
) WITHOUT ROWID;
CREATE INDEX memory_relations_related ON memory_relations(related_id);

-- A memory's vector for one embedding model and dimension: L2-normalised, then int8 with a
-- scale (value ≈ byte · scale). Spaces never mix: recall compares vectors of one (model,
-- dimensions) only, and a model change re-embeds in the background.
CREATE TABLE memory_vectors (
  memory_id  INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
  model      TEXT    NOT NULL,
  dimensions INTEGER NOT NULL CHECK (dimensions > 0),
  scale      REAL    NOT NULL,
  vector     BLOB    NOT NULL CHECK (length(vector) = dimensions),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (model, dimensions, memory_id)
) WITHOUT ROWID;

-- Embeddings already paid for, by (model, dimensions, hash of the text).
CREATE TABLE embedding_cache (
  model      TEXT    NOT NULL,
  dimensions INTEGER NOT NULL,
  text_hash  TEXT    NOT NULL,
  scale      REAL    NOT NULL,
  vector     BLOB    NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (model, dimensions, text_hash)
) WITHOUT ROWID;

-- Misspelt names: a trigram index over the same text (recall's fuzzy path).
CREATE VIRTUAL TABLE memories_trigram USING fts5(
  content,
  content = 'memories', content_rowid = 'id',
  tokenize = 'trigram'
);
INSERT INTO memories_trigram(memories_trigram) VALUES ('rebuild');
CREATE TRIGGER memories_trigram_insert AFTER INSERT ON memories BEGIN
  INSERT INTO memories_trigram(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER memories_trigram_delete AFTER DELETE ON memories BEGIN
  INSERT INTO memories_trigram(memories_trigram, rowid, content)
  VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER memories_trigram_update AFTER UPDATE OF content ON memories BEGIN
  INSERT INTO memories_trigram(memories_trigram, rowid, content)
  VALUES ('delete', old.id, old.content);
  INSERT INTO memories_trigram(rowid, content) VALUES (new.id, new.content);
END;

-- The short-term layer: what a conversation said before the span the prompt still holds,
-- summarised incrementally (the previous summary + the messages newly dropped).
CREATE TABLE conversation_summaries (
  id                 INTEGER PRIMARY KEY,
  conversation_id    INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  through_message_id INTEGER NOT NULL,  -- every message up to this id is in the summary
  text               TEXT    NOT NULL,
  tokens             INTEGER NOT NULL DEFAULT 0,
  model              TEXT    NOT NULL DEFAULT '',
  created_at         INTEGER NOT NULL
);
CREATE INDEX conversation_summaries_latest ON conversation_summaries(conversation_id, id);

-- Always in the prompt, small and bounded: name, pronouns, time zone, a few identity facts.
-- The user sees and edits it.
CREATE TABLE memory_core (
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  key        TEXT    NOT NULL CHECK (length(key) BETWEEN 1 AND 40),
  value      TEXT    NOT NULL CHECK (length(value) BETWEEN 1 AND 200),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, key)
) WITHOUT ROWID;

-- "Off the record": no automatic extraction from this conversation.
ALTER TABLE conversations ADD COLUMN memory_off INTEGER NOT NULL DEFAULT 0
  CHECK (memory_off IN (0, 1));
