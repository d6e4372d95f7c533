//! Batch generation: `generateChapters` writes a range of chapters in order through one
//! parent job with a child job per chapter (each child starts after the previous one is
//! stored and remembered: its prompt knows what the previous chapter's memory
//! established), the same idempotency key returns the same batch, a DRAFT creates missing
//! chapters and drafts missing outlines from the novel's plan (a clear error without
//! one), `estimateBatch` tells the cost before it starts, cancelling the parent stops the chapters not yet written, and a
//! continuity error or a chapter whose memory fails stops the batch when `stopOn: ERROR`.

use crate::helpers::{Backend, TestApp};
use crate::memory::{empty_answer, extraction};
use serde_json::{Value, json};
use std::time::Duration;
use znovel_infra::llm::testing::{FakeOpenAi, FakeStream};

const BATCH: &str = "mutation($i: GenerateChaptersInput!) { generateChapters(input: $i) { job { id kind status chapterId } } }";
const JOB: &str = "query($j: ID!) { generationJob(id: $j) { status error promptTokens \
    completionTokens progress { done total } } }";
const JOBS: &str = "query($n: ID!) { generationJobs(novelId: $n, first: 100) { edges { node { id kind status chapterId startedAt finishedAt chapter { seq } } } } }";
const CHAPTER: &str = "query($c: ID!) { chapter(id: $c) { content version } }";

fn prose(words: usize) -> Vec<String> {
    (0..words)
        .map(|i| {
            if i % 10 == 9 {
                "waves. ".to_owned()
            } else {
                "the ".to_owned()
            }
        })
        .collect()
}

async fn app(backend: Backend, stream: FakeStream) -> (TestApp, FakeOpenAi) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script("primary", stream);
    let base = fake.base_url();
    let app = TestApp::spawn_with(backend, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("primary".into());
    })
    .await;
    (app, fake)
}

