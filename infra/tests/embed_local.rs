//! The embedded embedder against the real multilingual-e5-small model and engine that
//! `scripts/fetch-models.sh` puts in `data/models/e5-small/` of the workspace root (or
//! `$ZNOVEL_DATA_DIR/models/e5-small`). Without them these tests fail, saying how to
//! fetch them.
// Test helpers outside `#[test]` functions fail the test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;
use znovel_domain::ports::{EmbedError, EmbedKind, Embedder};
use znovel_infra::embed::LocalEmbedder;

fn model_dir() -> PathBuf {
    let data = std::env::var_os("ZNOVEL_DATA_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"),
        PathBuf::from,
    );
    let dir = LocalEmbedder::default_dir(&data);
    assert!(
        LocalEmbedder::files_present(&dir),
        "the embedding model in {} is missing: run scripts/fetch-models.sh",
        dir.display()
    );
    dir
}

fn embedder() -> &'static LocalEmbedder {
    static E: OnceLock<LocalEmbedder> = OnceLock::new();
    E.get_or_init(|| LocalEmbedder::open(&model_dir()).expect("the embedding model loads"))
}

async fn embed(texts: &[&str], kind: EmbedKind) -> Vec<Vec<f32>> {
    let texts: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
    let vectors = embedder().embed(&texts, kind).await.unwrap();
    assert_eq!(vectors.len(), texts.len());
    vectors
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The query's similarity to `paraphrase` beats its similarity to `unrelated`.
async fn ranks(query: &str, paraphrase: &str, unrelated: &str) -> (f32, f32) {
    let q = embed(&[query], EmbedKind::Query).await;
    let p = embed(&[paraphrase, unrelated], EmbedKind::Passage).await;
    let (near, far) = (cos(&q[0], &p[0]), cos(&q[0], &p[1]));
    assert!(
        near > far + 0.02,
        "{query:?}: paraphrase {near:.3} vs unrelated {far:.3}"
    );
    (near, far)
}

#[tokio::test]
async fn vectors_have_384_unit_dimensions_and_are_deterministic() {
    let texts = [
        "The knight drew his sword at dawn.",
        "骑士在黎明时拔出了剑。",
    ];
    let a = embed(&texts, EmbedKind::Passage).await;
    let b = embed(&texts, EmbedKind::Passage).await;
    assert_eq!(embedder().dimensions(), 384);
    assert_eq!(embedder().model(), LocalEmbedder::MODEL);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.len(), 384);
        let norm = cos(x, x).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        assert!(cos(x, y) > 0.9999, "the same text twice differs");
    }
    // One text alone embeds as it does within a batch.
    let single = embed(&texts[1..], EmbedKind::Passage).await;
    assert!(cos(&single[0], &a[1]) > 0.9999);
    // The kind matters: e5 reads a query and a passage differently.
    let q = embed(&texts[..1], EmbedKind::Query).await;
    assert!(cos(&q[0], &a[0]) < 0.999);
}

#[tokio::test]
async fn empty_input_gives_empty_output() {
    assert!(embed(&[], EmbedKind::Query).await.is_empty());
    // An empty text and a text with a NUL byte are still texts.
    let v = embed(&["", "a\0b"], EmbedKind::Passage).await;
    assert!(v.iter().all(|v| v.len() == 384));
}

#[tokio::test]
async fn an_english_query_ranks_its_paraphrase_above_an_unrelated_sentence() {
    ranks(
        "Where did the old sailor hide the map?",
        "The aged seaman concealed the chart beneath the floorboards of his cabin.",
        "The bakery on the corner sells fresh bread every morning.",
    )
    .await;
}

#[tokio::test]
async fn a_chinese_query_ranks_its_paraphrase_above_an_unrelated_sentence() {
    ranks(
        "老水手把地图藏在哪里？",
        "年迈的海员把海图藏在了船舱的地板下面。",
        "街角的面包店每天早上都卖新鲜的面包。",
    )
    .await;
}

#[tokio::test]
async fn queries_find_paraphrases_across_english_and_chinese() {
    ranks(
        "Where did the old sailor hide the map?",
        "年迈的海员把海图藏在了船舱的地板下面。",
        "街角的面包店每天早上都卖新鲜的面包。",
    )
    .await;
    ranks(
        "老水手把地图藏在哪里？",
        "The aged seaman concealed the chart beneath the floorboards of his cabin.",
        "The bakery on the corner sells fresh bread every morning.",
    )
    .await;
}

#[tokio::test]
async fn long_texts_are_cut_to_the_model_limit() {
    // Far more than 512 tokens: only the beginning is read, so two texts that differ only
    // past the limit embed alike, and a huge text takes no longer than a long one.
    let start = "The caravan crossed the red desert for many days. ".repeat(80);
    let a = format!("{start}{}", "The ending is about a wedding. ".repeat(200));
    let b = format!("{start}{}", "最后是一场战争。".repeat(5000));
    let started = std::time::Instant::now();
    let v = embed(&[&a, &b], EmbedKind::Passage).await;
    assert!(
        cos(&v[0], &v[1]) > 0.9999,
        "the text past the limit was read"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // Within the limit, the ending matters.
    let short = embed(
        &[
            "The caravan crossed the desert. It ended with a wedding.",
            "The caravan crossed the desert. It ended with a war.",
        ],
        EmbedKind::Passage,
    )
    .await;
    assert!(cos(&short[0], &short[1]) < 0.999);
}

#[tokio::test]
async fn concurrent_calls_give_the_same_vectors() {
    let text = "The lighthouse keeper counted the ships.";
    let alone = embed(&[text], EmbedKind::Passage).await;
    let one = [text];
    let calls = (0..4).map(|_| embed(&one, EmbedKind::Passage));
    for v in futures_util::future::join_all(calls).await {
        assert!(cos(&v[0], &alone[0]) > 0.9999);
    }
}

#[test]
fn missing_model_files_are_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("no-e5-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let error = LocalEmbedder::open(&dir).unwrap_err();
    let EmbedError::Unavailable(message) = &error else {
        panic!("{error:?}");
    };
    assert!(message.contains("e5-small-q4.bin"), "{message}");
    assert!(message.contains("scripts/fetch-models.sh"), "{message}");
    // The weights without the engine name the engine.
    std::fs::write(dir.join("e5-small-q4.bin"), b"").unwrap();
    let error = LocalEmbedder::open(&dir).unwrap_err();
    assert!(error.to_string().contains("libe5.so"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
