//! `cargo bench -p znovel --bench books`
//!
//! Whole books in and out, through the real server binary (`znovel serve`, SQLite, the
//! in-process queue) and a fake OpenAI-compatible provider in this process that answers
//! every memory extraction at once (so what is measured is the server, not a model):
//!
//! - **import**: a 300-chapter English manuscript (TXT, ≈1,000 words a chapter, 2.0 MB)
//!   uploaded with `importManuscript` (a GraphQL multipart request): the time until the
//!   IMPORT job has stored every chapter (chapters/s without memory write-back), then until
//!   every chapter's memory job has indexed its passages (embedded multilingual-e5-small
//!   when its files are present, else keywords only) and stored its extraction (chapters/s
//!   with memory write-back), then until every chapter's continuity check is stored;
//! - **export**: the same 300-chapter novel as EPUB, Markdown and TXT: the time from
//!   `exportNovel` to the finished file, and the download through its signed link.
//!
//! Knobs: `BENCH_CHAPTERS` (300), `BENCH_WORDS` (words a chapter, 1,000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/api/multipart.rs"]
mod multipart;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use znovel_infra::llm::testing::{FakeOpenAi, FakeStream};

const BIN: &str = env!("CARGO_BIN_EXE_znovel");

const EXTRACTION: &str = r#"{"summary": "A chapter of the bench.", "characters": [],
    "items": [], "events": [], "relations": [], "planted": [], "resolved": []}"#;

