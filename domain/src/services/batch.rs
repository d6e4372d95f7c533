//! Batch generation (`generateChapters`): recording the parent job that writes chapters
//! `fromSeq..=toSeq` in order (the worker's side is in `batch_run.rs`).
//!
//! The parent job has the chapters' kind (DRAFT, …), no chapter, and `input.batch`; its
//! tokens are the sum of its children's; its progress counts the chapters done.

use super::generation::{
    GenerationService, MAX_IDEMPOTENCY_KEY, announce, enqueue_or_fail, queued_job,
};
use super::{audit, now};
use crate::StoreError;
use crate::auth::Actor;
use crate::error::{Error, StoreResultExt};
use crate::ids::NovelId;
use crate::model::*;
use crate::text;

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
        let job = GenerationJob {
            progress: Some(JobProgress {
                done: 0,
                total: spec.to_seq - spec.from_seq + 1,
            }),
            ..queued_job(
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
            )
        };
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
