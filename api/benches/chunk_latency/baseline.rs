//! The bare baseline of `chunk_latency`: what this machine can do at all. A minimal
//! WebSocket broadcast server (axum's WebSocket, like the real server) run as a child
//! process of the bench binary (`--baseline-server`), so it competes for the same cores the
//! way the real server does. Per job it opens the same fake provider's SSE stream, wraps
//! each delta once in the `data` payload the real server sends for
//! `... on ChapterChunk { text }`, and writes it, framed as a graphql-transport-ws `next`
//! message with the subscriber's id, to every subscriber of that job (a subscriber that
//! fell behind gets what queued up in one write); `complete` after the provider's
//! `[DONE]`. No database, no job runner, no GraphQL, no token stream.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::serve::ListenerExt;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// A job's payloads; `None` at the end.
type Payloads = broadcast::Sender<Option<Arc<str>>>;

#[derive(Clone)]
struct Baseline {
    provider: String,
    jobs: Arc<Mutex<HashMap<String, Payloads>>>,
    subscribed: Arc<AtomicUsize>,
}

/// Runs the baseline server until killed; prints `listening on <addr>` once bound.
pub async fn serve(provider: String) {
    let state = Baseline {
        provider,
        jobs: Arc::default(),
        subscribed: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/graphql", get(upgrade))
        .route("/subscribed", get(subscribed))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on {}", listener.local_addr().unwrap());
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.unwrap();
}

async fn subscribed(State(s): State<Baseline>, _: Query<Value>) -> String {
    s.subscribed.load(Ordering::Acquire).to_string()
}

async fn upgrade(State(s): State<Baseline>, ws: WebSocketUpgrade) -> axum::response::Response {
    ws.protocols(["graphql-transport-ws"])
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| connection(s, socket))
}

async fn connection(s: Baseline, mut socket: WebSocket) {
    let (id, job) = loop {
        let Some(Ok(Message::Text(t))) = socket.next().await else {
            return;
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str() {
            Some("connection_init") => {
                let ack = Message::text(r#"{"type":"connection_ack"}"#);
                if socket.send(ack).await.is_err() {
                    return;
                }
            }
            Some("subscribe") => {
                let id = v["id"].as_str().unwrap().to_owned();
                let job = v["payload"]["variables"]["j"].as_str().unwrap().to_owned();
                break (id, job);
            }
            _ => {}
        }
    };
    let mut chunks = s.job(&job);
    s.subscribed.fetch_add(1, Ordering::AcqRel);
    let id_json = serde_json::to_string(&id).unwrap();
    let mut next = chunks.recv().await.ok().flatten();
    let mut ended = next.is_none();
    while !ended {
        // What queued up while this subscriber was behind goes out in one write.
        while let Some(payload) = next.take() {
            let frame = format!(r#"{{"type":"next","id":{id_json},"payload":{payload}}}"#);
            if socket.feed(Message::text(frame)).await.is_err() {
                return;
            }
            next = match chunks.try_recv() {
                Ok(Some(p)) => Some(p),
                // The end marker (or the job gone) may be among what queued up.
                Ok(None) | Err(broadcast::error::TryRecvError::Closed) => {
                    ended = true;
                    None
                }
                Err(_) => None,
            };
        }
        if socket.flush().await.is_err() {
            return;
        }
        if !ended {
            next = chunks.recv().await.ok().flatten();
            ended = next.is_none();
        }
    }
    let done = format!(r#"{{"type":"complete","id":{id_json}}}"#);
    let _ = socket.send(Message::text(done)).await;
}

impl Baseline {
    /// A receiver of `job`'s payloads (`None` at the end); the first one starts the job.
    fn job(&self, job: &str) -> broadcast::Receiver<Option<Arc<str>>> {
        let mut jobs = self.jobs.lock().unwrap();
        if let Some(tx) = jobs.get(job) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(4096);
        jobs.insert(job.to_owned(), tx.clone());
        tokio::spawn(stream_job(self.provider.clone(), tx));
        rx
    }
}

/// Reads one provider stream, broadcasting every delta's payload.
async fn stream_job(provider: String, tx: Payloads) {
    let body = json!({ "model": "bench", "stream": true, "messages": [] });
    let mut resp = reqwest::Client::new()
        .post(format!("{provider}/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut buf = Vec::new();
    while let Ok(Some(bytes)) = resp.chunk().await {
        buf.extend_from_slice(&bytes);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let line = String::from_utf8_lossy(&event);
            let Some(data) = line.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                let _ = tx.send(None);
                return;
            }
            let v: Value = serde_json::from_str(data).unwrap();
            if let Some(text) = v["choices"][0]["delta"]["content"].as_str() {
                let payload = json!({ "data": { "chapterStream": {
                    "__typename": "ChapterChunk", "text": text } } });
                let _ = tx.send(Some(payload.to_string().into()));
            }
        }
    }
    let _ = tx.send(None);
}
