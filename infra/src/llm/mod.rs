//! Language-model adapters (the domain's `LanguageModel` port).
//!
//! - [`openai`]: [`OpenAiCompatible`], any OpenAI-compatible chat-completions endpoint
//!   over SSE (OpenAI, DeepSeek, Qwen, vLLM, Ollama, llama.cpp server).
//! - [`fallback`]: [`FallbackChain`], an ordered list of models with fallback on
//!   timeouts, 429/5xx and broken streams, continuation of cut-off text, and an
//!   operator's force-fallback switch.
//! - `local` (feature `local-llm`): the embedded local model.
//! - `testing` (feature `testing`): a fake OpenAI-compatible server for tests.
//! - [`build_chain`]: the chain of the configured OpenAI-compatible models.

pub mod fallback;
#[cfg(feature = "local-llm")]
pub mod local;
pub mod openai;
#[cfg(feature = "testing")]
pub mod testing;

pub use fallback::{CONTINUE_PROMPT, FallbackChain, FallbackObserver, ForceFallback, NoopObserver};
pub use openai::{OpenAiCompatible, OpenAiConfig};

use std::sync::Arc;
use znovel_domain::ports::{LanguageModel, LlmError};

/// A [`FallbackChain`] of OpenAI-compatible models: `primary` first, then `fallbacks` in
/// order. Each config names its own endpoint, key and label, so fallbacks may be another
/// provider; for `LLM_FALLBACK_MODELS` (model names on the primary's endpoint) build them
/// with [`OpenAiConfig::for_model`]. Other adapters (the local model) can be added with
/// [`FallbackChain::new`] instead. `Unavailable` when an HTTP client cannot be built.
pub fn build_chain(
    primary: OpenAiConfig,
    fallbacks: Vec<OpenAiConfig>,
    force_fallback: ForceFallback,
    observer: Arc<dyn FallbackObserver>,
) -> Result<FallbackChain, LlmError> {
    let models = std::iter::once(primary)
        .chain(fallbacks)
        .map(|config| Ok(Arc::new(OpenAiCompatible::new(config)?) as Arc<dyn LanguageModel>))
        .collect::<Result<Vec<_>, LlmError>>()?;
    Ok(FallbackChain::new(models, force_fallback, observer))
}
