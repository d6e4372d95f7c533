//! Live-generation latency and memory, end to end through the real server binary.
//!
//! `cargo bench -p znovel --bench chunk_latency` (add `-- --quick` for a short run).
//!
//! A fake OpenAI-compatible provider in this process streams chunks whose text is the
//! time they left it (nanoseconds since a shared start); `znovel serve` runs as a child
//! process (the release binary) and `graphql-transport-ws` clients in this process follow
//! `chapterStream`. For each chunk a client receives, the added latency is "frame
//! arrived" minus "chunk left the provider": the server's whole path — SSE parsing, the
//! job runner, the token stream (in-process or Redis Streams), the subscription, the
//! WebSocket frame. Scenarios: 1 job × 1 subscriber, 1 job × 1,000 subscribers, 100
//! concurrent jobs × 1 subscriber; each with the embedded in-process queue and streams and
//! with Redis (`REDIS_URL`, when Redis answers on 127.0.0.1:6379). Before the provider
//! sends its first chunk, the server's RSS is read with every subscriber connected and
//! idle: the memory one idle subscriber costs. Finally, when the embedded model file is
//! present, the local model writes a chapter and its tokens per second are reported.
//! Prints a Markdown table (the one in `docs/benchmarks.md`).
//!
//! `-- --burst`: instead, 100 `generateChapter` mutations sent at once (three rounds, each
//! on 100 fresh chapters), on SQLite and on PostgreSQL (a fresh database on
//! 127.0.0.1:5432): the time each takes to be answered, p50/p99/max — with the server's
//! default 2 job workers, and with 100 (every job starting at once beside the burst).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use axum::body::Body;
use axum::response::Response;
use axum::routing::post;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const BIN: &str = env!("CARGO_BIN_EXE_znovel");

/// The fake provider: streams `chunks` chunks, one every `interval`, once the gate opens.
struct Provider {
    base_url: String,
    gate: watch::Sender<bool>,
}

fn frame(model: &str, delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    });
    format!("data: {chunk}\n\n")
}

