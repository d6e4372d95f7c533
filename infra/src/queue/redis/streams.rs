//! [`RedisTokenStreams`], the Redis token streams.

use super::conn::{RedisConnections, RedisOptions};
use super::live::{HubRef, Live, Lookup, POLL_EVERY};
use super::{scripts, value};
use crate::queue::TokenStreamOptions;
use crate::queue::codec::{check_seq, decode_event, encode_event};
use crate::queue::keys;
use ::redis::{RedisResult, Value};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use znovel_domain::ids::{JobId, TenantId};
use znovel_domain::ports::{QueueError, StreamEvent, TokenStream};

/// The [`TokenStream`] on one Redis stream per job.
///
/// - `append`: a script adds the entry with id `{seq}-0` (so `XRANGE key ({after}-0 +`
///   resumes exactly after any seq), ignores a duplicate or post-`End` one, refuses one
///   past the cap, sets the default TTL on a new key, and announces the entry (`PUBLISH`
///   on the channel named like the key) — one round trip, atomic.
/// - `read`: from the process's hub for the stream when it can answer, else
///   `XRANGE key ({after}-0 + COUNT max` on a pooled connection; when there is nothing it
///   waits for an announcement (no Redis connection held while waiting).
///
/// Live fan-out: each instance keeps ONE pub/sub connection and one task. A stream that
/// someone waits on gets a hub: subscribed to the stream's channel, caching the announced
/// entries (a contiguous run, at most 4096) and waking its blocked readers through a
/// `tokio::sync::watch`. Once a complete `XRANGE` made after the subscription "anchors"
/// the cache, readers caught up with it wait and are served from memory — a thousand
/// readers of one job cost one announcement per entry, not a thousand `XRANGE`s (50
/// readers × 101 entries: ~70 `XRANGE`s in the tests). A lost announcement (seq gap), a
/// reconnection or an expiry drops the anchor and readers fall back to `XRANGE`; while
/// the pub/sub connection is down, waiting readers poll every 100 ms. Hubs unread for
/// 15 s are unsubscribed by a sweep.
/// - `expire`: `PEXPIRE` plus an `x{ms}` announcement so every process's cache forgets the
///   stream on time.
///
/// Dropping it stops its pub/sub task.
pub struct RedisTokenStreams {
    conns: RedisConnections,
    prefix: String,
    options: TokenStreamOptions,
    live: Arc<Live>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RedisTokenStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenStreams")
            .field("prefix", &self.prefix)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisTokenStreams {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RedisTokenStreams {
    /// Connects to `url` with default pool settings; see [`RedisTokenStreams::new`].
    pub async fn connect(
        url: &str,
        prefix: &str,
        options: TokenStreamOptions,
    ) -> anyhow::Result<Self> {
        let conns = RedisConnections::connect(url, RedisOptions::default()).await?;
        Self::new(conns, prefix, options)
    }

    /// Token streams under `prefix` on `conns`; starts the pub/sub task (needs a tokio
    /// runtime).
    pub fn new(
        conns: RedisConnections,
        prefix: &str,
        options: TokenStreamOptions,
    ) -> anyhow::Result<Self> {
        keys::check_prefix(prefix)?;
        let (live, task) = Live::start(conns.client().clone());
        Ok(Self {
            conns,
            prefix: prefix.to_owned(),
            options,
            live,
            task,
        })
    }

    /// `XRANGE key ({after}-0 + COUNT max`.
    async fn range(
        &self,
        key: &str,
        after: u64,
        max: usize,
    ) -> Result<Vec<StreamEvent>, QueueError> {
        let mut conn = self.conns.get().await?;
        let reply: RedisResult<Value> = ::redis::cmd("XRANGE")
            .arg(key)
            .arg(format!("({after}-0"))
            .arg("+")
            .arg("COUNT")
            // Redis takes a signed 64-bit count: `usize::MAX` ("everything") is refused.
            .arg(i64::try_from(max).unwrap_or(i64::MAX))
            .query_async(&mut conn.inner)
            .await;
        let reply = conn.check(reply)?;
        drop(conn);
        let mut out = Vec::new();
        for item in value::array(reply, "XRANGE")? {
            let (id, fields) = value::entry(item, "token stream entry")?;
            let Some((_, json)) = fields.iter().find(|(name, _)| name == "e") else {
                return Err(QueueError::Internal(format!(
                    "token stream entry {id} has no e"
                )));
            };
            out.push(decode_event(json)?);
        }
        Ok(out)
    }

    async fn read_live(
        &self,
        hub: &HubRef,
        key: &str,
        after: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<StreamEvent>, QueueError> {
        let hub = hub.hub();
        let deadline = Instant::now() + wait;
        loop {
            let mut announced = hub.version.subscribe();
            let epoch = self.live.subscribed(hub);
            let mut caught_up = false;
            if epoch.is_some() {
                match hub.lookup(after, max) {
                    Lookup::Hit(events) => return Ok(events),
                    Lookup::CaughtUp => caught_up = true,
                    Lookup::Miss => {}
                }
            }
            if !caught_up {
                let found = self.range(key, after, max).await?;
                if let Some(epoch) = epoch
                    && found.len() < max
                {
                    self.live.anchor(hub, epoch, after, &found);
                }
                if !found.is_empty() {
                    return Ok(found);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            if epoch.is_none() {
                if !self.live.subscribe(hub).await {
                    // Announcements are down: poll.
                    tokio::time::sleep((deadline - now).min(POLL_EVERY)).await;
                }
                continue;
            }
            if tokio::time::timeout_at(deadline, announced.changed())
                .await
                .is_err()
            {
                return Ok(Vec::new());
            }
        }
    }
}

#[async_trait]
impl TokenStream for RedisTokenStreams {
    async fn append(
        &self,
        tenant: TenantId,
        job: JobId,
        event: &StreamEvent,
    ) -> Result<(), QueueError> {
        let seq = check_seq(event)?;
        let json = encode_event(event)?;
        let key = keys::tokens(&self.prefix, tenant, job);
        let mut conn = self.conns.get().await?;
        let stored: RedisResult<i64> = scripts::APPEND
            .key(&key)
            .arg(seq)
            .arg(json)
            .arg(self.options.max_entries)
            .arg(self.options.default_ttl.as_millis().max(1) as u64)
            .invoke_async(&mut conn.inner)
            .await;
        match conn.check(stored)? {
            1 => Ok(()),
            -1 => Err(QueueError::Internal(format!(
                "token stream of job {job} is full ({} entries)",
                self.options.max_entries
            ))),
            _ => {
                tracing::debug!(%job, seq, "token stream append ignored (duplicate or after End)");
                Ok(())
            }
        }
    }

    async fn read(
        &self,
        tenant: TenantId,
        job: JobId,
        after: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<StreamEvent>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let key = keys::tokens(&self.prefix, tenant, job);
        if wait.is_zero() {
            return self.range(&key, after, max).await;
        }
        let hub = self.live.hub(&key);
        self.read_live(&hub, &key, after, max, wait).await
    }

    async fn expire(&self, tenant: TenantId, job: JobId, ttl: Duration) -> Result<(), QueueError> {
        let key = keys::tokens(&self.prefix, tenant, job);
        let ms = ttl.as_millis().min(u128::from(i64::MAX as u64)) as u64;
        let mut conn = self.conns.get().await?;
        let done: RedisResult<()> = ::redis::pipe()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ms)
            .ignore()
            .cmd("PUBLISH")
            .arg(&key)
            .arg(format!("x{ms}"))
            .ignore()
            .query_async(&mut conn.inner)
            .await;
        conn.check(done)
    }
}
