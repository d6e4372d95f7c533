//! Fan-out of `chapterStream` chunks over `graphql-transport-ws`: a chunk's frame is built
//! from bytes made once per job and subscription shape, not by executing GraphQL and
//! serializing a response once per subscriber.
//!
//! A thousand subscribers of one job receive every chunk; through async-graphql each of
//! them would resolve the union, build a response value and serialize it. Here the
//! WebSocket layer gives each operation its subscribe id ([`OperationId`]) and the
//! connection's writer ([`DirectFrames`]); `chapterStream` still checks access, takes its
//! slot and follows the job as before, but when the selection on `ChapterChunk` is plain
//! (fields `__typename`, `seq`, `text`, with aliases and inline fragments — see
//! [`ChunkShape::of`]) it writes each chunk's `next` frame itself: the payload bytes
//! (`{"data":{…}}`) come from [`ChunkPayloads`], made by the first subscriber of that job
//! and shape that needs them, and the frame only adds the subscriber's id. The bytes are
//! the ones async-graphql would have sent (a test compares them). Continuity issues, the
//! final event, errors and any other selection stay on async-graphql; they go through the
//! same writer after the chunks before them, so the order is kept. Each subscriber keeps
//! its own position, so `seq` and `after` work as before.
//!
//! Such a subscriber's follower is not polled by async-graphql at all: it is handed to
//! the connection ([`DirectChunks::detach`], [`FollowerSet`]), whose writer asks it for
//! its next frame whenever the socket takes one and async-graphql has nothing queued. A
//! chunk then wakes only its follower — not the protocol and the stream layers of every
//! subscription around it — and its frame goes from the follower to the socket in the
//! same poll, with no queue between them; the events async-graphql still renders reach
//! it through a channel; a chunk after such an event waits until async-graphql has
//! queued the event's frame (it polls the subscription again only after that, and the
//! writer empties async-graphql's queue before it asks a follower), so the order is kept.
//! Completing the subscription drops the channel's receiver, which stops the follower
//! before it yields another frame. (async-graphql's protocol polls
//! every subscription of a connection on each wake of it, so one chunk of one job used
//! to poll them all.)

use super::context::{Deliveries, SubscriptionGuard};
use async_graphql::Context;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use axum::extract::ws::Message;
use futures_util::stream::{BoxStream, SelectAll};
use futures_util::task::AtomicWaker;
use futures_util::{Stream, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};
use tokio::sync::oneshot;
use znovel_domain::ids::JobId;

/// The request extension the WebSocket layer sets on every `subscribe` it passes on: the
/// operation's id (any value a client put there is overwritten).
pub const OPERATION_ID_EXTENSION: &str = "znovelOperationId";

/// The `graphql-transport-ws` id of the operation being executed (request data).
#[derive(Debug, Clone)]
pub struct OperationId(pub String);

/// Where a `graphql-transport-ws` connection takes the followers of its direct
/// subscriptions from (session data): their frames go out in order with the ones
/// async-graphql sends.
#[derive(Clone)]
pub struct DirectFrames {
    /// Where followers are handed to the connection's task.
    followers: Arc<HandedOver>,
}

impl DirectFrames {
    /// The hand-over point of one connection, and the set its writer takes the frames of
    /// the followers of direct subscriptions from.
    pub fn new() -> (Self, FollowerSet) {
        let followers = Arc::new(HandedOver::default());
        let set = FollowerSet {
            handed_over: followers.clone(),
            running: None,
        };
        (Self { followers }, set)
    }
}

/// A follower as the connection sees it: the frames of its chunks, in order.
type Frames = BoxStream<'static, Message>;

/// Followers handed over by resolvers, not yet polled by the connection.
#[derive(Default)]
struct HandedOver {
    queued: Mutex<Vec<Frames>>,
    /// The connection's task, woken when a follower is handed over.
    task: AtomicWaker,
    /// The connection's session has ended: a follower handed over now is dropped.
    closed: AtomicBool,
}

