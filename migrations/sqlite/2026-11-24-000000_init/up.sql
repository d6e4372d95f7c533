-- Z-Novel schema v1 (SQLite, the embedded default). Same tables, columns and constraints
-- as migrations/postgres, with these differences:
-- * STRICT tables; uuid, timestamps (fixed-width UTC text, e.g. 2026-11-24T23:59:59.123456Z,
--   so text order is time order), dates (YYYY-MM-DD) and JSON are TEXT; booleans INTEGER;
-- * optional references are plain foreign keys with ON DELETE SET NULL (SQLite cannot
--   clear one column of a composite key); parent references are composite with
--   tenant_id, as on PostgreSQL;
-- * no row-level security (one process owns the file); the code filters by tenant.
-- The connection must run PRAGMA foreign_keys = ON (the adapter does, on every one).

CREATE TABLE tenants (
    id                      TEXT    NOT NULL PRIMARY KEY,
    name                    TEXT    NOT NULL,
    slug                    TEXT    NOT NULL,
    status                  TEXT    NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    max_novels              INTEGER NOT NULL,
    max_chapters_per_novel  INTEGER NOT NULL,
    max_tokens_per_day      INTEGER NOT NULL,
    settings                TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
    created_at              TEXT    NOT NULL,
    updated_at              TEXT    NOT NULL,
    CONSTRAINT tenants_slug_key UNIQUE (slug)
) STRICT;

CREATE TABLE users (
    id            TEXT NOT NULL PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('ADMIN', 'MEMBER', 'VIEWER')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    CONSTRAINT users_tenant_email_key UNIQUE (tenant_id, email),
    CONSTRAINT users_tenant_id_key UNIQUE (tenant_id, id)
) STRICT;

CREATE TABLE api_keys (
    id            TEXT NOT NULL PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    scopes        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT,
    CONSTRAINT api_keys_secret_hash_key UNIQUE (secret_hash),
    CONSTRAINT api_keys_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT api_keys_user_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX api_keys_user_idx ON api_keys (tenant_id, user_id, id);

CREATE TABLE novels (
    id                 TEXT    NOT NULL PRIMARY KEY,
    tenant_id          TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title              TEXT    NOT NULL,
    description        TEXT    NOT NULL,
    genre              TEXT    NOT NULL,
    language           TEXT    NOT NULL,
    target_word_count  INTEGER,
    style_guide        TEXT    NOT NULL,
    world_settings     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(world_settings)),
    time_system        TEXT    NOT NULL,
    status             TEXT    NOT NULL
        CHECK (status IN ('DRAFT', 'WRITING', 'COMPLETED', 'ARCHIVED')),
    word_count         INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    CONSTRAINT novels_tenant_id_key UNIQUE (tenant_id, id)
) STRICT;

