//! Live fan-out of token streams inside one process: one pub/sub connection, one [`Hub`]
//! per stream someone is reading, one task for all of them.
//!
//! Every append is announced by the append script on the channel named like the stream
//! key (payload: the entry's JSON; `x{ms}` announces an `expire`). A hub subscribes to
//! its channel on the first read that has to wait, caches the announced entries (a
//! contiguous run, at most [`CACHE_MAX`]) and bumps a [`watch`] channel that its blocked
//! readers wait on. So a blocked reader holds no Redis connection, wakes within
//! milliseconds of the append, and — once the hub's cache is *anchored* (below) — is
//! served from memory: a thousand readers of one job cost one announcement per entry,
//! not a thousand `XRANGE`s.
//!
//! Anchoring: right after its subscription is confirmed, a reader's `XRANGE` after `a`
//! that returns fewer than it asked for lists every entry after `a` that exists; every
//! later one is announced to the hub. The cache then holds "every entry after `base`"
//! (`base` = `a`) and a reader caught up with it can wait without asking Redis. A lost
//! announcement (seq gap), a reconnection or an expiry drops the anchor; readers then
//! fall back to `XRANGE` until one re-anchors it. While the connection is down, readers
//! poll every [`POLL_EVERY`]. Hubs nobody has read for [`LINGER`] are unsubscribed and
//! dropped by the task's sweep.

use crate::queue::codec::decode_event;
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use znovel_domain::ports::StreamEvent;

/// Most entries a hub caches.
const CACHE_MAX: usize = 4096;
/// How long an unread hub stays subscribed.
const LINGER: Duration = Duration::from_secs(15);
/// How often the task sweeps unread hubs.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How often a waiting reader polls while the pub/sub connection is down.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(100);
/// Bound on connecting and on a (un)subscribe round trip.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The hubs of one process and their pub/sub connection.
pub(crate) struct Live {
    client: ::redis::Client,
    /// Generation of the current pub/sub connection; 0 while disconnected.
    epoch: AtomicU64,
    state: Mutex<State>,
    /// Serializes (un)subscriptions, so a sweep's `UNSUBSCRIBE` never lands after a new
    /// hub's `SUBSCRIBE` of the same channel.
    subscribing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    sink: Option<::redis::aio::PubSubSink>,
    hubs: HashMap<String, Slot>,
}

struct Slot {
    hub: Arc<Hub>,
    readers: usize,
    idle_since: Instant,
}

/// One stream's subscription, cache and wake-up channel.
pub(crate) struct Hub {
    channel: String,
    /// Epoch of the connection its subscription was confirmed on (0: none).
    subscribed: AtomicU64,
    cache: Mutex<Cache>,
    /// Bumped on every announcement and on (re)connection.
    pub(crate) version: watch::Sender<u64>,
}

#[derive(Default)]
struct Cache {
    /// A contiguous run of announced entries.
    events: VecDeque<StreamEvent>,
    /// `Some(base)`: every entry after `base` exists in `events` (which then starts at
    /// `base + 1`) or is yet to be announced.
    anchor: Option<u64>,
    expires_at: Option<Instant>,
}

/// What a hub's cache knows about the entries after some seq.
pub(crate) enum Lookup {
    /// Some of them, in order.
    Hit(Vec<StreamEvent>),
    /// None exist yet (the cache is anchored at or before it).
    CaughtUp,
    /// Ask Redis.
    Miss,
}

impl Cache {
    fn expire_if_due(&mut self, now: Instant) {
        if self.expires_at.is_some_and(|at| at <= now) {
            *self = Self::default();
        }
    }

    fn push(&mut self, event: StreamEvent) {
        self.expire_if_due(Instant::now());
        let seq = event.seq();
        let next = match (self.events.back(), self.anchor) {
            (Some(last), _) => last.seq() + 1,
            (None, Some(base)) => base + 1,
            (None, None) => seq,
        };
        if seq < next {
            return; // announced twice, or before the anchor
        }
        if seq > next {
            // A lost announcement (or a writer that skipped a seq): restart the run.
            self.events.clear();
            self.anchor = None;
        }
        self.events.push_back(event);
        if self.events.len() > CACHE_MAX {
            self.events.pop_front();
            if let Some(base) = self.anchor.as_mut() {
                *base += 1;
            }
        }
    }

