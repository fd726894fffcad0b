-- When a budget's remainder could not cover a call's max_tokens, the call was sent asking for
-- fewer completion tokens rather than refused: how many it was allowed (NULL: as requested).
ALTER TABLE usage ADD COLUMN max_tokens_capped INTEGER;
