//! Connection pools (bb8) and per-connection setup.
//!
//! A checkout costs no database round trip: a SQLite file connection does not go stale,
//! and a PostgreSQL connection is handed out unless its driver already knows it is closed
//! (the server ended it, the socket dropped) or its transaction state is broken — those
//! are dropped and another one taken, as deadpool's "fast" recycling does. The pool's
//! default (a `SELECT 1` before every checkout) cost one of the five round trips of a
//! tenant-scoped PostgreSQL read, and a second trip to a blocking thread on SQLite. A
//! connection that dies unnoticed between checkout and use fails that one statement;
//! the pool then replaces it.
//!
//! PostgreSQL connections run `SET ROLE <app role>` once when created, so the server acts
//! as a role that is neither superuser, nor table owner, nor BYPASSRLS, and row-level
//! security applies to it. SQLite connections set `busy_timeout`, WAL, `synchronous =
//! NORMAL` and `foreign_keys = ON`, and register `znovel_casefold` (Unicode lower-case,
//! which SQLite's own `lower`/`LIKE` only do for ASCII).

use super::SqlOptions;
use diesel::connection::SimpleConnection;
use diesel::result::ConnectionError;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionResult};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, PoolableConnection, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::future::BoxFuture;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The SQLite connection diesel-async drives: a sync connection whose statements run on
/// tokio's blocking threads, or, inside [`on_caller`], on the calling thread.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, SqliteThreads>;

tokio::task_local! {
    /// Set while [`on_caller`]'s future runs.
    static ON_CALLER: ();
}

/// Runs `read`, a point read, with its SQLite statements on the calling thread instead of
/// a blocking thread. A lookup by key (one row, WAL mode: a reader never waits for a
/// writer) takes tens of microseconds; handing it to a blocking thread and back costs
/// more than that in wake-ups and context switches, and holds a pooled connection across
/// them. Only for reads of a row or a few by key: anything that may scan or wait for
/// a lock belongs on a blocking thread, which is what every other statement gets.
pub async fn on_caller<F: Future>(read: F) -> F::Output {
    ON_CALLER.scope((), read).await
}

/// Where [`SqliteConn`] runs its statements (see [`on_caller`]).
pub struct SqliteThreads(tokio::runtime::Handle);

impl SpawnBlocking for SqliteThreads {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        if ON_CALLER.try_with(|()| ()).is_ok() {
            return Box::pin(std::future::ready(Ok(task())));
        }
        let task = self.0.spawn_blocking(task);
        Box::pin(FinishOnDrop {
            task,
            handle: self.0.clone(),
        })
    }

    fn get_runtime() -> Self {
        Self(tokio::runtime::Handle::current())
    }
}

/// A statement running on a blocking thread. Dropped before it finished (the caller gave
/// up), it waits for the statement: the connection must not go back to the pool while a
/// statement still runs on it (diesel-async's own wrapper does the same).
struct FinishOnDrop<R> {
    task: tokio::task::JoinHandle<R>,
    handle: tokio::runtime::Handle,
}

impl<R> Future for FinishOnDrop<R> {
    type Output = Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.task)
            .poll(cx)
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
    }
}

impl<R> Drop for FinishOnDrop<R> {
    fn drop(&mut self) {
        if !self.task.is_finished() {
            let (task, handle) = (&mut self.task, &self.handle);
            tokio::task::block_in_place(|| {
                let _ = handle.block_on(task);
            });
        }
    }
}
/// A pool of PostgreSQL connections.
pub type PgPool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;
/// A pool of SQLite connections.
pub type SqlitePool = bb8::Pool<AsyncDieselConnectionManager<SqliteConn>>;

/// The store's pool, of one backend or the other.
#[derive(Clone)]
pub enum Pools {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite, and the queue its write transactions take turns in.
    Sqlite(SqlitePool, super::tx::WriteGate),
}

/// A parsed database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL, as given.
    Postgres(String),
}

/// The forms [`parse_url`] accepts, for error messages.
pub const ACCEPTED_URLS: &str = "sqlite://<path to file> or postgres://… / postgresql://…";

/// Parses `sqlite://<path>` or `postgres://…` / `postgresql://…`. The error names the
/// accepted forms, never the URL itself (it may hold a password).
pub fn parse_url(url: &str) -> anyhow::Result<Target> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() || path.contains(":memory:") || path.starts_with("file:") {
            anyhow::bail!("a SQLite URL needs a file path: expected {ACCEPTED_URLS}");
        }
        return Ok(Target::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_owned()));
    }
    let scheme = url.split_once("://").map_or("(none)", |(s, _)| s);
    anyhow::bail!("unsupported database URL scheme `{scheme}`: expected {ACCEPTED_URLS}")
}

/// Quotes a PostgreSQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Opens a PostgreSQL connection as the URL's user (no `SET ROLE`), within `timeout`.
pub async fn establish_pg(url: &str, timeout: Duration) -> ConnectionResult<AsyncPgConnection> {
    match tokio::time::timeout(timeout, AsyncPgConnection::establish(url)).await {
        Ok(conn) => conn,
        Err(_) => Err(ConnectionError::BadConnection(format!(
            "timed out after {timeout:?} connecting to PostgreSQL"
        ))),
    }
}

