//! Following a job's chapter stream: the chunks (and continuity issues) after the one a
//! client last saw, then one final event with the stored chapter (or why there is none).
//! The permission check and the polling live here, so every transport follows a job the
//! same way.

use super::generation::GenerationService;
use crate::auth::Actor;
use crate::error::{Error, StoreResultExt};
use crate::ids::JobId;
use crate::model::{Chapter, GenerationJob, JobStatus};
use crate::ports::StreamEvent;
use futures_core::stream::BoxStream;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::time::Duration;

/// How long one wait for new chunks lasts before the job's status is checked again (a
/// job that ended long ago has an expired stream and no end event to wait for).
pub const FOLLOW_POLL: Duration = Duration::from_secs(5);

/// One event of a followed chapter stream.
#[derive(Debug, Clone)]
pub enum ChapterStreamItem {
    /// The next piece of the chapter.
    Chunk {
        /// Position, from 1, increasing by 1.
        seq: u64,
        /// The text; the chunks concatenated are the generated text.
        text: String,
    },
    /// A continuity issue of the text streamed so far (after the chunk that completed
    /// the sentence causing it).
    Issue {
        /// Position, in the same numbering as chunks.
        seq: u64,
        /// The issue.
        issue: Box<crate::model::ValidationIssue>,
    },
    /// The job succeeded and the chapter is stored. Last event.
    Completed {
        /// One past the last chunk.
        seq: u64,
        /// The job as stored: model, usage, timings.
        job: Box<GenerationJob>,
        /// The stored chapter.
        chapter: Box<Chapter>,
    },
    /// The job failed or was cancelled; the chapter is as it was. Last event.
    Failed {
        /// One past the last chunk.
        seq: u64,
        /// The job as stored.
        job: Box<GenerationJob>,
        /// Why.
        message: String,
    },
}

/// A followed chapter stream: ends after its `Completed` or `Failed` event, or after an
/// error.
pub type ChapterStream = BoxStream<'static, Result<ChapterStreamItem, Error>>;

struct Follow {
    service: GenerationService,
    actor: Actor,
    job: GenerationJob,
    after: u64,
    buffer: VecDeque<StreamEvent>,
    done: bool,
}

impl GenerationService {
    /// Follows the chapter a job writes: every chunk after `after` (0 = from the start)
    /// in order, then one `Completed` or `Failed`. Needs read access to the job: another
    /// tenant's job is `NotFound`, checked before the first event.
    pub async fn follow(
        &self,
        actor: &Actor,
        job: JobId,
        after: u64,
    ) -> Result<ChapterStream, Error> {
        let job = self.job(actor, job).await?;
        let follow = Follow {
            service: self.clone(),
            actor: actor.clone(),
            job,
            after,
            buffer: VecDeque::new(),
            done: false,
        };
        Ok(futures_util::stream::unfold(follow, |mut f| async move {
            f.next().await.map(|item| (item, f))
        })
        .boxed())
    }
}

impl Follow {
    async fn next(&mut self) -> Option<Result<ChapterStreamItem, Error>> {
        if self.done {
            return None;
        }
        loop {
            if let Some(ev) = self.buffer.pop_front() {
                return Some(match ev {
                    StreamEvent::Chunk { seq, text } => {
                        self.after = seq;
                        Ok(ChapterStreamItem::Chunk { seq, text })
                    }
                    StreamEvent::Issue { seq, issue } => {
                        self.after = seq;
                        Ok(ChapterStreamItem::Issue { seq, issue })
                    }
                    StreamEvent::End { seq, .. } => {
                        self.done = true;
                        self.end(seq).await
                    }
                });
            }
            let events = self
                .service
                .read_stream(&self.job, self.after, FOLLOW_POLL)
                .await;
            match events {
                Ok(events) if !events.is_empty() => self.buffer.extend(events),
                Ok(_) => match self.service.job(&self.actor, self.job.id).await {
                    // Nothing new: a job that ended long ago has an expired stream.
                    Ok(j) if j.status.is_final() => {
                        self.done = true;
                        return Some(self.end(self.after + 1).await);
                    }
                    Ok(_) => {}
                    Err(e) => return Some(self.fail(e)),
                },
                Err(e) => return Some(self.fail(e)),
            }
        }
    }

    fn fail(&mut self, e: Error) -> Result<ChapterStreamItem, Error> {
        self.done = true;
        Err(e)
    }

    async fn end(&self, seq: u64) -> Result<ChapterStreamItem, Error> {
        let job = self.service.job(&self.actor, self.job.id).await?;
        if job.status == JobStatus::Succeeded
            && let Some(cid) = job.chapter_id
        {
            let chapter = self
                .service
                .store()
                .get_chapter(self.actor.tenant_id, cid)
                .await
                .or_not_found("chapter")?;
            return Ok(ChapterStreamItem::Completed {
                seq,
                job: Box::new(job),
                chapter: Box::new(chapter),
            });
        }
        let message = job
            .error
            .clone()
            .unwrap_or_else(|| format!("the job is {}", job.status));
        Ok(ChapterStreamItem::Failed {
            seq,
            job: Box::new(job),
            message,
        })
    }
}
