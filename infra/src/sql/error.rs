//! Translation of diesel and pool errors into the ports' [`StoreError`].
//!
//! | driver error                                   | `StoreError`  |
//! |------------------------------------------------|---------------|
//! | no row (`NotFound`)                            | `NotFound`    |
//! | unique violation                               | `Conflict`    |
//! | serialization failure (concurrent update)      | `Conflict`    |
//! | foreign-key violation (the referenced row does not exist in the tenant) | `NotFound` |
//! | pool timeout, connection refused/closed, SQLite busy | `Unavailable` |
//! | anything else (a bug)                          | `Internal`    |

use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error};
use diesel_async::pooled_connection::PoolError;
use znovel_domain::StoreError;

/// Translates a diesel error.
pub fn db_err(e: Error) -> StoreError {
    match e {
        Error::NotFound => StoreError::NotFound,
        Error::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UniqueViolation => {
                StoreError::Conflict(format!("already exists ({})", describe(info.as_ref())))
            }
            DatabaseErrorKind::SerializationFailure => {
                StoreError::Conflict(format!("concurrent update, retry ({})", info.message()))
            }
            DatabaseErrorKind::ForeignKeyViolation => StoreError::NotFound,
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                StoreError::Unavailable(info.message().to_owned())
            }
            _ if is_busy(info.message()) => StoreError::Unavailable(info.message().to_owned()),
            _ => StoreError::Internal(format!("{kind:?}: {}", describe(info.as_ref()))),
        },
        Error::BrokenTransactionManager => {
            StoreError::Unavailable("the connection's transaction state is broken".into())
        }
        other => StoreError::Internal(other.to_string()),
    }
}

/// Translates a failure to get a pooled connection.
pub fn pool_err(e: bb8::RunError<PoolError>) -> StoreError {
    match e {
        bb8::RunError::TimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".into())
        }
        bb8::RunError::User(e) => StoreError::Unavailable(e.to_string()),
    }
}

/// A row could not be turned into a domain value (e.g. an unknown enum string).
pub fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("invalid {what} in the database: {detail}"))
}

fn describe(info: &(dyn DatabaseErrorInformation + Send + Sync)) -> String {
    match info.constraint_name() {
        Some(c) => c.to_owned(),
        None => info.message().to_owned(),
    }
}

/// SQLite reports lock contention (after `busy_timeout`) as a generic error.
fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database table is locked")
}
