//! Queuing the jobs the system gives itself: the memory job of every new version of a
//! chapter (and, with validation, its check). Each is recorded as a job row first, with
//! an idempotency key naming the chapter version, so the same version is never queued
//! twice, then enqueued and announced in `jobEvents`.

use super::generation::{announce, enqueue_or_fail, queued_job};
use crate::StoreError;
use crate::error::{Error, StoreResultExt};
use crate::ids::{NovelId, TenantId, UserId};
use crate::model::*;
use crate::ports::{JobEvents, JobQueue, JobRepository, Store};
use std::sync::Arc;

/// Records and queues internal jobs.
#[derive(Clone)]
pub struct Scheduler {
    store: Arc<dyn Store>,
    jobs: Arc<dyn JobRepository>,
    queue: Arc<dyn JobQueue>,
    events: Arc<dyn JobEvents>,
}

impl Scheduler {
    /// Builds the scheduler.
    pub fn new(
        store: Arc<dyn Store>,
        jobs: Arc<dyn JobRepository>,
        queue: Arc<dyn JobQueue>,
        events: Arc<dyn JobEvents>,
    ) -> Self {
        Self {
            store,
            jobs,
            queue,
            events,
        }
    }

    /// Queues the memory job of the chapter's current version (its seq included: a
    /// renumbered chapter is remembered at its new place). Returns the job — the existing
    /// one when this version was queued already (it is not queued again).
    pub async fn remember(&self, c: &Chapter, by: Option<UserId>) -> Result<GenerationJob, Error> {
        let key = format!("memory:{}:{}:{}", c.id, c.version, c.seq);
        self.queue_once(
            c.tenant_id,
            c.novel_id,
            Some(c),
            JobKind::ExtractMemory,
            key,
            by,
            true,
        )
        .await
    }

    /// Records the memory job of the chapter's current version without queuing it: the
    /// caller runs it itself (a batch remembers each chapter before it writes the next).
    /// Returns the job — the existing one when this version was recorded or queued
    /// already. A caller that cannot finish it hands it to the queue with
    /// [`Scheduler::hand_over`].
    pub async fn record_memory(
        &self,
        c: &Chapter,
        by: Option<UserId>,
    ) -> Result<GenerationJob, Error> {
        let key = format!("memory:{}:{}:{}", c.id, c.version, c.seq);
        self.queue_once(
            c.tenant_id,
            c.novel_id,
            Some(c),
            JobKind::ExtractMemory,
            key,
            by,
            false,
        )
        .await
    }

    /// Queues a job recorded with [`Scheduler::record_memory`], for a worker to run.
    pub async fn hand_over(&self, job: &GenerationJob) -> Result<(), Error> {
        Ok(enqueue_or_fail(&*self.jobs, &*self.queue, job).await?)
    }

    /// Queues the validation job of the chapter's current version (after its memory job:
    /// the check reads what memory established). Returns the job — the existing one when
    /// this version was queued already.
    pub async fn validate(&self, c: &Chapter, by: Option<UserId>) -> Result<GenerationJob, Error> {
        let key = format!("validate:{}:{}:{}", c.id, c.version, c.seq);
        self.queue_once(
            c.tenant_id,
            c.novel_id,
            Some(c),
            JobKind::Validate,
            key,
            by,
            true,
        )
        .await
    }

    /// Records the job under `key` (once) and, with `enqueue`, queues it.
    #[allow(clippy::too_many_arguments)]
    async fn queue_once(
        &self,
        tenant: TenantId,
        novel: NovelId,
        chapter: Option<&Chapter>,
        kind: JobKind,
        key: String,
        by: Option<UserId>,
        enqueue: bool,
    ) -> Result<GenerationJob, Error> {
        let job = queued_job(
            tenant,
            novel,
            chapter.map(|c| c.id),
            kind,
            JobInput {
                chapter_version: chapter.map(|c| c.version),
                ..JobInput::default()
            },
            Some(key.clone()),
            by,
        );
        match self.jobs.insert_job(&job).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return self
                    .jobs
                    .find_job_by_idempotency_key(tenant, &key)
                    .await
                    .or_not_found("job");
            }
            Err(e) => return Err(e.into()),
        }
        if !enqueue {
            announce(&*self.events, &job, JobStatus::Queued).await;
            return Ok(job);
        }
        if let Err(e) = enqueue_or_fail(&*self.jobs, &*self.queue, &job).await {
            // The chapter's memory state says so too (its next change queues a new job).
            if let (Some(c), JobKind::ExtractMemory) = (chapter, kind) {
                let _ = self
                    .store
                    .mark_chapter_memory(
                        tenant,
                        c.id,
                        c.version,
                        crate::ports::MemoryMark::Failed(format!("could not be queued: {e}")),
                    )
                    .await;
            }
            return Err(e.into());
        }
        announce(&*self.events, &job, JobStatus::Queued).await;
        Ok(job)
    }

    /// Queues the memory jobs of every chapter of the tenant whose current version is
    /// not remembered yet (after a crash, a restart, or an enqueue that failed). Returns
    /// how many jobs it queued or found queued.
    pub async fn sweep(&self, tenant: TenantId, limit: i64) -> Result<usize, Error> {
        let stale = self.store.unremembered_chapters(tenant, limit).await?;
        let mut n = 0;
        for (chapter, _, _) in stale {
            let c = match self.store.get_chapter(tenant, chapter).await {
                Ok(c) => c,
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            };
            self.remember(&c, None).await?;
            n += 1;
        }
        Ok(n)
    }
}
