//! GraphQL over Server-Sent Events: `POST /graphql` with `Accept: text/event-stream`, the
//! `graphql-sse` protocol's distinct-connections mode — an `event: next` per result, then
//! `event: complete`.

use super::AppState;
use crate::graphql::context::SubscriptionSlots;
use crate::graphql::errors::ErrorCode;
use crate::live_auth::LiveExecutor;
use async_graphql::Executor;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

/// Whether the client asks for a stream of results (`Accept: text/event-stream`).
pub(super) fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

/// Serves one operation as Server-Sent Events: an `event: next` per result, then `event:
/// complete`. Works for subscriptions (each `chapterStream` event as it happens) and for
/// queries and mutations (one `next`); the request counts as one subscription slot;
/// closing the connection stops it. The stream's `credential` is watched while it runs: a
/// revocation ends it with an `UNAUTHENTICATED` error, a role change with `FORBIDDEN`
/// (see [`crate::live_auth`]).
pub(super) async fn event_stream(
    state: &AppState,
    mut request: async_graphql::Request,
    credential: Option<&str>,
) -> Response {
    if let Some(c) = credential
        && let Ok(live) = state.live.watch(c).await
    {
        request = request.data(live);
    }
    let slots = SubscriptionSlots::new(1, Some(state.metrics.clone()));
    let results = LiveExecutor::new(state.executor.clone())
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
