-- A habit's reminder comes back: when one fires, the bot's reminder scheduler sets the next for
-- the habit's next scheduled day at the same local time (capabilities::rearm_habit_reminder), so
-- the time of day and its zone are kept with the habit. Pausing cancels the pending one; resuming
-- sets the next.
ALTER TABLE habits ADD COLUMN remind_at TEXT
  CHECK (remind_at IS NULL OR remind_at GLOB '[0-2][0-9]:[0-5][0-9]');
ALTER TABLE habits ADD COLUMN remind_zone TEXT;  -- IANA name; set with remind_at
