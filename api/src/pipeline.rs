//! Wires the generation pipeline from the settings: the job queue and token streams
//! (in-process, or Redis Streams when `REDIS_URL` is set), the language model (an
//! OpenAI-compatible provider with its fallback chain when `LLM_BASE_URL` is set, else
//! the embedded local model when built in and its file is present), the generation
//! service, the job runner the workers use, and the continuity reviewer's model.

use crate::config::{Settings, read_switch_file};
use crate::metrics::Metrics;
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use znovel_domain::ports::{
    CredentialEvents, JobEvents, JobQueue, JobRepository, LanguageModel, Store, TokenStream,
};
use znovel_domain::ports::{LlmError, ServedBy};
use znovel_domain::services::runner::{JobRunner, RunnerConfig};
use znovel_domain::services::{GenerationService, Reviewer, ValidationService};
use znovel_infra::llm::{FallbackChain, FallbackObserver, OpenAiConfig, build_chain};
use znovel_infra::queue::credentials::{MemoryCredentialEvents, RedisCredentialEvents};
use znovel_infra::queue::events::{MemoryJobEvents, RedisJobEvents};
use znovel_infra::queue::memory::{MemoryQueue, MemoryTokenStreams};
use znovel_infra::queue::redis::{RedisConnections, RedisOptions, RedisQueue, RedisTokenStreams};
use znovel_infra::queue::{QueueOptions, TokenStreamOptions};

/// The built pipeline.
pub struct Pipeline {
    /// Queue of generation jobs.
    pub queue: Arc<dyn JobQueue>,
    /// Per-job token streams.
    pub streams: Arc<dyn TokenStream>,
    /// Live job status changes.
    pub events: Arc<dyn JobEvents>,
    /// Live credential changes (revoked keys, role changes).
    pub credentials: Arc<dyn CredentialEvents>,
    /// The Redis connections, when `REDIS_URL` is set (shared rate limits use them).
    pub redis: Option<RedisConnections>,
    /// The model jobs run on, if one is available.
    pub llm: Option<Arc<dyn LanguageModel>>,
    /// Why there is no model, when there is none.
    pub llm_missing: Option<String>,
    /// Flipped to force the fallback chain without a restart.
    pub force_fallback: Arc<AtomicBool>,
    /// Whether the model is the embedded one (a small context) rather than a provider.
    pub local_model: bool,
    /// The continuity reviewer: `None` when switched off (`VALIDATION_REVIEWER`), else
    /// its model or why this process has none.
    pub reviewer: Option<Result<Reviewer, String>>,
}

/// What [`Pipeline::build`] connects: queue, streams, job events, credential changes and,
/// with `REDIS_URL`, the Redis connections.
type Parts = (
    Arc<dyn JobQueue>,
    Arc<dyn TokenStream>,
    Arc<dyn JobEvents>,
    Arc<dyn CredentialEvents>,
    Option<RedisConnections>,
);

fn queue_options(settings: &Settings) -> QueueOptions {
    QueueOptions {
        visibility_timeout: Duration::from_secs(settings.job_visibility_timeout_secs),
        ..QueueOptions::default()
    }
}

/// How often `LLM_FALLBACK_ENABLED_FILE` is re-read.
pub const SWITCH_POLL: Duration = Duration::from_secs(2);

/// Feeds fallback activations and model errors to the metrics.
struct LlmObserver {
    metrics: Metrics,
}

impl FallbackObserver for LlmObserver {
    fn on_fallback(&self, from: &ServedBy, to: &ServedBy, reason: &LlmError) {
        tracing::warn!(from = %from.model, to = %to.model, %reason, "LLM fallback");
        self.metrics.fallback("error");
    }
    fn on_forced(&self, _skipped: &ServedBy, _to: &ServedBy) {
        self.metrics.fallback("forced");
    }
    fn on_error(&self, provider: &str, error: &LlmError) {
        self.metrics.llm_error(provider, error);
    }
}

