//! `cargo bench -p znovel --bench limits_overhead`
//!
//! What rate limiting and live credentials add to a request: `chapter(id) { title
//! content }` over HTTP on SQLite, against two servers on one database — one with the
//! per-key and per-tenant limits on (counted on every request, set high enough never to
//! refuse), one with them off — in alternating rounds so machine noise hits both alike;
//! then, in-process, the cost of one limit check and of one live-credential read (what a
//! WebSocket operation adds) next to the request's median latency.
//!
//! Knobs: `BENCH_SECONDS` (per round, default 5), `BENCH_ROUNDS` (default 3),
//! `BENCH_CONCURRENCY` (default 16).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use znovel::app::{self, App};
use znovel::auth::Authenticator;
use znovel::config::Settings;
use znovel::live_auth::LiveCredentials;
use znovel::server::limits::RequestLimits;
use znovel_infra::queue::credentials::MemoryCredentialEvents;
use znovel_infra::rate_limit::MemoryRateLimiter;
use znovel_infra::testing::TestDatabase;

const QUERY: &str = "query Chapter($id: ID!) { chapter(id: $id) { title content } }";
/// Per minute: counted on every request, never reached.
const NEVER_REACHED: u32 = 1_000_000_000;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `concurrency` clients posting `body` with `key` for `secs`: (requests/s, µs).
async fn load(
    url: Arc<str>,
    key: Arc<str>,
    body: Arc<str>,
    conc: u64,
    secs: u64,
) -> (f64, Histogram<u64>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (url, key, body) = (url.clone(), key.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            while Instant::now() < deadline {
                let start = Instant::now();
                let resp = client
                    .post(&*url)
                    .bearer_auth(&*key)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                let bytes = resp.bytes().await.unwrap();
                h.record(start.elapsed().as_micros() as u64).unwrap();
                assert!(bytes.len() > 100);
            }
            h
        }));
    }
    let started = Instant::now();
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for t in tasks {
        total.add(t.await.unwrap()).unwrap();
    }
    (total.len() as f64 / started.elapsed().as_secs_f64(), total)
}

/// A server on `db`, limits on or off: (GraphQL URL, admin key, app services).
async fn server(
    db: &TestDatabase,
    limits: bool,
) -> (String, String, znovel_domain::services::Services) {
    let dir = std::env::temp_dir().join(format!("znovel-bench-{}", uuid::Uuid::new_v4()));
    let mut settings = Settings {
        data_dir: dir,
        database_url: Some(db.url.clone().into()),
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        ..Settings::default()
    };
    let rate = if limits { NEVER_REACHED } else { 0 };
    settings.rate_limits.requests_per_key = rate;
    settings.rate_limits.requests_per_tenant = rate;
    let app = App::build(&settings).await.unwrap();
    let key = app.admin_key.clone().unwrap().key;
    let services = app.services.clone();
    let listener = app::bind(
        settings.listen,
        settings.limits.listen_backlog,
        "ZNOVEL_LISTEN",
    )
    .unwrap();
    let ml = app::bind(settings.metrics_listen, 128, "ZNOVEL_METRICS_LISTEN").unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app.serve(listener, ml, std::future::pending()));
    (format!("http://{addr}/graphql"), key, services)
}

