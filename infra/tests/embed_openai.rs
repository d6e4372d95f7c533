//! The OpenAI-compatible embedder against a fake endpoint speaking the real wire protocol
//! (`embed_support`): batching, order, normalisation, the error mapping; and the cache in
//! front of it.
// Test helpers outside `#[test]` functions fail the test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod embed_support;

use embed_support::{DIMS, FakeEmbeddings, KEY, Reply, unit_vector};
use std::sync::Arc;
use std::time::Duration;
use znovel_domain::ports::{EmbedError, EmbedKind, Embedder};
use znovel_infra::embed::{CachedEmbedder, OpenAiEmbedder};

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("passage number {i} — 第{i}段"))
        .collect()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}

async fn embedder(fake: &FakeEmbeddings, batch: usize) -> OpenAiEmbedder {
    let mut config = fake.config();
    config.batch = batch;
    OpenAiEmbedder::new(config).unwrap()
}

#[tokio::test]
async fn texts_go_in_batches_and_come_back_in_order_normalised() {
    let fake = FakeEmbeddings::start().await;
    let e = embedder(&fake, 4).await;
    let input = texts(10);
    let vectors = e.embed(&input, EmbedKind::Passage).await.unwrap();
    // 10 texts in batches of at most 4: 4 + 4 + 2, in order.
    let sent = fake.inputs();
    assert_eq!(sent.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
    assert_eq!(sent.concat(), input);
    // The fake answers in reverse order: the vectors are put back by `index`.
    assert_eq!(vectors.len(), 10);
    for (text, v) in input.iter().zip(&vectors) {
        assert!(close(v, &unit_vector(text)), "{text}");
    }
    // The request names the model, the key, the float encoding and the dimensions.
    let body = &fake.bodies()[0];
    assert_eq!(body["model"], embed_support::MODEL);
    assert_eq!(body["encoding_format"], "float");
    assert_eq!(body["dimensions"], DIMS);
    assert!(
        fake.authorizations()
            .iter()
            .all(|a| a.as_deref() == Some(&*format!("Bearer {KEY}")))
    );
    assert_eq!(e.dimensions(), DIMS);
    assert_eq!(e.model(), embed_support::MODEL);
}

#[tokio::test]
async fn empty_input_sends_nothing_and_empty_texts_are_sent_as_a_space() {
    let fake = FakeEmbeddings::start().await;
    let e = embedder(&fake, 64).await;
    assert!(e.embed(&[], EmbedKind::Query).await.unwrap().is_empty());
    assert!(fake.bodies().is_empty());
    let v = e.embed(&[String::new()], EmbedKind::Query).await.unwrap();
    assert_eq!(fake.inputs(), vec![vec![" ".to_owned()]]);
    assert!(close(&v[0], &unit_vector(" ")));
}

async fn error_of(reply: Reply) -> EmbedError {
    let fake = FakeEmbeddings::start().await;
    fake.script([reply]);
    let e = embedder(&fake, 64).await;
    e.embed(&texts(3), EmbedKind::Passage).await.unwrap_err()
}

#[tokio::test]
async fn rate_limits_server_errors_and_timeouts_are_unavailable() {
    let e = error_of(Reply::Status(429, "Rate limit reached for requests")).await;
    assert!(
        matches!(&e, EmbedError::Unavailable(m) if m.contains("429") && m.contains("Rate limit reached")),
        "{e:?}"
    );
    let e = error_of(Reply::Status(500, "The server had an error")).await;
    assert!(
        matches!(&e, EmbedError::Unavailable(m) if m.contains("500")),
        "{e:?}"
    );
    let e = error_of(Reply::Status(503, "overloaded")).await;
    assert!(matches!(e, EmbedError::Unavailable(_)), "{e:?}");
    let e = error_of(Reply::Slow(Duration::from_secs(3))).await;
    assert!(
        matches!(&e, EmbedError::Unavailable(m) if m.contains("timed out")),
        "{e:?}"
    );
}

#[tokio::test]
async fn other_client_errors_are_rejected_with_the_providers_message() {
    let e = error_of(Reply::Status(
        400,
        "This model's maximum context length is 8192",
    ))
    .await;
    assert!(
        matches!(&e, EmbedError::Rejected(m) if m.contains("maximum context length")),
        "{e:?}"
    );
    // A wrong key: the fake answers 401.
    let fake = FakeEmbeddings::start().await;
    let mut config = fake.config();
    config.api_key = Some("sk-wrong".to_owned().into());
    let e = OpenAiEmbedder::new(config)
        .unwrap()
        .embed(&texts(1), EmbedKind::Query)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, EmbedError::Rejected(m) if m.contains("401") && m.contains("Incorrect API key")),
        "{e:?}"
    );
}

