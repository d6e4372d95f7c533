#!/bin/bash
# Runs once, when the data directory is empty (docker-entrypoint-initdb.d): creates the
# login role `znovel` that DATABASE_URL names and its database. `znovel` is neither a
# superuser nor exempt from row-level security; it has CREATEROLE because the first
# migration creates the role `znovel_app` that the server acts as (docs/operations.md).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     --set=pw="$ZNOVEL_DB_PASSWORD" <<'SQL'
CREATE ROLE znovel LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS PASSWORD :'pw';
CREATE DATABASE znovel OWNER znovel;
SQL
