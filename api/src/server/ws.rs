//! GraphQL over WebSocket: `GET /graphql` with an upgrade, protocol `graphql-transport-ws`
//! (the `graphql-ws` library's) or the legacy `graphql-ws`. The credential comes in the
//! `connection_init` payload; the protocol's close codes (4400, 4401, 4403) replace
//! async-graphql's generic ones; on shutdown every connection is closed with 1012.

use super::AppState;
use super::http::request_id;
use crate::auth::Authenticator;
use crate::graphql::context::{RequestCtx, SubscriptionSlots};
use crate::graphql::errors::to_gql;
use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message};
use axum::extract::{FromRequestParts, Request, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};

/// Read buffer of a WebSocket connection (it grows for a larger message).
const WS_BUFFER: usize = 8 * 1024;

/// The close code sent to every WebSocket when the server shuts down (1012, "service
/// restart": clients reconnect, to another replica or to this one once it is back).
pub const SHUTDOWN_CLOSE_CODE: u16 = 1012;

/// Marks a `connection_init` rejection so [`close_codes`] can tell it from a bad message.
const FORBIDDEN_PREFIX: &str = "Forbidden: ";

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
    let auth = state.auth.clone();
    let reject_per_operation = state.ws_reject_per_operation;
    let slots = SubscriptionSlots::new(state.max_subscriptions, Some(metrics.clone()));
    let (mut socket_sink, incoming) = socket.split();
    // One writer owns the socket: the protocol's frames, then (on shutdown) ours.
    let (out, mut frames) = tokio::sync::mpsc::channel::<Message>(32);
    let writer = async move {
        while let Some(frame) = frames.recv().await {
            if socket_sink.send(frame).await.is_err() {
                return None;
            }
        }
        Some(socket_sink)
    };
    // On shutdown the protocol sees the client's side end, which ends the session.
    let mut stop = state.shutdown.clone();
    let incoming = incoming.take_until(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let out = futures_util::sink::unfold(out, |out, msg: Message| async move {
        out.send(close_codes(msg)).await.map(|()| out)
    });
    let session = GraphQLWebSocket::new_with_pair(out, incoming, state.executor.clone(), protocol)
        .on_connection_init(move |payload| async move {
            let actor = match Authenticator::from_connection_params(&payload) {
                None => None,
                Some(c) => match auth.authenticate(&c).await {
                    Ok(actor) => Some(actor),
                    // Behind a router: every operation of this connection fails with
                    // UNAUTHENTICATED instead (see `AppState`).
                    Err(e) if reject_per_operation => {
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
            data.insert(RequestCtx { actor, request_id });
            data.insert(slots);
            Ok(data)
        })
        .serve();
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
        reason: frame.reason,
    }))
}