async fn novel_of(app: &TestApp, n: i64) -> (String, Vec<String>) {
    let novel = app.novel("Batch").await;
    let mut chapters = Vec::new();
    for seq in 1..=n {
        let d = app
            .ok(
                "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }",
                json!({ "i": { "novelId": novel, "seq": seq, "title": format!("Part {seq}"), "outline": format!("The sea rises, part {seq}.") } }),
            )
            .await;
        chapters.push(
            d["createChapter"]["chapter"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    (novel, chapters)
}

async fn wait_final(app: &TestApp, job: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let j = app.ok(JOB, json!({ "j": job })).await["generationJob"].clone();
        if matches!(
            j["status"].as_str(),
            Some("SUCCEEDED" | "FAILED" | "CANCELLED")
        ) {
            return j;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "batch did not end: {j}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The chapter-writing children, by chapter seq.
async fn children(app: &TestApp, novel: &str) -> Vec<Value> {
    let d = app.ok(JOBS, json!({ "n": novel })).await;
    let mut out: Vec<Value> = d["generationJobs"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .filter(|j| j["kind"] == "DRAFT" && !j["chapterId"].is_null())
        .collect();
    out.sort_by_key(|j| j["chapter"]["seq"].as_i64());
    out
}

async fn writes_in_order(backend: Backend) {
    // Each chapter is written, then its memory extracted, before the next one.
    let (app, fake) = app(backend, FakeStream::new(prose(60)).usage(30, 60)).await;
    for last in [false, false, true] {
        fake.script("primary", extraction(empty_answer()));
        if !last {
            fake.script("primary", FakeStream::new(prose(60)).usage(30, 60));
        }
    }
    let (novel, chapters) = novel_of(&app, 3).await;
    let input = json!({ "novelId": novel, "fromSeq": 1, "toSeq": 3, "targetWords": 60, "idempotencyKey": "batch-1" });
    let d = app.ok(BATCH, json!({ "i": input })).await;
    let parent = d["generateChapters"]["job"].clone();
    assert_eq!(parent["status"], "QUEUED");
    assert!(parent["chapterId"].is_null());
    let id = parent["id"].as_str().unwrap().to_owned();
    let again = app.ok(BATCH, json!({ "i": input })).await;
    assert_eq!(
        again["generateChapters"]["job"]["id"],
        id.as_str(),
        "same key, same batch"
    );

    let done = wait_final(&app, &id).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert!(done["error"].is_null(), "{done}");
    assert_eq!(done["progress"], json!({ "done": 3, "total": 3 }), "{done}");
    assert_eq!(
        done["completionTokens"], 180,
        "the children's tokens: {done}"
    );
    for c in &chapters {
        let ch = app.ok(CHAPTER, json!({ "c": c })).await["chapter"].clone();
        assert_eq!(ch["version"], 1, "written once: {ch}");
        assert!(ch["content"].as_str().unwrap().contains("waves."), "{ch}");
    }
    let kids = children(&app, &novel).await;
    assert_eq!(kids.len(), 3, "one child per chapter: {kids:?}");
    for pair in kids.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(a["status"], "SUCCEEDED");
        let (finished, started) = (
            a["finishedAt"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap(),
            b["startedAt"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap(),
        );
        assert!(
            finished <= started,
            "chapter k+1 starts after chapter k is stored: {a} {b}"
        );
    }

    // Refused up front: a missing chapter, a reversed range, another batch under the key.
    let (code, body) = app
        .err_as(
            Some(&app.admin_key),
            BATCH,
            json!({ "i": { "novelId": novel, "fromSeq": 2, "toSeq": 5 } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        body.to_string()
            .contains("chapter 4 has no outline and the novel has no plan"),
        "a DRAFT creates missing chapters only from a plan: {body}"
    );
    let (code, body) = app
        .err_as(
            Some(&app.admin_key),
            BATCH,
            json!({ "i": { "novelId": novel, "fromSeq": 2, "toSeq": 5, "kind": "CONTINUE" } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        body.to_string().contains("chapter 4 does not exist"),
        "{body}"
    );
    let code = app
        .err(
            BATCH,
            json!({ "i": { "novelId": novel, "fromSeq": 3, "toSeq": 2 } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let code = app
        .err(BATCH, json!({ "i": { "novelId": novel, "fromSeq": 1, "toSeq": 2, "idempotencyKey": "batch-1" } }))
        .await;
    assert_eq!(code, "CONFLICT");
}

async fn cancel_stops_the_rest(backend: Backend) {
    // Slow enough to cancel during the first chapter.
    let stream = FakeStream::new(prose(200)).interval(Duration::from_millis(30));
    let (app, _fake) = app(backend, stream).await;
    let (novel, chapters) = novel_of(&app, 3).await;
    let d = app
        .ok(
            BATCH,
            json!({ "i": { "novelId": novel, "fromSeq": 1, "toSeq": 3, "targetWords": 200 } }),
        )
        .await;
    let id = d["generateChapters"]["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while children(&app, &novel)
        .await
        .first()
        .map(|c| c["status"].clone())
        != Some(json!("RUNNING"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first chapter never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = app
        .ok(
            "mutation($i: CancelGenerationInput!) { cancelGeneration(input: $i) { job { status } } }",
            json!({ "i": { "jobId": id } }),
        )
        .await;
    assert_eq!(d["cancelGeneration"]["job"]["status"], "CANCELLED");
    assert_eq!(wait_final(&app, &id).await["status"], "CANCELLED");
    // The child in flight ends CANCELLED; no later chapter was started or written.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let kids = children(&app, &novel).await;
        if kids.len() == 1 && kids[0]["status"] == "CANCELLED" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{kids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(children(&app, &novel).await.len(), 1);
    for c in &chapters {
        let ch = app.ok(CHAPTER, json!({ "c": c })).await["chapter"].clone();
        assert_eq!(ch["content"], "", "left as it was: {ch}");
    }
}

/// The fake model writing `text`, a word at a time.
fn writing(text: &str) -> FakeStream {
    FakeStream::new(
        text.split_inclusive(' ')
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    )
}

/// The requests that wrote chapters (not the memory extractions, which ask for JSON).
fn writes(fake: &FakeOpenAi) -> Vec<String> {
    fake.requests_for("primary")
        .into_iter()
        .filter(|r| r.body.get("response_format").is_none_or(Value::is_null))
        .map(|r| {
            r.messages()
                .into_iter()
                .map(|(_, content)| content)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// A novel of three chapters (outlines only) where Ned Stark, alias Lord Stark, dies in
/// chapter 1; returns (novel, chapter ids).
async fn winter(app: &TestApp) -> (String, Vec<String>) {
    let (novel, chapters) = novel_of(app, 3).await;
    let ned = app
        .ok(
            "mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id } } }",
            json!({ "i": { "novelId": novel, "name": "Ned Stark", "kind": "CHARACTER",
                           "aliases": ["Lord Stark"] } }),
        )
        .await["createEntity"]["entity"]["id"]
        .clone();
    app.ok(
        "mutation($i: RecordEntityStateInput!) { recordEntityState(input: $i) { entityState { id } } }",
        json!({ "i": { "entityId": ned, "chapterId": chapters[0], "state": "beheaded", "vital": "DEAD" } }),
    )
    .await;
    (novel, chapters)
}

/// The model writes a dead man speaking in chapters 2 and 3: `stopOn: ERROR` stops after
/// chapter 2 (stored and remembered, the batch FAILED naming the chapter and the issue);
/// `stopOn: NEVER` writes both.
async fn a_continuity_error(backend: Backend, stop_on: &str) {
    use crate::validation::GHOST;
    let (app, fake) = app(backend, writing(GHOST)).await;
    fake.script("primary", extraction(empty_answer()));
    fake.script("primary", writing(GHOST));
    fake.script("primary", extraction(empty_answer()));
    let (novel, chapters) = winter(&app).await;
    let d = app
        .ok(
            BATCH,
            json!({ "i": { "novelId": novel, "fromSeq": 2, "toSeq": 3, "targetWords": 50,
                           "stopOn": stop_on } }),
        )
        .await;
    let id = d["generateChapters"]["job"]["id"].as_str().unwrap();
    let done = wait_final(&app, id).await;
    let two = app.ok(CHAPTER, json!({ "c": chapters[1] })).await["chapter"].clone();
    assert!(
        two["content"].as_str().unwrap().contains("said Lord Stark"),
        "chapter 2 is stored: {two}"
    );
    let three = app.ok(CHAPTER, json!({ "c": chapters[2] })).await["chapter"].clone();
    let kids = children(&app, &novel).await;
    if stop_on == "ERROR" {
        assert_eq!(done["status"], "FAILED", "{done}");
        let error = done["error"].as_str().unwrap();
        assert!(
            error.contains("chapter 2") && error.contains("DEAD_CHARACTER"),
            "names the chapter and the issue: {error}"
        );
        assert!(error.contains("Lord Stark"), "{error}");
        assert_eq!(three["content"], "", "chapter 3 is not written: {three}");
        assert_eq!(kids.len(), 1, "{kids:?}");
        assert_eq!(writes(&fake).len(), 1);
    } else {
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        assert_eq!(done["progress"], json!({ "done": 2, "total": 2 }));
        assert!(
            three["content"]
                .as_str()
                .unwrap()
                .contains("said Lord Stark"),
            "{three}"
        );
        assert_eq!(kids.len(), 2, "{kids:?}");
    }
    // Chapter 2 was remembered before the batch went on or stopped.
    let memory = "query($n: ID!) { novel(id: $n) { memoryProgress { extractedChapters } } }";
    let p = app.ok(memory, json!({ "n": novel })).await;
    let want = if stop_on == "ERROR" { 1 } else { 2 };
    assert_eq!(
        p["novel"]["memoryProgress"]["extractedChapters"], want,
        "{p}"
    );
}

/// Chapter 2's prompt has the summary that only chapter 1's memory job established: the
/// batch waited for it.
async fn the_next_chapter_knows_what_the_last_established(backend: Backend) {
    let (app, fake) = app(backend, FakeStream::new(prose(60))).await;
    let mut answer = empty_answer();
    answer["summary"] = json!("Captain Orla Vance seized the lighthouse at Skarn.");
    fake.script("primary", extraction(answer));
    fake.script("primary", FakeStream::new(prose(60)));
    fake.script("primary", extraction(empty_answer()));
    let (novel, _) = novel_of(&app, 2).await;
    let d = app
        .ok(
            BATCH,
            json!({ "i": { "novelId": novel, "fromSeq": 1, "toSeq": 2, "targetWords": 60 } }),
        )
        .await;
    let id = d["generateChapters"]["job"]["id"].as_str().unwrap();
    let done = wait_final(&app, id).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let prompts = writes(&fake);
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(!prompts[0].contains("Orla Vance"), "{}", prompts[0]);
    assert!(
        prompts[1].contains("Captain Orla Vance seized the lighthouse at Skarn."),
        "chapter 2's prompt knows what chapter 1 established: {}",
        prompts[1]
    );
}

/// The model answers chapter 1's memory extraction with prose, not JSON: chapter 1 stays
/// stored; `stopOn: ERROR` stops there saying why, `stopOn: NEVER` writes chapter 2 and
/// notes the failure.
async fn a_memory_failure(backend: Backend, stop_on: &str) {
    let (app, fake) = app(backend, FakeStream::new(prose(60))).await;
    for reply in [prose(60), prose(60), prose(60)] {
        fake.script("primary", FakeStream::new(reply));
    }
    let (novel, chapters) = novel_of(&app, 2).await;
    let d = app
        .ok(
            BATCH,
            json!({ "i": { "novelId": novel, "fromSeq": 1, "toSeq": 2, "targetWords": 60,
                           "stopOn": stop_on } }),
        )
        .await;
    let id = d["generateChapters"]["job"]["id"].as_str().unwrap();
    let done = wait_final(&app, id).await;
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("chapter 1: its memory failed"),
        "says why: {done}"
    );
    let one = app.ok(CHAPTER, json!({ "c": chapters[0] })).await["chapter"].clone();
    assert_eq!(one["version"], 1, "chapter 1 stays stored: {one}");
    let two = app.ok(CHAPTER, json!({ "c": chapters[1] })).await["chapter"].clone();
    if stop_on == "ERROR" {
        assert_eq!(done["status"], "FAILED", "{done}");
        assert_eq!(two["content"], "", "{two}");
        assert_eq!(writes(&fake).len(), 1);
    } else {
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        assert_eq!(two["version"], 1, "{two}");
        assert!(error.contains("chapter 2: its memory failed"), "{done}");
    }
}

const ESTIMATE: &str = "query($i: GenerateChaptersInput!) { estimateBatch(input: $i) { chapters chaptersToCreate outlinesToDraft promptTokens completionTokens memoryTokens totalTokens tokensLeftToday fitsQuota seconds tokensPerSecond firstTokenSeconds memorySeconds basis sampleJobs perChapter { seq title exists draftsOutline targetWords promptTokens completionTokens } } }";

/// A drafted outline, as the model answers it.
fn outline_answer(title: &str, beats: &[&str]) -> FakeStream {
    FakeStream::new([json!({ "title": title, "beats": beats }).to_string()]).usage(100, 40)
}

async fn outlines_from_the_plan(backend: Backend) {
    let (app, fake) = app(backend, FakeStream::new(prose(60)).usage(30, 60)).await;
    // The batch's requests in order: chapter 1 written (scripted above) and
    // remembered; then for chapters 2, 3, 4 an outline, the chapter, its memory.
    fake.script("primary", extraction(empty_answer()).usage(200, 50));
    for (title, beats) in [
        (
            "ignored: chapter 2 keeps its title",
            ["Mara finds the lamp cold.", "She climbs the stair."],
        ),
        (
            "The Long Night",
            ["The storm breaks the glass.", "Mara holds the flame."],
        ),
        (
            "Morning",
            ["A ship sees the light.", "Mara sleeps at last."],
        ),
    ] {
        fake.script("primary", outline_answer(title, &beats));
        fake.script(
            "primary",
            FakeStream::new(prose(60))
                .usage(30, 60)
                .interval(Duration::from_millis(1)),
        );
        fake.script("primary", extraction(empty_answer()).usage(200, 50));
    }
    let d = app
        .ok(
            "mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }",
            json!({ "i": { "title": "The Lamp", "description": "A lighthouse keeper, Mara, keeps the lamp alive through the winter of the great storm." } }),
        )
        .await;
    let novel = d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned();
    let d = app
        .ok(
            "mutation($i: CreateVolumeInput!) { createVolume(input: $i) { volume { id } } }",
            json!({ "i": { "novelId": novel, "title": "Winter", "summary": "The storm comes and the lamp must not go out." } }),
        )
        .await;
    let volume = d["createVolume"]["volume"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (seq, title, outline) in [
        (1, "Arrival", "Mara arrives on the island."),
        (2, "The Cold Lamp", ""),
        (5, "Leaving", "Mara leaves the island in spring."),
    ] {
        app.ok(
            "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }",
            json!({ "i": { "novelId": novel, "seq": seq, "title": title, "outline": outline, "volumeId": volume } }),
        )
        .await;
    }
    let input = json!({ "novelId": novel, "fromSeq": 1, "toSeq": 4, "targetWords": 60 });

    // The estimate, before: what will be created and drafted, from defaults.
    let e = app.ok(ESTIMATE, json!({ "i": input })).await["estimateBatch"].clone();
    assert_eq!(e["chapters"], 4, "{e}");
    assert_eq!(e["chaptersToCreate"], 2, "{e}");
    assert_eq!(e["outlinesToDraft"], 3, "{e}");
    assert_eq!(e["basis"], "DEFAULTS");
    assert_eq!(e["sampleJobs"], 0);
    let per: Vec<(i64, bool, bool)> = e["perChapter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["seq"].as_i64().unwrap(),
                c["exists"].as_bool().unwrap(),
                c["draftsOutline"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per,
        vec![
            (1, true, false),
            (2, true, true),
            (3, false, true),
            (4, false, true)
        ]
    );
    assert_eq!(e["perChapter"][1]["title"], "The Cold Lamp");
    assert_eq!(e["perChapter"][0]["targetWords"], 60);
    // 60 words at 1.4 tokens a word; a drafted outline adds its own answer.
    assert_eq!(e["perChapter"][0]["completionTokens"], 84, "{e}");
    assert!(
        e["perChapter"][1]["completionTokens"].as_i64() > Some(84),
        "{e}"
    );
    let total = e["promptTokens"].as_i64().unwrap()
        + e["completionTokens"].as_i64().unwrap()
        + e["memoryTokens"].as_i64().unwrap();
    assert_eq!(e["totalTokens"].as_i64(), Some(total));
    assert_eq!(e["fitsQuota"], true);
    assert!(
        e["seconds"].as_f64().unwrap() > 4.0 * 15.0,
        "four chapters remembered: {e}"
    );
    // A quota too small for it says so.
    app.ok(
        "mutation { updateQuota(input: { maxTokensPerDay: 1000 }) { tenant { id } } }",
        json!({}),
    )
    .await;
    let e = app.ok(ESTIMATE, json!({ "i": input })).await["estimateBatch"].clone();
    assert_eq!(
        (e["tokensLeftToday"].as_i64(), e["fitsQuota"].as_bool()),
        (Some(1000), Some(false))
    );
    app.ok(
        "mutation { updateQuota(input: { maxTokensPerDay: 1000000 }) { tenant { id } } }",
        json!({}),
    )
    .await;

    let d = app.ok(BATCH, json!({ "i": input })).await;
    let id = d["generateChapters"]["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = wait_final(&app, &id).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        done["completionTokens"], 240,
        "the children's tokens: {done}"
    );

    let d = app
        .ok(
            "query($n: ID!) { novel(id: $n) { chapters(first: 10) { edges { node { seq title outline version volume { id } } } } } }",
            json!({ "n": novel }),
        )
        .await;
    let chapters: Vec<Value> = d["novel"]["chapters"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    let seqs: Vec<i64> = chapters
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5], "two created, none twice");
    assert_eq!(chapters[0]["outline"], "Mara arrives on the island.");
    assert_eq!(
        chapters[1]["title"], "The Cold Lamp",
        "an existing title is kept"
    );
    assert_eq!(
        chapters[1]["outline"],
        "- Mara finds the lamp cold.\n- She climbs the stair."
    );
    assert_eq!(chapters[2]["title"], "The Long Night");
    assert_eq!(
        chapters[2]["outline"],
        "- The storm breaks the glass.\n- Mara holds the flame."
    );
    assert_eq!(chapters[3]["title"], "Morning");
    for c in &chapters[..4] {
        assert_eq!(c["version"], 1, "written once: {c}");
        assert_eq!(
            c["volume"]["id"],
            volume.as_str(),
            "in the volume of the chapter before: {c}"
        );
    }

    // What the outline prompts were given, and what the writer was given after.
    let requests = fake.requests_for("primary");
    let outline_prompts: Vec<String> = requests
        .iter()
        .filter(|r| r.body.to_string().contains("\"beats\""))
        .map(|r| {
            r.messages()
                .into_iter()
                .map(|(_, c)| c)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    assert_eq!(outline_prompts.len(), 3);
    let first = &outline_prompts[0];
    assert!(
        first.contains("Premise:\nA lighthouse keeper, Mara"),
        "{first}"
    );
    assert!(
        first.contains("Volume 1 (Winter):\nThe storm comes"),
        "{first}"
    );
    assert!(
        first.contains("Chapter 1 (Arrival)\n  outline: Mara arrives on the island."),
        "{first}"
    );
    assert!(first.contains("chapter 2, \"The Cold Lamp\""), "{first}");
    assert!(
        first.contains("The chapter after it: Chapter 5 (Leaving)\n  outline: Mara leaves the island in spring."),
        "{first}"
    );
    assert!(
        outline_prompts[1]
            .contains("Chapter 2 (The Cold Lamp)\n  outline: - Mara finds the lamp cold."),
        "the next outline follows the last drafted: {}",
        outline_prompts[1]
    );
    let w = writes(&fake);
    assert_eq!(w.len(), 4, "{w:?}");
    assert!(
        w[2].contains("Chapter 3: The Long Night\nOutline:\n- The storm breaks the glass."),
        "{}",
        w[2]
    );

    // Usage: children 4 × 90, outlines 3 × 140, memory 4 × 250 — the parent's tokens
    // (its children's) are not counted twice.
    let q = app
        .ok(
            "{ viewer { tenant { quota { tokensUsedToday } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        q["viewer"]["tenant"]["quota"]["tokensUsedToday"],
        360 + 420 + 1000
    );

    // Estimated again from what the novel's jobs measured.
    let e = app
        .ok(
            ESTIMATE,
            json!({ "i": { "novelId": novel, "fromSeq": 6, "toSeq": 7 } }),
        )
        .await["estimateBatch"]
        .clone();
    assert_eq!(e["basis"], "HISTORY", "{e}");
    assert!(e["sampleJobs"].as_i64() >= Some(8), "{e}");
    assert!(e["tokensPerSecond"].as_f64() > Some(0.0), "{e}");
    assert_eq!(e["chaptersToCreate"], 2);

    // A member's estimate is refused on another tenant's novel.
    let other = app.new_tenant("estimate-other").await;
    let (code, _) = app
        .err_as(Some(&other), ESTIMATE, json!({ "i": input }))
        .await;
    assert_eq!(code, "NOT_FOUND");
}

macro_rules! on_both {
    ($($name:ident => $body:expr),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(Backend::Postgres).await;
            }
        }
    )*};
}

on_both!(
    stop_on_error => |b| a_continuity_error(b, "ERROR"),
    stop_on_never => |b| a_continuity_error(b, "NEVER"),
    remembered_in_order => the_next_chapter_knows_what_the_last_established,
    memory_fails_stop_on_error => |b| a_memory_failure(b, "ERROR"),
    memory_fails_stop_on_never => |b| a_memory_failure(b, "NEVER"),
    outlines_drafted_from_the_plan => outlines_from_the_plan,
);

mod in_order {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        writes_in_order(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        writes_in_order(Backend::Postgres).await;
    }
}

mod cancelled {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        cancel_stops_the_rest(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        cancel_stops_the_rest(Backend::Postgres).await;
    }
}
