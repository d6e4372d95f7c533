//! The test context: a queue and token streams on one backend, a "peer" (a second
//! process on the same backing store: on Redis fresh connections and a fresh instance,
//! in memory the same instance), each Redis context under its own random key prefix,
//! deleted when the context drops (even after a failed assertion).

use std::sync::Arc;
use std::time::Duration;
use znovel_domain::ids::{JobId, TenantId};
use znovel_domain::model::JobStatus;
use znovel_domain::ports::{
    Delivery, JobMessage, JobQueue, StreamEvent, TokenStream, stream_reader,
};
use znovel_infra::queue::memory::{MemoryQueue, MemoryTokenStreams};
use znovel_infra::queue::redis::{RedisConnections, RedisOptions, RedisQueue, RedisTokenStreams};
use znovel_infra::queue::{DeadLetter, QueueOptions, TokenStreamOptions};

/// Environment variable naming the Redis the tests use.
pub const REDIS_URL_ENV: &str = "ZNOVEL_TEST_REDIS_URL";

/// The test Redis: `ZNOVEL_TEST_REDIS_URL` or the local default.
pub fn redis_url() -> String {
    std::env::var(REDIS_URL_ENV).unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The short visibility timeout of the reclaim tests.
pub const SHORT_VT: Duration = Duration::from_millis(200);
/// A visibility timeout no test outlasts (for tests that must not see reclaims).
pub const LONG_VT: Duration = Duration::from_secs(30);
/// No waiting.
pub const NOW: Duration = Duration::ZERO;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
}

/// One "process": its queue and token streams.
pub struct Peer {
    pub queue: Arc<dyn JobQueue>,
    pub streams: Arc<dyn TokenStream>,
}

pub struct Ctx {
    pub backend: Backend,
    pub queue: Arc<dyn JobQueue>,
    pub streams: Arc<dyn TokenStream>,
    pub options: QueueOptions,
    pub stream_options: TokenStreamOptions,
    inner: Inner,
}

enum Inner {
    Memory {
        queue: Arc<MemoryQueue>,
        streams: Arc<MemoryTokenStreams>,
    },
    Redis {
        prefix: String,
        queue: Arc<RedisQueue>,
        _cleanup: Cleanup,
    },
}

impl Ctx {
    /// A context with the short visibility timeout.
    pub async fn new(backend: Backend) -> Ctx {
        Self::with_vt(backend, SHORT_VT).await
    }

    pub async fn with_vt(backend: Backend, visibility_timeout: Duration) -> Ctx {
        let options = QueueOptions {
            visibility_timeout,
            ..QueueOptions::default()
        };
        Self::with(backend, options, TokenStreamOptions::default()).await
    }

    pub async fn with(
        backend: Backend,
        options: QueueOptions,
        stream_options: TokenStreamOptions,
    ) -> Ctx {
        match backend {
            Backend::Memory => {
                let queue = Arc::new(MemoryQueue::new(options.clone()));
                let streams = Arc::new(MemoryTokenStreams::new(stream_options.clone()));
                Ctx {
                    backend,
                    queue: queue.clone(),
                    streams: streams.clone(),
                    options,
                    stream_options,
                    inner: Inner::Memory { queue, streams },
                }
            }
            Backend::Redis => {
                let prefix = format!("znovel-test-{}", uuid::Uuid::new_v4().simple());
                let cleanup = Cleanup {
                    url: redis_url(),
                    prefix: prefix.clone(),
                };
                let (queue, streams) =
                    redis_pair(&redis_url(), &prefix, &options, &stream_options).await;
                Ctx {
                    backend,
                    queue: queue.clone(),
                    streams,
                    options,
                    stream_options,
                    inner: Inner::Redis {
                        prefix,
                        queue,
                        _cleanup: cleanup,
                    },
                }
            }
        }
    }

    /// Another process on the same queue and streams.
    pub async fn peer(&self) -> Peer {
        match &self.inner {
            Inner::Memory { queue, streams } => Peer {
                queue: queue.clone(),
                streams: streams.clone(),
            },
            Inner::Redis { prefix, .. } => {
                let (queue, streams) =
                    redis_pair(&redis_url(), prefix, &self.options, &self.stream_options).await;
                Peer { queue, streams }
            }
        }
    }

    /// The Redis key prefix (Redis contexts only).
    pub fn prefix(&self) -> &str {
        match &self.inner {
            Inner::Redis { prefix, .. } => prefix,
            Inner::Memory { .. } => panic!("no prefix in memory"),
        }
    }

    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        match &self.inner {
            Inner::Memory { queue, .. } => queue.dead_letters(100).await.unwrap(),
            Inner::Redis { queue, .. } => queue.dead_letters(100).await.unwrap(),
        }
    }
}

