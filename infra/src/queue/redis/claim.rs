//! The claim path of [`RedisQueue`]: reclaim (`XAUTOCLAIM` + counts from `XPENDING`),
//! then new entries (`XREADGROUP ... >`), blocking in slices on a dedicated connection
//! when there is nothing; plus the raw-failure type that lets `claim` recreate a missing
//! consumer group.

use super::conn::{Conn, redis_err};
use super::queue::RedisQueue;
use super::{scripts, value};
use crate::queue::codec;
use crate::queue::keys::GROUP;
use ::redis::{RedisError, RedisResult, Value};
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use znovel_domain::ports::{Delivery, QueueError};

/// Extra time a blocking command gets beyond its `BLOCK` before it is abandoned.
const BLOCK_GRACE: Duration = Duration::from_secs(2);

/// A failure kept raw, so that a missing consumer group can be recreated.
pub(super) enum Fail {
    Redis(RedisError),
    Queue(QueueError),
}

impl From<QueueError> for Fail {
    fn from(e: QueueError) -> Self {
        Self::Queue(e)
    }
}

impl From<Fail> for QueueError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Redis(e) => redis_err(&e),
            Fail::Queue(e) => e,
        }
    }
}

impl Fail {
    pub(super) fn is_nogroup(&self) -> bool {
        matches!(self, Self::Redis(e) if e.to_string().contains("NOGROUP"))
    }
}

/// A command's result on a pooled connection, kept raw.
pub(super) fn raw<T>(conn: &mut Conn, result: RedisResult<T>) -> Result<T, Fail> {
    result.map_err(|e| {
        conn.note(&e);
        Fail::Redis(e)
    })
}

/// Registers a blocked connection for `CLIENT UNBLOCK` while it lives.
struct Blocked<'a>(&'a Mutex<HashSet<i64>>, i64);

impl<'a> Blocked<'a> {
    fn new(set: &'a Mutex<HashSet<i64>>, id: i64) -> Self {
        set.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id);
        Self(set, id)
    }
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.1);
    }
}

impl RedisQueue {
    pub(super) async fn claim_once(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, Fail> {
        let deadline = Instant::now() + wait;
        loop {
            let mut out = self.reclaim(consumer, max).await?;
            let now = Instant::now();
            if !out.is_empty() || now >= deadline {
                let more = self.read_new(consumer, max - out.len(), None).await?;
                out.extend(more);
                return Ok(out);
            }
            let slice = (deadline - now).min(self.slice);
            let got = self.read_new(consumer, max, Some(slice)).await?;
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
        }
    }

    /// Reclaims timed-out and released entries (their counts from the pending list).
    async fn reclaim(&self, consumer: &str, max: usize) -> Result<Vec<Delivery>, Fail> {
        let mut conn = self.conns.get().await?;
        let reply: RedisResult<Value> = scripts::RECLAIM
            .key(&self.jobs)
            .arg(GROUP)
            .arg(consumer)
            .arg(self.options.visibility_timeout.as_millis() as u64)
            .arg(max)
            .invoke_async(&mut conn.inner)
            .await;
        let reply = raw(&mut conn, reply)?;
        drop(conn);
        let mut out = Vec::new();
        for item in value::array(reply, "reclaim")? {
            let mut parts = value::array(item, "reclaim")?.into_iter();
            let (Some(id), Some(fields), Some(count)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(QueueError::Internal("short reclaim reply".into()).into());
            };
            let entry = Value::Array(vec![id, fields]);
            let count = value::int(count, "delivery count")?;
            if let Some(d) = self
                .delivery(entry, count.clamp(1, u32::MAX.into()) as u32)
                .await?
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// `XREADGROUP ... >`: at once (`block` `None` or under 1 ms) on a pooled connection,
    /// or blocking up to `block` on a dedicated one.
    async fn read_new(
        &self,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Delivery>, Fail> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let block = block.filter(|b| b.as_millis() > 0);
        let mut cmd = ::redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(block.as_millis() as u64);
        }
        cmd.arg("STREAMS").arg(&self.jobs).arg(">");
        let reply: Value = match block {
            None => {
                let mut conn = self.conns.get().await?;
                let reply = cmd.query_async(&mut conn.inner).await;
                raw(&mut conn, reply)?
            }
            Some(block) => {
                let Some(mut blocking) = self.conns.blocking(block).await? else {
                    return Ok(Vec::new());
                };
                let mark = Blocked::new(&self.blocked, blocking.id());
                let Some(conn) = blocking.conn() else {
                    return Ok(Vec::new());
                };
                let reply = tokio::time::timeout(block + BLOCK_GRACE, cmd.query_async(conn)).await;
                drop(mark);
                match reply {
                    Err(_) => {
                        return Err(
                            QueueError::Unavailable("Redis XREADGROUP timed out".into()).into()
                        );
                    }
                    Ok(Err(e)) => return Err(Fail::Redis(e)),
                    Ok(Ok(reply)) => {
                        blocking.keep();
                        reply
                    }
                }
            }
        };
        let mut out = Vec::new();
        for entry in value::read_reply(reply, "XREADGROUP")? {
            if let Some(d) = self.delivery(entry, 1).await? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// A delivery from a stream entry; an entry that does not decode is dead-lettered
    /// and skipped.
    pub(super) async fn delivery(
        &self,
        entry: Value,
        count: u32,
    ) -> Result<Option<Delivery>, Fail> {
        let (id, fields) = value::entry(entry, "queue entry")?;
        let pairs = fields
            .iter()
            .map(|(n, v)| (n.as_str(), std::str::from_utf8(v).unwrap_or_default()));
        match codec::decode_message(pairs) {
            Ok(message) => Ok(Some(Delivery {
                message,
                receipt: id,
                delivery_count: count,
            })),
            Err(why) => {
                tracing::error!(entry = %id, %why, "malformed queue entry dead-lettered");
                self.move_to_dead(&id, &format!("malformed: {why}"), count)
                    .await?;
                Ok(None)
            }
        }
    }
}
