ALTER TABLE memory_records
    ADD COLUMN keywords_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', keywords)) STORED;
CREATE INDEX memory_records_keywords_idx ON memory_records USING gin (keywords_tsv);
