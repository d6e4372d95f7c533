//! Live chapter generation through the API, against a fake OpenAI-compatible server
//! speaking the real SSE wire protocol: `generateChapter` returns the queued job at once,
//! a `graphql-ws` subscriber sees the chapter arrive chunk by chunk, the stored chapter
//! equals the concatenated chunks, `after` resumes without gap or duplicate, fallback and
//! cancellation behave, and another tenant sees nothing.

use crate::helpers::{Backend, TestApp};
use crate::live_credentials::open;
use crate::websocket::{Ws, connect, next_json, request};
use futures_util::SinkExt;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use znovel_infra::llm::testing::{FakeOpenAi, FakeReply, FakeStream};

const GENERATE: &str =
    "mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id status kind } } }";
const STREAM: &str = r#"subscription($j: ID!, $a: Int) { chapterStream(jobId: $j, after: $a) {
    __typename
    ... on ChapterChunk { seq text }
    ... on ChapterCompleted { seq chapter { content version } job { status model provider fallbackUsed promptTokens completionTokens firstTokenAt finishedAt timeToFirstTokenMs } }
    ... on ChapterFailed { seq status message job { status } }
} }"#;

/// Prose of ~70 words in small pieces, as a provider streams it.
fn pieces() -> Vec<String> {
    let text = "The storm broke over the lighthouse at midnight. Mara climbed the stairs with the lamp. \
        Below, the sea threw itself at the rocks again and again. A stranger lay there, half drowned, \
        holding a sealed letter. She dragged him above the tide line and read the name on it. \
        It was her own name, written in her mother's hand. The wind howled. She did not open it yet.";
    text.split_inclusive(' ').map(str::to_owned).collect()
}

pub(crate) async fn app_with_fake(backend: Backend, fake: &FakeOpenAi) -> TestApp {
    let base = fake.base_url();
    TestApp::spawn_with(backend, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("primary".into());
        s.llm.fallback_models = vec!["backup".into()];
    })
    .await
}

/// A SQLite app writing with `fake` (no fallback model) whose connections run at most two
/// subscriptions at once.
async fn app_with_two_subscriptions_per_connection(fake: &FakeOpenAi) -> TestApp {
    let base = fake.base_url();
    TestApp::spawn_with(Backend::Sqlite, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("primary".into());
        s.limits.max_subscriptions_per_connection = 2;
    })
    .await
}

async fn subscribe(app: &TestApp, key: &str, job: &str, after: Option<i64>) -> Ws {
    let mut ws = connected(app, key).await;
    start(&mut ws, "s", STREAM, json!({ "j": job, "a": after })).await;
    ws
}

/// Reads events until the subscription completes; returns (chunks, final event).
async fn follow(ws: &mut Ws) -> (Vec<(i64, String)>, Value) {
    let mut chunks = Vec::new();
    let mut last = Value::Null;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), next_json(ws))
            .await
            .expect("stream progresses");
        match msg["type"].as_str() {
            Some("next") => {
                let ev = &msg["payload"]["data"]["chapterStream"];
                assert!(msg["payload"].get("errors").is_none(), "{msg}");
                if ev["__typename"] == "ChapterChunk" {
                    chunks.push((
                        ev["seq"].as_i64().unwrap(),
                        ev["text"].as_str().unwrap().to_owned(),
                    ));
                } else {
                    last = ev.clone();
                }
            }
            Some("complete") => return (chunks, last),
            other => panic!("unexpected {other:?}: {msg}"),
        }
    }
}

async fn generate(app: &TestApp, chapter: &str, extra: Value) -> Value {
    let mut input = json!({ "chapterId": chapter, "targetWords": 50 });
    if let (Some(i), Some(e)) = (input.as_object_mut(), extra.as_object()) {
        i.extend(e.clone());
    }
    app.ok(GENERATE, json!({ "i": input })).await["generateChapter"]["job"].clone()
}

