//! The job events contract, on both adapters: an event published by one "process"
//! reaches the subscribers of its tenant and novel in every process, in order, and
//! nobody else's; a later subscriber does not get earlier events. On Redis each test
//! uses its own channel prefix, and the "processes" are separate instances with their
//! own connections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use std::sync::Arc;
use std::time::Duration;
use znovel_domain::ids::{JobId, NovelId, TenantId};
use znovel_domain::model::JobStatus;
use znovel_domain::ports::{JobEvent, JobEvents};
use znovel_infra::queue::events::{MemoryJobEvents, RedisJobEvents};
use znovel_infra::queue::redis::{RedisConnections, RedisOptions};

fn redis_url() -> String {
    std::env::var("ZNOVEL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Two "processes" on one backend.
async fn pair(redis: bool) -> (Arc<dyn JobEvents>, Arc<dyn JobEvents>) {
    if !redis {
        let one = Arc::new(MemoryJobEvents::new());
        return (one.clone(), one);
    }
    let prefix = format!("znovel-test-{}", uuid::Uuid::new_v4().simple());
    let mut out = Vec::new();
    for _ in 0..2 {
        let conns = RedisConnections::connect(&redis_url(), RedisOptions::default())
            .await
            .unwrap();
        out.push(Arc::new(RedisJobEvents::new(conns, &prefix).await.unwrap()) as Arc<dyn JobEvents>);
    }
    let b = out.pop().unwrap();
    (out.pop().unwrap(), b)
}

fn event(tenant: TenantId, novel: NovelId, job: JobId, status: JobStatus) -> JobEvent {
    JobEvent {
        tenant_id: tenant,
        novel_id: novel,
        job_id: job,
        status,
    }
}

async fn take(stream: &mut BoxStream<'static, JobEvent>, n: usize) -> Vec<JobEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        let e = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("event arrives")
            .expect("stream open");
        out.push(e);
    }
    out
}

async fn nothing_more(stream: &mut BoxStream<'static, JobEvent>) {
    let extra = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(extra.is_err(), "unexpected event: {extra:?}");
}

async fn reach_the_right_subscribers_in_order(redis: bool) {
    let (a, b) = pair(redis).await;
    let (tenant, novel) = (TenantId::new(), NovelId::new());
    let mut on_b = b.subscribe(tenant, novel);
    let mut on_a = a.subscribe(tenant, novel);
    let mut other_novel = b.subscribe(tenant, NovelId::new());
    let mut other_tenant = b.subscribe(TenantId::new(), novel);
    let job = JobId::new();
    let lifecycle = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Running,
        JobStatus::Succeeded,
    ];
    for s in lifecycle {
        a.publish(&event(tenant, novel, job, s)).await.unwrap();
        // Noise for others.
        a.publish(&event(TenantId::new(), novel, JobId::new(), s))
            .await
            .unwrap();
    }
    let want: Vec<JobEvent> = lifecycle
        .iter()
        .map(|s| event(tenant, novel, job, *s))
        .collect();
    assert_eq!(
        take(&mut on_b, 4).await,
        want,
        "the other process hears all, in order"
    );
    assert_eq!(take(&mut on_a, 4).await, want, "the publishing process too");
    nothing_more(&mut on_b).await;
    nothing_more(&mut other_novel).await;
    nothing_more(&mut other_tenant).await;

    // A subscriber that arrives later gets only what happens after.
    let mut late = b.subscribe(tenant, novel);
    let next = JobId::new();
    a.publish(&event(tenant, novel, next, JobStatus::Queued))
        .await
        .unwrap();
    assert_eq!(take(&mut late, 1).await[0].job_id, next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_events_reach_the_right_subscribers_in_order() {
    reach_the_right_subscribers_in_order(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_events_reach_the_right_subscribers_in_order() {
    reach_the_right_subscribers_in_order(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_events_need_redis() {
    let conns = RedisConnections::connect(&redis_url(), RedisOptions::default())
        .await
        .unwrap();
    let err = RedisJobEvents::new(conns, "bad prefix").await.unwrap_err();
    assert!(err.to_string().contains("prefix"), "{err}");
    let down = RedisConnections::connect("redis://127.0.0.1:1", RedisOptions::default()).await;
    assert!(down.is_err(), "an unreachable Redis fails at start-up");
}
