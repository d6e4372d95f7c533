//! The SQL adapter: [`SqlStore`] implements every repository port of
//! `znovel_domain::ports` over PostgreSQL (production) or a SQLite file (the embedded
//! default), through diesel-async with one shared schema.
//!
//! Layout: `schema` (the `table!`s), `types` (portable SQL types), `rows` (diesel row
//! structs and their conversions to domain values), `repos` (one file per aggregate, each
//! holding its queries — written once, compiled per backend by the macros of `macros` —
//! and its trait impl), `tx` (transactions and the row-level-security tenant setting),
//! `pool` (pools and connection setup), `migrate` and `error` (driver errors to
//! `StoreError`).

#[macro_use]
mod macros;
pub(crate) mod chapter_cache;
pub use chapter_cache::ChapterCacheStats;
mod error;
mod migrate;
pub(crate) mod pool;
pub(crate) mod repos;
mod rows;
mod schema;
pub(crate) mod tx;
pub(crate) mod types;

use diesel::deserialize::QueryableByName;
use diesel::sql_types::{Bool, Text};
use diesel_async::RunQueryDsl;
use pool::{Pools, Target};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use znovel_domain::StoreError;

/// Pool and role settings of [`SqlStore::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlOptions {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for a connection (to open one, or to get one from the pool).
    pub connect_timeout: Duration,
    /// PostgreSQL only: the role every pooled connection switches to (`SET ROLE`). It
    /// must not be a superuser, BYPASSRLS or the tables' owner, or row-level security
    /// would not apply. The migrations create `znovel_app`; another name is created and
    /// granted by [`SqlStore::migrate`].
    pub pg_app_role: String,
    /// Most bytes of chapters kept in memory for display reads (see
    /// [`ChapterRepository::show_chapter`]); `0` turns that cache off.
    ///
    /// [`ChapterRepository::show_chapter`]: znovel_domain::ports::ChapterRepository::show_chapter
    pub chapter_cache_bytes: usize,
}

/// [`SqlOptions::chapter_cache_bytes`] by default: 64 MiB.
pub const DEFAULT_CHAPTER_CACHE_BYTES: usize = 64 << 20;

impl Default for SqlOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            pg_app_role: migrate::DEFAULT_APP_ROLE.to_owned(),
            chapter_cache_bytes: DEFAULT_CHAPTER_CACHE_BYTES,
        }
    }
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbBackend {
    /// A SQLite file (the embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A snapshot of the connection pool, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open (idle or in use).
    pub connections: u32,
    /// Connections open and idle.
    pub idle: u32,
    /// Most connections the pool opens.
    pub max: u32,
}

/// Who a PostgreSQL pooled connection acts as (see [`SqlStore::pg_role_info`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgRoleInfo {
    /// `current_user` of a pooled connection.
    pub current_user: String,
    /// Whether that role is a superuser.
    pub superuser: bool,
    /// Whether that role bypasses row-level security.
    pub bypass_rls: bool,
    /// Whether that role owns any of the application's tables.
    pub owns_tables: bool,
}

/// The SQL store: a pool over one database, implementing every repository port.
/// Cheap to clone (the pool is shared). Use it from the tokio runtime that created it.
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) pools: Pools,
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    opts: SqlOptions,
    /// Chapters kept for display reads.
    chapters: Arc<chapter_cache::ChapterCache>,
}

