//! The macros that let one query body serve both backends.
//!
//! `#[derive(MultiConnection)]` does not work with diesel-async, so each repository file
//! writes its query functions once inside [`per_backend!`], which compiles them twice:
//! in a `pg` module where `Conn` is `AsyncPgConnection` and `Db` is `Pg`, and in a
//! `sqlite` module where they are the SQLite connection and backend. [`dispatch!`] picks
//! the module matching the store's pool, checks a connection out and calls the function;
//! [`tx!`] wraps a body in the tenant transaction of [`super::tx`].

/// Compiles the given items once per backend (modules `pg` and `sqlite`), with `Conn`,
/// `Db` and `PG: bool` naming the backend in each.
macro_rules! per_backend {
    ($($item:item)*) => {
        /// The query functions compiled for PostgreSQL.
        pub(crate) mod pg {
            #![allow(unused_imports, dead_code)]
            use super::*;
            /// The connection type of this backend.
            pub(crate) type Conn = diesel_async::AsyncPgConnection;
            /// The diesel backend.
            type Db = diesel::pg::Pg;
            /// Whether this is PostgreSQL (for the rare backend-specific SQL fragment).
            const PG: bool = true;
            $($item)*
        }

        /// The query functions compiled for SQLite.
        pub(crate) mod sqlite {
            #![allow(unused_imports, dead_code)]
            use super::*;
            /// The connection type of this backend.
            pub(crate) type Conn = $crate::sql::pool::SqliteConn;
            /// The diesel backend.
            type Db = diesel::sqlite::Sqlite;
            /// Whether this is PostgreSQL (for the rare backend-specific SQL fragment).
            const PG: bool = false;
            $($item)*
        }
    };
}

/// `dispatch!(store, [module::]function(args…))`: checks a connection out of the store's
/// pool and calls `[module::]pg::function(conn, args…)` or `[module::]sqlite::function(…)`
/// (the latter with the store's [`super::tx::WriteGate`] as the one its writes queue at).
macro_rules! dispatch {
    ($store:expr, $module:ident :: $f:ident($($arg:expr),* $(,)?)) => {
        dispatch!(@go $store, $module::pg::$f, $module::sqlite::$f, $($arg),*)
    };
    ($store:expr, $f:ident($($arg:expr),* $(,)?)) => {
        dispatch!(@go $store, pg::$f, sqlite::$f, $($arg),*)
    };
    (@go $store:expr, $pg:path, $sqlite:path, $($arg:expr),*) => {
        match &$store.pools {
            $crate::sql::pool::Pools::Postgres(pool) => {
                let mut conn = pool.get().await.map_err($crate::sql::error::pool_err)?;
                $pg(&mut conn, $($arg),*).await
            }
            $crate::sql::pool::Pools::Sqlite(pool, writes) => {
                writes
                    .serve(async {
                        let mut conn = pool.get().await.map_err($crate::sql::error::pool_err)?;
                        $sqlite(&mut conn, $($arg),*).await
                    })
                    .await
            }
        }
    };
}

/// `dispatch_point!(store, function(args…))`: [`dispatch!`] for a point read — a row, or a
/// few, by key. On SQLite its statements run on the calling thread rather than a blocking
/// one (see [`super::pool::on_caller`]).
/// `dispatch_point!(store, function(args…), pg = a, sqlite = b)` calls `a` on PostgreSQL
/// and `b` on SQLite instead of `pg::function` and `sqlite::function` (the reads
/// [`point_get!`] writes).
macro_rules! dispatch_point {
    ($store:expr, $f:ident($($arg:expr),* $(,)?)) => {
        dispatch_point!($store, $f($($arg),*), pg = pg::$f, sqlite = sqlite::$f)
    };
    ($store:expr, $f:ident($($arg:expr),* $(,)?), pg = $pg:path, sqlite = $sqlite:path) => {
        match &$store.pools {
            $crate::sql::pool::Pools::Postgres(pool) => {
                let mut conn = pool.get().await.map_err($crate::sql::error::pool_err)?;
                $pg(&mut conn, $($arg),*).await
            }
            $crate::sql::pool::Pools::Sqlite(pool, _) => {
                $crate::sql::pool::on_caller(async {
                    let mut conn = pool.get().await.map_err($crate::sql::error::pool_err)?;
                    $sqlite(&mut conn, $($arg),*).await
                })
                .await
            }
        }
    };
}

/// `point_get!(table, Row, Id, Model)`: defines `pg_get` and `sqlite_get`, the read of the
/// `table` row with this id and tenant for `dispatch_point!(…, pg = pg_get, sqlite =
/// sqlite_get)`. PostgreSQL: `BEGIN`, the `SELECT` and `COMMIT` in one round trip (see
/// [`super::tx::pg_pipelined_read`]). SQLite: the query run by diesel's synchronous
/// connection inside the wrapper's `spawn_blocking` (on the calling thread for a point
/// read), so it is found in the statement cache by its type — the asynchronous wrapper
/// would write out its SQL text and copy each row first, to send them to another thread.
macro_rules! point_get {
    ($table:ident, $row:ty, $id:ty, $model:ty) => {
        /// PostgreSQL's `get`: `BEGIN`, the `SELECT` and `COMMIT` in one round trip
        /// (see [`crate::sql::tx::pg_pipelined_read`]).
        async fn pg_get(
            conn: &mut diesel_async::AsyncPgConnection,
            tenant: TenantId,
            id: $id,
        ) -> StoreResult<$model> {
            $crate::sql::tx::pg_pipelined_read(conn, tenant, move |shared| {
                Box::pin(async move {
                    let mut shared = shared;
                    $table::table
                        .filter($table::id.eq(id.db()))
                        .filter($table::tenant_id.eq(tenant.db()))
                        .select(<$row>::as_select())
                        .first::<$row>(&mut shared)
                        .await
                        .map_err(db_err)?
                        .try_into()
                })
            })
            .await
        }

        /// SQLite's `get`: diesel's synchronous query on the wrapped connection.
        async fn sqlite_get(
            conn: &mut $crate::sql::pool::SqliteConn,
            tenant: TenantId,
            id: $id,
        ) -> StoreResult<$model> {
            let row = conn
                .spawn_blocking(move |c| {
                    let query = $table::table
                        .filter($table::id.eq(id.db()))
                        .filter($table::tenant_id.eq(tenant.db()))
                        .select(<$row>::as_select());
                    diesel::RunQueryDsl::first::<$row>(query, c)
                })
                .await
                .map_err(db_err)?;
            row.try_into()
        }
    };
}

/// `tx!(conn, tenant, Read | Write, { body })`: runs `body` (an expression returning a
/// `StoreResult`) in the transaction [`super::tx::TxConn::begin`] opens for `tenant`,
/// committing on `Ok` and rolling back on `Err`.
macro_rules! tx {
    ($conn:ident, $tenant:expr, $access:ident, $body:block) => {{
        let opened =
            $crate::sql::tx::TxConn::begin(&mut *$conn, $tenant, $crate::sql::tx::Access::$access)
                .await?;
        let result: ::znovel_domain::ports::StoreResult<_> = async { $body }.await;
        $crate::sql::tx::TxConn::finish(&mut *$conn, opened, result).await
    }};
}
