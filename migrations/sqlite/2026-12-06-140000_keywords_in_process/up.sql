-- Keyword search runs in process over each novel's postings (built from
-- memory_records.keywords, see infra/src/memory/keywords.rs): FTS5 ranked every match of
-- a 100,000-passage novel before its story-time filter (134 ms a question). The FTS5
-- table and the triggers that fed it go.
DROP TRIGGER memory_records_fts_insert;
DROP TRIGGER memory_records_fts_delete;
DROP TABLE memory_fts;
