//! Writing a chapter: the DRAFT, CONTINUE, REWRITE and POLISH jobs of the
//! [`JobRunner`](super::runner::JobRunner) — prompt, resume, stream, length control,
//! store (see the runner's module documentation).

use super::now;
use super::prompt::{self, PromptContext};
use super::runner::{JobRunner, RunOutcome, StopReason};
use super::validate::Checker;
use crate::ids::{NovelId, TenantId};
use crate::model::*;
use crate::page::PageRequest;
use crate::ports::*;
use crate::text::{WordCounter, count_words};
use crate::{Error, StoreError};
use futures_util::StreamExt;
use futures_util::future::{Either, select};
use std::collections::HashSet;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

/// What streaming produced.
struct Streamed {
    text: String,
    /// The words of `text`, counted as it grows (counting the whole text at every delta
    /// would cost a long chapter quadratic time).
    words: WordCounter,
    seq: u64,
    served: Option<ServedBy>,
    fallback: bool,
    usage: TokenUsage,
    /// When the job's first chunk was streamed (by this attempt or an earlier one).
    first_token_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The text a CONTINUE job's output follows (the chapter's content).
    follows: String,
    /// Whether the next piece starts a model call: it is joined to what precedes it at a
    /// boundary (a space between two sentences, none inside Chinese text).
    round_start: bool,
}

/// What a job asks of the model, and what follows a stored chapter.
struct Ask<'a> {
    /// The prompt.
    base: Vec<ChatMessage>,
    /// Target length in words.
    target: i64,
    /// The novel's language.
    language: &'a str,
    /// Whether the memory job of the stored version is queued.
    remember: bool,
}

enum StreamEnd {
    Done,
    Stopped(StopReason),
    Failed(LlmError),
    Store(Error),
}

/// The continuity rules over the text as it streams: at every sentence end the text so
/// far is checked against the story as of the chapter before (the story is read and the
/// rules prepared once per job), and each issue not yet published goes into the job's
/// stream. Issues without a span (length) are about the whole chapter: only the report
/// has them. A story that cannot be read or a rule that panics turns the checks off and
/// makes the report incomplete; the chapter is written all the same.
struct Live<'a> {
    checker: Option<&'a Checker<'a>>,
    /// The chapter's content before the generated text (a continuation's), in code
    /// points: spans are offsets in the chapter, and issues in it are not published.
    base: String,
    base_chars: i32,
    /// Bytes of the generated text checked so far (up to its last sentence end).
    checked: usize,
    /// Ids of the issues published (by this attempt or an earlier one).
    published: HashSet<String>,
}

impl Live<'_> {
    /// Every issue of the chapter's content `base + text` (`None` when the rules
    /// cannot run).
    fn check(&mut self, text: &str) -> Option<Vec<ValidationIssue>> {
        let checker = self.checker?;
        let full = format!("{}{text}", self.base);
        match catch_unwind(AssertUnwindSafe(|| checker.check(&full))) {
            Ok(issues) => Some(issues),
            Err(_) => {
                tracing::error!("a continuity rule panicked; checks are off for this job");
                self.checker = None;
                None
            }
        }
    }

    /// The issues to publish now that the generated text is `text`: none unless it has
    /// a sentence end past the last check; only new issues with a span in the generated
    /// part.
    fn new_issues(&mut self, text: &str) -> Vec<ValidationIssue> {
        if self.checker.is_none() {
            return Vec::new();
        }
        let Some(end) = last_sentence_end(&text[self.checked..]).map(|e| e + self.checked) else {
            return Vec::new();
        };
        self.checked = end;
        let issues = self.check(&text[..end]).unwrap_or_default();
        self.unpublished(issues)
    }

    fn unpublished(&mut self, issues: Vec<ValidationIssue>) -> Vec<ValidationIssue> {
        issues
            .into_iter()
            .filter(|i| i.span.as_ref().is_some_and(|s| s.start >= self.base_chars))
            .filter(|i| self.published.insert(i.id()))
            .collect()
    }
}

