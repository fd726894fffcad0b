-- Reminders as the `reminders` built-in keeps them (capabilities/src/builtins/reminders.cpp):
-- the channel a reminder came from (where it is delivered, with its conversation), when it
-- fired, and the index a user's own list reads. Lateness is not stored: it is due_at against the
-- moment the bot looks.

ALTER TABLE reminders ADD COLUMN channel TEXT NOT NULL DEFAULT '';
ALTER TABLE reminders ADD COLUMN fired_at INTEGER;  -- NULL unless state = 'fired'
CREATE INDEX reminders_user ON reminders(user_id, state, due_at);
