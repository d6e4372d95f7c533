-- Trusted documents: the GraphQL documents registered with `znovel documents register`,
-- keyed by the lower-case hex SHA-256 of their exact text. With
-- ZNOVEL_TRUSTED_DOCUMENTS=allowlist only these run. Global (not tenant-owned): no
-- tenant_id, no row-level security.

CREATE TABLE trusted_documents (
    sha256         text        NOT NULL PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    document       text        NOT NULL,
    operation_name text,
    registered_at  timestamptz NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON trusted_documents TO znovel_app;
