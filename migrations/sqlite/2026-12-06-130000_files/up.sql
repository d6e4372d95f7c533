-- Stored files: manuscripts uploaded for import and books an export produced, bytes
-- included. See the PostgreSQL twin.

CREATE TABLE files (
    id            TEXT    PRIMARY KEY,
    tenant_id     TEXT    NOT NULL,
    novel_id      TEXT    NOT NULL,
    job_id        TEXT    REFERENCES generation_jobs (id) ON DELETE SET NULL,
    name          TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size          INTEGER NOT NULL CHECK (size >= 0),
    content       BLOB    NOT NULL,
    created_by    TEXT    REFERENCES users (id) ON DELETE SET NULL,
    created_at    TEXT    NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, novel_id) REFERENCES novels (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX files_novel_idx ON files (tenant_id, novel_id, id);
CREATE INDEX files_job_idx ON files (job_id);
CREATE INDEX files_created_by_idx ON files (created_by);
