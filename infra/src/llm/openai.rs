//! An OpenAI-compatible chat-completions provider over SSE: OpenAI, DeepSeek, Qwen
//! (DashScope's compatible mode), vLLM, Ollama, the llama.cpp server — anything that
//! answers `POST {base_url}/chat/completions` with `stream: true` by a `text/event-stream`
//! of `chat.completion.chunk` events ending with `data: [DONE]`.
//!
//! [`OpenAiCompatible`] implements the [`LanguageModel`] port (see its contract):
//! - `stream` returns once the provider answered `200 text/event-stream`; the events are
//!   `Started`, a `Delta` per non-empty `choices[0].delta.content`, one `Usage` (the
//!   `usage` object, asked for with `stream_options.include_usage`), and `Finished` from
//!   `finish_reason` (or `Stop` at `[DONE]` when the provider sent none);
//! - HTTP 429 → `RateLimited` (`Retry-After` in seconds or as an HTTP date, the message of
//!   the JSON error body); other statuses → `Http` with the error body's message (or the
//!   body, truncated to 2 KB); another content type, a `data:` that is not a chunk →
//!   `Protocol`; a connection refused, reset or closed before `[DONE]`/`finish_reason` →
//!   `Connection`;
//! - no generated token within `first_token_timeout` of sending the request →
//!   `FirstTokenTimeout`; no event for `stall_timeout` after the first token →
//!   `StallTimeout`; the HTTP request is closed with it;
//! - dropping the stream drops the HTTP response, which closes the connection.
//!
//! The API key and the prompt/completion text are never logged (the key is a
//! [`SecretString`], redacted in `Debug`); the adapter logs at `debug` only.

mod chunk;
mod reader;

use async_trait::async_trait;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest_eventsource::retry::Never;
use reqwest_eventsource::{Error as SseError, Event, EventSource};
use secrecy::{ExposeSecret, SecretString};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use znovel_domain::ports::{
    ChatMessage, CompletionRequest, CompletionStream, LanguageModel, LlmError, ServedBy,
};

use reader::SseReader;

/// Longest error body kept in [`LlmError::Http`] (bytes, cut at a character boundary).
pub const MAX_ERROR_BODY: usize = 2048;
/// Most bytes of an error response read to find its message.
const ERROR_BODY_READ_LIMIT: usize = 64 * 1024;

/// Where and how to reach one model of an OpenAI-compatible provider.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The API root, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`;
    /// requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<SecretString>,
    /// The model name sent in the request.
    pub model: String,
    /// Provider label for `ServedBy`, logs and metrics (default `openai`).
    pub provider: String,
    /// Longest wait for the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest wait from sending the request to the first generated token.
    pub first_token_timeout: Duration,
    /// Longest silence (no event) after the first token.
    pub stall_timeout: Duration,
    /// Longest whole request, when set (a `Connection` error past it).
    pub request_timeout: Option<Duration>,
}

impl OpenAiConfig {
    /// The default provider label.
    pub const DEFAULT_PROVIDER: &'static str = "openai";
    /// Default [`Self::connect_timeout`].
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default [`Self::first_token_timeout`].
    pub const DEFAULT_FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default [`Self::stall_timeout`].
    pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

    /// A model at `base_url`, without a key, with the default label and timeouts.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            provider: Self::DEFAULT_PROVIDER.to_owned(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            first_token_timeout: Self::DEFAULT_FIRST_TOKEN_TIMEOUT,
            stall_timeout: Self::DEFAULT_STALL_TIMEOUT,
            request_timeout: None,
        }
    }

    /// With an API key.
    pub fn with_api_key(mut self, key: impl Into<SecretString>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// With a provider label.
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = provider.into();
        self
    }

    /// With the three stream timeouts (first token, stall) and the connect timeout.
    pub fn with_timeouts(
        mut self,
        connect: Duration,
        first_token: Duration,
        stall: Duration,
    ) -> Self {
        self.connect_timeout = connect;
        self.first_token_timeout = first_token;
        self.stall_timeout = stall;
        self
    }

    /// The same endpoint, key, label and timeouts for another model (how the fallback
    /// models of `LLM_FALLBACK_MODELS` are configured).
    pub fn for_model(&self, model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            ..self.clone()
        }
    }

    /// `{base_url}/chat/completions`.
    pub fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

/// A [`LanguageModel`] served by an OpenAI-compatible chat-completions endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiCompatible {
    config: OpenAiConfig,
    endpoint: String,
    client: reqwest::Client,
}

impl OpenAiCompatible {
    /// An adapter with its own HTTP client (rustls). `Unavailable` when the client cannot
    /// be built (TLS initialisation).
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true);
        if let Some(timeout) = config.request_timeout {
            builder = builder.timeout(timeout);
        }
        let client = builder
            .build()
            .map_err(|e| LlmError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            endpoint: config.endpoint(),
            config,
            client,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    fn body<'a>(&'a self, request: &'a CompletionRequest) -> ChatBody<'a> {
        ChatBody {
            model: &self.config.model,
            messages: &request.messages,
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            seed: request.seed,
            response_format: request.json_schema.as_ref().map(|schema| {
                serde_json::json!({
                    "type": "json_schema",
                    "json_schema": { "name": "answer", "schema": schema, "strict": false },
                })
            }),
        }
    }
}

