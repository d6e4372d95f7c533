//! In-process rate limits with `governor`'s keyed GCRA limiters, one per distinct rate.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use znovel_domain::ports::{QueueError, Rate, RateLimiter};

/// Every this many acquisitions, buckets back to full are forgotten (bounded memory).
const SWEEP_EVERY: u64 = 4096;

/// Rate limits counted in this process.
#[derive(Default)]
pub struct MemoryRateLimiter {
    limiters: Mutex<HashMap<Rate, Arc<DefaultKeyedRateLimiter<String>>>>,
    calls: AtomicU64,
}

impl std::fmt::Debug for MemoryRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRateLimiter").finish_non_exhaustive()
    }
}

impl MemoryRateLimiter {
    fn limiter(&self, rate: Rate, max: NonZeroU32) -> Arc<DefaultKeyedRateLimiter<String>> {
        let mut map = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(rate)
            .or_insert_with(|| {
                let interval = (rate.period / max.get()).max(Duration::from_nanos(1));
                let quota = Quota::with_period(interval)
                    .unwrap_or_else(|| Quota::per_second(max))
                    .allow_burst(max);
                Arc::new(DefaultKeyedRateLimiter::keyed(quota))
            })
            .clone()
    }
}

#[async_trait::async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(&self, bucket: &str, rate: Rate) -> Result<Option<Duration>, QueueError> {
        let Some(max) = NonZeroU32::new(rate.max) else {
            return Ok(Some(rate.period));
        };
        let limiter = self.limiter(rate, max);
        if self.calls.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
        }
        Ok(match limiter.check_key(&bucket.to_owned()) {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(DefaultClock::default().now())),
        })
    }
}
