//! Following a job's chapter stream: the chunks (and continuity issues) after the one a
//! client last saw, then one final event with the stored chapter (or why there is none).
//! The permission check and the polling live here, so every transport follows a job the
//! same way.

use super::generation::GenerationService;
use crate::auth::Actor;
use crate::error::{Error, StoreResultExt};
use crate::ids::{JobId, TenantId};
use crate::model::{Chapter, GenerationJob, JobStatus};
use crate::ports::{QueueError, StreamEvent, StreamReader};
use futures_core::stream::BoxStream;
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How long a follower waits without a new entry before it checks the job's status (a
/// job that ended long ago has an expired stream and no end event to wait for).
pub const FOLLOW_POLL: Duration = Duration::from_secs(5);

/// The most entries one read of a followed stream takes.
const READ_MAX: usize = 256;

/// How long one read of a followed job's status (or of its stored chapter) answers every
/// follower of that job. A thousand idle subscribers of one job then cost one status read
/// per poll, not a thousand, and the end of a job reads its chapter once, not once per
/// subscriber.
pub const FOLLOW_READ_SHARED: Duration = Duration::from_secs(1);

/// Reads shared by everyone following the same job: one read at a time per key, and a
/// fresh enough answer is reused instead of read again (see [`FOLLOW_READ_SHARED`]).
#[derive(Clone, Default)]
pub(super) struct FollowReads {
    /// A job as stored.
    jobs: SharedReads<(TenantId, JobId), GenerationJob>,
    /// The chapter a job wrote, by the job.
    chapters: SharedReads<(TenantId, JobId), Chapter>,
}

/// One read at a time per key; callers arriving while it runs wait for it and take its
/// answer when `accept` says it will do. Keys nobody is reading are dropped as the map
/// grows, so it holds about the jobs being followed right now.
pub(super) struct SharedReads<K, V> {
    slots: Arc<Mutex<HashMap<K, Slot<V>>>>,
}

type Slot<V> = Arc<tokio::sync::Mutex<Option<(Instant, V)>>>;

impl<K, V> Clone for SharedReads<K, V> {
    fn clone(&self) -> Self {
        Self {
            slots: self.slots.clone(),
        }
    }
}

impl<K, V> Default for SharedReads<K, V> {
    fn default() -> Self {
        Self {
            slots: Arc::default(),
        }
    }
}

/// Past this many keys, the ones nobody is reading are dropped.
const SHARED_READ_KEYS: usize = 1024;

impl<K: Eq + Hash + Clone, V: Clone> SharedReads<K, V> {
    /// The value under `key`: the last one read, when `accept(read at, value)` takes it,
    /// else what `read` answers now (kept for the next caller; errors are not kept).
    pub(super) async fn get<F, Fut>(
        &self,
        key: K,
        accept: impl Fn(Instant, &V) -> bool,
        read: F,
    ) -> Result<V, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, Error>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if slots.len() >= SHARED_READ_KEYS {
                slots.retain(|_, s| Arc::strong_count(s) > 1);
            }
            slots.entry(key).or_default().clone()
        };
        let mut last = slot.lock().await;
        if let Some((at, v)) = last.as_ref()
            && accept(*at, v)
        {
            return Ok(v.clone());
        }
        let v = read().await?;
        *last = Some((Instant::now(), v.clone()));
        Ok(v)
    }
}

/// Whether a value read at `at` is recent enough to share.
fn fresh(at: Instant) -> bool {
    at.elapsed() < FOLLOW_READ_SHARED
}

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
    /// The job's token stream, followed with one registration for the whole follow.
    reader: Box<dyn StreamReader>,
    /// Fires [`FOLLOW_POLL`] after it was last set: armed once per period, not per
    /// entry (a chunk would otherwise register and cancel a timer).
    idle: Pin<Box<Sleep>>,
    /// Whether an entry arrived since `idle` was last set.
    heard: bool,
}

impl GenerationService {
    /// The job as stored, read once for all of its followers while `accept` takes the
    /// last read.
    async fn followed_job(
        &self,
        actor: &Actor,
        id: JobId,
        accept: impl Fn(Instant, &GenerationJob) -> bool,
    ) -> Result<GenerationJob, Error> {
        self.follow_reads
            .jobs
            .get((actor.tenant_id, id), accept, || self.job(actor, id))
            .await
    }

