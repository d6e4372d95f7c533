-- Keyword search runs in process over each novel's postings (built from
-- memory_records.keywords, see infra/src/memory/keywords.rs), with statistics of the
-- records a question may see; the generated tsvector and its index go.
DROP INDEX memory_records_keywords_idx;
ALTER TABLE memory_records DROP COLUMN keywords_tsv;
