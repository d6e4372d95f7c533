//! What only the Redis adapters have: separate processes that crash, Redis going away,
//! the key layout, entries someone else wrote, and the live cache's economy.

use crate::support::*;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use znovel_domain::ids::{JobId, TenantId};
use znovel_domain::ports::{JobQueue, QueueError, TokenStream};
use znovel_infra::queue::{QueueOptions, TokenStreamOptions};

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_process_is_reclaimed() {
    let ctx = Ctx::new(Backend::Redis).await;
    let m = message();
    ctx.queue.enqueue(&m).await.unwrap();
    {
        let (doomed, doomed_streams) = redis_pair(
            &redis_url(),
            ctx.prefix(),
            &ctx.options,
            &ctx.stream_options,
        )
        .await;
        let d = doomed.claim("doomed", 1, NOW).await.unwrap();
        assert_eq!(d[0].delivery_count, 1);
        // The process dies mid-job: its connections close, nothing is acked.
        drop((doomed, doomed_streams));
    }
    let got = ctx
        .queue
        .claim("survivor", 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(jobs_of(&got), vec![m.job_id]);
    assert_eq!(got[0].delivery_count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_claim_loses_nothing() {
    let ctx = Ctx::new(Backend::Redis).await;
    let (other, _streams) = redis_pair(
        &redis_url(),
        ctx.prefix(),
        &ctx.options,
        &ctx.stream_options,
    )
    .await;
    let q = other.clone();
    let blocked =
        tokio::spawn(async move { q.claim("cancelled", 1, Duration::from_secs(10)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    blocked.abort();
    let m = message();
    ctx.queue.enqueue(&m).await.unwrap();
    let got = ctx
        .queue
        .claim("survivor", 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(jobs_of(&got), vec![m.job_id]);
    assert!(got[0].delivery_count <= 2);
    ctx.queue.ack(&got[0]).await.unwrap();
    // The process whose claim was cancelled still works.
    let m2 = message();
    other.enqueue(&m2).await.unwrap();
    let got = other
        .claim("again", 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(jobs_of(&got), vec![m2.job_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_layout() {
    let ctx = Ctx::new(Backend::Redis).await;
    let p = ctx.prefix().to_owned();
    let mut conn = raw(&redis_url());
    let (tenant, job) = (TenantId::new(), JobId::new());
    ctx.streams.append(tenant, job, &chunk(1)).await.unwrap();
    let key = format!("{p}:t:{tenant}:job:{job}:tokens");
    let ids: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].0, "1-0", "entry id derived from seq");
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!(ttl > 60_000, "default TTL set: {ttl}");
    ctx.streams
        .expire(tenant, job, Duration::from_secs(30))
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!(ttl > 0 && ttl <= 30_000, "expire sets the TTL: {ttl}");

    ctx.queue.enqueue(&message()).await.unwrap();
    let groups: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(format!("{p}:jobs"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(groups.len(), 1);
    assert!(format!("{:?}", groups[0]).contains("workers"));
    let d = ctx.queue.claim("w", 1, NOW).await.unwrap().remove(0);
    ctx.queue.dead_letter(&d, "why").await.unwrap();
    let dead: i64 = redis::cmd("XLEN")
        .arg(format!("{p}:jobs:dead"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(dead, 1);
    let len: i64 = redis::cmd("XLEN")
        .arg(format!("{p}:jobs"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(len, 0, "dead-lettered entries leave the job stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_entry_is_dead_lettered() {
    let ctx = Ctx::new(Backend::Redis).await;
    let mut conn = raw(&redis_url());
    let _: String = redis::cmd("XADD")
        .arg(format!("{}:jobs", ctx.prefix()))
        .arg("*")
        .arg("tenant")
        .arg("not-a-uuid")
        .query(&mut conn)
        .unwrap();
    let m = message();
    ctx.queue.enqueue(&m).await.unwrap();
    let got = ctx.queue.claim("w", 10, NOW).await.unwrap();
    assert_eq!(
        jobs_of(&got),
        vec![m.job_id],
        "the malformed entry is not delivered"
    );
    let stats = ctx.queue.stats().await.unwrap();
    assert_eq!((stats.waiting, stats.in_flight, stats.dead), (0, 1, 1));
    // And a corrupt token stream entry is an Internal error, not a panic.
    let (tenant, job) = (TenantId::new(), JobId::new());
    let key = format!("{}:t:{tenant}:job:{job}:tokens", ctx.prefix());
    let _: String = redis::cmd("XADD")
        .arg(&key)
        .arg("1-0")
        .arg("e")
        .arg("{oops")
        .query(&mut conn)
        .unwrap();
    let read = ctx.streams.read(tenant, job, 0, 10, NOW).await;
    assert!(matches!(read, Err(QueueError::Internal(_))), "{read:?}");
}

/// A private redis-server on a free port, killed on drop.
struct Server {
    port: u16,
    child: Option<Child>,
}

impl Server {
    /// Starts one on `port` (waiting for it to be free) or on a free port, and checks
    /// that the server answering is ours (another test may race for the same port).
    fn start(port: Option<u16>) -> Server {
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "redis-server did not start"
            );
            let port = port.unwrap_or_else(|| {
                TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            });
            let mut child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .args(["--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server on PATH");
            let mut server = Server { port, child: None };
            loop {
                if child.try_wait().unwrap().is_some() {
                    break; // could not bind: try again
                }
                let pid = redis::Client::open(server.url().as_str())
                    .and_then(|c| c.get_connection())
                    .and_then(|mut c| redis::cmd("INFO").arg("server").query::<String>(&mut c));
                if let Ok(info) = pid {
                    if info.contains(&format!("process_id:{}\r", child.id())) {
                        server.child = Some(child);
                        return server;
                    }
                    let _ = child.kill(); // someone else's server answers there
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_is_unavailable_then_recovers() {
    let mut server = Server::start(None);
    let options = QueueOptions {
        visibility_timeout: SHORT_VT,
        ..QueueOptions::default()
    };
    let (q, s) = redis_pair(
        &server.url(),
        "outage",
        &options,
        &TokenStreamOptions::default(),
    )
    .await;
    let (tenant, job) = (TenantId::new(), JobId::new());
    q.enqueue(&message()).await.unwrap();
    s.append(tenant, job, &chunk(1)).await.unwrap();
    assert_eq!(
        s.read(tenant, job, 0, 10, Duration::from_millis(50))
            .await
            .unwrap()
            .len(),
        1
    );

    server.kill();
    let r = q.enqueue(&message()).await;
    assert!(matches!(r, Err(QueueError::Unavailable(_))), "{r:?}");
    let r = q.claim("w", 1, Duration::from_millis(300)).await;
    assert!(matches!(r, Err(QueueError::Unavailable(_))), "{r:?}");
    let r = s.append(tenant, job, &chunk(2)).await;
    assert!(matches!(r, Err(QueueError::Unavailable(_))), "{r:?}");
    let r = s.read(tenant, job, 0, 10, Duration::from_millis(300)).await;
    assert!(matches!(r, Err(QueueError::Unavailable(_))), "{r:?}");

    // Redis comes back (empty: no persistence): the same adapters recover.
    let port = server.port;
    let _server = Server::start(Some(port));
    let started = Instant::now();
    while q.stats().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "queue did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = message();
    q.enqueue(&m).await.unwrap();
    let got = q.claim("w", 1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(jobs_of(&got), vec![m.job_id], "consumer group recreated");
    // A reader waiting across the reconnection of the announcements wakes on append.
    let job = JobId::new();
    let reader = s.clone();
    let waiting = tokio::spawn(async move {
        reader
            .read(tenant, job, 0, 10, Duration::from_secs(10))
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let appended_at = Instant::now();
    s.append(tenant, job, &chunk(1)).await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), vec![chunk(1)]);
    assert!(appended_at.elapsed() < Duration::from_secs(1));
}

fn calls(url: &str, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut raw(url))
        .unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Live readers of one job are served from the process's cache: far fewer `XRANGE`s
/// than reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_readers_share_one_subscription() {
    let server = Server::start(None);
    let (_q, s) = redis_pair(
        &server.url(),
        "fanout",
        &QueueOptions::default(),
        &TokenStreamOptions::default(),
    )
    .await;
    let s: Arc<dyn TokenStream> = s;
    let (tenant, job) = (TenantId::new(), JobId::new());
    let all = chapter(100);
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { follow(&*s, tenant, job, 10, Duration::from_secs(10)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for event in &all {
        s.append(tenant, job, event).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for r in readers {
        assert_eq!(r.await.unwrap(), all);
    }
    let xrange = calls(&server.url(), "xrange");
    eprintln!("50 readers x 101 entries: {xrange} XRANGE calls");
    assert!(
        xrange < 500,
        "{xrange} XRANGE calls for 50 live readers of 101 entries"
    );
}

/// 1,000 blocked readers (100 jobs × 10) in one process while writers append: every
/// reader sees every entry, and appends are not slowed by the waiting readers. Prints
/// append latencies with `--nocapture` (no timing is asserted: the benchmarks own numbers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_blocked_readers() {
    let ctx = Ctx::new(Backend::Redis).await;
    let peer = ctx.peer().await;
    let tenant = TenantId::new();
    let jobs: Vec<JobId> = (0..100).map(|_| JobId::new()).collect();
    let all = chapter(20);
    let mut readers = Vec::new();
    for job in &jobs {
        for _ in 0..10 {
            let (s, job, all) = (peer.streams.clone(), *job, all.clone());
            readers.push(tokio::spawn(async move {
                let mut after = 0;
                while after < all.len() as u64 {
                    let got = s
                        .read(tenant, job, after, 100, Duration::from_secs(20))
                        .await
                        .unwrap();
                    assert_eq!(got[..], all[after as usize..after as usize + got.len()]);
                    after += got.len() as u64;
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let mut append_times = Vec::new();
    for event in &all {
        for job in &jobs {
            let t = Instant::now();
            ctx.streams.append(tenant, *job, event).await.unwrap();
            append_times.push(t.elapsed());
        }
    }
    let wrote = started.elapsed();
    for r in readers {
        r.await.unwrap();
    }
    append_times.sort();
    eprintln!(
        "2,000 appends under 1,000 blocked readers: {wrote:?} total, append p50 {:?} p99 {:?}; all read in {:?}",
        append_times[append_times.len() / 2],
        append_times[append_times.len() * 99 / 100],
        started.elapsed()
    );
}