/// Logs why the pool could not open a connection (a checkout that times out would
/// otherwise only say "timed out").
#[derive(Debug, Clone, Copy)]
struct LogErrors;

impl bb8::ErrorSink<PoolError> for LogErrors {
    fn sink(&self, error: PoolError) {
        tracing::warn!(%error, "database connection failed");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(*self)
    }
}

/// The checkout check of the PostgreSQL pool: no round trip, only what the driver
/// already knows (a closed connection, a broken transaction state).
fn pg_checkout_check() -> RecyclingMethod<AsyncPgConnection> {
    RecyclingMethod::CustomFunction(Box::new(|conn| {
        let broken = PoolableConnection::is_broken(conn);
        Box::pin(async move {
            if broken {
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ClosedConnection,
                    Box::new("the pooled connection is closed".to_owned()),
                ))
            } else {
                Ok(())
            }
        })
    }))
}

/// Builds the PostgreSQL pool; every connection acts as `opts.pg_app_role`.
pub fn pg_pool(url: &str, opts: &SqlOptions) -> PgPool {
    let role = opts.pg_app_role.clone();
    let timeout = opts.connect_timeout;
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.recycling_method = pg_checkout_check();
    config.custom_setup = Box::new(move |url| {
        let set_role = format!("SET ROLE {}", quote_ident(&role));
        let url = url.to_owned();
        Box::pin(async move {
            let mut conn = establish_pg(&url, timeout).await?;
            conn.batch_execute(&set_role)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    bb8::Pool::builder()
        .max_size(opts.max_connections.max(1))
        .connection_timeout(opts.connect_timeout)
        .error_sink(Box::new(LogErrors))
        .build_unchecked(manager)
}

/// The statements every SQLite connection runs first (after `busy_timeout`).
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

diesel::define_sql_function! {
    /// Unicode lower-case (SQLite's `lower` only folds ASCII); used for searches.
    fn znovel_casefold(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Opens and sets up a SQLite connection (blocking: call on a blocking thread).
pub fn open_sqlite(path: &Path) -> ConnectionResult<SqliteConnection> {
    let url = path.to_string_lossy();
    let mut conn = SqliteConnection::establish(&url)?;
    let busy = super::tx::SQLITE_BUSY_TIMEOUT.as_millis();
    conn.batch_execute(&format!("PRAGMA busy_timeout = {busy}; {SQLITE_PRAGMAS}"))
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    znovel_casefold_utils::register_impl(&mut conn, |x: String| x.to_lowercase())
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Builds the SQLite pool over the file at `path`.
pub fn sqlite_pool(path: &Path, opts: &SqlOptions) -> SqlitePool {
    let mut config = ManagerConfig::<SqliteConn>::default();
    // A file connection does not go stale: no `SELECT 1` before each checkout.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(|url| {
        let path = PathBuf::from(url);
        Box::pin(async move {
            let conn = tokio::task::spawn_blocking(move || open_sqlite(&path))
                .await
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))??;
            Ok(SyncConnectionWrapper::new(conn))
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(path.to_string_lossy(), config);
    // Every connection is opened at start (in the background): opening one costs a
    // blocking thread and the file's set-up, which would otherwise land on the first
    // requests that find the pool short — the start of a burst of streams.
    let max = opts.max_connections.max(1);
    bb8::Pool::builder()
        .max_size(max)
        .min_idle(Some(max))
        .connection_timeout(opts.connect_timeout)
        .error_sink(Box::new(LogErrors))
        .build_unchecked(manager)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_urls() {
        assert_eq!(
            parse_url("sqlite:///var/lib/znovel/z.db").unwrap(),
            Target::Sqlite(PathBuf::from("/var/lib/znovel/z.db"))
        );
        assert_eq!(
            parse_url("sqlite://data/z.db").unwrap(),
            Target::Sqlite(PathBuf::from("data/z.db"))
        );
        for pg in ["postgres://u:p@h/db", "postgresql://h/db?sslmode=disable"] {
            assert_eq!(parse_url(pg).unwrap(), Target::Postgres(pg.to_owned()));
        }
        for bad in [
            "sqlite://",
            "sqlite://:memory:",
            "mysql://u:hunter2@h/db",
            "x",
        ] {
            let err = parse_url(bad).unwrap_err().to_string();
            assert!(
                err.contains(ACCEPTED_URLS) && !err.contains("hunter2"),
                "{err}"
            );
        }
    }

    /// The build's SQLite plans a statement once: a bound `LIMIT ?` (diesel's `.first()`)
    /// does not make it parse and plan again at every execution (`.cargo/config.toml`).
    #[test]
    fn the_bundled_sqlite_keeps_its_query_plans() {
        use diesel::RunQueryDsl;
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        let on: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM pragma_compile_options WHERE compile_options = 'ENABLE_QPSG')",
        ))
        .get_result(&mut conn)
        .unwrap();
        assert_eq!(on, 1, "SQLite was built without SQLITE_ENABLE_QPSG");
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("znovel_app"), "\"znovel_app\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
