//! Continuity checking through the API: `checkDraft` flags what contradicts the story as
//! of a chapter (quoting the offending text with code-point offsets and the earlier
//! record or passage as evidence) and passes near misses; `validateChapter` stores the
//! report as the chapter version's `validation`; bad input and other tenants' chapters
//! are refused; a chapter being generated is checked sentence by sentence, its issues
//! streamed as `ChapterIssue`s before it completes and stored as its report. The
//! language-model reviewer adds what the rules cannot see, marked as its own with a
//! confidence; when it fails (an error, a timeout) the rules' report stands, incomplete.

use crate::generation::{app_with_fake, connected, start};
use crate::helpers::{Backend, TestApp};
use crate::websocket::next_json;
use serde_json::{Value, json};
use std::time::Duration;
use znovel_infra::llm::testing::{FakeOpenAi, FakeReply, FakeStream};

const CHECK: &str = "query($i: CheckDraftInput!) { checkDraft(input: $i) { complete \
    issues { kind severity message source suggestion span { start end text } \
    evidence { kind text chapterSeq startOffset endOffset chapter { seq } } } } }";

const VALIDATE: &str = "mutation($i: ValidateChapterInput!) { validateChapter(input: $i) { \
    chapter { id version } report { complete issues { kind span { text } } } } }";

const CH1: &str = "Ned Stark rode north with his sons. The wind came down from the mountains \
    that night, cold as iron, and every dog in the village began to howl at once.";
const CH2: &str = "The sword fell at the Sept. The crowd roared, and the north lost its lord.";

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(crate::helpers::Backend::Postgres).await;
            }
        }
    )*};
}

on_both!(
    check_draft_flags_contradictions_and_passes_near_misses,
    validated_chapters_keep_their_report,
    validation_refuses_bad_input_and_other_tenants,
    live_issues_stream_before_the_chapter_completes,
    failing_closed_keeps_a_chapter_with_an_error_as_a_draft,
    a_rewrite_is_given_the_issues_it_is_to_fix,
    the_reviewer_adds_what_the_rules_cannot_see,
    a_failing_reviewer_never_blocks_a_chapter,
);

