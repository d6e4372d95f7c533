//! SIGKILL of a real worker process in the middle of long jobs, on PostgreSQL and Redis
//! (the harness of `scale_out.rs`): a batch killed while it streams chapter 2 of 4 and an
//! import killed after 20 of 40 chapters both resume in a new worker process, with no
//! chapter duplicated or lost, nothing done twice, and progress going on from where it
//! was — it never goes back.

use crate::memory::{empty_answer, extraction};
use crate::scale_out::{Cluster, gql, next_event, subscribe, words};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use znovel_infra::llm::testing::{FakeOpenAi, FakeStream};

const JOB: &str =
    "query($j: ID!) { generationJob(id: $j) { status error attempts progress { done total } } }";
const CHAPTERS: &str = "query($n: ID!) { novel(id: $n) { chapters(first: 100) { edges { node { \
    id seq title content version revisions(first: 10) { edges { node { source } } } } } } } }";

/// Every `progress.done` a job reports until it ends, read every 50 ms by a task of its
/// own (through the API process at `url`).
struct Progress {
    seen: Arc<Mutex<Vec<i64>>>,
    task: tokio::task::JoinHandle<Value>,
}

impl Progress {
    fn follow(url: &str, key: &str, job: &str) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (url, key, job, log) = (url.to_owned(), key.to_owned(), job.to_owned(), seen.clone());
        let task = tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            loop {
                let j = gql(&url, &key, JOB, json!({ "j": job })).await["generationJob"].clone();
                if let Some(done) = j["progress"]["done"].as_i64() {
                    log.lock().unwrap().push(done);
                }
                if matches!(
                    j["status"].as_str(),
                    Some("SUCCEEDED" | "FAILED" | "CANCELLED")
                ) {
                    return j;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the job did not end: {j}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { seen, task }
    }

    /// The last `done` seen so far.
    fn last(&self) -> Option<i64> {
        self.seen.lock().unwrap().last().copied()
    }

    /// Waits until `done` reaches `n`.
    async fn reaches(&mut self, n: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.last().is_none_or(|d| d < n) {
            if self.task.is_finished() {
                let end = (&mut self.task).await;
                panic!("the job ended at {:?}: {end:?}", self.last());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "progress stuck at {:?}",
                self.last()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The final job, and every `done` seen.
    async fn end(self) -> (Value, Vec<i64>) {
        let job = self.task.await.unwrap();
        let seen = self.seen.lock().unwrap().clone();
        (job, seen)
    }
}

fn assert_never_back(seen: &[i64]) {
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress went back: {seen:?}"
    );
}

/// A novel's chapters in seq order.
async fn chapters(url: &str, key: &str, novel: &str) -> Vec<Value> {
    let d = gql(url, key, CHAPTERS, json!({ "n": novel })).await;
    d["novel"]["chapters"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn sources(chapter: &Value) -> Vec<String> {
    chapter["revisions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["source"].as_str().unwrap().to_owned())
        .collect()
}

/// The requests that wrote chapters (memory extractions ask for JSON).
fn writes(fake: &FakeOpenAi) -> usize {
    fake.requests_for("primary")
        .iter()
        .filter(|r| r.body.get("response_format").is_none_or(Value::is_null))
        .count()
}

/// A novel of `n` chapters (outlines only) and a batch writing them all (60 words
/// each); returns (novel, batch job).
async fn batch_of(url: &str, key: &str, n: i64) -> (String, String) {
    let d = gql(
        url,
        key,
        "mutation { createNovel(input: { title: \"Crash\" }) { novel { id } } }",
        json!({}),
    )
    .await;
    let novel = d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned();
    for seq in 1..=n {
        gql(
            url,
            key,
            "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }",
            json!({ "i": { "novelId": novel, "seq": seq, "title": format!("Part {seq}"),
                           "outline": format!("The tide turns, part {seq}.") } }),
        )
        .await;
    }
    let d = gql(
        url,
        key,
        "mutation($i: GenerateChaptersInput!) { generateChapters(input: $i) { job { id } } }",
        json!({ "i": { "novelId": novel, "fromSeq": 1, "toSeq": n, "targetWords": 60 } }),
    )
    .await;
    let batch = d["generateChapters"]["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (novel, batch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_killed_mid_chapter_resumes_in_a_new_worker() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    // In order: chapter 1 and its memory; chapter 2 streamed slowly (the worker dies
    // in it), its continuation by the next worker, its memory; chapters 3 and 4.
    fake.script("primary", FakeStream::new(words(60)));
    fake.script("primary", extraction(empty_answer()));
    fake.script(
        "primary",
        FakeStream::new(words(120)).interval(Duration::from_millis(100)),
    );
    for _ in 0..3 {
        fake.script("primary", FakeStream::new(words(60)));
        fake.script("primary", extraction(empty_answer()));
    }
    let cluster = Cluster::new(&fake).await;
    let (api, key) = cluster.serve("api", false, true);
    let key = key.unwrap();
    let mut doomed = cluster.worker("w1");
    let url = api.url();
    let (novel, batch) = batch_of(url, &key, 4).await;
    let mut progress = Progress::follow(url, &key, &batch);

    // Chapter 1 stored and remembered; chapter 2 streaming: a few of its chunks out.
    progress.reaches(1).await;
    let child = loop {
        let d = gql(
            url,
            &key,
            "query($n: ID!) { generationJobs(novelId: $n, first: 50) { edges { node { id kind status chapter { seq } } } } }",
            json!({ "n": novel }),
        )
        .await;
        let running = d["generationJobs"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"].clone())
            .find(|j| j["kind"] == "DRAFT" && j["chapter"]["seq"] == 2);
        if let Some(j) = running {
            break j["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut ws = subscribe(url, &key, &child, None).await;
    for _ in 0..3 {
        next_event(&mut ws).await.expect("a chunk of chapter 2");
    }
    doomed.kill();
    let at_kill = progress.last();
    assert_eq!(at_kill, Some(1), "killed in chapter 2");

    let _replacement = cluster.worker("w2");
    let (job, seen) = progress.end().await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert!(job["error"].is_null(), "{job}");
    assert_eq!(job["attempts"], 2, "resumed once: {job}");
    assert_eq!(job["progress"], json!({ "done": 4, "total": 4 }));
    assert_never_back(&seen);

    let got = chapters(url, &key, &novel).await;
    let seqs: Vec<i64> = got.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "each chapter once");
    for c in &got {
        assert_eq!(c["version"], 1, "written once: {c}");
        assert_eq!(sources(c), ["GENERATION"], "one generated revision: {c}");
        assert!(c["content"].as_str().unwrap().contains("word"), "{c}");
    }
    // Chapter 1 was neither written nor remembered again; chapter 2 was continued, not
    // started over: 5 writing requests (1, 2 killed, 2 continued, 3, 4), 4 extractions.
    assert_eq!(writes(&fake), 5);
    assert_eq!(fake.requests_for("primary").len(), 9);
}

/// Killed while it remembers chapter 1 (the extraction streams slowly), the batch
/// remembers chapter 1 in the new worker before it writes chapter 2, whose prompt has
/// what chapter 1's memory established.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_killed_while_it_remembers_a_chapter_remembers_it_first_in_a_new_worker() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let mut answer = empty_answer();
    answer["summary"] = json!("Captain Orla Vance seized the lighthouse at Skarn.");
    fake.script("primary", FakeStream::new(words(60)));
    fake.script(
        "primary",
        extraction(answer.clone()).interval(Duration::from_millis(200)),
    );
    fake.script("primary", extraction(answer));
    fake.script("primary", FakeStream::new(words(60)));
    fake.script("primary", extraction(empty_answer()));
    let cluster = Cluster::new(&fake).await;
    let (api, key) = cluster.serve("api", false, true);
    let key = key.unwrap();
    let mut doomed = cluster.worker("w1");
    let url = api.url();
    let (novel, batch) = batch_of(url, &key, 2).await;
    let progress = Progress::follow(url, &key, &batch);
    // Chapter 1 written; its extraction under way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while fake.requests_for("primary").len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no extraction");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    doomed.kill();
    assert_eq!(progress.last(), Some(0), "killed before chapter 1 was done");

    let _replacement = cluster.worker("w2");
    let (job, seen) = progress.end().await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(job["progress"], json!({ "done": 2, "total": 2 }));
    assert_never_back(&seen);
    let got = chapters(url, &key, &novel).await;
    assert_eq!(got.len(), 2);
    for c in &got {
        assert_eq!(sources(c), ["GENERATION"], "written once: {c}");
    }
    // Chapter 1 written once and extracted twice (the first extraction died with its
    // worker), before chapter 2 was written, with chapter 1's summary in its prompt.
    let requests = fake.requests_for("primary");
    assert_eq!(requests.len(), 5);
    let json = |i: usize| {
        !requests[i]
            .body
            .get("response_format")
            .is_none_or(Value::is_null)
    };
    assert_eq!(
        (0..5).map(json).collect::<Vec<_>>(),
        [false, true, true, false, true]
    );
    let prompt: String = requests[3]
        .messages()
        .into_iter()
        .map(|(_, content)| content)
        .collect();
    assert!(
        prompt.contains("Captain Orla Vance seized the lighthouse at Skarn."),
        "{prompt}"
    );
}

/// A `psql` session holding advisory lock 4242: a trigger makes the insert of chapter
/// `seq` wait for it, so a test can stop an import at a chapter of its choice.
struct Gate {
    psql: Child,
}

impl Gate {
    fn close(url: &str, seq: i64) -> Self {
        let sql = format!(
            "CREATE FUNCTION test_gate() RETURNS trigger AS $$ BEGIN \
             IF NEW.seq = {seq} THEN PERFORM pg_advisory_lock(4242); \
             PERFORM pg_advisory_unlock(4242); END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER test_gate BEFORE INSERT ON chapters FOR EACH ROW \
             EXECUTE FUNCTION test_gate();"
        );
        let ok = Command::new("psql")
            .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
            .status()
            .unwrap();
        assert!(ok.success(), "the gate trigger");
        let mut psql = Command::new("psql")
            .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-A", "-t"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = psql.stdin.as_mut().unwrap();
        writeln!(stdin, "SELECT pg_advisory_lock(4242); SELECT 'locked';").unwrap();
        stdin.flush().unwrap();
        let mut out = std::io::BufReader::new(psql.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("locked") {
            line.clear();
            assert!(
                std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
                "psql ended"
            );
        }
        Self { psql }
    }

    /// Ends the session: the lock is released.
    fn open(mut self) {
        let _ = self.psql.kill();
        let _ = self.psql.wait();
    }
}

/// A multipart GraphQL request uploading `bytes` as the `file` of `importManuscript`'s
/// input; returns `data`.
async fn import(url: &str, key: &str, name: &str, bytes: &[u8]) -> Value {
    let query = "mutation($i: ImportManuscriptInput!) { importManuscript(input: $i) { novel { id } job { id } } }";
    let (content_type, body) =
        crate::multipart::request(query, json!({}), name, "text/plain", bytes);
    let body: Value = reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_half_way_resumes_in_a_new_worker() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script("primary", extraction(empty_answer()));
    let cluster = Cluster::new(&fake).await;
    let (api, key) = cluster.serve("api", false, true);
    let key = key.unwrap();
    let url = api.url();
    let mut doomed = cluster.worker("w1");
    // The insert of chapter 21 waits: the worker is killed with 20 chapters imported.
    let gate = Gate::close(cluster.database_url(), 21);
    let text: String = (1..=40)
        .map(|i| format!("Chapter {i}: Harbour {i}\nThe boat number {i} came in at dawn.\n\n"))
        .collect();
    let d = import(url, &key, "forty.txt", text.as_bytes()).await;
    let novel = d["importManuscript"]["novel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = d["importManuscript"]["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut progress = Progress::follow(url, &key, &job);
    progress.reaches(20).await;
    doomed.kill();
    assert_eq!(progress.last(), Some(20), "killed half-way");
    gate.open();

    let _replacement = cluster.worker("w2");
    let (job, seen) = progress.end().await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(job["attempts"], 2, "resumed once: {job}");
    assert_eq!(job["progress"], json!({ "done": 40, "total": 40 }));
    assert_never_back(&seen);

    let got = chapters(url, &key, &novel).await;
    assert_eq!(got.len(), 40, "no chapter duplicated or lost");
    for (i, c) in got.iter().enumerate() {
        let n = i + 1;
        assert_eq!(c["seq"], n, "{c}");
        assert_eq!(c["title"], format!("Chapter {n}: Harbour {n}"));
        assert_eq!(
            c["content"],
            format!("The boat number {n} came in at dawn.")
        );
        assert_eq!(sources(c), ["IMPORT"], "imported once: {c}");
    }
}