impl HandedOver {
    fn queued(&self) -> std::sync::MutexGuard<'_, Vec<Frames>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The followers of one connection's direct subscriptions, polled by the connection's
/// writer: [`poll_frame`](Self::poll_frame) when the socket takes a frame,
/// [`close`](Self::close) when the session ends.
pub struct FollowerSet {
    handed_over: Arc<HandedOver>,
    /// Made with the first follower (an idle connection has none).
    running: Option<SelectAll<Frames>>,
}

impl FollowerSet {
    /// The next frame of a follower that has one (polling those that woke, and the ones
    /// just handed over); pending when none has, and the connection's task is woken
    /// when one may.
    pub fn poll_frame(&mut self, cx: &mut TaskContext<'_>) -> Poll<Message> {
        self.handed_over.task.register(cx.waker());
        {
            let mut new = self.handed_over.queued();
            if !new.is_empty() {
                let running = self.running.get_or_insert_with(SelectAll::new);
                running.extend(new.drain(..));
            }
        }
        match self.running.as_mut().map(|r| r.poll_next_unpin(cx)) {
            Some(Poll::Ready(Some(frame))) => Poll::Ready(frame),
            // None left (each ended): pending until one is handed over.
            _ => Poll::Pending,
        }
    }

    /// Drops every follower, and any handed over later.
    pub fn close(&mut self) {
        self.handed_over.closed.store(true, Ordering::Release);
        self.running = None;
        self.handed_over.queued().clear();
    }
}

impl Drop for FollowerSet {
    fn drop(&mut self) {
        self.close();
    }
}

/// A followed item as the direct path sees it.
pub enum Routed<T> {
    /// A chunk: written by the connection as shared bytes.
    Chunk {
        /// Its position.
        seq: u64,
        /// Its text.
        text: String,
    },
    /// Anything else: rendered by async-graphql.
    Other(T),
}

/// The part of a detached subscription async-graphql polls: the events the follower
/// passes on, ending when the follower does. Dropping it stops the follower.
struct Detached<T> {
    events: futures_channel::mpsc::UnboundedReceiver<T>,
    /// How many items it has yielded.
    yielded: usize,
    handoff: Arc<Handoff>,
    /// Dropped with this stream: the follower sees its sender closed.
    _stop: oneshot::Receiver<()>,
    /// The subscription's slot: freed with this stream, as on the general path.
    _guard: SubscriptionGuard,
}

impl<T> Stream for Detached<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        // Polled again: async-graphql has queued the frame of every item yielded so far
        // (it sends an item's frame before it polls its subscriptions again).
        if self.yielded > self.handoff.acked.load(Ordering::Acquire) {
            self.handoff.acked.store(self.yielded, Ordering::Release);
            self.handoff.follower.wake();
        }
        let next = self.events.poll_next_unpin(cx);
        if let Poll::Ready(Some(_)) = next {
            self.yielded += 1;
        }
        next
    }
}

/// How far async-graphql has written what a follower passed on: a chunk after an item
/// (a continuity issue) waits for the item's frame, so the order is kept.
#[derive(Default)]
struct Handoff {
    /// How many passed-on items have their frames queued.
    acked: std::sync::atomic::AtomicUsize,
    /// The follower, woken as items are acknowledged.
    follower: AtomicWaker,
}

impl Handoff {
    /// Ready once `sent` items are acknowledged.
    fn poll_acked(&self, sent: usize, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.acked.load(Ordering::Acquire) >= sent {
            return Poll::Ready(());
        }
        self.follower.register(cx.waker());
        if self.acked.load(Ordering::Acquire) >= sent {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// What a `ChapterChunk` event's response holds, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ChunkField {
    Typename,
    Seq,
    Text,
}

/// A subscription's selection as far as a chunk is concerned: the response key of
/// `chapterStream` and the chunk's response keys with their fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkShape {
    root: String,
    fields: Vec<(String, ChunkField)>,
}

/// How many of a job's newest chunk payloads are kept per shape (a subscriber further
/// behind makes its own).
const PAYLOADS_KEPT: usize = 512;

impl ChunkShape {
    /// The shape of the field being resolved (`chapterStream`), when a chunk's response
    /// can be built without executing it: no directives and no named fragments anywhere
    /// in the selection (those stay on the general path; `@skip`/`@include` are applied
    /// by async-graphql before execution and never reach here).
    pub fn of(ctx: &Context<'_>) -> Option<Self> {
        // The field's syntax tree: public, though hidden from the docs, in async-graphql 7
        // (`ContextBase::item`); the public look-ahead merges inline fragments without
        // their type conditions, which cannot tell a chunk's fields from an issue's.
        let field: &Field = &ctx.item.node;
        if !field.directives.is_empty() {
            return None;
        }
        let root = field
            .alias
            .as_ref()
            .map_or_else(|| field.name.node.to_string(), |a| a.node.to_string());
        let mut fields = Vec::new();
        collect(&field.selection_set.node, &mut fields)?;
        // A chunk selecting nothing is `null` in async-graphql's answer, not `{}`.
        if fields.is_empty() {
            return None;
        }
        Some(Self { root, fields })
    }

