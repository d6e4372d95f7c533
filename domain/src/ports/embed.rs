//! The embedder port: texts in, unit-length vectors out, for dense retrieval.
//!
//! Adapters: the embedded multilingual model (zero configuration) and any
//! OpenAI-compatible `/v1/embeddings` endpoint, each optionally behind a cache.

use async_trait::async_trait;

/// What a text is embedded as: e5-style models embed a search query and a stored passage
/// differently (`query: ` / `passage: ` prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbedKind {
    /// A search query (what `recall` is asked).
    Query,
    /// A stored passage (what is remembered).
    Passage,
}

/// Why embedding failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbedError {
    /// The model or endpoint cannot be used now (not loaded, connection refused, timeout,
    /// 429, 5xx): retry later.
    #[error("embedder unavailable: {0}")]
    Unavailable(String),
    /// The request was refused for good (4xx other than 429: bad input, bad credentials).
    #[error("embedding request rejected: {0}")]
    Rejected(String),
    /// The answer broke the contract (malformed, wrong count or dimension).
    #[error("embedder protocol error: {0}")]
    Protocol(String),
}

/// Turns texts into unit-length vectors.
///
/// Contract: `embed` returns exactly one vector per input text, in order, each of
/// `dimensions()` f32 values, L2-normalised; an empty input returns an empty output
/// without calling the model; the same text, kind and model give the same vector (up to
/// float noise). `model()` names the model and its version: vectors of different models
/// are never compared (a change of model means re-indexing).
#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// The model's name (stored with every vector).
    fn model(&self) -> &str;
    /// The length of every vector.
    fn dimensions(&self) -> usize;
    /// Embeds `texts` (see the contract).
    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>, EmbedError>;
}
