-- Which user message a turn answered, by id: "was this message answered?" after a crash used
-- to compare millisecond timestamps, and the previous turn's rows written in the same
-- millisecond as the next message made that message look answered (it was never answered).
--
-- usage.message_id: the last user message of the turn a call belongs to (turn and tool_step
-- calls); NULL for other calls and rows written before this migration.
-- outbox.reply_to: the same for the reply's entries; NULL for alerts, reminders and older rows.
ALTER TABLE usage ADD COLUMN message_id INTEGER;
ALTER TABLE outbox ADD COLUMN reply_to INTEGER;