impl Pipeline {
    /// Builds the queue, the streams and, when this process runs jobs (`runs_jobs`), the
    /// model: an API-only process never loads the embedded model. Fallback activations,
    /// model errors and the forced-fallback switch report to `metrics`.
    pub async fn build(
        settings: &Settings,
        runs_jobs: bool,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let (queue, streams, events, credentials, redis): Parts = match &settings.redis_url {
            Some(url) => {
                let conns = RedisConnections::connect(url.expose_secret(), RedisOptions::default())
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot connect to REDIS_URL: {e}"))?;
                let queue = RedisQueue::new(
                    conns.clone(),
                    &settings.redis_prefix,
                    queue_options(settings),
                )
                .await?;
                let streams = RedisTokenStreams::new(
                    conns.clone(),
                    &settings.redis_prefix,
                    TokenStreamOptions::default(),
                )?;
                let events = RedisJobEvents::new(conns.clone(), &settings.redis_prefix)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("cannot subscribe to job events (REDIS_URL): {e}")
                    })?;
                let credentials = RedisCredentialEvents::new(conns.clone(), &settings.redis_prefix)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("cannot subscribe to credential changes (REDIS_URL): {e}")
                    })?;
                (
                    Arc::new(queue),
                    Arc::new(streams),
                    Arc::new(events),
                    Arc::new(credentials),
                    Some(conns),
                )
            }
            None => (
                Arc::new(MemoryQueue::new(queue_options(settings))),
                Arc::new(MemoryTokenStreams::new(TokenStreamOptions::default())),
                Arc::new(MemoryJobEvents::new()),
                Arc::new(MemoryCredentialEvents::default()),
                None,
            ),
        };
        let force_fallback = Arc::new(AtomicBool::new(settings.llm.fallback_enabled));
        metrics
            .fallback_forced
            .set(i64::from(settings.llm.fallback_enabled));
        let observer = Arc::new(LlmObserver {
            metrics: metrics.clone(),
        });
        if let Some(path) = settings.llm.fallback_enabled_file.clone() {
            // Lives as long as the process (it holds only the switch and the observer).
            tokio::spawn(watch_switch(path, force_fallback.clone(), observer.clone()));
        }
        let (llm, llm_missing) = if !runs_jobs {
            (None, Some("this process runs no jobs".to_owned()))
        } else {
            match build_model(settings, None, force_fallback.clone(), observer.clone()) {
                Ok(m) => (Some(m), None),
                Err(why) => (None, Some(why)),
            }
        };
        let reviewer = settings.llm.reviewer_enabled().then(|| {
            let own_model = settings.llm.reviewer_model.is_some();
            let model = match (&llm, settings.llm.base_url.is_some()) {
                // The jobs' model, when the reviewer asks the same one.
                (Some(m), _) if !own_model => Ok(m.clone()),
                // A provider's client is cheap: any process that checks builds one.
                (_, true) => build_model(
                    settings,
                    settings.llm.reviewer_model.clone(),
                    force_fallback.clone(),
                    observer.clone(),
                ),
                // The embedded model is loaded only where jobs run.
                (Some(m), false) => Ok(m.clone()),
                (None, false) => Err(llm_missing.clone().unwrap_or_default()),
            };
            model.map(|llm| {
                let mut r = Reviewer::new(llm);
                if let Some(secs) = settings.llm.reviewer_timeout_secs {
                    r.timeout = Duration::from_secs(secs);
                }
                r
            })
        });
        Ok(Self {
            queue,
            streams,
            events,
            credentials,
            redis,
            llm,
            llm_missing,
            force_fallback,
            local_model: settings.llm.base_url.is_none(),
            reviewer,
        })
    }

    /// Continuity checks over `store`: the rules, then the reviewer when it is on.
    pub fn validation(&self, store: Arc<dyn Store>) -> ValidationService {
        let service = ValidationService::new(store);
        match &self.reviewer {
            None => service,
            Some(Ok(r)) => service.with_reviewer(r.clone()),
            Some(Err(why)) => service.with_reviewer_unavailable(why.clone()),
        }
    }

    /// The generation service over `store`.
    pub fn service(
        &self,
        store: Arc<dyn Store>,
        jobs: Arc<dyn JobRepository>,
    ) -> GenerationService {
        GenerationService::new(
            store,
            jobs,
            self.queue.clone(),
            self.streams.clone(),
            self.events.clone(),
        )
    }

    /// The job runner, when a model is available.
    pub fn runner(&self, store: Arc<dyn Store>, jobs: Arc<dyn JobRepository>) -> Option<JobRunner> {
        let llm = self.llm.clone()?;
        Some(
            JobRunner::new(
                store.clone(),
                jobs,
                llm,
                self.streams.clone(),
                self.events.clone(),
                RunnerConfig::default(),
            )
            .with_validation(self.validation(store)),
        )
    }
}

/// Re-reads the switch file every [`SWITCH_POLL`]; a change flips the switch at once for
/// the next model request. An unreadable or invalid file keeps the last value (logged).
async fn watch_switch(
    path: std::path::PathBuf,
    switch: Arc<AtomicBool>,
    observer: Arc<LlmObserver>,
) {
    let mut tick = tokio::time::interval(SWITCH_POLL);
    let mut complained = false;
    loop {
        tick.tick().await;
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_switch_file(&path)).await
        };
        match read {
            Ok(Ok(on)) => {
                complained = false;
                if switch.swap(on, Ordering::Relaxed) != on {
                    tracing::warn!(forced = on, file = %path.display(), "LLM fallback switch changed");
                }
                observer.metrics.fallback_forced.set(i64::from(on));
            }
            Ok(Err(e)) if !complained => {
                complained = true;
                tracing::error!(error = %e, "cannot read LLM_FALLBACK_ENABLED_FILE; keeping the last value");
            }
            _ => {}
        }
    }
}

/// The model: the provider's fallback chain from `primary` (default `LLM_MODEL`), or the
/// embedded model.
fn build_model(
    settings: &Settings,
    primary: Option<String>,
    force: Arc<AtomicBool>,
    observer: Arc<LlmObserver>,
) -> Result<Arc<dyn LanguageModel>, String> {
    if let Some(base) = &settings.llm.base_url {
        let model = primary
            .or_else(|| settings.llm.model.clone())
            .unwrap_or_else(|| "gpt-4o-mini".into());
        let mut primary = OpenAiConfig::new(base.clone(), model);
        if let Some(key) = &settings.llm.api_key {
            primary = primary.with_api_key(key.expose_secret().to_owned());
        }
        if let Some(secs) = settings.llm.first_token_timeout_secs {
            primary.first_token_timeout = std::time::Duration::from_secs(secs);
        }
        if let Some(secs) = settings.llm.stall_timeout_secs {
            primary.stall_timeout = std::time::Duration::from_secs(secs);
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
            observer,
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