    fn lookup(&mut self, after: u64, max: usize) -> Lookup {
        self.expire_if_due(Instant::now());
        let first = match (self.events.front(), self.anchor) {
            (Some(first), _) => first.seq(),
            (None, Some(base)) if after >= base => return Lookup::CaughtUp,
            (None, _) => return Lookup::Miss,
        };
        let Some(wanted) = after.checked_add(1) else {
            return Lookup::CaughtUp;
        };
        if wanted < first {
            return Lookup::Miss;
        }
        let skip = usize::try_from(wanted - first).unwrap_or(usize::MAX);
        if skip < self.events.len() {
            return Lookup::Hit(self.events.iter().skip(skip).take(max).cloned().collect());
        }
        if self.anchor.is_some() {
            Lookup::CaughtUp
        } else {
            Lookup::Miss
        }
    }

    /// Anchors the cache with the complete answer `found` to "entries after `after`".
    fn anchor(&mut self, after: u64, found: &[StreamEvent]) {
        if self.anchor.is_some() {
            return;
        }
        let contiguous = found.windows(2).all(|w| w[1].seq() == w[0].seq() + 1);
        if !contiguous {
            return;
        }
        let base = found.first().map_or(after, |first| first.seq() - 1);
        let tail = found.last().map_or(base, StreamEvent::seq);
        let announced: Vec<StreamEvent> = self
            .events
            .iter()
            .filter(|e| e.seq() > tail)
            .cloned()
            .collect();
        if announced
            .first()
            .is_some_and(|first| first.seq() != tail + 1)
        {
            return;
        }
        self.events = found.iter().cloned().chain(announced).collect();
        while self.events.len() > CACHE_MAX {
            self.events.pop_front();
        }
        self.anchor = Some(self.events.front().map_or(base, |first| first.seq() - 1));
    }
}

impl Hub {
    /// Looks the entries after `after` up in the cache.
    pub(crate) fn lookup(&self, after: u64, max: usize) -> Lookup {
        lock(&self.cache).lookup(after, max)
    }

    fn announce(&self, payload: &[u8]) {
        {
            let mut cache = lock(&self.cache);
            if let Some(ms) = payload.strip_prefix(b"x") {
                let ms = std::str::from_utf8(ms)
                    .ok()
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(0);
                cache.expires_at = Some(Instant::now() + Duration::from_millis(ms));
            } else {
                match decode_event(payload) {
                    Ok(event) => cache.push(event),
                    Err(e) => {
                        tracing::warn!(channel = %self.channel, error = %e, "bad announcement");
                        *cache = Cache::default();
                    }
                }
            }
        }
        self.version.send_modify(|v| *v += 1);
    }

    fn unanchor(&self) {
        lock(&self.cache).anchor = None;
        self.version.send_modify(|v| *v += 1);
    }
}

/// A reader's hold on a hub (keeps it from being swept).
pub(crate) struct HubRef {
    live: Arc<Live>,
    hub: Arc<Hub>,
}

impl HubRef {
    /// The hub.
    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }
}

impl Drop for HubRef {
    fn drop(&mut self) {
        let mut state = lock(&self.live.state);
        if let Some(slot) = state.hubs.get_mut(&self.hub.channel)
            && Arc::ptr_eq(&slot.hub, &self.hub)
        {
            slot.readers = slot.readers.saturating_sub(1);
            slot.idle_since = Instant::now();
        }
    }
}

