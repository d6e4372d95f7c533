//! The language-model port: a chat prompt in, a stream of text deltas out.
//!
//! Contract for every adapter (an OpenAI-compatible HTTP provider, the embedded local
//! model, the fallback chain over several of them):
//! - `stream` returns once the provider has accepted the request; the stream's FIRST item
//!   is `CompletionEvent::Started` naming who serves it, then `Delta`s in order, at most
//!   one `Usage`, and a final `Finished`, after which the stream ends;
//! - a failure before the stream exists is the `Err` of `stream`; a failure after is an
//!   `Err` item, after which the stream ends;
//! - dropping the stream cancels the request promptly (the HTTP connection is closed, the
//!   local model stops decoding) — this is how a job is cancelled.

use async_trait::async_trait;
use futures_core::Stream;
use std::pin::Pin;
use std::time::Duration;

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    /// Instructions to the model.
    System,
    /// The request.
    User,
    /// What the model said (or text it should continue).
    Assistant,
}

/// One message of a chat prompt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: ChatRole,
    /// What is said.
    pub content: String,
}

impl ChatMessage {
    /// A message of `role`.
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// The prompt.
    pub messages: Vec<ChatMessage>,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature (0 = greedy).
    pub temperature: f32,
    /// Sampling seed, for reproducible output where the provider supports it.
    pub seed: Option<u64>,
    /// When set, the answer must be one JSON value following this JSON schema (sent as
    /// `response_format` to OpenAI-compatible providers; a grammar for the embedded
    /// model).
    pub json_schema: Option<serde_json::Value>,
}

/// Who serves a completion.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServedBy {
    /// Provider label (`openai`, `local`, or the configured name).
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Whether a fallback (not the primary model) serves it.
    pub fallback: bool,
}

/// Tokens used by a completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
}

/// Why a completion stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its answer.
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// Something else the provider reported.
    Other(String),
}

/// One item of a completion stream.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionEvent {
    /// Who serves the completion from here on (first item; again when a fallback
    /// chain switches models).
    Started(ServedBy),
    /// The next piece of text.
    Delta(String),
    /// Token usage.
    Usage(TokenUsage),
    /// The completion ended normally.
    Finished(FinishReason),
}

/// Why a completion failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// The provider answered 429.
    #[error("rate limited by the provider{}: {message}", retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The provider's `Retry-After`.
        retry_after: Option<Duration>,
        /// The provider's message.
        message: String,
    },
    /// The provider answered another HTTP error.
    #[error("provider returned HTTP {status}: {body}")]
    Http {
        /// Status code.
        status: u16,
        /// Response body (truncated).
        body: String,
    },
    /// No first token within the configured time.
    #[error("no first token within {0:?}")]
    FirstTokenTimeout(Duration),
    /// No token for too long in the middle of a stream.
    #[error("the stream stalled for {0:?}")]
    StallTimeout(Duration),
    /// The provider sent something that is not its protocol (malformed event).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection failed or closed before the end of the stream.
    #[error("connection error: {0}")]
    Connection(String),
    /// The model cannot be used (not configured, not loaded).
    #[error("model unavailable: {0}")]
    Unavailable(String),
}

impl LlmError {
    /// Whether the next model of a fallback chain should be tried: rate limits, server
    /// errors, timeouts, broken streams and connection failures. Client errors (bad
    /// request, bad credentials) are not retried on another model.
    pub fn falls_back(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::FirstTokenTimeout(_)
            | Self::StallTimeout(_)
            | Self::Protocol(_)
            | Self::Connection(_)
            | Self::Unavailable(_) => true,
            Self::Http { status, .. } => *status >= 500 || *status == 408,
        }
    }
}

/// A stream of completion events.
pub type CompletionStream = Pin<Box<dyn Stream<Item = Result<CompletionEvent, LlmError>> + Send>>;

/// A chat model that streams.
#[async_trait]
pub trait LanguageModel: Send + Sync + 'static {
    /// Who this model is (its `Started` event when it is the primary).
    fn served_by(&self) -> ServedBy;
    /// Starts a completion (see the module contract).
    async fn stream(&self, request: CompletionRequest) -> Result<CompletionStream, LlmError>;
}
