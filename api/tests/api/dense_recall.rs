//! Recall by meaning through the embedded multilingual model (the files
//! `scripts/fetch-models.sh` puts in `data/models/e5-small/` of the workspace root): a
//! question sharing no word with a passage finds it, in English and across languages;
//! without an embedder, DENSE recall is refused as unavailable.

use crate::helpers::{Backend, TestApp};
use crate::memory::{RECALL, app_with, empty_answer, recall, remembered, texts, written};
use serde_json::json;
use std::path::PathBuf;
use znovel::config::EmbeddingProvider;
use znovel_infra::llm::testing::FakeOpenAi;

const CH1: &str = "Tomas Vell buried the silver key under the old lighthouse. Nobody saw him.";
const CH2: &str = "The harvest festival filled the market square with music and dancing.";
const CH3: &str = "Grandmother taught the twins to bake bread with rye flour.";

fn model_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/models/e5-small");
    assert!(
        dir.join("libe5.so").is_file(),
        "the embedding model in {} is missing: run scripts/fetch-models.sh",
        dir.display()
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dense_recall_finds_a_paraphrase_that_shares_no_word_with_the_query() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let dir = model_dir();
    let app = app_with_embedder(&fake, dir).await;
    let novel = app.novel("The Key").await;
    written(&app, &novel, 1, "Buried", CH1).await;
    written(&app, &novel, 2, "Festival", CH2).await;
    written(&app, &novel, 3, "Bread", CH3).await;
    let progress = remembered(&app, &novel).await;
    assert_eq!(progress["indexedChapters"], 3, "{progress}");

    // No word of the question is in chapter 1: keywords cannot find it, meaning does.
    let question = "thief concealing treasure near coastal beacon";
    let by_words = texts(&recall(&app, &novel, question, None, "KEYWORD").await);
    assert!(
        by_words.iter().all(|t| !t.contains("lighthouse")),
        "{by_words:?}"
    );
    let hits = recall(&app, &novel, question, None, "DENSE").await;
    assert_eq!(hits[0]["chapter"]["seq"], 1, "{hits:?}");
    assert!(hits[0]["text"].as_str().unwrap().contains("lighthouse"));
    // The same question in Chinese finds the English passage.
    let hits = recall(&app, &novel, "小偷在海边的灯塔附近藏了宝物", None, "DENSE").await;
    assert_eq!(hits[0]["chapter"]["seq"], 1, "{hits:?}");
    // HYBRID ranks it first too.
    let hits = recall(&app, &novel, question, None, "HYBRID").await;
    assert_eq!(hits[0]["chapter"]["seq"], 1, "{hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_embedder_dense_recall_is_unavailable_and_keywords_still_work() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    // The test server's data directory has no model: keyword-only.
    let app = app_with(Backend::Sqlite, &fake, empty_answer()).await;
    let novel = app.novel("Plain").await;
    written(&app, &novel, 1, "Buried", CH1).await;
    remembered(&app, &novel).await;
    let code = app
        .err(
            RECALL,
            json!({ "n": novel, "q": "silver key", "m": "DENSE" }),
        )
        .await;
    assert_eq!(code, "UNAVAILABLE");
    let hits = recall(&app, &novel, "silver key", None, "HYBRID").await;
    assert_eq!(hits[0]["chapter"]["seq"], 1, "{hits:?}");
}

async fn app_with_embedder(fake: &FakeOpenAi, dir: PathBuf) -> TestApp {
    fake.script("writer", crate::memory::extraction(empty_answer()));
    let base = fake.base_url();
    TestApp::spawn_with(Backend::Sqlite, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("writer".into());
        s.embedding.provider = Some(EmbeddingProvider::Local);
        s.embedding.model_dir = Some(dir);
    })
    .await
}
