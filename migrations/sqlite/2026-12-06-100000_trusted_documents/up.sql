-- Trusted documents (see the PostgreSQL twin): registered GraphQL documents keyed by the
-- lower-case hex SHA-256 of their exact text. Global, not tenant-owned.

CREATE TABLE trusted_documents (
    sha256         TEXT NOT NULL PRIMARY KEY CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    document       TEXT NOT NULL,
    operation_name TEXT,
    registered_at  TEXT NOT NULL
) STRICT;
