//! What every GraphQL request carries: the authenticated caller (if any) and the request
//! id. The HTTP and WebSocket transports put a [`RequestCtx`] into the request data;
//! resolvers read it with [`actor`].

use super::errors::{ErrorCode, to_gql};
use crate::live_auth::LiveCredential;
use crate::metrics::Metrics;
use async_graphql::Context;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use znovel_domain::{Error, auth::Actor};

/// Per-request data inserted by the transport (HTTP handler or WebSocket `connection_init`).
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// The authenticated caller; `None` for an anonymous request.
    pub actor: Option<Actor>,
    /// The request id (also in logs and the `x-request-id` response header).
    pub request_id: String,
}

/// The authenticated actor of the request, or an `UNAUTHENTICATED` error. On a
/// long-lived connection (WebSocket, SSE) it is the credential's standing now: revoked
/// is `UNAUTHENTICATED`, a changed role applies (see [`crate::live_auth`]).
pub fn actor(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    if let Some(live) = ctx.data_opt::<LiveCredential>() {
        let request_id = ctx
            .data_opt::<RequestCtx>()
            .map(|r| r.request_id.clone())
            .unwrap_or_default();
        return live
            .current()
            .map(|a| a.with_request_id(request_id))
            .map_err(to_gql);
    }
    ctx.data_opt::<RequestCtx>()
        .and_then(|r| {
            r.actor
                .clone()
                .map(|a| a.with_request_id(r.request_id.clone()))
        })
        .ok_or_else(|| to_gql(Error::Unauthenticated))
}

/// Per-connection subscription accounting, inserted by the WebSocket transport into the
/// connection's data: at most `max` subscriptions run at once on one connection.
#[derive(Clone)]
pub struct SubscriptionSlots {
    active: Arc<AtomicUsize>,
    max: usize,
    metrics: Option<Metrics>,
}

impl SubscriptionSlots {
    /// Slots for one connection.
    pub fn new(max: usize, metrics: Option<Metrics>) -> Self {
        Self {
            active: Arc::new(AtomicUsize::new(0)),
            max,
            metrics,
        }
    }
}

/// One running subscription: holds its slot (and the `subscriptions_active` gauge) until
/// dropped, i.e. until the subscription completes, is stopped or its connection closes.
pub struct SubscriptionGuard {
    slots: Option<SubscriptionSlots>,
    field: &'static str,
}

impl SubscriptionGuard {
    /// Takes a slot for `field`, or fails with `TOO_MANY_SUBSCRIPTIONS` when the
    /// connection already runs its maximum. Without slots (not over WebSocket) it always
    /// succeeds.
    pub fn acquire(ctx: &Context<'_>, field: &'static str) -> async_graphql::Result<Self> {
        let Some(slots) = ctx.data_opt::<SubscriptionSlots>().cloned() else {
            return Ok(Self { slots: None, field });
        };
        let before = slots.active.fetch_add(1, Ordering::AcqRel);
        if before >= slots.max {
            slots.active.fetch_sub(1, Ordering::AcqRel);
            return Err(ErrorCode::TooManySubscriptions.error(format!(
                "this connection already runs {} subscriptions, the most allowed; \
                     complete one first or open another connection",
                slots.max
            )));
        }
        if let Some(m) = &slots.metrics {
            m.subscriptions.with_label_values(&[field]).inc();
        }
        Ok(Self {
            slots: Some(slots),
            field,
        })
    }

    /// Counts `n` chunks delivered to this subscriber.
    pub fn delivered(&self, n: u64) {
        if let Some(m) = self.metrics() {
            m.chunks_delivered.inc_by(n);
        }
    }

    /// What counts this subscriber's chunks apart from its slot: a follower run by the
    /// connection (see [`fanout`](super::fanout)) outlives the subscription by a poll.
    pub fn deliveries(&self) -> Deliveries {
        Deliveries(self.metrics().cloned())
    }

    fn metrics(&self) -> Option<&Metrics> {
        self.slots.as_ref().and_then(|s| s.metrics.as_ref())
    }
}

/// Counts the chunks of one subscriber written as shared bytes (see
/// [`fanout`](super::fanout)).
#[derive(Clone)]
pub struct Deliveries(Option<Metrics>);

impl Deliveries {
    /// Counts `n` chunks delivered as shared bytes.
    pub fn shared(&self, n: u64) {
        if let Some(m) = &self.0 {
            m.chunks_delivered.inc_by(n);
            m.chunks_shared.inc_by(n);
        }
    }
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        if let Some(slots) = &self.slots {
            slots.active.fetch_sub(1, Ordering::AcqRel);
            if let Some(m) = &slots.metrics {
                m.subscriptions.with_label_values(&[self.field]).dec();
            }
        }
    }
}
