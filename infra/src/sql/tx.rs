//! Transactions, and the tenant setting row-level security reads.
//!
//! PostgreSQL: every tenant-scoped operation runs in a transaction that starts with
//! `SELECT set_config('app.tenant_id', '<tenant>', true)` — transaction-local, so the
//! setting can never leak to the next user of a pooled connection. The policies compare
//! each row's `tenant_id` with it; the code filters by tenant too. `BEGIN` and the
//! setting go to the server as one simple-query message: one round trip, not two (the
//! tenant is a UUID, written in its hyphenated form — nothing in it needs quoting).
//!
//! SQLite: writes start with `BEGIN IMMEDIATE`, taking the write lock up front so two
//! writers never deadlock on a lock upgrade; reads are single statements and need no
//! transaction. The writers of one store first take their turn at its [`WriteGate`], in
//! the order they asked, so `BEGIN IMMEDIATE` finds the lock free: SQLite's own queue for
//! it is a busy handler that sleeps and retries (up to 100 ms a try), in no order, and
//! under a burst of writes a few unlucky ones lost the lock again and again. Writers of
//! other processes on the same file still meet in `busy_timeout`.

use super::error::db_err;
use super::pool::SqliteConn;
use diesel::connection::{TransactionDepthChange, TransactionManagerStatus};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection, TransactionManager};
use futures_util::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use znovel_domain::ids::TenantId;
use znovel_domain::ports::StoreResult;

/// What an operation does, which decides how its transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only.
    Read,
    /// Writes (possibly several rows, all or none).
    Write,
}

/// What [`TxConn::begin`] opened, to hand to [`TxConn::finish`].
#[derive(Debug)]
pub struct Opened {
    /// Whether a transaction is open.
    open: bool,
    /// A SQLite writer's turn at its store's [`WriteGate`], given back once the
    /// transaction has ended.
    _turn: Option<OwnedSemaphorePermit>,
}

impl Opened {
    /// No transaction (nothing to end).
    const NONE: Opened = Opened {
        open: false,
        _turn: None,
    };
    /// A transaction without a write turn.
    const OPEN: Opened = Opened {
        open: true,
        _turn: None,
    };
}

/// Opening and closing the transaction of one repository operation.
pub trait TxConn: Send {
    /// Opens the transaction `access` needs, scoped to `tenant` when given.
    fn begin(
        &mut self,
        tenant: Option<TenantId>,
        access: Access,
    ) -> impl Future<Output = StoreResult<Opened>> + Send;

    /// Commits when `result` is `Ok`, rolls back otherwise; returns `result` (or the
    /// commit's error).
    fn finish<T: Send>(
        &mut self,
        opened: Opened,
        result: StoreResult<T>,
    ) -> impl Future<Output = StoreResult<T>> + Send;
}

/// The queue of one SQLite store's writers: one write transaction at a time, in the order
/// they asked (tokio's semaphore is fair). Reads never take it (WAL: a reader does not
/// wait for the writer).
#[derive(Clone, Debug)]
pub struct WriteGate(Arc<Semaphore>);

/// How long a writer waits for its turn before it tries SQLite's lock anyway (where
/// `busy_timeout` then decides), so the gate can never wait forever where SQLite alone
/// would have given up: SQLite's `busy_timeout`.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_millis(5_000);

impl WriteGate {
    /// A gate with no writer in it.
    pub fn new() -> WriteGate {
        WriteGate(Arc::new(Semaphore::new(1)))
    }

    /// Runs `operation` with this gate as the one its SQLite write transactions queue at.
    pub fn serve<F: Future>(&self, operation: F) -> impl Future<Output = F::Output> + use<F> {
        SQLITE_WRITE_GATE.scope(self.clone(), operation)
    }

    /// Waits for the turn of the writer calling (none outside [`WriteGate::serve`]).
    async fn turn() -> Option<OwnedSemaphorePermit> {
        let gate = SQLITE_WRITE_GATE.try_with(|gate| gate.0.clone()).ok()?;
        match tokio::time::timeout(SQLITE_BUSY_TIMEOUT, gate.acquire_owned()).await {
            Ok(turn) => turn.ok(),
            Err(_) => {
                tracing::warn!(
                    waited = ?SQLITE_BUSY_TIMEOUT,
                    "a SQLite write waited its whole turn: trying the database's lock anyway"
                );
                None
            }
        }
    }
}

impl Default for WriteGate {
    fn default() -> Self {
        WriteGate::new()
    }
}

tokio::task_local! {
    /// The gate of the store whose operation runs (set by `dispatch!`).
    static SQLITE_WRITE_GATE: WriteGate;
}

type PgTm = <AsyncPgConnection as AsyncConnection>::TransactionManager;
type SqliteTm = <SqliteConn as AsyncConnection>::TransactionManager;

