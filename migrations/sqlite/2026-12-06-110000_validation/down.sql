DROP INDEX validation_reports_version_idx;
ALTER TABLE validation_reports DROP COLUMN complete;
ALTER TABLE validation_reports DROP COLUMN chapter_version;