impl SqlStore {
    /// Connects to `url`: `sqlite://<path to file>` (the file and its parent
    /// directories are created if missing) or `postgres://…` / `postgresql://…`; anything
    /// else is an error naming the accepted forms. Checks that the database is reachable
    /// but does not migrate (see [`SqlStore::migrate`]). A PostgreSQL store with a chapter
    /// cache starts a task listening for chapter writes, on the runtime of its first
    /// display read (`show_chapter`).
    pub async fn connect(url: &str, opts: SqlOptions) -> anyhow::Result<SqlStore> {
        use anyhow::Context;
        use chapter_cache::{ChapterCache, DataVersion};
        let target = pool::parse_url(url)?;
        let cache_bytes = opts.chapter_cache_bytes;
        let (pools, chapters) = match &target {
            Target::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                let pool = pool::sqlite_pool(path, &opts);
                // Opens (and so creates) the file, and switches it to WAL.
                drop(
                    pool.get().await.map_err(error::pool_err).with_context(|| {
                        format!("opening the SQLite database {}", path.display())
                    })?,
                );
                let cache = if cache_bytes == 0 {
                    ChapterCache::new(0, false)
                } else {
                    let file = path.clone();
                    let watch = tokio::task::spawn_blocking(move || pool::open_sqlite(&file))
                        .await
                        .context("opening the SQLite database")??;
                    ChapterCache::sqlite(cache_bytes, DataVersion::new(watch))
                };
                (Pools::Sqlite(pool, tx::WriteGate::new()), Arc::new(cache))
            }
            Target::Postgres(url) => {
                // Fail fast on a wrong URL or a down server. The pool's connections also
                // switch role, which needs the migrations, so check with a plain one.
                drop(
                    pool::establish_pg(url, opts.connect_timeout)
                        .await
                        .context("connecting to PostgreSQL")?,
                );
                let cache = ChapterCache::postgres(cache_bytes, url.clone(), opts.connect_timeout);
                (Pools::Postgres(pool::pg_pool(url, &opts)), Arc::new(cache))
            }
        };
        Ok(SqlStore {
            pools,
            inner: Arc::new(Inner {
                target,
                opts,
                chapters,
            }),
        })
    }

    /// Runs the pending embedded migrations, serialized across processes (PostgreSQL:
    /// `pg_advisory_lock` on a dedicated connection; SQLite: an exclusive lock on
    /// `<db file>.migrate.lock`). Idempotent; safe to call from two processes at once.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.inner.target {
            Target::Postgres(url) => {
                let opts = &self.inner.opts;
                migrate::postgres(url, &opts.pg_app_role, opts.connect_timeout).await
            }
            Target::Sqlite(path) => migrate::sqlite(path.clone()).await,
        }
    }

    /// Checks that a pooled connection answers a query. `Unavailable` when not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let sql = diesel::sql_query("SELECT 1");
        let result = match &self.pools {
            Pools::Postgres(p) => {
                sql.execute(&mut p.get().await.map_err(error::pool_err)?)
                    .await
            }
            Pools::Sqlite(p, _) => {
                sql.execute(&mut p.get().await.map_err(error::pool_err)?)
                    .await
            }
        };
        result
            .map(|_| ())
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// The pool's current size and limit.
    pub fn pool_stats(&self) -> PoolStats {
        let state = match &self.pools {
            Pools::Postgres(p) => p.state(),
            Pools::Sqlite(p, _) => p.state(),
        };
        PoolStats {
            connections: state.connections,
            idle: state.idle_connections,
            max: self.inner.opts.max_connections.max(1),
        }
    }

    /// The chapters kept for display reads.
    pub(crate) fn chapter_cache(&self) -> &Arc<chapter_cache::ChapterCache> {
        &self.inner.chapters
    }

    /// Whether display reads may be answered from memory now: the chapter cache is on
    /// and, on PostgreSQL, its connection listens for chapter writes (shortly after the
    /// store's first display read, and again after that connection was lost and replaced).
    pub fn chapter_cache_serving(&self) -> bool {
        self.inner.chapters.serving()
    }

    /// What the chapter cache holds and has done (for metrics).
    pub fn chapter_cache_stats(&self) -> ChapterCacheStats {
        self.inner.chapters.stats()
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> DbBackend {
        match self.inner.target {
            Target::Sqlite(_) => DbBackend::Sqlite,
            Target::Postgres(_) => DbBackend::Postgres,
        }
    }

    /// The SQLite file, for a SQLite store.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match &self.inner.target {
            Target::Sqlite(path) => Some(path.clone()),
            Target::Postgres(_) => None,
        }
    }

    /// PostgreSQL: who the pooled connections act as, so a start-up check (and the
    /// tests) can prove row-level security applies — the role must be neither superuser
    /// nor BYPASSRLS nor the owner of a table. `None` for SQLite.
    pub async fn pg_role_info(&self) -> Result<Option<PgRoleInfo>, StoreError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            current_user: String,
            #[diesel(sql_type = Bool)]
            superuser: bool,
            #[diesel(sql_type = Bool)]
            bypass_rls: bool,
            #[diesel(sql_type = Bool)]
            owns_tables: bool,
        }
        let Pools::Postgres(pool) = &self.pools else {
            return Ok(None);
        };
        let mut conn = pool.get().await.map_err(error::pool_err)?;
        let row: Row = diesel::sql_query(
            "SELECT current_user::text AS current_user, r.rolsuper AS superuser, \
             r.rolbypassrls AS bypass_rls, EXISTS (SELECT 1 FROM pg_tables t \
             WHERE t.schemaname = current_schema() AND t.tableowner = current_user) \
             AS owns_tables FROM pg_roles r WHERE r.rolname = current_user",
        )
        .get_result(&mut conn)
        .await
        .map_err(error::db_err)?;
        Ok(Some(PgRoleInfo {
            current_user: row.current_user,
            superuser: row.superuser,
            bypass_rls: row.bypass_rls,
            owns_tables: row.owns_tables,
        }))
    }
}

/// `SqlStore` is a complete store the services can share across tasks.
const _: () = {
    fn assert_store<T: znovel_domain::ports::Store + Clone + Send + Sync>() {}
    let _ = assert_store::<SqlStore>;
};

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend())
            .field("pool", &self.pool_stats())
            .finish()
    }
}
