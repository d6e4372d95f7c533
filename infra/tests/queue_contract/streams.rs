//! The token stream contract.

use crate::support::*;
use std::time::{Duration, Instant};
use znovel_domain::ids::{JobId, TenantId};
use znovel_domain::ports::{QueueError, StreamEvent, stream_reader};
use znovel_infra::queue::TokenStreamOptions;

pub async fn read_from_any_point(ctx: &Ctx) {
    let (tenant, job) = (TenantId::new(), JobId::new());
    let all = chapter(30);
    append_all(&*ctx.streams, tenant, job, &all).await;
    let s = &ctx.streams;
    assert_eq!(s.read(tenant, job, 0, 1000, NOW).await.unwrap(), all);
    for k in [0_u64, 1, 2, 15, 29, 30] {
        let expected = all[k as usize..].to_vec();
        assert_eq!(
            s.read(tenant, job, k, 1000, NOW).await.unwrap(),
            expected,
            "after {k}"
        );
        // The waiting path (the Redis adapter's live cache) answers the same.
        let waited = s
            .read(tenant, job, k, 1000, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(waited, expected, "after {k}, waiting");
        let page = s
            .read(tenant, job, k, 4, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(
            page,
            all[k as usize..(k as usize + 4).min(all.len())].to_vec()
        );
    }
    for k in [31_u64, 40, u64::MAX] {
        assert!(s.read(tenant, job, k, 1000, NOW).await.unwrap().is_empty());
        let waited = s
            .read(tenant, job, k, 1000, Duration::from_millis(50))
            .await
            .unwrap();
        assert!(waited.is_empty(), "after {k}");
    }
    assert!(
        s.read(tenant, job, 0, 0, Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty()
    );
    // Paging through it like a subscriber, several page sizes.
    for max in [1, 3, 7, 100] {
        assert_eq!(follow(&**s, tenant, job, max, NOW).await, all);
        assert_eq!(
            follow(&**s, tenant, job, max, Duration::from_secs(1)).await,
            all
        );
    }
}

pub async fn missing_stream_reads_empty(ctx: &Ctx) {
    let (tenant, job) = (TenantId::new(), JobId::new());
    assert!(
        ctx.streams
            .read(tenant, job, 0, 10, NOW)
            .await
            .unwrap()
            .is_empty()
    );
    let started = Instant::now();
    let got = ctx
        .streams
        .read(tenant, job, 0, 10, Duration::from_millis(200))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(got.is_empty());
    assert!(
        waited >= Duration::from_millis(190),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "returned after {waited:?}");
}

pub async fn blocked_reader_wakes(ctx: &Ctx) {
    let peer = ctx.peer().await;
    let (tenant, job) = (TenantId::new(), JobId::new());
    let mut latencies = Vec::new();
    for seq in 1..=5_u64 {
        let reader = peer.streams.clone();
        let waiting = tokio::spawn(async move {
            let got = reader
                .read(tenant, job, seq - 1, 10, Duration::from_secs(10))
                .await;
            (got, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let appended_at = Instant::now();
        ctx.streams.append(tenant, job, &chunk(seq)).await.unwrap();
        let (got, woke_at) = waiting.await.unwrap();
        assert_eq!(got.unwrap(), vec![chunk(seq)]);
        latencies.push(woke_at.duration_since(appended_at));
    }
    eprintln!("{:?} wake-up latencies: {latencies:?}", ctx.backend);
    for latency in latencies {
        assert!(
            latency < Duration::from_millis(250),
            "woke {latency:?} after the append"
        );
    }
}

pub async fn end_ends_stream(ctx: &Ctx) {
    let (tenant, job) = (TenantId::new(), JobId::new());
    let failed = StreamEvent::End {
        seq: 3,
        status: znovel_domain::model::JobStatus::Failed,
        error: Some("provider down".into()),
    };
    append_all(
        &*ctx.streams,
        tenant,
        job,
        &[chunk(1), chunk(2), failed.clone()],
    )
    .await;
    // Nothing follows an End: a later append is ignored.
    ctx.streams.append(tenant, job, &chunk(4)).await.unwrap();
    ctx.streams.append(tenant, job, &end(5)).await.unwrap();
    let got = ctx.streams.read(tenant, job, 0, 100, NOW).await.unwrap();
    assert_eq!(got, vec![chunk(1), chunk(2), failed]);
    let after_end = ctx
        .streams
        .read(tenant, job, 3, 100, Duration::from_millis(100))
        .await;
    assert!(after_end.unwrap().is_empty());
}

pub async fn duplicate_append_ignored(ctx: &Ctx) {
    let (tenant, job) = (TenantId::new(), JobId::new());
    let s = &ctx.streams;
    append_all(&**s, tenant, job, &[chunk(1), chunk(2)]).await;
    let retried = StreamEvent::Chunk {
        seq: 2,
        text: "different".into(),
    };
    s.append(tenant, job, &retried).await.unwrap();
    s.append(tenant, job, &chunk(1)).await.unwrap();
    s.append(tenant, job, &chunk(3)).await.unwrap();
    let got = s.read(tenant, job, 0, 100, NOW).await.unwrap();
    assert_eq!(got, vec![chunk(1), chunk(2), chunk(3)]);
}

pub async fn seq_zero_rejected(ctx: &Ctx) {
    let (tenant, job) = (TenantId::new(), JobId::new());
    let result = ctx.streams.append(tenant, job, &chunk(0)).await;
    assert!(matches!(result, Err(QueueError::Internal(_))), "{result:?}");
    assert!(
        ctx.streams
            .read(tenant, job, 0, 10, NOW)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn tenant_isolation(ctx: &Ctx) {
    let (mine, theirs, job) = (TenantId::new(), TenantId::new(), JobId::new());
    append_all(&*ctx.streams, mine, job, &chapter(3)).await;
    let s = &ctx.streams;
    assert!(s.read(theirs, job, 0, 10, NOW).await.unwrap().is_empty());
    let waited = s.read(theirs, job, 0, 10, Duration::from_millis(100)).await;
    assert!(waited.unwrap().is_empty());
    s.expire(theirs, job, Duration::ZERO).await.unwrap();
    assert_eq!(s.read(mine, job, 0, 10, NOW).await.unwrap(), chapter(3));
    // Their stream of the same job id is their own.
    s.append(theirs, job, &chunk(1)).await.unwrap();
    assert_eq!(
        s.read(theirs, job, 0, 10, NOW).await.unwrap(),
        vec![chunk(1)]
    );
    assert_eq!(s.read(mine, job, 0, 10, NOW).await.unwrap(), chapter(3));
}

pub async fn expire_removes_stream(ctx: &Ctx) {
    let peer = ctx.peer().await;
    let (tenant, job) = (TenantId::new(), JobId::new());
    let s = &ctx.streams;
    append_all(&**s, tenant, job, &chapter(3)).await;
    // Readers in both processes (so caches exist) before the expiry.
    for streams in [&ctx.streams, &peer.streams] {
        let got = streams
            .read(tenant, job, 0, 10, Duration::from_millis(50))
            .await;
        assert_eq!(got.unwrap(), chapter(3));
    }
    s.expire(tenant, job, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        s.read(tenant, job, 0, 10, NOW).await.unwrap(),
        chapter(3),
        "not yet"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    for streams in [&ctx.streams, &peer.streams] {
        assert!(
            streams
                .read(tenant, job, 0, 10, NOW)
                .await
                .unwrap()
                .is_empty()
        );
        let waited = streams
            .read(tenant, job, 0, 10, Duration::from_millis(50))
            .await;
        assert!(waited.unwrap().is_empty(), "expired stream still read");
    }
    // A zero TTL deletes at once.
    let other = JobId::new();
    append_all(&**s, tenant, other, &chapter(1)).await;
    s.expire(tenant, other, Duration::ZERO).await.unwrap();
    assert!(s.read(tenant, other, 0, 10, NOW).await.unwrap().is_empty());
    // Expiring a stream that does not exist is fine.
    s.expire(tenant, JobId::new(), Duration::from_secs(1))
        .await
        .unwrap();
}

pub async fn peers_share_streams(ctx: &Ctx) {
    let peer = ctx.peer().await;
    let (tenant, job) = (TenantId::new(), JobId::new());
    let all = chapter(20);
    let reader = peer.streams.clone();
    let following =
        tokio::spawn(
            async move { follow(&*reader, tenant, job, 5, Duration::from_secs(10)).await },
        );
    for event in &all {
        ctx.streams.append(tenant, job, event).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(following.await.unwrap(), all);
    assert_eq!(
        peer.streams.read(tenant, job, 10, 100, NOW).await.unwrap(),
        all[10..]
    );
    // The whole stream at once, from a process that has not read it yet (what a worker
    // resuming a job elsewhere does).
    let cold = ctx.peer().await;
    assert_eq!(
        cold.streams
            .read(tenant, job, 0, usize::MAX, NOW)
            .await
            .unwrap(),
        all
    );
}

/// Many readers over several jobs in two processes, following live writers with
/// different page sizes: each sees every entry once, in order.
pub async fn many_live_readers(ctx: &Ctx) {
    let peer = ctx.peer().await;
    let tenant = TenantId::new();
    let jobs: Vec<JobId> = (0..8).map(|_| JobId::new()).collect();
    let all = chapter(40);
    let mut readers = Vec::new();
    for (n, job) in jobs
        .iter()
        .copied()
        .enumerate()
        .flat_map(|(j, job)| (0..24).map(move |r| (j * 24 + r, job)))
    {
        let streams = if n % 2 == 0 {
            ctx.streams.clone()
        } else {
            peer.streams.clone()
        };
        let max = [1, 3, 7, 100][n % 4];
        // Some follow through a reader, the way live subscribers do.
        let through_reader = n % 3 == 0;
        readers.push(tokio::spawn(async move {
            if through_reader {
                follow_reader(streams, tenant, job, max, Duration::from_secs(10)).await
            } else {
                follow(&*streams, tenant, job, max, Duration::from_secs(10)).await
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut writers = Vec::new();
    for job in jobs.iter().copied() {
        let streams = ctx.streams.clone();
        let all = all.clone();
        writers.push(tokio::spawn(async move {
            for (i, event) in all.iter().enumerate() {
                streams.append(tenant, job, event).await.unwrap();
                if i % 3 == 0 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    for r in readers {
        assert_eq!(r.await.unwrap(), all);
    }
}

/// A reader made before its stream exists follows it once written, and keeps following
/// the stream written again under the same job after it was deleted.
pub async fn reader_outlives_its_stream(ctx: &Ctx) {
    let peer = ctx.peer().await;
    let (tenant, job) = (TenantId::new(), JobId::new());
    let all = chapter(12);
    let mut reader = stream_reader(peer.streams.clone(), tenant, job);
    let mut read = async |after: u64| {
        tokio::time::timeout(
            Duration::from_secs(10),
            std::future::poll_fn(|cx| reader.poll_read(cx, after, 100)),
        )
        .await
        .expect("the reader woke")
        .unwrap()
    };
    let writer = {
        let (streams, all) = (ctx.streams.clone(), all.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            append_all(&*streams, tenant, job, &all[..6]).await;
        })
    };
    let mut seen = read(0).await;
    while seen.len() < 6 {
        seen.extend(read(seen.len() as u64).await);
    }
    writer.await.unwrap();
    assert_eq!(seen, all[..6]);
    // Deleted, then written again from the start while the reader waits past its end.
    ctx.streams
        .expire(tenant, job, Duration::ZERO)
        .await
        .unwrap();
    let writer = {
        let streams = ctx.streams.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            append_all(&*streams, tenant, job, &chapter(8)).await;
        })
    };
    let again = read(6).await;
    writer.await.unwrap();
    assert_eq!(
        again.first(),
        Some(&chapter(8)[6]),
        "woke for the new stream"
    );
    assert_eq!(read(0).await, chapter(8), "the new stream from its start");
}

pub async fn cap_limits_stream(ctx: &Ctx) {
    let ctx = Ctx::with(
        ctx.backend,
        ctx.options.clone(),
        TokenStreamOptions {
            max_entries: 5,
            ..TokenStreamOptions::default()
        },
    )
    .await;
    let (tenant, job) = (TenantId::new(), JobId::new());
    append_all(
        &*ctx.streams,
        tenant,
        job,
        &(1..=5).map(chunk).collect::<Vec<_>>(),
    )
    .await;
    let full = ctx.streams.append(tenant, job, &chunk(6)).await;
    assert!(matches!(full, Err(QueueError::Internal(_))), "{full:?}");
    // A duplicate at the cap is still just ignored.
    ctx.streams.append(tenant, job, &chunk(5)).await.unwrap();
    let got = ctx.streams.read(tenant, job, 0, 100, NOW).await.unwrap();
    assert_eq!(got, (1..=5).map(chunk).collect::<Vec<_>>());
}
