//! The fallback chain over OpenAI-compatible models served by a fake provider: switching
//! on each kind of failure, continuing cut-off text, the force switch, the observer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod llm_support;

use futures_util::StreamExt;
use llm_support::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use znovel_domain::ports::{
    CompletionEvent, FinishReason, LanguageModel, LlmError, ServedBy, TokenUsage,
};
use znovel_infra::llm::testing::{FakeOpenAi, FakeReply, FakeStream, StreamEnd};
use znovel_infra::llm::{
    CONTINUE_PROMPT, FallbackChain, FallbackObserver, NoopObserver, OpenAiConfig, build_chain,
};

/// A chain `primary → fallback (→ third)` on `fake` (same endpoint and key), as
/// `LLM_FALLBACK_MODELS` configures it.
fn chain(fake: &FakeOpenAi, models: &[&str], observer: Arc<dyn FallbackObserver>) -> FallbackChain {
    let primary = config(fake, models[0]);
    let fallbacks = models[1..].iter().map(|m| primary.for_model(*m)).collect();
    build_chain(primary, fallbacks, FallbackChain::never_forced(), observer).unwrap()
}

fn served(model: &str, fallback: bool) -> ServedBy {
    ServedBy {
        provider: "openai".into(),
        model: model.into(),
        fallback,
    }
}

#[tokio::test]
async fn a_healthy_primary_serves_alone() {
    let fake = fake().await;
    fake.script(
        "primary",
        FakeStream::new(["Chapter ", "one."]).usage(50, 2),
    );
    let observer = RecordingObserver::new();
    let llm = chain(&fake, &["primary", "backup"], observer.clone());
    assert_eq!(llm.served_by(), served("primary", false));
    let out = run(&llm, request()).await.unwrap();
    assert_eq!(out.started(), [served("primary", false)]);
    assert_eq!(out.text(), "Chapter one.");
    assert_eq!(
        out.usage(),
        Some(TokenUsage {
            prompt_tokens: 50,
            completion_tokens: 2
        })
    );
    assert_eq!(out.finished(), Some(FinishReason::Stop));
    assert!(observer.fallbacks().is_empty() && observer.errors().is_empty());
    assert!(fake.requests_for("backup").is_empty());
}

#[tokio::test]
async fn no_first_token_in_time_switches_to_the_fallback() {
    let fake = fake().await;
    fake.script(
        "primary",
        FakeStream::new(["late"]).first_token_delay(Duration::from_secs(5)),
    );
    fake.script("backup", FakeStream::new(["Rain ", "fell."]).usage(40, 2));
    let observer = RecordingObserver::new();
    let llm = chain(&fake, &["primary", "backup"], observer.clone());
    let started = Instant::now();
    let out = run(&llm, request()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        out.started(),
        [served("primary", false), served("backup", true)]
    );
    assert_eq!(out.text(), "Rain fell.");
    assert_eq!(out.error, None);
    assert_eq!(
        out.usage(),
        Some(TokenUsage {
            prompt_tokens: 40,
            completion_tokens: 2
        })
    );
    assert_eq!(
        observer.fallbacks(),
        [(
            "primary".into(),
            "backup".into(),
            LlmError::FirstTokenTimeout(FIRST_TOKEN)
        )]
    );
    assert_eq!(
        observer.errors(),
        [("openai".into(), LlmError::FirstTokenTimeout(FIRST_TOKEN))]
    );
    // Nothing was streamed: the fallback gets the original prompt.
    assert_eq!(fake.requests_for("backup")[0].messages(), pairs(&request()));
    assert!(
        fake.wait_client_closed(1, Duration::from_secs(1)).await,
        "primary request left open"
    );
}

#[tokio::test]
async fn no_response_at_all_switches_before_the_stream_exists() {
    let fake = fake().await;
    fake.script("primary", FakeReply::Hang);
    fake.script("backup", FakeStream::new(["ok"]));
    let llm = chain(&fake, &["primary", "backup"], Arc::new(NoopObserver));
    let out = run(&llm, request()).await.unwrap();
    assert_eq!(out.started(), [served("backup", true)]);
    assert_eq!(out.text(), "ok");
}

