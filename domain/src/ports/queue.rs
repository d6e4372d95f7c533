//! The job queue and the per-job token streams: in-process for the embedded default,
//! Redis Streams when scaled out. Both adapters pass one contract suite.

use crate::ids::{JobId, NovelId, TenantId};
use crate::model::JobStatus;
use async_trait::async_trait;
use futures_core::future::BoxFuture;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Errors of the queue and token-stream ports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The backing service is unreachable.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// Anything else (a bug, corrupt data).
    #[error("queue error: {0}")]
    Internal(String),
}

/// A queued job, as carried by the queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobMessage {
    /// The job's tenant.
    pub tenant_id: TenantId,
    /// The job.
    pub job_id: JobId,
}

/// A message handed to a consumer, to be acknowledged when done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message.
    pub message: JobMessage,
    /// Adapter-specific receipt (the Redis stream entry id, ...).
    pub receipt: String,
    /// How many times this message has been delivered, this time included (1 = first).
    pub delivery_count: u32,
}

/// Queue gauges for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages not yet delivered to any consumer.
    pub waiting: u64,
    /// Delivered, not yet acknowledged.
    pub in_flight: u64,
    /// In the dead-letter queue.
    pub dead: u64,
}

/// An at-least-once job queue with consumer groups.
///
/// Contract: a message is delivered to one consumer at a time; it stays in flight until
/// `ack`ed; a message in flight longer than the adapter's visibility timeout (its consumer
/// crashed or hangs) is delivered again — to any consumer — by a later `claim`, with
/// `delivery_count` + 1; `release` makes an in-flight message deliverable again at once
/// (graceful shutdown); `dead_letter` removes it from the queue into the dead-letter
/// queue. Keys and streams of the Redis adapter are prefixed by the deployment prefix and
/// never hold data of one tenant under another's name.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Adds a message.
    async fn enqueue(&self, message: &JobMessage) -> Result<(), QueueError>;
    /// Up to `max` deliveries for `consumer` (reclaimed stale ones first, then new ones),
    /// waiting up to `wait` when there are none. May return fewer, or none.
    async fn claim(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError>;
    /// Marks a delivery done; it is never delivered again.
    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError>;
    /// Resets a delivery's visibility timer (a long job is still alive).
    async fn extend(&self, delivery: &Delivery) -> Result<(), QueueError>;
    /// Hands a delivery back for immediate redelivery.
    async fn release(&self, delivery: &Delivery) -> Result<(), QueueError>;
    /// Moves a delivery to the dead-letter queue with a reason.
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), QueueError>;
    /// Current gauges.
    async fn stats(&self) -> Result<QueueStats, QueueError>;
}

/// One entry of a job's token stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum StreamEvent {
    /// The next piece of the chapter. `seq` starts at 1 and increases by 1 (over chunks
    /// and issues together).
    Chunk {
        /// Position.
        seq: u64,
        /// Text.
        text: String,
    },
    /// A continuity issue found in the text streamed so far, right after the sentence
    /// that caused it; it takes the next `seq` like a chunk.
    Issue {
        /// Position.
        seq: u64,
        /// The issue (its span: code points of the chapter's content).
        issue: Box<crate::model::ValidationIssue>,
    },
    /// The job ended; no entry follows. `seq` is one past the last chunk.
    End {
        /// Position.
        seq: u64,
        /// How it ended.
        status: JobStatus,
        /// Why, when it did not succeed.
        error: Option<String>,
    },
}

impl StreamEvent {
    /// The entry's position.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Chunk { seq, .. } | Self::Issue { seq, .. } | Self::End { seq, .. } => *seq,
        }
    }
}

