//! The OpenAI-compatible adapter against a fake provider speaking the real protocol
//! (HTTP/1.1, chunked SSE of `chat.completion.chunk`s, OpenAI error bodies).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod llm_support;

use futures_util::StreamExt;
use llm_support::*;
use serde_json::json;
use std::time::{Duration, Instant, SystemTime};
use znovel_domain::ports::{
    CompletionEvent, FinishReason, LanguageModel, LlmError, ServedBy, TokenUsage,
};
use znovel_infra::llm::testing::{FakeOpenAi, FakeReply, FakeStream, StreamEnd};
use znovel_infra::llm::{OpenAiCompatible, OpenAiConfig};

fn model(config: OpenAiConfig) -> OpenAiCompatible {
    OpenAiCompatible::new(config).unwrap()
}

#[tokio::test]
async fn streams_deltas_usage_and_finish_and_sends_the_right_request() {
    let fake = fake().await;
    fake.script(
        "gpt-test",
        FakeStream::new(["Hello", ", ", "world", "!"]).usage(21, 4),
    );
    let llm = model(config(&fake, "gpt-test").with_provider("deepseek"));
    let out = run(&llm, request()).await.unwrap();

    assert_eq!(out.error, None);
    assert_eq!(
        out.events,
        vec![
            CompletionEvent::Started(ServedBy {
                provider: "deepseek".into(),
                model: "gpt-test".into(),
                fallback: false
            }),
            CompletionEvent::Delta("Hello".into()),
            CompletionEvent::Delta(", ".into()),
            CompletionEvent::Delta("world".into()),
            CompletionEvent::Delta("!".into()),
            CompletionEvent::Usage(TokenUsage {
                prompt_tokens: 21,
                completion_tokens: 4
            }),
            CompletionEvent::Finished(FinishReason::Stop),
        ]
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.problems, Vec::<String>::new());
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.model(), "gpt-test");
    assert_eq!(sent.body["stream"], json!(true));
    assert_eq!(
        sent.body["stream_options"],
        json!({ "include_usage": true })
    );
    assert_eq!(sent.body["max_tokens"], json!(256));
    assert_eq!(sent.body["seed"], json!(42));
    assert!((sent.body["temperature"].as_f64().unwrap() - 0.7).abs() < 1e-6);
    assert_eq!(sent.messages(), pairs(&request()));
}

#[tokio::test]
async fn multi_byte_text_split_across_network_chunks_is_intact() {
    let fake = fake().await;
    let pieces = [
        "第三章 风暴",
        "。雷声",
        "滚滚🌩️，",
        "她说：“走吧",
        "！”👋🏽",
        " done",
    ];
    // HTTP chunks of 3 (then 7) bytes: characters are cut in the middle.
    fake.script("three", FakeStream::new(pieces).split_every(3));
    fake.script("seven", FakeStream::new(pieces).split_every(7));
    for name in ["three", "seven"] {
        let slow_writes = config(&fake, name).with_timeouts(CONNECT, HANG, HANG);
        let out = run(&model(slow_writes), request()).await.unwrap();
        assert_eq!(out.error, None, "{name}");
        assert_eq!(out.deltas(), pieces, "{name}");
        assert_eq!(out.text(), pieces.concat());
        assert_eq!(out.finished(), Some(FinishReason::Stop));
    }
}

#[tokio::test]
async fn empty_deltas_are_skipped_and_finish_reasons_map() {
    let fake = fake().await;
    fake.script(
        "len",
        FakeStream::new(["a", "", "b"])
            .finish_reason(Some("length"))
            .no_usage(),
    );
    fake.script(
        "filter",
        FakeStream::new(["x"]).finish_reason(Some("content_filter")),
    );
    fake.script(
        "none",
        FakeStream::new(["y"]).finish_reason(None).no_usage(),
    );

    let out = run(&model(config(&fake, "len")), request()).await.unwrap();
    assert_eq!(out.deltas(), ["a", "b"]);
    assert_eq!(out.usage(), None);
    assert_eq!(out.finished(), Some(FinishReason::Length));

    let out = run(&model(config(&fake, "filter")), request())
        .await
        .unwrap();
    assert_eq!(
        out.finished(),
        Some(FinishReason::Other("content_filter".into()))
    );

    // `[DONE]` without a finish_reason still finishes.
    let out = run(&model(config(&fake, "none")), request()).await.unwrap();
    assert_eq!(
        (out.text(), out.finished()),
        ("y".into(), Some(FinishReason::Stop))
    );
}

