-- Continuity checking: a validation report belongs to one version of its chapter, and
-- says whether every check ran. See the PostgreSQL twin.

ALTER TABLE validation_reports ADD COLUMN chapter_version INTEGER;
ALTER TABLE validation_reports ADD COLUMN complete INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1));
CREATE INDEX validation_reports_version_idx ON validation_reports (chapter_id, chapter_version, created_at);
