//! Rate limiters ([`RateLimiter`](znovel_domain::ports::RateLimiter)), one per backend,
//! both GCRA (a bucket of `max` refilled evenly over `period`):
//!
//! - [`memory`]: in the process, with `governor` — the embedded default (one process).
//! - [`redis`]: one Lua script per acquisition on `{prefix}:rl:{bucket}`, so every replica
//!   sharing the Redis shares the count.

pub mod memory;
pub mod redis;

pub use memory::MemoryRateLimiter;
pub use redis::RedisRateLimiter;
