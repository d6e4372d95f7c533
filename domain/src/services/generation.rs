//! Generation: asking for a chapter (a job, queued at once), cancelling it, reading jobs.
//! The [`runner`](super::runner) runs a queued job on a worker.

use super::{audit, now};
use crate::StoreError;
use crate::auth::Actor;
use crate::error::{Error, StoreResultExt};
use crate::ids::{ChapterId, JobId, NovelId, TenantId, UserId};
use crate::model::{Chapter, GenerationJob, JobInput, JobKind, JobStatus};
use crate::page::{Page, PageRequest};
use crate::ports::{
    JobEvent, JobEvents, JobMessage, JobQueue, JobRepository, QueueError, Rate, RateLimiter, Store,
    StreamEvent, StreamReader, TokenStream,
};
use crate::text::{self, MAX_TEXT};
use std::sync::Arc;

/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

/// Input of [`GenerationService::generate_chapter`].
#[derive(Debug, Clone)]
pub struct GenerateChapter {
    /// The chapter to write.
    pub chapter_id: ChapterId,
    /// DRAFT, CONTINUE, REWRITE or POLISH.
    pub kind: JobKind,
    /// Instructions for the writer.
    pub instructions: Option<String>,
    /// Target length; default: the chapter's target, else 1,200.
    pub target_words: Option<i64>,
    /// Makes the request idempotent: the same key returns the same job.
    pub idempotency_key: Option<String>,
    /// REWRITE only: ids of issues of the chapter's current report for the model to fix.
    pub fix_issues: Vec<String>,
}

/// Most issues one rewrite may be asked to fix.
pub const MAX_FIX_ISSUES: usize = 50;

/// Default target length of a generated chapter when neither the request nor the
/// chapter names one.
pub const DEFAULT_TARGET_WORDS: i64 = 1_200;

impl From<QueueError> for Error {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Unavailable(m) => Error::Unavailable(m),
            QueueError::Internal(m) => Error::Internal(m),
        }
    }
}

/// Generation jobs.
#[derive(Clone)]
pub struct GenerationService {
    pub(super) store: Arc<dyn Store>,
    pub(super) jobs: Arc<dyn JobRepository>,
    pub(super) queue: Arc<dyn JobQueue>,
    streams: Arc<dyn TokenStream>,
    pub(super) events: Arc<dyn JobEvents>,
    /// Generation starts allowed per tenant.
    start_limit: Option<(Arc<dyn RateLimiter>, Rate)>,
    /// The reads of a followed job (its status, its chapter) shared by its followers.
    pub(super) follow_reads: super::follow::FollowReads,
}

impl GenerationService {
    /// Builds the service.
    pub fn new(
        store: Arc<dyn Store>,
        jobs: Arc<dyn JobRepository>,
        queue: Arc<dyn JobQueue>,
        streams: Arc<dyn TokenStream>,
        events: Arc<dyn JobEvents>,
    ) -> Self {
        Self {
            store,
            jobs,
            queue,
            streams,
            events,
            start_limit: None,
            follow_reads: super::follow::FollowReads::default(),
        }
    }

    /// The same service, allowing each tenant at most `rate` generation starts (counted
    /// by `limiter` after validation and the token quota: a request refused by those
    /// counts nothing).
    pub fn with_start_limit(mut self, limiter: Arc<dyn RateLimiter>, rate: Rate) -> Self {
        self.start_limit = Some((limiter, rate));
        self
    }

