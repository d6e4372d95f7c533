//! Builds the embedder dense recall uses from the settings (`EMBEDDING_*`, see
//! [`crate::config`]): the embedded multilingual-e5-small, an OpenAI-compatible endpoint,
//! or none (recall by keywords only) — each behind a cache of recent vectors.
//!
//! Without `EMBEDDING_PROVIDER`, an endpoint is used when `EMBEDDING_BASE_URL` is set,
//! else the embedded model when its files are in place; when they are not, the server
//! still starts, warns, and recalls by keywords only. An explicit `local` whose files are
//! missing, or a provider that cannot be built, fails start-up instead.

use crate::config::{EmbeddingProvider, Settings};
use anyhow::Context;
use std::sync::Arc;
use znovel_domain::ports::Embedder;
use znovel_infra::embed::{CachedEmbedder, LocalEmbedder, OpenAiEmbedder, OpenAiEmbedderConfig};

/// The OpenAI-compatible model used when `EMBEDDING_MODEL` is unset.
pub const DEFAULT_OPENAI_MODEL: &str = "text-embedding-3-small";

/// The configured embedder, cached; `None` when recall runs on keywords only.
pub fn build_embedder(settings: &Settings) -> anyhow::Result<Option<Arc<dyn Embedder>>> {
    Ok(build_uncached(settings)?.map(|inner| {
        Arc::new(CachedEmbedder::new(inner, CachedEmbedder::DEFAULT_CAPACITY)) as Arc<dyn Embedder>
    }))
}

/// The configured embedder without its cache (what the benchmark measures).
pub fn build_uncached(settings: &Settings) -> anyhow::Result<Option<Arc<dyn Embedder>>> {
    let inner: Arc<dyn Embedder> = match settings.embedding_provider() {
        Some(EmbeddingProvider::None) => {
            tracing::info!("no embedder (EMBEDDING_PROVIDER=none): recall searches keywords only");
            return Ok(None);
        }
        Some(EmbeddingProvider::Openai) => Arc::new(openai(settings)?),
        Some(EmbeddingProvider::Local) => {
            let dir = settings.embedding_model_dir();
            Arc::new(LocalEmbedder::open(&dir).context("EMBEDDING_PROVIDER=local")?)
        }
        None => {
            let dir = settings.embedding_model_dir();
            if !LocalEmbedder::files_present(&dir) {
                tracing::warn!(
                    dir = %dir.display(),
                    "the embedded embedding model is missing (run scripts/fetch-models.sh, or \
                     set EMBEDDING_BASE_URL): recall searches keywords only, DENSE recall is \
                     unavailable"
                );
                return Ok(None);
            }
            Arc::new(LocalEmbedder::open(&dir).context("the embedded embedding model")?)
        }
    };
    tracing::info!(
        model = inner.model(),
        dimensions = inner.dimensions(),
        "embedder ready"
    );
    Ok(Some(inner))
}

fn openai(settings: &Settings) -> anyhow::Result<OpenAiEmbedder> {
    let e = &settings.embedding;
    let base_url = e
        .base_url
        .clone()
        .context("EMBEDDING_PROVIDER=openai needs EMBEDDING_BASE_URL")?;
    let model = e
        .model
        .clone()
        .unwrap_or_else(|| DEFAULT_OPENAI_MODEL.into());
    let mut config = OpenAiEmbedderConfig::new(base_url, model);
    config.api_key = e.api_key.clone();
    config.dimensions = e.dimensions;
    config.batch = e.batch;
    OpenAiEmbedder::new(config).map_err(|err| {
        anyhow::anyhow!("cannot use the embeddings endpoint (EMBEDDING_DIMENSIONS?): {err}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_follows_the_settings() {
        let absent = std::env::temp_dir().join("znovel-no-embedder");
        let mut s = Settings {
            data_dir: absent,
            ..Settings::default()
        };
        // Automatic, files missing: keyword-only, no error.
        assert!(build_embedder(&s).unwrap().is_none());
        // Explicitly local, files missing: an error naming the file.
        s.embedding.provider = Some(EmbeddingProvider::Local);
        let err = format!("{:#}", build_embedder(&s).err().unwrap());
        assert!(err.contains("e5-small-q4.bin"), "{err}");
        // An endpoint with an unknown model and no dimensions: an error saying so.
        s.embedding.provider = None;
        s.embedding.base_url = Some("http://127.0.0.1:9/v1".into());
        s.embedding.model = Some("bge-m3".into());
        let err = format!("{:#}", build_embedder(&s).err().unwrap());
        assert!(err.contains("EMBEDDING_DIMENSIONS"), "{err}");
        // With them, it is built (no request is made until something is embedded).
        s.embedding.dimensions = Some(1024);
        let e = build_embedder(&s).unwrap().unwrap();
        assert_eq!((e.model(), e.dimensions()), ("bge-m3", 1024));
        s.embedding.provider = Some(EmbeddingProvider::None);
        assert!(build_embedder(&s).unwrap().is_none());
    }
}
