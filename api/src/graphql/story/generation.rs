//! Chapter generation: `generateChapter` (returns the queued job at once),
//! `cancelGeneration`, `generationJob(s)`. The live subscriptions are in `live.rs`.

use super::chapter::Chapter;
use crate::graphql::call;
use crate::graphql::connection::{connection, cost, page_request};
use crate::graphql::errors::{ResultExt, to_gql};
use crate::graphql::ids::{decode, opt_id, to_id};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use znovel_domain::model as m;
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
    /// When the first token arrived. A running job records it within a second of its
    /// first chunk (the time is that of the chunk itself).
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
    /// How far the job has come, for jobs that report it: an IMPORT counts the chapters
    /// it created of all the manuscript's, a batch (`generateChapters`) the chapters of
    /// its range written and remembered (updated after each chapter, announced in
    /// `jobEvents` as RUNNING); null for other jobs.
    async fn progress(&self) -> Option<super::JobProgress> {
        self.0.progress.map(|p| super::JobProgress {
            done: p.done,
            total: p.total,
        })
    }
    // The gateway's only: the story-gen subgraph leaves this field out of its schema (the
    // file subgraph serves it; see `graphql::subgraph`).
    /// The file of the job: the book an EXPORT produced, or the manuscript an IMPORT
    /// reads; null for other jobs and until an export has finished.
    async fn file(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::files::StoredFile>> {
        if !matches!(self.0.kind, m::JobKind::Export | m::JobKind::Import) {
            return Ok(None);
        }
        let (s, actor) = call(ctx)?;
        Ok(s.files
            .for_job(&actor, self.0.id)
            .await
            .gql()?
            .map(super::files::StoredFile))
    }
    /// What the model was given from the story's memory for this chapter (recalled
    /// passages and records, best first), so an author sees why it wrote what it wrote.
    /// Empty for jobs that recall nothing and until the job's prompt is built.
    async fn context(&self) -> Vec<crate::graphql::retrieval::RecallHit> {
        self.0
            .context
            .iter()
            .cloned()
            .map(crate::graphql::retrieval::RecallHit)
            .collect()
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
    /// REWRITE only: ids of issues of the chapter's current `validation` report
    /// (`ValidationIssue.id`) that the rewrite is to fix; the model is given each issue.
    pub fix_issues: Option<Vec<ID>>,
}

/// Result of `generateChapter`.
#[derive(SimpleObject)]
pub struct GenerateChapterPayload {
    /// The queued job (or the existing one for a repeated idempotency key).
    pub job: GenerationJob,
}

/// When a batch stops early.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum StopOn {
    /// A chapter that fails stops the rest of the batch (the parent job FAILS, naming it).
    Error,
    /// Never: a failed chapter is reported in the parent's `error`; the rest are written.
    Never,
}

/// Input of `generateChapters`.
#[derive(InputObject)]
pub struct GenerateChaptersInput {
    /// The novel.
    pub novel_id: ID,
    /// First chapter seq to write (inclusive). A DRAFT creates the chapters of the range
    /// that do not exist; a DRAFT or REWRITE drafts a missing outline from the novel's
    /// plan (its description, its volumes' summaries) first.
    pub from_seq: i32,
    /// Last chapter seq to write (inclusive); at most 200 chapters per batch.
    pub to_seq: i32,
    /// Target length of each chapter (words; CJK: characters), 50 to 200,000; default each chapter's target, else 1,200.
    pub target_words: Option<i64>,
    /// How to write each chapter; default DRAFT.
    #[graphql(default_with = "GenerationKind::Draft")]
    pub kind: GenerationKind,
    /// Makes the request idempotent: the same key returns the same batch.
    pub idempotency_key: Option<String>,
    /// When the batch stops early; default ERROR.
    #[graphql(default_with = "StopOn::Error")]
    pub stop_on: StopOn,
}

/// Result of `generateChapters`.
#[derive(SimpleObject)]
pub struct GenerateChaptersPayload {
    /// The parent job: it writes the chapters in order, one child job each (all in
    /// `generationJobs` and `jobEvents`); cancelling it stops the rest.
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

    /// What `generateChapters` with this input would cost — tokens (writing, outlines
    /// drafted, memory), time, chapters created — without starting it; the same input
    /// errors as `generateChapters` (a range it would refuse is refused here). Needs
    /// MEMBER.
    async fn estimate_batch(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The batch, as `generateChapters` would be given it.")]
        input: GenerateChaptersInput,
    ) -> async_graphql::Result<BatchEstimate> {
        let (s, actor) = call(ctx)?;
        let request = input.request()?;
        generation(s)?
            .estimate_batch(&actor, request)
            .await
            .gql()
            .map(Into::into)
    }
}

/// Where the speeds of an estimate come from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "znovel_domain::services::EstimateBasis")]
pub enum EstimateBasis {
    /// The novel's own recent jobs (their writing speed and memory time).
    History,
    /// Defaults (40 tokens/s, 1.5 s to the first token, 15 s to remember a chapter):
    /// the novel has no finished jobs to learn from yet.
    Defaults,
}

