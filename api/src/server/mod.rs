//! The axum server: routes, middleware (request id, tracing, metrics, body limit,
//! timeouts), the separate metrics listener, and graceful shutdown. [`router`] serves
//! GraphQL plus the probes; [`probe_router`] only the probes (roles without a GraphQL
//! API, such as the job worker).

pub mod executor;
pub mod files;
pub mod health;
pub mod http;
pub mod limits;
pub mod listen;
pub mod playground;
pub mod sse;
pub mod ws;

use crate::auth::Authenticator;
use crate::config::LimitSettings;
use crate::live_auth::LiveCredentials;
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::{FromRef, MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use executor::InstrumentedSchema;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use znovel_domain::ports::JobQueue;
use znovel_infra::SqlStore;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The schema, instrumented.
    pub executor: InstrumentedSchema,
    /// Credential verification.
    pub auth: Authenticator,
    /// Metrics.
    pub metrics: Metrics,
    /// The database, for readiness.
    pub store: Arc<SqlStore>,
    /// Concurrent subscriptions allowed on one WebSocket connection.
    pub max_subscriptions: usize,
    /// Turns true when the server shuts down (WebSockets are then closed with 1012).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The WebSocket sessions running; shutdown waits (a few seconds at most) for each to
    /// close its connection with 1012 before the process exits.
    pub sessions: tokio_util::task::TaskTracker,
    /// Whether this is a subgraph behind a federation router rather than the public
    /// endpoint. The public endpoint refuses a request without a credential before
    /// reading its body (HTTP 401) and closes a WebSocket whose `connection_init` has no
    /// valid credential with 4403, as graphql-transport-ws says. Behind a router,
    /// requests without a credential run (the router may ask for `_service`) and a bad
    /// WebSocket credential fails each operation with `UNAUTHENTICATED` instead — a
    /// router retries a closed upstream connection instead of telling its client — and a
    /// bad credential over HTTP is that error with status 200, not 401 (a router adds an
    /// error of its own for a subgraph's non-2xx answer).
    pub behind_router: bool,
    /// How long a WebSocket may take to send `connection_init` (then: 4408).
    pub ws_init_timeout: std::time::Duration,
    /// Largest WebSocket message (the body limit of HTTP).
    pub max_message_bytes: usize,
    /// Whether this router serves the web playground (see [`playground`]).
    pub playground: bool,
    /// Keeps the credentials of WebSocket connections and SSE streams current.
    pub live: LiveCredentials,
    /// Requests per key and per tenant.
    pub limits: limits::RequestLimits,
    /// Stored files, for downloads through signed links (`GET /files/{id}`).
    pub files: znovel_domain::services::FileService,
    /// Queues imports (`POST /files/import`), when this process can.
    pub generation: Option<znovel_domain::services::GenerationService>,
    /// Whether this router serves the file routes (`POST /files`, `POST /files/import`,
    /// `GET /files/{id}`): the all-in-one server and the file role do.
    pub file_routes: bool,
}

/// What the probes (`/health`, `/ready`) need; every process has it, with or without a
/// GraphQL API.
#[derive(Clone)]
pub struct Probes {
    /// Metrics.
    pub metrics: Metrics,
    /// The database, for readiness.
    pub store: Arc<SqlStore>,
}

impl FromRef<Arc<AppState>> for Probes {
    fn from_ref(state: &Arc<AppState>) -> Self {
        Self {
            metrics: state.metrics.clone(),
            store: state.store.clone(),
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The public router: `/graphql`, `/health`, `/ready`, `/`, the file routes when on
/// (`POST /files`, `POST /files/import`, `GET /files/{id}` downloads through signed links;
/// see [`files`]), and the web playground when on. A request body must arrive within the
/// body deadline (else 408).
pub fn router(state: AppState, limits: &LimitSettings) -> Router {
    let metrics = state.metrics.clone();
    let body_limits = BodyLimits {
        plain: limits.max_body_bytes,
        upload: upload_limit(state.files.max_bytes(), limits.max_body_bytes),
    };
    let serve_playground = state.playground;
    let mut routes = Router::new()
        .route("/graphql", get(http::get).post(http::post))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/", get(index));
    if state.file_routes {
        routes = routes
            .route("/files", axum::routing::post(files::upload))
            .route("/files/import", axum::routing::post(files::import))
            .route("/files/{id}", get(files::download));
    }
    let mut routes = routes
        .with_state(Arc::new(state))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            limits.body_timeout_secs,
        )));
    if serve_playground {
        routes = playground::mount(routes);
    }
    with_layers(routes, metrics, body_limits)
}

