//! The job queue contract.

use crate::support::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use znovel_domain::ports::{Delivery, QueueError, QueueStats};

pub async fn fifo_enqueue_claim_ack(ctx: &Ctx) {
    let ctx = Ctx::with_vt(ctx.backend, LONG_VT).await;
    let q = &ctx.queue;
    let messages: Vec<_> = (0..5).map(|_| message()).collect();
    for m in &messages {
        q.enqueue(m).await.unwrap();
    }
    let first = q.claim("c1", 2, NOW).await.unwrap();
    let rest = q.claim("c1", 10, NOW).await.unwrap();
    let all: Vec<_> = first.iter().chain(&rest).cloned().collect();
    assert_eq!(first.len(), 2);
    assert_eq!(
        all.iter().map(|d| d.message.clone()).collect::<Vec<_>>(),
        messages,
        "FIFO"
    );
    assert!(all.iter().all(|d| d.delivery_count == 1));
    let receipts: HashSet<_> = all.iter().map(|d| d.receipt.clone()).collect();
    assert_eq!(receipts.len(), 5, "one receipt per delivery");
    for d in &all {
        q.ack(d).await.unwrap();
    }
    // Acking twice is harmless.
    q.ack(&all[0]).await.unwrap();
    assert!(
        q.claim("c1", 10, Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());
}

pub async fn max_zero_and_bad_receipts(ctx: &Ctx) {
    let q = &ctx.queue;
    q.enqueue(&message()).await.unwrap();
    assert!(
        q.claim("c", 0, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    let bogus = Delivery {
        message: message(),
        receipt: "not a receipt".into(),
        delivery_count: 1,
    };
    for result in [
        q.ack(&bogus).await,
        q.extend(&bogus).await,
        q.release(&bogus).await,
        q.dead_letter(&bogus, "x").await,
    ] {
        assert!(matches!(result, Err(QueueError::Internal(_))), "{result:?}");
    }
    assert_eq!(q.stats().await.unwrap().waiting, 1);
}

pub async fn no_double_delivery(ctx: &Ctx) {
    let ctx = Ctx::with_vt(ctx.backend, LONG_VT).await;
    let peer = ctx.peer().await;
    let messages: Vec<_> = (0..60).map(|_| message()).collect();
    for m in &messages {
        ctx.queue.enqueue(m).await.unwrap();
    }
    let mut consumers = Vec::new();
    for (n, q) in [&ctx.queue, &ctx.queue, &peer.queue, &peer.queue]
        .into_iter()
        .enumerate()
    {
        let q = q.clone();
        consumers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let got = q
                    .claim(&format!("c{n}"), 3, Duration::from_millis(100))
                    .await
                    .unwrap();
                if got.is_empty() {
                    return seen;
                }
                for d in got {
                    assert_eq!(d.delivery_count, 1);
                    q.ack(&d).await.unwrap();
                    seen.push(d.message.job_id);
                }
            }
        }));
    }
    let mut seen = Vec::new();
    for c in consumers {
        seen.extend(c.await.unwrap());
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(
        seen.len(),
        messages.len(),
        "each message delivered exactly once"
    );
    assert_eq!(unique.len(), messages.len());
    assert_eq!(ctx.queue.stats().await.unwrap(), QueueStats::default());
}

pub async fn dead_consumer_is_reclaimed(ctx: &Ctx) {
    let peer = ctx.peer().await;
    let m = message();
    ctx.queue.enqueue(&m).await.unwrap();
    let first = ctx.queue.claim("doomed", 1, NOW).await.unwrap();
    let claimed_at = Instant::now();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].delivery_count, 1);
    // Not before the visibility timeout.
    assert!(peer.queue.claim("live", 1, NOW).await.unwrap().is_empty());
    let second = peer
        .queue
        .claim("live", 1, Duration::from_secs(5))
        .await
        .unwrap();
    let after = claimed_at.elapsed();
    assert_eq!(
        jobs_of(&second),
        vec![m.job_id],
        "reclaimed by another consumer"
    );
    assert_eq!(second[0].message, m);
    assert_eq!(second[0].delivery_count, 2);
    assert!(
        after >= SHORT_VT - Duration::from_millis(30),
        "reclaimed after {after:?}"
    );
    assert!(
        after < Duration::from_secs(3),
        "reclaimed only after {after:?}"
    );
    // That one dies too: a third consumer gets it with count 3.
    let third = ctx
        .queue
        .claim("third", 5, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(jobs_of(&third), vec![m.job_id]);
    assert_eq!(third[0].delivery_count, 3);
    ctx.queue.ack(&third[0]).await.unwrap();
    tokio::time::sleep(SHORT_VT + Duration::from_millis(100)).await;
    assert!(
        peer.queue.claim("live", 5, NOW).await.unwrap().is_empty(),
        "acked: gone"
    );
    assert_eq!(ctx.queue.stats().await.unwrap(), QueueStats::default());
}

