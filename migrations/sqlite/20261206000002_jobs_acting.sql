-- A job keeps whom it acts for (the person who started it, or who committed its preview), so
-- the replica that resumes it after its own replica died acts and audits as that person.
-- `resumed` counts the times another run took it over.
ALTER TABLE jobs ADD COLUMN acting TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN resumed BIGINT NOT NULL DEFAULT 0;
