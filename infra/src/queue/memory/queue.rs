//! [`MemoryQueue`], the in-process job queue.

use super::lock;
use crate::queue::{DeadLetter, QueueOptions};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use znovel_domain::ports::{Delivery, JobMessage, JobQueue, QueueError, QueueStats};

/// The in-process [`JobQueue`].
///
/// Every message gets an increasing id (its receipt). It is either waiting (`ready`,
/// FIFO), in flight (`in_flight`, with the time it was claimed), or released (handed back,
/// redelivered before the waiting ones). `claim` first takes in-flight messages idle for
/// the visibility timeout and released ones (by id), then waiting ones; when there is
/// nothing it sleeps until an `enqueue`/`release` wakes it (a [`Notify`]), the next
/// in-flight message times out, or `wait` ends.
#[derive(Debug)]
pub struct MemoryQueue {
    options: QueueOptions,
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// Every message not yet acked or dead-lettered, with its deliveries so far.
    messages: HashMap<u64, (JobMessage, u32)>,
    /// Never delivered, in enqueue order.
    ready: VecDeque<u64>,
    /// Handed back by `release`.
    released: BTreeSet<u64>,
    /// Delivered: when it was claimed (or last extended).
    in_flight: BTreeMap<u64, Instant>,
    dead: VecDeque<DeadLetter>,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new(options: QueueOptions) -> Self {
        Self {
            options,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        }
    }

    /// The newest dead letters, oldest first, at most `max`.
    pub async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let state = lock(&self.state);
        let skip = state.dead.len().saturating_sub(max);
        Ok(state.dead.iter().skip(skip).cloned().collect())
    }

    /// Takes up to `max` deliveries now; `Err(next)` when there are none, with the instant
    /// the next in-flight message times out.
    fn take(&self, max: usize) -> Result<Vec<Delivery>, Option<Instant>> {
        let vt = self.options.visibility_timeout;
        let now = Instant::now();
        let mut state = lock(&self.state);
        let state = &mut *state;
        let mut again: Vec<u64> = state
            .in_flight
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= vt)
            .map(|(id, _)| *id)
            .chain(state.released.iter().copied())
            .collect();
        again.sort_unstable();
        again.truncate(max);
        for id in &again {
            state.released.remove(id);
        }
        let fresh = max.saturating_sub(again.len()).min(state.ready.len());
        let ids: Vec<u64> = again
            .into_iter()
            .chain(state.ready.drain(..fresh))
            .collect();
        if ids.is_empty() {
            return Err(state.in_flight.values().min().map(|since| *since + vt));
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((message, count)) = state.messages.get_mut(&id) {
                *count += 1;
                state.in_flight.insert(id, now);
                out.push(Delivery {
                    message: message.clone(),
                    receipt: id.to_string(),
                    delivery_count: *count,
                });
            }
        }
        Ok(out)
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new(QueueOptions::default())
    }
}

/// The message id of a receipt.
fn receipt(delivery: &Delivery) -> Result<u64, QueueError> {
    delivery
        .receipt
        .parse()
        .map_err(|_| QueueError::Internal(format!("not a queue receipt: {:?}", delivery.receipt)))
}

impl State {
    /// Whether `delivery` is the current delivery of an in-flight message.
    fn is_current(&self, id: u64, delivery: &Delivery) -> bool {
        self.in_flight.contains_key(&id)
            && self
                .messages
                .get(&id)
                .is_some_and(|(_, count)| *count == delivery.delivery_count)
    }

    /// Removes a message wherever it is.
    fn remove(&mut self, id: u64) -> Option<(JobMessage, u32)> {
        let found = self.messages.remove(&id)?;
        self.in_flight.remove(&id);
        self.released.remove(&id);
        if let Some(at) = self.ready.iter().position(|r| *r == id) {
            self.ready.remove(at);
        }
        Some(found)
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue(&self, message: &JobMessage) -> Result<(), QueueError> {
        {
            let mut state = lock(&self.state);
            state.next_id += 1;
            let id = state.next_id;
            state.messages.insert(id, (message.clone(), 0));
            state.ready.push_back(id);
        }
        self.wake.notify_waiters();
        Ok(())
    }

    async fn claim(
        &self,
        _consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so a wake between the look and the wait counts.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let next_timeout = match self.take(max) {
                Ok(deliveries) => return Ok(deliveries),
                Err(next) => next,
            };
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
            let until = next_timeout.map_or(deadline, |next| next.min(deadline));
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let id = receipt(delivery)?;
        lock(&self.state).remove(id);
        Ok(())
    }

    async fn extend(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let id = receipt(delivery)?;
        let mut state = lock(&self.state);
        if state.is_current(id, delivery) {
            state.in_flight.insert(id, Instant::now());
        }
        Ok(())
    }

    async fn release(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let id = receipt(delivery)?;
        {
            let mut state = lock(&self.state);
            if !state.is_current(id, delivery) {
                return Ok(());
            }
            state.in_flight.remove(&id);
            state.released.insert(id);
        }
        self.wake.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        let id = receipt(delivery)?;
        let mut state = lock(&self.state);
        if let Some((message, _)) = state.remove(id) {
            if state.dead.len() >= self.options.max_dead_letters {
                state.dead.pop_front();
            }
            state.dead.push_back(DeadLetter {
                message,
                reason: reason.to_owned(),
                delivery_count: delivery.delivery_count,
            });
        }
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let state = lock(&self.state);
        Ok(QueueStats {
            waiting: state.ready.len() as u64,
            in_flight: (state.in_flight.len() + state.released.len()) as u64,
            dead: state.dead.len() as u64,
        })
    }
}