#[tokio::test]
async fn no_first_token_in_time_after_the_headers() {
    let fake = fake().await;
    fake.script(
        "slow",
        FakeStream::new(["late"]).first_token_delay(Duration::from_secs(5)),
    );
    let started = Instant::now();
    let out = run(&model(config(&fake, "slow")), request()).await.unwrap();
    assert_eq!(out.error, Some(LlmError::FirstTokenTimeout(FIRST_TOKEN)));
    assert_eq!(out.text(), "");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(
        fake.wait_client_closed(1, Duration::from_secs(1)).await,
        "request not closed"
    );
}

#[tokio::test]
async fn no_response_headers_in_time_is_a_first_token_timeout_of_stream() {
    let fake = fake().await;
    fake.script("hang", FakeReply::Hang);
    let started = Instant::now();
    let err = run(&model(config(&fake, "hang")), request())
        .await
        .unwrap_err();
    assert_eq!(err, LlmError::FirstTokenTimeout(FIRST_TOKEN));
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(
        fake.wait_client_closed(1, Duration::from_secs(1)).await,
        "request not closed"
    );
}

#[tokio::test]
async fn a_stall_mid_stream_is_a_stall_timeout() {
    let fake = fake().await;
    fake.script(
        "stall",
        FakeStream::new(["Once ", "upon"]).end(StreamEnd::Stall),
    );
    let started = Instant::now();
    let out = run(&model(config(&fake, "stall")), request())
        .await
        .unwrap();
    assert_eq!(out.text(), "Once upon");
    assert_eq!(out.error, Some(LlmError::StallTimeout(STALL)));
    assert_eq!(out.finished(), None);
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(
        fake.wait_client_closed(1, Duration::from_secs(1)).await,
        "request not closed"
    );
}

#[tokio::test]
async fn slow_but_steady_tokens_do_not_stall() {
    let fake = fake().await;
    // 8 pieces 100 ms apart: 0.7 s in all, longer than both timeouts, never silent for long.
    let pieces = ["a", "b", "c", "d", "e", "f", "g", "h"];
    fake.script(
        "steady",
        FakeStream::new(pieces).interval(Duration::from_millis(100)),
    );
    let out = run(&model(config(&fake, "steady")), request())
        .await
        .unwrap();
    assert_eq!((out.text(), out.error), ("abcdefgh".into(), None));
}

