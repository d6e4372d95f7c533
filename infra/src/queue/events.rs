//! Live job events ([`JobEvents`]) in two adapters: [`MemoryJobEvents`] (one process) and
//! [`RedisJobEvents`] (Redis pub/sub on one channel per deployment prefix, so every
//! process hears every other's events). Each process fans out to its own subscribers
//! through a bounded broadcast channel; a subscriber that falls more than
//! [`BUFFER`] events behind skips the ones it missed (live, not durable — see the port).

use crate::queue::keys;
use crate::queue::redis::RedisConnections;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use std::time::Duration;
use tokio::sync::broadcast;
use znovel_domain::ids::{NovelId, TenantId};
use znovel_domain::ports::{JobEvent, JobEvents, QueueError};

/// Events buffered per process for slow subscribers.
pub const BUFFER: usize = 4096;

/// The events of one tenant's novel, from a process-wide broadcast.
fn filtered(
    rx: broadcast::Receiver<JobEvent>,
    tenant: TenantId,
    novel: NovelId,
) -> BoxStream<'static, JobEvent> {
    futures_util::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.tenant_id == tenant && e.novel_id == novel => return Some((e, rx)),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

/// In-process job events, for the embedded default.
#[derive(Debug, Clone)]
pub struct MemoryJobEvents {
    tx: broadcast::Sender<JobEvent>,
}

impl Default for MemoryJobEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryJobEvents {
    /// A new, empty hub.
    pub fn new() -> Self {
        Self {
            tx: broadcast::Sender::new(BUFFER),
        }
    }
}

#[async_trait::async_trait]
impl JobEvents for MemoryJobEvents {
    async fn publish(&self, event: &JobEvent) -> Result<(), QueueError> {
        // No subscriber is not an error.
        let _ = self.tx.send(event.clone());
        Ok(())
    }

    fn subscribe(&self, tenant: TenantId, novel: NovelId) -> BoxStream<'static, JobEvent> {
        filtered(self.tx.subscribe(), tenant, novel)
    }
}

/// Job events over Redis pub/sub: `PUBLISH {prefix}:jobevents <json>`; one subscribed
/// connection per process (reconnected with backoff) feeds the local subscribers.
pub struct RedisJobEvents {
    conns: RedisConnections,
    channel: String,
    tx: broadcast::Sender<JobEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RedisJobEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisJobEvents")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisJobEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Bound on connecting and subscribing.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisJobEvents {
    /// Subscribes (waiting for the subscription to be confirmed, so an event published
    /// after this returns is heard) and starts the task that keeps it subscribed.
    pub async fn new(conns: RedisConnections, prefix: &str) -> anyhow::Result<Self> {
        keys::check_prefix(prefix)?;
        let channel = keys::job_events(prefix);
        let first = subscribe(conns.client(), &channel).await?;
        let tx = broadcast::Sender::new(BUFFER);
        let task = tokio::spawn(listen(
            conns.client().clone(),
            channel.clone(),
            tx.clone(),
            first,
        ));
        Ok(Self {
            conns,
            channel,
            tx,
            task,
        })
    }
}

/// A pub/sub connection subscribed to `channel` (confirmed).
pub(crate) async fn subscribe(
    client: &::redis::Client,
    channel: &str,
) -> anyhow::Result<::redis::aio::PubSub> {
    let mut pubsub = tokio::time::timeout(IO_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| anyhow::anyhow!("timed out connecting to Redis for {channel}"))??;
    tokio::time::timeout(IO_TIMEOUT, pubsub.subscribe(channel))
        .await
        .map_err(|_| anyhow::anyhow!("timed out subscribing to {channel}"))??;
    Ok(pubsub)
}

/// Relays the JSON messages of `channel` to `tx` for ever, resubscribing with backoff
/// when the connection is lost.
pub(crate) async fn listen<T: serde::de::DeserializeOwned>(
    client: ::redis::Client,
    channel: String,
    tx: broadcast::Sender<T>,
    first: ::redis::aio::PubSub,
) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(50);
    loop {
        let current = match pubsub.take() {
            Some(p) => p,
            None => match subscribe(&client, &channel).await {
                Ok(p) => {
                    backoff = Duration::from_millis(50);
                    p
                }
                Err(e) => {
                    tracing::warn!(error = %e, %channel, "pub/sub: cannot subscribe, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
        };
        let mut messages = current.into_on_message();
        while let Some(msg) = messages.next().await {
            match serde_json::from_slice::<T>(msg.get_payload_bytes()) {
                Ok(event) => {
                    let _ = tx.send(event);
                }
                Err(e) => tracing::warn!(error = %e, %channel, "pub/sub: undecodable message"),
            }
        }
        tracing::warn!(%channel, "pub/sub: connection lost, reconnecting");
    }
}

#[async_trait::async_trait]
impl JobEvents for RedisJobEvents {
    async fn publish(&self, event: &JobEvent) -> Result<(), QueueError> {
        let payload = serde_json::to_vec(event).map_err(|e| QueueError::Internal(e.to_string()))?;
        let mut conn = self.conns.get().await?;
        let reply: ::redis::RedisResult<i64> = ::redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async(&mut conn.inner)
            .await;
        conn.check(reply).map(|_| ())
    }

    fn subscribe(&self, tenant: TenantId, novel: NovelId) -> BoxStream<'static, JobEvent> {
        filtered(self.tx.subscribe(), tenant, novel)
    }
}
