-- A running job a person paused: it goes on with what is under way, and starts nothing new
-- until resumed (a power run).
ALTER TABLE jobs ADD COLUMN pause_requested INTEGER NOT NULL DEFAULT 0;
