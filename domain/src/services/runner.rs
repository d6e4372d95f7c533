//! The job runner: what a worker does with one delivered generation job.
//!
//! 1. start the job (attempt + 1); a job already final is skipped;
//! 2. build the prompt (novel, volume, outline, previous summaries, instructions, target);
//! 3. resume: chunks an earlier, crashed attempt already streamed are kept, and the model
//!    continues after them, so subscribers never see a chunk twice or a gap;
//! 4. stream from the model, appending every delta to the job's token stream at once;
//!    stop at a sentence end once the target is reached (never past +15% without one),
//!    ask the model to continue while the text is more than 15% short;
//! 5. store content + revision + job result + usage in one transaction, then end the
//!    stream. A failed or cancelled job leaves the chapter as it was.

use super::now;
use super::prompt::{self, PromptContext};
use crate::ids::{NovelId, TenantId};
use crate::model::*;
use crate::page::PageRequest;
use crate::ports::*;
use crate::text::count_words;
use crate::{Error, StoreError};
use futures_util::StreamExt;
use futures_util::future::{Either, select};
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

/// Runs generation jobs.
#[derive(Clone)]
pub struct JobRunner {
    store: Arc<dyn Store>,
    jobs: Arc<dyn JobRepository>,
    llm: Arc<dyn LanguageModel>,
    streams: Arc<dyn TokenStream>,
    events: Arc<dyn JobEvents>,
    config: RunnerConfig,
}

/// What streaming produced.
struct Streamed {
    text: String,
    seq: u64,
    served: Option<ServedBy>,
    fallback: bool,
    usage: TokenUsage,
    /// When the job's first chunk was streamed (by this attempt or an earlier one).
    first_token_at: Option<chrono::DateTime<chrono::Utc>>,
}

enum StreamEnd {
    Done,
    Stopped(StopReason),
    Failed(LlmError),
    Store(Error),
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
            store,
            jobs,
            llm,
            streams,
            events,
            config,
        }
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
        match self.prepare(&job).await {
            Ok((ctx_messages, chapter, target, language)) => {
                self.generate(job, chapter, ctx_messages, target, &language, stop)
                    .await
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

    /// Gives up on a job delivered too often (a poison job): records it FAILED with
    /// `reason` unless it already ended, and ends its token stream so subscribers finish.
    pub async fn give_up(&self, msg: &JobMessage, reason: &str) {
        if let Ok(mut job) = self.jobs.get_job(msg.tenant_id, msg.job_id).await
            && !job.status.is_final()
        {
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
        let ctx = PromptContext {
            novel: &novel,
            volume: volume.as_ref(),
            chapter: &chapter,
            previous,
            kind: job.kind,
            instructions: &job.input.instructions,
            target_words: target,
        };
        let messages = prompt::build_prompt(&ctx, self.config.prompt_budget);
        Ok((messages, chapter, target, novel.language))
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
        base: Vec<ChatMessage>,
        target: i64,
        language: &str,
        stop: impl Future<Output = StopReason> + Send,
    ) -> RunOutcome {
        // Resume after what an earlier attempt streamed.
        let earlier = match self
            .streams
            .read(job.tenant_id, job.id, 0, usize::MAX, Duration::ZERO)
            .await
        {
            Ok(e) => e,
            Err(e) => return RunOutcome::Retry(e.to_string()),
        };
        let mut out = Streamed {
            text: earlier
                .iter()
                .filter_map(|e| match e {
                    StreamEvent::Chunk { text, .. } => Some(text.as_str()),
                    _ => None,
                })
                .collect(),
            seq: earlier.last().map(StreamEvent::seq).unwrap_or(0),
            served: None,
            fallback: false,
            usage: TokenUsage::default(),
            first_token_at: job.first_token_at,
        };
        futures_util::pin_mut!(stop);
        let mut end = StreamEnd::Done;
        for _ in 0..self.config.max_rounds {
            let words = count_words(&out.text);
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
            };
            let before = out.text.len();
            end = self
                .stream_round(&job, request, target, &mut out, stop.as_mut())
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
            StreamEnd::Store(e) => RunOutcome::Retry(e.to_string()),
            StreamEnd::Failed(e) => self.fail(job, out.seq, e.to_string()).await,
            StreamEnd::Done if out.text.trim().is_empty() => {
                self.fail(job, out.seq, "the model produced no text".into())
                    .await
            }
            StreamEnd::Done => self.complete(job, chapter, out).await,
        }
    }

    async fn stream_round(
        &self,
        job: &GenerationJob,
        request: CompletionRequest,
        target: i64,
        out: &mut Streamed,
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
            .stream_events(job, request, target, out, stop.as_mut(), &mut reported)
            .await;
        if !reported {
            out.usage.prompt_tokens += prompt_estimate as i64;
            out.usage.completion_tokens += prompt::estimate_tokens(&out.text[round_start..]) as i64;
        }
        end
    }

    async fn stream_events(
        &self,
        job: &GenerationJob,
        request: CompletionRequest,
        target: i64,
        out: &mut Streamed,
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
                    let words = count_words(&out.text);
                    let (piece, last) = if words >= target {
                        match sentence_end(&text) {
                            Some(end) => (text[..end].to_owned(), true),
                            None => (text, words + 1 >= hard_limit),
                        }
                    } else {
                        (text, false)
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
                        if out.first_token_at.is_none() {
                            let (at, jobs) = (now(), self.jobs.clone());
                            let (tenant, id) = (job.tenant_id, job.id);
                            out.first_token_at = Some(at);
                            marking = Some(Box::pin(async move {
                                let _ = jobs.mark_first_token(tenant, id, at).await;
                            }));
                        }
                    }
                    if last {
                        return StreamEnd::Done;
                    }
                }
            }
        }
    }

    async fn complete(
        &self,
        mut job: GenerationJob,
        chapter: Chapter,
        out: Streamed,
    ) -> RunOutcome {
        let t = now();
        job.status = JobStatus::Succeeded;
        job.finished_at = Some(t);
        let mut updated = chapter.clone();
        updated.content = match job.kind {
            JobKind::Continue => format!("{}{}", chapter.content, out.text),
            _ => out.text.clone(),
        };
        updated.word_count = count_words(&updated.content);
        updated.version = chapter.version + 1;
        updated.status = ChapterStatus::Review;
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

    async fn fail(&self, mut job: GenerationJob, seq: u64, error: String) -> RunOutcome {
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

    async fn end_stream(
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

fn nf(e: StoreError, resource: &'static str) -> Error {
    match e {
        StoreError::NotFound => Error::NotFound { resource },
        other => other.into(),
    }
}

/// Byte index just past the first sentence end in `text`, if any.
fn sentence_end(text: &str) -> Option<usize> {
    text.char_indices()
        .find(|(_, c)| matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…' | '\n'))
        .map(|(i, c)| i + c.len_utf8())
}
