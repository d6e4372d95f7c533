-- Continuity checking: a validation report belongs to one version of its chapter (the
-- latest report of the current version is the chapter's), and says whether every check
-- ran (`complete`). The table, its row-level security and its grants exist since init.

ALTER TABLE validation_reports ADD COLUMN chapter_version integer;
ALTER TABLE validation_reports ADD COLUMN complete boolean NOT NULL DEFAULT true;
CREATE INDEX validation_reports_version_idx ON validation_reports (chapter_id, chapter_version, created_at);
