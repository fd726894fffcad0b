-- Files sent with a reply (a chart, an export, a calendar): kept with the outbox entry they
-- travel with, written in the same transaction, so a crash loses none and a reply owed after a
-- restart still carries them. `token` is the unguessable part of the file's URL on the HTTP
-- channel. A multi-part reply's files go with its last part.
CREATE TABLE outbox_files (
  id         INTEGER PRIMARY KEY,
  outbox_id  INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
  token      TEXT    NOT NULL UNIQUE CHECK (length(token) = 32),
  filename   TEXT    NOT NULL CHECK (length(filename) BETWEEN 1 AND 100),
  media_type TEXT    NOT NULL,
  content    BLOB    NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX outbox_files_entry ON outbox_files(outbox_id, id);
