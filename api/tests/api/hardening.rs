//! Abuse and careless-client reproductions, each refused cheaply with a stable code:
//! requests without a key, fragment bombs, client-chosen metric labels, keys revoking
//! stronger keys, NUL in JSON, mutations over GET or `text/plain`, and connections that
//! never finish (HTTP headers, bodies, idle keep-alive, WebSocket `connection_init`).

use crate::both;
use crate::helpers::{Backend, TestApp};
use crate::websocket::{connect, next_json};
use futures_util::SinkExt;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// A document whose fragments spread the previous fragment twice, `levels` deep: ~900
/// bytes for 22 levels, expanding to 2^22 selections.
pub fn fragment_bomb(levels: usize) -> String {
    let mut q = format!("query Bomb {{ ...F{levels} }}\nfragment F0 on Query {{ __typename }}\n");
    for i in 1..=levels {
        q.push_str(&format!(
            "fragment F{i} on Query {{ ...F{p} ...F{p} }}\n",
            p = i - 1
        ));
    }
    q
}

async fn raw_post(app: &TestApp, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
    let mut req = app.client.post(app.url("/graphql")).body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

both!(
    requests_without_a_key_are_refused_before_the_body_is_read,
    |app: TestApp| async move {
        for (headers, body) in [
            (
                vec![("content-type", "application/json")],
                "{not even json".to_owned(),
            ),
            (
                vec![("content-type", "application/json")],
                json!({ "query": fragment_bomb(22) }).to_string(),
            ),
        ] {
            let r = raw_post(&app, &headers, &body).await;
            assert_eq!(r.status().as_u16(), 401);
            assert_eq!(r.headers()["www-authenticate"], "Bearer");
            let body: Value = r.json().await.unwrap();
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
                "{body}"
            );
        }
        let r = app
            .client
            .get(app.url("/graphql?query=%7B__typename%7D"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
    }
);

both!(
    a_fragment_bomb_is_refused_before_validation,
    |app: TestApp| async move {
        let (status, body) = app
            .post(Some(&app.admin_key), &fragment_bomb(22), json!({}))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("4194304 fields"), "{message}");
        // Fragments that stay small are fine, and so is the introspection GraphiQL sends.
        let d = app
            .ok(
                "query { ...A } fragment A on Query { viewer { ...B } } fragment B on Viewer { role }",
                json!({}),
            )
            .await;
        assert_eq!(d["viewer"]["role"], "ADMIN");
        let d = app.ok(INTROSPECTION, json!({})).await;
        assert!(d["__schema"]["types"].as_array().unwrap().len() > 50);
        let r = app.client.get(app.url("/health")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
);

both!(
    client_chosen_operation_names_do_not_grow_the_metrics,
    |app: TestApp| async move {
        for i in 0..260 {
            let q = format!("query Op{i} {{ __typename }}");
            let r = app
                .client
                .post(app.url("/graphql"))
                .bearer_auth(&app.admin_key)
                .json(&json!({ "query": q, "operationName": format!("Op{i}") }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
        // A name that is not in the document never becomes a label.
        let r = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&app.admin_key)
            .json(&json!({ "query": "query Real { __typename }", "operationName": "Invented" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let text = app
            .client
            .get(format!("http://{}/metrics", app.metrics_addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let labels = text
            .lines()
            .filter(|l| l.starts_with("znovel_graphql_operations_total{"))
            .count();
        assert!(labels <= 202, "{labels} operation labels");
        assert!(text.contains("znovel_graphql_operations_total{operation=\"Op0\"} 1"));
        assert!(text.contains("znovel_graphql_operations_total{operation=\"other\"} 60"));
        assert!(text.contains("znovel_graphql_operations_total{operation=\"invalid\"} 1"));
        assert!(!text.contains("Invented"));
    }
);

both!(
    a_read_key_cannot_revoke_a_stronger_key,
    |app: TestApp| async move {
        let d = app
            .ok(
                "mutation { createApiKey(input: { name: \"ro\", scopes: [READ] }) { secret apiKey { id } } }",
                json!({}),
            )
            .await;
        let read_key = d["createApiKey"]["secret"].as_str().unwrap().to_owned();
        let read_id = d["createApiKey"]["apiKey"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let d = app
            .ok(
                "{ apiKeys(first: 10) { edges { node { id name } } } }",
                json!({}),
            )
            .await;
        let admin_id = d["apiKeys"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["name"] != "ro")
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .unwrap();
        let revoke =
            "mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } } }";
        let (code, body) = app
            .err_as(Some(&read_key), revoke, json!({ "id": admin_id }))
            .await;
        assert_eq!(code, "FORBIDDEN", "{body}");
        // The admin is not locked out; the READ key may still revoke itself.
        app.ok("{ viewer { role } }", json!({})).await;
        app.ok_as(&read_key, revoke, json!({ "id": read_id })).await;
        let (status, _) = app
            .post(Some(&read_key), "{ viewer { role } }", json!({}))
            .await;
        assert_eq!(status, 401);
    }
);

both!(
    a_nul_inside_json_is_bad_input_on_both_backends,
    |app: TestApp| async move {
        let (code, body) = app
            .err_as(
                Some(&app.admin_key),
                "mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }",
                json!({ "i": { "title": "T", "worldSettings": { "magic": "a\u{0}b" } } }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "worldSettings");
        assert_eq!(app.novel_count().await, 0);
    }
);

both!(mutations_need_post_with_json, |app: TestApp| async move {
    let create = "mutation { createNovel(input: { title: \"via GET\" }) { novel { id } } }";
    let r = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", create)])
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let key = format!("Bearer {}", app.admin_key);
    let body = json!({ "query": create }).to_string();
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = raw_post(
            &app,
            &[("content-type", ct), ("authorization", &key)],
            &body,
        )
        .await;
        assert_eq!(r.status().as_u16(), 415, "{ct}");
    }
    assert_eq!(app.novel_count().await, 0);
    // Queries over GET still work.
    let r = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ viewer { role } }")])
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
});

/// Waits until the server closes `conn` (EOF or reset), at most `within`; returns what
/// it sent before closing.
async fn closed_by_server(conn: &mut tokio::net::TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(within, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_has_a_deadline() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.limits.header_timeout_secs = 1;
        s.limits.body_timeout_secs = 1;
        s.limits.ws_init_timeout_secs = 1;
    })
    .await;
    let within = Duration::from_secs(15);
    // Headers never finished.
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    closed_by_server(&mut conn, within).await;
    // A body announced and never sent.
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        app.admin_key
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let answer = closed_by_server(&mut conn, within).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    // An idle keep-alive connection after one request.
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_by_server(&mut conn, within).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A WebSocket that never sends connection_init.
    let mut ws = connect(&app).await;
    let msg = next_json(&mut ws).await;
    assert_eq!(
        (msg["type"].as_str(), msg["code"].as_u64()),
        (Some("__close"), Some(4408))
    );
}

/// A server whose generation is wired (to a provider nothing will ask here), so the
/// live subscriptions run.
async fn with_generation(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| {
        s.llm.base_url = Some("http://127.0.0.1:9/v1".into());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_protocol_violations_close_with_the_protocols_codes_sqlite() {
    websocket_protocol_violations(with_generation(Backend::Sqlite).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_protocol_violations_close_with_the_protocols_codes_postgres() {
    websocket_protocol_violations(with_generation(Backend::Postgres).await).await;
}

async fn websocket_protocol_violations(app: TestApp) {
    {
        // connection_init without a credential.
        let mut ws = connect(&app).await;
        ws.send(Message::text(
            json!({ "type": "connection_init" }).to_string(),
        ))
        .await
        .unwrap();
        let msg = next_json(&mut ws).await;
        assert_eq!(msg["code"], 4403, "{msg}");
        let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", app.admin_key) } }).to_string();
        // An unknown message type: 4400, with a close frame a client can read.
        let mut ws = connect(&app).await;
        ws.send(Message::text(init.clone())).await.unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
        ws.send(Message::text(
            json!({ "type": "x".repeat(300) }).to_string(),
        ))
        .await
        .unwrap();
        let msg = next_json(&mut ws).await;
        assert_eq!(msg["code"], 4400, "{msg}");
        // A subscription id already in use: 4409.
        let novel = app.novel("Dup").await;
        let mut ws = connect(&app).await;
        ws.send(Message::text(init.clone())).await.unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
        let sub = json!({ "id": "s", "type": "subscribe", "payload": { "query": "subscription($n: ID!) { jobEvents(novelId: $n) { status } }", "variables": { "n": novel } } }).to_string();
        ws.send(Message::text(sub.clone())).await.unwrap();
        ws.send(Message::text(sub)).await.unwrap();
        let msg = next_json(&mut ws).await;
        assert_eq!(msg["code"], 4409, "{msg}");
        // A message over the body limit (1 MiB) closes the connection unread.
        let mut ws = connect(&app).await;
        ws.send(Message::text(init)).await.unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
        let big = format!(
            "mutation {{ createNovel(input: {{ title: \"big\", description: \"{}\" }}) {{ novel {{ id }} }} }}",
            "x".repeat(5 * 1024 * 1024)
        );
        let _ = ws
            .send(Message::text(
                json!({ "id": "1", "type": "subscribe", "payload": { "query": big } }).to_string(),
            ))
            .await;
        let msg = next_json(&mut ws).await;
        assert_eq!(
            (msg["type"].as_str(), msg["code"].as_u64()),
            (Some("__close"), Some(1009)),
            "{msg}"
        );
        assert_eq!(app.novel_count().await, 1);
    }
}

/// GraphiQL's introspection query (the one a playground sends).
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}
"#;

/// A burst of connections arriving faster than the server accepts them (a reconnect storm
/// after a deploy) waits in the listener's queue instead of being dropped: with nothing
/// accepting at all, 1,000 simultaneous connects all complete (the old backlog of 128 let
/// 129 through and left the rest retrying their SYN until they gave up).
#[tokio::test]
async fn a_connection_burst_is_queued_not_dropped() {
    let settings = znovel::config::Settings::default();
    assert!(settings.limits.listen_backlog >= 1024);
    let listener = znovel::app::bind(
        "127.0.0.1:0".parse().unwrap(),
        settings.limits.listen_backlog,
        "ZNOVEL_LISTEN",
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let connects = (0..1000).map(|_| async move {
        tokio::time::timeout(
            Duration::from_secs(20),
            tokio::net::TcpStream::connect(addr),
        )
        .await
    });
    let results = futures_util::future::join_all(connects).await;
    let connected = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    assert_eq!(
        connected, 1000,
        "connections completed while none was accepted"
    );
    drop(listener);
}
