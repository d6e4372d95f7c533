//! GraphQL over WebSocket: `GET /graphql` with an upgrade, protocol `graphql-transport-ws`
//! (the `graphql-ws` library's) or the legacy `graphql-ws`. The credential comes in the
//! `connection_init` payload; the protocol's close codes replace async-graphql's generic
//! ones: 4400 (malformed message), 4401 (operation before the handshake), 4403
//! (`connection_init` without a valid credential, on the public endpoint), 4408 (no
//! `connection_init` within the deadline), 4409 (a subscription id already in use), 4403
//! again when the connection's credential is revoked or expires later on. A
//! message larger than the body limit closes the connection (1009). On shutdown every
//! connection is closed with 1012.

use super::AppState;
use super::http::request_id;
use super::limits::LimitedExecutor;
use crate::auth::Authenticator;
use crate::graphql::context::{RequestCtx, SubscriptionSlots};
use crate::graphql::errors::to_gql;
use crate::graphql::fanout::{DirectFrames, FollowerSet, OPERATION_ID_EXTENSION, OperationId};
use crate::live_auth::{LiveCredential, LiveExecutor, REVOKED_CLOSE_CODE};
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols};
use async_graphql::{Data, Executor};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::WebSocket;
use axum::extract::ws::{CloseFrame, Message};
use axum::extract::{FromRequestParts, Request, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Read buffer of a WebSocket connection, allocated up front (a larger message is read in
/// several calls, or grows it). A client sends a few small messages — `connection_init`,
/// a `subscribe` of a few hundred bytes, pings — so a small one keeps an idle subscriber
/// cheap (tungstenite suggests 4 KiB for many connections with a light read load; 2 KiB
/// took the 19,000-subscriber bench from 34.4 to 32.3 KiB each).
const WS_BUFFER: usize = 2 * 1024;

/// How many bytes of queued frames a connection's writer gathers into one write (the
/// write buffer starts empty and grows only for a subscriber that lags).
const WS_WRITE_BATCH: usize = 8 * 1024;

/// The close code sent to every WebSocket when the server shuts down (1012, "service
/// restart": clients reconnect, to another replica or to this one once it is back).
pub const SHUTDOWN_CLOSE_CODE: u16 = 1012;

/// A connection's socket writer. The frames async-graphql's session (and the connection
/// itself: its close frames) queue come first; when none is queued it asks the
/// followers of direct subscriptions for theirs (so a chunk after an item async-graphql
/// renders goes out after that item's frame), and only while the socket takes frames: a
/// follower of a lagging subscriber is not polled until the socket drains, and its
/// chunks wait in the job's token stream. What a poll wrote goes out in one flush; the
/// write buffer gathers frames of a subscriber that lags into as few writes as it holds.
struct Writer {
    sink: SplitSink<WebSocket, Message>,
    frames: tokio::sync::mpsc::Receiver<Message>,
    /// Frames written into the sink since its last flush.
    unflushed: bool,
    /// A close frame was written: only its flush is left.
    closing: bool,
}

impl Writer {
    /// Writes what there is to write. Ready once the writer is done: `true` when every
    /// queue's sender is gone and all was flushed (the socket can still be used),
    /// `false` when the socket failed or a close frame went out.
    fn poll_write(
        &mut self,
        cx: &mut std::task::Context<'_>,
        mut followers: Option<&mut FollowerSet>,
    ) -> std::task::Poll<bool> {
        use std::task::Poll;
        while !self.closing {
            match self.sink.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(false),
                Poll::Pending => return Poll::Pending,
            }
            let frame = match self.frames.poll_recv(cx) {
                Poll::Ready(Some(frame)) => frame,
                Poll::Ready(None) => return self.poll_flush(cx),
                // Out of budget with frames still queued (the task is woken again): a
                // follower's frame must not pass them.
                Poll::Pending if !self.frames.is_empty() => break,
                Poll::Pending => match followers.as_deref_mut().map(|f| f.poll_frame(cx)) {
                    Some(Poll::Ready(frame)) => frame,
                    _ => break,
                },
            };
            self.closing = matches!(frame, Message::Close(_));
            if self.sink.start_send_unpin(frame).is_err() {
                return Poll::Ready(false);
            }
            self.unflushed = true;
        }
        match self.poll_flush(cx) {
            Poll::Ready(ok) if self.closing || !ok => Poll::Ready(false),
            _ => Poll::Pending,
        }
    }

    /// Flushes what was written since the last flush; `false` when the socket failed.
    fn poll_flush(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<bool> {
        if !self.unflushed {
            return std::task::Poll::Ready(true);
        }
        let flushed = std::task::ready!(self.sink.poll_flush_unpin(cx));
        self.unflushed = false;
        std::task::Poll::Ready(flushed.is_ok())
    }
}

/// Marks a `connection_init` rejection so [`close_codes`] can tell it from a bad message.
const FORBIDDEN_PREFIX: &str = "Forbidden: ";

/// The longest close reason a close frame can carry (its payload is at most 125 bytes,
/// two of them the code).
const MAX_CLOSE_REASON: usize = 123;

/// Upgrades `GET /graphql` to a GraphQL WebSocket session.
pub(super) async fn upgrade(state: Arc<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &state).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    let request_id = request_id(&parts.headers);
    let sessions = state.sessions.clone();
    // The protocol the upgrade picks (as `GraphQLProtocol` does): chunks of
    // `chapterStream` are written directly only in graphql-transport-ws's frames.
    let transport_ws = parts
        .headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        })
        == Some(WebSocketProtocols::GraphQLWS);
    // GraphQL messages are small: modest buffers keep an idle subscriber cheap (the
    // defaults, 128 KiB each way, dominate its memory). The writer flushes whenever its
    // queue is empty; frames queued behind a slow client are written together.
    ws.protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_WRITE_BATCH)
        .max_message_size(state.max_message_bytes)
        .max_frame_size(state.max_message_bytes)
        .on_upgrade(move |socket| {
            sessions.track_future(serve(state, protocol, transport_ws, request_id, socket))
        })
}

