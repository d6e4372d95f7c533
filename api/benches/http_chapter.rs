//! `cargo bench -p znovel --bench http_chapter`
//!
//! The read path over HTTP, measured side by side in one process, on SQLite and on
//! PostgreSQL: `GET /health` of the real server (the floor: HTTP and middleware, no
//! work), `{ __typename }` (adds authentication, rate limits and the GraphQL executor),
//! `chapter(id) { title content }` (adds the tenant-scoped read and a ≈16 KB answer), and
//! a bare axum handler returning the chapter's JSON bytes from memory (HTTP alone, no
//! middleware), and the chapter read alone — `StoryService::chapter` called by 50 tasks in
//! the process, no HTTP, no GraphQL: the floor the store itself sets. `chapter(id)` and
//! the read alone run twice: on the server as configured by default (chapters shown are
//! kept in memory) and on a second server on the same database with
//! `ZNOVEL_CHAPTER_CACHE_BYTES=0` (every read goes to the database). The servers are built
//! like `znovel serve` builds them (JSON logs at `info`, request limits on — set so high
//! they never refuse, jemalloc as the allocator).
//! Rounds alternate between the endpoints so machine noise hits them alike; the ratio to
//! `/health` is the number to compare, with the p99 at the default 50 connections.
//!
//! Knobs: `BENCH_SECONDS` (per round, default 5), `BENCH_ROUNDS` (default 3),
//! `BENCH_CONCURRENCY` (default 50), `BENCH_BACKENDS` (default `sqlite,postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use axum::routing::post;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use znovel::app::{self, App};
use znovel::config::{LogFormat, Settings};
use znovel_infra::testing::TestDatabase;

/// The server runs in this process: it gets the `znovel` binary's allocator (src/main.rs),
/// not glibc's malloc, whose arena locks and consolidation would be measured instead.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const QUERY: &str = "query Chapter($id: ID!) { chapter(id: $id) { title content } }";
/// Requests per minute: counted on every request, never reached.
const NEVER_REACHED: u32 = 1_000_000_000;
/// What `chapter(id)` should reach, as a share of `/health`'s requests/s: (SQLite,
/// PostgreSQL); and its p99 at 50 connections.
const TARGET_RATIO: (f64, f64) = (0.5, 0.3);
const TARGET_P99_MS: f64 = 10.0;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One endpoint under load.
struct Target {
    name: &'static str,
    url: String,
    key: Option<String>,
    /// `None`: a `GET`.
    body: Option<String>,
    /// Set: not an HTTP endpoint but the domain service's read itself, called in process
    /// (no HTTP, no GraphQL): the floor the store sets.
    direct: Option<DirectRead>,
}

/// The chapter read as the resolver makes it: `StoryService::chapter` for an actor.
#[derive(Clone)]
struct DirectRead {
    services: znovel_domain::services::Services,
    actor: znovel_domain::auth::Actor,
    chapter: znovel_domain::ids::ChapterId,
}

/// Runs `concurrency` keep-alive clients for `secs`: (requests/s, histogram of µs).
async fn load(target: Arc<Target>, concurrency: u64, secs: u64) -> (f64, Histogram<u64>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let t = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            if let Some(d) = &t.direct {
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let c = d.services.story.chapter(&d.actor, d.chapter).await.unwrap();
                    h.record(start.elapsed().as_micros() as u64).unwrap();
                    assert!(c.content.len() >= 16_000);
                }
                return h;
            }
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            while Instant::now() < deadline {
                let mut req = match &t.body {
                    Some(body) => client
                        .post(&t.url)
                        .header("content-type", "application/json")
                        .body(body.clone()),
                    None => client.get(&t.url),
                };
                if let Some(k) = &t.key {
                    req = req.bearer_auth(k);
                }
                let start = Instant::now();
                let resp = req.send().await.unwrap();
                assert_eq!(resp.status(), 200, "{}", t.name);
                let bytes = resp.bytes().await.unwrap();
                h.record(start.elapsed().as_micros() as u64).unwrap();
                assert!(!bytes.is_empty());
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

/// Starts a server on `db` (as `znovel serve` would, limits never reached, keeping at
/// most `chapter_cache_bytes` of chapters): (base URL, the admin key when this server
/// created it, data dir, the server's services).
async fn server(
    db: &TestDatabase,
    chapter_cache_bytes: usize,
) -> (
    String,
    Option<String>,
    std::path::PathBuf,
    znovel_domain::services::Services,
) {
    let dir = std::env::temp_dir().join(format!("znovel-bench-{}", uuid::Uuid::new_v4()));
    let mut settings = Settings {
        data_dir: dir.clone(),
        database_url: Some(db.url.clone().into()),
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        chapter_cache_bytes,
        ..Settings::default()
    };
    settings.rate_limits.requests_per_key = NEVER_REACHED;
    settings.rate_limits.requests_per_tenant = NEVER_REACHED;
    let app = App::build(&settings).await.unwrap();
    let key = app.admin_key.clone().map(|k| k.key);
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
    (format!("http://{addr}"), key, dir, services)
}

/// Creates a novel and a chapter of ~3,000 words: the `chapter(id)` request body and the
/// chapter's global ID.
async fn chapter_request(url: &str, key: &str) -> (String, String) {
    let client = reqwest::Client::new();
    let gql = |q: &'static str, v: Value| {
        let client = client.clone();
        async move {
            let r: Value = client
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
            r
        }
    };
    let r = gql(
        "mutation { createNovel(input: {title: \"Bench\"}) { novel { id } } }",
        json!({}),
    )
    .await;
    let novel = r["data"]["createNovel"]["novel"]["id"].clone();
    let content = "The tide came in over the black rocks while Mara kept the lamp. ".repeat(250);
    let r = gql(
        "mutation($n: ID!, $c: String!) { createChapter(input: {novelId: $n, seq: 1, title: \"The Storm\", content: $c}) { chapter { id } } }",
        json!({ "n": novel, "c": content }),
    )
    .await;
    let chapter = r["data"]["createChapter"]["chapter"]["id"].clone();
    let body =
        json!({ "query": QUERY, "variables": { "id": chapter }, "operationName": "Chapter" })
            .to_string();
    (body, chapter.as_str().unwrap().to_owned())
}