async fn gql(url: &str, key: &str, q: &str, v: Value) -> Value {
    let r: Value = reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .json(&json!({ "query": q, "variables": v }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r.get("errors").is_none(), "{r}");
    r["data"].clone()
}

/// Mean nanoseconds of `f` over `n` calls.
async fn per_call<F, Fut>(n: u32, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    for _ in 0..n {
        f().await;
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let db = TestDatabase::sqlite().unwrap();
    let (on_url, on_key, services) = server(&db, true).await;
    let (off_url, off_key, _) = server(&db, false).await;
    let d = gql(
        &on_url,
        &on_key,
        "mutation { createNovel(input: {title: \"Bench\"}) { novel { id } } }",
        json!({}),
    )
    .await;
    let novel = d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned();
    let content = "The tide came in over the black rocks while Mara kept the lamp. ".repeat(250);
    let d = gql(
        &on_url,
        &on_key,
        "mutation($n: ID!, $c: String!) { createChapter(input: {novelId: $n, seq: 1, title: \"The Storm\", content: $c}) { chapter { id } } }",
        json!({ "n": novel, "c": content }),
    )
    .await;
    let chapter = d["createChapter"]["chapter"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body: Arc<str> =
        json!({ "query": QUERY, "variables": { "id": chapter }, "operationName": "Chapter" })
            .to_string()
            .into();

    let (secs, rounds, conc) = (
        env_num("BENCH_SECONDS", 5),
        env_num("BENCH_ROUNDS", 3),
        env_num("BENCH_CONCURRENCY", 16),
    );
    let on = (
        Arc::<str>::from(on_url.as_str()),
        Arc::<str>::from(on_key.as_str()),
    );
    let off = (
        Arc::<str>::from(off_url.as_str()),
        Arc::<str>::from(off_key.as_str()),
    );
    load(on.0.clone(), on.1.clone(), body.clone(), conc, 1).await;
    load(off.0.clone(), off.1.clone(), body.clone(), conc, 1).await;
    let mut on_h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut off_h = on_h.clone();
    let (mut on_rps, mut off_rps) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (r, h) = load(off.0.clone(), off.1.clone(), body.clone(), conc, secs).await;
        off_rps.push(r);
        off_h.add(h).unwrap();
        let (r, h) = load(on.0.clone(), on.1.clone(), body.clone(), conc, secs).await;
        on_rps.push(r);
        on_h.add(h).unwrap();
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    let (on_r, off_r) = (mean(&on_rps), mean(&off_rps));

    // In-process: one limit check (both buckets) and one live-credential read.
    let actor = services.admin.authenticate_api_key(&on_key).await.unwrap();
    let limits = RequestLimits::new(
        Arc::new(MemoryRateLimiter::default()),
        &znovel::config::RateLimitSettings {
            requests_per_key: NEVER_REACHED,
            requests_per_tenant: NEVER_REACHED,
            generations_per_tenant: 0,
        },
    );
    let check_ns = per_call(200_000, || async { limits.check(&actor).await.unwrap() }).await;
    let auth = Authenticator::new(services.admin.clone(), &Default::default()).unwrap();
    let live = LiveCredentials::new(auth, Arc::new(MemoryCredentialEvents::default()))
        .watch(&on_key)
        .await
        .unwrap();
    let read_ns = per_call(1_000_000, || async {
        std::hint::black_box(live.current().unwrap());
    })
    .await;
    let p50_ns = q(&off_h, 0.5) * 1e6;

    println!(
        "\n{secs} s × {rounds} rounds per side, {conc} concurrent keep-alive clients, SQLite\n"
    );
    println!("| limits | requests/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    println!(
        "| off | {off_r:.0} | {:.2} | {:.2} |",
        q(&off_h, 0.5),
        q(&off_h, 0.99)
    );
    println!(
        "| on | {on_r:.0} | {:.2} | {:.2} |",
        q(&on_h, 0.5),
        q(&on_h, 0.99)
    );
    println!(
        "| **on / off** | **{:.3}×** | {:.3}× | {:.3}× |",
        on_r / off_r,
        q(&on_h, 0.5) / q(&off_h, 0.5),
        q(&on_h, 0.99) / q(&off_h, 0.99)
    );
    println!();
    println!("| per request, in-process | ns | share of the p50 request |");
    println!("|---|---|---|");
    println!(
        "| limit check (key + tenant buckets) | {check_ns:.0} | {:.3} % |",
        100.0 * check_ns / p50_ns
    );
    println!(
        "| live credential read (per WebSocket operation) | {read_ns:.0} | {:.4} % |",
        100.0 * read_ns / p50_ns
    );
}