#[tokio::test]
async fn a_stall_mid_stream_is_continued_by_the_fallback_without_loss_or_repeat() {
    let fake = fake().await;
    let partial = ["从前有座山，", "山里有座庙。", "庙里"];
    fake.script("primary", FakeStream::new(partial).end(StreamEnd::Stall));
    fake.script(
        "backup",
        FakeStream::new(["有个老和尚", "在讲故事。"]).usage(120, 9),
    );
    let observer = RecordingObserver::new();
    let llm = chain(&fake, &["primary", "backup"], observer.clone());
    let out = run(&llm, request()).await.unwrap();

    assert_eq!(out.error, None);
    assert_eq!(
        out.text(),
        "从前有座山，山里有座庙。庙里有个老和尚在讲故事。"
    );
    assert_eq!(
        out.started(),
        [served("primary", false), served("backup", true)]
    );
    // The switch comes right after the partial text.
    let deltas_before_switch = out
        .events
        .iter()
        .skip(1)
        .take_while(|e| !matches!(e, CompletionEvent::Started(_)))
        .count();
    assert_eq!(deltas_before_switch, partial.len());
    assert_eq!(
        out.usage(),
        Some(TokenUsage {
            prompt_tokens: 120,
            completion_tokens: 9
        })
    );
    assert_eq!(observer.fallbacks()[0].2, LlmError::StallTimeout(STALL));

    let mut expected = pairs(&request());
    expected.push(("assistant".into(), partial.concat()));
    expected.push(("user".into(), CONTINUE_PROMPT.into()));
    let continued = fake.requests_for("backup");
    assert_eq!(continued.len(), 1);
    assert_eq!(continued[0].messages(), expected);
    assert_eq!(continued[0].problems, Vec::<String>::new());
}

#[tokio::test]
async fn a_broken_stream_is_continued_and_usage_of_both_models_is_summed() {
    let fake = fake().await;
    // The primary reports usage on every chunk (vLLM), then its connection drops.
    fake.script(
        "primary",
        FakeStream::new(["The storm ", "broke "])
            .continuous_usage()
            .usage(100, 2)
            .end(StreamEnd::Abort),
    );
    fake.script("backup", FakeStream::new(["at midnight."]).usage(130, 3));
    let observer = RecordingObserver::new();
    let llm = chain(&fake, &["primary", "backup"], observer.clone());
    let out = run(&llm, request()).await.unwrap();
    assert_eq!(out.text(), "The storm broke at midnight.");
    assert_eq!(
        out.usage(),
        Some(TokenUsage {
            prompt_tokens: 230,
            completion_tokens: 5
        })
    );
    assert!(matches!(observer.fallbacks()[0].2, LlmError::Connection(_)));
    let sent = fake.requests_for("backup")[0].messages();
    assert_eq!(
        sent[sent.len() - 2],
        ("assistant".into(), "The storm broke ".into())
    );
}

#[tokio::test]
async fn rate_limits_and_server_errors_move_down_the_chain() {
    let fake = fake().await;
    fake.script(
        "primary",
        FakeReply::rate_limited("3", "Rate limit reached"),
    );
    fake.script(
        "second",
        FakeReply::openai_error(500, "The server had an error"),
    );
    fake.script("third", FakeStream::new(["third ", "serves"]));
    let observer = RecordingObserver::new();
    let llm = chain(&fake, &["primary", "second", "third"], observer.clone());
    let out = run(&llm, request()).await.unwrap();
    assert_eq!(out.started(), [served("third", true)]);
    assert_eq!(out.text(), "third serves");
    let fallbacks = observer.fallbacks();
    assert_eq!(
        fallbacks
            .iter()
            .map(|(f, t, _)| (f.as_str(), t.as_str()))
            .collect::<Vec<_>>(),
        [("primary", "second"), ("second", "third")]
    );
    assert_eq!(
        fallbacks[0].2,
        LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
            message: "Rate limit reached".into()
        }
    );
    assert_eq!(
        fallbacks[1].2,
        LlmError::Http {
            status: 500,
            body: "The server had an error".into()
        }
    );
    assert_eq!(observer.errors().len(), 2);
}

