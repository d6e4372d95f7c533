//! Live-generation latency and memory, end to end through the real server binary.
//!
//! `cargo bench -p znovel --bench chunk_latency` (add `-- --quick` for a short run,
//! `-- --only 1x1000` for one scenario (repeatable), `-- --no-redis` for in-process only,
//! `-- --interval-ms 10` for another chunk rate, `-- --provider-nagle` to leave Nagle's
//! algorithm on the fake provider's socket; `ZNOVEL_BENCH_BIN=path` runs another build of
//! the server).
//!
//! A fake OpenAI-compatible provider in this process streams chunks whose text is the
//! time they left it (nanoseconds since a shared start), 200 per job at 50 a second;
//! `znovel serve` runs as a child process (the release binary) and
//! `graphql-transport-ws` clients in this process follow `chapterStream`. For each chunk a
//! client receives, the added latency is "frame arrived" minus "chunk left the provider":
//! the server's whole path — SSE parsing, the job runner, the token stream (in-process or
//! Redis Streams), the subscription, the WebSocket frame. Scenarios (jobs × subscribers):
//! 1 × 1, 1 × 1,000, 100 × 10; each with the embedded in-process queue and streams and
//! with Redis (`REDIS_URL`, when Redis answers on 127.0.0.1:6379), and each against the
//! bare baseline (`chunk_latency/baseline.rs`: a minimal WebSocket broadcast server, also a
//! child process, reading the same provider and sending the same frames to the same
//! clients), so every figure has a ratio to what this machine can do. Frames per second
//! = frames received ÷ (last frame's arrival − first chunk's departure). Before the provider
//! sends its first chunk, the server's RSS is read with every subscriber connected and
//! idle: the memory one idle subscriber costs. Finally, when the embedded model file is
//! present, the local model writes a chapter and its tokens per second are reported.
//! Prints a Markdown table (the one in `docs/benchmarks.md`).
//!
//! `-- --storm`: instead, the reconnect storm: 2,000 subscribers of 20 jobs drop their
//! connections at once in the middle of the stream and resume with `after`: chunks lost
//! or duplicated, failed connection attempts, and the time from the drop to each one's
//! first chunk after resuming.
//!
//! `-- --idle N`: instead, N idle subscribers (19,000 fits under an open-file limit of
//! 20,000): the server's RSS per subscriber and what it gives back after they leave.
//!
//! `-- --burst`: instead, 100 `generateChapter` mutations sent at once (three rounds, each
//! on 100 fresh chapters), on SQLite and on PostgreSQL (a fresh database on
//! 127.0.0.1:5432): the time each takes to be answered, p50/p99/max — with the server's
//! default 2 job workers, and with 100 (every job starting at once beside the burst).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "chunk_latency/baseline.rs"]
mod baseline;

