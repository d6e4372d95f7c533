DROP INDEX validation_reports_version_idx;
ALTER TABLE validation_reports DROP COLUMN complete, DROP COLUMN chapter_version;
