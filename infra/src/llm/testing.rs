//! A fake OpenAI-compatible chat-completions server for tests (feature `testing`).
//!
//! [`FakeOpenAi`] listens on `127.0.0.1:0` and speaks the real wire protocol with its own
//! small HTTP/1.1 server (so a test controls every byte: chunked transfer encoding, SSE
//! frames split anywhere, abrupt closes): `POST /v1/chat/completions` answers
//! `200 text/event-stream` with `data: {"object":"chat.completion.chunk",…}` frames — a
//! role-only first chunk, a chunk per content piece, a chunk with `finish_reason`, a usage
//! chunk with `choices: []` (when the request asked for it with
//! `stream_options.include_usage`), then `data: [DONE]`; or an error status with an
//! OpenAI-style JSON body. What it answers is scripted per model name ([`FakeReply`],
//! [`FakeStream`]).
//!
//! It checks the request like a strict provider would — `POST …/chat/completions`, JSON,
//! `Accept: text/event-stream`, `Authorization: Bearer <key>` (401 otherwise), `model`,
//! `stream: true`, `stream_options.include_usage: true`, non-empty `messages` with known
//! roles, a positive `max_tokens` (400 otherwise) — and records every request
//! ([`FakeOpenAi::requests`]). It counts connections the client closed before the
//! response ended ([`FakeOpenAi::wait_client_closed`]), which is how a test sees that
//! dropping a stream cancelled the request. Stalls and hangs end when the client leaves
//! (or after 30 s); every loop is bounded.

mod conn;

use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a scripted stream ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The finish chunk, the usage chunk, `data: [DONE]`, the end of the body.
    Done,
    /// Nothing more; the connection stays open until the client leaves.
    Stall,
    /// The connection is closed without ending the chunked body.
    Abort,
    /// `data: <this text>` (not a chunk), then nothing until the client leaves.
    Malformed(String),
    /// The pieces again and again, one per interval, until the client leaves.
    Endless,
}

/// A scripted `200 text/event-stream` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeStream {
    /// The content deltas, in order.
    pub pieces: Vec<String>,
    /// The `finish_reason` of the finish chunk (none sent when `None`).
    pub finish_reason: Option<String>,
    /// `(prompt_tokens, completion_tokens)` of the usage chunk.
    pub usage: Option<(i64, i64)>,
    /// Every content chunk carries the running `usage` (vLLM's `continuous_usage_stats`).
    pub continuous_usage: bool,
    /// Wait between the role chunk and the first piece.
    pub first_token_delay: Duration,
    /// Wait between pieces.
    pub interval: Duration,
    /// Write every content frame in HTTP chunks of this many bytes, 1 ms apart (to split
    /// UTF-8 characters across network reads).
    pub split_every: Option<usize>,
    /// The `Content-Type` header.
    pub content_type: String,
    /// How it ends.
    pub end: StreamEnd,
}

impl FakeStream {
    /// `pieces` then `finish_reason: "stop"`, usage `(10, number of pieces)`, `[DONE]`.
    pub fn new<S: Into<String>>(pieces: impl IntoIterator<Item = S>) -> Self {
        let pieces: Vec<String> = pieces.into_iter().map(Into::into).collect();
        let completion = i64::try_from(pieces.len()).unwrap_or(i64::MAX);
        Self {
            pieces,
            finish_reason: Some("stop".into()),
            usage: Some((10, completion)),
            continuous_usage: false,
            first_token_delay: Duration::ZERO,
            interval: Duration::ZERO,
            split_every: None,
            content_type: "text/event-stream; charset=utf-8".into(),
            end: StreamEnd::Done,
        }
    }
    /// With this usage.
    pub fn usage(mut self, prompt_tokens: i64, completion_tokens: i64) -> Self {
        self.usage = Some((prompt_tokens, completion_tokens));
        self
    }
    /// With the running usage on every content chunk (`(prompt_tokens, pieces so far)`).
    pub fn continuous_usage(mut self) -> Self {
        self.continuous_usage = true;
        self
    }
    /// Without a usage chunk.
    pub fn no_usage(mut self) -> Self {
        self.usage = None;
        self
    }
    /// With this `finish_reason` (`None`: no finish chunk).
    pub fn finish_reason(mut self, reason: Option<&str>) -> Self {
        self.finish_reason = reason.map(str::to_owned);
        self
    }
    /// Waiting `delay` before the first piece.
    pub fn first_token_delay(mut self, delay: Duration) -> Self {
        self.first_token_delay = delay;
        self
    }
    /// Waiting `interval` between pieces.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
    /// Writing content frames in HTTP chunks of `bytes` bytes.
    pub fn split_every(mut self, bytes: usize) -> Self {
        self.split_every = Some(bytes.max(1));
        self
    }
    /// With this `Content-Type`.
    pub fn content_type(mut self, content_type: &str) -> Self {
        self.content_type = content_type.into();
        self
    }
    /// Ending this way.
    pub fn end(mut self, end: StreamEnd) -> Self {
        self.end = end;
        self
    }
}

