//! Redis adapters for scale-out: [`RedisQueue`] (one stream with the consumer group
//! `workers`) and [`RedisTokenStreams`] (one stream per job, tenant-prefixed, with live
//! fan-out through pub/sub). Key layout: see `keys`. Requires Redis >= 7.0.
//!
//! Build both on one [`RedisConnections`] per process:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use znovel_infra::queue::redis::{RedisConnections, RedisOptions, RedisQueue, RedisTokenStreams};
//! use znovel_infra::queue::{QueueOptions, TokenStreamOptions, DEFAULT_PREFIX};
//!
//! let conns = RedisConnections::connect("redis://127.0.0.1:6379", RedisOptions::default()).await?;
//! let queue = RedisQueue::new(conns.clone(), DEFAULT_PREFIX, QueueOptions::default()).await?;
//! let streams = RedisTokenStreams::new(conns, DEFAULT_PREFIX, TokenStreamOptions::default())?;
//! # Ok(()) }
//! ```
//!
//! Errors: a refused, dropped or timed-out connection (or a pool timeout) is
//! `QueueError::Unavailable`; a reply or entry that is not what we wrote is `Internal`.

mod claim;
mod conn;
mod live;
mod queue;
mod scripts;
mod streams;
mod value;

pub use conn::{RedisConnections, RedisOptions};
pub use queue::RedisQueue;
pub use streams::RedisTokenStreams;
