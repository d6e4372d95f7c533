//! Wires the generation pipeline from the settings: the job queue and token streams
//! (in-process, or Redis Streams when `REDIS_URL` is set), the language model (an
//! OpenAI-compatible provider with its fallback chain when `LLM_BASE_URL` is set, else
//! the embedded local model when built in and its file is present), the generation
//! service, and the job runner the workers use.

use crate::config::Settings;
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use znovel_domain::ports::{JobQueue, JobRepository, LanguageModel, Store, TokenStream};
use znovel_domain::services::GenerationService;
use znovel_domain::services::runner::{JobRunner, RunnerConfig};
use znovel_infra::llm::{FallbackChain, NoopObserver, OpenAiConfig, build_chain};
use znovel_infra::queue::memory::{MemoryQueue, MemoryTokenStreams};
use znovel_infra::queue::redis::{RedisConnections, RedisOptions, RedisQueue, RedisTokenStreams};
use znovel_infra::queue::{DEFAULT_PREFIX, QueueOptions, TokenStreamOptions};

/// The built pipeline.
pub struct Pipeline {
    /// Queue of generation jobs.
    pub queue: Arc<dyn JobQueue>,
    /// Per-job token streams.
    pub streams: Arc<dyn TokenStream>,
    /// The model jobs run on, if one is available.
    pub llm: Option<Arc<dyn LanguageModel>>,
    /// Why there is no model, when there is none.
    pub llm_missing: Option<String>,
    /// Flipped to force the fallback chain without a restart.
    pub force_fallback: Arc<AtomicBool>,
}

impl Pipeline {
    /// Builds the queue, the streams and the model.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let (queue, streams): (Arc<dyn JobQueue>, Arc<dyn TokenStream>) = match &settings.redis_url
        {
            Some(url) => {
                let conns = RedisConnections::connect(url.expose_secret(), RedisOptions::default())
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot connect to REDIS_URL: {e}"))?;
                let queue =
                    RedisQueue::new(conns.clone(), DEFAULT_PREFIX, QueueOptions::default()).await?;
                let streams =
                    RedisTokenStreams::new(conns, DEFAULT_PREFIX, TokenStreamOptions::default())?;
                (Arc::new(queue), Arc::new(streams))
            }
            None => (
                Arc::new(MemoryQueue::new(QueueOptions::default())),
                Arc::new(MemoryTokenStreams::new(TokenStreamOptions::default())),
            ),
        };
        let force_fallback = Arc::new(AtomicBool::new(settings.llm.fallback_enabled));
        let (llm, llm_missing) = match build_model(settings, force_fallback.clone()) {
            Ok(m) => (Some(m), None),
            Err(why) => (None, Some(why)),
        };
        Ok(Self {
            queue,
            streams,
            llm,
            llm_missing,
            force_fallback,
        })
    }

    /// The generation service over `store`.
    pub fn service(
        &self,
        store: Arc<dyn Store>,
        jobs: Arc<dyn JobRepository>,
    ) -> GenerationService {
        GenerationService::new(store, jobs, self.queue.clone(), self.streams.clone())
    }

    /// The job runner, when a model is available.
    pub fn runner(&self, store: Arc<dyn Store>, jobs: Arc<dyn JobRepository>) -> Option<JobRunner> {
        let llm = self.llm.clone()?;
        Some(JobRunner::new(
            store,
            jobs,
            llm,
            self.streams.clone(),
            RunnerConfig::default(),
        ))
    }
}

fn build_model(
    settings: &Settings,
    force: Arc<AtomicBool>,
) -> Result<Arc<dyn LanguageModel>, String> {
    if let Some(base) = &settings.llm.base_url {
        let model = settings
            .llm
            .model
            .clone()
            .unwrap_or_else(|| "gpt-4o-mini".into());
        let mut primary = OpenAiConfig::new(base.clone(), model);
        if let Some(key) = &settings.llm.api_key {
            primary = primary.with_api_key(key.expose_secret().to_owned());
        }
        let fallbacks = settings
            .llm
            .fallback_models
            .iter()
            .map(|m| primary.for_model(m.clone()))
            .collect();
        let chain: FallbackChain = build_chain(
            primary,
            fallbacks,
            Arc::new(move || force.load(Ordering::Relaxed)),
            Arc::new(NoopObserver),
        )
        .map_err(|e| format!("cannot build the LLM client (LLM_BASE_URL): {e}"))?;
        return Ok(Arc::new(chain));
    }
    local_model(settings)
}

#[cfg(feature = "local-llm")]
fn local_model(settings: &Settings) -> Result<Arc<dyn LanguageModel>, String> {
    use znovel_infra::llm::local::{LocalModel, LocalModelOptions};
    let path = settings
        .model_path
        .clone()
        .unwrap_or_else(|| LocalModel::default_path(&settings.data_dir));
    LocalModel::load(&path, LocalModelOptions::default())
        .map(|m| Arc::new(m) as Arc<dyn LanguageModel>)
        .map_err(|e| format!("{e:#}"))
}

#[cfg(not(feature = "local-llm"))]
fn local_model(_settings: &Settings) -> Result<Arc<dyn LanguageModel>, String> {
    Err("this build has no embedded model (feature local-llm) and LLM_BASE_URL is not set".into())
}