/// The server under test.
struct Server {
    child: Child,
    url: String,
    key: String,
    dir: PathBuf,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Server {
    fn start(llm: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("znovel-books-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/models/e5-small");
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
        .env("ZNOVEL_RATE_LIMIT_REQUESTS_PER_KEY", "0")
        .env("ZNOVEL_RATE_LIMIT_REQUESTS_PER_TENANT", "0")
        .env("LLM_BASE_URL", llm)
        .env("LLM_API_KEY", "sk-test")
        .env("LLM_MODEL", "bench")
        .env("VALIDATION_REVIEWER", "off")
        .env("RUST_LOG", "warn");
        if models.join("e5-small-q4.bin").exists() {
            c.env("ZNOVEL_EMBEDDING_MODEL_DIR", &models);
        } else {
            c.env("EMBEDDING_PROVIDER", "none");
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
        let (mut url, mut key) = (String::new(), String::new());
        while key.is_empty() {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the server starts");
            if let Some(rest) = line.split("GraphQL at ").nth(1) {
                url = rest.split_whitespace().next().unwrap().to_owned();
            }
            if line.starts_with("znk_") {
                key = line.trim().to_owned();
            }
        }
        Self {
            child,
            url,
            key,
            dir,
            client: reqwest::Client::new(),
        }
    }

    async fn gql(&self, query: &str, variables: Value) -> Value {
        let body: Value = self
            .client
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

    /// `importManuscript` of `bytes` as file `name` (a GraphQL multipart request).
    async fn import(&self, name: &str, bytes: &[u8]) -> Value {
        let (content_type, body) = multipart::request(
            "mutation($i: ImportManuscriptInput!) { importManuscript(input: $i) { novel { id } job { id } } }",
            json!({ "title": "Bench" }),
            name,
            "text/plain",
            bytes,
        );
        let body: Value = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["importManuscript"].clone()
    }

    /// Polls job `id` until it ends; its final state.
    async fn job(&self, id: &str) -> Value {
        loop {
            let j = self
                .gql(
                    "query($j: ID!) { generationJob(id: $j) { status error progress { done total } file { size downloadUrl } } }",
                    json!({ "j": id }),
                )
                .await["generationJob"]
                .clone();
            if !matches!(j["status"].as_str(), Some("QUEUED" | "RUNNING")) {
                assert_eq!(j["status"], "SUCCEEDED", "{j}");
                return j;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Deterministic English prose: `words` words in sentences of twelve.
fn prose(seed: usize, words: usize) -> String {
    const VOCAB: &[&str] = &[
        "the", "river", "ran", "cold", "under", "grey", "sky", "and", "she", "walked", "toward",
        "old", "keep", "where", "ravens", "waited", "in", "silence", "a", "horn", "sounded", "far",
        "away", "snow", "fell", "on", "wall", "they", "spoke", "of", "war", "bread",
    ];
    let mut x = seed as u64 * 2_654_435_761 + 1;
    let mut out = String::new();
    for i in 0..words {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let w = VOCAB[(x >> 33) as usize % VOCAB.len()];
        if i % 12 == 0 {
            let mut c = w.chars();
            out.extend(c.next().map(|f| f.to_ascii_uppercase()));
            out.push_str(c.as_str());
        } else {
            out.push_str(w);
        }
        out.push_str(match i % 12 {
            11 if i % 96 == 95 => ".\n\n",
            11 => ". ",
            _ => " ",
        });
    }
    out
}

#[tokio::main]
async fn main() {
    let chapters = env_or("BENCH_CHAPTERS", 300);
    let words = env_or("BENCH_WORDS", 1_000);
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script("bench", FakeStream::new([EXTRACTION]));
    let server = Server::start(&fake.base_url());

    let mut manuscript = String::from("The Bench Chronicle\n\n");
    for seq in 1..=chapters {
        manuscript.push_str(&format!("Chapter {seq}: The Turn {seq}\n\n"));
        manuscript.push_str(&prose(seq, words));
        manuscript.push_str("\n\n");
    }
    let bytes = manuscript.into_bytes();
    println!(
        "manuscript: {chapters} chapters × {words} words, {:.1} MB TXT",
        bytes.len() as f64 / 1e6
    );

    let t = Instant::now();
    let started = server.import("chronicle.txt", &bytes).await;
    let job = started["job"]["id"].as_str().unwrap().to_owned();
    let novel = started["novel"]["id"].as_str().unwrap().to_owned();
    let done = server.job(&job).await;
    let stored = t.elapsed();
    assert_eq!(done["progress"]["done"], chapters, "{done}");
    // Every chapter's memory: passages indexed (and embedded), extraction stored.
    let progress = "query($n: ID!) { novel(id: $n) { memoryProgress { indexedChapters pendingChapters failedChapters extractedChapters } } }";
    let remembered = loop {
        let p =
            server.gql(progress, json!({ "n": novel })).await["novel"]["memoryProgress"].clone();
        assert_eq!(p["failedChapters"], 0, "{p}");
        if p["extractedChapters"] == chapters {
            break t.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Then every chapter's continuity check (a VALIDATE job after its memory job): the
    // exports below must not queue behind them.
    let reports = "query($n: ID!, $a: String) { novel(id: $n) { chapters(first: 100, after: $a) { pageInfo { hasNextPage endCursor } edges { node { validation { complete } } } } } }";
    let checked = loop {
        let (mut after, mut checked) = (Value::Null, 0);
        loop {
            let c =
                server.gql(reports, json!({ "n": novel, "a": after })).await["novel"]["chapters"]
                    .clone();
            checked += c["edges"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| !e["node"]["validation"].is_null())
                .count();
            if c["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = c["pageInfo"]["endCursor"].clone();
        }
        if checked == chapters {
            break t.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let rate = |d: Duration| chapters as f64 / d.as_secs_f64();
    println!("\n| import of {chapters} chapters | time | chapters/s |");
    println!("|---|---:|---:|");
    println!(
        "| stored (the IMPORT job done) | {:.2} s | {:.0} |",
        stored.as_secs_f64(),
        rate(stored)
    );
    println!(
        "| remembered (every memory job done) | {:.2} s | {:.1} |",
        remembered.as_secs_f64(),
        rate(remembered)
    );
    println!(
        "| checked (every continuity check done) | {:.2} s | {:.1} |",
        checked.as_secs_f64(),
        rate(checked)
    );

    println!("\n| export of {chapters} chapters | job | download | size |");
    println!("|---|---:|---:|---:|");
    for format in ["EPUB", "MARKDOWN", "TXT"] {
        let t = Instant::now();
        let job = server
            .gql(
                "mutation($i: ExportNovelInput!) { exportNovel(input: $i) { job { id } } }",
                json!({ "i": { "novelId": novel, "format": format } }),
            )
            .await["exportNovel"]["job"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let done = server.job(&job).await;
        let made = t.elapsed();
        let url = done["file"]["downloadUrl"].as_str().unwrap();
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            server.url.replace("/graphql", url)
        };
        let t = Instant::now();
        let got = server.client.get(&url).send().await.unwrap();
        assert!(got.status().is_success(), "{}", got.status());
        let size = got.bytes().await.unwrap().len();
        println!(
            "| {format} | {:.0} ms | {:.0} ms | {:.2} MB |",
            made.as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() * 1e3,
            size as f64 / 1e6
        );
    }
}
