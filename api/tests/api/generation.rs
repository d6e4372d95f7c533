//! Live chapter generation through the API, against a fake OpenAI-compatible server
//! speaking the real SSE wire protocol: `generateChapter` returns the queued job at once,
//! a `graphql-ws` subscriber sees the chapter arrive chunk by chunk, the stored chapter
//! equals the concatenated chunks, `after` resumes without gap or duplicate, fallback and
//! cancellation behave, and another tenant sees nothing.

use crate::helpers::{Backend, TestApp};
use crate::websocket::{Ws, connect, next_json};
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

async fn app_with_fake(backend: Backend, fake: &FakeOpenAi) -> TestApp {
    let base = fake.base_url();
    TestApp::spawn_with(backend, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("primary".into());
        s.llm.fallback_models = vec!["backup".into()];
    })
    .await
}

async fn subscribe(app: &TestApp, key: &str, job: &str, after: Option<i64>) -> Ws {
    let mut ws = connect(app).await;
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