/// What the fake answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeReply {
    /// A stream.
    Stream(FakeStream),
    /// An error status with headers and a body (`application/json`).
    Error {
        /// Status code.
        status: u16,
        /// Extra headers (`Retry-After`, …).
        headers: Vec<(String, String)>,
        /// Body.
        body: String,
    },
    /// Nothing at all (no status line) until the client leaves.
    Hang,
}

impl FakeReply {
    /// `status` with an OpenAI-style body `{"error":{"message":…}}`.
    pub fn openai_error(status: u16, message: &str) -> Self {
        Self::Error {
            status,
            headers: Vec::new(),
            body: error_body(message, "server_error"),
        }
    }
    /// 429 with `Retry-After: <retry_after>` and an OpenAI-style body.
    pub fn rate_limited(retry_after: &str, message: &str) -> Self {
        Self::Error {
            status: 429,
            headers: vec![("Retry-After".into(), retry_after.into())],
            body: error_body(message, "rate_limit_exceeded"),
        }
    }
}

impl From<FakeStream> for FakeReply {
    fn from(stream: FakeStream) -> Self {
        Self::Stream(stream)
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Null` when not JSON).
    pub body: Value,
    /// What was wrong with it (answered 400/401 when not empty).
    pub problems: Vec<String>,
}

impl RecordedRequest {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
    /// The `model` of the body.
    pub fn model(&self) -> &str {
        self.body["model"].as_str().unwrap_or_default()
    }
    /// The `(role, content)` of every message.
    pub fn messages(&self) -> Vec<(String, String)> {
        let messages = self.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        messages
            .iter()
            .map(|m| {
                let field = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
                (field("role"), field("content"))
            })
            .collect()
    }
}

/// What the server and its connections share.
struct Shared {
    api_key: Option<String>,
    scripts: Mutex<HashMap<String, VecDeque<FakeReply>>>,
    requests: Mutex<Vec<RecordedRequest>>,
    client_closed: watch::Sender<usize>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake server; it stops accepting when dropped.
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FakeOpenAi {
    /// Starts a fake that requires `Authorization: Bearer <api_key>` when `api_key` is set.
    pub async fn start(api_key: Option<&str>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            api_key: api_key.map(str::to_owned),
            scripts: Mutex::default(),
            requests: Mutex::default(),
            client_closed: watch::Sender::new(0),
        });
        let accept = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(conn::serve(Arc::clone(&shared), socket));
                }
            }
        });
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues `reply` for the next request for `model`; the last reply queued for a model
    /// answers all its later requests. A model with no reply gets 404 `model_not_found`.
    pub fn script(&self, model: &str, reply: impl Into<FakeReply>) {
        lock(&self.shared.scripts)
            .entry(model.to_owned())
            .or_default()
            .push_back(reply.into());
    }

    /// Drops every reply still queued for `model`, then queues `reply` (see [`Self::script`]).
    pub fn rescript(&self, model: &str, reply: impl Into<FakeReply>) {
        let mut scripts = lock(&self.shared.scripts);
        let queue = scripts.entry(model.to_owned()).or_default();
        queue.clear();
        queue.push_back(reply.into());
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The requests for `model`, in order.
    pub fn requests_for(&self, model: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.model() == model)
            .collect()
    }

    /// How many connections the client closed before their response ended.
    pub fn client_closed(&self) -> usize {
        *self.shared.client_closed.borrow()
    }

    /// Waits until the client closed `count` connections early; false after `timeout`.
    pub async fn wait_client_closed(&self, count: usize, timeout: Duration) -> bool {
        let mut closed = self.shared.client_closed.subscribe();
        tokio::time::timeout(timeout, closed.wait_for(|n| *n >= count))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

fn next_reply(shared: &Shared, model: &str) -> Option<FakeReply> {
    let mut scripts = lock(&shared.scripts);
    let queue = scripts.get_mut(model)?;
    if queue.len() > 1 {
        queue.pop_front()
    } else {
        queue.front().cloned()
    }
}

fn error_body(message: &str, kind: &str) -> String {
    json!({ "error": { "message": message, "type": kind, "param": null, "code": kind } })
        .to_string()
}
