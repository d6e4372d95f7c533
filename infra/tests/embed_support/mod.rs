//! A fake OpenAI-compatible embeddings endpoint for the `embed_*` tests: a real HTTP
//! server on `127.0.0.1:0` answering `POST /v1/embeddings` like OpenAI does —
//! `{"object":"list","data":[{"object":"embedding","index":i,"embedding":[…]}],"model":…,
//! "usage":{…}}`, the items in REVERSE order (a client must order them by `index`) — or
//! with a scripted failure. It requires `Authorization: Bearer <KEY>` (401 otherwise) and
//! records every request. Its vectors are deterministic, not normalised, and differ per
//! text: a client must normalise them.

#![allow(dead_code)]

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use znovel_infra::embed::OpenAiEmbedderConfig;

/// The API key the fake requires.
pub const KEY: &str = "sk-embed-test-0123";
/// The model name the tests use.
pub const MODEL: &str = "fake-embed";
/// The fake's vector length.
pub const DIMS: usize = 8;

/// What the fake answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The right vectors.
    Ok,
    /// This status with an OpenAI-style error body.
    Status(u16, &'static str),
    /// 200 with this body.
    Raw(&'static str),
    /// 200 with one vector fewer than asked.
    OneMissing,
    /// 200 with vectors one value too long.
    WrongDims,
    /// 200 with the first index repeated.
    RepeatedIndex,
    /// The right vectors after this wait.
    Slow(Duration),
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<(HeaderMap, Value)>>,
}

/// The running fake; stops when dropped.
pub struct FakeEmbeddings {
    base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEmbeddings {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeEmbeddings {
    /// Starts the fake.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .route("/v1/embeddings", post(answer))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base_url,
            shared,
            server,
        }
    }

    /// `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A config for [`MODEL`] with [`KEY`], [`DIMS`] and short timeouts.
    pub fn config(&self) -> OpenAiEmbedderConfig {
        let mut config = OpenAiEmbedderConfig::new(self.base_url.clone(), MODEL);
        config.api_key = Some(KEY.to_owned().into());
        config.dimensions = Some(DIMS);
        config.connect_timeout = Duration::from_millis(500);
        config.request_timeout = Duration::from_millis(800);
        config
    }

    /// Answers the next requests with `replies`, in order, then `Ok` again.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// The JSON bodies received, in order.
    pub fn bodies(&self) -> Vec<Value> {
        let requests = self.shared.requests.lock().unwrap();
        requests.iter().map(|(_, b)| b.clone()).collect()
    }

    /// The `input` arrays received, in order.
    pub fn inputs(&self) -> Vec<Vec<String>> {
        self.bodies()
            .iter()
            .map(|b| {
                b["input"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect()
            })
            .collect()
    }

    /// The `Authorization` headers received, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        let requests = self.shared.requests.lock().unwrap();
        requests
            .iter()
            .map(|(h, _)| {
                h.get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned())
            })
            .collect()
    }
}

/// The fake's (not normalised) vector of `text`: a function of its bytes.
pub fn raw_vector(text: &str) -> Vec<f32> {
    let mut v = vec![1.0f32; DIMS];
    for (i, b) in text.bytes().enumerate() {
        v[i % DIMS] += f32::from(b) * (1.0 + (i / DIMS) as f32);
    }
    v
}

/// [`raw_vector`] normalised: what the client must return.
pub fn unit_vector(text: &str) -> Vec<f32> {
    let v = raw_vector(text);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn error(status: u16, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error"}});
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    shared
        .requests
        .lock()
        .unwrap()
        .push((headers.clone(), body.clone()));
    let expected = format!("Bearer {KEY}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return error(401, "Incorrect API key provided");
    }
    let inputs: Vec<String> = match body["input"].as_array() {
        Some(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|s| s.as_str().is_some_and(|s| !s.is_empty())) =>
        {
            items
                .iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect()
        }
        _ => return error(400, "'$.input' is invalid"),
    };
    if body["model"] != MODEL {
        return error(404, "The model does not exist");
    }
    let reply = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Ok);
    let mut vectors: Vec<Vec<f32>> = inputs.iter().map(|t| raw_vector(t)).collect();
    let mut indexes: Vec<usize> = (0..inputs.len()).collect();
    match reply {
        Reply::Ok => {}
        Reply::Status(status, message) => return error(status, message),
        Reply::Raw(text) => return (StatusCode::OK, text).into_response(),
        Reply::OneMissing => {
            vectors.pop();
            indexes.pop();
        }
        Reply::WrongDims => vectors.iter_mut().for_each(|v| v.push(1.0)),
        Reply::RepeatedIndex => {
            if indexes.len() > 1 {
                indexes[1] = 0;
            }
        }
        Reply::Slow(wait) => tokio::time::sleep(wait).await,
    }
    let data: Vec<Value> = indexes
        .iter()
        .zip(&vectors)
        .rev()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    Json(json!({
        "object": "list",
        "data": data,
        "model": MODEL,
        "usage": {"prompt_tokens": inputs.len(), "total_tokens": inputs.len()},
    }))
    .into_response()
}
