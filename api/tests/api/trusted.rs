//! Trusted documents: automatic persisted queries (the hash protocol Apollo clients
//! speak) over POST, GET and WebSocket, and the allow-list mode.

use crate::both;
use crate::helpers::TestApp;
use crate::websocket::{connect, next_json};
use futures_util::SinkExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

pub fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// POSTs `body` as the admin; returns (HTTP status, body).
async fn post(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .bearer_auth(&app.admin_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// GETs `/graphql` with `params` as the admin; returns (HTTP status, body).
async fn get(app: &TestApp, params: &[(&str, String)]) -> (u16, Value) {
    let r = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .bearer_auth(&app.admin_key)
        .query(params)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

const VIEWER: &str = "query Viewer { viewer { role } }";

both!(
    a_persisted_query_registers_by_use_and_then_runs_by_hash,
    |app: TestApp| async move {
        let hash = sha256(VIEWER);
        // Hash only, never seen: the client is asked for the document, as Apollo's link expects.
        let (status, body) = post(&app, json!({ "extensions": persisted(&hash) })).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
        assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");

        // Hash and document: runs, and is remembered.
        let (status, body) = post(
            &app,
            json!({ "query": VIEWER, "extensions": persisted(&hash) }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["viewer"]["role"], "ADMIN", "{body}");

        // Hash only now runs the remembered document, over POST and over GET.
        let (status, body) = post(&app, json!({ "extensions": persisted(&hash) })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["viewer"]["role"], "ADMIN", "{body}");
        let (status, body) = get(
            &app,
            &[
                ("operationName", "Viewer".into()),
                ("extensions", persisted(&hash).to_string()),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["viewer"]["role"], "ADMIN", "{body}");
    }
);

both!(
    persisted_queries_refuse_wrong_hashes_and_mutations_over_get,
    |app: TestApp| async move {
        // A hash that is not the document's.
        let (status, body) = post(
            &app,
            json!({ "query": VIEWER, "extensions": persisted(&sha256("{ __typename }")) }),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(
            body["errors"][0]["message"],
            "provided sha does not match query"
        );
        assert!(
            body.get("data").is_none_or(Value::is_null),
            "nothing ran: {body}"
        );
        // A malformed extension or another protocol version.
        for ext in [
            json!({ "persistedQuery": { "version": 2, "sha256Hash": sha256(VIEWER) } }),
            json!({ "persistedQuery": { "version": 1, "sha256Hash": "abc" } }),
            json!({ "persistedQuery": "yes" }),
        ] {
            let (status, body) = post(&app, json!({ "extensions": ext })).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        }

        // A mutation registered over POST cannot then be run by hash over GET.
        let mutation =
            "mutation M($t: String!) { createNovel(input: { title: $t }) { novel { id } } }";
        let hash = sha256(mutation);
        let (status, body) = post(
            &app,
            json!({ "query": mutation, "variables": { "t": "One" }, "extensions": persisted(&hash) }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = get(
            &app,
            &[
                ("variables", json!({ "t": "Two" }).to_string()),
                ("extensions", persisted(&hash).to_string()),
            ],
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(app.novel_count().await, 1, "the GET created nothing");
    }
);

both!(
    persisted_queries_work_over_websocket,
    |app: TestApp| async move {
        let hash = sha256(VIEWER);
        let mut ws = connect(&app).await;
        ws.send(Message::text(
            json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", app.admin_key) } })
                .to_string(),
        ))
        .await
        .unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
        let subscribe = |id: &str, payload: Value| {
            Message::text(json!({ "id": id, "type": "subscribe", "payload": payload }).to_string())
        };
        ws.send(subscribe("1", json!({ "extensions": persisted(&hash) })))
            .await
            .unwrap();
        let msg = next_json(&mut ws).await;
        let errors = if msg["type"] == "error" {
            &msg["payload"]
        } else {
            &msg["payload"]["errors"]
        };
        assert_eq!(
            errors[0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
            "{msg}"
        );
        if msg["type"] == "next" {
            assert_eq!(next_json(&mut ws).await["type"], "complete");
        }
        ws.send(subscribe(
            "2",
            json!({ "query": VIEWER, "extensions": persisted(&hash) }),
        ))
        .await
        .unwrap();
        let msg = next_json(&mut ws).await;
        assert_eq!(msg["payload"]["data"]["viewer"]["role"], "ADMIN", "{msg}");
        assert_eq!(next_json(&mut ws).await["type"], "complete");
        ws.send(subscribe("3", json!({ "extensions": persisted(&hash) })))
            .await
            .unwrap();
        let msg = next_json(&mut ws).await;
        assert_eq!(msg["payload"]["data"]["viewer"]["role"], "ADMIN", "{msg}");
    }
);
