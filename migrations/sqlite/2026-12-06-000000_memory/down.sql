DROP TABLE memory_versions;
DROP TRIGGER memory_records_fts_delete;
DROP TRIGGER memory_records_fts_insert;
DROP TABLE memory_fts;
DROP TABLE memory_records;
DROP TABLE entity_appearances;
DROP TABLE chapter_memory;
-- SQLite keeps the added columns (DROP COLUMN of a column with a constraint fails).
