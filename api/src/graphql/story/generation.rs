//! Chapter generation: `generateChapter` (returns the queued job at once),
//! `cancelGeneration`, `generationJob(s)`, and the `chapterStream` subscription that
//! delivers the chapter as it is written — ordered chunks, then a final
//! `ChapterCompleted` (or `ChapterFailed`), after which the subscription completes.
//! `after` resumes: a client that reconnects gets exactly the chunks after the last one
//! it saw, from any server process.

use super::chapter::Chapter;
use crate::graphql::call;
use crate::graphql::connection::{connection, cost, page_request};
use crate::graphql::context::SubscriptionGuard;
use crate::graphql::errors::{ResultExt, to_gql};
use crate::graphql::ids::{decode, opt_id, to_id};
use async_graphql::futures_util::{Stream, StreamExt};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription, Union};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::time::Duration;
use znovel_domain::auth::Actor;
use znovel_domain::model as m;
use znovel_domain::ports::StreamEvent;
use znovel_domain::services::{GenerateChapter, GenerationService, Services};

/// How a generation job writes its chapter.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum GenerationKind {
    /// Write the chapter from its outline (replaces the content, keeping a revision).
    Draft,
    /// Append to the chapter's current content.
    Continue,
    /// Write the chapter anew (replaces the content, keeping a revision).
    Rewrite,
    /// Improve the prose without changing what happens.
    Polish,
}

impl From<GenerationKind> for m::JobKind {
    fn from(k: GenerationKind) -> Self {
        match k {
            GenerationKind::Draft => m::JobKind::Draft,
            GenerationKind::Continue => m::JobKind::Continue,
            GenerationKind::Rewrite => m::JobKind::Rewrite,
            GenerationKind::Polish => m::JobKind::Polish,
        }
    }
}

/// What a job does.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "m::JobKind")]
pub enum JobKind {
    /// Write the chapter from its outline.
    Draft,
    /// Append to the chapter's content.
    Continue,
    /// Write the chapter anew.
    Rewrite,
    /// Improve the prose.
    Polish,
    /// Summarize a chapter.
    Summarize,
    /// Extract memory from a chapter.
    ExtractMemory,
    /// Validate a chapter.
    Validate,
    /// Import a manuscript.
    Import,
    /// Export a novel.
    Export,
}

/// Lifecycle of a job.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "m::JobStatus")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is running it.
    Running,
    /// Finished; its result is stored.
    Succeeded,
    /// Gave up; `error` says why. The chapter is as it was.
    Failed,
    /// Cancelled. The chapter is as it was.
    Cancelled,
}

/// A generation job: one request to write a chapter, and what happened to it.
pub struct GenerationJob(pub m::GenerationJob);

