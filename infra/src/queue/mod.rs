//! The job queue ([`JobQueue`]) and the per-job token streams ([`TokenStream`]) of
//! `znovel_domain::ports`, in two adapters that pass one contract suite
//! (`infra/tests/queue_contract.rs`):
//!
//! [`JobQueue`]: znovel_domain::ports::JobQueue
//! [`TokenStream`]: znovel_domain::ports::TokenStream
//!
//! - [`events`]: live job status changes ([`JobEvents`](znovel_domain::ports::JobEvents)),
//!   in-process or over Redis pub/sub.
//! - [`credentials`]: live credential changes
//!   ([`CredentialEvents`](znovel_domain::ports::CredentialEvents)), in-process or over
//!   Redis pub/sub.
//! - [`memory`]: in-process, for the embedded default (one process, no Redis).
//! - [`redis`]: Redis Streams through `bb8-redis`, for scale-out: any number of gateways
//!   and workers on one Redis share a key prefix (default [`DEFAULT_PREFIX`]).
//!
//! Semantics both adapters share, beyond the port's doc comments:
//!
//! - `claim` hands out reclaimed (visibility timeout passed) and released deliveries
//!   first, in enqueue order, then new ones in enqueue order.
//! - `release` hands the message back at once; its next delivery counts one more
//!   (`delivery_count` 2 after one release), so a job that keeps being handed back still
//!   reaches the dead-letter threshold.
//! - `ack` and `dead_letter` are final whoever holds the message now (a late ack of a
//!   delivery that was reclaimed still completes the job); `extend` and `release` act only
//!   while the delivery is current (same message, same `delivery_count`, not acked) and
//!   are silent no-ops otherwise — the port has no "lost" error to report it with.
//! - `stats`: `waiting` = never delivered; `in_flight` = delivered and not acked,
//!   including released and timed-out deliveries waiting to be claimed again.
//! - Token streams: an append whose `seq` is not above the stream's last one, or that
//!   follows an `End`, is ignored (`Ok`, nothing stored) so a retried append is harmless;
//!   `seq` 0 is rejected (`Internal`). A stream holds at most
//!   [`TokenStreamOptions::max_entries`]; appending past it fails with `Internal` (never
//!   trimmed: a reader must never see a gap). A stream that is never `expire`d is deleted
//!   [`TokenStreamOptions::default_ttl`] after its first entry; `expire` replaces that.

mod codec;
pub mod credentials;
pub mod events;
pub(crate) mod keys;
pub mod memory;
pub mod redis;

use std::time::Duration;
use znovel_domain::ports::JobMessage;

pub use keys::DEFAULT_PREFIX;

/// Settings of a job queue adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    /// How long a delivery may stay unacknowledged (without `extend`) before `claim`
    /// hands it to another consumer. Workers `extend` well within it.
    pub visibility_timeout: Duration,
    /// Most dead letters kept; the oldest go first past it (Redis: approximate trim).
    pub max_dead_letters: usize,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(60),
            max_dead_letters: 100_000,
        }
    }
}

/// Settings of a token stream adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStreamOptions {
    /// Most entries one job's stream holds; appending past it fails with `Internal`.
    pub max_entries: usize,
    /// Lifetime of a stream that is never `expire`d, from its first entry (a worker that
    /// crashed before ending its stream leaks nothing).
    pub default_ttl: Duration,
}

impl Default for TokenStreamOptions {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            default_ttl: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// A message moved to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message.
    pub message: JobMessage,
    /// Why it was given up.
    pub reason: String,
    /// Deliveries it had.
    pub delivery_count: u32,
}
