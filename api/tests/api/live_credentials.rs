//! Live credentials: a WebSocket or SSE stream opened with a credential keeps only the
//! rights that credential has now. Revoking the key closes the socket (4403) or ends the
//! stream with `UNAUTHENTICATED`; demoting the user ends its running subscriptions with
//! `FORBIDDEN` and later operations on the same socket run with the new role.

use crate::helpers::{Backend, TestApp};
use crate::websocket::{Ws, connect, next_json};
use futures_util::SinkExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use znovel_infra::llm::testing::FakeOpenAi;

const EVENTS: &str = "subscription($n: ID!) { jobEvents(novelId: $n) { status } }";
const CREATE_NOVEL: &str =
    "mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }";
const REVOKE: &str =
    "mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } } }";
const DEMOTE: &str =
    "mutation($id: ID!) { updateUser(input: { id: $id, role: VIEWER }) { user { role } } }";

/// A server that can follow jobs (jobs need a model: a fake provider).
async fn app(backend: Backend, fake: &FakeOpenAi) -> TestApp {
    let base = fake.base_url();
    TestApp::spawn_with(backend, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("primary".into());
    })
    .await
}

/// A MEMBER of the local tenant: (user id, key secret, key id).
async fn writer(app: &TestApp, email: &str) -> (String, String, String) {
    let d = app
        .ok(
            "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }",
            json!({ "i": { "email": email, "role": "MEMBER" } }),
        )
        .await;
    let user = d["createUser"]["user"]["id"].as_str().unwrap().to_owned();
    let d = app
        .ok(
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }",
            json!({ "i": { "name": "live", "userId": user } }),
        )
        .await;
    let secret = d["createApiKey"]["secret"].as_str().unwrap().to_owned();
    let id = d["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (user, secret, id)
}

/// A WebSocket on `url`'s server, acknowledged with `key`.
pub async fn open(mut ws: Ws, key: &str) -> Ws {
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {key}") } })
            .to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    ws
}

pub async fn send(ws: &mut Ws, id: &str, query: &str, variables: Value) {
    ws.send(Message::text(
        json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })
            .to_string(),
    ))
    .await
    .unwrap();
}

/// Reads until the server closes the socket; returns the close code and how long it took.
pub async fn until_closed(ws: &mut Ws) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let msg = next_json(ws).await;
        if msg["type"] == "__close" {
            return (msg["code"].clone(), started.elapsed());
        }
    }
}

/// The next message of operation `id`.
async fn next_of(ws: &mut Ws, id: &str) -> Value {
    loop {
        let msg = next_json(ws).await;
        if msg["id"] == id || msg["type"] == "__close" {
            return msg;
        }
    }
}

