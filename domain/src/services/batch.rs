//! Batch generation (`generateChapters`): one parent job writes chapters `fromSeq..=toSeq`
//! in order, each through a child job of its own (idempotency key `batch:<parent>:<seq>`,
//! so a resumed batch finds the children it already made). Chapter k+1 starts only after
//! chapter k is stored. A worker that dies mid-batch hands the parent back; the next
//! attempt skips the chapters whose child SUCCEEDED and resumes the one in flight. A user
//! cancelling the parent stops the chapter being written (left as it was) and the rest.
//!
//! The parent job has the chapters' kind (DRAFT, …), no chapter, and `input.batch`; its
//! tokens are the sum of its children's.

use super::generation::{
    GenerationService, MAX_IDEMPOTENCY_KEY, announce, enqueue_or_fail, queued_job,
};
use super::runner::{JobRunner, RunOutcome, StopReason};
use super::{audit, now};
use crate::StoreError;
use crate::auth::Actor;
use crate::error::{Error, StoreResultExt};
use crate::ids::NovelId;
use crate::model::*;
use crate::text;
use std::future::Future;

/// The most chapters one batch writes.
pub const MAX_BATCH_CHAPTERS: i32 = 200;

/// Input of [`GenerationService::generate_chapters`].
#[derive(Debug, Clone)]
pub struct GenerateChapters {
    /// The novel.
    pub novel_id: NovelId,
    /// First chapter seq (inclusive).
    pub from_seq: i32,
    /// Last chapter seq (inclusive).
    pub to_seq: i32,
    /// Target length of each chapter.
    pub target_words: Option<i64>,
    /// DRAFT, CONTINUE, REWRITE or POLISH.
    pub kind: JobKind,
    /// Makes the request idempotent: the same key returns the same batch.
    pub idempotency_key: Option<String>,
    /// Whether a failed chapter stops the rest.
    pub stop_on_error: bool,
}