    /// The issues of the chapter's current report that `ids` name, as the prompt gives
    /// them. `INVALID_INPUT` for ids with a kind other than REWRITE, too many ids, or an
    /// id the report does not have (or a chapter with no report).
    async fn issues_to_fix(
        &self,
        chapter: &Chapter,
        kind: JobKind,
        ids: &[String],
    ) -> Result<Vec<String>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if kind != JobKind::Rewrite {
            return Err(Error::invalid("fixIssues", "only a REWRITE fixes issues"));
        }
        if ids.len() > MAX_FIX_ISSUES {
            return Err(Error::invalid(
                "fixIssues",
                format!("at most {MAX_FIX_ISSUES} issues, got {}", ids.len()),
            ));
        }
        let report = self
            .store
            .get_validation(chapter.tenant_id, chapter.id, chapter.version)
            .await?
            .map(|v| v.report)
            .unwrap_or_default();
        let mut out = Vec::new();
        for id in ids {
            let issue = report
                .issues
                .iter()
                .find(|i| i.id() == *id)
                .ok_or_else(|| {
                    Error::invalid(
                        "fixIssues",
                        format!("the chapter's current report has no issue {id:?}"),
                    )
                })?;
            let mut line = match &issue.span {
                Some(s) => format!("“{}”: {}", s.text, issue.message),
                None => issue.message.clone(),
            };
            if let Some(s) = &issue.suggestion {
                line.push_str(&format!(" ({s})"));
            }
            if !out.contains(&line) {
                out.push(line);
            }
        }
        Ok(out)
    }

    /// Records a job for the chapter and queues it; returns at once (never waits on the
    /// model). Needs MEMBER. The same idempotency key returns the same job.
    pub async fn generate_chapter(
        &self,
        actor: &Actor,
        input: GenerateChapter,
    ) -> Result<GenerationJob, Error> {
        actor.require_write()?;
        if !matches!(
            input.kind,
            JobKind::Draft | JobKind::Continue | JobKind::Rewrite | JobKind::Polish
        ) {
            return Err(Error::invalid(
                "kind",
                "must be DRAFT, CONTINUE, REWRITE or POLISH",
            ));
        }
        let instructions = text::bounded(
            "instructions",
            input.instructions.as_deref().unwrap_or(""),
            MAX_TEXT,
        )?;
        let target = input
            .target_words
            .map(|n| text::in_range("targetWords", n, 50, super::story::MAX_CHAPTER_WORDS))
            .transpose()?;
        let key = input
            .idempotency_key
            .map(|k| text::required("idempotencyKey", &k, MAX_IDEMPOTENCY_KEY))
            .transpose()?;
        if let Some(k) = &key {
            match self
                .jobs
                .find_job_by_idempotency_key(actor.tenant_id, k)
                .await
            {
                Ok(existing) => return same_request(existing, input.chapter_id, input.kind),
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let chapter = self
            .store
            .get_chapter(actor.tenant_id, input.chapter_id)
            .await
            .or_not_found("chapter")?;
        let fix = self
            .issues_to_fix(&chapter, input.kind, &input.fix_issues)
            .await?;
        let tenant = self
            .store
            .get_tenant(actor.tenant_id)
            .await
            .or_not_found("tenant")?;
        let used = self
            .jobs
            .tokens_used(actor.tenant_id, now().date_naive())
            .await?;
        if used >= tenant.quota.max_tokens_per_day {
            return Err(Error::QuotaExceeded(format!(
                "the tenant used its {} LLM tokens for today",
                tenant.quota.max_tokens_per_day
            )));
        }
        if let Some((limiter, rate)) = &self.start_limit {
            super::rate_limit(
                &**limiter,
                &format!("gen:{}", actor.tenant_id),
                *rate,
                || {
                    format!(
                        "generation starts per minute for this tenant ({})",
                        rate.max
                    )
                },
            )
            .await?;
        }
        let job = queued_job(
            actor.tenant_id,
            chapter.novel_id,
            Some(chapter.id),
            input.kind,
            JobInput {
                instructions,
                target_words: target.or(chapter.target_word_count),
                fix,
                ..JobInput::default()
            },
            key.clone(),
            Some(actor.user_id),
        );
        match self.jobs.insert_job(&job).await {
            Ok(()) => {}
            // Two requests with the same key raced: the other one's job is the answer.
            Err(StoreError::Conflict(_)) if key.is_some() => {
                let existing = self
                    .jobs
                    .find_job_by_idempotency_key(
                        actor.tenant_id,
                        key.as_deref().unwrap_or_default(),
                    )
                    .await
                    .or_not_found("job")?;
                return same_request(existing, input.chapter_id, input.kind);
            }
            Err(e) => return Err(e.into()),
        }
        enqueue_or_fail(&*self.jobs, &*self.queue, &job).await?;
        announce(&*self.events, &job, JobStatus::Queued).await;
        audit(&*self.store, actor, "job.create", "GenerationJob", job.id).await;
        Ok(job)
    }

    /// Cancels a job: a queued job never runs, a running one stops within a second and
    /// leaves the chapter as it was. Cancelling a finished job returns it unchanged.
    pub async fn cancel(&self, actor: &Actor, id: JobId) -> Result<GenerationJob, Error> {
        actor.require_write()?;
        let mut job = self.job(actor, id).await?;
        if job.status.is_final() {
            return Ok(job);
        }
        let was_queued = job.status == JobStatus::Queued;
        job.status = JobStatus::Cancelled;
        job.error = Some("cancelled".into());
        job.finished_at = Some(now());
        if self.jobs.finish_job(&job).await? {
            if was_queued {
                // No worker streams this job: end its stream here so subscribers finish.
                let end = StreamEvent::End {
                    seq: 1,
                    status: JobStatus::Cancelled,
                    error: job.error.clone(),
                };
                self.streams.append(job.tenant_id, job.id, &end).await?;
            }
            announce(&*self.events, &job, JobStatus::Cancelled).await;
            audit(&*self.store, actor, "job.cancel", "GenerationJob", job.id).await;
        }
        self.job(actor, id).await
    }

    /// Reads a job.
    pub async fn job(&self, actor: &Actor, id: JobId) -> Result<GenerationJob, Error> {
        self.jobs
            .get_job(actor.tenant_id, id)
            .await
            .or_not_found("job")
    }

    /// Lists a novel's jobs, newest first.
    pub async fn jobs(
        &self,
        actor: &Actor,
        novel: NovelId,
        status: Option<JobStatus>,
        page: PageRequest,
    ) -> Result<Page<GenerationJob>, Error> {
        self.store
            .get_novel(actor.tenant_id, novel)
            .await
            .or_not_found("novel")?;
        Ok(self
            .jobs
            .list_jobs(actor.tenant_id, novel, status, page)
            .await?)
    }

    /// The live status changes of a novel's jobs. Needs read access to the novel.
    pub async fn job_events(
        &self,
        actor: &Actor,
        novel: NovelId,
    ) -> Result<futures_core::stream::BoxStream<'static, JobEvent>, Error> {
        self.store
            .get_novel(actor.tenant_id, novel)
            .await
            .or_not_found("novel")?;
        Ok(self.events.subscribe(actor.tenant_id, novel))
    }

    /// A reader of the job's token stream. The caller has read the job (authorization)
    /// first: see [`Self::follow`].
    pub(super) fn stream_reader(&self, job: &GenerationJob) -> Box<dyn StreamReader> {
        crate::ports::stream_reader(self.streams.clone(), job.tenant_id, job.id)
    }

    /// The store, for the follow module.
    pub(super) fn store(&self) -> &dyn Store {
        &*self.store
    }
}