use axum::body::Body;
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
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
    // A streaming endpoint sends each event as it is written (TCP_NODELAY). With Nagle's
    // algorithm on (`--provider-nagle`), the second event waits for the ACK of the first,
    // which the server's kernel may delay by up to 40 ms.
    let nagle = std::env::args().any(|a| a == "--provider-nagle");
    let listener = listener.tap_io(move |tcp| {
        let _ = tcp.set_nodelay(!nagle);
    });
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
        let mut c = Command::new(bin());
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
        self.status_kib("VmRSS:") * 1024
    }

    /// The most resident memory the server process has had, bytes.
    fn peak_rss(&self) -> u64 {
        self.status_kib("VmHWM:") * 1024
    }

    /// Waits until `n` `chapterStream` subscriptions run (at most `within`).
    async fn await_subscriptions(&self, n: f64, within: Duration) {
        let deadline = Instant::now() + within;
        while self
            .metric(r#"znovel_subscriptions_active{field="chapterStream"}"#)
            .await
            < n
        {
            assert!(Instant::now() < deadline, "subscriptions did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no WebSocket is open (at most `within`), then [`RSS_SETTLE`]: the
    /// allocator returns freed memory on its own schedule.
    async fn await_clients_gone(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.metric("websocket_connections_active").await > 0.0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(RSS_SETTLE).await;
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
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

/// A `graphql-transport-ws` client of `url` following `job`'s `chapterStream`.
async fn subscribe(url: &str, key: &str, job: &str) -> Ws {
    let q = "subscription($j: ID!) { chapterStream(jobId: $j) { __typename ... on ChapterChunk { text } } }";
    open_subscription(url, key, q, json!({ "j": job }))
        .await
        .unwrap()
}

/// Connects to `url` over `graphql-transport-ws`, authenticates with `key` and starts
/// `query` (operation id "1"); an error when the server cannot be reached or refuses.
async fn open_subscription(
    url: &str,
    key: &str,
    query: &str,
    variables: Value,
) -> Result<Ws, String> {
    let mut req = url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| e.to_string())?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {key}") } });
    ws.send(Message::text(init.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("connection_ack") => break,
            Some(Ok(Message::Text(t))) => return Err(format!("no ack: {t}")),
            Some(Ok(_)) => {}
            other => return Err(format!("no ack: {other:?}")),
        }
    }
    let sub = json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } });
    ws.send(Message::text(sub.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// What one client saw: the added latency of every chunk (µs), and when (ns since the
/// epoch) the oldest of them left the provider and the last one arrived.
struct Followed {
    latencies: Vec<u64>,
    first_sent: u128,
    last_arrived: u128,
}

/// Reads until the subscription completes.
async fn follow(mut ws: Ws, epoch: Instant) -> Followed {
    let mut out = Followed {
        latencies: Vec::new(),
        first_sent: u128::MAX,
        last_arrived: 0,
    };
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
                    out.latencies
                        .push(u64::try_from(now.saturating_sub(sent) / 1_000).unwrap());
                    out.first_sent = out.first_sent.min(sent);
                    out.last_arrived = now;
                }
            }
            Some("complete") => break,
            _ => panic!("unexpected message: {t}"),
        }
    }
    out
}

struct Row {
    server: &'static str,
    jobs: usize,
    subs: usize,
    chunks: u64,
    p50: f64,
    p99: f64,
    max: f64,
    /// The slowest subscriber's latency of chunks 1, 2 and 3, ms.
    first: [f64; 3],
    /// p99 of the frames after each subscriber's first [`START_CHUNKS`], ms: the steady
    /// state, without the start (when every job's first chunks leave at once).
    p99_steady: f64,
    /// CPU time the server process used (user + system, all threads) from the first
    /// chunk to the last subscription's end (the jobs' completion included), seconds.
    cpu_s: f64,
    frames_per_s: f64,
    idle_kib: Option<f64>,
    /// The server's RSS before the jobs, its peak, and its RSS once every subscriber has
    /// gone, MiB.
    rss_mib: Option<(f64, f64, f64)>,
    /// Attempts beyond the first, summed over the jobs: a job handed back for another
    /// attempt resumes after its streamed chunks and asks the provider to continue, so
    /// its subscribers receive more frames than one attempt's.
    retries: Option<u64>,
}

/// A baseline row's figures the rows of its scenario are divided by.
#[derive(Clone, Copy)]
struct Reference {
    p99: f64,
    frames_per_s: f64,
    p99_steady: f64,
    cpu_s: f64,
}

impl Row {
    fn reference(&self) -> Reference {
        Reference {
            p99: self.p99,
            frames_per_s: self.frames_per_s,
            p99_steady: self.p99_steady,
            cpu_s: self.cpu_s,
        }
    }
}

/// How many of a subscriber's first frames [`Row::p99_steady`] leaves out.
const START_CHUNKS: usize = 10;

/// CPU time process `pid` has used so far (user + system, all its threads), seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name (in parentheses, may hold spaces): field 3 onwards; utime
    // and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// Opens the provider's gate, follows every socket to its end and sums up; `pid` is the
