//! [`MemoryTokenStreams`], the in-process token streams.

use super::lock;
use crate::queue::TokenStreamOptions;
use crate::queue::codec::check_seq;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use znovel_domain::ids::{JobId, TenantId};
use znovel_domain::ports::{QueueError, StreamEvent, StreamReader, TokenStream};

/// How often a call sweeps every slot.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The in-process [`TokenStream`].
///
/// One slot per (tenant, job): the entries in `seq` order, when the slot expires, and a
/// [`watch`] channel bumped on every append that blocked `read`s wait on. A follower
/// ([`TokenStream::reader`]) instead leaves its task's waker in the slot when it finds
/// nothing new, in the same lock as its look: an append wakes (and clears) them all, and
/// nothing is subscribed, timed or boxed per entry. A reader of a stream that does not
/// exist yet creates an empty slot to wait on. Expiry is lazy: an
/// expired slot is dropped when next touched, and at most once a second any call sweeps
/// every slot that expired or is empty with no reader — no task per job, none at all.
///
/// Memory: at most [`TokenStreamOptions::max_entries`] entries per stream (an append past
/// it fails with `Internal`), and a stream lives at most its TTL
/// ([`TokenStreamOptions::default_ttl`] unless `expire` says otherwise).
#[derive(Debug)]
pub struct MemoryTokenStreams {
    options: TokenStreamOptions,
    state: Arc<Mutex<State>>,
}

type Key = (TenantId, JobId);

#[derive(Debug)]
struct State {
    slots: HashMap<Key, Slot>,
    last_sweep: Instant,
    /// The id of the next slot made.
    next_slot: u64,
}

#[derive(Debug)]
struct Slot {
    /// Tells a slot from the one it replaced under the same key.
    id: u64,
    events: Vec<StreamEvent>,
    expires_at: Instant,
    /// Bumped on every append; `read`s hold receivers.
    appended: watch::Sender<()>,
    /// The followers waiting for the next append: woken and cleared by it.
    waiting: Vec<Waker>,
    /// How many of `waiting` belong to followers that still exist.
    listening: usize,
    /// Bumped each time `waiting` is cleared, so a follower knows its place in it.
    round: u64,
}

impl Slot {
    fn new(id: u64, expires_at: Instant) -> Self {
        Self {
            id,
            events: Vec::new(),
            expires_at,
            appended: watch::Sender::new(()),
            waiting: Vec::new(),
            listening: 0,
            round: 0,
        }
    }

    /// Wakes every reader: the `read`s now, the followers' wakers are handed back to be
    /// woken once the lock is released.
    #[must_use = "wake the followers once the lock is released"]
    fn notify(&mut self) -> Vec<Waker> {
        self.appended.send_replace(());
        self.round += 1;
        self.listening = 0;
        let capacity = self.waiting.len();
        std::mem::replace(&mut self.waiting, Vec::with_capacity(capacity))
    }

    /// The entries after `after`, at most `max`; `None` when there is none.
    fn after(&self, after: u64, max: usize) -> Option<Vec<StreamEvent>> {
        let start = self.events.partition_point(|e| e.seq() <= after);
        let end = self.events.len().min(start.saturating_add(max));
        (start < end).then(|| self.events[start..end].to_vec())
    }

    fn is_ended(&self) -> bool {
        matches!(self.events.last(), Some(StreamEvent::End { .. }))
    }
}

impl State {
    /// The live slot of a stream, creating it when missing (or expired).
    fn slot(&mut self, key: Key, now: Instant, ttl: Duration) -> &mut Slot {
        if self.slots.get(&key).is_some_and(|s| s.expires_at <= now) {
            self.drop_slot(&key);
        }
        let next = &mut self.next_slot;
        self.slots.entry(key).or_insert_with(|| {
            *next += 1;
            Slot::new(*next, now + ttl)
        })
    }

    /// The live slot of a stream, if any.
    fn live(&mut self, key: &Key, now: Instant) -> Option<&mut Slot> {
        if self.slots.get(key)?.expires_at <= now {
            self.drop_slot(key);
            return None;
        }
        self.slots.get_mut(key)
    }

    /// Removes a slot, waking its readers so they look again.
    fn drop_slot(&mut self, key: &Key) {
        if let Some(mut slot) = self.slots.remove(key) {
            // Few wake here (an expiry); waking under the lock keeps this simple.
            slot.notify().into_iter().for_each(Waker::wake);
        }
    }

    /// At most once per [`SWEEP_EVERY`]: drops expired slots and empty unread ones.
    fn maybe_sweep(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_sweep) < SWEEP_EVERY {
            return;
        }
        self.last_sweep = now;
        let dead: Vec<_> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                s.expires_at <= now
                    || (s.events.is_empty() && s.appended.receiver_count() == 0 && s.listening == 0)
            })
            .map(|(key, _)| *key)
            .collect();
        for key in dead {
            self.drop_slot(&key);
        }
    }
}