/// Runs one WebSocket session until either side ends it or the server shuts down.
///
/// The state is let go once the session is built: an async fn keeps its arguments for
/// its whole life, and an idle connection should not hold on to it.
async fn serve(
    state: Arc<AppState>,
    protocol: GraphQLProtocol,
    transport_ws: bool,
    request_id: String,
    socket: axum::extract::ws::WebSocket,
) {
    let metrics = state.metrics.clone();
    metrics.ws_connections.inc();
    let live = state.live.clone();
    let (live_tx, live_rx) = tokio::sync::oneshot::channel::<LiveCredential>();
    let behind_router = state.behind_router;
    let slots = SubscriptionSlots::new(state.max_subscriptions, Some(metrics.clone()));
    let (socket_sink, incoming) = socket.split();
    // One writer owns the socket: the protocol's frames, the followers' (see `Writer`),
    // then (on shutdown) ours.
    let (out, frames) = tokio::sync::mpsc::channel::<Message>(32);
    let control = out.clone();
    let (direct, mut followers) = transport_ws.then(DirectFrames::new).unzip();
    let mut writer = Writer {
        sink: socket_sink,
        frames,
        unflushed: false,
        closing: false,
    };
    // On shutdown the protocol sees the client's side end, which ends the session; the
    // client's side comes back here for the closing handshake.
    let mut stop = state.shutdown.clone();
    let ids = ActiveIds::default();
    // A weak handle: the part of the stream handed back for the closing handshake must
    // not keep the writer's queue open.
    let incoming = ids.clone().screen(incoming, control.downgrade());
    let (handback, handed_back) = tokio::sync::oneshot::channel();
    let incoming = UntilStop {
        inner: Some(Box::pin(incoming)),
        stop: Box::pin(async move {
            let _ = stop.wait_for(|s| *s).await;
        }),
        handback: Some(handback),
        woken: Woken::new(),
    };
    let sent_ids = ids.clone();
    let out = futures_util::sink::unfold(out, move |out, msg: Message| {
        sent_ids.on_server_message(&msg);
        async move { out.send(close_codes(msg)).await.map(|()| out) }
    });
    let initialised = Arc::new(AtomicBool::new(false));
    let init_seen = initialised.clone();
    let executor = Operations(LiveExecutor::new(LimitedExecutor::new(
        state.executor.clone(),
        state.limits.clone(),
    )));
    // Boxed here (and the session below): an async fn keeps a future moved into
    // `select!`/`join!` twice, once where it was built and once inside the combinator, so
    // inline these two tripled an idle connection's task (26 KB, of which 8.9 KB was the
    // session and 4.2 KB async-graphql's protocol); boxed, each lives once.
    let session = Box::pin(
        GraphQLWebSocket::new_with_pair(out, incoming, executor, protocol)
            .on_connection_init(move |payload| async move {
                init_seen.store(true, Ordering::Release);
                let live = match Authenticator::from_connection_params(&payload) {
                    // The public endpoint serves nobody without a credential.
                    None if !behind_router => {
                        return Err(async_graphql::Error::new(format!(
                            "{FORBIDDEN_PREFIX}authentication required"
                        )));
                    }
                    None => None,
                    // Watched for as long as the connection lives: every operation acts with
                    // the credential's rights now (see `live_auth`).
                    Some(c) => match live.watch(&c).await {
                        Ok(live) => {
                            let _ = live_tx.send(live.clone());
                            Some(live)
                        }
                        // Behind a router: every operation of this connection fails with
                        // UNAUTHENTICATED instead (see `AppState`).
                        Err(e) if behind_router => {
                            tracing::debug!(error = %e, "WebSocket credential refused");
                            None
                        }
                        Err(e) => {
                            return Err(async_graphql::Error::new(format!(
                                "{FORBIDDEN_PREFIX}{}",
                                to_gql(e).message
                            )));
                        }
                    },
                };
                let mut data = Data::default();
                let actor = live.as_ref().and_then(|l| l.current().ok());
                data.insert(RequestCtx { actor, request_id });
                data.insert(slots);
                if let Some(direct) = direct {
                    data.insert(direct);
                }
                if let Some(live) = live {
                    data.insert(live);
                }
                Ok(data)
            })
            .serve(),
    );
    let init_timeout = state.ws_init_timeout;
    let shutdown = state.shutdown.clone();
    drop(state);
    let session = Box::pin(async move {
        tokio::select! {
            () = session => {}
            () = async {
                tokio::time::sleep(init_timeout).await;
                if initialised.load(Ordering::Acquire) {
                    std::future::pending::<()>().await;
                }
            } => {
                let _ = control
                    .send(Message::Close(Some(CloseFrame {
                        code: 4408,
                        reason: "Connection initialisation timeout".into(),
                    })))
                    .await;
            }
            () = async {
                match live_rx.await {
                    Ok(live) => live.ended().await,
                    Err(_) => std::future::pending::<()>().await,
                }
            } => {
                // The credential was revoked or expired: its rights end with it.
                let _ = control
                    .send(Message::Close(Some(CloseFrame {
                        code: REVOKED_CLOSE_CODE,
                        reason: "Forbidden: the credential was revoked or expired".into(),
                    })))
                    .await;
            }
        }
    });
    // On every wake: the session (only when something it waits on woke it), then the
    // writer, which takes the frames the session queued and those of the followers of
    // direct subscriptions that woke. A chunk wakes only its followers: the protocol and
    // its stream layers are not polled for it. The session goes first so that a frame it
    // queues is written in the same poll, not on the task's next turn — behind every
    // other connection woken by the same chunk (a thousand subscribers: milliseconds).
    let mut session = Some(session);
    let session_woken = Woken::new();
    let mut written = None;
    let socket_sink = std::future::poll_fn(|cx| {
        if let Some(running) = session.as_mut()
            && session_woken
                .poll(cx, |own| running.as_mut().poll(own))
                .is_ready()
        {
            session = None;
            if let Some(f) = followers.as_mut() {
                f.close();
            }
        }
        if written.is_none()
            && let std::task::Poll::Ready(usable) = writer.poll_write(cx, followers.as_mut())
        {
            written = Some(usable);
        }
        match written {
            Some(usable) if session.is_none() => std::task::Poll::Ready(usable),
            _ => std::task::Poll::Pending,
        }
    })
    .await
    .then_some(writer.sink);
    if *shutdown.borrow()
        && let Some(mut sink) = socket_sink
    {
        // 1012 Service Restart: graphql-ws clients retry; `after` resumes a stream.
        let sent = sink
            .send(Message::Close(Some(CloseFrame {
                code: SHUTDOWN_CLOSE_CODE,
                reason: "server restarting: reconnect (chapterStream resumes with `after`)".into(),
            })))
            .await;
        // The closing handshake: read until the client's close frame (or its end). A
        // socket dropped with unread bytes is reset by the kernel, which discards the
        // close frame still in flight — the client would see a reset, not 1012.
        if sent.is_ok()
            && let Ok(mut incoming) = handed_back.await
        {
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
                while let Some(Ok(msg)) = incoming.next().await {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
    metrics.ws_connections.dec();
}

/// How long a closing server waits for the client's close frame.
const CLOSE_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(2);

/// The client's messages, boxed.
type Incoming =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Message, axum::Error>> + Send>>;

/// The client's messages until the server shuts down; then the stream ends for the
/// protocol and the rest of it is handed back for the closing handshake.
///
/// Read only when something it waits on has happened: the protocol polls it first on
/// every wake of the connection — for every chunk of every subscription — and each of
/// those polls went down to the socket's read (the split halves' lock, tungstenite, the
/// readiness check) for a client that had sent nothing.
struct UntilStop {
    inner: Option<Incoming>,
    stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    handback: Option<tokio::sync::oneshot::Sender<Incoming>>,
    woken: Woken,
}

/// A waker for one part of a connection (the client's side with the shutdown signal;
/// the session): notes that the part woke, then wakes the connection's task, so that the
/// part is polled only when something it waits on happened — not on every chunk.
struct Woken {
    flag: Arc<WokenFlag>,
    /// `flag` as a waker (made once).
    waker: std::task::Waker,
}

/// Whether the part woke the connection since it was last polled, and the connection's
/// task to wake.
struct WokenFlag {
    /// Set by a wake (and at first): the next poll polls the part.
    set: AtomicBool,
    /// The connection's task.
    task: futures_util::task::AtomicWaker,
}

impl Woken {
    fn new() -> Self {
        let flag = Arc::new(WokenFlag {
            set: AtomicBool::new(true),
            task: futures_util::task::AtomicWaker::new(),
        });
        Self {
            waker: std::task::Waker::from(flag.clone()),
            flag,
        }
    }

    /// Polls the part (with this waker) when it woke since it last answered Pending;
    /// else Pending at once. After Ready the next poll polls it again without a wake: a
    /// stream may have more ready (several messages in one read).
    fn poll<T>(
        &self,
        cx: &mut std::task::Context<'_>,
        poll: impl FnOnce(&mut std::task::Context<'_>) -> std::task::Poll<T>,
    ) -> std::task::Poll<T> {
        self.flag.task.register(cx.waker());
        if !self.flag.set.swap(false, Ordering::AcqRel) {
            return std::task::Poll::Pending;
        }
        let polled = poll(&mut std::task::Context::from_waker(&self.waker));
        if polled.is_ready() {
            self.flag.set.store(true, Ordering::Release);
        }
        polled
    }
}

impl std::task::Wake for WokenFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.set.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl futures_util::Stream for UntilStop {
    type Item = Result<Message, axum::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let Self {
            inner,
            stop,
            handback,
            woken,
        } = &mut *self;
        if inner.is_none() {
            return Poll::Ready(None);
        }
        woken.poll(cx, |own| {
            if stop.as_mut().poll(own).is_ready() {
                if let (Some(inner), Some(back)) = (inner.take(), handback.take()) {
                    let _ = back.send(inner);
                }
                return Poll::Ready(None);
            }
            match inner {
                Some(inner) => inner.as_mut().poll_next(own),
                None => Poll::Ready(None),
            }
        })
    }
}

/// The ids of the operations running on one connection. graphql-transport-ws says a
/// `subscribe` with an id already in use closes the connection with 4409; async-graphql
/// would silently replace the first operation.
#[derive(Clone, Default)]
struct ActiveIds(Arc<Mutex<HashSet<String>>>);

/// The fields of a graphql-transport-ws message this module looks at.
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

impl ActiveIds {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The client's messages, ending (after a 4409 close on `control`, while the
    /// connection's writer runs) at the first `subscribe` whose id is running. Each
    /// graphql-transport-ws `subscribe` is tagged with its id ([`tag_operation`]).
    fn screen(
        self,
        incoming: SplitStream<WebSocket>,
        control: tokio::sync::mpsc::WeakSender<Message>,
    ) -> impl futures_util::Stream<Item = Result<Message, axum::Error>> + Send + 'static {
        incoming.scan((), move |(), msg| {
            if let Err(e) = &msg {
                // Over the size limit (or a broken frame): say so, then stop reading.
                let text = e.to_string();
                let (code, reason) = if text.contains("too long") || text.contains("Space limit") {
                    (1009, "message too big")
                } else {
                    (1002, "protocol error")
                };
                let control = control.clone();
                return futures_util::future::Either::Left(async move {
                    if let Some(control) = control.upgrade() {
                        let _ = control
                            .send(Message::Close(Some(CloseFrame {
                                code,
                                reason: reason.into(),
                            })))
                            .await;
                    }
                    None
                });
            }
            let mut msg = msg;
            let duplicate = match &msg {
                Ok(Message::Text(text)) => match serde_json::from_str::<Envelope>(text) {
                    Ok(Envelope { kind, id: Some(id) })
                        if kind == "subscribe" || kind == "start" =>
                    {
                        if kind == "subscribe"
                            && let Some(tagged) = tag_operation(text, &id)
                        {
                            msg = Ok(Message::Text(tagged.into()));
                        }
                        (!self.lock().insert(id.clone())).then_some(id)
                    }
                    Ok(Envelope { kind, id: Some(id) }) if kind == "complete" || kind == "stop" => {
                        self.lock().remove(&id);
                        None
                    }
                    _ => None,
                },
                _ => None,
            };
            let control = control.clone();
            futures_util::future::Either::Right(async move {
                match duplicate {
                    None => Some(msg),
                    Some(id) => {
                        let reason = truncate(format!("Subscriber for {id} already exists"));
                        if let Some(control) = control.upgrade() {
                            let _ = control
                                .send(Message::Close(Some(CloseFrame {
                                    code: 4409,
                                    reason: reason.into(),
                                })))
                                .await;
                        }
                        None
                    }
                }
            })
        })
    }

    /// Frees the id of an operation the server completed or failed.
    fn on_server_message(&self, msg: &Message) {
        if let Message::Text(text) = msg
            && (text.starts_with(r#"{"type":"complete""#) || text.starts_with(r#"{"type":"error""#))
            && let Ok(Envelope { id: Some(id), .. }) = serde_json::from_str::<Envelope>(text)
        {
            self.lock().remove(&id);
        }
    }
}

/// A `subscribe` message with its id in the request's extensions
/// ([`OPERATION_ID_EXTENSION`], whatever the client put there replaced), for
/// [`Operations`]; `None` when the message is not an object with an object payload
/// (async-graphql then refuses it as it would have).
fn tag_operation(text: &str, id: &str) -> Option<String> {
    let mut msg: serde_json::Value = serde_json::from_str(text).ok()?;
    let payload = msg.get_mut("payload")?.as_object_mut()?;
    let extensions = payload
        .entry("extensions")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if !extensions.is_object() {
        *extensions = serde_json::Value::Object(serde_json::Map::new());
    }
    extensions
        .as_object_mut()?
        .insert(OPERATION_ID_EXTENSION.to_owned(), id.into());
    serde_json::to_string(&msg).ok()
}

/// The connection's executor, giving each operation its subscribe id as request data
/// ([`OperationId`], from the extension [`tag_operation`] set).
#[derive(Clone)]
struct Operations<E>(E);

impl<E: Executor> Executor for Operations<E> {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        self.0.execute(request).await
    }

    fn execute_stream(
        &self,
        mut request: async_graphql::Request,
        session_data: Option<Arc<Data>>,
    ) -> futures_util::stream::BoxStream<'static, async_graphql::Response> {
        if let Some(async_graphql::Value::String(id)) =
            request.extensions.remove(OPERATION_ID_EXTENSION)
        {
            request = request.data(OperationId(id));
        }
        self.0.execute_stream(request, session_data)
    }
}

/// `reason` cut to what a close frame can carry, at a character boundary.
fn truncate(mut reason: String) -> String {
    if reason.len() > MAX_CLOSE_REASON {
        let mut end = MAX_CLOSE_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// async-graphql closes every protocol violation with 1002; the `graphql-transport-ws`
/// protocol (and the retry logic of the `graphql-ws` client) expects 4403 for a rejected
/// `connection_init`, 4400 for a malformed message and 4401 for an operation before the
/// handshake. Rewrites the close frame accordingly.
fn close_codes(msg: Message) -> Message {
    let Message::Close(Some(frame)) = msg else {
        return msg;
    };
    let code = match (frame.code, frame.reason.as_str()) {
        (1002, r) if r.starts_with(FORBIDDEN_PREFIX) => 4403,
        (1002, _) => 4400,
        (1011, r) if r.contains("handshake") => 4401,
        (c, _) => c,
    };
    Message::Close(Some(CloseFrame {
        code,
        reason: truncate(frame.reason.to_string()).into(),
    }))
}
