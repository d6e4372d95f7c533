//! The job runner: what a worker does with one delivered job. It starts the job (one more
//! attempt; a job already final is skipped), announces it RUNNING, and runs it by kind:
//! a memory job with [`MemoryJobs`](super::MemoryJobs), a chapter (DRAFT, CONTINUE,
//! REWRITE, POLISH) as follows (`write.rs`):
//!
//! 1. build the prompt (novel, outline, what memory recalls for it, the states of the
//!    entities it names as of the previous chapter, open foreshadowing, previous
//!    summaries, instructions, target), recording what memory gave it on the job;
//! 3. resume: chunks an earlier, crashed attempt already streamed are kept, and the model
//!    continues after them, so subscribers never see a chunk twice or a gap;
//! 4. stream from the model, appending every delta to the job's token stream at once;
//!    stop at a sentence end once the target is reached (never past +15% without one),
//!    ask the model to continue while the text is more than 15% short;
//! 5. store content + revision + job result + usage in one transaction, then end the
//!    stream and queue the memory job of the new version. A failed or cancelled job
//!    leaves the chapter as it was.
//!
//! A batch (`batch_run.rs`) runs its chapters' jobs and their memory jobs itself, in
//! order.

use super::memory_job::{MemoryJobs, MemoryOutcome};
use super::now;
use super::recall::RecallService;
use super::scheduler::Scheduler;
use crate::StoreError;
use crate::ids::TenantId;
use crate::model::*;
use crate::ports::*;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why the caller wants a running job to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A user cancelled the job (its row is CANCELLED already).
    Cancelled,
    /// The worker is shutting down: hand the job back, it will resume elsewhere.
    Shutdown,
}

/// How a run ended, for the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Stored; acknowledge.
    Succeeded,
    /// Failed for good (recorded); acknowledge.
    Failed(String),
    /// Cancelled (recorded); acknowledge.
    Cancelled,
    /// Already final or gone; acknowledge.
    Skipped,
    /// Transient trouble or shutdown: do not acknowledge; it will be delivered again.
    Retry(String),
}

/// Runner settings.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Prompt token budget.
    pub prompt_budget: usize,
    /// Most model calls per job (the first + continuations when short).
    pub max_rounds: u32,
    /// How long a finished job's token stream stays readable.
    pub stream_ttl: Duration,
    /// Sampling temperature.
    pub temperature: f32,
    /// Sampling seed.
    pub seed: Option<u64>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            prompt_budget: 6_000,
            max_rounds: 3,
            stream_ttl: Duration::from_secs(3_600),
            temperature: 0.8,
            seed: None,
        }
    }
}

/// Runs jobs.
#[derive(Clone)]
pub struct JobRunner {
    pub(super) store: Arc<dyn Store>,
    pub(super) jobs: Arc<dyn JobRepository>,
    pub(super) llm: Arc<dyn LanguageModel>,
    pub(super) streams: Arc<dyn TokenStream>,
    pub(super) events: Arc<dyn JobEvents>,
    pub(super) config: RunnerConfig,
    pub(super) memory: Option<Memory>,
    pub(super) files: Option<super::FileService>,
    pub(super) validation: super::ValidationService,
}

/// What a runner needs for memory: the memory jobs, recall for prompts, and the
/// scheduler that queues the memory job of a chapter it wrote.
#[derive(Clone)]
pub struct Memory {
    /// Runs memory jobs.
    pub jobs: MemoryJobs,
    /// Recalls what a prompt needs.
    pub recall: RecallService,
    /// Queues memory jobs.
    pub scheduler: Scheduler,
}

impl JobRunner {
    /// Builds a runner.
    pub fn new(
        store: Arc<dyn Store>,
        jobs: Arc<dyn JobRepository>,
        llm: Arc<dyn LanguageModel>,
        streams: Arc<dyn TokenStream>,
        events: Arc<dyn JobEvents>,
        config: RunnerConfig,
    ) -> Self {
        Self {
            validation: super::ValidationService::new(store.clone()),
            store,
            jobs,
            llm,
            streams,
            events,
            config,
            memory: None,
            files: None,
        }
    }