CREATE TABLE volumes (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    novel_id    TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    title       TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    CONSTRAINT volumes_novel_seq_key UNIQUE (novel_id, seq),
    CONSTRAINT volumes_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT volumes_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE TABLE chapters (
    id                 TEXT    NOT NULL PRIMARY KEY,
    tenant_id          TEXT    NOT NULL,
    novel_id           TEXT    NOT NULL,
    volume_id          TEXT    REFERENCES volumes (id) ON DELETE SET NULL,
    seq                INTEGER NOT NULL,
    title              TEXT    NOT NULL,
    outline            TEXT    NOT NULL,
    content            TEXT    NOT NULL,
    summary            TEXT    NOT NULL,
    story_time_start   INTEGER,
    story_time_end     INTEGER,
    word_count         INTEGER NOT NULL DEFAULT 0,
    target_word_count  INTEGER,
    status             TEXT    NOT NULL
        CHECK (status IN ('DRAFT', 'GENERATING', 'REVIEW', 'COMPLETED')),
    version            INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    -- seq is unique in the novel whatever the volume (also when volume_id is NULL).
    CONSTRAINT chapters_novel_seq_key UNIQUE (novel_id, seq),
    CONSTRAINT chapters_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT chapters_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX chapters_volume_idx ON chapters (volume_id);

CREATE TABLE generation_jobs (
    id                 TEXT    NOT NULL PRIMARY KEY,
    tenant_id          TEXT    NOT NULL,
    novel_id           TEXT    NOT NULL,
    chapter_id         TEXT    REFERENCES chapters (id) ON DELETE SET NULL,
    kind               TEXT    NOT NULL CHECK (kind IN ('DRAFT', 'CONTINUE', 'REWRITE',
        'POLISH', 'SUMMARIZE', 'EXTRACT_MEMORY', 'VALIDATE', 'IMPORT', 'EXPORT')),
    status             TEXT    NOT NULL
        CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    priority           INTEGER NOT NULL DEFAULT 0,
    input              TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(input)),
    idempotency_key    TEXT,
    provider           TEXT,
    model              TEXT,
    fallback_used      INTEGER NOT NULL DEFAULT 0 CHECK (fallback_used IN (0, 1)),
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    queued_at          TEXT    NOT NULL,
    started_at         TEXT,
    first_token_at     TEXT,
    finished_at        TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    error              TEXT,
    result             TEXT    CHECK (result IS NULL OR json_valid(result)),
    created_by         TEXT    REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT generation_jobs_idempotency_key UNIQUE (tenant_id, idempotency_key),
    CONSTRAINT generation_jobs_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT generation_jobs_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX generation_jobs_novel_idx ON generation_jobs (novel_id, id);
CREATE INDEX generation_jobs_chapter_idx ON generation_jobs (chapter_id);
CREATE INDEX generation_jobs_created_by_idx ON generation_jobs (created_by);
CREATE INDEX generation_jobs_status_idx ON generation_jobs (status, priority DESC, queued_at);

CREATE TABLE chapter_revisions (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    chapter_id  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    content     TEXT    NOT NULL,
    word_count  INTEGER NOT NULL,
    source      TEXT    NOT NULL
        CHECK (source IN ('AUTHOR', 'GENERATION', 'ROLLBACK', 'IMPORT')),
    created_by  TEXT    REFERENCES users (id) ON DELETE SET NULL,
    job_id      TEXT    REFERENCES generation_jobs (id) ON DELETE SET NULL,
    note        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    CONSTRAINT chapter_revisions_chapter_version_key UNIQUE (chapter_id, version),
    CONSTRAINT chapter_revisions_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT chapter_revisions_chapter_fkey FOREIGN KEY (tenant_id, chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX chapter_revisions_created_by_idx ON chapter_revisions (created_by);
CREATE INDEX chapter_revisions_job_idx ON chapter_revisions (job_id);

CREATE TABLE entities (
    id                 TEXT    NOT NULL PRIMARY KEY,
    tenant_id          TEXT    NOT NULL,
    novel_id           TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    aliases            TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(aliases)),
    kind               TEXT    NOT NULL
        CHECK (kind IN ('CHARACTER', 'LOCATION', 'ITEM', 'ORGANIZATION', 'CONCEPT')),
    description        TEXT    NOT NULL,
    attributes         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
    importance         INTEGER NOT NULL CHECK (importance BETWEEN 0 AND 100),
    current_state      TEXT    NOT NULL,
    first_chapter_seq  INTEGER,
    last_chapter_seq   INTEGER,
    appearance_count   INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    CONSTRAINT entities_novel_kind_name_key UNIQUE (novel_id, kind, name),
    CONSTRAINT entities_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT entities_novel_id_key UNIQUE (novel_id, id),
    CONSTRAINT entities_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE TABLE entity_states (
    id                 TEXT    NOT NULL PRIMARY KEY,
    tenant_id          TEXT    NOT NULL,
    entity_id          TEXT    NOT NULL,
    chapter_id         TEXT    REFERENCES chapters (id) ON DELETE SET NULL,
    story_time         INTEGER,
    state              TEXT    NOT NULL,
    attribute_changes  TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(attribute_changes)),
    created_at         TEXT    NOT NULL,
    CONSTRAINT entity_states_entity_fkey FOREIGN KEY (tenant_id, entity_id)
        REFERENCES entities (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX entity_states_entity_idx ON entity_states (entity_id, id);
CREATE INDEX entity_states_chapter_idx ON entity_states (chapter_id);

CREATE TABLE relations (
    id                TEXT NOT NULL PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    novel_id          TEXT NOT NULL,
    source_id         TEXT NOT NULL,
    target_id         TEXT NOT NULL,
    kind              TEXT NOT NULL,
    strength          REAL NOT NULL CHECK (strength >= 0 AND strength <= 1),
    description       TEXT NOT NULL,
    since_chapter_id  TEXT REFERENCES chapters (id) ON DELETE SET NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    CONSTRAINT relations_source_target_kind_key UNIQUE (source_id, target_id, kind),
    CONSTRAINT relations_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE,
    -- both ends must be entities of the relation's novel.
    CONSTRAINT relations_source_fkey FOREIGN KEY (novel_id, source_id)
        REFERENCES entities (novel_id, id) ON DELETE CASCADE,
    CONSTRAINT relations_target_fkey FOREIGN KEY (novel_id, target_id)
        REFERENCES entities (novel_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX relations_source_idx ON relations (source_id, id);
CREATE INDEX relations_target_idx ON relations (target_id, id);
CREATE INDEX relations_since_chapter_idx ON relations (since_chapter_id);

CREATE TABLE events (
    id                TEXT    NOT NULL PRIMARY KEY,
    tenant_id         TEXT    NOT NULL,
    novel_id          TEXT    NOT NULL,
    chapter_id        TEXT    REFERENCES chapters (id) ON DELETE SET NULL,
    title             TEXT    NOT NULL,
    summary           TEXT    NOT NULL,
    story_time_start  INTEGER NOT NULL,
    story_time_end    INTEGER,
    location_id       TEXT    REFERENCES entities (id) ON DELETE SET NULL,
    involved          TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(involved)),
    importance        INTEGER NOT NULL CHECK (importance BETWEEN 0 AND 100),
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    CONSTRAINT events_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX events_timeline_idx ON events (novel_id, story_time_start, id);
CREATE INDEX events_chapter_idx ON events (chapter_id);
CREATE INDEX events_location_idx ON events (location_id);

CREATE TABLE foreshadowing (
    id                   TEXT NOT NULL PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    novel_id             TEXT NOT NULL,
    title                TEXT NOT NULL,
    description          TEXT NOT NULL,
    planted_chapter_id   TEXT REFERENCES chapters (id) ON DELETE SET NULL,
    expected_payoff      TEXT NOT NULL,
    resolved_chapter_id  TEXT REFERENCES chapters (id) ON DELETE SET NULL,
    status               TEXT NOT NULL CHECK (status IN ('OPEN', 'RESOLVED', 'ABANDONED')),
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    CONSTRAINT foreshadowing_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX foreshadowing_novel_idx ON foreshadowing (novel_id, id);
CREATE INDEX foreshadowing_planted_idx ON foreshadowing (planted_chapter_id);
CREATE INDEX foreshadowing_resolved_idx ON foreshadowing (resolved_chapter_id);

CREATE TABLE validation_reports (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    chapter_id   TEXT    NOT NULL,
    revision_id  TEXT,
    issues       TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(issues)),
    passed       INTEGER NOT NULL CHECK (passed IN (0, 1)),
    created_at   TEXT    NOT NULL,
    CONSTRAINT validation_reports_chapter_fkey FOREIGN KEY (tenant_id, chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT validation_reports_revision_fkey FOREIGN KEY (tenant_id, revision_id)
        REFERENCES chapter_revisions (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX validation_reports_chapter_idx ON validation_reports (chapter_id, id);
CREATE INDEX validation_reports_revision_idx ON validation_reports (revision_id);

CREATE TABLE audit_logs (
    id             TEXT NOT NULL PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- no foreign key: the log keeps who acted even after the user is gone.
    actor_user_id  TEXT,
    action         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    request_id     TEXT,
    detail         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail)),
    created_at     TEXT NOT NULL,
    CONSTRAINT audit_logs_tenant_id_key UNIQUE (tenant_id, id)
) STRICT;
CREATE INDEX audit_logs_resource_idx ON audit_logs (tenant_id, resource_type, resource_id);

CREATE TABLE usage_records (
    id                 TEXT    NOT NULL PRIMARY KEY,
    tenant_id          TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day                TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    updated_at         TEXT    NOT NULL,
    CONSTRAINT usage_records_tenant_day_model_key UNIQUE (tenant_id, day, model)
) STRICT;