    /// `{"data":{"<root>":{…}}}` for one chunk: the bytes async-graphql serializes.
    fn payload(&self, seq: u64, text: &str) -> String {
        let mut out = String::with_capacity(32 + self.root.len() + text.len() + 16 * 3);
        out.push_str(r#"{"data":{"#);
        push_json_str(&mut out, &self.root);
        out.push_str(":{");
        for (i, (key, field)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, key);
            out.push(':');
            match field {
                ChunkField::Typename => out.push_str(r#""ChapterChunk""#),
                ChunkField::Seq => out.push_str(&seq.to_string()),
                ChunkField::Text => push_json_str(&mut out, text),
            }
        }
        out.push_str("}}}");
        out
    }
}

/// Adds the fields a chunk gets from `set` to `out` in response order (a key seen again
/// is merged into its first place, as GraphQL does); `None` when the set has a directive
/// or a named fragment.
fn collect(set: &SelectionSet, out: &mut Vec<(String, ChunkField)>) -> Option<()> {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                let f = &f.node;
                if !f.directives.is_empty() || !f.arguments.is_empty() {
                    return None;
                }
                let field = match f.name.node.as_str() {
                    "__typename" => ChunkField::Typename,
                    "seq" => ChunkField::Seq,
                    "text" => ChunkField::Text,
                    // Validation lets nothing else through on the union or the chunk.
                    _ => return None,
                };
                let key = f.alias.as_ref().unwrap_or(&f.name).node.to_string();
                if !out.iter().any(|(k, _)| *k == key) {
                    out.push((key, field));
                }
            }
            Selection::InlineFragment(frag) => {
                let frag = &frag.node;
                if !frag.directives.is_empty() {
                    return None;
                }
                let applies = frag.type_condition.as_ref().is_none_or(|t| {
                    matches!(
                        t.node.on.node.as_str(),
                        "ChapterChunk" | "ChapterStreamEvent"
                    )
                });
                if applies {
                    collect(&frag.selection_set.node, out)?;
                }
            }
            Selection::FragmentSpread(_) => return None,
        }
    }
    Some(())
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn push_json_str(out: &mut String, s: &str) {
    // serde_json's escaping (the one async-graphql's responses go through).
    if let Ok(json) = serde_json::to_string(s) {
        out.push_str(&json);
    }
}

/// The newest chunk payloads of one job and shape, oldest first.
type Payloads = Arc<Mutex<VecDeque<(u64, Arc<str>)>>>;

/// The chunk payloads made so far, per job and shape, shared by every subscriber of the
/// process (schema data). Entries nobody follows any more are dropped as the map grows.
#[derive(Clone, Default)]
pub struct ChunkPayloads(Arc<Mutex<HashMap<(JobId, ChunkShape), Payloads>>>);

/// Past this many (job, shape) entries, the unused ones are dropped.
const SHAPES_KEPT: usize = 1024;

impl ChunkPayloads {
    fn of(&self, job: JobId, shape: ChunkShape) -> Payloads {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= SHAPES_KEPT {
            map.retain(|_, p| Arc::strong_count(p) > 1);
        }
        map.entry((job, shape)).or_default().clone()
    }
}

/// One subscriber's direct path: where its chunk frames go and how they are made.
pub struct DirectChunks {
    frames: DirectFrames,
    /// `{"type":"next","id":"<id>","payload":` — the frame up to the payload.
    head: String,
    shape: ChunkShape,
    payloads: Payloads,
}

