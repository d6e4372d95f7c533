//! Story memory through the API: every content change is remembered by a memory job
//! (passages indexed, facts extracted by the model under a JSON schema), `recall` finds
//! what the story established as of a chapter — by meaning and by name, aliases
//! included — generation recalls it for its prompt and shows it in `GenerationJob.context`,
//! and an edited or deleted chapter is never quoted with old text.

use crate::helpers::{Backend, TestApp};
use serde_json::{Value, json};
use std::time::Duration;
use znovel_infra::llm::testing::{FakeOpenAi, FakeStream};

/// What the fake model answers to an extraction request (a JSON object; pieces split
/// like a real stream).
pub(crate) fn extraction(answer: Value) -> FakeStream {
    let text = answer.to_string();
    let pieces: Vec<String> = text
        .as_bytes()
        .chunks(16)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    FakeStream::new(pieces)
}

pub(crate) fn empty_answer() -> Value {
    json!({ "summary": "", "characters": [], "items": [], "events": [], "relations": [],
            "planted": [], "resolved": [] })
}

/// A server whose model (the fake) answers extraction with `answer`.
pub(crate) async fn app_with(backend: Backend, fake: &FakeOpenAi, answer: Value) -> TestApp {
    fake.script("writer", extraction(answer));
    let base = fake.base_url();
    TestApp::spawn_with(backend, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("writer".into());
    })
    .await
}

pub(crate) const RECALL: &str = "query($n: ID!, $q: String!, $b: Int, $f: Int, $m: RecallMode) { \
    recall(novelId: $n, query: $q, beforeChapter: $b, first: $f, mode: $m) { tookMs \
    hits { text score kind chapterSeq startOffset endOffset chapter { id seq title } } } }";

pub(crate) async fn recall(
    app: &TestApp,
    novel: &str,
    q: &str,
    before: Option<i64>,
    mode: &str,
) -> Vec<Value> {
    let d = app
        .ok(
            RECALL,
            json!({ "n": novel, "q": q, "b": before, "m": mode }),
        )
        .await;
    assert!(d["recall"]["tookMs"].as_f64().unwrap() >= 0.0);
    d["recall"]["hits"].as_array().unwrap().clone()
}

