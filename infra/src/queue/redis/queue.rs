//! [`RedisQueue`], the Redis job queue.

use super::conn::{RedisConnections, RedisOptions};
use super::{scripts, value};
use crate::queue::codec::{self, JOB, TENANT};
use crate::queue::keys::{self, GROUP};
use crate::queue::{DeadLetter, QueueOptions};
use ::redis::{RedisResult, Value};
use async_trait::async_trait;
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use znovel_domain::ports::{Delivery, JobMessage, JobQueue, QueueError, QueueStats};

/// `IDLE` given to a released entry: any visibility timeout has passed.
const RELEASED_IDLE_MS: u64 = 10 * 365 * 24 * 60 * 60 * 1000;

/// The [`JobQueue`] on one Redis stream with a consumer group.
///
/// - `enqueue`: `XADD {prefix}:jobs * tenant .. job ..`.
/// - `claim`: a script runs `XAUTOCLAIM` (entries idle >= the visibility timeout, and
///   released ones) and reads each one's delivery count from `XPENDING`; then
///   `XREADGROUP ... >` for new entries (delivery count 1). When there is nothing it
///   blocks on a dedicated connection in slices of at most a quarter of the visibility
///   timeout (10 ms..1 s), reclaiming between slices, until `wait` ends. Entries that do
///   not decode are dead-lettered, never returned.
/// - delivery count: Redis' own per-entry counter in the group's pending list — shared by
///   every process, incremented by each `XREADGROUP`/`XAUTOCLAIM` delivery.
/// - `extend`: `XCLAIM ... IDLE 0 JUSTID` to the current owner (resets idle, not the
///   count); `release`: the same with a ten-year `IDLE`, so the next `claim` in any
///   process reclaims it first (count + 1); blocked claimers of this process are woken
///   with `CLIENT UNBLOCK`, others see it within one slice. Both act only if the entry is
///   still pending with the delivery's count (not reclaimed since) and not released.
/// - `ack`: `XACK` + `XDEL` (MULTI); `dead_letter`: a script copies the entry to
///   `{prefix}:jobs:dead` with reason, delivery count and original id, then acks and
///   deletes it.
/// - `stats`: `waiting` = `XLEN` − pending (acked entries are deleted, so the stream holds
///   exactly the waiting and the pending ones), `in_flight` = `XPENDING` count, `dead` =
///   `XLEN` of the dead letters.
pub struct RedisQueue {
    pub(super) conns: RedisConnections,
    pub(super) jobs: String,
    pub(super) dead: String,
    pub(super) options: QueueOptions,
    /// Longest single blocking `XREADGROUP`.
    pub(super) slice: Duration,
    /// `CLIENT ID`s of this instance's connections blocked in `XREADGROUP`.
    pub(super) blocked: Mutex<HashSet<i64>>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("jobs", &self.jobs)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Checks a receipt is a stream entry id.
fn entry_id(delivery: &Delivery) -> Result<&str, QueueError> {
    let id = delivery.receipt.as_str();
    let ok = id
        .split_once('-')
        .is_some_and(|(ms, n)| ms.parse::<u64>().is_ok() && n.parse::<u64>().is_ok());
    if ok {
        Ok(id)
    } else {
        Err(QueueError::Internal(format!("not a queue receipt: {id:?}")))
    }
}

impl RedisQueue {
    /// Connects to `url` with default pool settings; see [`RedisQueue::new`].
    pub async fn connect(url: &str, prefix: &str, options: QueueOptions) -> anyhow::Result<Self> {
        let conns = RedisConnections::connect(url, RedisOptions::default()).await?;
        Self::new(conns, prefix, options).await
    }

    /// The queue `{prefix}:jobs` on `conns`, creating its consumer group if needed.
    pub async fn new(
        conns: RedisConnections,
        prefix: &str,
        options: QueueOptions,
    ) -> anyhow::Result<Self> {
        keys::check_prefix(prefix)?;
        let slice = (options.visibility_timeout / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let queue = Self {
            conns,
            jobs: keys::jobs(prefix),
            dead: keys::dead(prefix),
            options,
            slice,
            blocked: Mutex::new(HashSet::new()),
        };
        queue.ensure_group().await?;
        Ok(queue)
    }

    /// The newest dead letters, oldest first, at most `max`.
    pub async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let mut conn = self.conns.get().await?;
        let reply: RedisResult<Value> = ::redis::cmd("XREVRANGE")
            .arg(&self.dead)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(max)
            .query_async(&mut conn.inner)
            .await;
        let reply = conn.check(reply)?;
        let mut out = Vec::new();
        for item in value::array(reply, "dead letters")? {
            let (_, fields) = value::entry(item, "dead letter")?;
            let text = |name: &str| {
                fields
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            };
            let pairs = fields
                .iter()
                .map(|(n, v)| (n.as_str(), std::str::from_utf8(v).unwrap_or_default()));
            out.push(DeadLetter {
                message: codec::decode_message(pairs).map_err(QueueError::Internal)?,
                reason: text("reason"),
                delivery_count: text("delivery_count").parse().unwrap_or_default(),
            });
        }
        out.reverse();
        Ok(out)
    }

