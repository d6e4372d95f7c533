//! GraphQL over HTTP (`POST` and `GET /graphql`, per the GraphQL-over-HTTP spec) and over
//! WebSocket (`GET /graphql` with an upgrade, protocol `graphql-transport-ws`, or the
//! legacy `graphql-ws`), or as Server-Sent Events (`POST` with `Accept: text/event-stream`:
//! the `graphql-sse` protocol's distinct-connections mode). Authentication: `Authorization: Bearer <key or JWT>` or
//! `X-Api-Key` on HTTP; the `connection_init` payload on WebSocket.

use super::AppState;
use crate::auth::Authenticator;
use crate::graphql::context::{RequestCtx, SubscriptionSlots};
use crate::graphql::errors::{ErrorCode, to_gql};
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, Executor, ParseRequestError, ServerError};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLWebSocket};
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message};
use axum::extract::{FromRequest, FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use znovel_domain::Error;
use znovel_domain::auth::Actor;

/// The media type of GraphQL-over-HTTP responses.
pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// A request that is not a GraphQL request at all (bad JSON, missing query, too large):
/// answered as a GraphQL error with code `BAD_USER_INPUT` (HTTP 400) or 413.
pub struct Rejection(ParseRequestError);

impl From<ParseRequestError> for Rejection {
    fn from(e: ParseRequestError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, message) = match &self.0 {
            ParseRequestError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large".to_owned(),
            ),
            ParseRequestError::InvalidRequest(e) => (
                StatusCode::BAD_REQUEST,
                format!("invalid GraphQL request: {e}"),
            ),
            other => (
                StatusCode::BAD_REQUEST,
                format!("invalid GraphQL request: {other}"),
            ),
        };
        error_body(status, ErrorCode::BadUserInput, &message, true)
    }
}

/// A GraphQL error response without data, with one error carrying `code`.
pub fn error_body(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    graphql_media: bool,
) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    });
    json_response(status, body.to_string(), graphql_media)
}

fn json_response(status: StatusCode, body: String, graphql_media: bool) -> Response {
    let ct = if graphql_media {
        GRAPHQL_RESPONSE
    } else {
        "application/json"
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp
}

/// Whether the client asks for a stream of results (`Accept: text/event-stream`): the
/// `graphql-sse` protocol's distinct-connections mode.
fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

/// Serves one operation as Server-Sent Events (`graphql-sse`, distinct connections): an
/// `event: next` per result, then `event: complete`. Works for subscriptions (each
/// `chapterStream` event as it happens) and for queries and mutations (one `next`); the
/// request counts as one subscription slot; closing the connection stops it.
fn event_stream(state: &AppState, request: async_graphql::Request) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let slots = SubscriptionSlots::new(1, Some(state.metrics.clone()));
    let results = state
        .executor
        .execute_stream(request.data(slots), None)
        .map(|resp| {
            let json = serde_json::to_string(&resp).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot serialize a GraphQL response");
                serde_json::json!({"errors": [{
                    "message": "internal error",
                    "extensions": {"code": ErrorCode::Internal.as_str()}
                }]})
                .to_string()
            });
            Ok::<_, std::convert::Infallible>(Event::default().event("next").data(json))
        })
        .chain(futures_util::stream::once(async {
            Ok(Event::default().event("complete").data(""))
        }));
    // On shutdown the stream just ends (no `complete`): the client reconnects.
    let mut stop = state.shutdown.clone();
    let results = results.take_until(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    Sse::new(results)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Whether the client accepts `application/graphql-response+json` (else: `application/json`,
/// per the spec's legacy-client rule).
fn wants_graphql_media(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|a| a.contains(GRAPHQL_RESPONSE) || !a.contains("application/json"))
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Finds the credential of an HTTP request, if any.
fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return Authenticator::from_authorization(v).or(Some(""));
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok())
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<Actor>, Error> {
    match credential(headers) {
        None => Ok(None),
        Some(c) => state.auth.authenticate(c).await.map(Some),
    }
}

/// `GET /graphql`: a WebSocket upgrade, or a query in the URL.
pub async fn get(State(state): State<AppState>, req: Request) -> Response {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_upgrade {
        return post(State(state), req).await;
    }
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
        .on_upgrade(move |socket| async move {
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
            let session =
                GraphQLWebSocket::new_with_pair(out, incoming, state.executor.clone(), protocol)
                    .on_connection_init(move |payload| async move {
                        let actor = match Authenticator::from_connection_params(&payload) {
                            None => None,
                            Some(c) => match auth.authenticate(&c).await {
                                Ok(actor) => Some(actor),
                                // Behind a router: every operation of this connection
                                // fails with UNAUTHENTICATED instead (see `AppState`).
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
                        reason: "server restarting: reconnect (chapterStream resumes with `after`)"
                            .into(),
                    })))
                    .await;
            }
            metrics.ws_connections.dec();
        })
}

/// Read buffer of a WebSocket connection (it grows for a larger message).
const WS_BUFFER: usize = 8 * 1024;

/// The close code sent to every WebSocket when the server shuts down (1012, "service
/// restart": clients reconnect, to another replica or to this one once it is back).
pub const SHUTDOWN_CLOSE_CODE: u16 = 1012;

/// Marks a `connection_init` rejection so [`close_codes`] can tell it from a bad message.
const FORBIDDEN_PREFIX: &str = "Forbidden: ";

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

/// `POST /graphql` (and `GET` without upgrade).
pub async fn post(State(state): State<AppState>, req: Request) -> Response {
    let graphql_media = wants_graphql_media(req.headers());
    let headers = req.headers().clone();
    let gql = match GraphQLRequest::<Rejection>::from_request(req, &state).await {
        Ok(r) => r.into_inner(),
        Err(rejection) => return rejection.into_response(),
    };
    let actor = match authenticate(&state, &headers).await {
        Ok(a) => a,
        Err(e) => {
            let err = to_gql(e);
            let status = StatusCode::UNAUTHORIZED;
            let mut resp = async_graphql::Response::from_errors(vec![ServerError::new(
                err.message.clone(),
                None,
            )]);
            if let Some(first) = resp.errors.first_mut() {
                first.extensions = err.extensions;
            }
            state
                .metrics
                .graphql_errors
                .with_label_values(&[ErrorCode::Unauthenticated.as_str()])
                .inc();
            let body = serde_json::to_string(&resp).unwrap_or_default();
            let mut out = json_response(status, body, graphql_media);
            out.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return out;
        }
    };
    let request_id = request_id(&headers);
    if wants_event_stream(&headers) {
        return event_stream(&state, gql.data(RequestCtx { actor, request_id }));
    }
    let resp = state
        .executor
        .execute(gql.data(RequestCtx { actor, request_id }))
        .await;
    // GraphQL-over-HTTP: a request that failed before execution (parse, validation,
    // limits: errors without a path, no data) is a 400 with the new media type; field
    // errors during execution stay 200.
    let request_error = resp.data == async_graphql::Value::Null
        && resp.is_err()
        && resp.errors.iter().all(|e| e.path.is_empty());
    let status = if graphql_media && request_error {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    match serde_json::to_string(&resp) {
        Ok(body) => json_response(status, body, graphql_media),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a GraphQL response");
            error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error",
                graphql_media,
            )
        }
    }
}