/// A novel where Ned Stark (alias Lord Stark) dies in chapter 2; returns (novel, ids of
/// chapters 1 and 2).
pub(crate) async fn story(app: &TestApp) -> (String, String, String) {
    let novel = app.novel("Winter").await;
    let ned = app
        .ok(
            "mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id } } }",
            json!({ "i": { "novelId": novel, "name": "Ned Stark", "kind": "CHARACTER",
                           "aliases": ["Lord Stark"] } }),
        )
        .await["createEntity"]["entity"]["id"]
        .clone();
    let mut ids = Vec::new();
    for (seq, title, content) in [(1, "North", CH1), (2, "The Sept", CH2)] {
        let d = app
            .ok(
                "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }",
                json!({ "i": { "novelId": novel, "seq": seq, "title": title, "content": content } }),
            )
            .await;
        ids.push(
            d["createChapter"]["chapter"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.ok(
        "mutation($i: RecordEntityStateInput!) { recordEntityState(input: $i) { entityState { id } } }",
        json!({ "i": { "entityId": ned, "chapterId": ids[1], "state": "beheaded", "vital": "DEAD" } }),
    )
    .await;
    (novel, ids[0].clone(), ids[1].clone())
}

async fn check(app: &TestApp, novel: &str, text: &str, as_of: i64) -> Value {
    app.ok(
        CHECK,
        json!({ "i": { "novelId": novel, "text": text, "asOfChapter": as_of } }),
    )
    .await["checkDraft"]
        .clone()
}

fn chars(text: &str, start: &Value, end: &Value) -> String {
    let (s, e) = (
        start.as_u64().unwrap() as usize,
        end.as_u64().unwrap() as usize,
    );
    text.chars().skip(s).take(e - s).collect()
}

async fn check_draft_flags_contradictions_and_passes_near_misses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (novel, _, _) = story(&app).await;

    // The dead man speaks, named by his alias, after a Chinese line (offsets are code
    // points, not bytes).
    let draft = "雪落了。“Winter is coming,” said Lord Stark.";
    let r = check(&app, &novel, draft, 2).await;
    assert_eq!(r["complete"], true);
    let issues = r["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 1, "{r:#}");
    let i = &issues[0];
    assert_eq!(i["kind"], "DEAD_CHARACTER");
    assert_eq!(i["severity"], "ERROR");
    assert_eq!(i["source"], "RULE");
    assert_eq!(i["span"]["text"], "Lord Stark");
    assert_eq!(
        chars(draft, &i["span"]["start"], &i["span"]["end"]),
        "Lord Stark"
    );
    assert!(i["suggestion"].as_str().is_some_and(|s| !s.is_empty()));
    let evidence = &i["evidence"][0];
    assert_eq!(evidence["kind"], "ENTITY_STATE");
    assert_eq!(evidence["chapterSeq"], 2);
    assert_eq!(evidence["chapter"]["seq"], 2);
    assert!(
        evidence["text"].as_str().unwrap().contains("dead"),
        "{evidence}"
    );

    // As of chapter 1 he is alive; remembered, he is fine.
    assert_eq!(check(&app, &novel, draft, 1).await["issues"], json!([]));
    let remembered = "Arya remembered how Lord Stark smiled.";
    assert_eq!(
        check(&app, &novel, remembered, 2).await["issues"],
        json!([])
    );

    // A passage of chapter 1 repeated word for word: the evidence quotes it.
    let repeated = "Morning came. The wind came down from the mountains that night, cold as \
        iron, and every dog in the village began to howl at once.";
    let r = check(&app, &novel, repeated, 2).await;
    let i = &r["issues"][0];
    assert_eq!(i["kind"], "REPETITION", "{r:#}");
    assert_eq!(i["span"]["start"], 14);
    let passage = &i["evidence"][0];
    assert_eq!(passage["kind"], "PASSAGE");
    assert_eq!(passage["chapter"]["seq"], 1);
    assert_eq!(
        chars(CH1, &passage["startOffset"], &passage["endOffset"]),
        passage["text"].as_str().unwrap()
    );
    // As of chapter 0 (the bible alone) nothing was written before.
    assert_eq!(check(&app, &novel, repeated, 0).await["issues"], json!([]));
}

async fn validated_chapters_keep_their_report(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (novel, _, _) = story(&app).await;
    let three = app
        .ok(
            "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }",
            json!({ "i": { "novelId": novel, "seq": 3, "title": "Ghost",
                           "content": "Ned Stark smiled and poured the wine." } }),
        )
        .await["createChapter"]["chapter"]["id"]
        .clone();
    let d = app
        .ok(VALIDATE, json!({ "i": { "chapterId": three } }))
        .await;
    let p = &d["validateChapter"];
    assert_eq!(p["chapter"]["id"], three);
    assert_eq!(p["report"]["issues"][0]["kind"], "DEAD_CHARACTER", "{p:#}");
    assert_eq!(p["report"]["issues"][0]["span"]["text"], "Ned Stark");
    let q =
        "query($c: ID!) { chapter(id: $c) { version validation { complete issues { kind } } } }";
    let c = app.ok(q, json!({ "c": three })).await["chapter"].clone();
    assert_eq!(
        c["validation"]["issues"][0]["kind"], "DEAD_CHARACTER",
        "{c:#}"
    );
    assert_eq!(c["validation"]["complete"], true);

    // A new version has no report until it is checked; then the new report is the
    // chapter's.
    app.ok(
        "mutation($i: UpdateChapterInput!) { updateChapter(input: $i) { chapter { version } } }",
        json!({ "i": { "id": three, "content": "Arya remembered how Ned Stark smiled." } }),
    )
    .await;
    let now = app.ok(q, json!({ "c": three })).await["chapter"].clone();
    assert_eq!(now["version"], 2, "{now:#}");
    assert!(now["validation"].is_null(), "{now:#}");
    let d = app
        .ok(VALIDATE, json!({ "i": { "chapterId": three } }))
        .await;
    assert_eq!(d["validateChapter"]["chapter"]["version"], 2);
    let now = app.ok(q, json!({ "c": three })).await["chapter"].clone();
    assert_eq!(now["validation"]["issues"], json!([]), "{now:#}");
    assert_eq!(now["validation"]["complete"], true);
}

async fn validation_refuses_bad_input_and_other_tenants(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (novel, one, _) = story(&app).await;
    let code = |text: String, as_of: i64| {
        let app = &app;
        let novel = novel.clone();
        async move {
            app.err(
                CHECK,
                json!({ "i": { "novelId": novel, "text": text, "asOfChapter": as_of } }),
            )
            .await
        }
    };
    assert_eq!(code("  ".into(), 1).await, "BAD_USER_INPUT");
    assert_eq!(code("x".repeat(500_001), 1).await, "BAD_USER_INPUT");
    // A 2 MB draft is refused before it is read (its request is over the body limit).
    let draft = json!({ "query": CHECK, "variables": { "i": { "novelId": novel,
        "text": "x".repeat(2_000_000), "asOfChapter": 1 } } });
    let head = app.announce_body(draft.to_string().len()).await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert_eq!(code("Ned smiled.".into(), 3).await, "BAD_USER_INPUT");
    assert_eq!(code("Ned smiled.".into(), -1).await, "BAD_USER_INPUT");
    let (_, body) = app
        .err_as(
            Some(&app.admin_key),
            CHECK,
            json!({ "i": { "novelId": novel, "text": "Ned smiled.", "asOfChapter": 9 } }),
        )
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("asOfChapter"),
        "{body:#}"
    );
    assert_eq!(
        app.err(VALIDATE, json!({ "i": { "chapterId": "nope" } }))
            .await,
        "BAD_USER_INPUT"
    );
    let missing = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("Chapter:{}", uuid::Uuid::now_v7()))
    };
    assert_eq!(
        app.err(VALIDATE, json!({ "i": { "chapterId": missing } }))
            .await,
        "NOT_FOUND"
    );
    // Another tenant can neither check against our novel nor validate our chapter.
    let theirs = app.new_tenant("theirs").await;
    let (c, _) = app
        .err_as(
            Some(&theirs),
            CHECK,
            json!({ "i": { "novelId": novel, "text": "Ned smiled.", "asOfChapter": 1 } }),
        )
        .await;
    assert_eq!(c, "NOT_FOUND");
    let (c, _) = app
        .err_as(
            Some(&theirs),
            VALIDATE,
            json!({ "i": { "chapterId": one } }),
        )
        .await;
    assert_eq!(c, "NOT_FOUND");
    // A reader may check drafts but not store a report.
    let reader = app.user_key("reader@example.com", "VIEWER").await;
    let d = app
        .ok_as(
            &reader,
            CHECK,
            json!({ "i": { "novelId": novel, "text": "Ned Stark smiled.", "asOfChapter": 2 } }),
        )
        .await;
    assert_eq!(d["checkDraft"]["issues"][0]["kind"], "DEAD_CHARACTER");
    let (c, _) = app
        .err_as(
            Some(&reader),
            VALIDATE,
            json!({ "i": { "chapterId": one } }),
        )
        .await;
    assert_eq!(c, "FORBIDDEN");
}

const STREAM: &str = r#"subscription($j: ID!, $a: Int) { chapterStream(jobId: $j, after: $a) {
    __typename
    ... on ChapterChunk { seq text }
    ... on ChapterIssue { seq issue { id kind severity source span { start end text } evidence { kind chapterSeq } } }
    ... on ChapterCompleted { seq chapter { id content status validation { complete issues { id kind message span { text } } } } }
    ... on ChapterFailed { seq message }
} }"#;