/// A new job, QUEUED now, that no worker has touched yet.
pub fn queued_job(
    tenant_id: TenantId,
    novel_id: NovelId,
    chapter_id: Option<ChapterId>,
    kind: JobKind,
    input: JobInput,
    idempotency_key: Option<String>,
    created_by: Option<UserId>,
) -> GenerationJob {
    GenerationJob {
        id: JobId::new(),
        tenant_id,
        novel_id,
        chapter_id,
        kind,
        status: JobStatus::Queued,
        priority: 0,
        input,
        idempotency_key,
        provider: None,
        model: None,
        fallback_used: false,
        prompt_tokens: 0,
        completion_tokens: 0,
        queued_at: now(),
        started_at: None,
        first_token_at: None,
        finished_at: None,
        attempts: 0,
        error: None,
        created_by,
        context: Vec::new(),
        progress: None,
    }
}

/// Hands a stored job to the queue. If the queue refuses it, the job is failed ("could
/// not be queued") so that no job is left that no worker will ever see, and the queue's
/// error is returned.
pub(crate) async fn enqueue_or_fail(
    jobs: &dyn JobRepository,
    queue: &dyn JobQueue,
    job: &GenerationJob,
) -> Result<(), QueueError> {
    let message = JobMessage {
        tenant_id: job.tenant_id,
        job_id: job.id,
    };
    let Err(e) = queue.enqueue(&message).await else {
        return Ok(());
    };
    let mut failed = job.clone();
    failed.status = JobStatus::Failed;
    failed.error = Some(format!("could not be queued: {e}"));
    failed.finished_at = Some(now());
    let _ = jobs.finish_job(&failed).await;
    Err(e)
}

/// Announces a status change; best effort (the job row is the record).
pub(crate) async fn announce(events: &dyn JobEvents, job: &GenerationJob, status: JobStatus) {
    let event = JobEvent {
        tenant_id: job.tenant_id,
        novel_id: job.novel_id,
        job_id: job.id,
        status,
    };
    // On failure subscribers miss one live event; the job row still says it all.
    let _ = events.publish(&event).await;
}

fn same_request(
    existing: GenerationJob,
    chapter: ChapterId,
    kind: JobKind,
) -> Result<GenerationJob, Error> {
    if existing.chapter_id == Some(chapter) && existing.kind == kind {
        Ok(existing)
    } else {
        Err(Error::Conflict(
            "this idempotencyKey was used for a different request".into(),
        ))
    }
}