/// server's process.
async fn measure(
    server: &'static str,
    (jobs, subs): (usize, usize),
    sockets: Vec<Ws>,
    provider: &Provider,
    epoch: Instant,
    pid: u32,
) -> Row {
    let followers: Vec<_> = sockets
        .into_iter()
        .map(|ws| tokio::spawn(follow(ws, epoch)))
        .collect();
    let cpu_before = cpu_seconds(pid);
    provider.gate.send_replace(true);
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let mut steady = Histogram::<u64>::new(3).unwrap();
    let (mut first, mut last) = (u128::MAX, 0);
    let mut first3 = [0f64; 3];
    for f in followers {
        let f = f.await.unwrap();
        for (slot, us) in first3.iter_mut().zip(&f.latencies) {
            *slot = slot.max(*us as f64 / 1000.0);
        }
        for (i, us) in f.latencies.into_iter().enumerate() {
            hist.record(us).unwrap();
            if i >= START_CHUNKS {
                steady.record(us).unwrap();
            }
        }
        first = first.min(f.first_sent);
        last = last.max(f.last_arrived);
    }
    let cpu_s = cpu_seconds(pid) - cpu_before;
    let secs = last.saturating_sub(first) as f64 / 1e9;
    Row {
        server,
        jobs,
        subs,
        chunks: hist.len(),
        p50: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99: hist.value_at_quantile(0.99) as f64 / 1000.0,
        max: hist.max() as f64 / 1000.0,
        first: first3,
        p99_steady: steady.value_at_quantile(0.99) as f64 / 1000.0,
        cpu_s,
        frames_per_s: hist.len() as f64 / secs.max(1e-9),
        idle_kib: None,
        rss_mib: None,
        retries: None,
    }
}

/// The provider's chunk interval: 50 tokens a second (`--interval-ms N` to change).
fn interval() -> Duration {
    let args: Vec<String> = std::env::args().collect();
    let ms = args
        .windows(2)
        .find(|w| w[0] == "--interval-ms")
        .map_or(20, |w| w[1].parse().expect("--interval-ms N"));
    Duration::from_millis(ms)
}

/// The server binary: this build's, or `ZNOVEL_BENCH_BIN` (to compare two builds in one
/// run).
fn bin() -> String {
    std::env::var("ZNOVEL_BENCH_BIN").unwrap_or_else(|_| BIN.to_owned())
}

async fn run(transport: &'static str, jobs: usize, subs: usize, chunks: usize) -> Row {
    let epoch = Instant::now();
    let provider = start_provider(epoch, chunks, interval()).await;
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
            sockets.push(subscribe(&server.url, &server.key, job).await);
        }
    }
    let total = (jobs * subs) as f64;
    server
        .await_subscriptions(total, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = server.rss();
    let name = if transport == "Redis" {
        "znovel, Redis"
    } else {
        "znovel, in-process"
    };
    let pid = server.child.id();
    let mut row = measure(name, (jobs, subs), sockets, &provider, epoch, pid).await;
    if transport == "Redis" {
        cleanup_redis(&prefix);
    }
    row.idle_kib = Some((idle.saturating_sub(before)) as f64 / total / 1024.0);
    let mut retries = 0;
    for job in &job_ids {
        let d = server
            .gql(
                "query($id: ID!) { node(id: $id) { ... on GenerationJob { attempts } } }",
                json!({ "id": job }),
            )
            .await;
        retries += d["node"]["attempts"].as_u64().unwrap().saturating_sub(1);
    }
    row.retries = Some(retries);
    // Memory given back: every subscriber has disconnected; what the process still holds
    // a few seconds later (the allocator returns freed memory on its own schedule).
    server.await_clients_gone(Duration::from_secs(30)).await;
    row.rss_mib = Some((mib(before), mib(server.peak_rss()), mib(server.rss())));
    row
}

/// `b` bytes in MiB.
fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// How long after the last subscriber left the server's RSS is read again.
const RSS_SETTLE: Duration = Duration::from_secs(5);

/// The bare baseline (`chunk_latency/baseline.rs`), a child process like the server.
struct BaselineServer {
    child: Child,
    url: String,
}