pub(crate) fn texts(hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|h| h["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates a chapter with content; returns its id.
pub(crate) async fn written(
    app: &TestApp,
    novel: &str,
    seq: i64,
    title: &str,
    content: &str,
) -> String {
    let d = app
        .ok(
            "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }",
            json!({ "i": { "novelId": novel, "seq": seq, "title": title, "content": content } }),
        )
        .await;
    d["createChapter"]["chapter"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until every chapter with content is searchable and extracted (or failed);
/// returns the novel's memory progress.
pub(crate) async fn remembered(app: &TestApp, novel: &str) -> Value {
    let q = "query($n: ID!) { novel(id: $n) { memoryProgress { indexedChapters \
             pendingChapters failedChapters extractedChapters } } }";
    for _ in 0..200 {
        let p = app.ok(q, json!({ "n": novel })).await["novel"]["memoryProgress"].clone();
        let indexed = p["indexedChapters"].as_i64().unwrap();
        if p["pendingChapters"] == 0 && p["extractedChapters"].as_i64().unwrap() >= indexed {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the novel's memory did not settle");
}

/// The chapter's content, by Unicode code points `start..end`.
fn quote(content: &str, hit: &Value) -> String {
    let start = hit["startOffset"].as_u64().unwrap() as usize;
    let end = hit["endOffset"].as_u64().unwrap() as usize;
    content.chars().skip(start).take(end - start).collect()
}

const CH1: &str = "Tomas Vell buried the silver key under the old lighthouse. Nobody saw him.";
const CH2: &str = "The storm lasted three days. Mara kept the lamp burning.";
const CH3: &str = "The Ferret dug up the silver key and sold it to the harbour master.";
const ZH: &str = "林黛玉进了贾府，见了外祖母。";

/// `on_both!(body)`: `mod body { sqlite, postgres }` running `body(backend)` (the tests
/// build their own server, with a fake model).
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
    recall_as_of_a_chapter,
    edited_chapters_are_recalled_new_and_deleted_ones_forgotten,
    generation_recalls_the_story_for_its_prompt,
    extraction_records_what_a_chapter_established,
    recall_refuses_bad_input_and_other_tenants,
);

async fn recall_as_of_a_chapter(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app_with(backend, &fake, empty_answer()).await;
    let novel = app.novel("The Key").await;
    app.ok(
        "mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id } } }",
        json!({ "i": { "novelId": novel, "name": "Tomas Vell", "kind": "CHARACTER",
                       "aliases": ["the Ferret"], "description": "A thief of the docks." } }),
    )
    .await;
    written(&app, &novel, 1, "Buried", CH1).await;
    written(&app, &novel, 2, "Storm", CH2).await;
    written(&app, &novel, 3, "Sold", CH3).await;
    written(&app, &novel, 4, "红楼", ZH).await;
    let progress = remembered(&app, &novel).await;
    assert_eq!(progress["indexedChapters"], 4, "{progress}");
    assert_eq!(progress["failedChapters"], 0, "{progress}");

    // As of chapter 3: the key is still under the lighthouse; chapter 3 is unknown.
    let hits = recall(&app, &novel, "where is the silver key?", Some(3), "KEYWORD").await;
    assert!(!hits.is_empty());
    for h in &hits {
        assert!(
            h["chapterSeq"].is_null() || h["chapterSeq"].as_i64().unwrap() < 3,
            "{h}"
        );
    }
    let passage = hits
        .iter()
        .find(|h| h["kind"] == "PASSAGE")
        .expect("a passage");
    assert_eq!(passage["chapter"]["seq"], 1);
    assert_eq!(passage["chapter"]["title"], "Buried");
    assert_eq!(quote(CH1, passage), passage["text"].as_str().unwrap());

    // The whole story: chapter 3 is found too.
    let all = texts(&recall(&app, &novel, "silver key", None, "KEYWORD").await);
    assert!(all.iter().any(|t| t.contains("harbour master")), "{all:?}");

    // A nickname finds what is told under the real name (alias expansion).
    let by_alias = texts(&recall(&app, &novel, "the Ferret", Some(3), "KEYWORD").await);
    assert!(
        by_alias.iter().any(|t| t.contains("Tomas Vell buried")),
        "{by_alias:?}"
    );

    // A two-character Chinese name inside an unsegmented sentence.
    let zh = recall(&app, &novel, "黛玉", None, "KEYWORD").await;
    assert_eq!(zh[0]["chapter"]["seq"], 4);
    assert_eq!(quote(ZH, &zh[0]), zh[0]["text"].as_str().unwrap());

    // Before chapter 1 only the timeless bible is known.
    let before_one = recall(&app, &novel, "Tomas Vell", Some(1), "HYBRID").await;
    assert!(!before_one.is_empty());
    assert!(
        before_one.iter().all(|h| h["chapterSeq"].is_null()),
        "{before_one:?}"
    );
}

async fn edited_chapters_are_recalled_new_and_deleted_ones_forgotten(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app_with(backend, &fake, empty_answer()).await;
    let novel = app.novel("Bells").await;
    let chapter = written(
        &app,
        &novel,
        1,
        "Dawn",
        "The bell rang at dawn over the harbour.",
    )
    .await;
    remembered(&app, &novel).await;
    assert_eq!(recall(&app, &novel, "bell", None, "KEYWORD").await.len(), 1);

    app.ok(
        "mutation($i: UpdateChapterInput!) { updateChapter(input: $i) { chapter { version } } }",
        json!({ "i": { "id": chapter, "content": "The drum sounded at dusk over the hills." } }),
    )
    .await;
    // At once, before the memory job ran: never the old text.
    let old = recall(&app, &novel, "bell harbour", None, "KEYWORD").await;
    assert!(old.is_empty(), "{old:#?}");
    remembered(&app, &novel).await;
    let now = texts(&recall(&app, &novel, "drum", None, "KEYWORD").await);
    assert_eq!(now, ["The drum sounded at dusk over the hills."]);
    assert!(
        recall(&app, &novel, "bell", None, "KEYWORD")
            .await
            .is_empty()
    );

    app.ok(
        "mutation($i: DeleteChapterInput!) { deleteChapter(input: $i) { chapter { id } } }",
        json!({ "i": { "id": chapter } }),
    )
    .await;
    assert!(
        recall(&app, &novel, "drum", None, "HYBRID")
            .await
            .is_empty()
    );
}

async fn generation_recalls_the_story_for_its_prompt(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app_with(backend, &fake, empty_answer()).await;
    let novel = app.novel("Letters").await;
    let mara = app
        .ok(
            "mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id } } }",
            json!({ "i": { "novelId": novel, "name": "Mara", "kind": "CHARACTER" } }),
        )
        .await["createEntity"]["entity"]["id"]
        .clone();
    let one = written(
        &app,
        &novel,
        1,
        "Hidden",
        "Mara hid the sealed letter inside the lantern room, behind the third brass plate.",
    )
    .await;
    app.ok(
        "mutation($i: RecordEntityStateInput!) { recordEntityState(input: $i) { entityState { id } } }",
        json!({ "i": { "entityId": mara, "chapterId": one, "state": "limping",
                       "injuries": ["a sprained ankle"] } }),
    )
    .await;
    remembered(&app, &novel).await;
    let two = app
        .ok(
            "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }",
            json!({ "i": { "novelId": novel, "seq": 2, "title": "Search",
                           "outline": "Mara searches for the sealed letter." } }),
        )
        .await["createChapter"]["chapter"]["id"]
        .clone();
    // The next requests for the model write the chapter (then its memory job extracts).
    fake.script(
        "writer",
        FakeStream::new(["She climbed ", "to the lantern room. "]),
    );
    fake.script("writer", extraction(empty_answer()));
    let job = app
        .ok(
            "mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id } } }",
            json!({ "i": { "chapterId": two, "targetWords": 50 } }),
        )
        .await["generateChapter"]["job"]["id"]
        .clone();
    let q = "query($j: ID!) { generationJob(id: $j) { status context { text kind chapterSeq              startOffset chapter { seq } } } }";
    let mut job_now = Value::Null;
    for _ in 0..200 {
        job_now = app.ok(q, json!({ "j": job })).await["generationJob"].clone();
        if job_now["status"] == "SUCCEEDED" || job_now["status"] == "FAILED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(job_now["status"], "SUCCEEDED", "{job_now}");
    let context = job_now["context"].as_array().unwrap();
    let recalled = context
        .iter()
        .find(|h| h["text"].as_str().unwrap().contains("lantern room"))
        .unwrap_or_else(|| panic!("the passage of chapter 1 is in the context: {job_now}"));
    assert_eq!(recalled["chapterSeq"], 1);
    assert_eq!(recalled["chapter"]["seq"], 1);
    // The prompt the model received holds it, and Mara's state as of chapter 1.
    let prompt: String = fake
        .requests_for("writer")
        .iter()
        .flat_map(|r| r.messages())
        .map(|(_, content)| content)
        .find(|c| c.contains("Mara searches for the sealed letter"))
        .expect("the generation request");
    assert!(prompt.contains("behind the third brass plate"), "{prompt}");
    assert!(prompt.contains("a sprained ankle"), "{prompt}");
    // Nothing of a later chapter: chapter 2 is the one being written.
    assert!(
        context
            .iter()
            .all(|h| h["chapterSeq"].as_i64().is_none_or(|s| s < 2))
    );
}

async fn extraction_records_what_a_chapter_established(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let answer = json!({
        "summary": "Tomas falls from the bridge and dies; Mara takes the key.",
        "characters": [
            { "name": "Tomas", "status": "dead", "location": "the bridge", "injuries": [],
              "state": "dead", "quote": "Tomas fell from the bridge and did not rise." }
        ],
        "items": [ { "name": "silver key", "holder": "Mara", "lost": false,
                     "quote": "Mara took the silver key." } ],
        "events": [ { "title": "The fall", "summary": "Tomas falls.", "characters": ["Tomas"],
                      "location": "the bridge", "quote": "Tomas fell from the bridge" } ],
        "relations": [ { "source": "Mara", "target": "Tomas", "kind": "enemy",
                         "quote": "Mara took the silver key." } ],
        "planted": [ { "title": "The letter", "description": "A letter no one has read.",
                       "quote": "A letter lay unopened." } ],
        "resolved": []
    });
    let app = app_with(backend, &fake, answer).await;
    let novel = app.novel("The Bridge").await;
    let tomas = app
        .ok(
            "mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id } } }",
            json!({ "i": { "novelId": novel, "name": "Tomas", "kind": "CHARACTER" } }),
        )
        .await["createEntity"]["entity"]["id"]
        .clone();
    let content = "Tomas fell from the bridge and did not rise. Mara took the silver key.                    A letter lay unopened.";
    let chapter = written(&app, &novel, 1, "Bridge", content).await;
    let p = remembered(&app, &novel).await;
    assert_eq!(p["extractedChapters"], 1, "{p}");

    let q = "query($e: ID!, $n: ID!, $c: ID!) {         entity(id: $e) { firstChapterSeq appearanceCount before: stateAt(chapterSeq: 0) { id }           after: stateAt(chapterSeq: 1) { vital state location { name kind }           provenance { origin chapterId spanStart spanEnd } } }         entities(novelId: $n, first: 20) { edges { node { name kind provenance { origin } } } }         timeline(novelId: $n) { edges { node { title involved { name } provenance { origin } } } }         foreshadowing(novelId: $n) { edges { node { title status } } }         chapter(id: $c) { summary } }";
    let d = app
        .ok(q, json!({ "e": tomas, "n": novel, "c": chapter }))
        .await;
    let e = &d["entity"];
    assert_eq!(e["before"], Value::Null);
    assert_eq!(e["after"]["vital"], "DEAD");
    assert_eq!(e["after"]["location"]["name"], "the bridge");
    assert_eq!(e["after"]["location"]["kind"], "LOCATION");
    let prov = &e["after"]["provenance"];
    assert_eq!(prov["origin"], "EXTRACTED");
    assert_eq!(prov["chapterId"], chapter.as_str());
    let span: String = content
        .chars()
        .skip(prov["spanStart"].as_u64().unwrap() as usize)
        .take((prov["spanEnd"].as_u64().unwrap() - prov["spanStart"].as_u64().unwrap()) as usize)
        .collect();
    assert_eq!(span, "Tomas fell from the bridge and did not rise.");
    assert_eq!(
        (e["firstChapterSeq"].clone(), e["appearanceCount"].clone()),
        (json!(1), json!(1))
    );
    let names: Vec<&str> = d["entities"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    for n in ["Tomas", "Mara", "silver key", "the bridge"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert_eq!(d["timeline"]["edges"][0]["node"]["title"], "The fall");
    assert_eq!(
        d["foreshadowing"]["edges"][0]["node"]["title"],
        "The letter"
    );
    assert_eq!(
        d["chapter"]["summary"],
        "Tomas falls from the bridge and dies; Mara takes the key."
    );

    // The author corrects the extracted state; a new version of the chapter is extracted
    // again, and the author's record stays as the author left it.
    let state_id = app
        .ok(
            "query($e: ID!) { entity(id: $e) { states(first: 5) { edges { node { id } } } } }",
            json!({ "e": tomas }),
        )
        .await["entity"]["states"]["edges"][0]["node"]["id"]
        .clone();
    app.ok(
        "mutation($i: UpdateEntityStateInput!) { updateEntityState(input: $i) { entityState { id } } }",
        json!({ "i": { "id": state_id, "vital": "ALIVE", "state": "feigning death" } }),
    )
    .await;
    app.ok(
        "mutation($i: UpdateChapterInput!) { updateChapter(input: $i) { chapter { version } } }",
        json!({ "i": { "id": chapter, "content": format!("{content} The tide rose.") } }),
    )
    .await;
    remembered(&app, &novel).await;
    let states = app
        .ok(
            "query($e: ID!) { entity(id: $e) { states(first: 10) { edges { node { id vital state provenance { origin } } } } } }",
            json!({ "e": tomas }),
        )
        .await["entity"]["states"]["edges"]
        .clone();
    let states = states.as_array().unwrap();
    let authored: Vec<&Value> = states
        .iter()
        .filter(|s| s["node"]["provenance"]["origin"] == "AUTHOR")
        .collect();
    assert_eq!(authored.len(), 1, "{states:?}");
    assert_eq!(authored[0]["node"]["id"], state_id);
    assert_eq!(authored[0]["node"]["state"], "feigning death");
    // The new version's extraction replaced only its own record.
    assert_eq!(states.len(), 2, "{states:?}");
}

async fn recall_refuses_bad_input_and_other_tenants(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app_with(backend, &fake, empty_answer()).await;
    let novel = app.novel("Guarded").await;
    written(
        &app,
        &novel,
        1,
        "Vault",
        "The vault of Karth holds the crown.",
    )
    .await;
    remembered(&app, &novel).await;
    let code = |vars: Value| {
        let app = &app;
        async move { app.err(RECALL, vars).await }
    };
    assert_eq!(
        code(json!({ "n": novel, "q": "  " })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(json!({ "n": novel, "q": "x".repeat(10_000) })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(json!({ "n": novel, "q": "vault", "b": 0 })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(json!({ "n": novel, "q": "vault", "f": 51 })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(json!({ "n": novel, "q": "vault", "f": 0 })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(json!({ "n": "nope", "q": "vault" })).await,
        "BAD_USER_INPUT"
    );
    let missing = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("Novel:{}", uuid::Uuid::now_v7()))
    };
    assert_eq!(
        code(json!({ "n": missing, "q": "vault" })).await,
        "NOT_FOUND"
    );
    // Another tenant naming our novel finds nothing of it.
    let theirs = app.new_tenant("theirs").await;
    let (c, _) = app
        .err_as(
            Some(&theirs),
            RECALL,
            json!({ "n": novel, "q": "vault Karth crown" }),
        )
        .await;
    assert_eq!(c, "NOT_FOUND");
    let their_novel = app
        .ok_as(
            &theirs,
            "mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }",
            json!({ "i": { "title": "Theirs" } }),
        )
        .await["createNovel"]["novel"]["id"]
        .clone();
    let d = app
        .ok_as(
            &theirs,
            RECALL,
            json!({ "n": their_novel, "q": "vault Karth crown" }),
        )
        .await;
    assert_eq!(d["recall"]["hits"], json!([]));
}
