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
//! A chapter that does not exist (DRAFT) is created, and a chapter without an outline
//! (DRAFT, REWRITE) gets one drafted from the novel's plan first (`outline.rs`): the
//! drafting's tokens count in the tenant's usage, not in a child job. Both are kept
//! before its child job starts, so a resumed batch finds them and does not draft again.
//!
//! A chapter that fails, whose memory fails, or (with `stopOn: ERROR`) whose continuity
//! check — the report the writer stored for the version — has an issue of severity
//! ERROR: with `stopOn: ERROR` the parent ends FAILED naming the chapter and why, and no
//! later chapter is written; with `stopOn: NEVER` failures are noted in the parent's
//! error and the batch goes on. A user cancelling the parent stops the chapter being
//! written (left as it was) and the rest; a chapter already stored is still remembered.

use super::generation::{DEFAULT_TARGET_WORDS, announce, queued_job};
use super::now;
use super::outline;
use super::runner::{JobRunner, RunOutcome, StopReason};
use crate::StoreError;
use crate::ids::{ChapterId, TenantId};
use crate::model::*;
use crate::page::PageRequest;
use crate::ports::{CompletionEvent, CompletionRequest, TokenUsage};
use futures_util::StreamExt;
use futures_util::future::{Either, select};
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
            .chapter_to_write(parent, spec, seq, stop.as_mut())
            .await
        {
            Ok(c) => c,
            Err(step) => return step,
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

    /// The chapter at `seq`, ready to be written: created when it does not exist (DRAFT)
    /// and given an outline drafted from the novel's plan when it has none (DRAFT,
    /// REWRITE).
    async fn chapter_to_write(
        &self,
        parent: &GenerationJob,
        spec: BatchSpec,
        seq: i32,
        stop: Pin<&mut (impl Future<Output = StopReason> + Send)>,
    ) -> Result<Chapter, Step> {
        let t = parent.tenant_id;
        let retry = |e: &dyn std::fmt::Display| Step::Stop(RunOutcome::Retry(e.to_string()));
        let found = match self
            .store
            .find_chapter_by_seq(t, parent.novel_id, seq)
            .await
        {
            Ok(c) => Some(c),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(retry(&e)),
        };
        let drafts = match &found {
            Some(c) => {
                matches!(spec.kind, JobKind::Draft | JobKind::Rewrite)
                    && c.outline.trim().is_empty()
            }
            None => spec.kind == JobKind::Draft,
        };
        match (found, drafts) {
            (Some(c), false) => Ok(c),
            (None, false) => Err(Step::Failed("the chapter no longer exists".into())),
            (found, true) => {
                let drafted = self
                    .draft_outline(parent, spec, seq, found.as_ref(), stop)
                    .await?;
                match found {
                    Some(c) => {
                        // Re-read: the author may have changed the chapter meanwhile.
                        let mut c = self
                            .store
                            .get_chapter(t, c.id)
                            .await
                            .map_err(|e| retry(&e))?;
                        if c.outline.trim().is_empty() {
                            c.outline = drafted.outline;
                            c.updated_at = now();
                            self.store.update_chapter(&c).await.map_err(|e| retry(&e))?;
                        }
                        Ok(c)
                    }
                    None => self.create_planned(parent, spec, seq, drafted).await,
                }
            }
        }
    }

    /// Creates chapter `seq` of a batch with its drafted title and outline, in the
    /// volume of the chapter before it (the tenant's chapter quota still holds).
    async fn create_planned(
        &self,
        parent: &GenerationJob,
        spec: BatchSpec,
        seq: i32,
        drafted: outline::Drafted,
    ) -> Result<Chapter, Step> {
        let t = parent.tenant_id;
        let retry = |e: &dyn std::fmt::Display| Step::Stop(RunOutcome::Retry(e.to_string()));
        let tenant = self.store.get_tenant(t).await.map_err(|e| retry(&e))?;
        let count = self
            .store
            .count_chapters(t, parent.novel_id)
            .await
            .map_err(|e| retry(&e))?;
        if count >= tenant.quota.max_chapters_per_novel {
            return Err(Step::Failed(format!(
                "quota exceeded: a novel may hold at most {} chapters",
                tenant.quota.max_chapters_per_novel
            )));
        }
        let volume_id = match seq.checked_sub(1).filter(|p| *p >= 1) {
            Some(p) => match self.store.find_chapter_by_seq(t, parent.novel_id, p).await {
                Ok(c) => c.volume_id,
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(retry(&e)),
            },
            None => None,
        };
        let at = now();
        let chapter = Chapter {
            id: ChapterId::new(),
            tenant_id: t,
            novel_id: parent.novel_id,
            volume_id,
            seq,
            title: if drafted.title.is_empty() {
                format!("Chapter {seq}")
            } else {
                drafted.title
            },
            outline: drafted.outline,
            content: String::new(),
            word_count: 0,
            summary: String::new(),
            summary_origin: Origin::Author,
            story_time_start: None,
            story_time_end: None,
            target_word_count: spec.target_words,
            status: ChapterStatus::Draft,
            version: 0,
            created_at: at,
            updated_at: at,
        };
        match self.store.insert_chapter(&chapter, None).await {
            Ok(()) => Ok(chapter),
            // Made meanwhile (by the author, or an earlier attempt): write that one.
            Err(StoreError::Conflict(_)) => self
                .store
                .find_chapter_by_seq(t, parent.novel_id, seq)
                .await
                .map_err(|e| retry(&e)),
            Err(StoreError::NotFound) => Err(Step::Failed("the novel was deleted".into())),
            Err(e) => Err(retry(&e)),
        }
    }

    /// Asks the model for the outline of chapter `seq` from the novel's plan; its tokens
    /// go to the tenant's usage. A transient model error hands the batch back to the
    /// queue; a refusal or two answers that are not an outline fail the chapter.
    async fn draft_outline(
        &self,
        parent: &GenerationJob,
        spec: BatchSpec,
        seq: i32,
        existing: Option<&Chapter>,
        mut stop: Pin<&mut (impl Future<Output = StopReason> + Send)>,
    ) -> Result<outline::Drafted, Step> {
        let t = parent.tenant_id;
        let retry = |e: &dyn std::fmt::Display| Step::Stop(RunOutcome::Retry(e.to_string()));
        let novel = match self.store.get_novel(t, parent.novel_id).await {
            Ok(n) => n,
            Err(StoreError::NotFound) => return Err(Step::Failed("the novel was deleted".into())),
            Err(e) => return Err(retry(&e)),
        };
        let all = super::batch::all_chapters(&*self.store, t, novel.id)
            .await
            .map_err(|e| retry(&e))?;
        let volumes = match PageRequest::new(Some(100), None) {
            Ok(page) => {
                self.store
                    .list_volumes(t, novel.id, page)
                    .await
                    .map_err(|e| retry(&e))?
                    .items
            }
            Err(e) => return Err(retry(&e)),
        };
        if !outline::has_plan(&novel, &volumes) {
            return Err(Step::Failed(
                "it has no outline and the novel has no plan to draft one from (a description or a volume summary)".into(),
            ));
        }
        let before: Vec<Chapter> = {
            let mut b: Vec<Chapter> = all
                .iter()
                .filter(|c| c.seq < seq)
                .rev()
                .take(outline::CHAPTERS_BEFORE)
                .cloned()
                .collect();
            b.reverse();
            b
        };
        let after = all.iter().find(|c| c.seq > seq);
        let volume_id = existing
            .and_then(|c| c.volume_id)
            .or_else(|| before.last().and_then(|c| c.volume_id));
        let plan = outline::Plan {
            novel: &novel,
            volume: volumes.iter().find(|v| Some(v.id) == volume_id),
            before: &before,
            after,
        };
        let target = spec
            .target_words
            .or(existing.and_then(|c| c.target_word_count))
            .unwrap_or(DEFAULT_TARGET_WORDS);
        let messages = outline::prompt(&plan, seq, existing.map(|c| c.title.as_str()), target);
        let mut why = String::new();
        for _ in 0..2 {
            let request = CompletionRequest {
                messages: messages.clone(),
                max_tokens: outline::MAX_OUTLINE_TOKENS,
                temperature: self.config.temperature.min(0.7),
                seed: self.config.seed,
                json_schema: Some(outline::schema()),
            };
            let (answer, usage, model) = match self.complete_text(request, stop.as_mut()).await {
                Ok(a) => a,
                Err(Either::Left(e)) if e.falls_back() => return Err(retry(&e)),
                Err(Either::Left(e)) => {
                    return Err(Step::Failed(format!(
                        "its outline could not be drafted: {e}"
                    )));
                }
                Err(Either::Right(StopReason::Cancelled)) => {
                    return Err(Step::Stop(RunOutcome::Cancelled));
                }
                Err(Either::Right(StopReason::Shutdown)) => {
                    return Err(Step::Stop(RunOutcome::Retry("worker shutting down".into())));
                }
            };
            if usage.prompt_tokens + usage.completion_tokens > 0
                && let Err(e) = self
                    .jobs
                    .record_usage(t, model.as_deref().unwrap_or("unknown"), usage, now())
                    .await
            {
                tracing::warn!(job = %parent.id, error = %e, "outline tokens not counted");
            }
            match outline::parse(&answer) {
                Ok(d) => return Ok(d),
                Err(e) => why = e,
            }
        }
        Err(Step::Failed(format!(
            "its outline could not be drafted: {why}"
        )))
    }

    /// One completion read to its end: (text, usage, model), or the model's error
    /// (left) or why the batch stopped (right).
    async fn complete_text(
        &self,
        request: CompletionRequest,
        mut stop: Pin<&mut (impl Future<Output = StopReason> + Send)>,
    ) -> Result<(String, TokenUsage, Option<String>), Either<crate::ports::LlmError, StopReason>>
    {
        let mut stream = match select(Box::pin(self.llm.stream(request)), stop.as_mut()).await {
            Either::Left((Ok(s), _)) => s,
            Either::Left((Err(e), _)) => return Err(Either::Left(e)),
            Either::Right((reason, _)) => return Err(Either::Right(reason)),
        };
        let (mut text, mut usage, mut model) = (String::new(), TokenUsage::default(), None);
        loop {
            match select(stream.next(), stop.as_mut()).await {
                Either::Right((reason, _)) => return Err(Either::Right(reason)),
                Either::Left((None, _)) => break,
                Either::Left((Some(Err(e)), _)) => return Err(Either::Left(e)),
                Either::Left((Some(Ok(ev)), _)) => match ev {
                    CompletionEvent::Started(s) => model = Some(s.model),
                    CompletionEvent::Delta(d) => text.push_str(&d),
                    CompletionEvent::Usage(u) => usage = u,
                    CompletionEvent::Finished(_) => break,
                },
            }
        }
        Ok((text, usage, model))
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