#[tokio::test]
async fn a_bad_request_is_not_retried_on_the_fallback() {
    let fake = fake().await;
    fake.script(
        "primary",
        FakeReply::openai_error(400, "This model's maximum context length is 8192 tokens"),
    );
    fake.script("backup", FakeStream::new(["should not be used"]));
    let observer = RecordingObserver::new();
    let llm = chain(&fake, &["primary", "backup"], observer.clone());
    let err = run(&llm, request()).await.unwrap_err();
    assert_eq!(
        err,
        LlmError::Http {
            status: 400,
            body: "This model's maximum context length is 8192 tokens".into()
        }
    );
    assert!(fake.requests_for("backup").is_empty());
    assert!(observer.fallbacks().is_empty());
    assert_eq!(observer.errors().len(), 1);
}

#[tokio::test]
async fn the_force_switch_is_read_on_every_request() {
    let fake = fake().await;
    fake.script("primary", FakeStream::new(["from primary"]));
    fake.script("backup", FakeStream::new(["from backup"]));
    let force = Arc::new(AtomicBool::new(false));
    let observer = RecordingObserver::new();
    let primary = config(&fake, "primary");
    let switch = Arc::clone(&force);
    let llm = build_chain(
        primary.clone(),
        vec![primary.for_model("backup")],
        Arc::new(move || switch.load(Ordering::SeqCst)),
        observer.clone(),
    )
    .unwrap();

    let first = run(&llm, request()).await.unwrap();
    assert_eq!(
        (first.started(), first.text()),
        (vec![served("primary", false)], "from primary".into())
    );
    force.store(true, Ordering::SeqCst); // the operator flips it; no restart
    let second = run(&llm, request()).await.unwrap();
    assert_eq!(
        (second.started(), second.text()),
        (vec![served("backup", true)], "from backup".into())
    );
    force.store(false, Ordering::SeqCst);
    let third = run(&llm, request()).await.unwrap();
    assert_eq!(third.text(), "from primary");

    assert_eq!(fake.requests_for("primary").len(), 2);
    assert_eq!(fake.requests_for("backup").len(), 1);
    assert_eq!(
        observer.forced(),
        [("primary".to_owned(), "backup".to_owned())]
    );
}

#[tokio::test]
async fn forcing_without_a_fallback_keeps_the_primary() {
    let fake = fake().await;
    fake.script("primary", FakeStream::new(["only one"]));
    let llm = build_chain(
        config(&fake, "primary"),
        vec![],
        Arc::new(|| true),
        Arc::new(NoopObserver),
    )
    .unwrap();
    let out = run(&llm, request()).await.unwrap();
    assert_eq!(out.started(), [served("primary", false)]);
}

#[tokio::test]
async fn when_every_model_fails_the_last_error_is_returned() {
    let fake = fake().await;
    fake.script("primary", FakeReply::openai_error(503, "down"));
    fake.script("backup", FakeReply::rate_limited("1", "busy"));
    let llm = chain(&fake, &["primary", "backup"], Arc::new(NoopObserver));
    let err = run(&llm, request()).await.unwrap_err();
    assert_eq!(
        err,
        LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
            message: "busy".into()
        }
    );

    // Mid-stream: both stall; the partial text stays, the last error ends the stream.
    let fake = fake_with(&[
        ("primary", FakeStream::new(["one "]).end(StreamEnd::Stall)),
        ("backup", FakeStream::new(["two "]).end(StreamEnd::Stall)),
    ])
    .await;
    let observer = RecordingObserver::new();
    let llm = chain(&fake, &["primary", "backup"], observer.clone());
    let started = Instant::now();
    let out = run(&llm, request()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(out.text(), "one two ");
    assert_eq!(out.error, Some(LlmError::StallTimeout(STALL)));
    assert_eq!(out.finished(), None);
    assert_eq!(observer.fallbacks().len(), 1);
    assert_eq!(observer.errors().len(), 2);
    // The backup continued from "one ".
    assert_eq!(
        fake.requests_for("backup")[0].messages()[2],
        ("assistant".into(), "one ".into())
    );
}