/// A queue and token streams on their own connections (a separate "process").
pub async fn redis_pair(
    url: &str,
    prefix: &str,
    options: &QueueOptions,
    stream_options: &TokenStreamOptions,
) -> (Arc<RedisQueue>, Arc<RedisTokenStreams>) {
    let conns = RedisConnections::connect(url, RedisOptions::default())
        .await
        .expect("Redis at ZNOVEL_TEST_REDIS_URL (default redis://127.0.0.1:6379)");
    let queue = RedisQueue::new(conns.clone(), prefix, options.clone())
        .await
        .unwrap();
    let streams = RedisTokenStreams::new(conns, prefix, stream_options.clone()).unwrap();
    (Arc::new(queue), Arc::new(streams))
}

/// Deletes every key under a prefix on drop.
pub struct Cleanup {
    pub url: String,
    pub prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let mut cursor = 0_u64;
        loop {
            let reply: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query(&mut conn);
            let Ok((next, keys)) = reply else { return };
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

pub fn message() -> JobMessage {
    JobMessage {
        tenant_id: TenantId::new(),
        job_id: JobId::new(),
    }
}

pub fn jobs_of(deliveries: &[Delivery]) -> Vec<JobId> {
    deliveries.iter().map(|d| d.message.job_id).collect()
}

pub fn chunk(seq: u64) -> StreamEvent {
    StreamEvent::Chunk {
        seq,
        text: format!("chunk {seq} · 第{seq}段"),
    }
}

pub fn end(seq: u64) -> StreamEvent {
    StreamEvent::End {
        seq,
        status: JobStatus::Succeeded,
        error: None,
    }
}

/// `n` chunks then an End.
pub fn chapter(n: u64) -> Vec<StreamEvent> {
    (1..=n).map(chunk).chain([end(n + 1)]).collect()
}

pub async fn append_all(
    streams: &dyn TokenStream,
    tenant: TenantId,
    job: JobId,
    events: &[StreamEvent],
) {
    for event in events {
        streams.append(tenant, job, event).await.unwrap();
    }
}

/// Follows a stream like a subscriber: reads after the last seen seq, `max` at a time,
/// until End; panics on a gap or duplicate.
pub async fn follow(
    streams: &dyn TokenStream,
    tenant: TenantId,
    job: JobId,
    max: usize,
    wait: Duration,
) -> Vec<StreamEvent> {
    let mut seen = Seen::new(max);
    loop {
        let after = seen.last();
        let got = streams.read(tenant, job, after, max, wait).await.unwrap();
        if got.is_empty() {
            panic!("no entry after {after} within {wait:?}");
        }
        if seen.take(got) {
            return seen.entries;
        }
    }
}

/// Follows a stream the way a live subscriber does, through one [`stream_reader`]: every
/// entry up to `End`, checking order. Panics when nothing arrives within `give_up`.
pub async fn follow_reader(
    streams: Arc<dyn TokenStream>,
    tenant: TenantId,
    job: JobId,
    max: usize,
    give_up: Duration,
) -> Vec<StreamEvent> {
    let mut reader = stream_reader(streams, tenant, job);
    let mut seen = Seen::new(max);
    loop {
        let after = seen.last();
        let got = tokio::time::timeout(
            give_up,
            std::future::poll_fn(|cx| reader.poll_read(cx, after, max)),
        )
        .await
        .unwrap_or_else(|_| panic!("no entry after {after} within {give_up:?}"))
        .unwrap();
        assert!(!got.is_empty(), "a reader answered nothing");
        if seen.take(got) {
            return seen.entries;
        }
    }
}

/// What a follower has seen, checked page by page.
struct Seen {
    entries: Vec<StreamEvent>,
    /// The most entries a page may hold.
    max: usize,
}

impl Seen {
    fn new(max: usize) -> Self {
        Self {
            entries: Vec::new(),
            max,
        }
    }

    /// The last seq seen (0 before the first).
    fn last(&self) -> u64 {
        self.entries.last().map_or(0, StreamEvent::seq)
    }

    /// Takes a page read after [`Self::last`]; true once `End` was among it. Panics on a
    /// page over `max`, a gap or a duplicate.
    fn take(&mut self, page: Vec<StreamEvent>) -> bool {
        assert!(page.len() <= self.max, "read returned more than max");
        let after = self.last();
        for event in page {
            let expected = self.last() + 1;
            assert_eq!(event.seq(), expected, "gap or duplicate after {after}");
            let done = matches!(event, StreamEvent::End { .. });
            self.entries.push(event);
            if done {
                return true;
            }
        }
        false
    }
}
