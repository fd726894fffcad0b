-- Channels that push (console, Discord, email) send their pending outbox entries, oldest first:
-- found by channel without walking other channels' entries (HTTP's stay pending: it cannot push).
CREATE INDEX outbox_channel_pending ON outbox(channel, state, id);

-- Senders the access policy turned away, so that each is told once, not once per message (and
-- not again after a restart). No message text is kept for them.
CREATE TABLE access_refusals (
  channel TEXT NOT NULL,
  external_id TEXT NOT NULL,
  first_at INTEGER NOT NULL,
  last_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (channel, external_id)
) WITHOUT ROWID;