#[tokio::test]
async fn rate_limited_with_retry_after_seconds_or_date() {
    let fake = fake().await;
    fake.script(
        "secs",
        FakeReply::rate_limited("7", "Rate limit reached for requests"),
    );
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90));
    fake.script("date", FakeReply::rate_limited(&date, "Slow down"));

    let err = run(&model(config(&fake, "secs")), request())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
            message: "Rate limit reached for requests".into()
        }
    );
    assert!(err.falls_back());
    match run(&model(config(&fake, "date")), request())
        .await
        .unwrap_err()
    {
        LlmError::RateLimited {
            retry_after: Some(after),
            message,
        } => {
            assert!(
                after > Duration::from_secs(80) && after <= Duration::from_secs(90),
                "{after:?}"
            );
            assert_eq!(message, "Slow down");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn http_errors_surface_the_json_message_or_the_truncated_body() {
    let fake = fake().await;
    fake.script(
        "e500",
        FakeReply::openai_error(
            500,
            "The server had an error while processing your request.",
        ),
    );
    fake.script(
        "e400",
        FakeReply::openai_error(400, "max_tokens is too large"),
    );
    let long = "overloaded ".repeat(1000);
    fake.script(
        "e502",
        FakeReply::Error {
            status: 502,
            headers: vec![],
            body: long.clone(),
        },
    );

    let err = run(&model(config(&fake, "e500")), request())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LlmError::Http {
            status: 500,
            body: "The server had an error while processing your request.".into()
        }
    );
    assert!(err.falls_back());
    let err = run(&model(config(&fake, "e400")), request())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LlmError::Http {
            status: 400,
            body: "max_tokens is too large".into()
        }
    );
    assert!(!err.falls_back());
    match run(&model(config(&fake, "e502")), request())
        .await
        .unwrap_err()
    {
        LlmError::Http { status: 502, body } => {
            assert!(
                body.len() <= 2048 + 3 && body.len() > 2000,
                "{}",
                body.len()
            );
            assert!(long.starts_with(body.trim_end_matches('…')));
        }
        other => panic!("{other:?}"),
    }
    // A model the provider does not know: its 404 and message.
    match run(&model(config(&fake, "unknown")), request())
        .await
        .unwrap_err()
    {
        LlmError::Http { status: 404, body } => assert!(body.contains("does not exist"), "{body}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_key_is_a_401_not_retried() {
    let fake = fake().await;
    fake.script("m", FakeStream::new(["never"]));
    let config = config(&fake, "m").with_api_key("sk-wrong".to_owned());
    let err = run(&model(config), request()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Http { status: 401, body } if body.contains("Authorization")),
        "{err:?}"
    );
    assert!(!err.falls_back());
}

#[tokio::test]
async fn malformed_events_are_protocol_errors() {
    let fake = fake().await;
    fake.script(
        "junk",
        FakeStream::new(["ok "]).end(StreamEnd::Malformed("{not json".into())),
    );
    fake.script(
        "object",
        FakeStream::new(["ok "]).end(StreamEnd::Malformed(
            r#"{"object":"chat.completion","choices":[]}"#.into(),
        )),
    );
    fake.script(
        "error",
        FakeStream::new(["ok "]).end(StreamEnd::Malformed(
            r#"{"error":{"message":"model overloaded"}}"#.into(),
        )),
    );
    for name in ["junk", "object", "error"] {
        let out = run(&model(config(&fake, name)), request()).await.unwrap();
        assert_eq!(out.text(), "ok ", "{name}");
        assert!(
            matches!(out.error, Some(LlmError::Protocol(_))),
            "{name}: {:?}",
            out.error
        );
    }
    let out = run(&model(config(&fake, "error")), request())
        .await
        .unwrap();
    assert!(format!("{:?}", out.error).contains("model overloaded"));
    // The client closed each of those connections itself (4 requests).
    assert!(fake.wait_client_closed(4, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_wrong_content_type_is_a_protocol_error() {
    let fake = fake().await;
    fake.script(
        "json",
        FakeStream::new(["x"]).content_type("application/json"),
    );
    let err = run(&model(config(&fake, "json")), request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Protocol(m) if m.contains("application/json")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_abrupt_close_mid_stream_is_a_connection_error() {
    let fake = fake().await;
    fake.script(
        "abort",
        FakeStream::new(["partial ", "text"]).end(StreamEnd::Abort),
    );
    let out = run(&model(config(&fake, "abort")), request())
        .await
        .unwrap();
    assert_eq!(out.text(), "partial text");
    assert!(
        matches!(out.error, Some(LlmError::Connection(_))),
        "{:?}",
        out.error
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = OpenAiConfig::new(format!("http://{addr}/v1"), "m").with_timeouts(
        CONNECT,
        FIRST_TOKEN,
        STALL,
    );
    let err = run(&model(config), request()).await.unwrap_err();
    assert!(matches!(&err, LlmError::Connection(_)), "{err:?}");
    assert!(err.falls_back());
}

#[tokio::test]
async fn continuous_usage_keeps_the_last_report_and_is_given_before_an_error() {
    let fake = fake().await;
    fake.script(
        "vllm",
        FakeStream::new(["a", "b", "c"])
            .continuous_usage()
            .usage(9, 3),
    );
    fake.script(
        "vllm-stall",
        FakeStream::new(["a", "b"])
            .continuous_usage()
            .usage(9, 3)
            .end(StreamEnd::Stall),
    );
    let out = run(&model(config(&fake, "vllm")), request()).await.unwrap();
    assert_eq!(
        out.usage(),
        Some(TokenUsage {
            prompt_tokens: 9,
            completion_tokens: 3
        })
    );
    let out = run(&model(config(&fake, "vllm-stall")), request())
        .await
        .unwrap();
    assert_eq!(
        out.usage(),
        Some(TokenUsage {
            prompt_tokens: 9,
            completion_tokens: 2
        })
    );
    assert_eq!(out.error, Some(LlmError::StallTimeout(STALL)));
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let fake = fake().await;
    fake.script(
        "endless",
        FakeStream::new(["tick "])
            .interval(Duration::from_millis(20))
            .end(StreamEnd::Endless),
    );
    let llm = model(config(&fake, "endless"));
    let mut stream = tokio::time::timeout(HANG, llm.stream(request()))
        .await
        .unwrap()
        .unwrap();
    let mut deltas = 0;
    while deltas < 3 {
        match tokio::time::timeout(HANG, stream.next()).await.unwrap() {
            Some(Ok(CompletionEvent::Delta(_))) => deltas += 1,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(fake.client_closed(), 0);
    let dropped = Instant::now();
    drop(stream);
    assert!(
        fake.wait_client_closed(1, Duration::from_secs(1)).await,
        "the server still streams"
    );
    assert!(dropped.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_fake_without_a_key_accepts_requests_without_one() {
    let fake = FakeOpenAi::start(None).await.unwrap();
    fake.script("local", FakeStream::new(["hi"]));
    let config =
        OpenAiConfig::new(fake.base_url(), "local").with_timeouts(CONNECT, FIRST_TOKEN, STALL);
    let out = run(&model(config), request()).await.unwrap();
    assert_eq!(out.text(), "hi");
    assert_eq!(fake.requests()[0].header("authorization"), None);
}
