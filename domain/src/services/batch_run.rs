//! Running a batch (`generateChapters`): the parent job writes chapters `fromSeq..=toSeq`
//! in order, each through a child job of its own (idempotency key `batch:<parent>:<seq>`,
//! so a resumed batch finds the children it already made).
//!
//! Chapter k+1 starts only after chapter k is stored *and remembered*, so its prompt
//! recalls what k established: the batch runs chapter k's memory job itself (recorded
//! under the usual key `memory:<chapter>:<version>:<seq>`, not queued). Its progress
//! (chapters done of all) is recorded after each chapter and announced in `jobEvents`.
//!
//! A worker that dies mid-batch leaves the parent's delivery to the queue; the next
//! attempt skips the chapters whose child SUCCEEDED and whose memory job ended, remembers
//! a chapter stored but not remembered yet, and resumes the chapter in flight. Progress
//! never goes back. A batch the queue gives up on hands the memory jobs it recorded but
//! did not finish to the queue.
//!
//! A chapter that fails, whose memory fails, or (with `stopOn: ERROR`) whose continuity
//! check — the report the writer stored for the version — has an issue of severity
//! ERROR: with `stopOn: ERROR` the parent ends FAILED naming the chapter and why, and no
//! later chapter is written; with `stopOn: NEVER` failures are noted in the parent's
//! error and the batch goes on. A user cancelling the parent stops the chapter being
//! written (left as it was) and the rest; a chapter already stored is still remembered.

use super::generation::{announce, queued_job};
use super::now;
use super::runner::{JobRunner, RunOutcome, StopReason};
use crate::StoreError;
use crate::ids::{ChapterId, TenantId};
use crate::model::*;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

/// How one chapter of a batch ended.
enum Step {
    /// Stored and remembered (or written before, and remembered now).
    Done,
    /// Failed for good, and why: the batch stops (`stopOn: ERROR`) or notes it.
    Failed(String),
    /// The batch stops here: cancelled, or handed back to the queue.
    Stop(RunOutcome),
}