impl TxConn for AsyncPgConnection {
    async fn begin(&mut self, tenant: Option<TenantId>, _access: Access) -> StoreResult<Opened> {
        let Some(tenant) = tenant else {
            return Ok(Opened::NONE);
        };
        if let Err(e) = PgTm::begin_transaction_sql(self, &begin_for(tenant)).await {
            // diesel counts no transaction after a failed batch, but a failed setting
            // leaves the server's open (and aborted): end it (harmless when none is open).
            let _ = self.batch_execute("ROLLBACK").await;
            return Err(db_err(e));
        }
        Ok(Opened::OPEN)
    }

    async fn finish<T: Send>(&mut self, opened: Opened, result: StoreResult<T>) -> StoreResult<T> {
        if !opened.open {
            return result;
        }
        match result {
            Ok(value) => match PgTm::commit_transaction(self).await {
                Ok(()) => Ok(value),
                Err(e) => {
                    let _ = PgTm::rollback_transaction(self).await;
                    Err(db_err(e))
                }
            },
            Err(e) => {
                let _ = PgTm::rollback_transaction(self).await;
                Err(e)
            }
        }
    }
}

/// `BEGIN` and the tenant setting, as one simple query (see the module docs).
fn begin_for(tenant: TenantId) -> String {
    let uuid = tenant.as_uuid().hyphenated();
    format!("BEGIN; SELECT set_config('app.tenant_id', '{uuid}', true)")
}

/// PostgreSQL: a tenant-scoped point read in one round trip. `BEGIN` with the tenant
/// setting, the statement and `COMMIT` go to the server together, without waiting for
/// each other's answers (diesel-async pipelines futures polled together on a shared
/// `&AsyncPgConnection`), and the server runs them in order, so the statement sees the
/// setting. `read` gets the shared connection and runs one statement; it may run twice
/// (below).
///
/// A statement the connection has not prepared yet is the exception: diesel-async sends
/// its `Parse` first and its `Bind`/`Execute` only once the `Parse` is answered — after
/// the `COMMIT` has gone. It then runs outside the transaction, without the setting, and
/// row-level security shows it no row: such a "not found" (it cannot be a wrong row) is
/// read again the two-round-trip way, the `COMMIT` sent only after the answer. That
/// happens once per connection and statement, and for ids that do not exist.
///
/// The transaction is counted in diesel's transaction manager before anything is sent,
/// and uncounted only once the `COMMIT` has answered: a read abandoned midway, or whose
/// `COMMIT` failed, leaves a connection in a transaction, which the pool's checkout check
/// drops instead of handing it on.
pub(crate) async fn pg_pipelined_read<T, F>(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    read: F,
) -> StoreResult<T>
where
    T: Send,
    F: for<'c> Fn(&'c AsyncPgConnection) -> BoxFuture<'c, StoreResult<T>>,
{
    enter_transaction(conn)?;
    let begin = begin_for(tenant);
    let (began, result, committed) = {
        let shared: &AsyncPgConnection = conn;
        let (mut beginning, mut committing) = (shared, shared);
        futures_util::future::join3(
            beginning.batch_execute(&begin),
            read(shared),
            committing.batch_execute("COMMIT"),
        )
        .await
    };
    // Uncounted only once the `COMMIT` has answered (see above).
    let left = committed
        .map_err(db_err)
        .and_then(|()| leave_transaction(conn));
    // A failed `BEGIN` is the error to report, whatever the statement or `COMMIT` answered.
    began.map_err(db_err)?;
    left?;
    match result {
        Err(znovel_domain::StoreError::NotFound) => pg_read_then_commit(conn, tenant, read).await,
        other => other,
    }
}

/// [`pg_pipelined_read`]'s second way: `BEGIN` and the statement together, `COMMIT` once
/// the statement has answered (two round trips).
async fn pg_read_then_commit<T, F>(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    read: F,
) -> StoreResult<T>
where
    T: Send,
    F: for<'c> Fn(&'c AsyncPgConnection) -> BoxFuture<'c, StoreResult<T>>,
{
    enter_transaction(conn)?;
    let begin = begin_for(tenant);
    let (began, result) = {
        let shared: &AsyncPgConnection = conn;
        let mut beginning = shared;
        futures_util::future::join(beginning.batch_execute(&begin), read(shared)).await
    };
    // A failed `BEGIN` is the error to report, whatever the statement answered.
    let result = began.map_err(db_err).and(result);
    conn.finish(Opened::OPEN, result).await
}

/// Counts a transaction in diesel's transaction manager (before its `BEGIN` is sent).
fn enter_transaction(conn: &mut AsyncPgConnection) -> StoreResult<()> {
    match PgTm::transaction_manager_status_mut(conn) {
        TransactionManagerStatus::Valid(state) if state.transaction_depth().is_none() => state
            .change_transaction_depth(TransactionDepthChange::IncreaseDepth)
            .map_err(db_err),
        TransactionManagerStatus::Valid(_) => {
            Err(db_err(diesel::result::Error::AlreadyInTransaction))
        }
        TransactionManagerStatus::InError => {
            Err(db_err(diesel::result::Error::BrokenTransactionManager))
        }
    }
}

