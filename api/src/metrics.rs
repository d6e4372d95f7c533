//! Prometheus metrics of the API process, declared in one place. Served as text on
//! `ZNOVEL_METRICS_LISTEN` at `/metrics`, on a port separate from the API.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::Arc;
use znovel_infra::SqlStore;

/// Latency buckets (seconds) for HTTP and GraphQL operations.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric of the process.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by method, route and status code.
    pub http_requests: IntCounterVec,
    /// HTTP request latency by method and route.
    pub http_duration: HistogramVec,
    /// GraphQL operations by operation name.
    pub graphql_operations: IntCounterVec,
    /// GraphQL operation latency by operation name.
    pub graphql_duration: HistogramVec,
    /// GraphQL errors by stable error code.
    pub graphql_errors: IntCounterVec,
    /// Open WebSocket connections.
    pub ws_connections: IntGauge,
    /// Database pool connections by state (`idle`, `in_use`, `max`).
    pub db_pool: IntGaugeVec,
    store: Option<Arc<SqlStore>>,
}

impl Metrics {
    /// Creates and registers every metric. `store` feeds the pool gauges at scrape time.
    pub fn new(store: Option<Arc<SqlStore>>) -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("znovel".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let graphql_operations = IntCounterVec::new(
            Opts::new(
                "graphql_operations_total",
                "GraphQL operations by operation name",
            ),
            &["operation"],
        )?;
        let graphql_duration = HistogramVec::new(
            HistogramOpts::new(
                "graphql_operation_duration_seconds",
                "GraphQL operation latency by operation name",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation"],
        )?;
        let graphql_errors = IntCounterVec::new(
            Opts::new("graphql_errors_total", "GraphQL errors by error code"),
            &["code"],
        )?;
        let ws_connections =
            IntGauge::new("websocket_connections_active", "Open WebSocket connections")?;
        let db_pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(graphql_operations.clone()))?;
        registry.register(Box::new(graphql_duration.clone()))?;
        registry.register(Box::new(graphql_errors.clone()))?;
        registry.register(Box::new(ws_connections.clone()))?;
        registry.register(Box::new(db_pool.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            graphql_operations,
            graphql_duration,
            graphql_errors,
            ws_connections,
            db_pool,
            store,
        })
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        if let Some(store) = &self.store {
            let s = store.pool_stats();
            self.db_pool
                .with_label_values(&["idle"])
                .set(i64::from(s.idle));
            self.db_pool
                .with_label_values(&["in_use"])
                .set(i64::from(s.connections.saturating_sub(s.idle)));
            self.db_pool
                .with_label_values(&["max"])
                .set(i64::from(s.max));
        }
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// A metric label for a client-chosen operation name: at most 64 characters of
/// `[A-Za-z0-9_]`, else `other`; `anonymous` when unnamed. Keeps label cardinality bounded
/// by what the client's code names, not by arbitrary input.
pub fn operation_label(name: Option<&str>) -> String {
    match name {
        None | Some("") => "anonymous".into(),
        Some(n) if n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            n.to_owned()
        }
        Some(_) => "other".into(),
    }
}
