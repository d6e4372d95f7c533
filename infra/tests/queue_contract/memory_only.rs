//! What only the in-process adapters have: bounded memory.

use crate::support::*;
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