/// Uncounts the transaction [`enter_transaction`] counted (its `COMMIT` has answered).
fn leave_transaction(conn: &mut AsyncPgConnection) -> StoreResult<()> {
    match PgTm::transaction_manager_status_mut(conn) {
        TransactionManagerStatus::Valid(state) => state
            .change_transaction_depth(TransactionDepthChange::DecreaseDepth)
            .map_err(db_err),
        TransactionManagerStatus::InError => {
            Err(db_err(diesel::result::Error::BrokenTransactionManager))
        }
    }
}

impl TxConn for SqliteConn {
    async fn begin(&mut self, _tenant: Option<TenantId>, access: Access) -> StoreResult<Opened> {
        if access == Access::Read {
            return Ok(Opened::NONE);
        }
        let turn = WriteGate::turn().await;
        self.spawn_blocking(|conn| {
            diesel::connection::AnsiTransactionManager::begin_transaction_sql(
                conn,
                "BEGIN IMMEDIATE",
            )
        })
        .await
        .map_err(db_err)?;
        Ok(Opened {
            open: true,
            _turn: turn,
        })
    }

    async fn finish<T: Send>(&mut self, opened: Opened, result: StoreResult<T>) -> StoreResult<T> {
        if !opened.open {
            return result;
        }
        match result {
            Ok(value) => match SqliteTm::commit_transaction(self).await {
                Ok(()) => Ok(value),
                Err(e) => {
                    let _ = SqliteTm::rollback_transaction(self).await;
                    Err(db_err(e))
                }
            },
            Err(e) => {
                let _ = SqliteTm::rollback_transaction(self).await;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;

    /// A connection set up as the pool's are, on a fresh file (removed with the returned
    /// database).
    fn sqlite_file() -> (crate::testing::TestDatabase, SqliteConn) {
        let db = crate::testing::TestDatabase::sqlite().unwrap();
        let conn = super::super::pool::open_sqlite(&db.sqlite_file().unwrap()).unwrap();
        (db, SyncConnectionWrapper::new(conn))
    }

    /// A write transaction holds its store's turn from `BEGIN IMMEDIATE` until it has
    /// committed or rolled back; a read takes none.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sqlite_writer_holds_its_turn_for_its_whole_transaction() {
        let (_db, mut conn) = sqlite_file();
        let gate = WriteGate::new();
        let free = |gate: &WriteGate| gate.0.available_permits();
        gate.serve(async {
            let read = conn.begin(None, Access::Read).await.unwrap();
            assert_eq!(free(&gate), 1, "a read waits for no writer");
            conn.finish(read, Ok(())).await.unwrap();

            let write = conn.begin(None, Access::Write).await.unwrap();
            assert_eq!(free(&gate), 0, "the writer has its turn");
            conn.batch_execute("CREATE TABLE t (x INTEGER)")
                .await
                .unwrap();
            conn.finish(write, Ok(())).await.unwrap();
            assert_eq!(free(&gate), 1, "given back once committed");

            let write = conn.begin(None, Access::Write).await.unwrap();
            conn.batch_execute("INSERT INTO t VALUES (1)")
                .await
                .unwrap();
            let failed: StoreResult<()> = Err(znovel_domain::StoreError::NotFound);
            assert!(conn.finish(write, failed).await.is_err());
            assert_eq!(free(&gate), 1, "given back once rolled back");
        })
        .await;
        // Rolled back: the row is not there; committed: the table is.
        let count: i64 = conn
            .spawn_blocking(|c| {
                use diesel::RunQueryDsl;
                diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "(SELECT count(*) FROM t)",
                ))
                .get_result(c)
            })
            .await
            .unwrap();
        assert_eq!(count, 0);
    }

    /// Writers get their turns in the order they asked for them, and a writer outside
    /// any store's operation (no gate) goes straight to SQLite.
    #[tokio::test(flavor = "current_thread")]
    async fn writers_take_turns_in_the_order_they_asked() {
        assert!(WriteGate::turn().await.is_none(), "no gate, no turn");
        let gate = WriteGate::new();
        let first = gate.serve(WriteGate::turn()).await.expect("a free gate");
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for i in 0..8 {
            let order = order.clone();
            let (asking, asked) = tokio::sync::oneshot::channel();
            waiting.push(tokio::spawn(gate.serve(async move {
                // One thread: this task's poll queues it before the test runs again.
                asking.send(()).unwrap();
                let turn = WriteGate::turn().await.expect("a turn");
                order.lock().unwrap().push(i);
                tokio::task::yield_now().await;
                drop(turn);
            })));
            asked.await.unwrap();
        }
        tokio::task::yield_now().await;
        assert!(
            order.lock().unwrap().is_empty(),
            "nobody passes the writer in"
        );
        drop(first);
        for w in waiting {
            w.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
    }
}
