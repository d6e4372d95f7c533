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
use crate::live_auth::{LiveCredential, LiveExecutor, REVOKED_CLOSE_CODE};
use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::WebSocket;
use axum::extract::ws::{CloseFrame, Message};
use axum::extract::{FromRequestParts, Request, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Read buffer of a WebSocket connection (it grows for a larger message).
const WS_BUFFER: usize = 8 * 1024;

/// The close code sent to every WebSocket when the server shuts down (1012, "service
/// restart": clients reconnect, to another replica or to this one once it is back).
pub const SHUTDOWN_CLOSE_CODE: u16 = 1012;

/// Marks a `connection_init` rejection so [`close_codes`] can tell it from a bad message.
const FORBIDDEN_PREFIX: &str = "Forbidden: ";

/// The longest close reason a close frame can carry (its payload is at most 125 bytes,
/// two of them the code).
const MAX_CLOSE_REASON: usize = 123;

/// Upgrades `GET /graphql` to a GraphQL WebSocket session.
pub(super) async fn upgrade(state: AppState, req: Request) -> Response {
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
    // GraphQL messages are small: modest buffers keep an idle subscriber cheap (the
    // defaults, 128 KiB each way, dominate its memory); every frame is flushed at once.
    ws.protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(0)
        .max_message_size(state.max_message_bytes)
        .max_frame_size(state.max_message_bytes)
        .on_upgrade(move |socket| serve(state, protocol, request_id, socket))
}

/// Runs one WebSocket session until either side ends it or the server shuts down.
async fn serve(
    state: AppState,
    protocol: GraphQLProtocol,
    request_id: String,
    socket: axum::extract::ws::WebSocket,
) {
    let metrics = state.metrics.clone();
    metrics.ws_connections.inc();
    let live = state.live.clone();
    let (live_tx, live_rx) = tokio::sync::oneshot::channel::<LiveCredential>();
    let behind_router = state.behind_router;
    let slots = SubscriptionSlots::new(state.max_subscriptions, Some(metrics.clone()));
    let (mut socket_sink, incoming) = socket.split();
    // One writer owns the socket: the protocol's frames, then (on shutdown) ours.
    let (out, mut frames) = tokio::sync::mpsc::channel::<Message>(32);
    let control = out.clone();
    let writer = async move {
        while let Some(frame) = frames.recv().await {
            let closing = matches!(frame, Message::Close(_));
            if socket_sink.send(frame).await.is_err() || closing {
                return None;
            }
        }
        Some(socket_sink)
    };
    // On shutdown the protocol sees the client's side end, which ends the session.
    let mut stop = state.shutdown.clone();
    let ids = ActiveIds::default();
    let incoming = ids.clone().screen(incoming, control.clone());
    let incoming = incoming.take_until(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let sent_ids = ids.clone();
    let out = futures_util::sink::unfold(out, move |out, msg: Message| {
        sent_ids.on_server_message(&msg);
        async move { out.send(close_codes(msg)).await.map(|()| out) }
    });
    let initialised = Arc::new(AtomicBool::new(false));
    let init_seen = initialised.clone();
    let executor = LiveExecutor::new(LimitedExecutor::new(
        state.executor.clone(),
        state.limits.clone(),
    ));
    let session = GraphQLWebSocket::new_with_pair(out, incoming, executor, protocol)
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
            if let Some(live) = live {
                data.insert(live);
            }
            Ok(data)
        })
        .serve();
    let init_timeout = state.ws_init_timeout;
    let session = async move {
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
    };
    let ((), socket_sink) = tokio::join!(session, writer);
    if *state.shutdown.borrow()
        && let Some(mut sink) = socket_sink
    {
        // 1012 Service Restart: graphql-ws clients retry; `after` resumes a stream.
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: SHUTDOWN_CLOSE_CODE,
                reason: "server restarting: reconnect (chapterStream resumes with `after`)".into(),
            })))
            .await;
    }
    metrics.ws_connections.dec();
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

    /// The client's messages, ending (after a 4409 close on `control`) at the first
    /// `subscribe` whose id is running.
    fn screen(
        self,
        incoming: SplitStream<WebSocket>,
        control: tokio::sync::mpsc::Sender<Message>,
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
                    let _ = control
                        .send(Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    None
                });
            }
            let duplicate = match &msg {
                Ok(Message::Text(text)) => match serde_json::from_str::<Envelope>(text) {
                    Ok(Envelope { kind, id: Some(id) })
                        if kind == "subscribe" || kind == "start" =>
                    {
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
                        let _ = control
                            .send(Message::Close(Some(CloseFrame {
                                code: 4409,
                                reason: reason.into(),
                            })))
                            .await;
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
