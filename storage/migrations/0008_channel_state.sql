-- What a channel must remember across restarts, by key: a Discord shard's session (to RESUME
-- rather than IDENTIFY), its identifies per day, later an IMAP mailbox's cursor. The value is
-- the channel's own text (JSON for Discord); no secret is ever stored here.
CREATE TABLE channel_state (
  channel TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (channel, key)
) WITHOUT ROWID;
