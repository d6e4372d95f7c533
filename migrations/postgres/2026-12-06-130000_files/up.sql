-- Stored files: manuscripts uploaded for import and books an export produced, bytes
-- included, with the tenant's other data (and its row-level security).

CREATE TABLE files (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    novel_id      uuid        NOT NULL,
    job_id        uuid,
    name          text        NOT NULL,
    content_type  text        NOT NULL,
    size          bigint      NOT NULL CHECK (size >= 0),
    content       bytea       NOT NULL,
    created_by    uuid,
    created_at    timestamptz NOT NULL,
    CONSTRAINT files_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT files_novel_fkey FOREIGN KEY (tenant_id, novel_id)
        REFERENCES novels (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT files_job_fkey FOREIGN KEY (tenant_id, job_id)
        REFERENCES generation_jobs (tenant_id, id) ON DELETE SET NULL (job_id),
    CONSTRAINT files_created_by_fkey FOREIGN KEY (tenant_id, created_by)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (created_by)
);
CREATE INDEX files_novel_idx ON files (tenant_id, novel_id, id);
CREATE INDEX files_job_idx ON files (job_id);
CREATE INDEX files_created_by_idx ON files (created_by);

GRANT SELECT, INSERT, UPDATE, DELETE ON files TO znovel_app;
ALTER TABLE files ENABLE ROW LEVEL SECURITY;
ALTER TABLE files FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON files
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