    /// The same runner, checking chapters (VALIDATE jobs) with `validation` — rules
    /// only without it.
    pub fn with_validation(mut self, validation: super::ValidationService) -> Self {
        self.validation = validation;
        self
    }

    /// The same runner, remembering: it runs memory jobs, recalls for its prompts and
    /// queues the memory job of every chapter it writes.
    pub fn with_memory(mut self, memory: Memory) -> Self {
        self.memory = Some(memory);
        self
    }

    /// The same runner, storing the books EXPORT jobs make with `files` (its size limit);
    /// without it, the store directly with the default limit.
    pub fn with_files(mut self, files: super::FileService) -> Self {
        self.files = Some(files);
        self
    }

    /// Runs one job until it ends or `stop` resolves.
    pub async fn run(
        &self,
        msg: &JobMessage,
        stop: impl Future<Output = StopReason> + Send,
    ) -> RunOutcome {
        let (tenant, id) = (msg.tenant_id, msg.job_id);
        let job = match self.jobs.start_job(tenant, id, now()).await {
            Ok(j) => j,
            Err(StoreError::Conflict(_)) | Err(StoreError::NotFound) => {
                self.end_if_open(tenant, msg).await;
                return RunOutcome::Skipped;
            }
            Err(e) => return RunOutcome::Retry(e.to_string()),
        };
        super::generation::announce(&*self.events, &job, JobStatus::Running).await;
        if job.input.batch.is_some() {
            return self.batch(job, stop).await;
        }
        match job.kind {
            JobKind::Draft | JobKind::Continue | JobKind::Rewrite | JobKind::Polish => {
                self.write(job, stop).await
            }
            JobKind::ExtractMemory => self.remember(job, stop).await,
            JobKind::Validate => self.validate(job).await,
            JobKind::Export => self.export(job).await,
            JobKind::Import => self.import(job, stop).await,
            other => {
                self.fail(job, 0, format!("{other} jobs are not run by this worker"))
                    .await
            }
        }
    }

    /// Runs a memory job.
    pub(super) async fn remember(
        &self,
        mut job: GenerationJob,
        stop: impl Future<Output = StopReason> + Send,
    ) -> RunOutcome {
        let Some(memory) = &self.memory else {
            return self
                .fail(job, 0, "this worker has no memory index".into())
                .await;
        };
        futures_util::pin_mut!(stop);
        match memory.jobs.run(&job, stop).await {
            MemoryOutcome::Done { served, usage } => {
                if let Some(s) = served {
                    job.provider = Some(s.provider);
                    job.model = Some(s.model);
                    job.fallback_used = s.fallback;
                }
                job.prompt_tokens += usage.prompt_tokens;
                job.completion_tokens += usage.completion_tokens;
                job.status = JobStatus::Succeeded;
                job.finished_at = Some(now());
                match self.jobs.finish_job(&job).await {
                    Ok(_) => {
                        self.end_stream(&job, 1, JobStatus::Succeeded, None).await;
                        self.queue_validation(&job, memory).await;
                        RunOutcome::Succeeded
                    }
                    Err(e) => RunOutcome::Retry(e.to_string()),
                }
            }
            MemoryOutcome::Retry(why) => RunOutcome::Retry(why),
            MemoryOutcome::Failed(why) => self.fail(job, 0, why).await,
            MemoryOutcome::Stopped(StopReason::Shutdown) => {
                RunOutcome::Retry("worker shutting down".into())
            }
            MemoryOutcome::Stopped(StopReason::Cancelled) => {
                self.end_stream(&job, 1, JobStatus::Cancelled, Some("cancelled".into()))
                    .await;
                RunOutcome::Cancelled
            }
        }
    }

    /// Queues the validation of the chapter version a memory job remembered, if it is
    /// still current (a failure to queue is logged: validation never blocks a chapter).
    async fn queue_validation(&self, job: &GenerationJob, memory: &Memory) {
        let Some(chapter) = job.chapter_id else {
            return;
        };
        let Ok(c) = self.store.get_chapter(job.tenant_id, chapter).await else {
            return;
        };
        if job.input.chapter_version.is_some_and(|v| v != c.version) {
            return;
        }
        if let Err(e) = memory.scheduler.validate(&c, job.created_by).await {
            tracing::warn!(chapter = %c.id, error = %e, "validation job not queued");
        }
    }

