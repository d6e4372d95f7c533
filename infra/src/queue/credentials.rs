//! Live credential changes ([`CredentialEvents`]) in two adapters:
//! [`MemoryCredentialEvents`] (one process) and [`RedisCredentialEvents`] (Redis pub/sub
//! on `{prefix}:credentials`, so a key revoked through one replica is dropped by every
//! replica's open connections). Each process fans out through a bounded broadcast; a
//! subscriber that falls behind skips what it missed (its periodic re-check catches up).

use crate::queue::events::{listen, subscribe};
use crate::queue::keys;
use crate::queue::redis::RedisConnections;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;
use znovel_domain::ports::{CredentialChange, CredentialEvents, QueueError};

/// Changes buffered per process for slow subscribers.
const BUFFER: usize = 1024;

/// Every change from a process-wide broadcast.
fn all(rx: broadcast::Receiver<CredentialChange>) -> BoxStream<'static, CredentialChange> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(c) => return Some((c, rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "credential changes: subscriber lagged");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

/// In-process credential changes, for the embedded default.
#[derive(Debug, Clone)]
pub struct MemoryCredentialEvents {
    tx: broadcast::Sender<CredentialChange>,
}

impl Default for MemoryCredentialEvents {
    fn default() -> Self {
        Self {
            tx: broadcast::Sender::new(BUFFER),
        }
    }
}

#[async_trait::async_trait]
impl CredentialEvents for MemoryCredentialEvents {
    async fn publish(&self, change: &CredentialChange) -> Result<(), QueueError> {
        // No subscriber is not an error.
        let _ = self.tx.send(change.clone());
        Ok(())
    }

    fn subscribe(&self) -> BoxStream<'static, CredentialChange> {
        all(self.tx.subscribe())
    }
}

/// Credential changes over Redis pub/sub: `PUBLISH {prefix}:credentials <json>`; one
/// subscribed connection per process (reconnected with backoff) feeds the local
/// subscribers.
pub struct RedisCredentialEvents {
    conns: RedisConnections,
    channel: String,
    tx: broadcast::Sender<CredentialChange>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RedisCredentialEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCredentialEvents")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisCredentialEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RedisCredentialEvents {
    /// Subscribes (waiting for the confirmation, so a change published after this
    /// returns is heard) and starts the task that keeps it subscribed.
    pub async fn new(conns: RedisConnections, prefix: &str) -> anyhow::Result<Self> {
        keys::check_prefix(prefix)?;
        let channel = keys::credentials(prefix);
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

#[async_trait::async_trait]
impl CredentialEvents for RedisCredentialEvents {
    async fn publish(&self, change: &CredentialChange) -> Result<(), QueueError> {
        let payload =
            serde_json::to_vec(change).map_err(|e| QueueError::Internal(e.to_string()))?;
        let mut conn = self.conns.get().await?;
        let reply: ::redis::RedisResult<i64> = ::redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async(&mut conn.inner)
            .await;
        conn.check(reply).map(|_| ())
    }

    fn subscribe(&self) -> BoxStream<'static, CredentialChange> {
        all(self.tx.subscribe())
    }
}
