-- Z-Novel schema v1 (PostgreSQL 15+).
--
-- Conventions (see migrations/README.md):
-- * ids are UUID v7 (creation-ordered); every tenant-owned row carries tenant_id;
-- * enums are TEXT with a CHECK listing the allowed values (same strings as the domain);
-- * a child points at its parent with a composite (tenant_id, parent_id) foreign key, so
--   a row can never hang off another tenant's parent; optional references use
--   ON DELETE SET NULL (column) so only the reference is cleared, never tenant_id;
-- * every tenant-owned table has FORCE row-level security: a session sees only the rows
--   of the tenant named by the transaction-local setting app.tenant_id, and none when it
--   is unset. The server runs as the role znovel_app (neither superuser, nor owner, nor
--   BYPASSRLS), which this migration creates when missing.

-- The application role. Roles are cluster-wide, so two databases migrating at once may
-- race to create it: the loser's duplicate error is swallowed.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'znovel_app') THEN
        BEGIN
            CREATE ROLE znovel_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'znovel_app', 'MEMBER') THEN
        BEGIN
            GRANT znovel_app TO CURRENT_USER;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;

CREATE TABLE tenants (
    id                      uuid        PRIMARY KEY,
    name                    text        NOT NULL,
    slug                    text        NOT NULL,
    status                  text        NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    max_novels              bigint      NOT NULL,
    max_chapters_per_novel  bigint      NOT NULL,
    max_tokens_per_day      bigint      NOT NULL,
    settings                jsonb       NOT NULL DEFAULT '{}',
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email         text        NOT NULL,
    display_name  text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('ADMIN', 'MEMBER', 'VIEWER')),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT users_tenant_email_key UNIQUE (tenant_id, email),
    CONSTRAINT users_tenant_id_key UNIQUE (tenant_id, id)
);

