//! Rate limits in Redis: GCRA in one Lua script, atomic per bucket, so every replica
//! sharing the Redis (and the key prefix) shares each limit. The bucket's key holds its
//! "theoretical arrival time" in microseconds of the Redis clock and expires once the
//! bucket is full again: an idle bucket costs nothing.

use crate::queue::redis::RedisConnections;
use ::redis::{RedisResult, Script};
use std::sync::LazyLock;
use std::time::Duration;
use znovel_domain::ports::{QueueError, Rate, RateLimiter};

/// One GCRA step. KEYS: the bucket. ARGV: emission interval µs (period / max), period µs.
/// Returns 0 when allowed (and recorded), else the µs to wait.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if allow_at > now then
  return math.max(1, math.ceil(allow_at - now))
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return 0
",
    )
});

/// Rate limits shared through Redis.
pub struct RedisRateLimiter {
    conns: RedisConnections,
    prefix: String,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// Counts under `{prefix}:rl:`.
    pub fn new(conns: RedisConnections, prefix: &str) -> anyhow::Result<Self> {
        crate::queue::keys::check_prefix(prefix)?;
        Ok(Self {
            conns,
            prefix: format!("{prefix}:rl:"),
        })
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, bucket: &str, rate: Rate) -> Result<Option<Duration>, QueueError> {
        if rate.max == 0 {
            return Ok(Some(rate.period));
        }
        let period = u64::try_from(rate.period.as_micros()).unwrap_or(u64::MAX / 4);
        let interval = (period / u64::from(rate.max)).max(1);
        let mut conn = self.conns.get().await?;
        let wait: RedisResult<u64> = GCRA
            .key(format!("{}{bucket}", self.prefix))
            .arg(interval)
            .arg(period)
            .invoke_async(&mut conn.inner)
            .await;
        let wait = conn.check(wait)?;
        Ok((wait > 0).then(|| Duration::from_micros(wait)))
    }
}
