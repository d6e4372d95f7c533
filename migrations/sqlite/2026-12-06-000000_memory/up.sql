-- Story memory: provenance and structured state on the story bible, the memory state of
-- chapters, which entities each chapter names, the remembered records (the record of the
-- memory index: text, story time, vector, keywords, with an FTS5 index over the keywords)
-- and what a generation job's prompt was given. See the PostgreSQL twin for the meaning.

ALTER TABLE chapters ADD COLUMN summary_origin TEXT NOT NULL DEFAULT 'AUTHOR'
    CHECK (summary_origin IN ('AUTHOR', 'EXTRACTED'));

ALTER TABLE entities ADD COLUMN origin TEXT NOT NULL DEFAULT 'AUTHOR' CHECK (origin IN ('AUTHOR', 'EXTRACTED'));
ALTER TABLE entities ADD COLUMN origin_chapter_id TEXT REFERENCES chapters (id) ON DELETE SET NULL;
ALTER TABLE entities ADD COLUMN span_start INTEGER;
ALTER TABLE entities ADD COLUMN span_end INTEGER;

ALTER TABLE entity_states ADD COLUMN vital TEXT CHECK (vital IN ('ALIVE', 'DEAD'));
ALTER TABLE entity_states ADD COLUMN location_id TEXT REFERENCES entities (id) ON DELETE SET NULL;
ALTER TABLE entity_states ADD COLUMN holder_id TEXT REFERENCES entities (id) ON DELETE SET NULL;
ALTER TABLE entity_states ADD COLUMN lost INTEGER NOT NULL DEFAULT 0 CHECK (lost IN (0, 1));
ALTER TABLE entity_states ADD COLUMN injuries TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(injuries));
ALTER TABLE entity_states ADD COLUMN origin TEXT NOT NULL DEFAULT 'AUTHOR' CHECK (origin IN ('AUTHOR', 'EXTRACTED'));
ALTER TABLE entity_states ADD COLUMN origin_chapter_id TEXT REFERENCES chapters (id) ON DELETE SET NULL;
ALTER TABLE entity_states ADD COLUMN span_start INTEGER;
ALTER TABLE entity_states ADD COLUMN span_end INTEGER;
CREATE INDEX entity_states_origin_idx ON entity_states (origin_chapter_id) WHERE origin = 'EXTRACTED';

ALTER TABLE relations ADD COLUMN origin TEXT NOT NULL DEFAULT 'AUTHOR' CHECK (origin IN ('AUTHOR', 'EXTRACTED'));
ALTER TABLE relations ADD COLUMN origin_chapter_id TEXT REFERENCES chapters (id) ON DELETE SET NULL;
ALTER TABLE relations ADD COLUMN span_start INTEGER;
ALTER TABLE relations ADD COLUMN span_end INTEGER;
CREATE INDEX relations_origin_idx ON relations (origin_chapter_id) WHERE origin = 'EXTRACTED';

ALTER TABLE events ADD COLUMN origin TEXT NOT NULL DEFAULT 'AUTHOR' CHECK (origin IN ('AUTHOR', 'EXTRACTED'));
ALTER TABLE events ADD COLUMN origin_chapter_id TEXT REFERENCES chapters (id) ON DELETE SET NULL;
ALTER TABLE events ADD COLUMN span_start INTEGER;
ALTER TABLE events ADD COLUMN span_end INTEGER;
CREATE INDEX events_origin_idx ON events (origin_chapter_id) WHERE origin = 'EXTRACTED';

ALTER TABLE foreshadowing ADD COLUMN origin TEXT NOT NULL DEFAULT 'AUTHOR' CHECK (origin IN ('AUTHOR', 'EXTRACTED'));
ALTER TABLE foreshadowing ADD COLUMN origin_chapter_id TEXT REFERENCES chapters (id) ON DELETE SET NULL;
ALTER TABLE foreshadowing ADD COLUMN span_start INTEGER;
ALTER TABLE foreshadowing ADD COLUMN span_end INTEGER;
CREATE INDEX foreshadowing_origin_idx ON foreshadowing (origin_chapter_id) WHERE origin = 'EXTRACTED';

ALTER TABLE generation_jobs ADD COLUMN context TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(context));

CREATE TABLE chapter_memory (
    chapter_id         TEXT    NOT NULL PRIMARY KEY REFERENCES chapters (id) ON DELETE CASCADE,
    tenant_id          TEXT    NOT NULL,
    novel_id           TEXT    NOT NULL,
    indexed_version    INTEGER,
    extracted_version  INTEGER,
    failed_version     INTEGER,
    error              TEXT,
    updated_at         TEXT    NOT NULL
) STRICT;
CREATE INDEX chapter_memory_novel_idx ON chapter_memory (tenant_id, novel_id);

CREATE TABLE entity_appearances (
    tenant_id   TEXT NOT NULL,
    entity_id   TEXT NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    chapter_id  TEXT NOT NULL REFERENCES chapters (id) ON DELETE CASCADE,
    PRIMARY KEY (entity_id, chapter_id)
) STRICT;
CREATE INDEX entity_appearances_chapter_idx ON entity_appearances (chapter_id);

CREATE TABLE memory_records (
    id               TEXT    NOT NULL PRIMARY KEY,
    tenant_id        TEXT    NOT NULL,
    novel_id         TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('PASSAGE', 'SUMMARY', 'ENTITY',
                                 'ENTITY_STATE', 'EVENT', 'RELATION', 'FORESHADOWING')),
    source_id        TEXT    NOT NULL,
    ordinal          INTEGER NOT NULL,
    chapter_id       TEXT,
    chapter_seq      INTEGER,
    chapter_version  INTEGER,
    text             TEXT    NOT NULL,
    start_offset     INTEGER,
    end_offset       INTEGER,
    keywords         TEXT    NOT NULL,
    model            TEXT,
    vector           BLOB,
    created_at       TEXT    NOT NULL,
    CONSTRAINT memory_records_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX memory_records_scope_idx ON memory_records (tenant_id, novel_id, chapter_seq);
CREATE INDEX memory_records_source_idx ON memory_records (tenant_id, source_id, kind);
CREATE INDEX memory_records_chapter_idx ON memory_records (chapter_id);

-- Keyword index: one row per record (same rowid). `scope` holds one token naming the
-- novel (`n` + its id without dashes), so a search matches within one novel inside the
-- index itself; `keywords` the segmented, lower-cased words.
CREATE VIRTUAL TABLE memory_fts USING fts5 (scope, keywords, tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER memory_records_fts_insert AFTER INSERT ON memory_records BEGIN
    INSERT INTO memory_fts (rowid, scope, keywords)
    VALUES (new.rowid, 'n' || replace(new.novel_id, '-', ''), new.keywords);
END;
CREATE TRIGGER memory_records_fts_delete AFTER DELETE ON memory_records BEGIN
    DELETE FROM memory_fts WHERE rowid = old.rowid;
END;

CREATE TABLE memory_versions (
    tenant_id  TEXT    NOT NULL,
    novel_id   TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, novel_id),
    CONSTRAINT memory_versions_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
) STRICT;