    /// Follows the chapter a job writes: every chunk after `after` (0 = from the start)
    /// in order, then one `Completed` or `Failed`. Needs read access to the job: another
    /// tenant's job is `NotFound`, checked before the first event.
    pub async fn follow(
        &self,
        actor: &Actor,
        job: JobId,
        after: u64,
    ) -> Result<ChapterStream, Error> {
        // A reconnect storm resubscribes thousands of followers of a few jobs at once:
        // one read per job serves them all.
        let job = self.followed_job(actor, job, |at, _| fresh(at)).await?;
        let follow = Follow {
            service: self.clone(),
            actor: actor.clone(),
            reader: self.stream_reader(&job),
            job,
            after,
            buffer: VecDeque::new(),
            done: false,
            idle: Box::pin(tokio::time::sleep(FOLLOW_POLL)),
            heard: false,
        };
        // Boxed: the state moves in and out of each item's future, a pointer not a struct.
        Ok(
            futures_util::stream::unfold(Box::new(follow), |mut f| async move {
                f.next().await.map(|item| (item, f))
            })
            .boxed(),
        )
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
            match self.wait().await {
                Some(Ok(events)) => self.buffer.extend(events),
                // Nothing new for a while: a job that ended long ago has an expired stream.
                None => match self.status(|at, _| fresh(at)).await {
                    Ok(j) if j.status.is_final() => {
                        self.done = true;
                        return Some(self.end(self.after + 1).await);
                    }
                    Ok(_) => {}
                    Err(e) => return Some(self.fail(e)),
                },
                Some(Err(e)) => return Some(self.fail(e.into())),
            }
        }
    }

    /// The next entries, or `None` once [`FOLLOW_POLL`] passed without one.
    async fn wait(&mut self) -> Option<Result<Vec<StreamEvent>, QueueError>> {
        std::future::poll_fn(|cx| {
            if let Poll::Ready(read) = self.reader.poll_read(cx, self.after, READ_MAX) {
                self.heard = true;
                return Poll::Ready(Some(read));
            }
            loop {
                ready!(self.idle.as_mut().poll(cx));
                self.idle.as_mut().reset(Instant::now() + FOLLOW_POLL);
                if !std::mem::take(&mut self.heard) {
                    return Poll::Ready(None);
                }
            }
        })
        .await
    }

    fn fail(&mut self, e: Error) -> Result<ChapterStreamItem, Error> {
        self.done = true;
        Err(e)
    }

    /// The job as stored (a read shared with its other followers). Takes `&mut self`
    /// only so the future is `Send` without the reader being `Sync`.
    async fn status(
        &mut self,
        accept: impl Fn(Instant, &GenerationJob) -> bool,
    ) -> Result<GenerationJob, Error> {
        self.service
            .followed_job(&self.actor, self.job.id, accept)
            .await
    }

    async fn end(&mut self, seq: u64) -> Result<ChapterStreamItem, Error> {
        // The stream has ended: only a final status will do (a shared read from before the
        // job ended would not).
        let job = self.status(|_, j| j.status.is_final()).await?;
        if job.status == JobStatus::Succeeded
            && let Some(cid) = job.chapter_id
        {
            let tenant = self.actor.tenant_id;
            let store = self.service.store();
            let chapter = self
                .service
                .follow_reads
                .chapters
                .get(
                    (tenant, job.id),
                    |at, _| fresh(at),
                    || async move { store.get_chapter(tenant, cid).await.or_not_found("chapter") },
                )
                .await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A read that takes a moment and counts how often it ran.
    async fn counted(reads: &AtomicUsize, value: u32) -> Result<u32, Error> {
        reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(value)
    }

    #[tokio::test]
    async fn followers_of_one_job_share_one_read() {
        let shared = SharedReads::<u32, u32>::default();
        let reads = AtomicUsize::new(0);
        let answers = futures_util::future::join_all(
            (0..200).map(|_| shared.get(7, |at, _| fresh(at), || counted(&reads, 42))),
        )
        .await;
        assert!(answers.iter().all(|a| matches!(a, Ok(42))));
        assert_eq!(reads.load(Ordering::SeqCst), 1, "200 followers, one read");
        // Another job is its own read.
        assert_eq!(
            shared
                .get(8, |at, _| fresh(at), || counted(&reads, 5))
                .await
                .ok(),
            Some(5)
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_answer_or_an_error_is_read_again() {
        let shared = SharedReads::<u32, u32>::default();
        let reads = AtomicUsize::new(0);
        let first = shared.get(1, |_, _| true, || counted(&reads, 1)).await;
        assert_eq!(first.ok(), Some(1));
        // The end of a stream wants a final status: the last read does not say so.
        let end = shared.get(1, |_, v| *v == 2, || counted(&reads, 2)).await;
        assert_eq!(end.ok(), Some(2));
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // A failed read is not kept: the next caller reads again.
        let failed = shared
            .get(
                3,
                |_, _| true,
                || async { Err::<u32, _>(Error::Unavailable("database down".into())) },
            )
            .await;
        assert!(failed.is_err());
        let again = shared.get(3, |_, _| true, || counted(&reads, 3)).await;
        assert_eq!(again.ok(), Some(3));
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn keys_nobody_reads_are_dropped_as_the_map_grows() {
        let shared = SharedReads::<usize, usize>::default();
        for k in 0..SHARED_READ_KEYS * 3 {
            shared
                .get(k, |_, _| true, || async move { Ok(k) })
                .await
                .ok();
        }
        let held = shared
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        assert!(held <= SHARED_READ_KEYS, "{held} keys kept");
    }
}