async fn revoked_key_closes_its_socket(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app(backend, &fake).await;
    let novel = app.novel("Live").await;
    let (_, key, key_id) = writer(&app, "w@live.example").await;
    let mut ws = open(connect(&app).await, &key).await;
    send(&mut ws, "e", EVENTS, json!({ "n": novel })).await;
    // A query on the open socket works while the key is valid.
    send(&mut ws, "q", "{ viewer { role } }", json!({})).await;
    let msg = next_of(&mut ws, "q").await;
    assert_eq!(msg["payload"]["data"]["viewer"]["role"], "MEMBER", "{msg}");
    // More connections on the same key share its watch; one that leaves first does not
    // end it for the others.
    let mut second = open(connect(&app).await, &key).await;
    let mut early = open(connect(&app).await, &key).await;
    early.close(None).await.unwrap();
    drop(early);
    tokio::time::sleep(Duration::from_millis(200)).await;

    app.ok(REVOKE, json!({ "id": key_id })).await;
    let (code, took) = until_closed(&mut ws).await;
    assert_eq!(code, 4403);
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    let (code, took) = until_closed(&mut second).await;
    assert_eq!(code, 4403, "every socket of the key is closed");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    // The key is refused everywhere else too.
    let (status, _) = app.post(Some(&key), "{ viewer { role } }", json!({})).await;
    assert_eq!(status, 401);
    // And a new socket with it is refused at connection_init.
    let mut ws = connect(&app).await;
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": { "apiKey": key } }).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(until_closed(&mut ws).await.0, 4403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_closes_its_socket_sqlite() {
    revoked_key_closes_its_socket(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_closes_its_socket_postgres() {
    revoked_key_closes_its_socket(Backend::Postgres).await;
}

async fn demoted_member_loses_writes_on_its_open_socket(backend: Backend) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app(backend, &fake).await;
    let novel = app.novel("Demoted").await;
    let (user, key, _) = writer(&app, "d@live.example").await;
    let mut ws = open(connect(&app).await, &key).await;
    send(&mut ws, "e", EVENTS, json!({ "n": novel })).await;
    send(
        &mut ws,
        "c1",
        CREATE_NOVEL,
        json!({ "i": { "title": "Before" } }),
    )
    .await;
    let msg = next_of(&mut ws, "c1").await;
    assert!(
        msg["payload"]["data"]["createNovel"]["novel"]["id"].is_string(),
        "{msg}"
    );

    app.ok(DEMOTE, json!({ "id": user })).await;
    // The running subscription ends, saying why.
    let started = Instant::now();
    let msg = next_of(&mut ws, "e").await;
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{msg}"
    );
    assert_eq!(next_of(&mut ws, "e").await["type"], "complete");
    assert!(started.elapsed() < Duration::from_secs(3));

    // The socket stays open, with the new role: writes are refused, reads work.
    send(
        &mut ws,
        "c2",
        CREATE_NOVEL,
        json!({ "i": { "title": "After" } }),
    )
    .await;
    let msg = next_of(&mut ws, "c2").await;
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{msg}"
    );
    send(&mut ws, "q", "{ viewer { role } }", json!({})).await;
    let msg = next_of(&mut ws, "q").await;
    assert_eq!(msg["payload"]["data"]["viewer"]["role"], "VIEWER", "{msg}");
    assert_eq!(
        app.novel_count().await,
        2,
        "only the novel made before the demotion"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demoted_member_loses_writes_on_its_open_socket_sqlite() {
    demoted_member_loses_writes_on_its_open_socket(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demoted_member_loses_writes_on_its_open_socket_postgres() {
    demoted_member_loses_writes_on_its_open_socket(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_ends_its_sse_stream() {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let app = app(Backend::Sqlite, &fake).await;
    let novel = app.novel("Streamed").await;
    let (_, key, key_id) = writer(&app, "s@live.example").await;
    let mut resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&key)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": EVENTS, "variables": { "n": novel } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.ok(REVOKE, json!({ "id": key_id })).await;
    let mut text = String::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("event: complete") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the stream did not end: {text}");
    assert!(text.contains("UNAUTHENTICATED"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_one_process_closes_its_socket_on_another() {
    use crate::scale_out::{Cluster, gql};
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let cluster = Cluster::new(&fake).await;
    let (a, admin) = cluster.serve("a", false, true);
    let admin = admin.unwrap();
    let (b, _) = cluster.serve("b", false, false);
    let d = gql(
        a.url(),
        &admin,
        "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }",
        json!({ "i": { "email": "x@live.example", "role": "MEMBER" } }),
    )
    .await;
    let user = d["createUser"]["user"]["id"].as_str().unwrap().to_owned();
    let d = gql(
        a.url(),
        &admin,
        "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }",
        json!({ "i": { "name": "live", "userId": user } }),
    )
    .await;
    let key = d["createApiKey"]["secret"].as_str().unwrap().to_owned();
    let key_id = d["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = gql(
        a.url(),
        &admin,
        CREATE_NOVEL,
        json!({ "i": { "title": "Far" } }),
    )
    .await;
    let novel = d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned();

    // The socket is on B; B has authenticated (and cached) the key.
    let ws_url = b.url().replace("http://", "ws://");
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)
            .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut ws = open(ws, &key).await;
    send(&mut ws, "e", EVENTS, json!({ "n": novel })).await;
    send(&mut ws, "q", "{ viewer { role } }", json!({})).await;
    assert_eq!(
        next_of(&mut ws, "q").await["payload"]["data"]["viewer"]["role"],
        "MEMBER"
    );

    gql(a.url(), &admin, REVOKE, json!({ "id": key_id })).await;
    let (code, took) = until_closed(&mut ws).await;
    assert_eq!(code, 4403);
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
}
