//! Rate limits and quotas: the request past a key's (or tenant's) per-minute limit is
//! refused with `RATE_LIMITED`, a retry hint in `extensions.retryAfterSeconds` and, over
//! HTTP, 429 with `Retry-After`; replicas sharing Redis share the count; generation
//! starts are limited per tenant; an exhausted token quota refuses generation before any
//! model call; the `Quota` type shows what is used.

use crate::helpers::{Backend, TestApp};
use crate::live_credentials::{open, send};
use crate::websocket::{connect, next_json};
use serde_json::{Value, json};
use znovel_infra::llm::testing::{FakeOpenAi, FakeStream};
use znovel_infra::testing::TestDatabase;

const VIEWER: &str = "{ viewer { role } }";

/// POSTs `query` as `key`: (status, `Retry-After`, body).
async fn post(
    app: &TestApp,
    key: &str,
    query: &str,
    variables: Value,
) -> (u16, Option<u64>, Value) {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(key)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, resp.json().await.unwrap())
}

fn assert_rate_limited(body: &Value) -> u64 {
    let err = &body["errors"][0];
    assert_eq!(err["extensions"]["code"], "RATE_LIMITED", "{body}");
    let secs = err["extensions"]["retryAfterSeconds"]
        .as_u64()
        .expect("a retry hint");
    assert!((1..=60).contains(&secs), "{body}");
    secs
}

async fn the_request_past_a_keys_limit_is_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limits.requests_per_key = 3).await;
    for _ in 0..3 {
        let (status, _, body) = post(&app, &app.admin_key, VIEWER, json!({})).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry, body) = post(&app, &app.admin_key, VIEWER, json!({})).await;
    assert_eq!(status, 429);
    let secs = assert_rate_limited(&body);
    assert_eq!(retry, Some(secs), "Retry-After matches the hint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_past_a_keys_limit_is_refused_sqlite() {
    the_request_past_a_keys_limit_is_refused(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_past_a_keys_limit_is_refused_postgres() {
    the_request_past_a_keys_limit_is_refused(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_keys_share_the_tenant_limit() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.rate_limits.requests_per_tenant = 5;
    })
    .await;
    // Two requests make the second key (createUser, createApiKey).
    let other = app.user_key("r@limits.example", "VIEWER").await;
    assert_eq!(post(&app, &other, VIEWER, json!({})).await.0, 200);
    assert_eq!(post(&app, &app.admin_key, VIEWER, json!({})).await.0, 200);
    assert_eq!(post(&app, &other, VIEWER, json!({})).await.0, 200);
    let (status, _, body) = post(&app, &app.admin_key, VIEWER, json!({})).await;
    assert_eq!(status, 429, "{body}");
    assert_rate_limited(&body);
    // Another tenant is not affected.
    let elsewhere = app.new_tenant("elsewhere").await;
    assert_eq!(post(&app, &elsewhere, VIEWER, json!({})).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_operations_count_against_the_key() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.rate_limits.requests_per_key = 2).await;
    let mut ws = open(connect(&app).await, &app.admin_key).await;
    for id in ["1", "2", "3"] {
        send(&mut ws, id, VIEWER, json!({})).await;
    }
    let mut codes = Vec::new();
    while codes.len() < 3 {
        let msg = next_json(&mut ws).await;
        if msg["type"] == "next" {
            codes.push(
                msg["payload"]["errors"][0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or("ok")
                    .to_owned(),
            );
            if msg["payload"]["errors"].is_array() {
                assert_rate_limited(&msg["payload"]);
            }
        }
    }
    codes.sort();
    assert_eq!(codes, ["RATE_LIMITED", "ok", "ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_share_the_limit() {
    let db = TestDatabase::postgres().await.unwrap();
    let prefix = format!("znovel-test-{}", uuid::Uuid::new_v4().simple());
    let shared = |s: &mut znovel::config::Settings| {
        s.database_url = Some(db.url.clone().into());
        s.redis_url = Some("redis://127.0.0.1:6379".to_string().into());
        s.redis_prefix = prefix.clone();
        s.rate_limits.requests_per_key = 4;
    };
    let a = TestApp::spawn_with(Backend::Postgres, shared).await;
    let b = TestApp::spawn_with(Backend::Postgres, shared).await;
    let key = &a.admin_key;
    assert_eq!(post(&a, key, VIEWER, json!({})).await.0, 200);
    assert_eq!(post(&b, key, VIEWER, json!({})).await.0, 200);
    assert_eq!(post(&a, key, VIEWER, json!({})).await.0, 200);
    assert_eq!(post(&b, key, VIEWER, json!({})).await.0, 200);
    let (status, retry, body) = post(&b, key, VIEWER, json!({})).await;
    assert_eq!(
        status, 429,
        "the fifth request, across both replicas: {body}"
    );
    assert_eq!(retry, Some(assert_rate_limited(&body)));
}

const GENERATE: &str =
    "mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id } } }";

async fn app_with_fake(fake: &FakeOpenAi, starts: u32) -> TestApp {
    let base = fake.base_url();
    TestApp::spawn_with(Backend::Sqlite, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("primary".into());
        s.rate_limits.generations_per_tenant = starts;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_starts_are_limited_per_tenant() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    for _ in 0..3 {
        fake.script("primary", FakeStream::new(vec!["Once. ".to_owned()]));
    }
    let app = app_with_fake(&fake, 2).await;
    let novel = app.novel("Limited").await;
    for seq in 1..=2 {
        let chapter = app.chapter(&novel, seq, "Ch").await;
        app.ok(
            GENERATE,
            json!({ "i": { "chapterId": chapter, "targetWords": 50 } }),
        )
        .await;
    }
    let chapter = app.chapter(&novel, 3, "Ch").await;
    let (status, _, body) = post(
        &app,
        &app.admin_key,
        GENERATE,
        json!({ "i": { "chapterId": chapter, "targetWords": 50 } }),
    )
    .await;
    assert_eq!(status, 200, "a field error: {body}");
    assert_rate_limited(&body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_token_quota_refuses_generation_before_the_model_and_quota_shows_usage() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app_with_fake(&fake, 60).await;
    let novel = app.novel("Quota").await;
    let chapter = app.chapter(&novel, 1, "Ch").await;
    let d = app
        .ok(
            "{ viewer { tenant { quota { maxNovels novels maxTokensPerDay tokensUsedToday } } } }",
            json!({}),
        )
        .await;
    let quota = &d["viewer"]["tenant"]["quota"];
    assert_eq!(quota["novels"], 1, "{quota}");
    assert_eq!(quota["tokensUsedToday"], 0, "{quota}");

    app.ok(
        "mutation { updateQuota(input: { maxTokensPerDay: 0 }) { tenant { id } } }",
        json!({}),
    )
    .await;
    let (code, body) = app
        .err_as(
            Some(&app.admin_key),
            GENERATE,
            json!({ "i": { "chapterId": chapter, "targetWords": 50 } }),
        )
        .await;
    assert_eq!(code, "QUOTA_EXCEEDED", "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(fake.requests_for("primary").is_empty(), "no model call");
}