async fn start_provider(epoch: Instant, chunks: usize, interval: Duration) -> Provider {
    let (gate, gate_rx) = watch::channel(false);
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |body: axum::Json<Value>| {
            let gate = gate_rx.clone();
            async move {
                let model = body["model"].as_str().unwrap_or("bench").to_owned();
                let stream = futures_util::stream::unfold(0usize, move |i| {
                    let model = model.clone();
                    let mut gate = gate.clone();
                    async move {
                        if i == 0 {
                            let _ = gate.wait_for(|open| *open).await;
                        }
                        if i < chunks {
                            tokio::time::sleep(interval).await;
                            let sent = epoch.elapsed().as_nanos();
                            let f = frame(&model, json!({ "content": format!("{sent} ") }), None);
                            return Some((Ok::<_, std::io::Error>(f), i + 1));
                        }
                        if i == chunks {
                            let mut end = frame(&model, json!({}), Some("stop"));
                            let usage = json!({ "id": "chatcmpl-bench", "object": "chat.completion.chunk",
                                "created": 1_700_000_000, "model": model, "choices": [],
                                "usage": { "prompt_tokens": 100, "completion_tokens": chunks, "total_tokens": 100 + chunks } });
                            end.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
                            return Some((Ok(end), i + 1));
                        }
                        None
                    }
                });
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(stream))
                    .unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Provider {
        base_url: format!("http://{addr}/v1"),
        gate,
    }
}

/// The server under test.
struct Server {
    child: Child,
    url: String,
    metrics: String,
    key: String,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    fn start(llm: Option<&str>, redis_prefix: Option<&str>) -> Self {
        Self::start_on(llm, redis_prefix, None, 100)
    }

    /// Starts the server on `database` (a URL; `None`: SQLite in its data directory) with
    /// `workers` job workers. Rate limits are off: the bench sends far more than a tenant
    /// may.
    fn start_on(
        llm: Option<&str>,
        redis_prefix: Option<&str>,
        database: Option<&str>,
        workers: usize,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("znovel-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = Command::new(BIN);
        c.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ZNOVEL_DATA_DIR", &dir)
        .env("ZNOVEL_WORKER_CONCURRENCY", workers.to_string())
        .env("ZNOVEL_DATABASE_MAX_CONNECTIONS", "32")
        .env("ZNOVEL_RATE_LIMIT_REQUESTS_PER_KEY", "0")
        .env("ZNOVEL_RATE_LIMIT_REQUESTS_PER_TENANT", "0")
        .env("ZNOVEL_RATE_LIMIT_GENERATIONS_PER_TENANT", "0")
        .env("RUST_LOG", "warn");
        if let Some(url) = database {
            c.env("DATABASE_URL", url);
        }
        match llm {
            Some(base) => {
                c.env("LLM_BASE_URL", base)
                    .env("LLM_API_KEY", "sk-bench")
                    .env("LLM_MODEL", "bench")
                    .env("VALIDATION_REVIEWER", "off");
            }
            None => {
                c.env("ZNOVEL_MODEL_PATH", model_path());
                c.env("ZNOVEL_WORKER_CONCURRENCY", "1");
            }
        }
        if let Some(prefix) = redis_prefix {
            c.env("REDIS_URL", "redis://127.0.0.1:6379")
                .env("ZNOVEL_REDIS_PREFIX", prefix);
        }
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut url, mut metrics, mut key) = (String::new(), String::new(), String::new());
        while key.is_empty() {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the server starts");
            if let Some(rest) = line.split("GraphQL at ").nth(1) {
                url = rest.split_whitespace().next().unwrap().to_owned();
                metrics = line
                    .split("metrics at ")
                    .nth(1)
                    .unwrap()
                    .trim_end_matches(')')
                    .to_owned();
            }
            if line.starts_with("znk_") {
                key = line.trim().to_owned();
            }
        }
        Self {
            child,
            url,
            metrics,
            key,
            dir,
        }
    }

    /// Resident memory of the server process, bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb * 1024
    }

    async fn gql(&self, query: &str, variables: Value) -> Value {
        let body: Value = reqwest::Client::new()
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }

    async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(&self.metrics)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// A novel with `n` chapters; their ids.
    async fn chapters(&self, n: usize) -> Vec<String> {
        let d = self
            .gql(
                "mutation { createNovel(input: { title: \"Bench\" }) { novel { id } } }",
                json!({}),
            )
            .await;
        let novel = d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned();
        let mut out = Vec::new();
        for seq in 1..=n {
            let d = self
                .gql(
                    "mutation($n: ID!, $s: Int!) { createChapter(input: { novelId: $n, seq: $s, title: \"C\" }) { chapter { id } } }",
                    json!({ "n": novel, "s": seq }),
                )
                .await;
            out.push(
                d["createChapter"]["chapter"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        out
    }

    async fn generate(&self, chapter: &str, words: usize) -> String {
        let d = self
            .gql(
                "mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id } } }",
                json!({ "i": { "chapterId": chapter, "targetWords": words } }),
            )
            .await;
        d["generateChapter"]["job"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn model_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(server: &Server, job: &str) -> Ws {
    let mut req = server
        .url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", server.key) } });
    ws.send(Message::text(init.to_string())).await.unwrap();
    loop {
        if let Some(Ok(Message::Text(t))) = ws.next().await {
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(v["type"], "connection_ack");
            break;
        }
    }
    let q = "subscription($j: ID!) { chapterStream(jobId: $j) { __typename ... on ChapterChunk { text } } }";
    let sub = json!({ "id": "1", "type": "subscribe", "payload": { "query": q, "variables": { "j": job } } });
    ws.send(Message::text(sub.to_string())).await.unwrap();
    ws
}

/// Reads until the subscription completes; the added latency of every chunk, µs.
async fn follow(mut ws: Ws, epoch: Instant) -> Vec<u64> {
    let mut out = Vec::new();
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(t) = msg else { continue };
        let now = epoch.elapsed().as_nanos();
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str() {
            Some("next") => {
                let ev = &v["payload"]["data"]["chapterStream"];
                if ev["__typename"] == "ChapterChunk" {
                    // A chunk may carry several provider chunks: the first is the oldest.
                    let sent: u128 = ev["text"]
                        .as_str()
                        .unwrap()
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    out.push(u64::try_from(now.saturating_sub(sent) / 1_000).unwrap());
                }
            }
            Some("complete") => break,
            _ => panic!("unexpected message: {t}"),
        }
    }
    out
}

struct Row {
    transport: &'static str,
    scenario: String,
    chunks: u64,
    p50: f64,
    p99: f64,
    max: f64,
    idle_kib: f64,
}

async fn run(transport: &'static str, jobs: usize, subs: usize, chunks: usize) -> Row {
    let epoch = Instant::now();
    let provider = start_provider(epoch, chunks, Duration::from_millis(10)).await;
    let prefix = format!("znovel-bench-{}", uuid::Uuid::new_v4().simple());
    let server = Server::start(
        Some(&provider.base_url),
        (transport == "Redis").then_some(prefix.as_str()),
    );
    let chapters = server.chapters(jobs).await;
    let before = server.rss();
    let mut job_ids = Vec::new();
    for c in &chapters {
        job_ids.push(server.generate(c, chunks).await);
    }
    let mut sockets = Vec::new();
    for job in &job_ids {
        for _ in 0..subs {
            sockets.push(subscribe(&server, job).await);
        }
    }
    let total = (jobs * subs) as f64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while server
        .metric(r#"znovel_subscriptions_active{field="chapterStream"}"#)
        .await
        < total
    {
        assert!(Instant::now() < deadline, "subscriptions did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = server.rss();
    let followers: Vec<_> = sockets
        .into_iter()
        .map(|ws| tokio::spawn(follow(ws, epoch)))
        .collect();
    provider.gate.send_replace(true);
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for f in followers {
        for us in f.await.unwrap() {
            hist.record(us).unwrap();
        }
    }
    if transport == "Redis" {
        cleanup_redis(&prefix);
    }
    Row {
        transport,
        scenario: format!("{jobs} job(s) × {subs} subscriber(s)"),
        chunks: hist.len(),
        p50: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99: hist.value_at_quantile(0.99) as f64 / 1000.0,
        max: hist.max() as f64 / 1000.0,
        idle_kib: (idle.saturating_sub(before)) as f64 / total / 1024.0,
    }
}

fn cleanup_redis(prefix: &str) {
    let keys = Command::new("redis-cli")
        .args(["--scan", "--pattern", &format!("{prefix}:*")])
        .output();
    if let Ok(out) = keys {
        for key in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = Command::new("redis-cli").args(["DEL", key]).output();
        }
    }
}

fn redis_up() -> bool {
    std::net::TcpStream::connect("127.0.0.1:6379").is_ok()
}

async fn local_model() -> Option<(f64, f64, i64)> {
    if !model_path().is_file() {
        return None;
    }
    let server = Server::start(None, None);
    let chapter = server.chapters(1).await.remove(0);
    let job = server.generate(&chapter, 300).await;
    let q = "query($j: ID!) { generationJob(id: $j) { status completionTokens firstTokenAt finishedAt timeToFirstTokenMs } }";
    loop {
        let d = server.gql(q, json!({ "j": job })).await;
        let j = &d["generationJob"];
        match j["status"].as_str() {
            Some("SUCCEEDED") => {
                let t =
                    |k: &str| chrono::DateTime::parse_from_rfc3339(j[k].as_str().unwrap()).unwrap();
                let secs = (t("finishedAt") - t("firstTokenAt")).num_milliseconds() as f64 / 1e3;
                let tokens = j["completionTokens"].as_i64().unwrap();
                return Some((
                    tokens as f64 / secs,
                    j["timeToFirstTokenMs"].as_f64().unwrap_or(0.0),
                    tokens,
                ));
            }
            Some("FAILED") | Some("CANCELLED") => panic!("local model job ended: {d}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// 100 `generateChapter` mutations at once, three rounds: each one's answer time, ms.
async fn burst(database: Option<&str>, workers: usize) -> Vec<f64> {
    let epoch = Instant::now();
    // Gated shut: the jobs start and wait for their first token, as real ones would.
    let provider = start_provider(epoch, 10, Duration::from_millis(10)).await;
    let server = Server::start_on(Some(&provider.base_url), None, database, workers);
    let chapters = server.chapters(300).await;
    let mut times = Vec::new();
    for round in chapters.chunks(100) {
        let started: Vec<_> = round
            .iter()
            .map(|c| {
                let (server, c) = (&server, c.clone());
                async move {
                    let t = Instant::now();
                    server.generate(&c, 50).await;
                    t.elapsed().as_secs_f64() * 1e3
                }
            })
            .collect();
        times.extend(futures_util::future::join_all(started).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    times
}

async fn bursts() {
    let pg_up = znovel_infra::testing::TestDatabase::postgres()
        .await
        .is_ok();
    if !pg_up {
        eprintln!("SKIPPED: PostgreSQL is not answering on 127.0.0.1:5432; SQLite only");
    }
    println!("\n100 `generateChapter` mutations at once (3 rounds of 100): time to answer each.\n");
    println!("| database | job workers | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for name in ["SQLite", "PostgreSQL"] {
        if name == "PostgreSQL" && !pg_up {
            continue;
        }
        for workers in [2, 100] {
            // A fresh database each time (SQLite: the server's own file).
            let pg = match name {
                "PostgreSQL" => Some(
                    znovel_infra::testing::TestDatabase::postgres()
                        .await
                        .unwrap(),
                ),
                _ => None,
            };
            let mut t = burst(pg.as_ref().map(|d| d.url.as_str()), workers).await;
            t.sort_by(f64::total_cmp);
            let q = |p: f64| t[((t.len() as f64 * p).ceil() as usize).clamp(1, t.len()) - 1];
            println!(
                "| {name} | {workers} | {:.0} | {:.0} | {:.0} |",
                q(0.5),
                q(0.99),
                t[t.len() - 1]
            );
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--burst") {
        return bursts().await;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (chunks, many) = if quick { (50, 100) } else { (200, 1000) };
    let mut transports = vec!["in-process"];
    if redis_up() {
        transports.push("Redis");
    } else {
        eprintln!("SKIPPED: Redis is not answering on 127.0.0.1:6379; in-process only");
    }
    let mut rows = Vec::new();
    for t in transports {
        for (jobs, subs) in [(1, 1), (1, many), (100, 1)] {
            eprintln!("running: {t}, {jobs} job(s) × {subs} subscriber(s)");
            rows.push(run(t, jobs, subs, chunks).await);
        }
    }
    println!(
        "\nChunks of {chunks} per job, one every 10 ms. Added latency = frame at the client − chunk sent by the provider.\n"
    );
    println!(
        "| transport | scenario | chunks received | p50 ms | p99 ms | max ms | RSS per idle subscriber |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1} KiB |",
            r.transport, r.scenario, r.chunks, r.p50, r.p99, r.max, r.idle_kib
        );
    }
    match local_model().await {
        Some((tps, ttft, tokens)) => println!(
            "\nLocal model (SmolLM2-135M Q4_1, through the whole pipeline): {tokens} tokens at {tps:.1} tokens/s after the first; first token {ttft:.0} ms after the job started."
        ),
        None => eprintln!("SKIPPED: local model file missing (run scripts/fetch-models.sh)"),
    }
}