/// Chapter 3, as the fake model writes it: the dead Lord Stark speaks in its second
/// sentence; the rest is harmless.
pub(crate) const GHOST: &str = "Snow fell on the old keep all night. \"Winter is coming,\" said \
    Lord Stark. The hounds slept by the fire. Bran watched the gate until dawn. The ravens \
    came back at first light with no letters. The kitchens were cold and the well was frozen. \
    Old Nan told the children a story about the long night, and nobody laughed at her now.";

/// The events of a chapter stream until it completes.
pub(crate) async fn events(app: &TestApp, job: &str, after: i64) -> Vec<Value> {
    let mut ws = connected(app, &app.admin_key).await;
    start(&mut ws, "s", STREAM, json!({ "j": job, "a": after })).await;
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), next_json(&mut ws))
            .await
            .expect("the stream progresses");
        match msg["type"].as_str() {
            Some("next") => {
                assert!(msg["payload"].get("errors").is_none(), "{msg}");
                out.push(msg["payload"]["data"]["chapterStream"].clone());
            }
            Some("complete") => return out,
            other => panic!("unexpected {other:?}: {msg}"),
        }
    }
}

/// Generates chapter `seq` of the story with the fake model writing `text`; returns the
/// job id.
pub(crate) async fn generate(app: &TestApp, chapter: &str, text: &str, extra: Value) -> String {
    let words = text.split_whitespace().count();
    let mut input = json!({ "chapterId": chapter, "targetWords": words });
    if let (Some(i), Some(e)) = (input.as_object_mut(), extra.as_object()) {
        i.extend(e.clone());
    }
    app.ok(
        "mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id } } }",
        json!({ "i": input }),
    )
    .await["generateChapter"]["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn fake_writing(fake: &FakeOpenAi, text: &str) {
    fake.script("primary", writing(text));
}

/// `text` streamed word by word, as a model writes it.
fn writing(text: &str) -> FakeStream {
    let pieces: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
    FakeStream::new(pieces).interval(Duration::from_millis(20))
}

async fn live_issues_stream_before_the_chapter_completes(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake_writing(&fake, GHOST);
    let app = app_with_fake(backend, &fake).await;
    let (novel, _, _) = story(&app).await;
    let three = app.chapter(&novel, 3, "Ghosts").await;
    let job = generate(&app, &three, GHOST, json!({})).await;

    let evs = events(&app, &job, 0).await;
    let kinds: Vec<&str> = evs
        .iter()
        .map(|e| e["__typename"].as_str().unwrap())
        .collect();
    let at = kinds
        .iter()
        .position(|k| *k == "ChapterIssue")
        .unwrap_or_else(|| panic!("no issue streamed: {evs:#?}"));
    assert_eq!(
        kinds.iter().filter(|k| **k == "ChapterIssue").count(),
        1,
        "{evs:#?}"
    );
    let done = evs.last().unwrap();
    assert_eq!(done["__typename"], "ChapterCompleted", "{done:#}");
    // Streamed live: right after the sentence that caused it, while chunks still came.
    assert!(
        kinds[at + 1..]
            .iter()
            .filter(|k| **k == "ChapterChunk")
            .count()
            > 10,
        "{kinds:?}"
    );
    let seqs: Vec<i64> = evs.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=evs.len() as i64).collect::<Vec<_>>(),
        "one numbering"
    );
    let live = &evs[at];
    let issue = &live["issue"];
    assert_eq!(issue["kind"], "DEAD_CHARACTER", "{live:#}");
    assert_eq!(issue["severity"], "ERROR");
    assert_eq!(issue["source"], "RULE");
    assert_eq!(issue["span"]["text"], "Lord Stark");
    assert_eq!(issue["evidence"][0]["chapterSeq"], 2);
    let streamed: String = evs[..at]
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(streamed.trim_end().ends_with("Lord Stark."), "{streamed}");
    let content = done["chapter"]["content"].as_str().unwrap();
    assert_eq!(
        chars(content, &issue["span"]["start"], &issue["span"]["end"]),
        "Lord Stark"
    );

    // The stored report has the same issue, by the same id; OPEN (the default) stores the
    // chapter for review all the same.
    let report = &done["chapter"]["validation"];
    assert_eq!(report["complete"], true, "{done:#}");
    assert_eq!(report["issues"][0]["id"], issue["id"], "{report:#}");
    assert_eq!(report["issues"][0]["span"]["text"], "Lord Stark");
    assert_eq!(done["chapter"]["status"], "REVIEW");

    // Resuming after the issue replays what follows it, not the issue.
    let rest = events(&app, &job, live["seq"].as_i64().unwrap()).await;
    assert_eq!(rest.len(), evs.len() - at - 1);
    assert!(rest.iter().all(|e| e["__typename"] != "ChapterIssue"));
    // Resuming before it replays it.
    let again = events(&app, &job, live["seq"].as_i64().unwrap() - 1).await;
    assert_eq!(again[0], *live);
}

