//! Prometheus metrics of the API process, declared in one place. Served as text on
//! `ZNOVEL_METRICS_LISTEN` at `/metrics`, on a port separate from the API.

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use znovel_domain::model::GenerationJob;
use znovel_domain::ports::{JobQueue, LlmError};
use znovel_infra::SqlStore;

/// The prefix of every metric name.
pub const PREFIX: &str = "znovel";

/// Latency buckets (seconds) for HTTP and GraphQL operations.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets (seconds) for whole generation jobs and time to first token.
const JOB_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Buckets for model throughput (tokens per second).
const RATE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0, 200.0, 400.0,
];

/// Every metric of the process, shared: a clone is one reference count (the HTTP
/// middleware and every handler's state clone it per request). Its fields are those of
/// [`MetricSet`].
#[derive(Clone)]
pub struct Metrics(Arc<MetricSet>);

impl std::ops::Deref for Metrics {
    type Target = MetricSet;

    fn deref(&self) -> &MetricSet {
        &self.0
    }
}

/// The metrics themselves (see [`Metrics`]).
pub struct MetricSet {
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
    /// The chapter cache: `entries`, `bytes`, `serving` (1 or 0).
    pub chapter_cache: IntGaugeVec,
    /// Display reads of a chapter by outcome (`hit`: from memory, `miss`: the database).
    pub chapter_cache_reads: IntCounterVec,
    /// Generation jobs finished by this process's workers, by kind and outcome
    /// (`succeeded`, `failed`, `cancelled`, `retried`).
    pub jobs: IntCounterVec,
    /// Duration of a job attempt (start to end), by kind and outcome.
    pub job_duration: HistogramVec,
    /// Time from a job's start to its first token, by model.
    pub ttft: HistogramVec,
    /// Completion tokens per second after the first token, by model.
    pub tokens_per_second: HistogramVec,
    /// Fallback activations by reason (`error`: a model failed; `forced`: the switch).
    pub fallback_activations: IntCounterVec,
    /// Language-model errors by provider and error kind.
    pub llm_errors: IntCounterVec,
    /// Whether the forced-fallback switch is on (1) or off (0).
    pub fallback_forced: IntGauge,
    /// Jobs in the queue by state: `waiting` (not yet delivered: the consumer group's
    /// lag), `in_flight` (delivered, not acknowledged), `dead` (dead-lettered).
    pub queue_jobs: IntGaugeVec,
    /// Open GraphQL subscriptions by field.
    pub subscriptions: IntGaugeVec,
    /// Chunks delivered to subscribers (one per chunk per subscriber).
    pub chunks_delivered: IntCounter,
    /// Of those, the chunks sent as bytes shared by a job's subscribers (no GraphQL
    /// execution per subscriber; see `graphql::fanout`).
    pub chunks_shared: IntCounter,
    store: Option<Arc<SqlStore>>,
    /// The counter and histogram of every operation label in use, by label: the
    /// client-chosen names (at most [`MAX_OPERATION_LABELS`]) and the fixed ones. Held so
    /// that counting an operation is one map lookup, not one per metric.
    operations: RwLock<HashMap<String, OperationMetrics>>,
    /// Every registered metric's full name, sorted.
    names: Box<[String]>,
}

