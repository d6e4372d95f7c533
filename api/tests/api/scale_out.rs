//! Scale-out with real processes on the real Redis and PostgreSQL: `znovel serve`
//! processes and `znovel worker` processes share one database and one Redis (under a key
//! prefix of their own). A client on process B follows a job that a worker in process A
//! runs; a client that reconnects with `after: k` gets exactly the chunks after k; a
//! worker process killed with SIGKILL mid-chapter is replaced by another that reclaims
//! the job, resumes after the chunks already streamed, and stores the chapter once.
//! The language model is a fake OpenAI-compatible server in this test process, which the
//! child processes reach over HTTP.

use futures_util::SinkExt;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use znovel_infra::llm::testing::{FakeOpenAi, FakeStream};
use znovel_infra::testing::TestDatabase;

use crate::websocket::{Ws, next_json};

const BIN: &str = env!("CARGO_BIN_EXE_znovel");

/// What every process of one deployment shares.
pub(crate) struct Cluster {
    db: TestDatabase,
    redis: String,
    prefix: String,
    llm: String,
    dir: std::path::PathBuf,
}

/// A child process, killed on drop.
pub(crate) struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    url: Option<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no line containing {needle:?} within 60 s"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub(crate) fn url(&self) -> &str {
        self.url.as_deref().unwrap()
    }

    /// SIGKILL: no hand-back, no clean-up; its deliveries stay pending in the queue.
    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Cluster {
    pub(crate) async fn new(llm: &FakeOpenAi) -> Self {
        Self::with_redis(llm, "redis://127.0.0.1:6379").await
    }

    /// A deployment on the Redis at `redis` (a private server a fault test restarts).
    pub(crate) async fn with_redis(llm: &FakeOpenAi, redis: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("znovel-scale-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            db: TestDatabase::postgres().await.unwrap(),
            redis: redis.to_owned(),
            prefix: format!("znovel-test-{}", uuid::Uuid::new_v4().simple()),
            llm: llm.base_url(),
            dir,
        }
    }

    /// A `znovel` command with the shared configuration. `model`: whether this process
    /// reaches the language model (else it has none: it cannot run jobs).
    fn command(&self, name: &str, model: bool) -> Command {
        let data = self.dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.db.url)
            .env("REDIS_URL", &self.redis)
            .env("ZNOVEL_REDIS_PREFIX", &self.prefix)
            .env("ZNOVEL_DATA_DIR", &data)
            .env("ZNOVEL_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .env("ZNOVEL_JOB_VISIBILITY_TIMEOUT_SECS", "2")
            .env("ZNOVEL_WORKER_CONCURRENCY", "1");
        if model {
            c.env("LLM_BASE_URL", &self.llm)
                .env("LLM_API_KEY", "sk-test")
                .env("LLM_MODEL", "primary")
                // The scripted fake answers prose to every request.
                .env("VALIDATION_REVIEWER", "off");
        } else {
            c.env("ZNOVEL_MODEL_PATH", data.join("no-model.gguf"));
        }
        c.stdout(Stdio::piped()).stderr(Stdio::null());
        c
    }

    fn spawn(mut cmd: Command, ready: &str) -> Proc {
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut p = Proc {
            child,
            lines: rx,
            url: None,
        };
        let line = p.wait_for(ready);
        p.url = line
            .split("GraphQL at ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_owned);
        p
    }

    /// `znovel serve` on OS-chosen ports. `bootstrap`: this one creates the local tenant
    /// and prints its admin key (returned).
    pub(crate) fn serve(&self, name: &str, model: bool, bootstrap: bool) -> (Proc, Option<String>) {
        let mut c = self.command(name, model);
        c.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env("ZNOVEL_BOOTSTRAP", if bootstrap { "true" } else { "false" });
        let mut p = Self::spawn(c, "GraphQL at ");
        let key = bootstrap.then(|| {
            p.wait_for("Admin API key");
            p.wait_for("znk_").trim().to_owned()
        });
        (p, key)
    }

    /// The URL of the deployment's database.
    pub(crate) fn database_url(&self) -> &str {
        &self.db.url
    }

    /// `znovel worker`.
    pub(crate) fn worker(&self, name: &str) -> Proc {
        let mut c = self.command(name, true);
        c.args([
            "worker",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ]);
        Self::spawn(c, "job-worker is ready")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) async fn gql(url: &str, key: &str, query: &str, variables: Value) -> Value {
    let body: Value = reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
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

const STREAM: &str = r#"subscription($j: ID!, $a: Int) { chapterStream(jobId: $j, after: $a) {
    __typename
    ... on ChapterChunk { seq text }
    ... on ChapterCompleted { seq chapter { content version } job { status attempts } }
    ... on ChapterFailed { seq status message }
} }"#;

pub(crate) async fn subscribe(url: &str, key: &str, job: &str, after: Option<i64>) -> Ws {
    let mut req = url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {key}") } }).to_string()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    ws.send(Message::text(
        json!({ "id": "s", "type": "subscribe", "payload": { "query": STREAM, "variables": { "j": job, "a": after } } }).to_string(),
    ))
    .await
    .unwrap();
    ws
}

