//! Authentication: API keys (bad, revoked, last used) and JWT bearer tokens.

use crate::both;
use crate::helpers::{Backend, TestApp};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

both!(
    bad_api_keys_are_unauthenticated,
    |app: TestApp| async move {
        let valid_shape = format!("znk_{}_{}", uuid::Uuid::new_v4().simple(), "a".repeat(43));
        let mut tampered = app.admin_key.clone();
        tampered.pop();
        tampered.push(if app.admin_key.ends_with('A') {
            'B'
        } else {
            'A'
        });
        for key in [
            "nonsense",
            "znk_short",
            valid_shape.as_str(),
            tampered.as_str(),
        ] {
            let (status, body) = app.post(Some(key), "{ viewer { role } }", json!({})).await;
            assert_eq!(status, 401, "{key}: {body:#}");
            assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        }
        // No credentials at all: the operation needs them.
        let (code, _) = app.err_as(None, "{ viewer { role } }", json!({})).await;
        assert_eq!(code, "UNAUTHENTICATED");
        let (code, _) = app
            .err_as(
                None,
                "mutation { createNovel(input: { title: \"x\" }) { novel { id } } }",
                json!({}),
            )
            .await;
        assert_eq!(code, "UNAUTHENTICATED");
        assert_eq!(app.novel_count().await, 0);
        // X-Api-Key works as well as Authorization.
        let resp = app
            .client
            .post(app.url("/graphql"))
            .header("x-api-key", &app.admin_key)
            .json(&json!({ "query": "{ viewer { role } }" }))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["data"]["viewer"]["role"], "ADMIN");
    }
);

both!(
    revoked_keys_stop_working_and_keys_are_shown_once,
    |app: TestApp| async move {
        let d = app
        .ok(
            "mutation { createApiKey(input: { name: \"ci\", scopes: [READ] }) { secret apiKey { id name prefix scopes lastUsedAt revokedAt } } }",
            json!({}),
        )
        .await;
        let key = d["createApiKey"]["secret"].as_str().unwrap().to_owned();
        let id = d["createApiKey"]["apiKey"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(d["createApiKey"]["apiKey"]["lastUsedAt"].is_null());
        assert!(
            !d["createApiKey"]["apiKey"]["prefix"]
                .as_str()
                .unwrap()
                .contains(&key[20..])
        );

        let d = app.ok_as(&key, "{ viewer { role } }", json!({})).await;
        assert_eq!(
            d["viewer"]["role"], "VIEWER",
            "a READ-scoped key of an admin acts as a viewer"
        );
        let (code, _) = app
            .err_as(
                Some(&key),
                "mutation { createNovel(input: { title: \"x\" }) { novel { id } } }",
                json!({}),
            )
            .await;
        assert_eq!(code, "FORBIDDEN");

        let d = app
            .ok(
                "{ apiKeys(first: 50) { edges { node { id lastUsedAt } } } }",
                json!({}),
            )
            .await;
        let listed = d["apiKeys"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["id"] == id.as_str())
            .unwrap()
            .clone();
        assert!(
            listed["node"]["lastUsedAt"].is_string(),
            "last use is recorded"
        );
        let body = serde_json::to_string(&d).unwrap();
        assert!(!body.contains(&key), "the secret is never listed");

        app.ok(
            "mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } } }",
            json!({ "id": id }),
        )
        .await;
        let (status, body) = app.post(Some(&key), "{ viewer { role } }", json!({})).await;
        assert_eq!(status, 401, "{body:#}");
    }
);

#[derive(serde::Serialize)]
struct Claims<'a> {
    sub: String,
    tid: String,
    exp: i64,
    iss: &'a str,
    aud: &'a str,
}

async fn jwt_case(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.jwt.secret = Some("test-secret-of-enough-length-0123456789".to_string().into());
        s.jwt.issuer = Some("https://auth.example".into());
        s.jwt.audience = Some("znovel".into());
    })
    .await;
    let d = app
        .ok("{ viewer { user { id } tenant { id } } }", json!({}))
        .await;
    let actor = app
        .services
        .admin
        .authenticate_api_key(&app.admin_key)
        .await
        .unwrap();
    assert!(d["viewer"]["user"]["id"].is_string());
    let token = |secret: &str, exp: i64, iss: &str, aud: &str| {
        encode(
            &Header::default(),
            &Claims {
                sub: actor.user_id.to_string(),
                tid: actor.tenant_id.to_string(),
                exp,
                iss,
                aud,
            },
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let now = chrono::Utc::now().timestamp();
    let good = token(
        "test-secret-of-enough-length-0123456789",
        now + 600,
        "https://auth.example",
        "znovel",
    );
    let d = app.ok_as(&good, "{ viewer { role } }", json!({})).await;
    assert_eq!(d["viewer"]["role"], "ADMIN");
    for bad in [
        token(
            "wrong-secret-wrong-secret-wrong-secret",
            now + 600,
            "https://auth.example",
            "znovel",
        ),
        token(
            "test-secret-of-enough-length-0123456789",
            now - 600,
            "https://auth.example",
            "znovel",
        ),
        token(
            "test-secret-of-enough-length-0123456789",
            now + 600,
            "https://evil.example",
            "znovel",
        ),
        token(
            "test-secret-of-enough-length-0123456789",
            now + 600,
            "https://auth.example",
            "other",
        ),
        // Not valid before ten minutes from now.
        encode(
            &Header::default(),
            &json!({
                "sub": actor.user_id.to_string(),
                "tid": actor.tenant_id.to_string(),
                "exp": now + 3600,
                "nbf": now + 600,
                "iss": "https://auth.example",
                "aud": "znovel",
            }),
            &EncodingKey::from_secret(b"test-secret-of-enough-length-0123456789"),
        )
        .unwrap(),
    ] {
        let (status, body) = app.post(Some(&bad), "{ viewer { role } }", json!({})).await;
        assert_eq!(status, 401, "{body:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_bearer_tokens_sqlite() {
    jwt_case(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_bearer_tokens_postgres() {
    jwt_case(Backend::Postgres).await;
}