impl Metrics {
    /// Creates and registers every metric. `store` feeds the pool gauges at scrape time.
    pub fn new(store: Option<Arc<SqlStore>>) -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some(PREFIX.into()), None)?;
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
        let chapter_cache = IntGaugeVec::new(
            Opts::new(
                "chapter_cache",
                "Chapters kept in memory for display reads: entries, bytes, serving (1/0)",
            ),
            &["state"],
        )?;
        let chapter_cache_reads = IntCounterVec::new(
            Opts::new(
                "chapter_cache_reads_total",
                "Display reads of a chapter by outcome (hit: from memory, miss: the database)",
            ),
            &["outcome"],
        )?;
        let jobs = IntCounterVec::new(
            Opts::new(
                "generation_jobs_total",
                "Generation jobs finished by this process's workers, by kind and outcome",
            ),
            &["kind", "outcome"],
        )?;
        let job_duration = HistogramVec::new(
            HistogramOpts::new(
                "generation_job_duration_seconds",
                "Duration of a generation job attempt, by kind and outcome",
            )
            .buckets(JOB_BUCKETS.to_vec()),
            &["kind", "outcome"],
        )?;
        let ttft = HistogramVec::new(
            HistogramOpts::new(
                "llm_time_to_first_token_seconds",
                "Time from a job's start to its first token, by model",
            )
            .buckets(JOB_BUCKETS.to_vec()),
            &["model"],
        )?;
        let tokens_per_second = HistogramVec::new(
            HistogramOpts::new(
                "llm_tokens_per_second",
                "Completion tokens per second after the first token, by model",
            )
            .buckets(RATE_BUCKETS.to_vec()),
            &["model"],
        )?;
        let fallback_activations = IntCounterVec::new(
            Opts::new(
                "llm_fallback_activations_total",
                "Requests served by a fallback model, by reason (error or forced)",
            ),
            &["reason"],
        )?;
        let llm_errors = IntCounterVec::new(
            Opts::new(
                "llm_errors_total",
                "Language-model errors by provider and error kind",
            ),
            &["provider", "error"],
        )?;
        let fallback_forced = IntGauge::new(
            "llm_fallback_forced",
            "1 while the forced-fallback switch (LLM_FALLBACK_ENABLED) is on",
        )?;
        let queue_jobs = IntGaugeVec::new(
            Opts::new(
                "queue_jobs",
                "Jobs in the queue by state (waiting = consumer-group lag, in_flight, dead)",
            ),
            &["state"],
        )?;
        let subscriptions = IntGaugeVec::new(
            Opts::new(
                "subscriptions_active",
                "Open GraphQL subscriptions by field",
            ),
            &["field"],
        )?;
        let chunks_delivered = IntCounter::new(
            "stream_chunks_delivered_total",
            "Chapter chunks delivered to subscribers (one per chunk per subscriber)",
        )?;
        let chunks_shared = IntCounter::new(
            "stream_chunks_shared_total",
            "Chapter chunks delivered as bytes shared by a job's subscribers, without executing GraphQL per subscriber",
        )?;
        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(http_requests.clone()),
            Box::new(http_duration.clone()),
            Box::new(graphql_operations.clone()),
            Box::new(graphql_duration.clone()),
            Box::new(graphql_errors.clone()),
            Box::new(ws_connections.clone()),
            Box::new(db_pool.clone()),
            Box::new(chapter_cache.clone()),
            Box::new(chapter_cache_reads.clone()),
            Box::new(jobs.clone()),
            Box::new(job_duration.clone()),
            Box::new(ttft.clone()),
            Box::new(tokens_per_second.clone()),
            Box::new(fallback_activations.clone()),
            Box::new(llm_errors.clone()),
            Box::new(fallback_forced.clone()),
            Box::new(queue_jobs.clone()),
            Box::new(subscriptions.clone()),
            Box::new(chunks_delivered.clone()),
            Box::new(chunks_shared.clone()),
        ];
        let mut names: Vec<String> = collectors
            .iter()
            .flat_map(|c| c.desc())
            .map(|d| format!("{PREFIX}_{}", d.fq_name))
            .collect();
        names.sort();
        for c in collectors {
            registry.register(c)?;
        }
        Ok(Self(Arc::new(MetricSet {
            registry,
            http_requests,
            http_duration,
            graphql_operations,
            graphql_duration,
            graphql_errors,
            ws_connections,
            db_pool,
            chapter_cache,
            chapter_cache_reads,
            jobs,
            job_duration,
            ttft,
            tokens_per_second,
            fallback_activations,
            llm_errors,
            fallback_forced,
            queue_jobs,
            subscriptions,
            chunks_delivered,
            chunks_shared,
            store,
            operations: RwLock::default(),
            names: names.into(),
        })))
    }

    /// Records a job attempt that ended with `outcome` (`succeeded`, `failed`,
    /// `cancelled`, `retried`), from its row as it is now: duration, and for a fresh
    /// start also time to first token and tokens per second.
    pub fn job_finished(&self, job: &GenerationJob, outcome: &str) {
        let kind = job.kind.as_str();
        self.jobs.with_label_values(&[kind, outcome]).inc();
        let Some(started) = job.started_at else {
            return;
        };
        let end = job.finished_at.unwrap_or_else(chrono::Utc::now);
        let secs = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
            (to - from).num_microseconds().map(|us| us as f64 / 1e6)
        };
        if let Some(d) = secs(started, end).filter(|d| *d >= 0.0) {
            self.job_duration
                .with_label_values(&[kind, outcome])
                .observe(d);
        }
        let model = job.model.as_deref().unwrap_or("unknown");
        // A resumed attempt keeps the first attempt's first token: no TTFT for it.
        if let Some(first) = job.first_token_at.filter(|f| *f >= started) {
            if let Some(t) = secs(started, first) {
                self.ttft.with_label_values(&[model]).observe(t);
            }
            if outcome == "succeeded"
                && job.attempts == 1
                && let Some(d) = secs(first, end).filter(|d| *d > 0.05)
            {
                self.tokens_per_second
                    .with_label_values(&[model])
                    .observe(job.completion_tokens as f64 / d);
            }
        }
    }

    /// Counts a fallback activation (`error` or `forced`).
    pub fn fallback(&self, reason: &str) {
        self.fallback_activations.with_label_values(&[reason]).inc();
    }

    /// Counts a model error of `provider`.
    pub fn llm_error(&self, provider: &str, error: &LlmError) {
        let kind = match error {
            LlmError::RateLimited { .. } => "rate_limited",
            LlmError::Http { .. } => "http",
            LlmError::FirstTokenTimeout(_) => "first_token_timeout",
            LlmError::StallTimeout(_) => "stall_timeout",
            LlmError::Protocol(_) => "protocol",
            LlmError::Connection(_) => "connection",
            LlmError::Unavailable(_) => "unavailable",
        };
        self.llm_errors.with_label_values(&[provider, kind]).inc();
    }

    /// Refreshes the gauges that need a round trip (the depth of `queue`, when this
    /// process has one), then renders.
    pub async fn render_fresh(&self, queue: Option<&dyn JobQueue>) -> String {
        if let Some(queue) = queue {
            match tokio::time::timeout(Duration::from_secs(2), queue.stats()).await {
                Ok(Ok(s)) => {
                    for (state, n) in [
                        ("waiting", s.waiting),
                        ("in_flight", s.in_flight),
                        ("dead", s.dead),
                    ] {
                        self.queue_jobs
                            .with_label_values(&[state])
                            .set(i64::try_from(n).unwrap_or(i64::MAX));
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read queue gauges"),
                Err(_) => tracing::warn!("timed out reading queue gauges"),
            }
        }
        self.render()
    }

    /// The full name of every metric this binary exports (what dashboards and alerts may
    /// use), sorted. Histograms export `_bucket`, `_sum` and `_count` series of these.
    pub fn names() -> anyhow::Result<Vec<String>> {
        Ok(Self::new(None)?.names.to_vec())
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
            let c = store.chapter_cache_stats();
            let gauge = |state: &str, v: usize| {
                self.chapter_cache
                    .with_label_values(&[state])
                    .set(i64::try_from(v).unwrap_or(i64::MAX));
            };
            gauge("entries", c.entries);
            gauge("bytes", c.bytes);
            gauge("serving", usize::from(c.serving));
            for (outcome, total) in [("hit", c.hits), ("miss", c.misses)] {
                let counter = self.chapter_cache_reads.with_label_values(&[outcome]);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
        }
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Most distinct operation names one process uses as metric labels; later names count
/// as `other`. Clients name a bounded set of operations; anything past that is noise, or
/// an attack on the metrics' size.
pub const MAX_OPERATION_LABELS: usize = 200;

/// One operation label's metrics: `graphql_operations_total` and
/// `graphql_operation_duration_seconds` with that label.
#[derive(Clone)]
pub struct OperationMetrics {
    count: IntCounter,
    duration: prometheus::Histogram,
}

impl OperationMetrics {
    /// Counts one operation that took `seconds`.
    pub fn observe(&self, seconds: f64) {
        self.count.inc();
        self.duration.observe(seconds);
    }
}

/// The fixed labels, which never count against [`MAX_OPERATION_LABELS`].
const FIXED_OPERATION_LABELS: [&str; 3] = ["anonymous", "other", "invalid"];

impl Metrics {
    /// The metrics of a client-chosen operation name: labelled with the name when it is
    /// at most 64 characters of `[A-Za-z0-9_]` (else `other`), `anonymous` when unnamed,
    /// and `other` once [`MAX_OPERATION_LABELS`] distinct names are in use — so label
    /// cardinality is bounded by what clients' code names, not by arbitrary input.
    pub fn operation(&self, name: Option<&str>) -> OperationMetrics {
        let label = match name {
            None | Some("") => "anonymous",
            Some(n) if is_operation_label(n) => n,
            Some(_) => "other",
        };
        self.labelled_operation(label)
    }

    /// The metrics of an operation refused before execution (it does not parse or
    /// validate): labelled `invalid`, whatever name the client gave it.
    pub fn invalid_operation(&self) -> OperationMetrics {
        self.labelled_operation("invalid")
    }

    fn labelled_operation(&self, label: &str) -> OperationMetrics {
        if let Some(m) = self
            .operations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(label)
        {
            return m.clone();
        }
        let mut held = self
            .operations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = held.get(label) {
            return m.clone();
        }
        let named = held
            .keys()
            .filter(|k| !FIXED_OPERATION_LABELS.contains(&k.as_str()))
            .count();
        let label = if FIXED_OPERATION_LABELS.contains(&label) || named < MAX_OPERATION_LABELS {
            label
        } else {
            "other"
        };
        held.entry(label.to_owned())
            .or_insert_with(|| OperationMetrics {
                count: self.graphql_operations.with_label_values(&[label]),
                duration: self.graphql_duration.with_label_values(&[label]),
            })
            .clone()
    }
}

/// Whether a client-chosen operation name is used as a label as it is: at most 64
/// characters of `[A-Za-z0-9_]`.
fn is_operation_label(name: &str) -> bool {
    name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