/// The router of a process without a GraphQL API (`role`: its name): `/health`, `/ready`,
/// and `/` saying what it is.
pub fn probe_router(probes: Probes, role: &'static str) -> Router {
    let metrics = probes.metrics.clone();
    let routes = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route(
            "/",
            get(move || async move {
                axum::Json(serde_json::json!({
                    "name": "Z-Novel",
                    "role": role,
                    "graphql": null,
                    "health": "/health",
                    "ready": "/ready"
                }))
            }),
        )
        .with_state(probes);
    with_layers(
        routes,
        metrics,
        BodyLimits {
            plain: 64 * 1024,
            upload: 64 * 1024,
        },
    )
}

/// The largest upload request: a file of `max_file_bytes` plus the ordinary body limit
/// for the rest of the request.
pub fn upload_limit(max_file_bytes: i64, max_body_bytes: usize) -> usize {
    usize::try_from(max_file_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(max_body_bytes)
}

/// Body limits: uploads (a multipart `POST /graphql`, `POST /files`, `POST /files/import`)
/// get [`upload_limit`], every other request the ordinary limit.
#[derive(Debug, Clone, Copy)]
struct BodyLimits {
    plain: usize,
    upload: usize,
}

/// Applies the body limit that fits the request (413 past it), with tower-http's layer.
async fn limit_body(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    use tower::{Layer, Service};
    let upload = req.method() == axum::http::Method::POST
        && (http::is_multipart(req.headers())
            || matches!(req.uri().path(), "/files" | "/files/import"));
    let limit = if upload { limits.upload } else { limits.plain };
    let mut limited = RequestBodyLimitLayer::new(limit).layer(IntoBody(next));
    match limited.call(req).await {
        Ok(resp) => resp.map(axum::body::Body::new),
        Err(never) => match never {},
    }
}

/// The rest of the middleware stack, taking the limited body back as a plain one.
struct IntoBody(Next);

impl tower::Service<Request<tower_http::body::Limited<axum::body::Body>>> for IntoBody {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = <Next as tower::Service<Request>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<tower_http::body::Limited<axum::body::Body>>) -> Self::Future {
        self.0.call(req.map(axum::body::Body::new))
    }
}

/// The middleware every public route gets: metrics, body limit, panic catching, tracing
/// with the request id.
fn with_layers(routes: Router, metrics: Metrics, body_limits: BodyLimits) -> Router {
    routes
        .layer(middleware::from_fn_with_state(metrics, track_http))
        .layer(middleware::from_fn_with_state(body_limits, limit_body))
        .layer(middleware::map_response(close_unread_bodies))
        .layer(CatchPanicLayer::new())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// A request refused as too large (413) leaves its body unread on the connection, so the
/// server closes that connection after the answer; `Connection: close` says so up front.
/// Without it a client may send its next request on the closing connection and see it
/// fail with no response at all.
async fn close_unread_bodies(mut response: Response) -> Response {
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

async fn index() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "name": "Z-Novel",
        "graphql": "/graphql",
        "health": "/health",
        "ready": "/ready"
    }))
}

/// Counts every HTTP request by method, matched route and status, with its latency.
async fn track_http(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    let m = &metrics;
    m.http_requests
        .with_label_values(&[&method, &route, resp.status().as_str()])
        .inc();
    m.http_duration
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// The metrics router: `GET /metrics`; `queue` (when this process has one) feeds the
/// queue gauges at every scrape.
pub fn metrics_router(metrics: Metrics, queue: Option<Arc<dyn JobQueue>>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let (m, q) = (metrics.clone(), queue.clone());
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    m.render_fresh(q.as_deref()).await,
                )
            }
        }),
    )
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining");
}