/// The next event of the subscription: `Ok(chunk)` or `Err(final event)`.
pub(crate) async fn next_event(ws: &mut Ws) -> Result<(i64, String), Value> {
    let msg = tokio::time::timeout(Duration::from_secs(30), next_json(ws))
        .await
        .expect("the stream progresses");
    assert_eq!(msg["type"], "next", "{msg}");
    let ev = &msg["payload"]["data"]["chapterStream"];
    if ev["__typename"] == "ChapterChunk" {
        Ok((
            ev["seq"].as_i64().unwrap(),
            ev["text"].as_str().unwrap().to_owned(),
        ))
    } else {
        Err(ev.clone())
    }
}

async fn rest(ws: &mut Ws) -> (Vec<(i64, String)>, Value) {
    let mut chunks = Vec::new();
    loop {
        match next_event(ws).await {
            Ok(c) => chunks.push(c),
            Err(done) => return (chunks, done),
        }
    }
}

pub(crate) fn words(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i % 12 == 11 {
                format!("word{i}. ")
            } else {
                format!("word{i} ")
            }
        })
        .collect()
}

pub(crate) async fn novel_and_chapter(url: &str, key: &str) -> String {
    let n = gql(
        url,
        key,
        "mutation { createNovel(input: { title: \"Scale\" }) { novel { id } } }",
        json!({}),
    )
    .await;
    let novel = n["createNovel"]["novel"]["id"].as_str().unwrap().to_owned();
    let c = gql(
        url,
        key,
        "mutation($n: ID!) { createChapter(input: { novelId: $n, seq: 1, title: \"One\" }) { chapter { id } } }",
        json!({ "n": novel }),
    )
    .await;
    c["createChapter"]["chapter"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn generate(url: &str, key: &str, chapter: &str, words: i64) -> String {
    let d = gql(
        url,
        key,
        "mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id status } } }",
        json!({ "i": { "chapterId": chapter, "targetWords": words } }),
    )
    .await;
    d["generateChapter"]["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn assert_consecutive(chunks: &[(i64, String)], from: i64) {
    let seqs: Vec<i64> = chunks.iter().map(|c| c.0).collect();
    let want: Vec<i64> = (from..from + chunks.len() as i64).collect();
    assert_eq!(seqs, want, "no gap, no duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_process_follows_a_job_run_by_another() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script(
        "primary",
        FakeStream::new(words(60)).interval(Duration::from_millis(20)),
    );
    let cluster = Cluster::new(&fake).await;
    // B: API only (no model, so it runs no jobs). A: API and workers.
    let (b, key) = cluster.serve("b", false, true);
    let key = key.unwrap();
    let (_a, _) = cluster.serve("a", true, false);
    let chapter = novel_and_chapter(b.url(), &key).await;
    let job = generate(b.url(), &key, &chapter, 60).await;

    let mut ws = subscribe(b.url(), &key, &job, None).await;
    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(next_event(&mut ws).await.expect("a chunk"));
    }
    drop(ws); // the client's connection drops after chunk 5 ...
    let mut again = subscribe(b.url(), &key, &job, Some(5)).await; // ... and it resumes
    let (rest_chunks, done) = rest(&mut again).await;
    assert_consecutive(&first, 1);
    assert_consecutive(&rest_chunks, 6);
    assert_eq!(done["__typename"], "ChapterCompleted", "{done}");
    let streamed: String = first
        .iter()
        .chain(&rest_chunks)
        .map(|c| c.1.as_str())
        .collect();
    assert_eq!(done["chapter"]["content"], streamed.as_str());
    assert_eq!(
        fake.requests_for("primary").len(),
        1,
        "one model call, in A"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_chapter_is_replaced_and_the_chapter_is_stored_once() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    // The first attempt streams slowly (it is killed part-way); the resumed attempt
    // gets the continuation at once.
    fake.script(
        "primary",
        FakeStream::new(words(120)).interval(Duration::from_millis(100)),
    );
    fake.script("primary", FakeStream::new(words(120)));
    let cluster = Cluster::new(&fake).await;
    let (api, key) = cluster.serve("api", false, true);
    let key = key.unwrap();
    let mut doomed = cluster.worker("w1");
    let chapter = novel_and_chapter(api.url(), &key).await;
    let version_query = "query($c: ID!) { chapter(id: $c) { version } }";
    let before =
        gql(api.url(), &key, version_query, json!({ "c": chapter })).await["chapter"]["version"]
            .as_i64()
            .unwrap();
    let job = generate(api.url(), &key, &chapter, 100).await;
    let mut ws = subscribe(api.url(), &key, &job, None).await;
    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(next_event(&mut ws).await.expect("a chunk"));
    }
    // SIGKILL: no hand-back, no clean-up; the delivery stays pending in the group.
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    let _replacement = cluster.worker("w2");
    let (more, done) = rest(&mut ws).await;
    seen.extend(more);
    assert_eq!(done["__typename"], "ChapterCompleted", "{done}");
    assert_consecutive(&seen, 1);
    let streamed: String = seen.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        done["chapter"]["content"],
        streamed.as_str(),
        "stored == every chunk once"
    );
    assert_eq!(done["job"]["attempts"], 2, "{done}");
    assert_eq!(
        fake.requests_for("primary").len(),
        2,
        "the replacement continued; it did not start over"
    );
    // Stored once: one generation revision, one version more.
    let d = gql(
        api.url(),
        &key,
        "query($c: ID!) { chapter(id: $c) { version content revisions(first: 10) { edges { node { version source } } } } }",
        json!({ "c": chapter }),
    )
    .await;
    assert_eq!(d["chapter"]["version"], before + 1, "{d}");
    let generated: Vec<&Value> = d["chapter"]["revisions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["source"] == "GENERATION")
        .collect();
    assert_eq!(generated.len(), 1, "{d}");
}

/// A deployment (an API process, a worker process) in the middle of a chapter — 200
/// words, one every 100 ms — and a subscriber of it on the API process that has its
/// first chunk.
struct MidChapter {
    fake: FakeOpenAi,
    cluster: Cluster,
    api: Proc,
    _worker: Proc,
    key: String,
    chapter: String,
    job: String,
    ws: Ws,
}

async fn mid_chapter() -> MidChapter {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script(
        "primary",
        FakeStream::new(words(200)).interval(Duration::from_millis(100)),
    );
    let cluster = Cluster::new(&fake).await;
    let (api, key) = cluster.serve("api", false, true);
    let key = key.unwrap();
    let _worker = cluster.worker("w");
    let chapter = novel_and_chapter(api.url(), &key).await;
    let job = generate(api.url(), &key, &chapter, 150).await;
    let mut ws = subscribe(api.url(), &key, &job, None).await;
    next_event(&mut ws).await.expect("a first chunk");
    MidChapter {
        fake,
        cluster,
        api,
        _worker,
        key,
        chapter,
        job,
        ws,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_through_one_process_stops_the_model_in_another() {
    // Every field bound: one left to `..` would be dropped here (the database, a process).
    let MidChapter {
        fake,
        cluster: _cluster,
        api,
        _worker,
        key,
        chapter,
        job,
        mut ws,
    } = mid_chapter().await;
    let d = gql(
        api.url(),
        &key,
        "mutation($j: ID!) { cancelGeneration(input: { jobId: $j }) { job { status } } }",
        json!({ "j": job }),
    )
    .await;
    assert_eq!(d["cancelGeneration"]["job"]["status"], "CANCELLED");
    let (_, done) = rest(&mut ws).await;
    assert_eq!(done["__typename"], "ChapterFailed", "{done}");
    assert_eq!(done["status"], "CANCELLED");
    assert!(
        fake.wait_client_closed(1, Duration::from_secs(2)).await,
        "the worker process stopped its model request"
    );
    let d = gql(
        api.url(),
        &key,
        "query($c: ID!) { chapter(id: $c) { content revisions(first: 5) { edges { node { version } } } } }",
        json!({ "c": chapter }),
    )
    .await;
    assert_eq!(d["chapter"]["content"], "", "the chapter is as it was: {d}");
    assert_eq!(d["chapter"]["revisions"]["edges"], json!([]));
}

/// A worker stops its model on the job's `CANCELLED` announcement alone: the
/// announcement is published on the deployment's job events while the job's row stays
/// `RUNNING`, so the worker's status read (its fallback for a lost announcement) cannot be
/// what stopped it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_hears_a_cancellation_announced_without_reading_its_row() {
    use znovel_domain::ids::{JobId, NovelId, TenantId};
    use znovel_domain::model::JobStatus;
    use znovel_domain::ports::{JobEvent, JobEvents};
    use znovel_infra::queue::events::RedisJobEvents;
    use znovel_infra::queue::redis::{RedisConnections, RedisOptions};

    let MidChapter {
        fake,
        cluster,
        api,
        _worker,
        key,
        chapter,
        job,
        mut ws,
    } = mid_chapter().await;
    let d = gql(
        api.url(),
        &key,
        "query($c: ID!) { tenant { id } chapter(id: $c) { novelId } }",
        json!({ "c": chapter }),
    )
    .await;
    let uuid = |id: &Value| znovel::graphql::ids::parse(id.as_str().unwrap()).unwrap().1;
    let event = JobEvent {
        tenant_id: TenantId::from_uuid(uuid(&d["tenant"]["id"])),
        novel_id: NovelId::from_uuid(uuid(&d["chapter"]["novelId"])),
        job_id: JobId::from_uuid(uuid(&json!(job))),
        status: JobStatus::Cancelled,
    };
    let conns = RedisConnections::connect(&cluster.redis, RedisOptions::default())
        .await
        .unwrap();
    let events = RedisJobEvents::new(conns, &cluster.prefix).await.unwrap();
    // Announced again until heard: the worker subscribes to its novel's events once it has
    // read its job, which may come after the first chunk (announcements are not kept for
    // a later subscriber; a real cancel is found by the status read then).
    let mut heard = false;
    for _ in 0..20 {
        events.publish(&event).await.unwrap();
        if fake.wait_client_closed(1, Duration::from_millis(250)).await {
            heard = true;
            break;
        }
    }
    assert!(
        heard,
        "the worker process stopped its model request on the announcement"
    );
    // The stream ends (its final event shows the job as stored: still running).
    let (_, done) = rest(&mut ws).await;
    assert_eq!(done["__typename"], "ChapterFailed", "{done}");
    let d = gql(
        api.url(),
        &key,
        "query($j: ID!, $c: ID!) { generationJob(id: $j) { status } chapter(id: $c) { content } }",
        json!({ "j": job, "c": chapter }),
    )
    .await;
    assert_eq!(
        d["generationJob"]["status"], "RUNNING",
        "the row was never cancelled: only the announcement stopped the model"
    );
    assert_eq!(d["chapter"]["content"], "", "the chapter is as it was: {d}");
}

/// SIGTERM to the process that runs a chapter and serves its subscriber (a rolling
/// deploy): the WebSocket is closed with 1012 (Service Restart), the job is handed back,
/// the process exits; its replacement takes the job up after the chunks already streamed,
/// and the client, resubscribing there with `after`, gets the rest — every chunk once,
/// stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_chapter_drains_with_1012_and_the_replacement_finishes_it() {
    use futures_util::StreamExt;
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script(
        "primary",
        FakeStream::new(words(120)).interval(Duration::from_millis(80)),
    );
    fake.script("primary", FakeStream::new(words(120)));
    let cluster = Cluster::new(&fake).await;
    let (mut old, key) = cluster.serve("old", true, true);
    let key = key.unwrap();
    let chapter = novel_and_chapter(old.url(), &key).await;
    let job = generate(old.url(), &key, &chapter, 100).await;
    let mut ws = subscribe(old.url(), &key, &job, None).await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(next_event(&mut ws).await.expect("a chunk"));
    }
    let pid = old.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Chunks already in flight may still arrive; then the close frame.
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a close within 15 s")
        {
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(Message::Text(t))) => {
                let m: Value = serde_json::from_str(&t).unwrap();
                let ev = &m["payload"]["data"]["chapterStream"];
                if ev["__typename"] == "ChapterChunk" {
                    seen.push((
                        ev["seq"].as_i64().unwrap(),
                        ev["text"].as_str().unwrap().to_owned(),
                    ));
                }
            }
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(code, Some(1012), "1012 Service Restart");
    let status = old.child.wait().unwrap();
    assert!(status.success(), "graceful exit: {status:?}");

    let (new, _) = cluster.serve("new", true, false);
    let after = seen.last().unwrap().0;
    let mut again = subscribe(new.url(), &key, &job, Some(after)).await;
    let (more, done) = rest(&mut again).await;
    seen.extend(more);
    assert_eq!(done["__typename"], "ChapterCompleted", "{done}");
    assert_consecutive(&seen, 1);
    let streamed: String = seen.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        done["chapter"]["content"],
        streamed.as_str(),
        "stored == every chunk once"
    );
    assert_eq!(
        fake.requests_for("primary").len(),
        2,
        "the replacement continued; it did not start over"
    );
}
