//! Z-Novel adapters implementing the domain's ports.
//!
//! - [`bounded`]: a map bounded in entries and bytes, behind the in-memory caches.
//! - [`embed`]: embedders — the embedded multilingual model, an OpenAI-compatible
//!   `/v1/embeddings` endpoint, and a cache in front of either.
//! - [`llm`]: language models — an OpenAI-compatible provider over SSE and a fallback
//!   chain (plus a fake provider for tests under feature `testing`).
//! - [`queue`]: the job queue and per-job token streams, in-process or on Redis Streams.
//! - [`rate_limit`]: rate limits (GCRA), in-process or shared through Redis.
//! - [`sql`]: [`SqlStore`], every repository port over PostgreSQL or a SQLite file.
//! - `testing` (feature `testing`): throw-away test databases for this crate's and the
//!   API's tests.

pub mod bounded;
pub mod embed;
pub mod llm;
pub mod memory;
pub mod queue;
pub mod rate_limit;
pub mod sql;
#[cfg(feature = "testing")]
pub mod testing;

pub use sql::{ChapterCacheStats, DbBackend, PgRoleInfo, PoolStats, SqlOptions, SqlStore};
