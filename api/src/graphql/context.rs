//! What every GraphQL request carries: the authenticated caller (if any) and the request
//! id. The HTTP and WebSocket transports put a [`RequestCtx`] into the request data;
//! resolvers read it with [`actor`].

use super::errors::to_gql;
use async_graphql::Context;
use znovel_domain::{Error, auth::Actor};

/// Per-request data inserted by the transport (HTTP handler or WebSocket `connection_init`).
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// The authenticated caller; `None` for an anonymous request.
    pub actor: Option<Actor>,
    /// The request id (also in logs and the `x-request-id` response header).
    pub request_id: String,
}

/// The authenticated actor of the request, or an `UNAUTHENTICATED` error.
pub fn actor(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    ctx.data_opt::<RequestCtx>()
        .and_then(|r| {
            r.actor
                .clone()
                .map(|a| a.with_request_id(r.request_id.clone()))
        })
        .ok_or_else(|| to_gql(Error::Unauthenticated))
}