impl JobRunner {
    /// Writes a chapter (DRAFT, CONTINUE, REWRITE, POLISH) and queues the memory job of
    /// the version it stored.
    pub(super) async fn write(
        &self,
        job: GenerationJob,
        stop: impl Future<Output = StopReason> + Send,
    ) -> RunOutcome {
        self.write_then(job, stop, true).await
    }

    /// Writes a chapter; `remember`: queue the memory job of the version stored (a batch
    /// runs it itself instead, before the next chapter).
    pub(super) async fn write_then(
        &self,
        job: GenerationJob,
        stop: impl Future<Output = StopReason> + Send,
        remember: bool,
    ) -> RunOutcome {
        match self.prepare(&job).await {
            Ok((ctx_messages, chapter, target, language)) => {
                let ask = Ask {
                    base: ctx_messages,
                    target,
                    language: &language,
                    remember,
                };
                self.generate(job, chapter, ask, stop).await
            }
            Err(Error::NotFound { resource }) => {
                self.fail(job, 0, format!("the {resource} no longer exists"))
                    .await
            }
            Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => {
                RunOutcome::Retry(e.to_string())
            }
            Err(e) => self.fail(job, 0, e.to_string()).await,
        }
    }

    async fn prepare(
        &self,
        job: &GenerationJob,
    ) -> Result<(Vec<ChatMessage>, Chapter, i64, String), Error> {
        let t = job.tenant_id;
        let chapter_id = job.chapter_id.ok_or(Error::NotFound {
            resource: "chapter",
        })?;
        let chapter = self
            .store
            .get_chapter(t, chapter_id)
            .await
            .map_err(|e| nf(e, "chapter"))?;
        let novel = self
            .store
            .get_novel(t, chapter.novel_id)
            .await
            .map_err(|e| nf(e, "novel"))?;
        let volume = match chapter.volume_id {
            Some(v) => self.store.get_volume(t, v).await.ok(),
            None => None,
        };
        let previous = self.previous_summaries(t, novel.id, chapter.seq).await?;
        let target = job
            .input
            .target_words
            .or(chapter.target_word_count)
            .unwrap_or(super::generation::DEFAULT_TARGET_WORDS);
        let memory = self.memory_for(&chapter, job).await?;
        let instructions = with_fixes(&job.input.instructions, &job.input.fix);
        let ctx = PromptContext {
            novel: &novel,
            volume: volume.as_ref(),
            chapter: &chapter,
            previous,
            kind: job.kind,
            instructions: &instructions,
            target_words: target,
            recalled: memory.recalled,
            entities: memory.entities,
            open_threads: memory.open_threads,
        };
        let built = prompt::build_prompt(&ctx, self.config.prompt_budget);
        self.jobs.set_job_context(t, job.id, &built.context).await?;
        Ok((built.messages, chapter, target, novel.language))
    }

