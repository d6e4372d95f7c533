-- Story memory: provenance and structured state on the story bible, the memory state of
-- chapters, which entities each chapter names, the remembered records (the record of the
-- memory index: text, story time, vector, keywords) and what a generation job's prompt
-- was given.

-- Who wrote a bible record: the author, or extraction from a chapter (with the span of
-- its text). An author's edit of an extracted record makes it the author's.
ALTER TABLE chapters ADD COLUMN summary_origin text NOT NULL DEFAULT 'AUTHOR'
    CHECK (summary_origin IN ('AUTHOR', 'EXTRACTED'));

ALTER TABLE entities
    ADD COLUMN origin text NOT NULL DEFAULT 'AUTHOR' CHECK (origin IN ('AUTHOR', 'EXTRACTED')),
    ADD COLUMN origin_chapter_id uuid,
    ADD COLUMN span_start integer,
    ADD COLUMN span_end integer,
    ADD CONSTRAINT entities_origin_chapter_fkey FOREIGN KEY (tenant_id, origin_chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE SET NULL (origin_chapter_id);

ALTER TABLE entity_states
    ADD COLUMN vital text CHECK (vital IN ('ALIVE', 'DEAD')),
    ADD COLUMN location_id uuid,
    ADD COLUMN holder_id uuid,
    ADD COLUMN lost boolean NOT NULL DEFAULT false,
    ADD COLUMN injuries jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN origin text NOT NULL DEFAULT 'AUTHOR' CHECK (origin IN ('AUTHOR', 'EXTRACTED')),
    ADD COLUMN origin_chapter_id uuid,
    ADD COLUMN span_start integer,
    ADD COLUMN span_end integer,
    ADD CONSTRAINT entity_states_location_fkey FOREIGN KEY (tenant_id, location_id)
        REFERENCES entities (tenant_id, id) ON DELETE SET NULL (location_id),
    ADD CONSTRAINT entity_states_holder_fkey FOREIGN KEY (tenant_id, holder_id)
        REFERENCES entities (tenant_id, id) ON DELETE SET NULL (holder_id),
    ADD CONSTRAINT entity_states_origin_chapter_fkey FOREIGN KEY (tenant_id, origin_chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE SET NULL (origin_chapter_id);
CREATE INDEX entity_states_origin_idx ON entity_states (origin_chapter_id) WHERE origin = 'EXTRACTED';

ALTER TABLE relations
    ADD COLUMN origin text NOT NULL DEFAULT 'AUTHOR' CHECK (origin IN ('AUTHOR', 'EXTRACTED')),
    ADD COLUMN origin_chapter_id uuid,
    ADD COLUMN span_start integer,
    ADD COLUMN span_end integer,
    ADD CONSTRAINT relations_origin_chapter_fkey FOREIGN KEY (tenant_id, origin_chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE SET NULL (origin_chapter_id);
CREATE INDEX relations_origin_idx ON relations (origin_chapter_id) WHERE origin = 'EXTRACTED';

ALTER TABLE events
    ADD COLUMN origin text NOT NULL DEFAULT 'AUTHOR' CHECK (origin IN ('AUTHOR', 'EXTRACTED')),
    ADD COLUMN origin_chapter_id uuid,
    ADD COLUMN span_start integer,
    ADD COLUMN span_end integer,
    ADD CONSTRAINT events_origin_chapter_fkey FOREIGN KEY (tenant_id, origin_chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE SET NULL (origin_chapter_id);
CREATE INDEX events_origin_idx ON events (origin_chapter_id) WHERE origin = 'EXTRACTED';

ALTER TABLE foreshadowing
    ADD COLUMN origin text NOT NULL DEFAULT 'AUTHOR' CHECK (origin IN ('AUTHOR', 'EXTRACTED')),
    ADD COLUMN origin_chapter_id uuid,
    ADD COLUMN span_start integer,
    ADD COLUMN span_end integer,
    ADD CONSTRAINT foreshadowing_origin_chapter_fkey FOREIGN KEY (tenant_id, origin_chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE SET NULL (origin_chapter_id);
CREATE INDEX foreshadowing_origin_idx ON foreshadowing (origin_chapter_id) WHERE origin = 'EXTRACTED';

-- What a generation job's prompt was given from memory (a JSON array of recall hits).
ALTER TABLE generation_jobs ADD COLUMN context jsonb NOT NULL DEFAULT '[]';

-- Which version of each chapter is remembered.
CREATE TABLE chapter_memory (
    chapter_id         uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL,
    novel_id           uuid        NOT NULL,
    indexed_version    integer,
    extracted_version  integer,
    failed_version     integer,
    error              text,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT chapter_memory_chapter_fkey FOREIGN KEY (tenant_id, chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX chapter_memory_novel_idx ON chapter_memory (tenant_id, novel_id);

-- Which entities each chapter names (by name or alias).
CREATE TABLE entity_appearances (
    tenant_id   uuid NOT NULL,
    entity_id   uuid NOT NULL,
    chapter_id  uuid NOT NULL,
    PRIMARY KEY (entity_id, chapter_id),
    CONSTRAINT entity_appearances_entity_fkey FOREIGN KEY (tenant_id, entity_id)
        REFERENCES entities (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT entity_appearances_chapter_fkey FOREIGN KEY (tenant_id, chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX entity_appearances_chapter_idx ON entity_appearances (chapter_id);

-- The remembered records: what the memory index searches (here, or mirrored to Qdrant).
-- `keywords` is the text segmented into words (Chinese by jieba, plus CJK bigrams), so
-- keyword search finds a two-character name inside an unsegmented sentence.
CREATE TABLE memory_records (
    id               uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    novel_id         uuid        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('PASSAGE', 'SUMMARY', 'ENTITY',
                                     'ENTITY_STATE', 'EVENT', 'RELATION', 'FORESHADOWING')),
    source_id        uuid        NOT NULL,
    ordinal          integer     NOT NULL,
    chapter_id       uuid,
    chapter_seq      integer,
    chapter_version  integer,
    text             text        NOT NULL,
    start_offset     integer,
    end_offset       integer,
    keywords         text        NOT NULL,
    keywords_tsv     tsvector    GENERATED ALWAYS AS (to_tsvector('simple', keywords)) STORED,
    model            text,
    vector           bytea,
    created_at       timestamptz NOT NULL,
    CONSTRAINT memory_records_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX memory_records_scope_idx ON memory_records (tenant_id, novel_id, chapter_seq);
CREATE INDEX memory_records_source_idx ON memory_records (tenant_id, source_id, kind);
CREATE INDEX memory_records_chapter_idx ON memory_records (chapter_id);
CREATE INDEX memory_records_keywords_idx ON memory_records USING gin (keywords_tsv);

-- A counter per novel, bumped with every change of its records: processes caching the
-- novel's vectors reload them when it moved.
CREATE TABLE memory_versions (
    tenant_id  uuid   NOT NULL,
    novel_id   uuid   NOT NULL,
    version    bigint NOT NULL,
    PRIMARY KEY (tenant_id, novel_id),
    CONSTRAINT memory_versions_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['chapter_memory', 'entity_appearances', 'memory_records',
        'memory_versions']
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO znovel_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I '
            'USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)',
            t);
    END LOOP;
END
$$;