async fn streams_and_stores(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script(
        "primary",
        FakeStream::new(pieces())
            .usage(120, 80)
            .interval(Duration::from_millis(5)),
    );
    let app = app_with_fake(backend, &fake).await;
    let novel = app.novel("The Lighthouse Keeper").await;
    let chapter = app.chapter(&novel, 1, "The Storm").await;

    // A target the scripted text reaches (68 of 80 words is within -15%), so the provider's
    // stream ends on its own and its reported usage is what the job records.
    let job = generate(&app, &chapter, json!({ "idempotencyKey": "ch1-draft", "instructions": "Keep it tense.", "targetWords": 80 })).await;
    assert_eq!(
        job["status"], "QUEUED",
        "returned at once, before the model ran"
    );
    let job_id = job["id"].as_str().unwrap().to_owned();
    let again = generate(&app, &chapter, json!({ "idempotencyKey": "ch1-draft" })).await;
    assert_eq!(again["id"], job_id.as_str(), "same key, same job");

    let mut ws = subscribe(&app, &app.admin_key, &job_id, None).await;
    let (chunks, done) = follow(&mut ws).await;
    assert_eq!(done["__typename"], "ChapterCompleted", "{done}");
    let seqs: Vec<i64> = chunks.iter().map(|c| c.0).collect();
    assert_eq!(
        seqs,
        (1..=chunks.len() as i64).collect::<Vec<_>>(),
        "ordered from 1, no gap"
    );
    let streamed: String = chunks.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        done["chapter"]["content"],
        streamed.as_str(),
        "stored chapter == concatenated chunks"
    );
    assert!(streamed.starts_with("The storm broke"));
    assert_eq!(done["job"]["model"], "primary");
    assert_eq!(done["job"]["fallbackUsed"], false);
    assert_eq!(done["job"]["completionTokens"], 80);
    assert!(done["job"]["timeToFirstTokenMs"].is_i64());

    // The provider saw the prompt with the outline and the instructions.
    let req = &fake.requests_for("primary")[0];
    let prompt: String = req.messages().into_iter().map(|(_, c)| c).collect();
    assert!(
        prompt.contains("Keep it tense.") && prompt.contains("The Storm"),
        "{prompt}"
    );

    // Resume after chunk 3: exactly the rest, then the end.
    let mut ws = subscribe(&app, &app.admin_key, &job_id, Some(3)).await;
    let (rest, done2) = follow(&mut ws).await;
    assert_eq!(rest, chunks[3..].to_vec());
    assert_eq!(done2["__typename"], "ChapterCompleted");

    // The stored chapter and its revision.
    let d = app
        .ok("query($c: ID!) { chapter(id: $c) { content version status revisions { edges { node { source } } } } }", json!({ "c": chapter }))
        .await;
    assert_eq!(d["chapter"]["content"], streamed.as_str());
    assert_eq!(d["chapter"]["version"], 1);
    assert_eq!(
        d["chapter"]["revisions"]["edges"][0]["node"]["source"],
        "GENERATION"
    );

    // Another tenant sees nothing of it.
    let other = app.new_tenant("elsewhere").await;
    let (code, _) = app
        .err_as(
            Some(&other),
            "query($j: ID!) { generationJob(id: $j) { id } }",
            json!({ "j": job_id }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let mut ws = subscribe(&app, &other, &job_id, None).await;
    let msg = next_json(&mut ws).await;
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_stores_sqlite() {
    streams_and_stores(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_stores_postgres() {
    streams_and_stores(Backend::Postgres).await;
}

/// A provider that accepts the request and never answers (no status, no token): after
/// `LLM_FIRST_TOKEN_TIMEOUT_SECS` the next model of the chain writes the chapter, and the
/// job says so; the hanging request is closed, not left open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_provider_meets_its_deadline_and_the_fallback_writes() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script("primary", FakeReply::Hang);
    fake.script("backup", FakeStream::new(pieces()).usage(10, 10));
    let base = fake.base_url();
    let app = TestApp::spawn_with(Backend::Sqlite, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("primary".into());
        s.llm.fallback_models = vec!["backup".into()];
        s.llm.first_token_timeout_secs = Some(1);
    })
    .await;
    let novel = app.novel("Hanging").await;
    let chapter = app.chapter(&novel, 1, "One").await;
    let job = generate(&app, &chapter, json!({})).await;
    let mut ws = subscribe(&app, &app.admin_key, job["id"].as_str().unwrap(), None).await;
    let (chunks, done) = follow(&mut ws).await;
    assert_eq!(done["__typename"], "ChapterCompleted", "{done}");
    assert_eq!(done["job"]["model"], "backup");
    assert_eq!(done["job"]["fallbackUsed"], true);
    let streamed: String = chunks.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(done["chapter"]["content"], streamed.as_str());
    assert!(
        fake.wait_client_closed(1, Duration::from_secs(2)).await,
        "the hanging request was closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_primary_falls_back_visibly() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script("primary", FakeReply::openai_error(500, "upstream exploded"));
    fake.script("backup", FakeStream::new(pieces()).usage(10, 10));
    let app = app_with_fake(Backend::Sqlite, &fake).await;
    let novel = app.novel("Fallback").await;
    let chapter = app.chapter(&novel, 1, "One").await;
    let job = generate(&app, &chapter, json!({})).await;
    let mut ws = subscribe(&app, &app.admin_key, job["id"].as_str().unwrap(), None).await;
    let (chunks, done) = follow(&mut ws).await;
    assert_eq!(done["__typename"], "ChapterCompleted", "{done}");
    assert_eq!(done["job"]["model"], "backup");
    assert_eq!(done["job"]["fallbackUsed"], true);
    let streamed: String = chunks.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(done["chapter"]["content"], streamed.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_model_and_leaves_the_chapter() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script(
        "primary",
        FakeStream::new(pieces()).interval(Duration::from_millis(300)),
    );
    let app = app_with_fake(Backend::Sqlite, &fake).await;
    let novel = app.novel("Cancel").await;
    let chapter = app.chapter(&novel, 1, "One").await;
    app.ok(
        "mutation($c: ID!) { updateChapter(input: { id: $c, content: \"Original text.\" }) { chapter { version } } }",
        json!({ "c": chapter }),
    )
    .await;
    let job = generate(&app, &chapter, json!({})).await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    let mut ws = subscribe(&app, &app.admin_key, &job_id, None).await;
    // Wait for the first chunk, then cancel.
    let first = next_json(&mut ws).await;
    assert_eq!(
        first["payload"]["data"]["chapterStream"]["__typename"], "ChapterChunk",
        "{first}"
    );
    let d = app
        .ok(
            "mutation($j: ID!) { cancelGeneration(input: { jobId: $j }) { job { status } } }",
            json!({ "j": job_id }),
        )
        .await;
    assert_eq!(d["cancelGeneration"]["job"]["status"], "CANCELLED");
    let (_, done) = follow(&mut ws).await;
    assert_eq!(done["__typename"], "ChapterFailed", "{done}");
    assert_eq!(done["status"], "CANCELLED");
    assert!(
        fake.wait_client_closed(1, Duration::from_secs(2)).await,
        "the LLM request was stopped"
    );
    let d = app
        .ok(
            "query($c: ID!) { chapter(id: $c) { content version } }",
            json!({ "c": chapter }),
        )
        .await;
    assert_eq!(
        d["chapter"]["content"], "Original text.",
        "the chapter is as it was"
    );
    assert_eq!(d["chapter"]["version"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_generation_requests_get_clear_errors() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app_with_fake(Backend::Sqlite, &fake).await;
    let novel = app.novel("Bad").await;
    let chapter = app.chapter(&novel, 1, "One").await;
    let (code, _) = app
        .err_as(
            Some(&app.admin_key),
            GENERATE,
            json!({ "i": { "chapterId": novel } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "a novel ID is not a chapter ID");
    let (code, _) = app
        .err_as(
            Some(&app.admin_key),
            GENERATE,
            json!({ "i": { "chapterId": chapter, "kind": "SUMMARIZE" } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let (code, _) = app
        .err_as(
            Some(&app.admin_key),
            GENERATE,
            json!({ "i": { "chapterId": chapter, "targetWords": 3 } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let viewer = app.user_key("v@example.org", "VIEWER").await;
    let (code, _) = app
        .err_as(
            Some(&viewer),
            GENERATE,
            json!({ "i": { "chapterId": chapter } }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    assert!(fake.requests().is_empty(), "nothing reached the model");
}

/// The zero-config default: no LLM settings, the real embedded model (fetched by
/// `scripts/fetch-models.sh` into the repository's `data/models`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_local_model_writes_a_chapter_live() {
    let model = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    ));
    assert!(
        model.exists(),
        "the embedded model is missing: run scripts/fetch-models.sh (README command 1 and 2 do)"
    );
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        let dir = s.data_dir.join("models");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(model, dir.join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    })
    .await;
    let novel = app.novel("The Lighthouse Keeper").await;
    let chapter = app.chapter(&novel, 1, "The Storm").await;
    let job = generate(&app, &chapter, json!({})).await;
    let mut ws = subscribe(&app, &app.admin_key, job["id"].as_str().unwrap(), None).await;
    let (chunks, done) = follow(&mut ws).await;
    assert_eq!(done["__typename"], "ChapterCompleted", "{done}");
    assert!(chunks.len() > 5, "arrives chunk by chunk: {chunks:?}");
    let streamed: String = chunks.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        done["chapter"]["content"],
        streamed.as_str(),
        "stored == concatenated chunks, exactly"
    );
    assert_eq!(done["job"]["provider"], "local");
    assert!(done["job"]["completionTokens"].as_i64().unwrap() > 0);
}

const EVENTS: &str =
    "subscription($n: ID!) { jobEvents(novelId: $n) { status job { id kind status model } } }";

/// Opens a connection, acknowledged, authenticated with `key`.
pub(crate) async fn connected(app: &TestApp, key: &str) -> Ws {
    open(connect(app).await, key).await
}

pub(crate) async fn start(ws: &mut Ws, id: &str, query: &str, variables: Value) {
    ws.send(Message::text(
        json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }).to_string(),
    ))
    .await
    .unwrap();
}

/// Completes (stops) the client's operation `id`.
async fn complete(ws: &mut Ws, id: &str) {
    ws.send(Message::text(
        json!({ "id": id, "type": "complete" }).to_string(),
    ))
    .await
    .unwrap();
}

async fn metrics(app: &TestApp) -> String {
    app.client
        .get(format!("http://{}/metrics", app.metrics_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample whose line starts with `series` (name and labels), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_events_follow_a_novels_jobs_and_metrics_count_them() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script(
        "primary",
        FakeStream::new(pieces())
            .usage(50, 68)
            .interval(Duration::from_millis(5)),
    );
    let app = app_with_fake(Backend::Sqlite, &fake).await;
    let novel = app.novel("Events").await;
    let chapter = app.chapter(&novel, 1, "One").await;

    let mut events = connected(&app, &app.admin_key).await;
    start(&mut events, "e", EVENTS, json!({ "n": novel })).await;
    // Another novel's subscriber hears nothing of this one.
    let other = app.novel("Other").await;
    let mut elsewhere = connected(&app, &app.admin_key).await;
    start(&mut elsewhere, "o", EVENTS, json!({ "n": other })).await;
    // The subscriptions are registered once the server answers a later message; a
    // short pause makes sure they are in place before the job starts.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let job = generate(&app, &chapter, json!({ "targetWords": 68 })).await;
    let job_id = job["id"].as_str().unwrap();
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("SUCCEEDED") {
        let msg = tokio::time::timeout(Duration::from_secs(20), next_json(&mut events))
            .await
            .expect("events arrive");
        assert_eq!(msg["type"], "next", "{msg}");
        let ev = &msg["payload"]["data"]["jobEvents"];
        assert_eq!(ev["job"]["id"], job_id);
        seen.push(ev["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, ["QUEUED", "RUNNING", "SUCCEEDED"]);
    // The new version of the chapter is remembered by a memory job of its own, announced
    // to the novel's subscribers too (its extraction fails here: the fake model answers
    // prose, not the JSON asked for — the chapter stays as it is).
    let mut memory = Vec::new();
    while !matches!(
        memory.last().map(String::as_str),
        Some("SUCCEEDED" | "FAILED")
    ) {
        let msg = tokio::time::timeout(Duration::from_secs(20), next_json(&mut events))
            .await
            .expect("memory job events arrive");
        let ev = &msg["payload"]["data"]["jobEvents"];
        assert_ne!(ev["job"]["id"], job_id, "{msg}");
        assert_eq!(ev["job"]["kind"], "EXTRACT_MEMORY", "{msg}");
        memory.push(ev["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(memory[..2], ["QUEUED", "RUNNING"]);
    let quiet = tokio::time::timeout(Duration::from_millis(300), next_json(&mut elsewhere)).await;
    assert!(quiet.is_err(), "another novel's subscriber heard {quiet:?}");

    // Follow the finished job's stream once, so a chunk delivery is counted.
    let mut ws = subscribe(&app, &app.admin_key, job_id, None).await;
    let (chunks, _) = follow(&mut ws).await;
    drop(ws);

    // Metrics: the job by kind and outcome, time to first token, throughput, chunks
    // delivered, the live subscriptions (the two jobEvents), queue gauges.
    let text = metrics(&app).await;
    let get =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert_eq!(
        get(r#"znovel_generation_jobs_total{kind="DRAFT",outcome="succeeded"}"#),
        1.0
    );
    assert_eq!(
        get(r#"znovel_llm_time_to_first_token_seconds_count{model="primary"}"#),
        1.0
    );
    assert_eq!(
        get(r#"znovel_llm_tokens_per_second_count{model="primary"}"#),
        1.0
    );
    assert!(get("znovel_stream_chunks_delivered_total") >= chunks.len() as f64);
    assert_eq!(
        get(r#"znovel_subscriptions_active{field="jobEvents"}"#),
        2.0
    );
    assert_eq!(get(r#"znovel_queue_jobs{state="waiting"}"#), 0.0);
    assert_eq!(get(r#"znovel_queue_jobs{state="in_flight"}"#), 0.0);
    assert_eq!(get("znovel_llm_fallback_forced"), 0.0);

    // Closing the connections ends their subscriptions.
    drop(events);
    drop(elsewhere);
    let mut active = f64::NAN;
    for _ in 0..50 {
        active = sample(
            &metrics(&app).await,
            r#"znovel_subscriptions_active{field="jobEvents"}"#,
        )
        .unwrap_or(f64::NAN);
        if active == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        active, 0.0,
        "closed connections release their subscriptions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_events_need_read_access_to_the_novel() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app_with_fake(Backend::Sqlite, &fake).await;
    let novel = app.novel("Private").await;
    let stranger = app.new_tenant("stranger").await;
    let mut ws = connected(&app, &stranger).await;
    start(&mut ws, "e", EVENTS, json!({ "n": novel })).await;
    let msg = next_json(&mut ws).await;
    assert_eq!(refusal(&msg), "NOT_FOUND", "{msg}");
    start(&mut ws, "bad", EVENTS, json!({ "n": "not-an-id" })).await;
    let msg = next_json_skipping_complete(&mut ws).await;
    assert_eq!(refusal(&msg), "BAD_USER_INPUT", "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_past_the_per_connection_cap_is_refused_and_the_connection_lives() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app_with_two_subscriptions_per_connection(&fake).await;
    let novel = app.novel("Capped").await;
    let mut ws = connected(&app, &app.admin_key).await;
    start(&mut ws, "1", EVENTS, json!({ "n": novel })).await;
    start(&mut ws, "2", EVENTS, json!({ "n": novel })).await;
    // Subscriptions take their slot when they start running.
    tokio::time::sleep(Duration::from_millis(200)).await;
    start(&mut ws, "3", EVENTS, json!({ "n": novel })).await;
    let msg = next_json(&mut ws).await;
    assert_eq!(msg["id"], "3");
    assert_eq!(refusal(&msg), "TOO_MANY_SUBSCRIPTIONS", "{msg}");
    // Stopping one frees its slot; the connection (and subscription 1) live on.
    complete(&mut ws, "2").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    start(&mut ws, "4", EVENTS, json!({ "n": novel })).await;
    // Another connection has its own slots.
    let mut second = connected(&app, &app.admin_key).await;
    start(&mut second, "a", EVENTS, json!({ "n": novel })).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A job's QUEUED event reaches subscriptions 1 and 4 and the second connection.
    let chapter = app.chapter(&novel, 1, "One").await;
    fake.script("primary", FakeStream::new(pieces()));
    generate(&app, &chapter, json!({})).await;
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(10), next_json(&mut ws))
            .await
            .expect("events arrive");
        if msg["type"] == "complete" && (msg["id"] == "2" || msg["id"] == "3") {
            continue; // the stopped and the refused subscriptions end
        }
        assert_eq!(msg["type"], "next", "{msg}");
        if msg["payload"]["data"]["jobEvents"]["status"] == "QUEUED" {
            ids.push(msg["id"].as_str().unwrap().to_owned());
        }
    }
    ids.sort();
    assert_eq!(ids, ["1", "4"]);
    // Its subscription was accepted and follows the job: its first event (QUEUED, or
    // RUNNING when it started listening after the job was queued) — not a refusal.
    let msg = next_json(&mut second).await;
    assert_eq!(
        (&msg["type"], &msg["id"]),
        (&json!("next"), &json!("a")),
        "{msg}"
    );
    let status = &msg["payload"]["data"]["jobEvents"]["status"];
    assert!(status == "QUEUED" || status == "RUNNING", "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_switch_file_is_re_read_without_a_restart() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    for _ in 0..2 {
        fake.script("primary", FakeStream::new(pieces()));
        fake.script("backup", FakeStream::new(pieces()));
    }
    let dir = std::env::temp_dir().join(format!("znovel-switch-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let switch = dir.join("fallback");
    std::fs::write(&switch, "false\n").unwrap();
    let (base, path) = (fake.base_url(), switch.clone());
    let app = TestApp::spawn_with(Backend::Sqlite, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("primary".into());
        s.llm.fallback_models = vec!["backup".into()];
        s.llm.fallback_enabled_file = Some(path);
    })
    .await;
    let novel = app.novel("Switch").await;
    let chapter = app.chapter(&novel, 1, "One").await;
    assert_eq!(
        served(&app, &chapter).await,
        (json!("primary"), json!(false))
    );

    // The operator flips the switch: within two poll periods requests skip the primary.
    std::fs::write(&switch, "true\n").unwrap();
    let mut forced = None;
    for _ in 0..60 {
        forced = sample(&metrics(&app).await, "znovel_llm_fallback_forced");
        if forced == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(forced, Some(1.0), "the switch was re-read");
    assert_eq!(served(&app, &chapter).await, (json!("backup"), json!(true)));
    let text = metrics(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"znovel_llm_fallback_activations_total{reason="forced"}"#
        ),
        Some(1.0),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Generates the chapter and follows it to the end: (model, fallbackUsed).
async fn served(app: &TestApp, chapter: &str) -> (Value, Value) {
    let job = generate(app, chapter, json!({})).await;
    let mut ws = subscribe(app, &app.admin_key, job["id"].as_str().unwrap(), None).await;
    let (_, done) = follow(&mut ws).await;
    assert_eq!(done["__typename"], "ChapterCompleted", "{done}");
    (
        done["job"]["model"].clone(),
        done["job"]["fallbackUsed"].clone(),
    )
}

/// The error code of a refused subscription: an `error` message (validation) or a
/// `next` carrying only errors (the resolver refused), which the server then completes.
fn refusal(msg: &Value) -> String {
    let errors = match msg["type"].as_str() {
        Some("error") => &msg["payload"],
        Some("next") => {
            assert!(msg["payload"]["data"].is_null(), "{msg}");
            &msg["payload"]["errors"]
        }
        _ => panic!("not a refusal: {msg}"),
    };
    errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn next_json_skipping_complete(ws: &mut Ws) -> Value {
    loop {
        let msg = next_json(ws).await;
        if msg["type"] != "complete" {
            return msg;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_websockets_with_a_reconnect_hint() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let mut app = app_with_fake(Backend::Sqlite, &fake).await;
    let novel = app.novel("Restart").await;
    let mut ws = connected(&app, &app.admin_key).await;
    start(&mut ws, "e", EVENTS, json!({ "n": novel })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.begin_shutdown();
    let msg = tokio::time::timeout(Duration::from_secs(5), next_json_skipping_complete(&mut ws))
        .await
        .expect("the server closes the socket promptly");
    assert_eq!(
        msg,
        json!({ "type": "__close", "code": 1012 }),
        "1012 Service Restart: graphql-ws clients reconnect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chapter_stream_over_server_sent_events() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script(
        "primary",
        FakeStream::new(pieces()).interval(Duration::from_millis(5)),
    );
    let app = app_with_fake(Backend::Sqlite, &fake).await;
    let novel = app.novel("SSE").await;
    let chapter = app.chapter(&novel, 1, "One").await;
    let job = generate(&app, &chapter, json!({ "targetWords": 68 })).await;
    // graphql-sse, distinct connections: POST with Accept: text/event-stream.
    let body = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.admin_key)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": STREAM, "variables": { "j": job["id"] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(body.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(Duration::from_secs(30), body.text())
        .await
        .expect("the stream completes")
        .unwrap();
    let mut events = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let kind = block
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .unwrap_or("");
        let data = block
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or("");
        events.push((kind.to_owned(), data.to_owned()));
    }
    assert_eq!(events.last().unwrap().0, "complete", "{text}");
    let results: Vec<Value> = events
        .iter()
        .filter(|(k, _)| k == "next")
        .map(|(_, d)| serde_json::from_str::<Value>(d).unwrap()["data"]["chapterStream"].clone())
        .collect();
    let (done, chunks) = results.split_last().unwrap();
    assert_eq!(done["__typename"], "ChapterCompleted", "{done}");
    let seqs: Vec<i64> = chunks.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=chunks.len() as i64).collect::<Vec<_>>());
    let streamed: String = chunks.iter().map(|c| c["text"].as_str().unwrap()).collect();
    assert_eq!(done["chapter"]["content"], streamed.as_str());

    // Another tenant's job over SSE: one `next` with NOT_FOUND, then `complete`.
    let stranger = app.new_tenant("sse-stranger").await;
    let text = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&stranger)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": STREAM, "variables": { "j": job["id"] } }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("NOT_FOUND"), "{text}");
    assert!(text.contains("event: complete"), "{text}");
}

/// The raw text frames of one subscription on a fresh connection, up to its `complete`.
async fn raw_frames(app: &TestApp, id: &str, query: &str, variables: Value) -> Vec<String> {
    use futures_util::StreamExt;
    let mut ws = connected(app, &app.admin_key).await;
    start(&mut ws, id, query, variables).await;
    let mut frames = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("the stream progresses")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(t) = msg {
            let done = t.starts_with(r#"{"type":"complete""#);
            frames.push(t.to_string());
            if done {
                return frames;
            }
        }
    }
}

/// Over graphql-transport-ws a chunk's frame is written from bytes shared by the job's
/// subscribers instead of executing GraphQL per subscriber: the frames are exactly the
/// ones async-graphql sends (a named fragment keeps a subscription on that path),
/// for every selection shape, with escaping, aliases, fragments and `after`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_chunk_frames_are_the_bytes_async_graphql_sends() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let mut tricky = pieces();
    tricky.splice(
        3..3,
        [
            "\"Quoted,\" she said \\ ",
            "line\nbreak\ttab \u{1}\u{1f} ",
            "雨夜，灯塔。 ",
            "🌊 </script> ",
        ]
        .map(str::to_owned),
    );
    fake.script(
        "primary",
        FakeStream::new(tricky).interval(Duration::from_millis(2)),
    );
    let app = app_with_fake(Backend::Sqlite, &fake).await;
    let novel = app.novel("Shared bytes").await;
    let chapter = app.chapter(&novel, 1, "One").await;
    let job = generate(&app, &chapter, json!({ "targetWords": 80 })).await;
    let j = job["id"].as_str().unwrap().to_owned();
    let shared = || async { sample(&metrics(&app).await, "znovel_stream_chunks_shared_total") };

    // (selection, variables, whether chunks take the shared path)
    let shapes = [
        (STREAM.to_owned(), json!({ "j": j }), true),
        (STREAM.to_owned(), json!({ "j": j, "a": 5 }), true),
        (
            r#"subscription($j: ID!) { c: chapterStream(jobId: $j) {
                ... on ChapterStreamEvent { kind: __typename }
                ... on ChapterChunk { text n: seq text }
                ... on ChapterIssue { seq }
                ... on ChapterCompleted { seq chapter { version } }
            } }"#
                .to_owned(),
            json!({ "j": j }),
            true,
        ),
        // Nothing selected on a chunk: async-graphql answers `null`; left to it.
        (
            "subscription($j: ID!) { chapterStream(jobId: $j) { ... on ChapterIssue { seq } } }"
                .to_owned(),
            json!({ "j": j }),
            false,
        ),
    ];
    // No story memory yet, so no continuity issue: every event but the last is a chunk.
    let all = raw_frames(&app, "x", STREAM, json!({ "j": j })).await;
    assert!(!all.iter().any(|f| f.contains("ChapterIssue")), "{all:?}");
    assert!(
        fast_text(&all).contains("雨夜，灯塔。"),
        "the text arrives whole"
    );
    let mut chunks_seen = 0;
    for (i, (query, variables, direct)) in shapes.iter().enumerate() {
        let before = shared().await.unwrap_or(0.0);
        let fast = raw_frames(&app, "op-1", query, variables.clone()).await;
        let after_fast = shared().await.unwrap_or(0.0);
        // The same selection through a named fragment: executed by async-graphql.
        let reference = with_fragment(query);
        let slow = raw_frames(&app, "op-1", &reference, variables.clone()).await;
        let after_slow = shared().await.unwrap_or(0.0);
        assert_eq!(fast, slow, "shape {i}: the same bytes on both paths");
        let next = fast
            .iter()
            .filter(|f| f.starts_with(r#"{"type":"next""#))
            .count();
        assert!(next >= 10, "shape {i}: {fast:?}");
        // Every frame but the final event's went the shared way; none of the reference's.
        let expected = if *direct { next - 1 } else { 0 };
        assert_eq!(after_fast - before, expected as f64, "shape {i}");
        assert_eq!(after_slow, after_fast, "shape {i}");
        chunks_seen += expected;
    }
    assert!(chunks_seen > 0);
}

/// `query` with a named fragment spread in its `chapterStream` selection that adds
/// nothing to a chunk or to the completed event.
fn with_fragment(query: &str) -> String {
    let field = query.find("chapterStream(").unwrap();
    let open = field + query[field..].find('{').unwrap() + 1;
    format!(
        "{} ...Unused {}\nfragment Unused on ChapterFailed {{ seq }}",
        &query[..open],
        &query[open..]
    )
}

/// The streamed text of `frames` (chunk events of the STREAM selection).
fn fast_text(frames: &[String]) -> String {
    frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(f).ok())
        .filter(|v| v["payload"]["data"]["chapterStream"]["__typename"] == "ChapterChunk")
        .map(|v| {
            v["payload"]["data"]["chapterStream"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// One subscription's messages so far: its chunks, its final event, whether the server
/// completed it.
type Seen = std::collections::HashMap<String, (Vec<(i64, String)>, Value, bool)>;

/// Reads the next message of any subscription into `seen`.
async fn read_into(ws: &mut Ws, seen: &mut Seen) {
    let msg = tokio::time::timeout(Duration::from_secs(30), next_json(ws))
        .await
        .expect("the streams progress");
    let id = msg["id"]
        .as_str()
        .expect("an operation's message")
        .to_owned();
    let entry = seen.entry(id).or_default();
    match msg["type"].as_str() {
        Some("next") => {
            assert!(!entry.2, "nothing after the operation's complete: {msg}");
            let ev = &msg["payload"]["data"]["chapterStream"];
            if ev["__typename"] == "ChapterChunk" {
                let text = ev["text"].as_str().unwrap().to_owned();
                entry.0.push((ev["seq"].as_i64().unwrap(), text));
            } else {
                entry.1 = ev.clone();
            }
        }
        Some("complete") => entry.2 = true,
        other => panic!("unexpected {other:?}: {msg}"),
    }
}

/// A `chapterStream` on the shared-bytes path is followed by its connection, outside
/// async-graphql: completing it mid-job stops its frames (nothing after the server's
/// `complete`, no final event) and frees its slot at once, even for a subscribe sent right behind the
/// `complete`; the connection's other subscription streams on to the end, and the new
/// one resumes with `after` where the stopped one left off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_a_chapter_stream_mid_job_stops_it_and_frees_its_slot() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script(
        "primary",
        FakeStream::new(pieces()).interval(Duration::from_millis(30)),
    );
    let app = app_with_two_subscriptions_per_connection(&fake).await;
    let novel = app.novel("Stopped midway").await;
    let chapter = app.chapter(&novel, 1, "One").await;
    let job = generate(&app, &chapter, json!({})).await;
    let j = job["id"].as_str().unwrap().to_owned();
    let mut ws = connected(&app, &app.admin_key).await;
    start(&mut ws, "a", STREAM, json!({ "j": j })).await;
    start(&mut ws, "b", STREAM, json!({ "j": j })).await;
    let mut seen = Seen::default();
    while seen.get("a").is_none_or(|a| a.0.len() < 3) {
        read_into(&mut ws, &mut seen).await;
    }
    // Stop "a"; a subscription sent right behind it takes the slot "a" held (the cap
    // is two, and "b" runs), resuming after the last chunk "a" had shown.
    complete(&mut ws, "a").await;
    let stopped_at = seen["a"].0.len();
    let last = seen["a"].0[stopped_at - 1].0;
    start(&mut ws, "c", STREAM, json!({ "j": j, "a": last })).await;
    while !(seen.get("b").is_some_and(|b| b.2) && seen.get("c").is_some_and(|c| c.2)) {
        read_into(&mut ws, &mut seen).await;
    }
    let (a, b, c) = (&seen["a"], &seen["b"], &seen["c"]);
    assert_eq!(b.1["__typename"], "ChapterCompleted", "{:?}", b.1);
    assert_eq!(c.1["__typename"], "ChapterCompleted", "{:?}", c.1);
    // The server acknowledges the client's complete with its own, then sends nothing
    // more for it (`read_into` checks), not even the final event.
    assert!(a.2, "acknowledged");
    assert_eq!(
        a.1,
        Value::Null,
        "no final event after the client's complete"
    );
    // Frames already on their way when "complete" left may still have arrived.
    assert!(
        a.0.len() < b.0.len(),
        "the stopped subscription's frames stop: {} of {} (stopped at {stopped_at})",
        a.0.len(),
        b.0.len()
    );
    assert_eq!(a.0[..], b.0[..a.0.len()], "a prefix, in order");
    assert_eq!(
        c.0[..],
        b.0[stopped_at..],
        "resumed without gap or duplicate"
    );
    let text: String = b.0.iter().map(|(_, t)| t.as_str()).collect();
    assert!(text.starts_with("The storm broke"), "{text}");
    assert_eq!(b.1["chapter"]["content"], text.as_str());
}

/// A subscriber whose client stops reading while a chapter streams (its socket fills:
/// a small receive buffer, 3 MB of chunks) holds up nobody: another subscriber of the
/// same job gets the whole chapter meanwhile. Once it reads again it gets every chunk,
/// in order and once, then the final event: what it did not take waited for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_misses_nothing_and_holds_up_nobody() {
    // 100 chunks of 30,000 characters (one long word apiece: past the target at the end),
    // more than the loopback's socket buffers hold, so the server's writes to it block.
    let chunks: Vec<String> = (0..100)
        .map(|i| format!("{i:04}{} ", "x".repeat(29_995)))
        .collect();
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script("primary", FakeStream::new(chunks.clone()));
    let app = app_with_fake(Backend::Sqlite, &fake).await;
    let novel = app.novel("Slow reader").await;
    let chapter = app.chapter(&novel, 1, "One").await;

    // The slow client: a 4 KiB receive buffer, so the server's writes block soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(app.addr).await.unwrap();
    let (slow, _) = tokio_tungstenite::client_async(
        request(&app),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await
    .unwrap();
    let mut slow = open(slow, &app.admin_key).await;

    let job = generate(&app, &chapter, json!({ "targetWords": 95 })).await;
    let j = job["id"].as_str().unwrap().to_owned();
    start(&mut slow, "s", STREAM, json!({ "j": j })).await;
    let mut fast = subscribe(&app, &app.admin_key, &j, None).await;
    // The slow client reads nothing while the other follows the job to its end.
    let (got, done) = follow(&mut fast).await;
    assert_eq!(done["__typename"], "ChapterCompleted", "{done}");
    let whole = chunks.concat();
    let text: String = got.iter().map(|(_, t)| t.as_str()).collect();
    assert!(text == whole, "the reading subscriber got it all");

    let (late, late_done) = follow(&mut slow).await;
    assert_eq!(late_done["__typename"], "ChapterCompleted", "{late_done}");
    let seqs: Vec<i64> = late.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=got.len() as i64).collect::<Vec<_>>(),
        "every chunk once, in order"
    );
    assert!(late == got, "the same chunks as the reading subscriber's");
    assert!(late_done["chapter"]["content"] == whole.as_str());
}

/// A job handed back for another attempt (its worker shutting down) right after its first
/// chunk keeps that chunk's time: the first-token write, spread over a second while the
/// job runs, is made before the job goes back. Without it, the next attempt would record
/// its own first chunk and the job's time to first token would read longer than it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_handed_back_after_its_first_chunk_keeps_its_first_token_time() {
    use std::sync::Arc;
    use znovel_domain::ids::{ChapterId, JobId, NovelId};
    use znovel_domain::model::{GenerationJob, JobInput, JobKind};
    use znovel_domain::ports::{JobMessage, JobRepository, TenantRepository};
    use znovel_domain::services::runner::{JobRunner, RunOutcome, RunnerConfig, StopReason};
    use znovel_domain::services::{first_token_mark_delay, queued_job};
    use znovel_infra::llm::{OpenAiCompatible, OpenAiConfig};
    use znovel_infra::queue::events::MemoryJobEvents;
    use znovel_infra::queue::memory::MemoryTokenStreams;
    use znovel_infra::{SqlOptions, SqlStore};

    let fake = FakeOpenAi::start(None).await.unwrap();
    // The first chunk at once, the next two seconds later: the worker stops in between.
    fake.script(
        "primary",
        FakeStream::new(pieces()).interval(Duration::from_secs(2)),
    );
    let app = TestApp::spawn(Backend::Sqlite).await;
    let novel = app.novel("Handed back").await;
    let chapter = app.chapter(&novel, 1, "One").await;
    let uuid = |id: &str| znovel::graphql::ids::parse(id).unwrap().1;
    let store = Arc::new(
        SqlStore::connect(&app.database_url, SqlOptions::default())
            .await
            .unwrap(),
    );
    let tenant = store.find_tenant_by_slug("local").await.unwrap().id;
    // A job whose first-token write, left to itself, would wait most of a second.
    let id = std::iter::repeat_with(JobId::new)
        .find(|j| first_token_mark_delay(*j) >= Duration::from_millis(900))
        .unwrap();
    let job = GenerationJob {
        id,
        ..queued_job(
            tenant,
            NovelId::from_uuid(uuid(&novel)),
            Some(ChapterId::from_uuid(uuid(&chapter))),
            JobKind::Draft,
            JobInput {
                target_words: Some(50),
                ..JobInput::default()
            },
            None,
            None,
        )
    };
    store.insert_job(&job).await.unwrap();
    let llm = OpenAiCompatible::new(OpenAiConfig::new(fake.base_url(), "primary")).unwrap();
    let runner = JobRunner::new(
        store.clone(),
        store.clone(),
        Arc::new(llm),
        Arc::new(MemoryTokenStreams::new(Default::default())),
        Arc::new(MemoryJobEvents::default()),
        RunnerConfig::default(),
    );
    let msg = JobMessage {
        tenant_id: tenant,
        job_id: id,
    };
    let started = znovel_domain::services::now();
    // The worker shuts down 300 ms into the job (its first chunk came at once).
    let stop = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        StopReason::Shutdown
    };
    let outcome = runner.run(&msg, stop).await;
    assert!(matches!(outcome, RunOutcome::Retry(_)), "{outcome:?}");
    let stored = store.get_job(tenant, id).await.unwrap();
    let at = stored
        .first_token_at
        .expect("the first chunk's time is kept when the job is handed back");
    assert!(
        at >= started && at <= started + chrono::Duration::milliseconds(300),
        "the first chunk's own time: {at} (job started {started})"
    );
}