/// One chapter of a batch estimate.
#[derive(SimpleObject)]
pub struct ChapterEstimate {
    /// Its seq.
    pub seq: i32,
    /// Its title, when the chapter exists.
    pub title: Option<String>,
    /// Whether the chapter exists (else the batch creates it, DRAFT only).
    pub exists: bool,
    /// Whether the batch drafts its outline from the novel's plan first.
    pub drafts_outline: bool,
    /// Its target length (words; CJK: characters).
    pub target_words: i64,
    /// Prompt tokens of writing it (and of drafting its outline).
    pub prompt_tokens: i64,
    /// Completion tokens of writing it (and of drafting its outline).
    pub completion_tokens: i64,
}

/// What a batch would cost before it starts: tokens, time, chapters created and
/// outlines drafted.
#[derive(SimpleObject)]
pub struct BatchEstimate {
    /// Chapters it writes.
    pub chapters: i32,
    /// Chapters it creates (a DRAFT of seqs that do not exist yet).
    pub chapters_to_create: i32,
    /// Outlines it drafts from the novel's plan before writing.
    pub outlines_to_draft: i32,
    /// Prompt tokens of writing the chapters and drafting the outlines.
    pub prompt_tokens: i64,
    /// Completion tokens of the same.
    pub completion_tokens: i64,
    /// Tokens the story memory spends reading the chapters written.
    pub memory_tokens: i64,
    /// All of the above: what the batch takes from the daily token quota.
    pub total_tokens: i64,
    /// What the tenant has left of today's token quota.
    pub tokens_left_today: i64,
    /// Whether `totalTokens` fits in it (a batch that does not fit stops when the quota
    /// runs out).
    pub fits_quota: bool,
    /// Expected wall-clock time in seconds: each chapter written (and its outline
    /// drafted), then remembered, in turn.
    pub seconds: f64,
    /// Writing speed assumed: completion tokens a second after the first.
    pub tokens_per_second: f64,
    /// Seconds assumed from a job's start to its first token.
    pub first_token_seconds: f64,
    /// Seconds assumed to remember one chapter.
    pub memory_seconds: f64,
    /// Where the speeds come from.
    pub basis: EstimateBasis,
    /// How many of the novel's finished jobs they were measured on.
    pub sample_jobs: i32,
    /// Chapter by chapter, in order.
    pub per_chapter: Vec<ChapterEstimate>,
}

impl From<znovel_domain::services::BatchEstimate> for BatchEstimate {
    fn from(e: znovel_domain::services::BatchEstimate) -> Self {
        Self {
            chapters: e.chapters,
            chapters_to_create: e.chapters_to_create,
            outlines_to_draft: e.outlines_to_draft,
            prompt_tokens: e.prompt_tokens,
            completion_tokens: e.completion_tokens,
            memory_tokens: e.memory_tokens,
            total_tokens: e.total_tokens,
            tokens_left_today: e.tokens_left_today,
            fits_quota: e.fits_quota,
            seconds: (e.seconds * 10.0).round() / 10.0,
            tokens_per_second: (e.tokens_per_second * 10.0).round() / 10.0,
            first_token_seconds: (e.first_token_seconds * 100.0).round() / 100.0,
            memory_seconds: (e.memory_seconds * 10.0).round() / 10.0,
            basis: e.basis.into(),
            sample_jobs: e.sample_jobs,
            per_chapter: e
                .per_chapter
                .into_iter()
                .map(|c| ChapterEstimate {
                    seq: c.seq,
                    title: c.title,
                    exists: c.exists,
                    drafts_outline: c.drafts_outline,
                    target_words: c.target_words,
                    prompt_tokens: c.prompt_tokens,
                    completion_tokens: c.completion_tokens,
                })
                .collect(),
        }
    }
}

impl GenerateChaptersInput {
    fn request(self) -> async_graphql::Result<znovel_domain::services::GenerateChapters> {
        Ok(znovel_domain::services::GenerateChapters {
            novel_id: decode(&self.novel_id, "novelId")?,
            from_seq: self.from_seq,
            to_seq: self.to_seq,
            target_words: self.target_words,
            kind: self.kind.into(),
            idempotency_key: self.idempotency_key,
            stop_on_error: self.stop_on == StopOn::Error,
        })
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
            fix_issues: input
                .fix_issues
                .unwrap_or_default()
                .into_iter()
                .map(|id| id.0)
                .collect(),
        };
        let job = generation(s)?
            .generate_chapter(&actor, request)
            .await
            .gql()?;
        Ok(GenerateChapterPayload {
            job: GenerationJob(job),
        })
    }

    /// Writes chapters `fromSeq..=toSeq` in order, each after the previous one is stored
    /// and remembered (creating missing chapters and drafting missing outlines from the
    /// novel's plan first; `estimateBatch` tells the cost before); returns the queued
    /// parent job at once. A crashed worker's batch resumes where it
    /// was (stored chapters are not written again); cancelling the parent stops the rest.
    #[tracing::instrument(skip_all, name = "generateChapters")]
    async fn generate_chapters(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to write.")] input: GenerateChaptersInput,
    ) -> async_graphql::Result<GenerateChaptersPayload> {
        let (s, actor) = call(ctx)?;
        let request = input.request()?;
        let job = generation(s)?
            .generate_chapters(&actor, request)
            .await
            .gql()?;
        Ok(GenerateChaptersPayload {
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