    /// Runs a validation job: checks the chapter version it names and stores the
    /// report (a version no longer current is not checked: its successor's job is).
    async fn validate(&self, mut job: GenerationJob) -> RunOutcome {
        let Some(chapter) = job.chapter_id else {
            return self
                .fail(job, 0, "a validation job needs a chapter".into())
                .await;
        };
        let c = match self.store.get_chapter(job.tenant_id, chapter).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                return self.fail(job, 0, "the chapter was deleted".into()).await;
            }
            Err(e) => return RunOutcome::Retry(e.to_string()),
        };
        if job.input.chapter_version.is_none_or(|v| v == c.version)
            && let Err(e) = self.validation.validate_version(&c).await
        {
            return RunOutcome::Retry(e.to_string());
        }
        job.status = JobStatus::Succeeded;
        job.finished_at = Some(now());
        match self.jobs.finish_job(&job).await {
            Ok(_) => {
                self.end_stream(&job, 1, JobStatus::Succeeded, None).await;
                RunOutcome::Succeeded
            }
            Err(e) => RunOutcome::Retry(e.to_string()),
        }
    }

    /// Gives up on a job delivered too often (a poison job): records it FAILED with
    /// `reason` unless it already ended (a memory job also marks its chapter version
    /// failed), and ends its token stream so subscribers finish.
    pub async fn give_up(&self, msg: &JobMessage, reason: &str) {
        if let Ok(mut job) = self.jobs.get_job(msg.tenant_id, msg.job_id).await
            && !job.status.is_final()
        {
            if let (JobKind::ExtractMemory, Some(m)) = (job.kind, &self.memory) {
                m.jobs.give_up(msg.tenant_id, &job, reason).await;
            }
            if job.input.batch.is_some() {
                self.hand_over_memory(&job).await;
            }
            job.status = JobStatus::Failed;
            job.error = Some(reason.to_owned());
            job.finished_at = Some(now());
            if !self.jobs.finish_job(&job).await.unwrap_or(false) {
                return;
            }
        }
        self.end_if_open(msg.tenant_id, msg).await;
    }

    /// Appends an End entry when a final job's stream has none (a job cancelled while
    /// its worker was down, or given up), so its subscribers finish.
    async fn end_if_open(&self, tenant: TenantId, msg: &JobMessage) {
        let Ok(job) = self.jobs.get_job(tenant, msg.job_id).await else {
            return;
        };
        if !job.status.is_final() {
            return;
        }
        if let Ok(entries) = self
            .streams
            .read(tenant, job.id, 0, usize::MAX, Duration::ZERO)
            .await
        {
            if entries.iter().any(|e| matches!(e, StreamEvent::End { .. })) {
                return;
            }
            let seq = entries.last().map(StreamEvent::seq).unwrap_or(0) + 1;
            self.end_stream(&job, seq, job.status, job.error.clone())
                .await;
        }
    }

    pub(super) async fn fail(&self, mut job: GenerationJob, seq: u64, error: String) -> RunOutcome {
        job.status = JobStatus::Failed;
        job.error = Some(error.clone());
        job.finished_at = Some(now());
        match self.jobs.finish_job(&job).await {
            Ok(_) => {
                self.end_stream(&job, seq + 1, JobStatus::Failed, Some(error.clone()))
                    .await;
                RunOutcome::Failed(error)
            }
            Err(e) => RunOutcome::Retry(e.to_string()),
        }
    }

    pub(super) async fn end_stream(
        &self,
        job: &GenerationJob,
        seq: u64,
        status: JobStatus,
        error: Option<String>,
    ) {
        let end = StreamEvent::End { seq, status, error };
        let _ = self.streams.append(job.tenant_id, job.id, &end).await;
        let _ = self
            .streams
            .expire(job.tenant_id, job.id, self.config.stream_ttl)
            .await;
        super::generation::announce(&*self.events, job, status).await;
    }
}
