//! `cargo bench -p znovel --bench http_chapter`
//!
//! Requests/s and latency of `chapter(id) { title content }` over HTTP through the whole
//! stack (axum → auth → GraphQL → domain → SQL), against a bare axum handler that
//! returns the same JSON bytes from memory, measured side by side in one run, on SQLite
//! and on PostgreSQL. Rounds alternate (bare, GraphQL, bare, GraphQL, …) so machine noise
//! hits both sides alike; the ratio is the number to compare.
//!
//! Knobs: `BENCH_SECONDS` (per round, default 5), `BENCH_ROUNDS` (default 3),
//! `BENCH_CONCURRENCY` (default 16), `BENCH_BACKENDS` (default `sqlite,postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use axum::routing::post;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use znovel::app::{self, App};
use znovel::config::Settings;
use znovel_infra::testing::TestDatabase;

const QUERY: &str = "query Chapter($id: ID!) { chapter(id: $id) { title content } }";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Target {
    url: String,
    key: Option<String>,
    body: String,
}

/// Runs `concurrency` clients for `secs`; returns (requests/s, histogram of µs).
async fn load(target: Arc<Target>, concurrency: u64, secs: u64) -> (f64, Histogram<u64>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let t = target.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            while Instant::now() < deadline {
                let mut req = client
                    .post(&t.url)
                    .header("content-type", "application/json")
                    .body(t.body.clone());
                if let Some(k) = &t.key {
                    req = req.bearer_auth(k);
                }
                let start = Instant::now();
                let resp = req.send().await.unwrap();
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
    let rps = total.len() as f64 / started.elapsed().as_secs_f64();
    (rps, total)
}

async fn bench_backend(name: &str, db: TestDatabase) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("znovel-bench-{}", uuid::Uuid::new_v4()));
    let settings = Settings {
        data_dir: dir.clone(),
        database_url: Some(db.url.clone().into()),
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        ..Settings::default()
    };
    let app = App::build(&settings).await.unwrap();
    let key = app.admin_key.clone().unwrap().key;
    let listener = app::bind(
        settings.listen,
        settings.limits.listen_backlog,
        "ZNOVEL_LISTEN",
    )
    .unwrap();
    let ml = app::bind(settings.metrics_listen, 128, "ZNOVEL_METRICS_LISTEN").unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app.serve(listener, ml, std::future::pending()));
    let url = format!("http://{addr}/graphql");

    // A chapter of ~3,000 words.
    let client = reqwest::Client::new();
    let gql = |q: &'static str, v: Value| {
        let client = client.clone();
        let url = url.clone();
        let key = key.clone();
        async move {
            let r: Value = client
                .post(&url)
                .bearer_auth(&key)
                .json(&json!({ "query": q, "variables": v }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(r.get("errors").is_none(), "{r}");
            r
        }
    };
    let r = gql(
        "mutation { createNovel(input: {title: \"Bench\"}) { novel { id } } }",
        json!({}),
    )
    .await;
    let novel = r["data"]["createNovel"]["novel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let content = "The tide came in over the black rocks while Mara kept the lamp. ".repeat(250);
    let r = gql(
        "mutation($n: ID!, $c: String!) { createChapter(input: {novelId: $n, seq: 1, title: \"The Storm\", content: $c}) { chapter { id } } }",
        json!({ "n": novel, "c": content }),
    )
    .await;
    let chapter = r["data"]["createChapter"]["chapter"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body =
        json!({ "query": QUERY, "variables": { "id": chapter }, "operationName": "Chapter" })
            .to_string();
    let expected = client
        .post(&url)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    // The bare handler: same JSON bytes, no auth, no GraphQL, no database.
    let bare_bytes = expected.clone();
    let bare = axum::Router::new().route(
        "/graphql",
        post(move || {
            let b = bare_bytes.clone();
            async move { ([("content-type", "application/json")], b) }
        }),
    );
    let bl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let baddr = bl.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(bl, bare).await });

    let secs = env_num("BENCH_SECONDS", 5);
    let rounds = env_num("BENCH_ROUNDS", 3);
    let conc = env_num("BENCH_CONCURRENCY", 16);
    let gql_t = Arc::new(Target {
        url: url.clone(),
        key: Some(key.clone()),
        body: body.clone(),
    });
    let bare_t = Arc::new(Target {
        url: format!("http://{baddr}/graphql"),
        key: None,
        body,
    });
    // Warm-up.
    load(gql_t.clone(), conc, 1).await;
    load(bare_t.clone(), conc, 1).await;
    let mut g_hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut b_hist = g_hist.clone();
    let (mut g_rps, mut b_rps) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (r, h) = load(bare_t.clone(), conc, secs).await;
        b_rps.push(r);
        b_hist.add(h).unwrap();
        let (r, h) = load(gql_t.clone(), conc, secs).await;
        g_rps.push(r);
        g_hist.add(h).unwrap();
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (g, b) = (mean(&g_rps), mean(&b_rps));
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    std::fs::remove_dir_all(&dir).ok();
    vec![
        format!(
            "| {name} | bare axum (same JSON) | {b:.0} | {:.2} | {:.2} | {:.2} |",
            q(&b_hist, 0.5),
            q(&b_hist, 0.99),
            q(&b_hist, 0.999)
        ),
        format!(
            "| {name} | GraphQL `chapter(id)` | {g:.0} | {:.2} | {:.2} | {:.2} |",
            q(&g_hist, 0.5),
            q(&g_hist, 0.99),
            q(&g_hist, 0.999)
        ),
        format!(
            "| {name} | **ratio GraphQL / bare** | **{:.2}×** throughput | {:.2}× | {:.2}× | |",
            g / b,
            q(&g_hist, 0.5) / q(&b_hist, 0.5),
            q(&g_hist, 0.99) / q(&b_hist, 0.99)
        ),
    ]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let mut rows = Vec::new();
    for b in backends.split(',') {
        let db = match b.trim() {
            "sqlite" => TestDatabase::sqlite().unwrap(),
            "postgres" => TestDatabase::postgres().await.unwrap(),
            other => panic!("unknown backend {other}"),
        };
        rows.extend(bench_backend(b.trim(), db).await);
    }
    println!(
        "\n{} s × {} rounds per side, {} concurrent keep-alive clients, response ≈ 16 KB\n",
        env_num("BENCH_SECONDS", 5),
        env_num("BENCH_ROUNDS", 3),
        env_num("BENCH_CONCURRENCY", 16),
    );
    println!("| backend | endpoint | requests/s | p50 ms | p99 ms | p99.9 ms |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