fn millis(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<i64> {
    Some((to? - from?).num_milliseconds())
}

/// A generation job: one request to write a chapter, and what happened to it.
#[Object]
impl GenerationJob {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// ID of the novel.
    async fn novel_id(&self) -> ID {
        to_id(self.0.novel_id)
    }
    /// ID of the chapter it writes.
    async fn chapter_id(&self) -> Option<ID> {
        opt_id(self.0.chapter_id)
    }
    /// The chapter it writes (as stored now).
    async fn chapter(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Chapter>> {
        let Some(id) = self.0.chapter_id else {
            return Ok(None);
        };
        let (s, actor) = call(ctx)?;
        s.story
            .chapter(&actor, id)
            .await
            .gql()
            .map(|c| Some(Chapter(c)))
    }
    /// What it does.
    async fn kind(&self) -> JobKind {
        self.0.kind.into()
    }
    /// Lifecycle status.
    async fn status(&self) -> JobStatus {
        self.0.status.into()
    }
    /// The author's instructions.
    async fn instructions(&self) -> &str {
        &self.0.input.instructions
    }
    /// Target length (words; CJK: characters).
    async fn target_words(&self) -> Option<i64> {
        self.0.input.target_words
    }
    /// The idempotency key it was requested with.
    async fn idempotency_key(&self) -> Option<&str> {
        self.0.idempotency_key.as_deref()
    }
    /// Provider that served it.
    async fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }
    /// Model that served it.
    async fn model(&self) -> Option<&str> {
        self.0.model.as_deref()
    }
    /// Whether a fallback model served it.
    async fn fallback_used(&self) -> bool {
        self.0.fallback_used
    }
    /// Prompt tokens used.
    async fn prompt_tokens(&self) -> i64 {
        self.0.prompt_tokens
    }
    /// Completion tokens used.
    async fn completion_tokens(&self) -> i64 {
        self.0.completion_tokens
    }
    /// When it was queued.
    async fn queued_at(&self) -> DateTime<Utc> {
        self.0.queued_at
    }
    /// When a worker (last) started it.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    /// When the first token arrived.
    async fn first_token_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_token_at
    }
    /// When it finished.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// Milliseconds from queueing to the first token.
    async fn time_to_first_token_ms(&self) -> Option<i64> {
        millis(Some(self.0.queued_at), self.0.first_token_at)
    }
    /// Milliseconds from queueing to the end.
    async fn duration_ms(&self) -> Option<i64> {
        millis(Some(self.0.queued_at), self.0.finished_at)
    }
    /// How many times a worker started it.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// Why it failed or was cancelled.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

connection!(
    GenerationJobConnection,
    GenerationJobEdge,
    GenerationJob,
    m::GenerationJob,
    "A page of generation jobs.",
    "A generation job in a page."
);

/// Input of `generateChapter`.
#[derive(InputObject)]
pub struct GenerateChapterInput {
    /// The chapter to write.
    pub chapter_id: ID,
    /// How to write it; default DRAFT.
    #[graphql(default_with = "GenerationKind::Draft")]
    pub kind: GenerationKind,
    /// Instructions for the writer.
    pub instructions: Option<String>,
    /// Target length (words; CJK: characters), 50 to 200,000; default the chapter's target, else 1,200.
    pub target_words: Option<i64>,
    /// Makes the request idempotent: the same key returns the same job.
    pub idempotency_key: Option<String>,
}

/// Result of `generateChapter`.
#[derive(SimpleObject)]
pub struct GenerateChapterPayload {
    /// The queued job (or the existing one for a repeated idempotency key).
    pub job: GenerationJob,
}

/// Input of `cancelGeneration`.
#[derive(InputObject)]
pub struct CancelGenerationInput {
    /// The job to cancel.
    pub job_id: ID,
}

/// Result of `cancelGeneration`.
#[derive(SimpleObject)]
pub struct CancelGenerationPayload {
    /// The job, CANCELLED unless it had already finished.
    pub job: GenerationJob,
}

fn generation(s: &Services) -> async_graphql::Result<&GenerationService> {
    s.generation().map_err(to_gql)
}

/// Generation queries.
#[derive(Default)]
pub struct GenerationQuery;

/// Generation queries.
#[Object]
impl GenerationQuery {
    /// A generation job by ID.
    async fn generation_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global ID of the job.")] id: ID,
    ) -> async_graphql::Result<GenerationJob> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        generation(s)?
            .job(&actor, id)
            .await
            .gql()
            .map(GenerationJob)
    }

    /// A novel's generation jobs, newest first.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn generation_jobs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel.")] novel_id: ID,
        #[graphql(desc = "Only jobs with this status.")] status: Option<JobStatus>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<GenerationJobConnection> {
        let (s, actor) = call(ctx)?;
        let novel = decode(&novel_id, "novelId")?;
        let req = page_request(first, after.as_deref())?;
        let page = generation(s)?
            .jobs(&actor, novel, status.map(Into::into), req)
            .await
            .gql()?;
        Ok(GenerationJobConnection::new(page, &req))
    }
}

/// Generation mutations.
#[derive(Default)]
pub struct GenerationMutation;

