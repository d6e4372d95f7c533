//! The embedded local model against the real GGUF model that `scripts/fetch-models.sh`
//! fetches (`$ZNOVEL_MODEL_PATH`, else `data/models/SmolLM2-135M-Instruct.Q4_1.gguf` in
//! the workspace root). Without the file these tests fail, saying how to fetch it.
#![cfg(feature = "local-llm")]
// Test helpers outside `#[test]` functions fail the test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use znovel_domain::ports::{
    ChatMessage, ChatRole, CompletionEvent, CompletionRequest, CompletionStream, FinishReason,
    LanguageModel, LlmError, TokenUsage,
};
use znovel_infra::llm::local::{DEFAULT_MODEL_FILE, LocalModel, LocalModelOptions};

fn model_path() -> PathBuf {
    let path = std::env::var_os("ZNOVEL_MODEL_PATH").map_or_else(
        || {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            LocalModel::default_path(&root.join("data"))
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "the local model {} is missing: run scripts/fetch-models.sh (or set ZNOVEL_MODEL_PATH)",
        path.display()
    );
    path
}

fn load(options: LocalModelOptions) -> LocalModel {
    LocalModel::load(&model_path(), options).expect("the local model loads")
}

fn request(prompt: &str, max_tokens: u32, temperature: f32, seed: u64) -> CompletionRequest {
    CompletionRequest {
        messages: vec![
            ChatMessage::new(ChatRole::System, "You are a novelist. Write vivid prose."),
            ChatMessage::new(ChatRole::User, prompt),
        ],
        max_tokens,
        temperature,
        seed: Some(seed),
        json_schema: None,
    }
}

/// Everything a stream yields, checking the port's event order on the way.
#[derive(Debug, Default)]
struct Collected {
    deltas: Vec<String>,
    usage: Option<TokenUsage>,
    finished: Option<FinishReason>,
    first_delta_after: Option<Duration>,
}

impl Collected {
    fn text(&self) -> String {
        self.deltas.concat()
    }
}

async fn collect(model: &LocalModel, request: CompletionRequest) -> Collected {
    let started = Instant::now();
    let mut stream = model
        .stream(request)
        .await
        .expect("the request is accepted");
    let first = stream
        .next()
        .await
        .expect("a first event")
        .expect("no error");
    assert_eq!(first, CompletionEvent::Started(model.served_by()));
    let mut out = Collected::default();
    while let Some(event) = stream.next().await {
        assert!(out.finished.is_none(), "nothing after Finished");
        match event.expect("no error item") {
            CompletionEvent::Started(_) => panic!("Started twice"),
            CompletionEvent::Delta(text) => {
                assert!(out.usage.is_none(), "a Delta after Usage");
                assert!(!text.is_empty(), "empty Delta");
                out.first_delta_after.get_or_insert(started.elapsed());
                out.deltas.push(text);
            }
            CompletionEvent::Usage(usage) => {
                assert!(out.usage.replace(usage).is_none(), "Usage twice");
            }
            CompletionEvent::Finished(reason) => out.finished = Some(reason),
        }
    }
    assert!(out.finished.is_some(), "the stream ended without Finished");
    out
}

#[tokio::test]
async fn streams_a_short_completion_in_the_port_order() {
    let model = load(LocalModelOptions::default());
    let served = model.served_by();
    assert_eq!(served.provider, "local");
    assert_eq!(served.model, DEFAULT_MODEL_FILE.trim_end_matches(".gguf"));
    assert!(!served.fallback);

    let out = collect(
        &model,
        request("Describe a lighthouse at night.", 32, 0.7, 7),
    )
    .await;
    println!("completion: {:?}", out.text());
    assert!(!out.deltas.is_empty());
    assert!(!out.text().trim().is_empty());
    let usage = out.usage.expect("a Usage event");
    assert!(usage.prompt_tokens > 10, "{usage:?}");
    assert!((1..=32).contains(&usage.completion_tokens), "{usage:?}");
    let reason = out.finished.expect("finished");
    assert!(
        matches!(reason, FinishReason::Stop | FinishReason::Length),
        "{reason:?}"
    );
    if usage.completion_tokens < 32 {
        assert_eq!(reason, FinishReason::Stop);
    }
}

#[tokio::test]
async fn the_same_seed_gives_byte_identical_text() {
    let model = load(LocalModelOptions::default());
    let ask = || request("Write the opening line of a ghost story.", 48, 0.9, 1234);
    let first = collect(&model, ask()).await.text();
    let second = collect(&model, ask()).await.text();
    assert!(!first.is_empty());
    assert_eq!(first, second);
    // A fresh model (new context) gives the same text too; greedy is reproducible.
    let again = collect(&load(LocalModelOptions::default()), ask())
        .await
        .text();
    assert_eq!(first, again);
    let greedy = || request("Write the opening line of a ghost story.", 24, 0.0, 1);
    assert_eq!(
        collect(&model, greedy()).await.text(),
        collect(&model, greedy()).await.text()
    );
}

#[tokio::test]
async fn chinese_text_streams_as_whole_characters() {
    let model = load(LocalModelOptions::default());
    let prompt = "请用中文写一句关于月亮和大海的诗。";
    let out = collect(&model, request(prompt, 48, 0.8, 99)).await;
    println!("completion: {:?}", out.text());
    // Every Delta is a `String`, so valid UTF-8 by construction; what matters is that
    // none carries a replacement character from a character split across tokens.
    for delta in &out.deltas {
        assert!(!delta.contains('\u{FFFD}'), "broken character in {delta:?}");
    }
    let text = out.text();
    assert!(std::str::from_utf8(text.as_bytes()).is_ok());
    assert!(!text.contains('\u{FFFD}'), "{text:?}");
    // An assistant message last is continued, not closed.
    let continued = CompletionRequest {
        messages: vec![
            ChatMessage::new(ChatRole::User, "写一个故事。"),
            ChatMessage::new(ChatRole::Assistant, "从前，在一座高山上，"),
        ],
        max_tokens: 24,
        temperature: 0.0,
        seed: None,
        json_schema: None,
    };
    let out = collect(&model, continued).await;
    println!("continuation: {:?}", out.text());
    assert!(!out.text().contains('\u{FFFD}'));
}

#[tokio::test]
async fn dropping_the_stream_stops_decoding() {
    // One worker: the next request can only start once the first one stopped.
    let model = load(LocalModelOptions {
        parallel: 1,
        ..LocalModelOptions::default()
    });
    let mut stream = model
        .stream(request(
            "Tell a very long story about a dragon.",
            1024,
            0.8,
            5,
        ))
        .await
        .expect("accepted");
    let mut deltas = 0;
    while deltas < 2 {
        if let CompletionEvent::Delta(_) = stream.next().await.expect("event").expect("ok") {
            deltas += 1;
        }
    }
    drop(stream);
    let dropped = Instant::now();
    let mut next = model
        .stream(request("Say hello.", 4, 0.0, 1))
        .await
        .expect("accepted");
    let started = next.next().await.expect("event").expect("ok");
    let waited = dropped.elapsed();
    assert!(matches!(started, CompletionEvent::Started(_)));
    println!("the worker was free {waited:?} after the drop");
    assert!(
        waited < Duration::from_secs(2),
        "the cancelled generation kept the worker for {waited:?}"
    );
    drain(next).await;
}

#[tokio::test]
async fn dropping_the_stream_stops_a_long_prompt_too() {
    let model = load(LocalModelOptions {
        parallel: 1,
        ..LocalModelOptions::default()
    });
    let long = "The old lighthouse keeper climbed the stairs again. ".repeat(150);
    // How long the whole prompt takes on this machine now.
    let started = Instant::now();
    drain(
        model
            .stream(request(&long, 1, 0.0, 1))
            .await
            .expect("accepted"),
    )
    .await;
    let full = started.elapsed();

    let mut stream = model
        .stream(request(&long, 1, 0.0, 2))
        .await
        .expect("accepted");
    let first = stream.next().await.expect("event").expect("ok");
    assert!(matches!(first, CompletionEvent::Started(_)));
    // Let the worker get into the prompt.
    tokio::time::sleep(full / 10).await;
    drop(stream);
    let dropped = Instant::now();
    let mut next = model
        .stream(request("Say hello.", 4, 0.0, 1))
        .await
        .expect("accepted");
    next.next().await.expect("event").expect("ok");
    let waited = dropped.elapsed();
    println!("the prompt takes {full:?}; the worker was free {waited:?} after the drop");
    assert!(
        waited < full / 2,
        "the cancelled prompt kept the worker for {waited:?} of {full:?}"
    );
    drain(next).await;
}

#[tokio::test]
async fn a_full_queue_answers_unavailable() {
    let model = load(LocalModelOptions {
        parallel: 1,
        max_queued: 1,
        ..LocalModelOptions::default()
    });
    let mut running = model
        .stream(request("Tell a long story.", 256, 0.8, 1))
        .await
        .expect("accepted");
    // Started: the worker has taken it, so the queue is empty again.
    running.next().await.expect("event").expect("ok");
    let queued = model
        .stream(request("Say hello.", 4, 0.0, 1))
        .await
        .expect("queued");
    match model.stream(request("Say hello.", 4, 0.0, 1)).await {
        Err(LlmError::Unavailable(message)) => assert!(message.contains("busy"), "{message}"),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("a request past max_queued was accepted"),
    }
    drop(running);
    drain(queued).await;
}

async fn drain(mut stream: CompletionStream) {
    while let Some(event) = stream.next().await {
        event.expect("no error item");
    }
}

#[tokio::test]
async fn max_tokens_is_respected() {
    let model = load(LocalModelOptions::default());
    for max in [1, 5, 17] {
        let out = collect(
            &model,
            request("Write a long poem about autumn.", max, 0.8, 3),
        )
        .await;
        let usage = out.usage.expect("usage");
        assert!(
            usage.completion_tokens <= i64::from(max),
            "{usage:?} for max {max}"
        );
        if out.finished == Some(FinishReason::Length) {
            assert_eq!(usage.completion_tokens, i64::from(max));
        }
    }
    let out = collect(&model, request("Hi", 0, 0.8, 3)).await;
    assert_eq!(out.finished, Some(FinishReason::Length));
    assert_eq!(out.usage.map(|u| u.completion_tokens), Some(0));
}

#[tokio::test]
async fn concurrent_requests_run_or_queue() {
    let model = load(LocalModelOptions {
        parallel: 2,
        ..LocalModelOptions::default()
    });
    let ask = |i: u64| request("Name a color and a animal.", 16, 0.7, i);
    let runs = (0..4).map(|i| {
        let model = model.clone();
        async move { collect(&model, ask(i % 2)).await.text() }
    });
    let texts = futures_util::future::join_all(runs).await;
    assert!(texts.iter().all(|t| !t.is_empty()), "{texts:?}");
    // Concurrent contexts do not disturb each other: same seed, same text.
    assert_eq!(texts[0], texts[2]);
    assert_eq!(texts[1], texts[3]);
}

#[tokio::test]
async fn too_long_a_prompt_is_refused_and_a_missing_file_is_named() {
    let model = load(LocalModelOptions {
        context_size: 64,
        ..LocalModelOptions::default()
    });
    let long = "word ".repeat(200);
    match model.stream(request(&long, 8, 0.0, 1)).await {
        Err(LlmError::Http { status: 400, body }) => assert!(body.contains("context"), "{body}"),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("a prompt longer than the context was accepted"),
    }
    let missing = std::env::temp_dir().join("no-such-model.gguf");
    let error = LocalModel::load(&missing, LocalModelOptions::default())
        .expect_err("a missing file fails")
        .to_string();
    assert!(error.contains("no-such-model.gguf"), "{error}");
    assert!(error.contains("scripts/fetch-models.sh"), "{error}");
}

/// Not a benchmark: prints load time, first-token latency (cold: the worker creates its
/// context; warm: it reuses it), decoding speed over ~128 tokens, prompt speed over ~1000
/// tokens and the process's resident memory, with no assertion on them.
#[tokio::test]
async fn measures_throughput() {
    let loading = Instant::now();
    let options = LocalModelOptions::default();
    let threads = options.threads;
    let model = load(options);
    let load_time = loading.elapsed();
    let cold = collect(&model, request("Say hello.", 4, 0.0, 1)).await;
    let cold_first = cold.first_delta_after.unwrap_or_default();

    let started = Instant::now();
    let out = collect(
        &model,
        request("Write a story about a lost key.", 128, 0.8, 11),
    )
    .await;
    let total = started.elapsed();
    let usage = out.usage.expect("usage");
    let first = out.first_delta_after.unwrap_or(total);
    let decoding = total.saturating_sub(first).as_secs_f64();
    let rate = if decoding > 0.0 {
        (usage.completion_tokens - 1).max(0) as f64 / decoding
    } else {
        0.0
    };

    let long = "The old lighthouse keeper climbed the stairs again. ".repeat(100);
    let started = Instant::now();
    let prefill = collect(&model, request(&long, 1, 0.0, 1)).await;
    let prefill_time = started.elapsed().as_secs_f64();
    let prompt_tokens = prefill.usage.expect("usage").prompt_tokens;

    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    println!(
        "local model ({threads} threads): load {load_time:?}; first token {cold_first:?} cold, \
         {first:?} warm ({} prompt tokens); {} tokens in {total:?}: {rate:.1} tokens/s after \
         the first; prompt of {prompt_tokens} tokens in {prefill_time:.2} s ({:.0} tokens/s); {rss}",
        usage.prompt_tokens,
        usage.completion_tokens,
        prompt_tokens as f64 / prefill_time,
    );
}