/// Per-job streams of generated text that any number of readers follow live and resume
/// from any position.
///
/// Contract: `append` stores an entry at once (readers blocked in `read` wake within
/// milliseconds); entries are kept in `seq` order; `read` returns the entries with
/// `seq > after`, in order, at most `max`, waiting up to `wait` for the first one when
/// there is none yet (an empty result means nothing arrived in time); a stream that does
/// not exist reads as empty; `expire` deletes the stream `ttl` from now. Streams are
/// keyed by tenant and job: reading another tenant's job id finds nothing.
#[async_trait]
pub trait TokenStream: Send + Sync + 'static {
    /// Appends an entry.
    async fn append(
        &self,
        tenant: TenantId,
        job: JobId,
        event: &StreamEvent,
    ) -> Result<(), QueueError>;
    /// Reads entries after `after` (see the contract).
    async fn read(
        &self,
        tenant: TenantId,
        job: JobId,
        after: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<StreamEvent>, QueueError>;
    /// Deletes the stream `ttl` from now.
    async fn expire(&self, tenant: TenantId, job: JobId, ttl: Duration) -> Result<(), QueueError>;
    /// A reader of one stream that keeps its wait registered between reads, when the
    /// adapter has a cheaper way to follow a stream than one `read` per wait. `None` (the
    /// default): [`stream_reader`] follows it with `read`.
    fn reader(&self, tenant: TenantId, job: JobId) -> Option<Box<dyn StreamReader>> {
        let _ = (tenant, job);
        None
    }
}

/// Follows one token stream: what a live subscriber holds for as long as it follows a job.
///
/// Contract: `poll_read` is ready with the entries with `seq > after`, in order, at most
/// `max` and at least one; when there is none it is pending and the task is woken once an
/// append may have brought one (it may be woken for nothing, and it may answer an error).
/// It never gives up on its own: how long to wait is the caller's business.
pub trait StreamReader: Send {
    /// The entries after `after` (see the contract).
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        after: u64,
        max: usize,
    ) -> Poll<Result<Vec<StreamEvent>, QueueError>>;
}

/// How long one `read` of the [`stream_reader`] fallback waits before it reads again.
const FALLBACK_WAIT: Duration = Duration::from_secs(5);

/// A reader of one stream: the adapter's own ([`TokenStream::reader`]) or one that
/// repeats `read`, waiting up to 5 s each time.
pub fn stream_reader(
    streams: Arc<dyn TokenStream>,
    tenant: TenantId,
    job: JobId,
) -> Box<dyn StreamReader> {
    streams.reader(tenant, job).unwrap_or_else(|| {
        Box::new(ReadLoop {
            streams,
            tenant,
            job,
            pending: None,
        })
    })
}

type PendingRead = (
    u64,
    usize,
    BoxFuture<'static, Result<Vec<StreamEvent>, QueueError>>,
);

/// [`stream_reader`]'s fallback: one `read` at a time, started again when it answers
/// nothing (or when the caller asks from another position).
struct ReadLoop {
    streams: Arc<dyn TokenStream>,
    tenant: TenantId,
    job: JobId,
    pending: Option<PendingRead>,
}

impl StreamReader for ReadLoop {
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        after: u64,
        max: usize,
    ) -> Poll<Result<Vec<StreamEvent>, QueueError>> {
        loop {
            let (streams, tenant, job) = (&self.streams, self.tenant, self.job);
            let read = match &mut self.pending {
                Some((a, m, read)) if (*a, *m) == (after, max) => read,
                pending => {
                    let streams = streams.clone();
                    let read =
                        async move { streams.read(tenant, job, after, max, FALLBACK_WAIT).await };
                    &mut pending.insert((after, max, Box::pin(read))).2
                }
            };
            let answer = std::task::ready!(read.as_mut().poll(cx));
            self.pending = None;
            match answer {
                Ok(events) if events.is_empty() && max > 0 => continue,
                answer => return Poll::Ready(answer),
            }
        }
    }
}

/// A job changed status: announced live to the `jobEvents` subscribers of its novel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobEvent {
    /// The job's tenant.
    pub tenant_id: TenantId,
    /// The job's novel.
    pub novel_id: NovelId,
    /// The job.
    pub job_id: JobId,
    /// Its new status.
    pub status: JobStatus,
}

/// Live announcements of job status changes, across every process of a deployment.
///
/// Contract: an event published by any process reaches every subscriber of its tenant and
/// novel that is subscribed at that moment, in the order one publisher published them;
/// subscribers never see another tenant's or novel's events. Delivery is live, not
/// durable: a subscriber that connects later (or falls far behind) does not get old
/// events — the job rows are the record.
#[async_trait]
pub trait JobEvents: Send + Sync + 'static {
    /// Announces an event.
    async fn publish(&self, event: &JobEvent) -> Result<(), QueueError>;
    /// The events of one novel from now on. The stream ends only when the adapter shuts
    /// down.
    fn subscribe(
        &self,
        tenant: TenantId,
        novel: NovelId,
    ) -> futures_core::stream::BoxStream<'static, JobEvent>;
}