/// Generation mutations.
#[Object]
impl GenerationMutation {
    /// Asks for a chapter to be written; returns the queued job at once (subscribe to
    /// `chapterStream(jobId)` to watch it being written). The same `idempotencyKey`
    /// returns the same job.
    #[tracing::instrument(skip_all, name = "generateChapter")]
    async fn generate_chapter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to write.")] input: GenerateChapterInput,
    ) -> async_graphql::Result<GenerateChapterPayload> {
        let (s, actor) = call(ctx)?;
        let request = GenerateChapter {
            chapter_id: decode(&input.chapter_id, "chapterId")?,
            kind: input.kind.into(),
            instructions: input.instructions,
            target_words: input.target_words,
            idempotency_key: input.idempotency_key,
        };
        let job = generation(s)?
            .generate_chapter(&actor, request)
            .await
            .gql()?;
        Ok(GenerateChapterPayload {
            job: GenerationJob(job),
        })
    }

    /// Cancels a job: a queued job never runs; a running one stops within a second and
    /// leaves the chapter as it was.
    #[tracing::instrument(skip_all, name = "cancelGeneration")]
    async fn cancel_generation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job to cancel.")] input: CancelGenerationInput,
    ) -> async_graphql::Result<CancelGenerationPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.job_id, "jobId")?;
        let job = generation(s)?.cancel(&actor, id).await.gql()?;
        Ok(CancelGenerationPayload {
            job: GenerationJob(job),
        })
    }
}

/// The next piece of a chapter being written.
#[derive(SimpleObject)]
pub struct ChapterChunk {
    /// Position, from 1, increasing by 1.
    pub seq: i64,
    /// The text; the chunks concatenated are the generated text.
    pub text: String,
}

/// The job succeeded: the chapter is stored.
#[derive(SimpleObject)]
pub struct ChapterCompleted {
    /// Position (one past the last chunk).
    pub seq: i64,
    /// The job: model, usage, timings.
    pub job: GenerationJob,
    /// The stored chapter.
    pub chapter: Chapter,
}

/// The job failed or was cancelled: the chapter is as it was.
#[derive(SimpleObject)]
pub struct ChapterFailed {
    /// Position (one past the last chunk).
    pub seq: i64,
    /// The job.
    pub job: GenerationJob,
    /// `FAILED` or `CANCELLED`.
    pub status: JobStatus,
    /// Why.
    pub message: String,
}

/// One event of `chapterStream`.
#[derive(Union)]
pub enum ChapterStreamEvent {
    /// The next chunk.
    Chunk(ChapterChunk),
    /// The end: stored.
    Completed(Box<ChapterCompleted>),
    /// The end: failed or cancelled.
    Failed(Box<ChapterFailed>),
}

/// How long one wait for new chunks lasts before the job's status is checked again.
const POLL: Duration = Duration::from_secs(5);

struct Follow {
    guard: SubscriptionGuard,
    services: Services,
    actor: Actor,
    job: m::GenerationJob,
    after: u64,
    buffer: VecDeque<StreamEvent>,
    done: bool,
}

impl Follow {
    async fn next(&mut self) -> Option<async_graphql::Result<ChapterStreamEvent>> {
        if self.done {
            return None;
        }
        loop {
            if let Some(ev) = self.buffer.pop_front() {
                return Some(match ev {
                    StreamEvent::Chunk { seq, text } => {
                        self.after = seq;
                        self.guard.delivered(1);
                        Ok(ChapterStreamEvent::Chunk(ChapterChunk {
                            seq: seq as i64,
                            text,
                        }))
                    }
                    StreamEvent::End { seq, .. } => {
                        self.done = true;
                        self.end(seq).await
                    }
                });
            }
            let g = match self.services.generation() {
                Ok(g) => g,
                Err(e) => return Some(Err(to_gql(e))),
            };
            match g.stream(&self.job, self.after, POLL).await {
                Ok(events) if !events.is_empty() => self.buffer.extend(events),
                Ok(_) => {
                    // Nothing new: a job that ended long ago has an expired stream.
                    match g.job(&self.actor, self.job.id).await {
                        Ok(j) if j.status.is_final() => {
                            self.done = true;
                            return Some(self.end(self.after + 1).await);
                        }
                        Ok(_) => {}
                        Err(e) => return Some(Err(to_gql(e))),
                    }
                }
                Err(e) => return Some(Err(to_gql(e))),
            }
        }
    }

