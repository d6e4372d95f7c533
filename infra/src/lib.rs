//! Z-Novel adapters implementing the domain's ports.
//!
//! - [`sql`]: [`SqlStore`], every repository port over PostgreSQL or a SQLite file.
//! - `testing` (feature `testing`): throw-away test databases for this crate's and the
//!   API's tests.

pub mod sql;
#[cfg(feature = "testing")]
pub mod testing;

pub use sql::{DbBackend, PgRoleInfo, PoolStats, SqlOptions, SqlStore};