impl Live {
    /// The hubs of `client`, and the task that feeds them (abort it to stop).
    pub(crate) fn start(client: ::redis::Client) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let live = Arc::new(Self {
            client,
            epoch: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            subscribing: tokio::sync::Mutex::new(()),
        });
        let task = tokio::spawn(Arc::clone(&live).run());
        (live, task)
    }

    /// The hub of `channel`, created if needed.
    pub(crate) fn hub(self: &Arc<Self>, channel: &str) -> HubRef {
        let mut state = lock(&self.state);
        let slot = state
            .hubs
            .entry(channel.to_owned())
            .or_insert_with(|| Slot {
                hub: Arc::new(Hub {
                    channel: channel.to_owned(),
                    subscribed: AtomicU64::new(0),
                    cache: Mutex::new(Cache::default()),
                    version: watch::Sender::new(0),
                }),
                readers: 0,
                idle_since: Instant::now(),
            });
        slot.readers += 1;
        HubRef {
            live: Arc::clone(self),
            hub: Arc::clone(&slot.hub),
        }
    }

    /// The epoch the hub is subscribed on, if that is the current connection.
    pub(crate) fn subscribed(&self, hub: &Hub) -> Option<u64> {
        let epoch = self.epoch.load(Ordering::Acquire);
        (epoch != 0 && hub.subscribed.load(Ordering::Acquire) == epoch).then_some(epoch)
    }

    /// Subscribes the hub on the current connection; false while disconnected.
    pub(crate) async fn subscribe(&self, hub: &Hub) -> bool {
        let _serial = self.subscribing.lock().await;
        if self.subscribed(hub).is_some() {
            return true;
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let Some(mut sink) = lock(&self.state).sink.clone() else {
            return false;
        };
        match tokio::time::timeout(IO_TIMEOUT, sink.subscribe(&hub.channel)).await {
            Ok(Ok(())) => {
                hub.subscribed.store(epoch, Ordering::Release);
                true
            }
            _ => false,
        }
    }

    /// Anchors the hub's cache with a complete `XRANGE` answer made while subscribed on
    /// connection `epoch`.
    pub(crate) fn anchor(&self, hub: &Hub, epoch: u64, after: u64, found: &[StreamEvent]) {
        let mut cache = lock(&hub.cache);
        if self.epoch.load(Ordering::Acquire) == epoch
            && hub.subscribed.load(Ordering::Acquire) == epoch
        {
            cache.anchor(after, found);
        }
    }

    async fn run(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(50);
        let mut generation = 0_u64;
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            let pubsub = tokio::time::timeout(IO_TIMEOUT, self.client.get_async_pubsub()).await;
            let Ok(Ok(pubsub)) = pubsub else {
                tracing::warn!("token stream announcements: cannot connect, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                self.sweep().await;
                continue;
            };
            backoff = Duration::from_millis(50);
            generation += 1;
            let (sink, mut messages) = pubsub.split();
            lock(&self.state).sink = Some(sink);
            self.epoch.store(generation, Ordering::Release);
            self.wake_all();
            loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(message) => self.dispatch(&message),
                        None => break,
                    },
                    _ = sweep.tick() => self.sweep().await,
                }
            }
            self.epoch.store(0, Ordering::Release);
            lock(&self.state).sink = None;
            self.wake_all();
            tracing::warn!("token stream announcements: connection lost, reconnecting");
        }
    }

    fn dispatch(&self, message: &::redis::Msg) {
        let hub = lock(&self.state)
            .hubs
            .get(message.get_channel_name())
            .map(|slot| Arc::clone(&slot.hub));
        if let Some(hub) = hub {
            hub.announce(message.get_payload_bytes());
        }
    }

    /// Drops every anchor (announcements may have been lost) and wakes every reader.
    fn wake_all(&self) {
        let hubs: Vec<Arc<Hub>> = lock(&self.state)
            .hubs
            .values()
            .map(|slot| Arc::clone(&slot.hub))
            .collect();
        for hub in hubs {
            hub.unanchor();
        }
    }

    /// Unsubscribes and drops hubs unread for [`LINGER`].
    async fn sweep(&self) {
        let _serial = self.subscribing.lock().await;
        let now = Instant::now();
        let (idle, sink) = {
            let mut state = lock(&self.state);
            let idle: Vec<String> = state
                .hubs
                .iter()
                .filter(|(_, s)| s.readers == 0 && now.duration_since(s.idle_since) >= LINGER)
                .map(|(channel, _)| channel.clone())
                .collect();
            for channel in &idle {
                state.hubs.remove(channel);
            }
            (idle, state.sink.clone())
        };
        if let (false, Some(mut sink)) = (idle.is_empty(), sink) {
            let done = tokio::time::timeout(IO_TIMEOUT, sink.unsubscribe(&idle)).await;
            if !matches!(done, Ok(Ok(()))) {
                tracing::debug!("token stream announcements: unsubscribe failed");
            }
        }
    }
}