/// The request body of `POST /chat/completions`.
#[derive(serde::Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    stream: bool,
    stream_options: StreamOptions,
    max_tokens: u32,
    temperature: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    /// Structured output: the answer must follow the request's JSON schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<serde_json::Value>,
}

#[derive(serde::Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[async_trait]
impl LanguageModel for OpenAiCompatible {
    fn served_by(&self) -> ServedBy {
        ServedBy {
            provider: self.config.provider.clone(),
            model: self.config.model.clone(),
            fallback: false,
        }
    }

    #[tracing::instrument(skip_all, fields(provider = %self.config.provider, model = %self.config.model))]
    async fn stream(&self, request: CompletionRequest) -> Result<CompletionStream, LlmError> {
        let sent = Instant::now();
        let first_token_deadline = sent + self.config.first_token_timeout;
        let mut http = self.client.post(&self.endpoint).json(&self.body(&request));
        if let Some(key) = &self.config.api_key {
            http = http.bearer_auth(key.expose_secret());
        }
        let mut events = EventSource::new(http)
            .map_err(|e| LlmError::Unavailable(format!("cannot build the request: {e}")))?;
        events.set_retry_policy(Box::new(Never));
        match tokio::time::timeout_at(first_token_deadline, events.next()).await {
            Err(_) => {
                tracing::debug!("no response headers before the first-token timeout");
                return Err(LlmError::FirstTokenTimeout(self.config.first_token_timeout));
            }
            Ok(Some(Ok(Event::Open))) => {}
            Ok(Some(Ok(Event::Message(_)))) => {
                return Err(LlmError::Protocol("an event before the response".into()));
            }
            Ok(Some(Err(e))) => return Err(open_error(e, first_token_deadline).await),
            Ok(None) => return Err(LlmError::Connection("the request was closed".into())),
        }
        tracing::debug!(
            elapsed_ms = sent.elapsed().as_millis() as u64,
            "stream open"
        );
        let reader = SseReader::new(
            events,
            self.served_by(),
            first_token_deadline,
            self.config.first_token_timeout,
            self.config.stall_timeout,
        );
        Ok(reader.into_stream())
    }
}

/// The error of a request that did not open a stream.
async fn open_error(error: SseError, deadline: Instant) -> LlmError {
    match error {
        SseError::InvalidStatusCode(status, response) => {
            let retry_after = retry_after(response.headers());
            let body = tokio::time::timeout_at(deadline, read_limited(response))
                .await
                .unwrap_or_default();
            let message = error_message(&body);
            tracing::debug!(status = status.as_u16(), "provider answered an error");
            if status.as_u16() == 429 {
                LlmError::RateLimited {
                    retry_after,
                    message,
                }
            } else {
                LlmError::Http {
                    status: status.as_u16(),
                    body: message,
                }
            }
        }
        SseError::InvalidContentType(content_type, _) => LlmError::Protocol(format!(
            "expected a text/event-stream response, got content type {:?}",
            String::from_utf8_lossy(content_type.as_bytes())
        )),
        other => reader::stream_error(other),
    }
}

/// `Retry-After` (or `retry-after-ms`) as a duration from now.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_millis(ms));
    }
    let value = header(RETRY_AFTER.as_str())?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The first [`ERROR_BODY_READ_LIMIT`] bytes of a response body (lossy UTF-8).
async fn read_limited(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The message of an error body: `{"error":{"message":…}}` (OpenAI and most others),
/// `{"error":"…"}` (Ollama), `{"message":…}`, else the body itself, truncated.
pub(crate) fn error_message(body: &str) -> String {
    let parsed = serde_json::from_str::<serde_json::Value>(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .and_then(serde_json::Value::as_str)
    });
    truncate(message.unwrap_or(body).trim(), MAX_ERROR_BODY)
}

/// `text` cut to at most `max` bytes at a character boundary, marked with `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad key","type":"x"}}"#),
            "bad key"
        );
        assert_eq!(
            error_message(r#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(error_message(" plain text \n"), "plain text");
        let long = "错".repeat(1000);
        let cut = error_message(&long);
        assert!(cut.len() <= MAX_ERROR_BODY + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        headers.insert(RETRY_AFTER, httpdate::fmt_http_date(later).parse().unwrap());
        let d = retry_after(&headers).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn endpoint_and_redacted_key() {
        let config = OpenAiConfig::new("http://h/v1/", "m").with_api_key("sk-secret".to_owned());
        assert_eq!(config.endpoint(), "http://h/v1/chat/completions");
        assert!(!format!("{config:?}").contains("sk-secret"));
        assert_eq!(config.for_model("n").model, "n");
    }
}
