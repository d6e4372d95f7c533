-- Drops schema v1.
DROP TABLE IF EXISTS usage_records;
DROP TABLE IF EXISTS audit_logs;
DROP TABLE IF EXISTS validation_reports;
DROP TABLE IF EXISTS foreshadowing;
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS relations;
DROP TABLE IF EXISTS entity_states;
DROP TABLE IF EXISTS entities;
DROP TABLE IF EXISTS chapter_revisions;
DROP TABLE IF EXISTS generation_jobs;
DROP TABLE IF EXISTS chapters;
DROP TABLE IF EXISTS volumes;
DROP TABLE IF EXISTS novels;
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS tenants;
