-- Versioned prompts: named labels, the shipped-default bookkeeping, and a generation counter
-- that a running process reads on the turn's path to notice changes made by another process.

-- The `active` label is prompts.active_version; every other label lives here.
CREATE TABLE prompt_labels (
  prompt_name TEXT    NOT NULL REFERENCES prompts(name),
  label       TEXT    NOT NULL CHECK (label <> 'active' AND length(label) BETWEEN 1 AND 32),
  version     INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (prompt_name, label),
  FOREIGN KEY (prompt_name, version) REFERENCES prompt_history(prompt_name, version)
);

-- Hash of the shipped default text this database last saw for the prompt (NULL: not a default).
ALTER TABLE prompts ADD COLUMN default_hash TEXT;

CREATE TABLE prompt_generation (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  value INTEGER NOT NULL
);
INSERT INTO prompt_generation(id, value) VALUES (1, 0);

CREATE TRIGGER prompt_history_generation AFTER INSERT ON prompt_history BEGIN
  UPDATE prompt_generation SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER prompts_generation AFTER UPDATE OF active_version ON prompts BEGIN
  UPDATE prompt_generation SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER prompt_labels_generation_insert AFTER INSERT ON prompt_labels BEGIN
  UPDATE prompt_generation SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER prompt_labels_generation_update AFTER UPDATE ON prompt_labels BEGIN
  UPDATE prompt_generation SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER prompt_labels_generation_delete AFTER DELETE ON prompt_labels BEGIN
  UPDATE prompt_generation SET value = value + 1 WHERE id = 1;
END;
