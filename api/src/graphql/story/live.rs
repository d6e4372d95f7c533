//! Live generation: the `chapterStream` subscription (the chapter as it is written —
//! ordered chunks with the continuity issues found as sentences end, then a final `ChapterCompleted` or `ChapterFailed`; `after` resumes
//! from any server process) and `jobEvents` (a novel's job status changes). Following a
//! job is the domain's [`GenerationService::follow`]; this module only maps types.

use super::chapter::Chapter;
use super::generation::{GenerationJob, JobStatus};
use crate::graphql::call;
use crate::graphql::context::SubscriptionGuard;
use crate::graphql::errors::{ResultExt, to_gql};
use crate::graphql::fanout::{DirectChunks, Routed};
use crate::graphql::ids::decode;
use crate::graphql::validation::ValidationIssue;
use async_graphql::futures_util::future::Either;
use async_graphql::futures_util::{Stream, StreamExt};
use async_graphql::{Context, ID, SimpleObject, Subscription, Union};
use znovel_domain::services::{ChapterStreamItem, GenerationService, Services};

fn generation(s: &Services) -> async_graphql::Result<&GenerationService> {
    s.generation().map_err(to_gql)
}

/// The next piece of a chapter being written.
#[derive(SimpleObject)]
pub struct ChapterChunk {
    /// Position, from 1, increasing by 1.
    pub seq: i64,
    /// The text; the chunks concatenated are the generated text.
    pub text: String,
}

/// A continuity issue in the text streamed so far, right after the chunk that ended the
/// sentence causing it; the chapter's stored report (`Chapter.validation`) has it too.
#[derive(SimpleObject)]
pub struct ChapterIssue {
    /// Position, in the same numbering as the chunks (`after` resumes past it too).
    pub seq: i64,
    /// The issue; its span is in code points of the chapter's content.
    pub issue: ValidationIssue,
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
    /// A continuity issue of the text so far.
    Issue(Box<ChapterIssue>),
    /// The end: stored.
    Completed(Box<ChapterCompleted>),
    /// The end: failed or cancelled.
    Failed(Box<ChapterFailed>),
}

impl ChapterStreamEvent {
    /// Maps a domain stream item to its GraphQL event.
    fn from_item(item: ChapterStreamItem) -> Self {
        match item {
            ChapterStreamItem::Chunk { seq, text } => Self::Chunk(ChapterChunk {
                seq: seq as i64,
                text,
            }),
            ChapterStreamItem::Issue { seq, issue } => Self::Issue(Box::new(ChapterIssue {
                seq: seq as i64,
                issue: ValidationIssue::from(*issue),
            })),
            ChapterStreamItem::Completed { seq, job, chapter } => {
                Self::Completed(Box::new(ChapterCompleted {
                    seq: seq as i64,
                    job: GenerationJob(*job),
                    chapter: Chapter(*chapter),
                }))
            }
            ChapterStreamItem::Failed { seq, job, message } => {
                Self::Failed(Box::new(ChapterFailed {
                    seq: seq as i64,
                    status: job.status.into(),
                    job: GenerationJob(*job),
                    message,
                }))
            }
        }
    }
}

/// Live generation.
#[derive(Default)]
pub struct GenerationSubscription;

/// Live generation.
#[Subscription]
impl GenerationSubscription {
    /// The chapter as it is written: `ChapterChunk`s in order (seq from 1), with a
    /// `ChapterIssue` (in the same seq numbering) after the chunk that ends a sentence
    /// contradicting the story so far, then one `ChapterCompleted` or `ChapterFailed`,
    /// then the subscription completes. `after` resumes after that seq (0 = from the
    /// start). Needs read access to the job's
    /// novel; another tenant's job is NOT_FOUND.
    async fn chapter_stream(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job.")] job_id: ID,
        #[graphql(
            desc = "Resume after this seq (of a chunk or an issue); default 0 (from the start)."
        )]
        after: Option<i64>,
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
        let events = generation(s)?.follow(&actor, id, after).await.gql()?;
        // Over graphql-transport-ws with a plain chunk selection, the connection follows
        // the job itself and writes chunks as shared bytes; everything else goes through
        // async-graphql.
        if let Some(direct) = DirectChunks::for_field(ctx, id) {
            let events = events.map(|item| match item {
                Ok(ChapterStreamItem::Chunk { seq, text }) => Routed::Chunk { seq, text },
                other => Routed::Other(other),
            });
            let others = direct.detach(events, guard);
            return Ok(Either::Left(
                others.map(|item| item.gql().map(ChapterStreamEvent::from_item)),
            ));
        }
        // The stream owns this closure, so the slot is held until the stream drops.
        Ok(Either::Right(events.map(move |item| {
            let item = item.gql()?;
            if matches!(item, ChapterStreamItem::Chunk { .. }) {
                guard.delivered(1);
            }
            Ok(ChapterStreamEvent::from_item(item))
        })))
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