pub async fn extend_keeps_delivery(ctx: &Ctx) {
    let vt = Duration::from_millis(600);
    let ctx = Ctx::with_vt(ctx.backend, vt).await;
    let peer = ctx.peer().await;
    ctx.queue.enqueue(&message()).await.unwrap();
    let d = ctx.queue.claim("worker", 1, NOW).await.unwrap().remove(0);
    let q = ctx.queue.clone();
    let held = d.clone();
    let extender = tokio::spawn(async move {
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            q.extend(&held).await.unwrap();
        }
    });
    // 1.2 s of extending: twice the visibility timeout, and nobody gets it.
    let stolen = peer
        .queue
        .claim("thief", 1, Duration::from_millis(1000))
        .await
        .unwrap();
    assert!(stolen.is_empty(), "an extended delivery was reclaimed");
    extender.await.unwrap();
    let started = Instant::now();
    let later = peer
        .queue
        .claim("thief", 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(later.len(), 1, "reclaimed once extending stops");
    assert_eq!(later[0].delivery_count, 2);
    assert!(started.elapsed() >= vt - Duration::from_millis(150));
}

pub async fn release_redelivers_at_once(ctx: &Ctx) {
    let ctx = Ctx::with_vt(ctx.backend, LONG_VT).await;
    let peer = ctx.peer().await;
    let m = message();
    ctx.queue.enqueue(&m).await.unwrap();
    let first = ctx.queue.claim("a", 1, NOW).await.unwrap().remove(0);
    // A claimer of the same process already waiting gets it at once.
    let q = ctx.queue.clone();
    let waiting = tokio::spawn(async move { q.claim("b", 1, Duration::from_secs(10)).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let released_at = Instant::now();
    ctx.queue.release(&first).await.unwrap();
    let second = waiting.await.unwrap().unwrap();
    let latency = released_at.elapsed();
    assert_eq!(jobs_of(&second), vec![m.job_id]);
    assert_eq!(second[0].delivery_count, 2);
    assert!(
        latency < Duration::from_millis(500),
        "redelivered after {latency:?}"
    );
    // Released again: another process's next claim gets it, counted.
    ctx.queue.release(&second[0]).await.unwrap();
    // Extending a released delivery does not take it back.
    ctx.queue.extend(&second[0]).await.unwrap();
    let stats = ctx.queue.stats().await.unwrap();
    assert_eq!(
        (stats.waiting, stats.in_flight),
        (0, 1),
        "released counts as in flight"
    );
    let third = peer.queue.claim("c", 1, NOW).await.unwrap();
    assert_eq!(jobs_of(&third), vec![m.job_id]);
    assert_eq!(third[0].delivery_count, 3);
    // Released ones come before waiting ones.
    let newer = message();
    ctx.queue.enqueue(&newer).await.unwrap();
    peer.queue.release(&third[0]).await.unwrap();
    let next = ctx.queue.claim("d", 2, NOW).await.unwrap();
    assert_eq!(jobs_of(&next), vec![m.job_id, newer.job_id]);
    assert_eq!(
        next.iter().map(|d| d.delivery_count).collect::<Vec<_>>(),
        vec![4, 1]
    );
}

pub async fn stale_delivery_cannot_extend_or_release(ctx: &Ctx) {
    let vt = Duration::from_millis(500);
    let ctx = Ctx::with_vt(ctx.backend, vt).await;
    let peer = ctx.peer().await;
    ctx.queue.enqueue(&message()).await.unwrap();
    let old = ctx.queue.claim("zombie", 1, NOW).await.unwrap().remove(0);
    let current = peer
        .queue
        .claim("b", 1, Duration::from_secs(5))
        .await
        .unwrap()
        .remove(0);
    let taken_at = Instant::now();
    assert_eq!(current.delivery_count, 2);
    // The zombie wakes up: its extend and release change nothing.
    ctx.queue.extend(&old).await.unwrap();
    ctx.queue.release(&old).await.unwrap();
    let stolen = ctx.queue.claim("c", 1, NOW).await.unwrap();
    if taken_at.elapsed() < vt / 2 {
        assert!(stolen.is_empty(), "a stale release handed the message back");
    }
    assert_eq!(ctx.queue.stats().await.unwrap().in_flight, 1);
    peer.queue.ack(&current).await.unwrap();
    assert_eq!(ctx.queue.stats().await.unwrap(), QueueStats::default());
}

pub async fn dead_letter_is_final(ctx: &Ctx) {
    let (poison, fine) = (message(), message());
    ctx.queue.enqueue(&poison).await.unwrap();
    ctx.queue.enqueue(&fine).await.unwrap();
    let d = ctx.queue.claim("w", 1, NOW).await.unwrap().remove(0);
    assert_eq!(d.message, poison);
    ctx.queue.dead_letter(&d, "poison: boom").await.unwrap();
    let stats = ctx.queue.stats().await.unwrap();
    assert_eq!(
        stats,
        QueueStats {
            waiting: 1,
            in_flight: 0,
            dead: 1
        }
    );
    let dead = ctx.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message, poison);
    assert_eq!(dead[0].reason, "poison: boom");
    assert_eq!(dead[0].delivery_count, 1);
    // Past the visibility timeout only the other message comes.
    tokio::time::sleep(SHORT_VT + Duration::from_millis(100)).await;
    let next = ctx.queue.claim("w", 10, NOW).await.unwrap();
    assert_eq!(jobs_of(&next), vec![fine.job_id]);
    ctx.queue.ack(&next[0]).await.unwrap();
    // Acking or dead-lettering it again changes nothing.
    ctx.queue.ack(&d).await.unwrap();
    ctx.queue.dead_letter(&d, "again").await.unwrap();
    assert!(
        ctx.queue
            .claim("w", 10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(ctx.dead_letters().await.len(), 1);
    assert_eq!(
        ctx.queue.stats().await.unwrap(),
        QueueStats {
            waiting: 0,
            in_flight: 0,
            dead: 1
        }
    );
}

pub async fn stats_counts(ctx: &Ctx) {
    let ctx = Ctx::with_vt(ctx.backend, LONG_VT).await;
    let q = &ctx.queue;
    let stats = |waiting, in_flight, dead| QueueStats {
        waiting,
        in_flight,
        dead,
    };
    assert_eq!(q.stats().await.unwrap(), stats(0, 0, 0));
    for _ in 0..3 {
        q.enqueue(&message()).await.unwrap();
    }
    assert_eq!(q.stats().await.unwrap(), stats(3, 0, 0));
    let got = q.claim("w", 2, NOW).await.unwrap();
    assert_eq!(q.stats().await.unwrap(), stats(1, 2, 0));
    q.ack(&got[0]).await.unwrap();
    assert_eq!(q.stats().await.unwrap(), stats(1, 1, 0));
    q.release(&got[1]).await.unwrap();
    assert_eq!(q.stats().await.unwrap(), stats(1, 1, 0));
    let again = q.claim("w", 5, NOW).await.unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(q.stats().await.unwrap(), stats(0, 2, 0));
    q.dead_letter(&again[0], "no").await.unwrap();
    assert_eq!(q.stats().await.unwrap(), stats(0, 1, 1));
    q.ack(&again[1]).await.unwrap();
    assert_eq!(q.stats().await.unwrap(), stats(0, 0, 1));
}

pub async fn claim_wakes_on_enqueue(ctx: &Ctx) {
    let ctx = Ctx::with_vt(ctx.backend, LONG_VT).await;
    let peer = ctx.peer().await;
    let q = ctx.queue.clone();
    let waiting = tokio::spawn(async move { q.claim("w", 1, Duration::from_secs(10)).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let m = message();
    let enqueued_at = Instant::now();
    peer.queue.enqueue(&m).await.unwrap();
    let got = waiting.await.unwrap().unwrap();
    let latency = enqueued_at.elapsed();
    assert_eq!(jobs_of(&got), vec![m.job_id]);
    assert!(
        latency < Duration::from_millis(500),
        "woke after {latency:?}"
    );
}

pub async fn claim_waits_then_returns_empty(ctx: &Ctx) {
    let started = Instant::now();
    let got = ctx
        .queue
        .claim("w", 3, Duration::from_millis(300))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(got.is_empty());
    assert!(
        waited >= Duration::from_millis(290),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "returned after {waited:?}");
}
