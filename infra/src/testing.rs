//! Throw-away databases for tests (cargo feature `testing`): each [`TestDatabase`] is a
//! fresh, uniquely named PostgreSQL database or a fresh SQLite file, removed when the
//! value is dropped — so tests run in parallel without sharing state.
//!
//! PostgreSQL databases are created through the admin URL in `ZNOVEL_TEST_PG_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`); that user needs CREATEDB (and,
//! for the migrations, CREATEROLE unless the role `znovel_app` exists already).
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use znovel_infra::testing::TestDatabase;
//! use znovel_infra::DbBackend;
//!
//! let db = TestDatabase::new(DbBackend::Postgres).await?; // or TestDatabase::sqlite()?
//! let store = db.store().await?; // connected and migrated
//! // ... use `store` (a `znovel_domain::ports::Store`), or connect to `db.url` yourself.
//! drop(store);
//! drop(db); // drops the database (PostgreSQL: WITH (FORCE)) / deletes the file
//! # Ok(()) }
//! ```
//!
//! Use a multi-thread tokio runtime (`#[tokio::test(flavor = "multi_thread")]`): the
//! store's pooled connections live on the runtime that opened them.

pub mod qdrant;

use crate::sql::pool::{establish_pg, quote_ident};
use crate::{DbBackend, SqlOptions, SqlStore};
use anyhow::Context;
use diesel_async::SimpleAsyncConnection;
use std::path::PathBuf;
use std::time::Duration;

/// Environment variable naming the PostgreSQL admin URL test databases are created with.
pub const PG_ADMIN_URL_ENV: &str = "ZNOVEL_TEST_PG_URL";
/// The admin URL used when [`PG_ADMIN_URL_ENV`] is unset.
pub const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh database that is removed on drop.
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL to connect to (`sqlite://…` or `postgres://…`), for [`SqlStore::connect`]
    /// or the server's configuration.
    pub url: String,
    /// Which backend it is.
    pub backend: DbBackend,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Postgres { admin_url: String, name: String },
    Sqlite { dir: PathBuf },
}

/// The PostgreSQL admin URL: `ZNOVEL_TEST_PG_URL` or [`DEFAULT_PG_ADMIN_URL`].
pub fn pg_admin_url() -> String {
    std::env::var(PG_ADMIN_URL_ENV).unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.to_owned())
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .context("the PostgreSQL admin URL has no scheme")?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    let mut out = format!("{scheme}://{authority}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

impl TestDatabase {
    /// A fresh PostgreSQL database `znovel_test_<random>`, created through
    /// [`pg_admin_url`]. Not migrated: see [`TestDatabase::store`].
    pub async fn postgres() -> anyhow::Result<TestDatabase> {
        let admin_url = pg_admin_url();
        let name = format!("znovel_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = establish_pg(&admin_url, Duration::from_secs(10))
            .await
            .with_context(|| format!("connecting to the test PostgreSQL ({PG_ADMIN_URL_ENV})"))?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await
            .with_context(|| format!("creating the test database {name}"))?;
        Ok(TestDatabase {
            url: with_database(&admin_url, &name)?,
            backend: DbBackend::Postgres,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// A fresh SQLite file in a new temporary directory (deleted on drop). The file
    /// itself is created on first connect.
    pub fn sqlite() -> anyhow::Result<TestDatabase> {
        let dir = std::env::temp_dir().join(format!("znovel-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = dir.join("znovel.db");
        Ok(TestDatabase {
            url: format!("sqlite://{}", file.display()),
            backend: DbBackend::Sqlite,
            cleanup: Cleanup::Sqlite { dir },
        })
    }

    /// The database file, when it is SQLite (the URL read as the server reads it).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match crate::sql::pool::parse_url(&self.url).ok()? {
            crate::sql::pool::Target::Sqlite(file) => Some(file),
            crate::sql::pool::Target::Postgres(_) => None,
        }
    }

    /// A fresh database of `backend`.
    pub async fn new(backend: DbBackend) -> anyhow::Result<TestDatabase> {
        match backend {
            DbBackend::Postgres => Self::postgres().await,
            DbBackend::Sqlite => Self::sqlite(),
        }
    }

    /// Options suited to tests: a small pool.
    pub fn options() -> SqlOptions {
        SqlOptions {
            max_connections: 4,
            ..SqlOptions::default()
        }
    }

    /// A store on this database, not migrated.
    pub async fn connect(&self) -> anyhow::Result<SqlStore> {
        SqlStore::connect(&self.url, Self::options()).await
    }

    /// A store on this database, migrated.
    pub async fn store(&self) -> anyhow::Result<SqlStore> {
        let store = self.connect().await?;
        store.migrate().await?;
        Ok(store)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // A fresh thread with its own runtime works from any context, async or not.
                let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        let mut admin = establish_pg(&admin_url, Duration::from_secs(10)).await?;
                        admin
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                                quote_ident(&name)
                            ))
                            .await?;
                        anyhow::Ok(())
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("warning: could not drop the test database {}", self.url);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        let f = |u| with_database(u, "x").unwrap();
        assert_eq!(f("postgres://u@h:5432/postgres"), "postgres://u@h:5432/x");
        assert_eq!(f("postgres://u@h"), "postgres://u@h/x");
        assert_eq!(
            f("postgresql://u:p@h/db?sslmode=disable"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
    }
}
