//! What only the in-process adapters have: bounded memory.

use crate::support::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use znovel_domain::ids::{JobId, TenantId};
use znovel_domain::ports::TokenStream;
use znovel_infra::queue::TokenStreamOptions;
use znovel_infra::queue::memory::MemoryTokenStreams;

/// Expired streams and streams someone waited on but nobody wrote are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_swept() {
    let s = MemoryTokenStreams::new(TokenStreamOptions::default());
    let tenant = TenantId::new();
    for _ in 0..3 {
        let job = JobId::new();
        s.append(tenant, job, &chunk(1)).await.unwrap();
        s.expire(tenant, job, Duration::from_millis(10))
            .await
            .unwrap();
    }
    let waited = s
        .read(tenant, JobId::new(), 0, 10, Duration::from_millis(50))
        .await;
    assert!(waited.unwrap().is_empty());
    assert_eq!(s.len(), 4);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let kept = JobId::new();
    s.append(tenant, kept, &chunk(1)).await.unwrap();
    assert_eq!(s.len(), 1, "swept on the next call");
}

/// A stream never expired still goes after the default TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_ttl_applies() {
    let s = MemoryTokenStreams::new(TokenStreamOptions {
        default_ttl: Duration::from_millis(100),
        ..TokenStreamOptions::default()
    });
    let (tenant, job) = (TenantId::new(), JobId::new());
    s.append(tenant, job, &chunk(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.read(tenant, job, 0, 10, NOW).await.unwrap().is_empty());
}

/// Counts its wake-ups.
#[derive(Default)]
struct Wakes(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A follower waiting on a stream is woken once per append, whatever the number of times
/// it looked; one that left lets go of its task (a connection that closed must not be
/// kept alive by the job it followed), and the stream it made to wait on is swept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_is_woken_once_and_lets_go_when_it_leaves() {
    let s = MemoryTokenStreams::new(TokenStreamOptions::default());
    let (tenant, job) = (TenantId::new(), JobId::new());
    let wakes = Arc::new(Wakes::default());
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let mut reader = s
        .reader(tenant, job)
        .expect("the in-process streams have a reader");
    for _ in 0..3 {
        assert!(reader.poll_read(&mut cx, 0, 10).is_pending());
    }
    assert_eq!(Arc::strong_count(&wakes), 3, "one waker kept, not three");
    s.append(tenant, job, &chunk(1)).await.unwrap();
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    assert!(matches!(reader.poll_read(&mut cx, 0, 10), Poll::Ready(Ok(e)) if e == [chunk(1)]));
    assert!(reader.poll_read(&mut cx, 1, 10).is_pending());
    assert_eq!(Arc::strong_count(&wakes), 3);
    drop(reader);
    assert_eq!(
        Arc::strong_count(&wakes),
        2,
        "the waker went with the follower"
    );
    s.append(tenant, job, &chunk(2)).await.unwrap();
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        1,
        "nobody woken after leaving"
    );

    // A follower of a job nobody writes leaves: its empty stream goes at the next sweep.
    let idle = JobId::new();
    let mut reader = s.reader(tenant, idle).expect("a reader");
    assert!(reader.poll_read(&mut cx, 0, 10).is_pending());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.expire(tenant, JobId::new(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(s.len(), 2, "kept while followed");
    drop(reader);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.expire(tenant, JobId::new(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(s.len(), 1, "swept once its follower left");
}