/// A bare axum handler answering `bytes` to every `POST`: its URL.
async fn bare_handler(bytes: axum::body::Bytes) -> String {
    let bare = axum::Router::new().route(
        "/graphql",
        post(move || {
            let b = bytes.clone();
            async move { ([("content-type", "application/json")], b) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, bare).await });
    format!("http://{addr}/graphql")
}

async fn bench_backend(name: &str, db: TestDatabase) -> Vec<String> {
    let (base, key, dir, services) =
        server(&db, znovel_infra::sql::DEFAULT_CHAPTER_CACHE_BYTES).await;
    let key = key.unwrap();
    let (cold_base, _, cold_dir, cold_services) = server(&db, 0).await;
    let graphql = format!("{base}/graphql");
    let (body, chapter) = chapter_request(&graphql, &key).await;
    let chapter = znovel::graphql::ids::decode(&async_graphql::ID(chapter), "id").unwrap();
    let actor = services.admin.authenticate_api_key(&key).await.unwrap();
    let direct = DirectRead {
        actor: actor.clone(),
        chapter,
        services,
    };
    let cold_direct = DirectRead {
        actor,
        chapter,
        services: cold_services,
    };
    let expected = reqwest::Client::new()
        .post(&graphql)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(expected.len() > 16_000, "{}", expected.len());
    let targets = [
        Target {
            name: "`GET /health`",
            url: format!("{base}/health"),
            key: None,
            body: None,
            direct: None,
        },
        Target {
            name: "`{ __typename }`",
            url: graphql.clone(),
            key: Some(key.clone()),
            body: Some(json!({ "query": "{ __typename }" }).to_string()),
            direct: None,
        },
        Target {
            name: "`chapter(id) { title content }`",
            url: graphql.clone(),
            key: Some(key.clone()),
            body: Some(body.clone()),
            direct: None,
        },
        Target {
            name: "bare axum handler (same JSON, other listener)",
            url: bare_handler(expected).await,
            key: None,
            body: Some(body.clone()),
            direct: None,
        },
        Target {
            name: "the read alone: `StoryService::chapter`, in process (no HTTP, no GraphQL)",
            url: String::new(),
            key: None,
            body: None,
            direct: Some(direct),
        },
        Target {
            name: "`chapter(id) { title content }`, chapter cache off",
            url: format!("{cold_base}/graphql"),
            key: Some(key.clone()),
            body: Some(body.clone()),
            direct: None,
        },
        Target {
            name: "the read alone, chapter cache off",
            url: String::new(),
            key: None,
            body: None,
            direct: Some(cold_direct),
        },
    ]
    .map(Arc::new);

    let secs = env_num("BENCH_SECONDS", 5);
    let rounds = env_num("BENCH_ROUNDS", 3);
    let conc = env_num("BENCH_CONCURRENCY", 50);
    for t in &targets {
        load(t.clone(), conc, 1).await; // warm-up
    }
    let empty = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut hists = vec![empty; targets.len()];
    let mut rps = vec![Vec::new(); targets.len()];
    for _ in 0..rounds {
        for (i, t) in targets.iter().enumerate() {
            // On stderr, so a profiler can be pointed at one endpoint's round.
            eprintln!("round: {name} {}", t.name);
            let (r, h) = load(t.clone(), conc, secs).await;
            rps[i].push(r);
            hists[i].add(h).unwrap();
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&cold_dir).ok();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    let health = mean(&rps[0]);
    let mut rows: Vec<String> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let r = mean(&rps[i]);
            format!(
                "| {name} | {} | {r:.0} | {:.3}× | {:.2} | {:.2} | {:.2} |",
                t.name,
                r / health,
                q(&hists[i], 0.5),
                q(&hists[i], 0.99),
                q(&hists[i], 0.999)
            )
        })
        .collect();
    let ratio = mean(&rps[2]) / health;
    let p99 = q(&hists[2], 0.99);
    let target = if name == "sqlite" {
        TARGET_RATIO.0
    } else {
        TARGET_RATIO.1
    };
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    rows.push(format!(
        "| {name} | **`chapter(id)` vs target** | | **{ratio:.3}×** (≥ {target}×: {}) | | **{p99:.2}** (< {TARGET_P99_MS}: {}) | |",
        verdict(ratio >= target),
        verdict(p99 < TARGET_P99_MS),
    ));
    rows
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // The server's own logging (JSON lines at `info`, unless RUST_LOG says otherwise),
    // so its spans cost what they cost in production.
    znovel::telemetry::init(LogFormat::Json);
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
        "\n{} s × {} rounds per endpoint, {} concurrent keep-alive clients, chapter answer ≈ 16 KB\n",
        env_num("BENCH_SECONDS", 5),
        env_num("BENCH_ROUNDS", 3),
        env_num("BENCH_CONCURRENCY", 50),
    );
    println!("| backend | endpoint | requests/s | × `/health` | p50 ms | p99 ms | p99.9 ms |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