async fn failing_closed_keeps_a_chapter_with_an_error_as_a_draft(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake_writing(&fake, GHOST);
    let app = app_with_fake(backend, &fake).await;
    let (novel, _, two) = story(&app).await;
    let policy = "mutation($i: UpdateValidationPolicyInput!) { updateValidationPolicy(input: $i) \
        { tenant { validationFailMode settings } } }";
    let t = app
        .ok(policy, json!({ "i": { "failMode": "CLOSED" } }))
        .await["updateValidationPolicy"]["tenant"]
        .clone();
    assert_eq!(t["validationFailMode"], "CLOSED", "{t:#}");
    assert_eq!(t["settings"]["validation"]["failMode"], "CLOSED");
    // Only an admin sets it.
    let member = app.user_key("member@example.com", "MEMBER").await;
    let (code, _) = app
        .err_as(
            Some(&member),
            policy,
            json!({ "i": { "failMode": "OPEN" } }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");

    // The dead man speaks: the chapter is stored as written, kept as a draft, with its
    // report.
    let three = app.chapter(&novel, 3, "Ghosts").await;
    let job = generate(&app, &three, GHOST, json!({})).await;
    let done = events(&app, &job, 0).await.pop().unwrap();
    assert_eq!(done["__typename"], "ChapterCompleted", "{done:#}");
    let ch = &done["chapter"];
    assert_eq!(ch["status"], "DRAFT", "{ch:#}");
    assert_eq!(
        ch["content"].as_str().unwrap().split_whitespace().count(),
        62
    );
    assert_eq!(ch["validation"]["issues"][0]["kind"], "DEAD_CHARACTER");

    // Without an ERROR issue a chapter goes to review as usual: the same text as
    // chapter 2, when Ned Stark is still alive (he dies in it).
    let job = generate(&app, &two, GHOST, json!({})).await;
    let done = events(&app, &job, 0).await.pop().unwrap();
    assert_eq!(done["chapter"]["status"], "REVIEW", "{done:#}");
    assert_eq!(done["chapter"]["validation"]["complete"], true);
    assert_eq!(
        done["chapter"]["validation"]["issues"],
        json!([]),
        "{done:#}"
    );

    // Back to OPEN (the default of test `live_issues_stream_before_the_chapter_completes`).
    let t = app.ok(policy, json!({ "i": { "failMode": "OPEN" } })).await["updateValidationPolicy"]
        ["tenant"]
        .clone();
    assert_eq!(t["validationFailMode"], "OPEN");
}

async fn a_rewrite_is_given_the_issues_it_is_to_fix(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake_writing(&fake, GHOST);
    let app = app_with_fake(backend, &fake).await;
    let (novel, _, _) = story(&app).await;
    let three = app.chapter(&novel, 3, "Ghosts").await;
    let job = generate(&app, &three, GHOST, json!({})).await;
    let done = events(&app, &job, 0).await.pop().unwrap();
    let issue = done["chapter"]["validation"]["issues"][0].clone();
    assert_eq!(issue["kind"], "DEAD_CHARACTER", "{done:#}");
    let id = issue["id"].as_str().unwrap().to_owned();

    // Ids the report does not have, or issues to fix outside a rewrite, are refused.
    let generate_q =
        "mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id } } }";
    let bad = app
        .err(
            generate_q,
            json!({ "i": { "chapterId": three, "kind": "REWRITE", "fixIssues": ["nope"] } }),
        )
        .await;
    assert_eq!(bad, "BAD_USER_INPUT");
    let bad = app
        .err(
            generate_q,
            json!({ "i": { "chapterId": three, "kind": "POLISH", "fixIssues": [id] } }),
        )
        .await;
    assert_eq!(bad, "BAD_USER_INPUT");

    let before = fake.requests_for("primary").len();
    let job = generate(
        &app,
        &three,
        GHOST,
        json!({ "kind": "REWRITE", "fixIssues": [id], "instructions": "Keep the snow." }),
    )
    .await;
    let done = events(&app, &job, 0).await.pop().unwrap();
    assert_eq!(done["__typename"], "ChapterCompleted", "{done:#}");
    // The writer's request (the memory jobs ask the same model for their extraction).
    let prompt: String = fake.requests_for("primary")[before..]
        .iter()
        .map(|r| r.messages().into_iter().map(|(_, c)| c).collect::<String>())
        .find(|p| p.contains("Keep the snow."))
        .expect("the rewrite's request");
    assert!(prompt.contains("Keep the snow."), "{prompt}");
    assert!(prompt.contains("Fix these continuity issues"), "{prompt}");
    let message = issue["message"].as_str().unwrap();
    assert!(
        prompt.contains(&format!("“Lord Stark”: {message}")),
        "{message} not in {prompt}"
    );
}

/// What the fake's memory extraction answers (an empty but valid extraction), so the
/// memory job of a generated chapter succeeds and its VALIDATE job runs.
const EXTRACTION: &str = r#"{"summary": "Snow at the keep.", "characters": [], "items": [],
    "events": [], "relations": [], "planted": [], "resolved": []}"#;

/// A server whose fake provider writes with model `primary` and reviews with model
/// `reviewer`, giving a review `timeout` seconds.
async fn app_with_reviewer(backend: Backend, fake: &FakeOpenAi, timeout: u64) -> TestApp {
    let base = fake.base_url();
    TestApp::spawn_with(backend, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("primary".into());
        s.llm.reviewer = znovel::config::ReviewerMode::On;
        s.llm.reviewer_model = Some("reviewer".into());
        s.llm.reviewer_timeout_secs = Some(timeout);
    })
    .await
}