impl JobRunner {
    /// Runs a batch: each chapter in order through its child job, each remembered
    /// before the next starts.
    pub(super) async fn batch(
        &self,
        mut parent: GenerationJob,
        stop: impl Future<Output = StopReason> + Send,
    ) -> RunOutcome {
        let Some(spec) = parent.input.batch else {
            return self.fail(parent, 0, "not a batch".into()).await;
        };
        futures_util::pin_mut!(stop);
        let total = spec.to_seq - spec.from_seq + 1;
        let mut failures = Vec::new();
        for (seq, done) in (spec.from_seq..=spec.to_seq).zip(1..) {
            match self
                .batch_chapter(&mut parent, spec, seq, stop.as_mut())
                .await
            {
                Step::Done => {}
                Step::Failed(why) => {
                    let why = format!("chapter {seq}: {why}");
                    if spec.stop_on_error {
                        return self.fail(parent, 0, why).await;
                    }
                    failures.push(why);
                }
                Step::Stop(RunOutcome::Cancelled) => {
                    self.end_stream(&parent, 1, JobStatus::Cancelled, Some("cancelled".into()))
                        .await;
                    return RunOutcome::Cancelled;
                }
                Step::Stop(other) => return other,
            }
            self.batch_progress(&mut parent, JobProgress { done, total })
                .await;
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

    /// Chapter `seq` of a batch: written by its child job (unless an earlier attempt
    /// did), remembered, and checked.
    async fn batch_chapter(
        &self,
        parent: &mut GenerationJob,
        spec: BatchSpec,
        seq: i32,
        mut stop: Pin<&mut (impl Future<Output = StopReason> + Send)>,
    ) -> Step {
        let tenant = parent.tenant_id;
        let chapter = match self
            .store
            .find_chapter_by_seq(tenant, parent.novel_id, seq)
            .await
        {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                return Step::Failed("the chapter no longer exists".into());
            }
            Err(e) => return Step::Stop(RunOutcome::Retry(e.to_string())),
        };
        let child = match self.child(parent, spec, &chapter, seq).await {
            Ok(c) => c,
            Err(e) => return Step::Stop(RunOutcome::Retry(e.to_string())),
        };
        let mut outcome = settled(&child);
        if !child.status.is_final() {
            outcome = match self.jobs.start_job(tenant, child.id, now()).await {
                Ok(started) => {
                    announce(&*self.events, &started, JobStatus::Running).await;
                    self.write_then(started, stop.as_mut(), false).await
                }
                Err(StoreError::Conflict(_)) => RunOutcome::Skipped,
                Err(e) => return Step::Stop(RunOutcome::Retry(e.to_string())),
            };
        }
        if outcome == RunOutcome::Skipped {
            // Ended meanwhile: as the row says.
            outcome = match self.jobs.get_job(tenant, child.id).await {
                Ok(j) => settled(&j),
                Err(e) => return Step::Stop(RunOutcome::Retry(e.to_string())),
            };
        }
        if let Ok(done) = self.jobs.get_job(tenant, child.id).await {
            parent.prompt_tokens += done.prompt_tokens;
            parent.completion_tokens += done.completion_tokens;
            parent.provider = done.provider.or(parent.provider.take());
            parent.model = done.model.or(parent.model.take());
            parent.fallback_used |= done.fallback_used;
        }
        match outcome {
            RunOutcome::Succeeded => {}
            RunOutcome::Skipped => {
                return Step::Stop(RunOutcome::Retry("the chapter's job has not ended".into()));
            }
            RunOutcome::Failed(why) => return Step::Failed(why),
            RunOutcome::Cancelled => {
                // The parent was cancelled: the child stopped; record it so.
                let mut c = child;
                c.status = JobStatus::Cancelled;
                c.error = Some("the batch was cancelled".into());
                c.finished_at = Some(now());
                let _ = self.jobs.finish_job(&c).await;
                return Step::Stop(RunOutcome::Cancelled);
            }
            RunOutcome::Retry(why) => return Step::Stop(RunOutcome::Retry(why)),
        }
        let version = match self
            .remember_in_line(parent, chapter.id, stop.as_mut())
            .await
        {
            Ok(v) => v,
            Err(step) => return step,
        };
        if spec.stop_on_error {
            match self.continuity_error(tenant, chapter.id, version).await {
                Ok(None) => {}
                Ok(Some(why)) => return Step::Failed(why),
                Err(e) => return Step::Stop(RunOutcome::Retry(e.to_string())),
            }
        }
        Step::Done
    }

    /// Runs the memory job of the chapter's current version here (unless it ended
    /// already); returns the version remembered. A cancel of the batch lets the memory
    /// job finish (the chapter is stored), then stops the batch.
    async fn remember_in_line(
        &self,
        parent: &GenerationJob,
        chapter: ChapterId,
        stop: Pin<&mut (impl Future<Output = StopReason> + Send)>,
    ) -> Result<i32, Step> {
        let tenant = parent.tenant_id;
        let retry = |e: &dyn std::fmt::Display| Step::Stop(RunOutcome::Retry(e.to_string()));
        let c = match self.store.get_chapter(tenant, chapter).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                return Err(Step::Failed("the chapter was deleted".into()));
            }
            Err(e) => return Err(retry(&e)),
        };
        let Some(memory) = &self.memory else {
            return Ok(c.version);
        };
        let mut job = memory
            .scheduler
            .record_memory(&c, parent.created_by)
            .await
            .map_err(|e| retry(&e))?;
        if !job.status.is_final() {
            match self.jobs.start_job(tenant, job.id, now()).await {
                Ok(started) => {
                    announce(&*self.events, &started, JobStatus::Running).await;
                    let cancelled = AtomicBool::new(false);
                    let shutdown_only = async {
                        match stop.await {
                            StopReason::Shutdown => StopReason::Shutdown,
                            StopReason::Cancelled => {
                                cancelled.store(true, Ordering::Relaxed);
                                std::future::pending::<StopReason>().await
                            }
                        }
                    };
                    let outcome = self.remember(started, shutdown_only).await;
                    let cancelled = cancelled.load(Ordering::Relaxed);
                    if let RunOutcome::Retry(why) = outcome {
                        if !cancelled {
                            return Err(Step::Stop(RunOutcome::Retry(why)));
                        }
                        // The batch ends here: a worker remembers the chapter.
                        if let Err(e) = memory.scheduler.hand_over(&job).await {
                            tracing::warn!(job = %job.id, error = %e, "memory job not queued");
                        }
                    }
                    if cancelled {
                        return Err(Step::Stop(RunOutcome::Cancelled));
                    }
                }
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(retry(&e)),
            }
            job = self
                .jobs
                .get_job(tenant, job.id)
                .await
                .map_err(|e| retry(&e))?;
        }
        match job.status {
            JobStatus::Succeeded => Ok(c.version),
            JobStatus::Failed => Err(Step::Failed(format!(
                "its memory failed: {}",
                job.error.unwrap_or_default()
            ))),
            JobStatus::Cancelled => Err(Step::Failed("its memory job was cancelled".into())),
            JobStatus::Queued | JobStatus::Running => Err(Step::Stop(RunOutcome::Retry(
                "the chapter's memory job has not ended".into(),
            ))),
        }
    }

    /// The first issue of severity ERROR in the report stored for the chapter version,
    /// described for the batch's error.
    async fn continuity_error(
        &self,
        tenant: TenantId,
        chapter: ChapterId,
        version: i32,
    ) -> Result<Option<String>, StoreError> {
        let Some(v) = self.store.get_validation(tenant, chapter, version).await? else {
            return Ok(None);
        };
        Ok(v.report
            .issues
            .iter()
            .find(|i| i.severity == Severity::Error)
            .map(|i| match &i.span {
                Some(s) => format!(
                    "continuity error {}: {} (\"{}\")",
                    i.kind, i.message, s.text
                ),
                None => format!("continuity error {}: {}", i.kind, i.message),
            }))
    }

    /// Records and announces the batch's progress, unless an earlier attempt got
    /// further (progress never goes back).
    async fn batch_progress(&self, parent: &mut GenerationJob, progress: JobProgress) {
        if parent.progress.is_some_and(|p| p.done >= progress.done) {
            return;
        }
        match self
            .jobs
            .set_job_progress(parent.tenant_id, parent.id, progress)
            .await
        {
            Ok(()) => {
                parent.progress = Some(progress);
                announce(&*self.events, parent, JobStatus::Running).await;
            }
            Err(e) => tracing::warn!(job = %parent.id, error = %e, "batch progress not recorded"),
        }
    }

    /// Queues the memory jobs of the chapters a batch stored but did not remember (it
    /// is given up): a worker remembers them.
    pub(super) async fn hand_over_memory(&self, parent: &GenerationJob) {
        let (Some(spec), Some(memory)) = (parent.input.batch, &self.memory) else {
            return;
        };
        for seq in spec.from_seq..=spec.to_seq {
            let key = format!("batch:{}:{seq}", parent.id);
            // Children are made in order: the first missing one ends the batch's work.
            let Ok(child) = self
                .jobs
                .find_job_by_idempotency_key(parent.tenant_id, &key)
                .await
            else {
                return;
            };
            let Some(chapter) = child
                .chapter_id
                .filter(|_| child.status == JobStatus::Succeeded)
            else {
                continue;
            };
            let Ok(c) = self.store.get_chapter(parent.tenant_id, chapter).await else {
                continue;
            };
            if let Ok(job) = memory.scheduler.record_memory(&c, parent.created_by).await
                && !job.status.is_final()
                && let Err(e) = memory.scheduler.hand_over(&job).await
            {
                tracing::warn!(job = %job.id, error = %e, "memory job not queued");
            }
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

/// The outcome a final child job stands for (a job not final yet: `Skipped`).
fn settled(job: &GenerationJob) -> RunOutcome {
    match job.status {
        JobStatus::Succeeded => RunOutcome::Succeeded,
        JobStatus::Failed => RunOutcome::Failed(job.error.clone().unwrap_or_default()),
        JobStatus::Cancelled => RunOutcome::Cancelled,
        JobStatus::Queued | JobStatus::Running => RunOutcome::Skipped,
    }
}