CREATE TABLE api_keys (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    name          text        NOT NULL,
    prefix        text        NOT NULL,
    secret_hash   text        NOT NULL,
    scopes        jsonb       NOT NULL DEFAULT '[]',
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    CONSTRAINT api_keys_secret_hash_key UNIQUE (secret_hash),
    CONSTRAINT api_keys_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT api_keys_user_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX api_keys_user_idx ON api_keys (tenant_id, user_id, id);

CREATE TABLE novels (
    id                 uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title              text        NOT NULL,
    description        text        NOT NULL,
    genre              text        NOT NULL,
    language           text        NOT NULL,
    target_word_count  bigint,
    style_guide        text        NOT NULL,
    world_settings     jsonb       NOT NULL DEFAULT '{}',
    time_system        text        NOT NULL,
    status             text        NOT NULL
        CHECK (status IN ('DRAFT', 'WRITING', 'COMPLETED', 'ARCHIVED')),
    word_count         bigint      NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT novels_tenant_id_key UNIQUE (tenant_id, id)
);

CREATE TABLE volumes (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    novel_id    uuid        NOT NULL,
    seq         integer     NOT NULL,
    title       text        NOT NULL,
    summary     text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT volumes_novel_seq_key UNIQUE (novel_id, seq),
    CONSTRAINT volumes_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT volumes_novel_id_key UNIQUE (novel_id, id),
    CONSTRAINT volumes_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE chapters (
    id                 uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL,
    novel_id           uuid        NOT NULL,
    volume_id          uuid,
    seq                integer     NOT NULL,
    title              text        NOT NULL,
    outline            text        NOT NULL,
    content            text        NOT NULL,
    summary            text        NOT NULL,
    story_time_start   bigint,
    story_time_end     bigint,
    word_count         bigint      NOT NULL DEFAULT 0,
    target_word_count  bigint,
    status             text        NOT NULL
        CHECK (status IN ('DRAFT', 'GENERATING', 'REVIEW', 'COMPLETED')),
    version            integer     NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    -- seq is unique in the novel whatever the volume (also when volume_id is NULL).
    CONSTRAINT chapters_novel_seq_key UNIQUE (novel_id, seq),
    CONSTRAINT chapters_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT chapters_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE,
    -- the volume must be of the same novel; deleting it keeps the chapter.
    CONSTRAINT chapters_volume_fkey FOREIGN KEY (novel_id, volume_id)
        REFERENCES volumes (novel_id, id) ON DELETE SET NULL (volume_id)
);
CREATE INDEX chapters_volume_idx ON chapters (volume_id);

CREATE TABLE generation_jobs (
    id                 uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL,
    novel_id           uuid        NOT NULL,
    chapter_id         uuid,
    kind               text        NOT NULL CHECK (kind IN ('DRAFT', 'CONTINUE', 'REWRITE',
        'POLISH', 'SUMMARIZE', 'EXTRACT_MEMORY', 'VALIDATE', 'IMPORT', 'EXPORT')),
    status             text        NOT NULL
        CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    priority           integer     NOT NULL DEFAULT 0,
    input              jsonb       NOT NULL DEFAULT '{}',
    idempotency_key    text,
    provider           text,
    model              text,
    fallback_used      boolean     NOT NULL DEFAULT false,
    prompt_tokens      bigint      NOT NULL DEFAULT 0,
    completion_tokens  bigint      NOT NULL DEFAULT 0,
    queued_at          timestamptz NOT NULL,
    started_at         timestamptz,
    first_token_at     timestamptz,
    finished_at        timestamptz,
    attempts           integer     NOT NULL DEFAULT 0,
    error              text,
    result             jsonb,
    created_by         uuid,
    CONSTRAINT generation_jobs_idempotency_key UNIQUE (tenant_id, idempotency_key),
    CONSTRAINT generation_jobs_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT generation_jobs_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT generation_jobs_chapter_fkey FOREIGN KEY (tenant_id, chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE SET NULL (chapter_id),
    CONSTRAINT generation_jobs_created_by_fkey FOREIGN KEY (tenant_id, created_by)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (created_by)
);
CREATE INDEX generation_jobs_novel_idx ON generation_jobs (novel_id, id);
CREATE INDEX generation_jobs_chapter_idx ON generation_jobs (chapter_id);
CREATE INDEX generation_jobs_status_idx ON generation_jobs (status, priority DESC, queued_at);

CREATE TABLE chapter_revisions (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    chapter_id  uuid        NOT NULL,
    version     integer     NOT NULL,
    content     text        NOT NULL,
    word_count  bigint      NOT NULL,
    source      text        NOT NULL
        CHECK (source IN ('AUTHOR', 'GENERATION', 'ROLLBACK', 'IMPORT')),
    created_by  uuid,
    job_id      uuid,
    note        text        NOT NULL,
    created_at  timestamptz NOT NULL,
    CONSTRAINT chapter_revisions_chapter_version_key UNIQUE (chapter_id, version),
    CONSTRAINT chapter_revisions_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT chapter_revisions_chapter_fkey FOREIGN KEY (tenant_id, chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT chapter_revisions_created_by_fkey FOREIGN KEY (tenant_id, created_by)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (created_by),
    CONSTRAINT chapter_revisions_job_fkey FOREIGN KEY (tenant_id, job_id)
        REFERENCES generation_jobs (tenant_id, id) ON DELETE SET NULL (job_id)
);
CREATE INDEX chapter_revisions_created_by_idx ON chapter_revisions (created_by);
CREATE INDEX chapter_revisions_job_idx ON chapter_revisions (job_id);

CREATE TABLE entities (
    id                 uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL,
    novel_id           uuid        NOT NULL,
    name               text        NOT NULL,
    aliases            jsonb       NOT NULL DEFAULT '[]',
    kind               text        NOT NULL
        CHECK (kind IN ('CHARACTER', 'LOCATION', 'ITEM', 'ORGANIZATION', 'CONCEPT')),
    description        text        NOT NULL,
    attributes         jsonb       NOT NULL DEFAULT '{}',
    importance         integer     NOT NULL CHECK (importance BETWEEN 0 AND 100),
    current_state      text        NOT NULL,
    first_chapter_seq  integer,
    last_chapter_seq   integer,
    appearance_count   integer     NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT entities_novel_kind_name_key UNIQUE (novel_id, kind, name),
    CONSTRAINT entities_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT entities_novel_id_key UNIQUE (novel_id, id),
    CONSTRAINT entities_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE entity_states (
    id                 uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL,
    entity_id          uuid        NOT NULL,
    chapter_id         uuid,
    story_time         bigint,
    state              text        NOT NULL,
    attribute_changes  jsonb       NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL,
    CONSTRAINT entity_states_entity_fkey FOREIGN KEY (tenant_id, entity_id)
        REFERENCES entities (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT entity_states_chapter_fkey FOREIGN KEY (tenant_id, chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE SET NULL (chapter_id)
);
CREATE INDEX entity_states_entity_idx ON entity_states (entity_id, id);
CREATE INDEX entity_states_chapter_idx ON entity_states (chapter_id);

CREATE TABLE relations (
    id                uuid             PRIMARY KEY,
    tenant_id         uuid             NOT NULL,
    novel_id          uuid             NOT NULL,
    source_id         uuid             NOT NULL,
    target_id         uuid             NOT NULL,
    kind              text             NOT NULL,
    strength          double precision NOT NULL CHECK (strength >= 0 AND strength <= 1),
    description       text             NOT NULL,
    since_chapter_id  uuid,
    created_at        timestamptz      NOT NULL,
    updated_at        timestamptz      NOT NULL,
    CONSTRAINT relations_source_target_kind_key UNIQUE (source_id, target_id, kind),
    CONSTRAINT relations_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE,
    -- both ends must be entities of the relation's novel.
    CONSTRAINT relations_source_fkey FOREIGN KEY (novel_id, source_id)
        REFERENCES entities (novel_id, id) ON DELETE CASCADE,
    CONSTRAINT relations_target_fkey FOREIGN KEY (novel_id, target_id)
        REFERENCES entities (novel_id, id) ON DELETE CASCADE,
    CONSTRAINT relations_since_chapter_fkey FOREIGN KEY (tenant_id, since_chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE SET NULL (since_chapter_id)
);
CREATE INDEX relations_source_idx ON relations (source_id, id);
CREATE INDEX relations_target_idx ON relations (target_id, id);
CREATE INDEX relations_since_chapter_idx ON relations (since_chapter_id);

CREATE TABLE events (
    id                uuid        PRIMARY KEY,
    tenant_id         uuid        NOT NULL,
    novel_id          uuid        NOT NULL,
    chapter_id        uuid,
    title             text        NOT NULL,
    summary           text        NOT NULL,
    story_time_start  bigint      NOT NULL,
    story_time_end    bigint,
    location_id       uuid,
    involved          jsonb       NOT NULL DEFAULT '[]',
    importance        integer     NOT NULL CHECK (importance BETWEEN 0 AND 100),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT events_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT events_chapter_fkey FOREIGN KEY (tenant_id, chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE SET NULL (chapter_id),
    CONSTRAINT events_location_fkey FOREIGN KEY (tenant_id, location_id)
        REFERENCES entities (tenant_id, id) ON DELETE SET NULL (location_id)
);
CREATE INDEX events_timeline_idx ON events (novel_id, story_time_start, id);
CREATE INDEX events_chapter_idx ON events (chapter_id);
CREATE INDEX events_location_idx ON events (location_id);

CREATE TABLE foreshadowing (
    id                   uuid        PRIMARY KEY,
    tenant_id            uuid        NOT NULL,
    novel_id             uuid        NOT NULL,
    title                text        NOT NULL,
    description          text        NOT NULL,
    planted_chapter_id   uuid,
    expected_payoff      text        NOT NULL,
    resolved_chapter_id  uuid,
    status               text        NOT NULL
        CHECK (status IN ('OPEN', 'RESOLVED', 'ABANDONED')),
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    CONSTRAINT foreshadowing_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT foreshadowing_planted_fkey FOREIGN KEY (tenant_id, planted_chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE SET NULL (planted_chapter_id),
    CONSTRAINT foreshadowing_resolved_fkey FOREIGN KEY (tenant_id, resolved_chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE SET NULL (resolved_chapter_id)
);
CREATE INDEX foreshadowing_novel_idx ON foreshadowing (novel_id, id);
CREATE INDEX foreshadowing_planted_idx ON foreshadowing (planted_chapter_id);
CREATE INDEX foreshadowing_resolved_idx ON foreshadowing (resolved_chapter_id);

CREATE TABLE validation_reports (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    chapter_id   uuid        NOT NULL,
    revision_id  uuid,
    issues       jsonb       NOT NULL DEFAULT '[]',
    passed       boolean     NOT NULL,
    created_at   timestamptz NOT NULL,
    CONSTRAINT validation_reports_chapter_fkey FOREIGN KEY (tenant_id, chapter_id)
        REFERENCES chapters (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT validation_reports_revision_fkey FOREIGN KEY (tenant_id, revision_id)
        REFERENCES chapter_revisions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX validation_reports_chapter_idx ON validation_reports (chapter_id, id);
CREATE INDEX validation_reports_revision_idx ON validation_reports (revision_id);

CREATE TABLE audit_logs (
    id             uuid        PRIMARY KEY,
    tenant_id      uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- no foreign key: the log keeps who acted even after the user is gone.
    actor_user_id  uuid,
    action         text        NOT NULL,
    resource_type  text        NOT NULL,
    resource_id    text        NOT NULL,
    request_id     text,
    detail         jsonb       NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL,
    CONSTRAINT audit_logs_tenant_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX audit_logs_resource_idx ON audit_logs (tenant_id, resource_type, resource_id);

CREATE TABLE usage_records (
    id                 uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day                date        NOT NULL,
    model              text        NOT NULL,
    prompt_tokens      bigint      NOT NULL DEFAULT 0,
    completion_tokens  bigint      NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT usage_records_tenant_day_model_key UNIQUE (tenant_id, day, model)
);

-- Privileges and row-level security. The app role may read and write every table of
-- the application (never the migrations bookkeeping), and sees tenant-owned rows only
-- through the policy below.
DO $$
DECLARE
    t text;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO znovel_app', current_schema());
    GRANT SELECT, INSERT, UPDATE, DELETE ON tenants TO znovel_app;
    FOREACH t IN ARRAY ARRAY['users', 'api_keys', 'novels', 'volumes', 'chapters',
        'generation_jobs', 'chapter_revisions', 'entities', 'entity_states', 'relations',
        'events', 'foreshadowing', 'validation_reports', 'audit_logs', 'usage_records']
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