    /// What memory gives the prompt: passages and records recalled for the outline (as
    /// of the chapter before), the states of the entities the outline names as of the
    /// previous chapter, and the threads planted before it that are still open. Without
    /// memory (or when the index is unreachable: the chapter is still written) it is
    /// empty.
    async fn memory_for(
        &self,
        c: &Chapter,
        job: &GenerationJob,
    ) -> Result<prompt::Remembered, Error> {
        let Some(memory) = &self.memory else {
            return Ok(prompt::Remembered::default());
        };
        let t = c.tenant_id;
        let mut query = c.outline.trim().to_owned();
        if query.is_empty() {
            query = c.title.clone();
        }
        if !job.input.instructions.trim().is_empty() {
            query.push('\n');
            query.push_str(job.input.instructions.trim());
        }
        let query: String = query.chars().take(super::recall::MAX_QUERY_CHARS).collect();
        let recalled = match memory
            .recall
            .search(super::recall::Search {
                tenant: t,
                novel: c.novel_id,
                query: &query,
                before_seq: Some(c.seq),
                kinds: Vec::new(),
                first: 12,
                mode: RecallMode::Hybrid,
            })
            .await
        {
            Ok(hits) => hits,
            Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => {
                tracing::warn!(error = %e, job = %job.id, "recall failed; writing without it");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let all = super::memory_job::all_entities(&*self.store, t, c.novel_id).await?;
        let mut text = format!("{}\n{}", c.outline, job.input.instructions);
        if job.kind == JobKind::Continue {
            // The end of the text being continued names who is on stage.
            let tail: String = c
                .content
                .chars()
                .rev()
                .take(2_000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            text.push('\n');
            text.push_str(&tail);
        }
        let named = super::recall::named_entities(&all, &text);
        let ids: Vec<_> = named.iter().map(|e| e.id).collect();
        let states = self.store.entity_states_as_of(t, &ids, c.seq - 1).await?;
        let names: std::collections::HashMap<_, _> =
            all.iter().map(|e| (e.id, e.name.clone())).collect();
        let entities = named
            .into_iter()
            .map(|e| {
                let state = states.iter().find(|s| s.entity_id == e.id);
                prompt::describe_entity(e, state, &names)
            })
            .collect();
        let heads: std::collections::HashMap<_, _> = self
            .store
            .chapter_heads(t, c.novel_id)
            .await?
            .into_iter()
            .map(|(id, seq, _)| (id, seq))
            .collect();
        let open_threads = super::memory_job::open_threads(&*self.store, t, c.novel_id)
            .await?
            .into_iter()
            .filter(|f| {
                f.planted_chapter_id
                    .is_none_or(|p| heads.get(&p).is_some_and(|&seq| seq < c.seq))
            })
            .map(|f| {
                if f.expected_payoff.trim().is_empty() {
                    format!("{}: {}", f.title, f.description)
                } else {
                    format!(
                        "{}: {} (to pay off: {})",
                        f.title, f.description, f.expected_payoff
                    )
                }
            })
            .collect();
        Ok(prompt::Remembered {
            recalled,
            entities,
            open_threads,
        })
    }

    /// (seq, title, summary) of up to 20 chapters before `seq`, nearest first.
    async fn previous_summaries(
        &self,
        t: TenantId,
        novel: NovelId,
        seq: i32,
    ) -> Result<Vec<(i32, String, String)>, Error> {
        let mut out = Vec::new();
        let mut page = PageRequest::new(Some(100), None)?;
        loop {
            let p = self
                .store
                .list_chapters(t, novel, &ChapterFilter::default(), page)
                .await?;
            let done = !p.has_next_page || p.items.last().is_none_or(|c| c.seq >= seq);
            let last = p.items.last().map(|c| c.id.as_uuid());
            out.extend(
                p.items
                    .into_iter()
                    .filter(|c| c.seq < seq)
                    .map(|c| (c.seq, c.title, c.summary)),
            );
            match (done, last) {
                (false, Some(after)) => page = PageRequest::new(Some(100), Some(after))?,
                _ => break,
            }
        }
        out.reverse();
        out.truncate(20);
        Ok(out)
    }

    async fn generate(
        &self,
        mut job: GenerationJob,
        chapter: Chapter,
        ask: Ask<'_>,
        stop: impl Future<Output = StopReason> + Send,
    ) -> RunOutcome {
        let Ask {
            base,
            target,
            language,
            remember,
        } = ask;
        let (chapter_id, tenant) = (chapter.id, chapter.tenant_id);
        // Resume after what an earlier attempt streamed.
        let earlier = match self
            .streams
            .read(job.tenant_id, job.id, 0, usize::MAX, Duration::ZERO)
            .await
        {
            Ok(e) => e,
            Err(e) => return RunOutcome::Retry(e.to_string()),
        };
        let text: String = earlier
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Chunk { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let mut words = WordCounter::default();
        words.push_str(&text);
        let mut out = Streamed {
            text,
            words,
            seq: earlier.last().map(StreamEvent::seq).unwrap_or(0),
            served: None,
            fallback: false,
            usage: TokenUsage::default(),
            first_token_at: job.first_token_at,
            follows: if job.kind == JobKind::Continue {
                chapter.content.clone()
            } else {
                String::new()
            },
            round_start: true,
        };
        let story = super::ValidationService::new(self.store.clone())
            .story_before(&chapter, target)
            .await;
        if let Err(e) = &story {
            tracing::warn!(job = %job.id, error = %e, "no continuity checks: the story cannot be read");
        }
        let checker = story.as_ref().ok().map(Checker::new);
        let mut live = Live {
            checker: checker.as_ref(),
            base_chars: out.follows.chars().count() as i32,
            base: out.follows.clone(),
            checked: 0,
            published: earlier
                .iter()
                .filter_map(|e| match e {
                    StreamEvent::Issue { issue, .. } => Some(issue.id()),
                    _ => None,
                })
                .collect(),
        };
        futures_util::pin_mut!(stop);
        let mut end = StreamEnd::Done;
        for _ in 0..self.config.max_rounds {
            let words = out.words.count();
            if words > 0 && prompt::is_long_enough(words, target) {
                break;
            }
            let mut messages = base.clone();
            if !out.text.is_empty() {
                messages.push(ChatMessage::new(ChatRole::Assistant, out.text.clone()));
                messages.push(ChatMessage::new(
                    ChatRole::User,
                    "Continue the text exactly where it stops. Output only the continuation.",
                ));
            }
            let request = CompletionRequest {
                messages,
                max_tokens: prompt::max_tokens_for((target - words).max(50), language),
                temperature: self.config.temperature,
                seed: self.config.seed,
                json_schema: None,
            };
            let before = out.text.len();
            out.round_start = true;
            end = self
                .stream_round(&job, request, target, &mut out, &mut live, stop.as_mut())
                .await;
            if !matches!(end, StreamEnd::Done) || out.text.len() == before {
                break;
            }
        }
        if let Some(s) = &out.served {
            job.provider = Some(s.provider.clone());
            job.model = Some(s.model.clone());
        }
        job.fallback_used = out.fallback;
        job.first_token_at = job.first_token_at.or(out.first_token_at);
        job.prompt_tokens += out.usage.prompt_tokens;
        job.completion_tokens += out.usage.completion_tokens;
        match end {
            StreamEnd::Stopped(StopReason::Shutdown) => {
                self.keep_first_token(&job).await;
                RunOutcome::Retry("worker shutting down".into())
            }
            StreamEnd::Stopped(StopReason::Cancelled) => {
                self.end_stream(
                    &job,
                    out.seq + 1,
                    JobStatus::Cancelled,
                    Some("cancelled".into()),
                )
                .await;
                RunOutcome::Cancelled
            }
            StreamEnd::Store(e) => {
                self.keep_first_token(&job).await;
                RunOutcome::Retry(e.to_string())
            }
            StreamEnd::Failed(e) => self.fail(job, out.seq, e.to_string()).await,
            StreamEnd::Done if out.text.trim().is_empty() => {
                self.fail(job, out.seq, "the model produced no text".into())
                    .await
            }
            StreamEnd::Done => {
                let by = job.created_by;
                // The whole chapter checked once more: the stored report, and the issues
                // of a last sentence with no end mark yet are published now.
                let report = match live.check(&out.text) {
                    Some(issues) => {
                        for issue in live.unpublished(issues.clone()) {
                            if let Err(e) = self.publish(&job, &mut out, issue).await {
                                return RunOutcome::Retry(e.to_string());
                            }
                        }
                        ValidationReport {
                            issues,
                            complete: true,
                        }
                    }
                    None => ValidationReport {
                        issues: Vec::new(),
                        complete: false,
                    },
                };
                let outcome = self.complete(job, chapter, out, report).await;
                if remember && outcome == RunOutcome::Succeeded {
                    self.remember_written(chapter_id, tenant, by).await;
                }
                outcome
            }
        }
    }

    async fn stream_round(
        &self,
        job: &GenerationJob,
        request: CompletionRequest,
        target: i64,
        out: &mut Streamed,
        live: &mut Live<'_>,
        mut stop: std::pin::Pin<&mut (impl Future<Output = StopReason> + Send)>,
    ) -> StreamEnd {
        // Usage the provider reports; estimated when it does not (or when the stream is
        // dropped early at a sentence end, before the provider's usage event).
        let prompt_estimate: usize = request
            .messages
            .iter()
            .map(|m| prompt::estimate_tokens(&m.content))
            .sum();
        let round_start = out.text.len();
        let mut reported = false;
        let end = self
            .stream_events(
                job,
                request,
                target,
                out,
                live,
                stop.as_mut(),
                &mut reported,
            )
            .await;
        if !reported {
            out.usage.prompt_tokens += prompt_estimate as i64;
            out.usage.completion_tokens += prompt::estimate_tokens(&out.text[round_start..]) as i64;
        }
        end
    }

    #[allow(clippy::too_many_arguments)]
    async fn stream_events(
        &self,
        job: &GenerationJob,
        request: CompletionRequest,
        target: i64,
        out: &mut Streamed,
        live: &mut Live<'_>,
        mut stop: std::pin::Pin<&mut (impl Future<Output = StopReason> + Send)>,
        reported: &mut bool,
    ) -> StreamEnd {
        let opened = select(Box::pin(self.llm.stream(request)), stop.as_mut()).await;
        let mut stream = match opened {
            Either::Left((Ok(s), _)) => s,
            Either::Left((Err(e), _)) => return StreamEnd::Failed(e),
            Either::Right((reason, _)) => return StreamEnd::Stopped(reason),
        };
        let hard_limit = (target as f64 * 1.15).floor() as i64;
        // Recording the first token's time is a database write: it runs while the next
        // event is awaited, never between two chunks (it is best effort: the completion
        // writes the time too).
        let mut marking: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> = None;
        loop {
            let event = select(stream.next(), stop.as_mut());
            let event = match marking.as_mut() {
                None => event.await,
                Some(mark) => match select(event, mark.as_mut()).await {
                    Either::Left((event, _)) => event,
                    Either::Right(((), event)) => {
                        marking = None;
                        event.await
                    }
                },
            };
            let next = match event {
                Either::Left((next, _)) => next,
                Either::Right((reason, _)) => return StreamEnd::Stopped(reason),
            };
            match next {
                None => return StreamEnd::Done,
                Some(Err(e)) => return StreamEnd::Failed(e),
                Some(Ok(CompletionEvent::Started(s))) => {
                    out.fallback |= s.fallback;
                    out.served = Some(s);
                }
                Some(Ok(CompletionEvent::Usage(u))) => {
                    *reported = true;
                    out.usage.prompt_tokens += u.prompt_tokens;
                    out.usage.completion_tokens += u.completion_tokens;
                }
                Some(Ok(CompletionEvent::Finished(_))) => return StreamEnd::Done,
                Some(Ok(CompletionEvent::Delta(text))) => {
                    if text.is_empty() {
                        continue;
                    }
                    // Past the target: stop at the first sentence end (or the hard limit).
                    let words = out.words.count();
                    let (piece, last) = if words >= target {
                        match sentence_end(&text) {
                            Some(end) => (text[..end].to_owned(), true),
                            None => (text, words + 1 >= hard_limit),
                        }
                    } else {
                        (text, false)
                    };
                    let piece = if out.round_start && !piece.is_empty() {
                        out.round_start = false;
                        let before = if out.text.is_empty() {
                            &out.follows
                        } else {
                            &out.text
                        };
                        format!("{}{piece}", prompt::boundary(before, &piece))
                    } else {
                        piece
                    };
                    if !piece.is_empty() {
                        out.seq += 1;
                        let chunk = StreamEvent::Chunk {
                            seq: out.seq,
                            text: piece.clone(),
                        };
                        if let Err(e) = self.streams.append(job.tenant_id, job.id, &chunk).await {
                            return StreamEnd::Store(e.into());
                        }
                        out.text.push_str(&piece);
                        out.words.push_str(&piece);
                        if out.first_token_at.is_none() {
                            let (at, jobs) = (now(), self.jobs.clone());
                            let (tenant, id) = (job.tenant_id, job.id);
                            out.first_token_at = Some(at);
                            let delay = first_token_mark_delay(id);
                            marking = Some(Box::pin(async move {
                                tokio::time::sleep(delay).await;
                                let _ = jobs.mark_first_token(tenant, id, at).await;
                            }));
                        }
                        for issue in live.new_issues(&out.text) {
                            if let Err(e) = self.publish(job, out, issue).await {
                                return StreamEnd::Store(e);
                            }
                        }
                    }
                    if last {
                        return StreamEnd::Done;
                    }
                }
            }
        }
    }

    /// Appends a continuity issue to the job's stream, at the next seq.
    async fn publish(
        &self,
        job: &GenerationJob,
        out: &mut Streamed,
        issue: ValidationIssue,
    ) -> Result<(), Error> {
        let event = StreamEvent::Issue {
            seq: out.seq + 1,
            issue: Box::new(issue),
        };
        self.streams.append(job.tenant_id, job.id, &event).await?;
        out.seq += 1;
        Ok(())
    }

    /// Writes the time of a job's first chunk before the job is handed back for another
    /// attempt: the write [`first_token_mark_delay`] put off may not have run yet, and the
    /// next attempt keeps the time it finds on the job (best effort: only a time not yet
    /// recorded is written).
    async fn keep_first_token(&self, job: &GenerationJob) {
        if let Some(at) = job.first_token_at {
            let _ = self.jobs.mark_first_token(job.tenant_id, job.id, at).await;
        }
    }

    /// Queues the memory job of the version just written (best effort: the memory
    /// sweep catches a chapter whose job could not be queued).
    async fn remember_written(
        &self,
        chapter: crate::ids::ChapterId,
        tenant: TenantId,
        by: Option<crate::ids::UserId>,
    ) {
        let Some(memory) = &self.memory else {
            return;
        };
        match self.store.get_chapter(tenant, chapter).await {
            Ok(c) => {
                if let Err(e) = memory.scheduler.remember(&c, by).await {
                    tracing::warn!(error = %e, chapter = %chapter, "cannot queue the memory job");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, chapter = %chapter, "cannot read the chapter written")
            }
        }
    }

    async fn complete(
        &self,
        mut job: GenerationJob,
        chapter: Chapter,
        out: Streamed,
        report: ValidationReport,
    ) -> RunOutcome {
        let t = now();
        // A tenant that fails closed keeps a chapter with an ERROR issue as a draft.
        let closed = match self.store.get_tenant(job.tenant_id).await {
            Ok(tenant) => {
                super::validation::fail_mode(&tenant.settings) == ValidationFailMode::Closed
            }
            Err(e) => return RunOutcome::Retry(e.to_string()),
        };
        job.status = JobStatus::Succeeded;
        job.finished_at = Some(t);
        let mut updated = chapter.clone();
        // A continuation's first piece starts with its joining boundary already.
        updated.content = match job.kind {
            JobKind::Continue => format!("{}{}", chapter.content, out.text),
            _ => out.text.clone(),
        };
        updated.word_count = count_words(&updated.content);
        updated.version = chapter.version + 1;
        updated.status = if closed && !report.passed() {
            ChapterStatus::Draft
        } else {
            ChapterStatus::Review
        };
        updated.updated_at = t;
        let revision = ChapterRevision {
            id: crate::ids::RevisionId::new(),
            tenant_id: job.tenant_id,
            chapter_id: chapter.id,
            version: updated.version,
            content: updated.content.clone(),
            word_count: updated.word_count,
            source: RevisionSource::Generation,
            created_by: job.created_by,
            job_id: Some(job.id),
            note: format!(
                "{} by {}",
                job.kind,
                job.model.as_deref().unwrap_or("model")
            ),
            created_at: t,
        };
        match self
            .jobs
            .complete_job(&job, &updated, chapter.version, &revision)
            .await
        {
            Ok(()) => {
                let v = ChapterValidation {
                    id: uuid::Uuid::now_v7(),
                    tenant_id: job.tenant_id,
                    chapter_id: chapter.id,
                    chapter_version: updated.version,
                    report,
                    created_at: t,
                };
                if let Err(e) = self.store.save_validation(&v).await {
                    // Best effort: the validation job of the new version stores it again.
                    tracing::warn!(chapter = %chapter.id, error = %e, "report not stored");
                }
                self.end_stream(&job, out.seq + 1, JobStatus::Succeeded, None)
                    .await;
                RunOutcome::Succeeded
            }
            Err(StoreError::Conflict(_)) => {
                // Cancelled meanwhile, finished by another worker, or the chapter moved.
                match self.jobs.get_job(job.tenant_id, job.id).await {
                    Ok(j) if j.status == JobStatus::Cancelled => {
                        self.end_stream(&job, out.seq + 1, JobStatus::Cancelled, j.error).await;
                        RunOutcome::Cancelled
                    }
                    Ok(j) if j.status.is_final() => RunOutcome::Skipped,
                    _ => self.fail(job, out.seq, "the chapter was changed while it was being generated; nothing was stored".into()).await,
                }
            }
            Err(e) => RunOutcome::Retry(e.to_string()),
        }
    }
}

fn nf(e: StoreError, resource: &'static str) -> Error {
    match e {
        StoreError::NotFound => Error::NotFound { resource },
        other => other.into(),
    }
}

/// The writer's instructions, with the continuity issues a rewrite is to fix.
fn with_fixes(instructions: &str, fix: &[String]) -> String {
    if fix.is_empty() {
        return instructions.to_owned();
    }
    let mut out = instructions.trim().to_owned();
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str("Fix these continuity issues of the current text:");
    for f in fix {
        out.push_str("\n- ");
        out.push_str(f);
    }
    out
}

/// Byte index just past the last sentence end in `text`, if any.
fn last_sentence_end(text: &str) -> Option<usize> {
    text.char_indices()
        .rev()
        .find(|(_, c)| matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…' | '\n'))
        .map(|(i, c)| i + c.len_utf8())
}

/// Byte index just past the first sentence end in `text`, if any.
fn sentence_end(text: &str) -> Option<usize> {
    text.char_indices()
        .find(|(_, c)| matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…' | '\n'))
        .map(|(i, c)| i + c.len_utf8())
}

/// How long a job waits before recording the time of its first chunk: its share of a
/// second, set by the random low bits of its id.
///
/// The time itself is taken when the chunk is streamed and is exact; only the write of
/// it waits. A hundred jobs started together (a batch, a burst) would otherwise all write
/// within their first chunk's milliseconds, while their first chunks are being fanned
/// out to every subscriber: spread over a second, the writes no longer queue behind each
/// other (SQLite's writers take turns) at the moment the streams start. A running job's
/// `firstTokenAt` shows up to a second after its first chunk; the job's end, and a job
/// handed back for another attempt, write it at once.
pub fn first_token_mark_delay(job: crate::ids::JobId) -> Duration {
    const SPREAD_MS: u64 = 1_000;
    Duration::from_millis((job.as_uuid().as_u128() as u64) % SPREAD_MS)
}