    /// `XGROUP CREATE {jobs} workers 0 MKSTREAM`, tolerating an existing group.
    pub(super) async fn ensure_group(&self) -> Result<(), QueueError> {
        let mut conn = self.conns.get().await?;
        let created: RedisResult<()> = ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.jobs)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn.inner)
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => conn.check(other),
        }
    }

    pub(super) async fn move_to_dead(
        &self,
        id: &str,
        reason: &str,
        count: u32,
    ) -> Result<(), QueueError> {
        let mut conn = self.conns.get().await?;
        let moved: RedisResult<i64> = scripts::DEAD_LETTER
            .key(&self.jobs)
            .key(&self.dead)
            .arg(GROUP)
            .arg(id)
            .arg(reason)
            .arg(count)
            .arg(self.options.max_dead_letters.max(1))
            .invoke_async(&mut conn.inner)
            .await;
        conn.check(moved).map(drop)
    }

    /// Sets a current delivery's idle time; false when it is no longer current.
    async fn set_idle(&self, delivery: &Delivery, idle_ms: u64) -> Result<bool, QueueError> {
        let id = entry_id(delivery)?;
        let mut conn = self.conns.get().await?;
        let done: RedisResult<i64> = scripts::SET_IDLE
            .key(&self.jobs)
            .arg(GROUP)
            .arg(id)
            .arg(delivery.delivery_count)
            .arg(idle_ms)
            .arg(RELEASED_IDLE_MS / 2)
            .invoke_async(&mut conn.inner)
            .await;
        Ok(conn.check(done)? == 1)
    }

    /// Wakes this instance's claimers blocked in `XREADGROUP` (best effort).
    async fn unblock_local(&self) {
        let ids: Vec<i64> = self
            .blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        if ids.is_empty() {
            return;
        }
        let Ok(mut conn) = self.conns.get().await else {
            return;
        };
        let mut pipe = ::redis::pipe();
        for id in ids {
            pipe.cmd("CLIENT").arg("UNBLOCK").arg(id).ignore();
        }
        let done: RedisResult<()> = pipe.query_async(&mut conn.inner).await;
        if let Err(e) = done {
            conn.note(&e);
        }
    }
}

#[async_trait]
impl JobQueue for RedisQueue {
    #[tracing::instrument(level = "debug", skip_all, fields(job = %message.job_id))]
    async fn enqueue(&self, message: &JobMessage) -> Result<(), QueueError> {
        let mut conn = self.conns.get().await?;
        let added: RedisResult<String> = ::redis::cmd("XADD")
            .arg(&self.jobs)
            .arg("*")
            .arg(TENANT)
            .arg(message.tenant_id.to_string())
            .arg(JOB)
            .arg(message.job_id.to_string())
            .query_async(&mut conn.inner)
            .await;
        conn.check(added).map(drop)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(consumer = %consumer, max = max))]
    async fn claim(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        match self.claim_once(consumer, max, wait).await {
            Err(f) if f.is_nogroup() => {
                self.ensure_group().await?;
                Ok(self.claim_once(consumer, max, wait).await?)
            }
            other => Ok(other?),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(receipt = %delivery.receipt))]
    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let id = entry_id(delivery)?;
        let mut conn = self.conns.get().await?;
        let done: RedisResult<()> = ::redis::pipe()
            .atomic()
            .cmd("XACK")
            .arg(&self.jobs)
            .arg(GROUP)
            .arg(id)
            .ignore()
            .cmd("XDEL")
            .arg(&self.jobs)
            .arg(id)
            .ignore()
            .query_async(&mut conn.inner)
            .await;
        conn.check(done)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(receipt = %delivery.receipt))]
    async fn extend(&self, delivery: &Delivery) -> Result<(), QueueError> {
        if !self.set_idle(delivery, 0).await? {
            tracing::debug!("extend of a delivery that is no longer current ignored");
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(receipt = %delivery.receipt))]
    async fn release(&self, delivery: &Delivery) -> Result<(), QueueError> {
        if self.set_idle(delivery, RELEASED_IDLE_MS).await? {
            self.unblock_local().await;
        } else {
            tracing::debug!("release of a delivery that is no longer current ignored");
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(receipt = %delivery.receipt))]
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        let id = entry_id(delivery)?;
        self.move_to_dead(id, reason, delivery.delivery_count).await
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut conn = self.conns.get().await?;
        let reply: RedisResult<(u64, u64, u64)> = scripts::STATS
            .key(&self.jobs)
            .key(&self.dead)
            .arg(GROUP)
            .invoke_async(&mut conn.inner)
            .await;
        let (len, pending, dead) = conn.check(reply)?;
        Ok(QueueStats {
            waiting: len.saturating_sub(pending),
            in_flight: pending,
            dead,
        })
    }
}
