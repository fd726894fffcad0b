-- Usage rows also say whether their token counts are the client's estimate (a stream that ended
-- without usage, or broke off) and which generation they were (OpenRouter's X-Generation-Id),
-- so that the provider's own records can be matched later.
ALTER TABLE usage ADD COLUMN tokens_estimated INTEGER NOT NULL DEFAULT 0
  CHECK (tokens_estimated IN (0, 1));
ALTER TABLE usage ADD COLUMN generation_id TEXT;
CREATE INDEX usage_user_ts_cost ON usage(user_id, ts, cost_actual_nanousd, cost_estimated_nanousd);
