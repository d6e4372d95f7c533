//! [`MemoryTokenStreams`], the in-process token streams.

use super::lock;
use crate::queue::TokenStreamOptions;
use crate::queue::codec::check_seq;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use znovel_domain::ids::{JobId, TenantId};
use znovel_domain::ports::{QueueError, StreamEvent, TokenStream};

/// How often a call sweeps every slot.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The in-process [`TokenStream`].
///
/// One slot per (tenant, job): the entries in `seq` order, when the slot expires, and a
/// [`watch`] channel bumped on every append that blocked readers wait on. A reader of a
/// stream that does not exist yet creates an empty slot to wait on. Expiry is lazy: an
/// expired slot is dropped when next touched, and at most once a second any call sweeps
/// every slot that expired or is empty with no reader — no task per job, none at all.
///
/// Memory: at most [`TokenStreamOptions::max_entries`] entries per stream (an append past
/// it fails with `Internal`), and a stream lives at most its TTL
/// ([`TokenStreamOptions::default_ttl`] unless `expire` says otherwise).
#[derive(Debug)]
pub struct MemoryTokenStreams {
    options: TokenStreamOptions,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    slots: HashMap<(TenantId, JobId), Slot>,
    last_sweep: Instant,
}

#[derive(Debug)]
struct Slot {
    events: Vec<StreamEvent>,
    expires_at: Instant,
    /// Bumped on every append; readers hold receivers.
    appended: watch::Sender<()>,
}

impl Slot {
    fn new(expires_at: Instant) -> Self {
        Self {
            events: Vec::new(),
            expires_at,
            appended: watch::Sender::new(()),
        }
    }

    fn is_ended(&self) -> bool {
        matches!(self.events.last(), Some(StreamEvent::End { .. }))
    }
}

impl State {
    /// The live slot of a stream, creating it when missing (or expired).
    fn slot(&mut self, key: (TenantId, JobId), now: Instant, ttl: Duration) -> &mut Slot {
        if self.slots.get(&key).is_some_and(|s| s.expires_at <= now) {
            self.drop_slot(&key);
        }
        self.slots
            .entry(key)
            .or_insert_with(|| Slot::new(now + ttl))
    }

    /// The live slot of a stream, if any.
    fn live(&mut self, key: &(TenantId, JobId), now: Instant) -> Option<&mut Slot> {
        if self.slots.get(key)?.expires_at <= now {
            self.drop_slot(key);
            return None;
        }
        self.slots.get_mut(key)
    }

    /// Removes a slot, waking its readers so they look again.
    fn drop_slot(&mut self, key: &(TenantId, JobId)) {
        if let Some(slot) = self.slots.remove(key) {
            slot.appended.send_replace(());
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
                s.expires_at <= now || (s.events.is_empty() && s.appended.receiver_count() == 0)
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
            state: Mutex::new(State {
                slots: HashMap::new(),
                last_sweep: Instant::now(),
            }),
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
        slot.appended.send_replace(());
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
                if let Some(slot) = state.live(&(tenant, job), now) {
                    let start = slot.events.partition_point(|e| e.seq() <= after);
                    if start < slot.events.len() {
                        let end = slot.events.len().min(start.saturating_add(max));
                        return Ok(slot.events[start..end].to_vec());
                    }
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
}
