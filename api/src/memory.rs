//! Wires the story's memory from the settings: the memory index (in the database — the
//! embedded default — or Qdrant when `QDRANT_URL` is set, mirrored from the database),
//! the embedder (the embedded multilingual model, or an OpenAI-compatible endpoint), and
//! the domain parts built on them: the indexer, recall, the scheduler of memory jobs and
//! the memory job runner. Also the maintenance loop of a process that runs jobs: it queues
//! again the jobs an in-process queue lost in a restart, and the memory jobs of chapters
//! whose current version is not remembered yet.

use crate::config::Settings;
use crate::pipeline::Pipeline;
use anyhow::Context;
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;
use znovel_domain::ports::{Embedder, JobMessage, JobQueue, JobRepository, MemoryIndex, Store};
use znovel_domain::services::{
    Indexer, MemoryJobConfig, MemoryJobs, RecallService, Scheduler, runner,
};
use znovel_infra::SqlStore;
use znovel_infra::memory::{MirroredMemoryIndex, QdrantConfig, QdrantMemoryIndex, SqlMemoryIndex};

/// Most bytes of vectors one process caches for exact search (the SQL index).
pub const VECTOR_CACHE_BYTES: usize = 512 << 20;

/// Dimensions of the Qdrant collection's dense vectors without an embedder (the embedded
/// model's).
pub const DEFAULT_DIMENSIONS: usize = 384;

/// How often novels whose Qdrant copy missed a write are copied again.
pub const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// How often the memory sweep looks for chapters not remembered yet.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The memory parts of one process.
#[derive(Clone)]
pub struct Memory {
    /// Where records are searched.
    pub index: Arc<dyn MemoryIndex>,
    /// The Qdrant mirror, when `QDRANT_URL` is set (its resync loop runs with the server).
    pub mirror: Option<Arc<MirroredMemoryIndex>>,
    /// What embeds texts, when one is available.
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Writes records.
    pub indexer: Indexer,
    /// Recalls.
    pub recall: RecallService,
    /// Queues memory jobs.
    pub scheduler: Scheduler,
}

impl Memory {
    /// Builds the memory over `store` with the pipeline's queue and events: the database
    /// indexes it, mirrored to Qdrant when `QDRANT_URL` is set.
    pub fn build(
        store: Arc<SqlStore>,
        pipeline: &Pipeline,
        embedder: Option<Arc<dyn Embedder>>,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        let sql = SqlMemoryIndex::new((*store).clone(), VECTOR_CACHE_BYTES);
        let dims = embedder
            .as_ref()
            .map_or(DEFAULT_DIMENSIONS, |e| e.dimensions());
        let mirror = qdrant(settings, dims)?
            .map(|q| Arc::new(MirroredMemoryIndex::new(sql.clone(), Arc::new(q))));
        let index: Arc<dyn MemoryIndex> = match &mirror {
            Some(m) => m.clone(),
            None => Arc::new(sql),
        };
        let indexer = Indexer::new(store.clone(), index.clone(), embedder.clone());
        let recall = RecallService::new(store.clone(), index.clone(), embedder.clone());
        let scheduler = Scheduler::new(
            store.clone(),
            store,
            pipeline.queue.clone(),
            pipeline.events.clone(),
        );
        Ok(Self {
            index,
            mirror,
            embedder,
            indexer,
            recall,
            scheduler,
        })
    }

    /// What a job runner needs to run memory jobs and remember what it writes.
    pub fn for_runner(&self, store: Arc<dyn Store>, pipeline: &Pipeline) -> runner::Memory {
        // The embedded model's context is small; a provider's holds a whole chapter.
        let config = if pipeline.local_model {
            MemoryJobConfig::small_context()
        } else {
            MemoryJobConfig::default()
        };
        runner::Memory {
            jobs: MemoryJobs::new(store, self.indexer.clone(), pipeline.llm.clone(), config),
            recall: self.recall.clone(),
            scheduler: self.scheduler.clone(),
        }
    }
}

/// The Qdrant index of the settings, when `QDRANT_URL` is set, for `dims`-dimensional
/// vectors.
pub fn qdrant(settings: &Settings, dims: usize) -> anyhow::Result<Option<QdrantMemoryIndex>> {
    let Some(url) = &settings.qdrant_url else {
        return Ok(None);
    };
    let config = QdrantConfig {
        api_key: settings
            .qdrant_api_key
            .as_ref()
            .map(|k| k.expose_secret().to_owned()),
        collection: settings.qdrant_collection.clone(),
        ..QdrantConfig::new(url.clone(), dims)
    };
    QdrantMemoryIndex::new(&config)
        .map(Some)
        .with_context(|| format!("invalid QDRANT_URL {url}"))
}

/// The maintenance loop of a process that runs jobs (until `shutdown`): once at start,
/// when the queue lives in this process (`requeue`), every QUEUED or RUNNING job is
/// queued again (an in-process queue forgets them in a restart); then, every
/// [`SWEEP_EVERY`], every tenant's chapters whose current version is not remembered get
/// their memory job.
pub async fn maintain(
    jobs: Arc<dyn JobRepository>,
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    scheduler: Scheduler,
    requeue: bool,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if requeue {
        match jobs.unfinished_jobs(100_000).await {
            Ok(unfinished) => {
                let n = unfinished.len();
                for (tenant_id, job_id) in unfinished {
                    let message = JobMessage { tenant_id, job_id };
                    if let Err(e) = queue.enqueue(&message).await {
                        tracing::warn!(error = %e, job = %job_id, "cannot queue an unfinished job again");
                    }
                }
                if n > 0 {
                    tracing::info!(jobs = n, "queued the unfinished jobs of the last run again");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list unfinished jobs"),
        }
    }
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let tenants = match store.tenant_ids().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "memory sweep: cannot list tenants");
                continue;
            }
        };
        for tenant in tenants {
            match scheduler.sweep(tenant, 100).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(%tenant, chapters = n, "memory sweep queued chapters"),
                Err(e) => tracing::warn!(%tenant, error = %e, "memory sweep failed"),
            }
        }
    }
}