impl MemoryTokenStreams {
    /// No streams yet.
    pub fn new(options: TokenStreamOptions) -> Self {
        Self {
            options,
            state: Arc::new(Mutex::new(State {
                slots: HashMap::new(),
                last_sweep: Instant::now(),
                next_slot: 0,
            })),
        }
    }

    /// How many streams are held (live or waiting to be swept), for metrics and tests.
    pub fn len(&self) -> usize {
        lock(&self.state).slots.len()
    }

    /// Whether no stream is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryTokenStreams {
    fn default() -> Self {
        Self::new(TokenStreamOptions::default())
    }
}

#[async_trait]
impl TokenStream for MemoryTokenStreams {
    async fn append(
        &self,
        tenant: TenantId,
        job: JobId,
        event: &StreamEvent,
    ) -> Result<(), QueueError> {
        let seq = check_seq(event)?;
        let now = Instant::now();
        let followers = {
            let mut state = lock(&self.state);
            state.maybe_sweep(now);
            let slot = state.slot((tenant, job), now, self.options.default_ttl);
            if slot.is_ended() || slot.events.last().is_some_and(|last| last.seq() >= seq) {
                tracing::debug!(%job, seq, "token stream append ignored (duplicate or after End)");
                return Ok(());
            }
            if slot.events.len() >= self.options.max_entries {
                return Err(QueueError::Internal(format!(
                    "token stream of job {job} is full ({} entries)",
                    self.options.max_entries
                )));
            }
            slot.events.push(event.clone());
            slot.notify()
        };
        // A thousand followers of one job: woken outside the lock they are about to take.
        followers.into_iter().for_each(Waker::wake);
        Ok(())
    }

    async fn read(
        &self,
        tenant: TenantId,
        job: JobId,
        after: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<StreamEvent>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        loop {
            let mut appended = {
                let now = Instant::now();
                let mut state = lock(&self.state);
                state.maybe_sweep(now);
                if let Some(events) = state
                    .live(&(tenant, job), now)
                    .and_then(|slot| slot.after(after, max))
                {
                    return Ok(events);
                }
                if now >= deadline {
                    return Ok(Vec::new());
                }
                let slot = state.slot((tenant, job), now, self.options.default_ttl);
                slot.appended.subscribe()
            };
            if tokio::time::timeout_at(deadline, appended.changed())
                .await
                .is_err()
            {
                return Ok(Vec::new());
            }
        }
    }

    async fn expire(&self, tenant: TenantId, job: JobId, ttl: Duration) -> Result<(), QueueError> {
        let now = Instant::now();
        let mut state = lock(&self.state);
        state.maybe_sweep(now);
        if ttl.is_zero() {
            state.drop_slot(&(tenant, job));
        } else if let Some(slot) = state.live(&(tenant, job), now) {
            slot.expires_at = now + ttl;
        }
        Ok(())
    }

    fn reader(&self, tenant: TenantId, job: JobId) -> Option<Box<dyn StreamReader>> {
        Some(Box::new(MemoryReader {
            state: self.state.clone(),
            key: (tenant, job),
            ttl: self.options.default_ttl,
            waiting: None,
        }))
    }
}

/// A follower of one in-process stream ([`TokenStream::reader`]).
struct MemoryReader {
    state: Arc<Mutex<State>>,
    key: Key,
    /// The TTL of a slot this reader makes to wait on.
    ttl: Duration,
    /// Where its waker is in the slot's `waiting`: slot id, round, index.
    waiting: Option<(u64, u64, usize)>,
}

impl StreamReader for MemoryReader {
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        after: u64,
        max: usize,
    ) -> Poll<Result<Vec<StreamEvent>, QueueError>> {
        if max == 0 {
            return Poll::Ready(Ok(Vec::new()));
        }
        let now = Instant::now();
        let mut state = lock(&self.state);
        state.maybe_sweep(now);
        let slot = state.slot(self.key, now, self.ttl);
        if let Some(events) = slot.after(after, max) {
            return Poll::Ready(Ok(events));
        }
        match self.waiting {
            // Still waiting from an earlier look: only a different task needs its waker put.
            Some((id, round, at)) if (id, round) == (slot.id, slot.round) => {
                if let Some(waker) = slot.waiting.get_mut(at)
                    && !waker.will_wake(cx.waker())
                {
                    waker.clone_from(cx.waker());
                }
            }
            _ => {
                self.waiting = Some((slot.id, slot.round, slot.waiting.len()));
                slot.waiting.push(cx.waker().clone());
                slot.listening += 1;
            }
        }
        Poll::Pending
    }
}

impl Drop for MemoryReader {
    /// Takes its waker back: a follower that left must not keep its task alive.
    fn drop(&mut self) {
        let Some((id, round, at)) = self.waiting else {
            return;
        };
        let mut state = lock(&self.state);
        if let Some(slot) = state.slots.get_mut(&self.key)
            && (slot.id, slot.round) == (id, round)
            && let Some(waker) = slot.waiting.get_mut(at)
        {
            *waker = Waker::noop().clone();
            slot.listening = slot.listening.saturating_sub(1);
        }
    }
}