/// The story, its chapters remembered (the fake extracts nothing from them) and checked
/// (the reviewer has no script yet: their reports are incomplete); then nothing the test
/// scripts next is taken by their background jobs.
async fn settled_story(app: &TestApp, fake: &FakeOpenAi) -> String {
    fake.script("primary", FakeStream::new([EXTRACTION]));
    let (novel, one, two) = story(app).await;
    let q = "query($n: ID!) { novel(id: $n) { memoryProgress { extractedChapters } } }";
    for _ in 0..300 {
        let p = app.ok(q, json!({ "n": novel })).await;
        if p["novel"]["memoryProgress"]["extractedChapters"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for c in [one, two] {
        report_when(app, &c, |v| !v.is_null()).await;
    }
    novel
}

fn reviewing(answer: Value) -> FakeStream {
    let text = answer.to_string();
    let (a, b) = text.split_at(text.len() / 2);
    FakeStream::new([a.to_owned(), b.to_owned()])
}

/// The chapter's stored report once it satisfies `done` (the VALIDATE job after the
/// memory job stores it).
async fn report_when(app: &TestApp, chapter: &str, done: impl Fn(&Value) -> bool) -> Value {
    let q = "query($c: ID!) { chapter(id: $c) { content status validation { complete \
        issues { kind severity source confidence message span { start end text } \
        evidence { kind text chapterSeq } } } } }";
    let mut c = Value::Null;
    for _ in 0..300 {
        c = app.ok(q, json!({ "c": chapter })).await["chapter"].clone();
        if done(&c["validation"]) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no such report: {c:#}");
}

async fn the_reviewer_adds_what_the_rules_cannot_see(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app_with_reviewer(backend, &fake, 30).await;
    let novel = settled_story(&app, &fake).await;
    fake.rescript("primary", writing(GHOST));
    fake.script("primary", FakeStream::new([EXTRACTION]));
    let draft = "雪落了。“Winter is coming,” said Lord Stark. Arya lit every candle in the \
        hall with a single word, though the maesters swore magic had died with the dragons.";
    // One answer for every review: a finding about the draft, one about chapter 3, one a
    // rule makes too, and a paraphrase. Only findings whose quote is in the checked text
    // count, so each text keeps its own.
    fake.script(
        "reviewer",
        reviewing(json!({ "findings": [
            { "kind": "WORLD_RULE", "quote": "lit every candle in the hall with a single word",
              "message": "Magic is gone from this world, yet Arya works a spell.",
              "suggestion": "Have her light them with a taper.", "evidence": [1, 7],
              "confidence": 0.85 },
            { "kind": "DEAD_CHARACTER", "quote": "said Lord Stark", "message": "He is dead.",
              "suggestion": "", "evidence": [1], "confidence": 0.99 },
            { "kind": "LOCATION", "quote": "Arya was in two places", "message": "nowhere",
              "suggestion": "", "evidence": [], "confidence": 0.9 },
            { "kind": "RELATIONSHIP", "quote": "nobody laughed at her now",
              "message": "The household mocked Old Nan until now with no reason to stop.",
              "suggestion": "Show why they changed.", "evidence": [], "confidence": 0.6 },
        ] })),
    );

    let r = app
        .ok(
            "query($i: CheckDraftInput!) { checkDraft(input: $i) { complete issues { kind \
             severity source confidence message suggestion span { start end text } \
             evidence { kind text chapterSeq } } } }",
            json!({ "i": { "novelId": novel, "text": draft, "asOfChapter": 2 } }),
        )
        .await["checkDraft"]
        .clone();
    assert_eq!(r["complete"], true, "{r:#}");
    let issues = r["issues"].as_array().unwrap();
    assert_eq!(
        issues.len(),
        2,
        "the rule's and one reviewer finding: {r:#}"
    );
    let (rule, found) = (&issues[0], &issues[1]);
    assert_eq!(
        (&rule["source"], &rule["kind"], &rule["severity"]),
        (&json!("RULE"), &json!("DEAD_CHARACTER"), &json!("ERROR"))
    );
    assert!(rule["confidence"].is_null());
    assert_eq!(found["source"], "REVIEWER", "{found:#}");
    assert_eq!(found["kind"], "WORLD_RULE");
    assert_eq!(found["severity"], "WARNING");
    assert_eq!(found["confidence"], 0.85);
    assert_eq!(found["suggestion"], "Have her light them with a taper.");
    let quote = "lit every candle in the hall with a single word";
    assert_eq!(found["span"]["text"], quote);
    assert_eq!(
        chars(draft, &found["span"]["start"], &found["span"]["end"]),
        quote
    );
    // Evidence by the number the reviewer was given: Ned Stark's death (out-of-range
    // numbers are ignored).
    let ev = found["evidence"].as_array().unwrap();
    assert_eq!(ev.len(), 1, "{found:#}");
    assert_eq!(ev[0]["kind"], "ENTITY_STATE");
    assert!(ev[0]["text"].as_str().unwrap().contains("dead"), "{ev:?}");

    // What the reviewer was asked: the story's evidence, numbered; what the rules found;
    // the draft; under the findings schema.
    let asked = fake.requests_for("reviewer").pop().unwrap();
    let prompt: String = asked
        .messages()
        .into_iter()
        .map(|(_, c)| c)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        prompt.contains("[1] (chapter 2) Ned Stark: beheaded; dead"),
        "{prompt}"
    );
    assert!(
        prompt.contains("Already reported (do not repeat):"),
        "{prompt}"
    );
    assert!(prompt.ends_with(draft), "{prompt}");
    assert!(
        asked.body["response_format"]["json_schema"]["schema"]["properties"]["findings"]
            .is_object(),
        "{}",
        asked.body
    );

    // A generated chapter: its VALIDATE job (after its memory job) stores the rules' and
    // the reviewer's issues together; a middling confidence is information only.
    let three = app.chapter(&novel, 3, "Ghosts").await;
    let job = generate(&app, &three, GHOST, json!({})).await;
    assert_eq!(
        events(&app, &job, 0).await.pop().unwrap()["__typename"],
        "ChapterCompleted"
    );
    let c = report_when(&app, &three, |v| {
        v["issues"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["source"] == "REVIEWER"))
    })
    .await;
    let report = &c["validation"];
    assert_eq!(report["complete"], true, "{c:#}");
    let kinds: Vec<(&str, &str, &str)> = report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["source"].as_str().unwrap(),
                i["kind"].as_str().unwrap(),
                i["severity"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("RULE", "DEAD_CHARACTER", "ERROR"),
            ("REVIEWER", "RELATIONSHIP", "INFO")
        ],
        "{report:#}"
    );
    assert_eq!(
        report["issues"][1]["span"]["text"],
        "nobody laughed at her now"
    );
}

async fn a_failing_reviewer_never_blocks_a_chapter(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app_with_reviewer(backend, &fake, 2).await;
    let novel = settled_story(&app, &fake).await;
    fake.rescript("primary", writing(GHOST));
    fake.script("primary", FakeStream::new([EXTRACTION]));
    // The reviewer's provider is down, then answers prose, then hangs.
    fake.script("reviewer", FakeReply::openai_error(503, "overloaded"));
    fake.script("reviewer", FakeStream::new(["Looks fine to me!"]));
    fake.script(
        "reviewer",
        FakeStream::new(["{}"]).first_token_delay(Duration::from_secs(120)),
    );
    let draft = "“Winter is coming,” said Lord Stark.";
    for why in ["provider down", "not the schema"] {
        let r = check(&app, &novel, draft, 2).await;
        assert_eq!(r["complete"], false, "{why}: {r:#}");
        // The rules' issue stands.
        assert_eq!(r["issues"][0]["kind"], "DEAD_CHARACTER", "{why}: {r:#}");
        assert_eq!(r["issues"].as_array().unwrap().len(), 1, "{why}: {r:#}");
    }

    // A generated chapter while the reviewer hangs: written, stored, its report stored by
    // the VALIDATE job once the review times out — incomplete, the rules' issue in it.
    let three = app.chapter(&novel, 3, "Ghosts").await;
    let job = generate(&app, &three, GHOST, json!({})).await;
    let done = events(&app, &job, 0).await.pop().unwrap();
    assert_eq!(done["__typename"], "ChapterCompleted", "{done:#}");
    // The live report (rules, while it streamed) is complete.
    assert_eq!(done["chapter"]["validation"]["complete"], true, "{done:#}");
    let c = report_when(&app, &three, |v| v["complete"] == false).await;
    assert_eq!(
        c["validation"]["issues"][0]["kind"], "DEAD_CHARACTER",
        "{c:#}"
    );
    assert_eq!(
        c["content"].as_str().unwrap().split_whitespace().count(),
        GHOST.split_whitespace().count()
    );
    assert_eq!(c["status"], "REVIEW");
    // The job's review was given up on (its request closed by the client).
    assert!(
        fake.wait_client_closed(1, Duration::from_secs(10)).await,
        "the hanging review request is closed"
    );
}