    async fn end(&self, seq: u64) -> async_graphql::Result<ChapterStreamEvent> {
        let g = self.services.generation().map_err(to_gql)?;
        let job = g.job(&self.actor, self.job.id).await.gql()?;
        let seq = seq as i64;
        if job.status == m::JobStatus::Succeeded
            && let Some(cid) = job.chapter_id
        {
            let chapter = self.services.story.chapter(&self.actor, cid).await.gql()?;
            return Ok(ChapterStreamEvent::Completed(Box::new(ChapterCompleted {
                seq,
                job: GenerationJob(job),
                chapter: Chapter(chapter),
            })));
        }
        let status = job.status.into();
        let message = job
            .error
            .clone()
            .unwrap_or_else(|| format!("the job is {}", job.status));
        Ok(ChapterStreamEvent::Failed(Box::new(ChapterFailed {
            seq,
            job: GenerationJob(job),
            status,
            message,
        })))
    }
}

/// Live generation.
#[derive(Default)]
pub struct GenerationSubscription;

/// Live generation.
#[Subscription]
impl GenerationSubscription {
    /// The chapter as it is written: `ChapterChunk`s in order (seq from 1), then one
    /// `ChapterCompleted` or `ChapterFailed`, then the subscription completes. `after`
    /// resumes after that chunk seq (0 = from the start). Needs read access to the job's
    /// novel; another tenant's job is NOT_FOUND.
    async fn chapter_stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job.")] job_id: ID,
        #[graphql(desc = "Resume after this chunk seq; default 0 (from the start).")] after: Option<
            i64,
        >,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ChapterStreamEvent>> + use<>>
    {
        let guard = SubscriptionGuard::acquire(ctx, "chapterStream")?;
        let (s, actor) = call(ctx)?;
        let id = decode(&job_id, "jobId")?;
        let after = match after {
            None => 0,
            Some(a) if a >= 0 => a as u64,
            Some(_) => {
                return Err(to_gql(znovel_domain::Error::invalid(
                    "after",
                    "must be 0 or more",
                )));
            }
        };
        let job = generation(s)?.job(&actor, id).await.gql()?;
        let follow = Follow {
            guard,
            services: s.clone(),
            actor,
            job,
            after,
            buffer: VecDeque::new(),
            done: false,
        };
        Ok(async_graphql::futures_util::stream::unfold(
            follow,
            |mut f| async move { f.next().await.map(|item| (item, f)) },
        ))
    }

    /// The status changes of a novel's generation jobs as they happen, from any server
    /// process: queued, running (again after a worker handed the job back), then
    /// succeeded, failed or cancelled. Live only: earlier changes are not replayed
    /// (`generationJobs` lists the current state). Needs read access to the novel;
    /// another tenant's novel is NOT_FOUND.
    async fn job_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel whose jobs to follow.")] novel_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<JobEvent>> + use<>> {
        let guard = SubscriptionGuard::acquire(ctx, "jobEvents")?;
        let (s, actor) = call(ctx)?;
        let novel = decode(&novel_id, "novelId")?;
        let g = generation(s)?.clone();
        let events = g.job_events(&actor, novel).await.gql()?;
        Ok(events.then(move |e| {
            // The stream owns this closure, so the slot is held until the stream drops.
            let _slot = &guard;
            let (g, actor) = (g.clone(), actor.clone());
            async move {
                let job = g.job(&actor, e.job_id).await.gql()?;
                Ok(JobEvent {
                    status: e.status.into(),
                    job: GenerationJob(job),
                })
            }
        }))
    }
}

/// A generation job changed status.
#[derive(SimpleObject)]
pub struct JobEvent {
    /// The status the job changed to.
    pub status: JobStatus,
    /// The job as it is now (its status may have moved on since).
    pub job: GenerationJob,
}