impl Drop for BaselineServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn run_baseline(jobs: usize, subs: usize, chunks: usize) -> Row {
    let epoch = Instant::now();
    let provider = start_provider(epoch, chunks, interval()).await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--baseline-server", &provider.base_url])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().strip_prefix("listening on ").unwrap();
    let baseline = BaselineServer {
        child,
        url: format!("http://{addr}"),
    };
    let mut sockets = Vec::new();
    for job in 0..jobs {
        for _ in 0..subs {
            let url = format!("{}/graphql", baseline.url);
            sockets.push(subscribe(&url, "-", &format!("job-{job}")).await);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: usize = reqwest::get(format!("{}/subscribed", baseline.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .parse()
            .unwrap();
        if n >= jobs * subs {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "baseline subscriptions did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = baseline.child.id();
    measure(
        "bare baseline",
        (jobs, subs),
        sockets,
        &provider,
        epoch,
        pid,
    )
    .await
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

/// A `graphql-transport-ws` client following `job`'s chunks (with their `seq`) after
/// `after`; an error when the server cannot be reached or refuses.
async fn subscribe_after(url: &str, key: &str, job: &str, after: u64) -> Result<Ws, String> {
    let q = "subscription($j: ID!, $a: Int) { chapterStream(jobId: $j, after: $a) { __typename ... on ChapterChunk { seq text } } }";
    open_subscription(url, key, q, json!({ "j": job, "a": after })).await
}

/// What one subscriber of the storm saw.
struct Stormed {
    /// Every chunk seq received, in order of arrival.
    seqs: Vec<u64>,
    /// From dropping its connection to the first chunk after resuming, ms.
    recovery_ms: f64,
    /// Connection attempts that failed before one succeeded.
    retries: u32,
}

/// A frame of [`subscribe_after`]'s subscription: `Some(true)` for a chunk (its seq added
/// to `seqs`), `Some(false)` for another event, `None` for `complete`. An error is
/// printed (the storm reports them).
fn next_seq(t: &str, seqs: &mut Vec<u64>) -> Option<bool> {
    let v: Value = serde_json::from_str(t).unwrap();
    if let Some(e) = v["payload"]["errors"].get(0) {
        eprintln!(
            "subscription error: {} {}",
            e["extensions"]["code"], e["message"]
        );
    }
    match v["type"].as_str() {
        Some("next") => {
            let ev = &v["payload"]["data"]["chapterStream"];
            if ev["__typename"] == "ChapterChunk" {
                seqs.push(ev["seq"].as_u64().unwrap());
                return Some(true);
            }
            Some(false)
        }
        Some("complete") => None,
        _ => panic!("unexpected message: {t}"),
    }
}

/// Follows `job`; when `storm` turns true, drops the connection at once (no close
/// handshake, as a crashed client or a dead load balancer does), reconnects and resumes
/// with `after` = the last seq it saw, then follows to the end.
async fn storm_follow(
    url: String,
    key: String,
    job: String,
    mut storm: watch::Receiver<bool>,
) -> Stormed {
    let mut ws = subscribe_after(&url, &key, &job, 0).await.unwrap();
    let mut seqs = Vec::new();
    // Before the storm.
    loop {
        tokio::select! {
            _ = storm.wait_for(|s| *s) => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if next_seq(&t, &mut seqs).is_none() {
                        panic!("the job ended before the storm");
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("connection lost before the storm: {other:?}"),
            },
        }
    }
    let dropped = Instant::now();
    drop(ws);
    let after = seqs.last().copied().unwrap_or(0);
    let mut retries = 0;
    let mut ws = loop {
        match subscribe_after(&url, &key, &job, after).await {
            Ok(ws) => break ws,
            Err(e) => {
                if retries == 0 {
                    eprintln!("reconnect failed: {e}");
                }
                retries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let mut recovery_ms = None;
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(t) = msg else { continue };
        match next_seq(&t, &mut seqs) {
            Some(true) => {
                recovery_ms.get_or_insert(dropped.elapsed().as_secs_f64() * 1e3);
            }
            Some(false) => {}
            None => break,
        }
    }
    Stormed {
        seqs,
        recovery_ms: recovery_ms.unwrap_or(f64::NAN),
        retries,
    }
}

/// The reconnect storm: `jobs` × `subs` subscribers follow jobs of 600 chunks (12 s);
/// 3 s in, every one of them drops its connection at once and resumes with `after`.
async fn storm(jobs: usize, subs: usize) {
    let chunks = 600;
    let epoch = Instant::now();
    let provider = start_provider(epoch, chunks, Duration::from_millis(20)).await;
    let server = Server::start(Some(&provider.base_url), None);
    let chapters = server.chapters(jobs).await;
    let mut job_ids = Vec::new();
    for c in &chapters {
        job_ids.push(server.generate(c, chunks).await);
    }
    let (storm_tx, storm_rx) = watch::channel(false);
    let mut followers = Vec::new();
    for job in &job_ids {
        for _ in 0..subs {
            followers.push(tokio::spawn(storm_follow(
                server.url.clone(),
                server.key.clone(),
                job.clone(),
                storm_rx.clone(),
            )));
        }
    }
    let total = (jobs * subs) as f64;
    server
        .await_subscriptions(total, Duration::from_secs(120))
        .await;
    provider.gate.send_replace(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    eprintln!("storm: {total} subscribers drop and resume at once");
    storm_tx.send_replace(true);
    let (mut lost, mut duplicated, mut retries) = (0usize, 0usize, 0u32);
    let mut recovery = Vec::new();
    for f in followers {
        let s = f.await.unwrap();
        let mut seen = std::collections::HashSet::new();
        duplicated += s.seqs.iter().filter(|q| !seen.insert(**q)).count();
        let last = s.seqs.iter().copied().max().unwrap_or(0);
        // Every seq up to the job's last one, none missing.
        lost += (1..=last).filter(|q| !seen.contains(q)).count();
        lost += (chunks as u64).saturating_sub(last) as usize;
        retries += s.retries;
        recovery.push(s.recovery_ms);
    }
    // A subscriber whose resumed subscription brought no chunk did not resume.
    let stuck = recovery.iter().filter(|r| !r.is_finite()).count();
    recovery.retain(|r| r.is_finite());
    recovery.sort_by(f64::total_cmp);
    if recovery.is_empty() {
        recovery.push(f64::NAN);
    }
    let q = |p: f64| {
        recovery[((recovery.len() as f64 * p).ceil() as usize).clamp(1, recovery.len()) - 1]
    };
    println!(
        "\nReconnect storm: {jobs} jobs × {subs} subscribers, {chunks} chunks each at 50/s; all drop their connection 3 s in and resume with `after`.\n"
    );
    println!(
        "| subscribers | chunks lost | chunks duplicated | failed connection attempts | did not resume | resumed: p50 ms | p99 ms | all resumed (max) ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {total} | {lost} | {duplicated} | {retries} | {stuck} | {:.0} | {:.0} | {:.0} |",
        q(0.5),
        q(0.99),
        recovery[recovery.len() - 1]
    );
}

/// `n` idle subscribers (of 20 jobs waiting for their first token: the provider is held
/// shut until the end) on one server: the
/// server's RSS per subscriber, measured twice a poll period apart (every follower checks
/// its job's status each `FOLLOW_POLL`), and what it gives back once they have gone.
async fn idle(n: usize) {
    let jobs = 20;
    let epoch = Instant::now();
    let provider = start_provider(epoch, 10, Duration::from_millis(20)).await;
    let server = Server::start(Some(&provider.base_url), None);
    let chapters = server.chapters(jobs).await;
    let mut job_ids = Vec::new();
    for c in &chapters {
        job_ids.push(server.generate(c, 50).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss();
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let job = &job_ids[i % jobs];
        sockets.push(
            subscribe_after(&server.url, &server.key, job, 0)
                .await
                .unwrap(),
        );
    }
    server
        .await_subscriptions(n as f64, Duration::from_secs(300))
        .await;
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle1 = server.rss();
    // Past a status poll of every follower.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let idle2 = server.rss();
    let peak = server.peak_rss();
    drop(sockets);
    server.await_clients_gone(Duration::from_secs(60)).await;
    let after = server.rss();
    let kib = |rss: u64| rss.saturating_sub(before) as f64 / n as f64 / 1024.0;
    println!(
        "\n{n} idle subscribers of {jobs} jobs on one server (connected in {connect_s:.1} s).\n"
    );
    println!(
        "| subscribers | RSS per subscriber, connected | after a status poll | RSS before → peak → 5 s after they left |"
    );
    println!("|---:|---:|---:|---:|");
    println!(
        "| {n} | {:.1} KiB | {:.1} KiB | {:.0} → {:.0} → {:.0} MiB |",
        kib(idle1),
        kib(idle2),
        mib(before),
        mib(peak),
        mib(after)
    );
    provider.gate.send_replace(true);
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--baseline-server") {
        return baseline::serve(args[i + 1].clone()).await;
    }
    if args.iter().any(|a| a == "--burst") {
        return bursts().await;
    }
    if args.iter().any(|a| a == "--storm") {
        return storm(20, 100).await;
    }
    if let Some(w) = args.windows(2).find(|w| w[0] == "--idle") {
        return idle(w[1].parse().expect("--idle N")).await;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (chunks, many, jobs) = if quick {
        (50, 100, 10)
    } else {
        (200, 1000, 100)
    };
    // `--only 1x1000` (repeatable): just those scenarios, no local model run.
    let only: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--only")
        .map(|w| w[1].as_str())
        .collect();
    let mut transports = vec!["in-process"];
    if args.iter().any(|a| a == "--no-redis") {
        eprintln!("SKIPPED: Redis rows (--no-redis)");
    } else if redis_up() {
        transports.push("Redis");
    } else {
        eprintln!("SKIPPED: Redis is not answering on 127.0.0.1:6379; in-process only");
    }
    let mut rows = Vec::new();
    let scenarios = [(1, 1), (1, many), (jobs, 10)];
    let scenarios: Vec<_> = if only.is_empty() {
        scenarios.to_vec()
    } else {
        only.iter()
            .map(|o| {
                let (j, s) = o.split_once('x').expect("--only JOBSxSUBSCRIBERS");
                (j.parse().unwrap(), s.parse().unwrap())
            })
            .collect()
    };
    for (jobs, subs) in scenarios {
        eprintln!("running: bare baseline, {jobs} job(s) × {subs} subscriber(s)");
        let base = run_baseline(jobs, subs, chunks).await;
        for t in &transports {
            eprintln!("running: {t}, {jobs} job(s) × {subs} subscriber(s)");
            let row = run(t, jobs, subs, chunks).await;
            rows.push((row, base.reference()));
        }
        let reference = base.reference();
        rows.push((base, reference));
    }
    println!(
        "\n{chunks} chunks per job, one every {} ms. Added latency = frame at the client − chunk sent by the provider; frames/s = frames received ÷ (last arrival − first chunk sent); p99 after chunk {START_CHUNKS} leaves out each subscriber's first {START_CHUNKS} frames; CPU s = the server process's user + system time from the first chunk to the last subscription's end.\n",
        interval().as_millis()
    );
    println!(
        "| scenario | server | chunks received | p50 ms | p99 ms | max ms | chunks 1, 2, 3 ms | frames/s | p99 ÷ baseline | frames/s ÷ baseline | p99 after chunk {START_CHUNKS} ms (÷ baseline) | CPU s (÷ baseline) | RSS per idle subscriber | RSS before → peak → 5 s after the last left | job retries |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (r, base) in &rows {
        let first = r
            .first
            .iter()
            .map(|ms| format!("{ms:.1}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "| {} × {} | {} | {} | {:.2} | {:.2} | {:.2} | {first} | {:.0} | {:.2} | {:.2} | {:.2} ({:.2}) | {:.2} ({:.2}) | {} | {} | {} |",
            r.jobs,
            r.subs,
            r.server,
            r.chunks,
            r.p50,
            r.p99,
            r.max,
            r.frames_per_s,
            r.p99 / base.p99,
            r.frames_per_s / base.frames_per_s,
            r.p99_steady,
            r.p99_steady / base.p99_steady,
            r.cpu_s,
            r.cpu_s / base.cpu_s.max(0.01),
            r.idle_kib.map_or("—".to_owned(), |k| format!("{k:.1} KiB")),
            r.rss_mib
                .map_or("—".to_owned(), |(before, peak, after)| format!(
                    "{before:.0} → {peak:.0} → {after:.0} MiB ({:.0} % of the growth given back)",
                    100.0 * (peak - after) / (peak - before).max(1e-9)
                )),
            r.retries.map_or("—".to_owned(), |n| n.to_string()),
        );
    }
    if !only.is_empty() {
        return;
    }
    match local_model().await {
        Some((tps, ttft, tokens)) => println!(
            "\nLocal model (SmolLM2-135M Q4_1, through the whole pipeline): {tokens} tokens at {tps:.1} tokens/s after the first; first token {ttft:.0} ms after the job started."
        ),
        None => eprintln!("SKIPPED: local model file missing (run scripts/fetch-models.sh)"),
    }
}
