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
//! writers queue on `busy_timeout` instead of deadlocking on a lock upgrade; reads are
//! single statements and need no transaction.

use super::error::db_err;
use super::pool::SqliteConn;
use diesel::connection::{TransactionDepthChange, TransactionManagerStatus};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection, TransactionManager};
use futures_util::future::BoxFuture;
use std::future::Future;
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

/// Opening and closing the transaction of one repository operation.
pub trait TxConn: Send {
    /// Opens the transaction `access` needs, scoped to `tenant` when given. Returns
    /// whether a transaction was opened (to hand to [`TxConn::finish`]).
    fn begin(
        &mut self,
        tenant: Option<TenantId>,
        access: Access,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Commits when `result` is `Ok`, rolls back otherwise; returns `result` (or the
    /// commit's error).
    fn finish<T: Send>(
        &mut self,
        opened: bool,
        result: StoreResult<T>,
    ) -> impl Future<Output = StoreResult<T>> + Send;
}

type PgTm = <AsyncPgConnection as AsyncConnection>::TransactionManager;
type SqliteTm = <SqliteConn as AsyncConnection>::TransactionManager;

impl TxConn for AsyncPgConnection {
    async fn begin(&mut self, tenant: Option<TenantId>, _access: Access) -> StoreResult<bool> {
        let Some(tenant) = tenant else {
            return Ok(false);
        };
        if let Err(e) = PgTm::begin_transaction_sql(self, &begin_for(tenant)).await {
            // diesel counts no transaction after a failed batch, but a failed setting
            // leaves the server's open (and aborted): end it (harmless when none is open).
            let _ = self.batch_execute("ROLLBACK").await;
            return Err(db_err(e));
        }
        Ok(true)
    }

    async fn finish<T: Send>(&mut self, opened: bool, result: StoreResult<T>) -> StoreResult<T> {
        if !opened {
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
    conn.finish(true, result).await
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
    async fn begin(&mut self, _tenant: Option<TenantId>, access: Access) -> StoreResult<bool> {
        if access == Access::Read {
            return Ok(false);
        }
        self.spawn_blocking(|conn| {
            diesel::connection::AnsiTransactionManager::begin_transaction_sql(
                conn,
                "BEGIN IMMEDIATE",
            )
        })
        .await
        .map_err(db_err)?;
        Ok(true)
    }

    async fn finish<T: Send>(&mut self, opened: bool, result: StoreResult<T>) -> StoreResult<T> {
        if !opened {
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
