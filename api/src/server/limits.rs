//! Request rate limits: every GraphQL request over HTTP (and SSE) and every operation on
//! a WebSocket takes one from its API key's bucket (a JWT's: its user's) and one from its
//! tenant's, per minute. Over a limit the request is refused with `RATE_LIMITED`,
//! `extensions.retryAfterSeconds` and, over HTTP, status 429 with `Retry-After`.
//! Generation starts per tenant are limited by the generation service itself.

use super::AppState;
use super::http::json_response;
use crate::config::RateLimitSettings;
use crate::graphql::errors::{ErrorCode, error_response, to_gql};
use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::{Data, Executor, Request, Response};
use axum::http::{HeaderValue, StatusCode, header};
use std::any::TypeId;
use std::sync::Arc;
use znovel_domain::Error;
use znovel_domain::auth::Actor;
use znovel_domain::ports::{Rate, RateLimiter};
use znovel_domain::services::rate_limit;

/// The per-key and per-tenant request limits.
#[derive(Clone)]
pub struct RequestLimits {
    limiter: Arc<dyn RateLimiter>,
    per_key: Option<Rate>,
    per_tenant: Option<Rate>,
}

impl RequestLimits {
    /// Limits counted by `limiter` (in-process, or Redis for every replica at once).
    pub fn new(limiter: Arc<dyn RateLimiter>, settings: &RateLimitSettings) -> Self {
        let rate = |n: u32| (n > 0).then(|| Rate::per_minute(n));
        Self {
            limiter,
            per_key: rate(settings.requests_per_key),
            per_tenant: rate(settings.requests_per_tenant),
        }
    }

    /// Counts one request of `actor`; `RateLimited` when its key or tenant is over.
    pub async fn check(&self, actor: &Actor) -> Result<(), Error> {
        if let Some(rate) = self.per_key {
            let bucket = match actor.api_key_id {
                Some(key) => format!("key:{key}"),
                None => format!("user:{}", actor.user_id),
            };
            rate_limit(&*self.limiter, &bucket, rate, || {
                format!("requests per minute for this credential ({})", rate.max)
            })
            .await?;
        }
        if let Some(rate) = self.per_tenant {
            let bucket = format!("tenant:{}", actor.tenant_id);
            rate_limit(&*self.limiter, &bucket, rate, || {
                format!("requests per minute for this tenant ({})", rate.max)
            })
            .await?;
        }
        Ok(())
    }
}

/// The HTTP answer to a refused request: 429 with `Retry-After` on the public endpoint
/// (200 behind a router, like a refused credential: see [`AppState::behind_router`]).
pub(super) fn refused(state: &AppState, e: Error, graphql_media: bool) -> axum::response::Response {
    let retry_after = match &e {
        Error::RateLimited {
            retry_after_secs, ..
        } => Some(*retry_after_secs),
        _ => None,
    };
    let resp = error_response(to_gql(e));
    state
        .metrics
        .graphql_errors
        .with_label_values(&[resp
            .errors
            .first()
            .map_or(ErrorCode::Internal, ErrorCode::of)
            .as_str()])
        .inc();
    let body = serde_json::to_string(&resp).unwrap_or_default();
    let status = if state.behind_router {
        StatusCode::OK
    } else {
        StatusCode::TOO_MANY_REQUESTS
    };
    let mut out = json_response(status, body, graphql_media);
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    out
}

/// Wraps the executor of a WebSocket connection: each operation is counted against the
/// connection actor's limits before it runs.
#[derive(Clone)]
pub struct LimitedExecutor<E> {
    inner: E,
    limits: RequestLimits,
}

impl<E> LimitedExecutor<E> {
    /// Wraps `inner`.
    pub fn new(inner: E, limits: RequestLimits) -> Self {
        Self { inner, limits }
    }
}

/// The actor of a connection's session data.
fn session_actor(data: Option<&Data>) -> Option<Actor> {
    let data = data?;
    if let Some(live) = data
        .get(&TypeId::of::<crate::live_auth::LiveCredential>())
        .and_then(|b| b.downcast_ref::<crate::live_auth::LiveCredential>())
    {
        return live.current().ok();
    }
    data.get(&TypeId::of::<crate::graphql::context::RequestCtx>())
        .and_then(|b| b.downcast_ref::<crate::graphql::context::RequestCtx>())
        .and_then(|r| r.actor.clone())
}

impl<E: Executor + Clone> Executor for LimitedExecutor<E> {
    async fn execute(&self, request: Request) -> Response {
        self.inner.execute(request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let Some(actor) = session_actor(session_data.as_deref()) else {
            return self.inner.execute_stream(request, session_data);
        };
        let (inner, limits) = (self.inner.clone(), self.limits.clone());
        stream::once(async move {
            match limits.check(&actor).await {
                Ok(()) => inner.execute_stream(request, session_data),
                Err(e) => stream::once(async move { error_response(to_gql(e)) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}
