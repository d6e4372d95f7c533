//! Embedded migrations (`migrations/postgres`, `migrations/sqlite`), serialized across
//! processes.
//!
//! PostgreSQL: a dedicated connection (as the URL's user, not the app role) takes
//! `pg_advisory_lock` and holds it while diesel-async's `AsyncMigrationHarness` applies
//! what is pending. SQLite: an exclusive `std::fs::File::lock` on `<db file>.migrate.lock`
//! is held while diesel's harness runs on a dedicated connection. Either way a second
//! process waits, then finds nothing pending. The harness work runs on a blocking thread,
//! so `migrate` works on both tokio runtime flavours.

use super::pool::{establish_pg, open_sqlite, quote_ident};
use anyhow::Context;
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The PostgreSQL migrations.
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
/// The SQLite migrations.
pub const SQLITE: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// The role the migrations create and grant to; another configured role is set up by
/// [`ensure_app_role`] after the migrations.
pub const DEFAULT_APP_ROLE: &str = "znovel_app";

/// Key of the advisory lock that serializes migrations ("znovel" in ASCII).
const ADVISORY_LOCK_KEY: i64 = 0x7a6e_6f76_656c;

/// Runs the pending PostgreSQL migrations under the advisory lock.
pub async fn postgres(url: &str, app_role: &str, timeout: Duration) -> anyhow::Result<()> {
    let mut conn = establish_pg(url, timeout)
        .await
        .context("connecting to PostgreSQL to migrate")?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})"))
        .await
        .context("taking the migration lock")?;
    let (mut conn, applied) = tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        let applied = harness
            .run_pending_migrations(POSTGRES)
            .map(|v| v.len())
            .map_err(|e| anyhow::anyhow!("running PostgreSQL migrations: {e}"));
        (harness.into_inner(), applied)
    })
    .await
    .context("the migration task failed")?;
    let result = match applied {
        Ok(n) => {
            tracing::info!(applied = n, "PostgreSQL migrations done");
            ensure_app_role(&mut conn, app_role).await
        }
        Err(e) => Err(e),
    };
    // Closing the session would release the lock too; unlock explicitly to be tidy.
    let _ = conn
        .batch_execute(&format!("SELECT pg_advisory_unlock({ADVISORY_LOCK_KEY})"))
        .await;
    result
}

/// Creates `role` if missing and grants it what the server needs, when it is not the
/// default role the migrations already set up.
async fn ensure_app_role(conn: &mut AsyncPgConnection, role: &str) -> anyhow::Result<()> {
    if role == DEFAULT_APP_ROLE {
        return Ok(());
    }
    let literal = format!("'{}'", role.replace('\'', "''"));
    let ident = quote_ident(role);
    let sql = format!(
        r#"DO $$
DECLARE t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {literal}) THEN
        BEGIN
            CREATE ROLE {ident} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT pg_has_role(current_user, {literal}, 'MEMBER') THEN
        BEGIN
            GRANT {ident} TO CURRENT_USER;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {ident}', current_schema());
    FOR t IN SELECT tablename FROM pg_tables
             WHERE schemaname = current_schema() AND tablename <> '__diesel_schema_migrations'
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO {ident}', t);
    END LOOP;
END
$$"#
    );
    conn.batch_execute(&sql)
        .await
        .with_context(|| format!("setting up the application role {role}"))
}

/// The lock file next to a SQLite database.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".migrate.lock");
    PathBuf::from(name)
}

/// Runs the pending SQLite migrations under the file lock.
pub async fn sqlite(path: PathBuf) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(&path))
            .context("opening the migration lock file")?;
        lock.lock().context("taking the migration lock")?;
        let mut conn = open_sqlite(&path).context("opening the SQLite database to migrate")?;
        let applied = conn
            .run_pending_migrations(SQLITE)
            .map_err(|e| anyhow::anyhow!("running SQLite migrations: {e}"))?;
        tracing::info!(applied = applied.len(), "SQLite migrations done");
        drop(conn);
        lock.unlock().context("releasing the migration lock")?;
        Ok(())
    })
    .await
    .context("the migration task failed")?
}