#[tokio::test]
async fn broken_answers_are_protocol_errors() {
    for reply in [
        Reply::Raw("{\"data\": [oops"),
        Reply::Raw("{\"object\":\"list\"}"),
        Reply::OneMissing,
        Reply::WrongDims,
        Reply::RepeatedIndex,
    ] {
        let e = error_of(reply.clone()).await;
        assert!(matches!(e, EmbedError::Protocol(_)), "{reply:?}: {e:?}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let fake = FakeEmbeddings::start().await;
    let config = fake.config();
    drop(fake);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = OpenAiEmbedder::new(config)
        .unwrap()
        .embed(&texts(1), EmbedKind::Query)
        .await
        .unwrap_err();
    assert!(matches!(e, EmbedError::Unavailable(_)), "{e:?}");
}

#[tokio::test]
async fn the_cache_sends_only_misses_in_one_batch() {
    let fake = FakeEmbeddings::start().await;
    let inner: Arc<dyn Embedder> = Arc::new(embedder(&fake, 64).await);
    let cached = CachedEmbedder::new(inner, 100);
    let first: Vec<String> = ["a", "b", "a", "c"].map(String::from).to_vec();
    let v1 = cached.embed(&first, EmbedKind::Passage).await.unwrap();
    // One request, each distinct text once.
    assert_eq!(fake.inputs(), vec![vec!["a", "b", "c"]]);
    assert!(close(&v1[0], &v1[2]) && close(&v1[3], &unit_vector("c")));
    // Again: all hits, no request.
    let v2 = cached.embed(&first, EmbedKind::Passage).await.unwrap();
    assert_eq!(fake.inputs().len(), 1);
    assert!(v1.iter().zip(&v2).all(|(a, b)| close(a, b)));
    // Two new texts among cached ones: one request with just those.
    let second: Vec<String> = ["c", "d", "a", "e"].map(String::from).to_vec();
    let v3 = cached.embed(&second, EmbedKind::Passage).await.unwrap();
    assert_eq!(fake.inputs()[1], vec!["d", "e"]);
    for (text, v) in second.iter().zip(&v3) {
        assert!(close(v, &unit_vector(text)), "{text}");
    }
    // The kind is part of the key: the same text as a query is a miss.
    cached.embed(&first[..1], EmbedKind::Query).await.unwrap();
    assert_eq!(fake.inputs().len(), 3);
    assert_eq!(cached.model(), embed_support::MODEL);
    assert_eq!(cached.dimensions(), DIMS);
}

#[tokio::test]
async fn the_cache_is_bounded_and_caches_nothing_from_a_failure() {
    let fake = FakeEmbeddings::start().await;
    let inner: Arc<dyn Embedder> = Arc::new(embedder(&fake, 64).await);
    let cached = CachedEmbedder::new(inner, 2);
    fake.script([Reply::Status(500, "down")]);
    let one = vec!["x".to_owned()];
    assert!(cached.embed(&one, EmbedKind::Query).await.is_err());
    assert!(cached.is_empty());
    cached.embed(&texts(3), EmbedKind::Query).await.unwrap();
    assert_eq!(cached.len(), 2);
    // The least recently used (the first text) was evicted: asking again calls the model.
    let before = fake.inputs().len();
    cached.embed(&texts(1), EmbedKind::Query).await.unwrap();
    assert_eq!(fake.inputs().len(), before + 1);
}