impl DirectChunks {
    /// The direct path for the `chapterStream` of `job` being resolved, when the
    /// operation came over `graphql-transport-ws` and its chunk selection is plain.
    pub fn for_field(ctx: &Context<'_>, job: JobId) -> Option<Self> {
        let frames = ctx.data_opt::<DirectFrames>()?.clone();
        let id = ctx.data_opt::<OperationId>()?;
        let cache = ctx.data_opt::<ChunkPayloads>()?;
        let shape = ChunkShape::of(ctx)?;
        let mut head = String::from(r#"{"type":"next","id":"#);
        push_json_str(&mut head, &id.0);
        head.push_str(r#","payload":"#);
        Some(Self {
            frames,
            head,
            payloads: cache.of(job, shape.clone()),
            shape,
        })
    }

    /// The payload of chunk `seq`: made once per job and shape while it is among the
    /// newest.
    fn payload(&self, seq: u64, text: &str) -> Arc<str> {
        let mut kept = self.payloads.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, p)) = kept.iter().rev().find(|(s, _)| *s == seq) {
            return p.clone();
        }
        let p: Arc<str> = self.shape.payload(seq, text).into();
        // Subscribers of a job move together: a chunk is new for the first of them.
        if kept.back().is_none_or(|(last, _)| *last < seq) {
            kept.push_back((seq, p.clone()));
            if kept.len() > PAYLOADS_KEPT {
                kept.pop_front();
            }
        }
        p
    }

    /// The `next` frame of chunk `seq`, as async-graphql would send it.
    pub fn frame(&self, seq: u64, text: &str) -> String {
        let payload = self.payload(seq, text);
        let mut frame = String::with_capacity(self.head.len() + payload.len() + 1);
        frame.push_str(&self.head);
        frame.push_str(&payload);
        frame.push('}');
        frame
    }

    /// Hands the following of `events` to the connection: its writer polls the follower
    /// for each chunk's frame when the socket takes one (counted as `guard`'s
    /// deliveries), and the follower passes every other item on to the stream returned,
    /// for async-graphql. That stream holds `guard` (the slot); dropping it (the client
    /// completed the subscription, or the connection ended) stops the follower before
    /// its next frame. It ends when `events` does.
    pub fn detach<S, T>(
        self,
        events: S,
        guard: SubscriptionGuard,
    ) -> impl Stream<Item = T> + Send + 'static + use<S, T>
    where
        S: Stream<Item = Routed<T>> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = futures_channel::mpsc::unbounded();
        let (stop, stopped) = oneshot::channel();
        let handoff = Arc::new(Handoff::default());
        let followers = self.frames.followers.clone();
        let follower = Follower {
            direct: self,
            events: Box::pin(events),
            deliveries: guard.deliveries(),
            others: tx,
            handoff: handoff.clone(),
            stop,
            passed: 0,
        };
        // Boxed once: the follower's state moves in and out of each frame's future as a
        // pointer.
        let follower = futures_util::stream::unfold(Box::new(follower), |mut f| async move {
            let frame = f.next_frame().await?;
            Some((frame, f))
        })
        .boxed();
        if !followers.closed.load(Ordering::Acquire) {
            followers.queued().push(follower);
            followers.task.wake();
        }
        Detached {
            events: rx,
            yielded: 0,
            handoff,
            _stop: stopped,
            _guard: guard,
        }
    }
}

/// The follower [`DirectChunks::detach`] hands over: the frames of a subscription's
/// chunks, for the connection's writer.
struct Follower<S, T> {
    direct: DirectChunks,
    events: Pin<Box<S>>,
    deliveries: Deliveries,
    /// Where the items async-graphql renders go.
    others: futures_channel::mpsc::UnboundedSender<T>,
    handoff: Arc<Handoff>,
    /// Closed when async-graphql drops the subscription: the follower stops.
    stop: oneshot::Sender<()>,
    /// Items passed on to async-graphql.
    passed: usize,
}

impl<S, T> Follower<S, T>
where
    S: Stream<Item = Routed<T>>,
{
    /// The next chunk's frame (items before it passed on to async-graphql, and its frame
    /// after theirs); `None` when the subscription ended or was dropped.
    async fn next_frame(&mut self) -> Option<Message> {
        loop {
            let next = tokio::select! {
                biased;
                () = self.stop.closed() => return None,
                next = self.events.next() => next,
            };
            match next? {
                Routed::Other(item) => {
                    self.others.unbounded_send(item).ok()?;
                    self.passed += 1;
                }
                Routed::Chunk { seq, text } => {
                    // After the frames of the items passed on before it.
                    let (handoff, passed) = (&self.handoff, self.passed);
                    tokio::select! {
                        biased;
                        () = self.stop.closed() => return None,
                        () = std::future::poll_fn(|cx| handoff.poll_acked(passed, cx)) => {}
                    }
                    self.deliveries.shared(1);
                    return Some(Message::Text(self.direct.frame(seq, &text).into()));
                }
            }
        }
    }
}
