-- Automatic memory extraction (bot/pipeline/memory_extractor.h): how far each conversation's
-- messages have been read for memories, so that a message is read once, and a restart goes on
-- where the last process stopped.
ALTER TABLE conversations ADD COLUMN memory_extracted_through INTEGER NOT NULL DEFAULT 0;
