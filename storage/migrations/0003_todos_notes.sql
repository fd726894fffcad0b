-- Built-in capabilities' per-user data: the todo list and notes (capabilities/src/builtins/).
-- Timestamps are Unix epoch milliseconds (UTC), as everywhere else in the schema.

CREATE TABLE todos (
  id         INTEGER PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  text       TEXT    NOT NULL CHECK (length(text) > 0),
  done_at    INTEGER,  -- NULL: open
  created_at INTEGER NOT NULL
);
CREATE INDEX todos_user ON todos(user_id, id);

CREATE TABLE notes (
  id         INTEGER PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title      TEXT    NOT NULL DEFAULT '',
  body       TEXT    NOT NULL CHECK (length(body) > 0),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX notes_user ON notes(user_id, updated_at DESC);

-- External-content FTS5 index over notes, scoped to one user inside the index like
-- memories_fts ("user_id : 42 AND (...)"), never filtered afterwards.
CREATE VIRTUAL TABLE notes_fts USING fts5(
  user_id, title, body,
  content = 'notes', content_rowid = 'id',
  tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER notes_fts_insert AFTER INSERT ON notes BEGIN
  INSERT INTO notes_fts(rowid, user_id, title, body)
  VALUES (new.id, new.user_id, new.title, new.body);
END;
CREATE TRIGGER notes_fts_delete AFTER DELETE ON notes BEGIN
  INSERT INTO notes_fts(notes_fts, rowid, user_id, title, body)
  VALUES ('delete', old.id, old.user_id, old.title, old.body);
END;
CREATE TRIGGER notes_fts_update AFTER UPDATE OF user_id, title, body ON notes BEGIN
  INSERT INTO notes_fts(notes_fts, rowid, user_id, title, body)
  VALUES ('delete', old.id, old.user_id, old.title, old.body);
  INSERT INTO notes_fts(rowid, user_id, title, body)
  VALUES (new.id, new.user_id, new.title, new.body);
END;