impl GenerationService {
    /// Records the parent job of a batch and queues it; returns at once. Needs MEMBER.
    /// Every chapter of the range must exist (a clear error names the first missing one).
    pub async fn generate_chapters(
        &self,
        actor: &Actor,
        input: GenerateChapters,
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
        if input.from_seq < 1 {
            return Err(Error::invalid("fromSeq", "must be at least 1"));
        }
        if input.to_seq < input.from_seq {
            return Err(Error::invalid("toSeq", "must not be less than fromSeq"));
        }
        if input.to_seq - input.from_seq >= MAX_BATCH_CHAPTERS {
            return Err(Error::invalid(
                "toSeq",
                format!("a batch writes at most {MAX_BATCH_CHAPTERS} chapters"),
            ));
        }
        let target = input
            .target_words
            .map(|n| text::in_range("targetWords", n, 50, super::story::MAX_CHAPTER_WORDS))
            .transpose()?;
        let key = input
            .idempotency_key
            .map(|k| text::required("idempotencyKey", &k, MAX_IDEMPOTENCY_KEY))
            .transpose()?;
        let spec = BatchSpec {
            from_seq: input.from_seq,
            to_seq: input.to_seq,
            kind: input.kind,
            target_words: target,
            stop_on_error: input.stop_on_error,
        };
        if let Some(k) = &key {
            match self
                .jobs
                .find_job_by_idempotency_key(actor.tenant_id, k)
                .await
            {
                Ok(existing) => return same_batch(existing, input.novel_id, spec),
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let novel = self
            .store
            .get_novel(actor.tenant_id, input.novel_id)
            .await
            .or_not_found("novel")?;
        for seq in spec.from_seq..=spec.to_seq {
            match self
                .store
                .find_chapter_by_seq(actor.tenant_id, novel.id, seq)
                .await
            {
                Ok(_) => {}
                Err(StoreError::NotFound) => {
                    return Err(Error::invalid(
                        "fromSeq",
                        format!(
                            "chapter {seq} does not exist; create the chapters (with their outlines) first"
                        ),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
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
        let job = queued_job(
            actor.tenant_id,
            novel.id,
            None,
            spec.kind,
            JobInput {
                target_words: target,
                batch: Some(spec),
                ..JobInput::default()
            },
            key.clone(),
            Some(actor.user_id),
        );
        match self.jobs.insert_job(&job).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) if key.is_some() => {
                let existing = self
                    .jobs
                    .find_job_by_idempotency_key(
                        actor.tenant_id,
                        key.as_deref().unwrap_or_default(),
                    )
                    .await
                    .or_not_found("job")?;
                return same_batch(existing, input.novel_id, spec);
            }
            Err(e) => return Err(e.into()),
        }
        enqueue_or_fail(&*self.jobs, &*self.queue, &job).await?;
        announce(&*self.events, &job, JobStatus::Queued).await;
        audit(&*self.store, actor, "job.batch", "GenerationJob", job.id).await;
        Ok(job)
    }
}

fn same_batch(
    existing: GenerationJob,
    novel: NovelId,
    spec: BatchSpec,
) -> Result<GenerationJob, Error> {
    if existing.novel_id == novel && existing.input.batch == Some(spec) {
        Ok(existing)
    } else {
        Err(Error::Conflict(
            "this idempotencyKey was used for a different request".into(),
        ))
    }
}

impl JobRunner {
    /// Runs a batch: each chapter in order through its child job.
    pub(super) async fn batch(
        &self,
        mut parent: GenerationJob,
        stop: impl Future<Output = StopReason> + Send,
    ) -> RunOutcome {
        let Some(spec) = parent.input.batch else {
            return self.fail(parent, 0, "not a batch".into()).await;
        };
        futures_util::pin_mut!(stop);
        let tenant = parent.tenant_id;
        let mut failures = Vec::new();
        for seq in spec.from_seq..=spec.to_seq {
            let chapter = match self
                .store
                .find_chapter_by_seq(tenant, parent.novel_id, seq)
                .await
            {
                Ok(c) => c,
                Err(StoreError::NotFound) => {
                    let why = format!("chapter {seq} no longer exists");
                    if spec.stop_on_error {
                        return self.fail(parent, 0, why).await;
                    }
                    failures.push(why);
                    continue;
                }
                Err(e) => return RunOutcome::Retry(e.to_string()),
            };
            let child = match self.child(&parent, spec, &chapter, seq).await {
                Ok(c) => c,
                Err(e) => return RunOutcome::Retry(e.to_string()),
            };
            let outcome = match child.status {
                JobStatus::Succeeded => RunOutcome::Succeeded,
                JobStatus::Failed => RunOutcome::Failed(child.error.clone().unwrap_or_default()),
                JobStatus::Cancelled => RunOutcome::Cancelled,
                JobStatus::Queued | JobStatus::Running => {
                    let started = match self.jobs.start_job(tenant, child.id, now()).await {
                        Ok(j) => j,
                        Err(StoreError::Conflict(_)) => continue,
                        Err(e) => return RunOutcome::Retry(e.to_string()),
                    };
                    announce(&*self.events, &started, JobStatus::Running).await;
                    self.write(started, stop.as_mut()).await
                }
            };
            if let Ok(done) = self.jobs.get_job(tenant, child.id).await {
                parent.prompt_tokens += done.prompt_tokens;
                parent.completion_tokens += done.completion_tokens;
                parent.provider = done.provider.or(parent.provider);
                parent.model = done.model.or(parent.model);
                parent.fallback_used |= done.fallback_used;
            }
            match outcome {
                RunOutcome::Succeeded | RunOutcome::Skipped => {}
                RunOutcome::Failed(why) => {
                    let why = format!("chapter {seq}: {why}");
                    if spec.stop_on_error {
                        return self.fail(parent, 0, why).await;
                    }
                    failures.push(why);
                }
                RunOutcome::Cancelled => {
                    // The parent was cancelled: the child stopped; record it so.
                    let mut c = child.clone();
                    c.status = JobStatus::Cancelled;
                    c.error = Some("the batch was cancelled".into());
                    c.finished_at = Some(now());
                    let _ = self.jobs.finish_job(&c).await;
                    self.end_stream(&parent, 1, JobStatus::Cancelled, Some("cancelled".into()))
                        .await;
                    return RunOutcome::Cancelled;
                }
                RunOutcome::Retry(why) => return RunOutcome::Retry(why),
            }
        }
        parent.status = JobStatus::Succeeded;
        parent.finished_at = Some(now());
        parent.error = (!failures.is_empty()).then(|| failures.join("; "));
        match self.jobs.finish_job(&parent).await {
            Ok(true) => {
                self.end_stream(&parent, 1, JobStatus::Succeeded, None)
                    .await;
                RunOutcome::Succeeded
            }
            Ok(false) => RunOutcome::Skipped,
            Err(e) => RunOutcome::Retry(e.to_string()),
        }
    }

    /// The child job of chapter `seq`: the one an earlier attempt made, or a new one.
    async fn child(
        &self,
        parent: &GenerationJob,
        spec: BatchSpec,
        chapter: &Chapter,
        seq: i32,
    ) -> Result<GenerationJob, StoreError> {
        let key = format!("batch:{}:{seq}", parent.id);
        match self
            .jobs
            .find_job_by_idempotency_key(parent.tenant_id, &key)
            .await
        {
            Ok(existing) => return Ok(existing),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
        let job = GenerationJob {
            priority: parent.priority,
            ..queued_job(
                parent.tenant_id,
                parent.novel_id,
                Some(chapter.id),
                spec.kind,
                JobInput {
                    target_words: spec
                        .target_words
                        .or(chapter.target_word_count)
                        .or(Some(super::generation::DEFAULT_TARGET_WORDS)),
                    ..JobInput::default()
                },
                Some(key.clone()),
                parent.created_by,
            )
        };
        match self.jobs.insert_job(&job).await {
            Ok(()) => {
                announce(&*self.events, &job, JobStatus::Queued).await;
                Ok(job)
            }
            Err(StoreError::Conflict(_)) => {
                self.jobs
                    .find_job_by_idempotency_key(parent.tenant_id, &key)
                    .await
            }
            Err(e) => Err(e),
        }
    }
}
