//! Rate limiting: how many times something may happen per period, counted per bucket
//! (an API key, a tenant, a tenant's generation starts). One adapter counts in the
//! process (the embedded default); another in Redis, so a limit holds across replicas.

use super::QueueError;
use async_trait::async_trait;
use std::time::Duration;

/// A limit: at most `max` per `period`, spread evenly (a burst of `max` is allowed when
/// the bucket has been idle for `period`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// How many per period (0 = nothing is allowed).
    pub max: u32,
    /// The period.
    pub period: Duration,
}

impl Rate {
    /// `max` per minute.
    pub const fn per_minute(max: u32) -> Self {
        Self {
            max,
            period: Duration::from_secs(60),
        }
    }
}

/// Counts events per bucket against a [`Rate`].
///
/// Contract: `acquire` is atomic per bucket — of concurrent calls on one bucket with
/// `rate.max` left, exactly `rate.max` succeed, in every process sharing the adapter's
/// backend. A refused call takes nothing from the bucket. The bucket name is opaque;
/// buckets of different names never share counts.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Takes one from `bucket`: `Ok(None)` when allowed, `Ok(Some(wait))` when refused
    /// (`wait`: how long until one more would be allowed).
    async fn acquire(&self, bucket: &str, rate: Rate) -> Result<Option<Duration>, QueueError>;
}