#[tokio::test]
async fn a_fallback_may_be_another_provider() {
    let main = fake().await;
    let other = FakeOpenAi::start(Some("sk-other")).await.unwrap();
    main.script("primary", FakeReply::openai_error(502, "bad gateway"));
    other.script("qwen-plus", FakeStream::new(["你好"]));
    let fallback = OpenAiConfig::new(other.base_url(), "qwen-plus")
        .with_api_key("sk-other".to_owned())
        .with_provider("qwen")
        .with_timeouts(CONNECT, FIRST_TOKEN, STALL);
    let llm = build_chain(
        config(&main, "primary"),
        vec![fallback],
        FallbackChain::never_forced(),
        Arc::new(NoopObserver),
    )
    .unwrap();
    let out = run(&llm, request()).await.unwrap();
    assert_eq!(
        out.started(),
        [ServedBy {
            provider: "qwen".into(),
            model: "qwen-plus".into(),
            fallback: true
        }]
    );
    assert_eq!(out.text(), "你好");
}

#[tokio::test]
async fn dropping_the_chain_stream_closes_the_serving_connection() {
    let fake = fake().await;
    fake.script("primary", FakeReply::openai_error(500, "oops"));
    fake.script(
        "backup",
        FakeStream::new(["tick "])
            .interval(Duration::from_millis(20))
            .end(StreamEnd::Endless),
    );
    let llm = chain(&fake, &["primary", "backup"], Arc::new(NoopObserver));
    let mut stream = tokio::time::timeout(HANG, llm.stream(request()))
        .await
        .unwrap()
        .unwrap();
    let mut deltas = 0;
    while deltas < 3 {
        if let Some(Ok(CompletionEvent::Delta(_))) =
            tokio::time::timeout(HANG, stream.next()).await.unwrap()
        {
            deltas += 1;
        }
    }
    drop(stream);
    assert!(
        fake.wait_client_closed(1, Duration::from_secs(1)).await,
        "the backup still streams"
    );
}

#[tokio::test]
async fn an_empty_chain_is_unavailable() {
    let llm = FallbackChain::new(
        vec![],
        FallbackChain::never_forced(),
        Arc::new(NoopObserver),
    );
    assert!(matches!(
        run(&llm, request()).await.unwrap_err(),
        LlmError::Unavailable(_)
    ));
}

#[tokio::test]
async fn the_continuation_prompt_follows_the_original_messages() {
    // The continuation is built from the ORIGINAL messages, not from a previous
    // continuation, when two models in a row break.
    let fake = fake_with(&[
        ("a", FakeStream::new(["A1 "]).end(StreamEnd::Abort)),
        ("b", FakeStream::new(["B1 "]).end(StreamEnd::Abort)),
        ("c", FakeStream::new(["C1"])),
    ])
    .await;
    let llm = chain(&fake, &["a", "b", "c"], Arc::new(NoopObserver));
    let out = run(&llm, request()).await.unwrap();
    assert_eq!(out.text(), "A1 B1 C1");
    let mut expected = pairs(&request());
    expected.push(("assistant".into(), "A1 B1 ".into()));
    expected.push(("user".into(), CONTINUE_PROMPT.into()));
    assert_eq!(fake.requests_for("c")[0].messages(), expected);
}

async fn fake_with(scripts: &[(&str, FakeStream)]) -> FakeOpenAi {
    let fake = fake().await;
    for (model, script) in scripts {
        fake.script(model, script.clone());
    }
    fake
}
