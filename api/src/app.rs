//! Builds the server from [`Settings`] — the all-in-one server, or one [`Role`] of the
//! distributed deployment: the store (migrated), the services, the bootstrap admin key,
//! the workers, the routers; and serves them until shutdown.

use crate::auth::Authenticator;
use crate::bootstrap::{self, AdminKey};
use crate::config::Settings;
use crate::embedding;
use crate::graphql::trusted::TrustedDocuments;
use crate::graphql::{self, SchemaLimits};
use crate::live_auth::LiveCredentials;
use crate::memory::Memory;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::role::Role;
use crate::server::executor::{InstrumentedSchema, ServedSchema};
use crate::server::limits::RequestLimits;
use crate::server::{self, AppState, Probes};
use crate::worker::{self, WorkerDeps, WorkerOptions};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use znovel_domain::ports::TrustedDocumentRepository;
use znovel_domain::ports::{CredentialEvents, Rate, RateLimiter};
use znovel_domain::services::{FileService, GenerationService, Services};
use znovel_infra::queue::credentials::MemoryCredentialEvents;
use znovel_infra::rate_limit::{MemoryRateLimiter, RedisRateLimiter};
use znovel_infra::{SqlOptions, SqlStore};

/// A built, not yet listening, server.
pub struct App {
    /// The public router.
    pub router: axum::Router,
    /// The metrics router.
    pub metrics_router: axum::Router,
    /// The store.
    pub store: Arc<SqlStore>,
    /// The services.
    pub services: Services,
    /// The bootstrap admin key, when bootstrap is on.
    pub admin_key: Option<AdminKey>,
    /// In-process job workers, when this process runs jobs.
    pub workers: Option<(WorkerDeps, WorkerOptions)>,
    /// The story's memory, when this process has one (every role with a GraphQL API or
    /// workers).
    pub memory: Option<Memory>,
    /// Whether the job queue lives in this process (its unfinished jobs are queued again
    /// at start).
    pub local_queue: bool,
    /// Why this process cannot generate chapters, if it cannot.
    pub generation_missing: Option<String>,
    /// Turns true when the server starts shutting down: workers hand their jobs back,
    /// WebSocket connections are closed with a reconnect hint.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// The WebSocket sessions of the served router (see `AppState::sessions`).
    pub sessions: tokio_util::task::TaskTracker,
    /// How long a client may take to send a request's headers (and an idle keep-alive
    /// connection stays open).
    pub header_timeout: Duration,
}

/// Connects to the database in `settings` (creating the data dir for SQLite) and, when
/// asked, runs the migrations.
pub async fn open_store(settings: &Settings, migrate: bool) -> anyhow::Result<SqlStore> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create ZNOVEL_DATA_DIR {}",
            settings.data_dir.display()
        )
    })?;
    let opts = SqlOptions {
        max_connections: settings.database_max_connections,
        chapter_cache_bytes: settings.chapter_cache_bytes,
        ..SqlOptions::default()
    };
    let store = SqlStore::connect(&settings.effective_database_url(), opts)
        .await
        .context("cannot connect to the database (DATABASE_URL)")?;
    if migrate {
        store.migrate().await.context("database migration failed")?;
    }
    Ok(store)
}

impl App {
    /// Builds the all-in-one server plain `znovel serve` runs: the gateway schema (every
    /// subgraph merged) and, when a model is available, in-process workers.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        Self::build_role(settings, None).await
    }

    /// Builds what `znovel serve --role <role>` runs; `None` is the all-in-one server.
    /// See [`Role`] for what each role serves and whether it runs jobs. Reads top to
    /// bottom: each part is built once, from what the previous ones made, then handed on.
    pub async fn build_role(settings: &Settings, role: Option<Role>) -> anyhow::Result<Self> {
        let store = Arc::new(open_store(settings, settings.migrate).await?);
        if settings.file_link_secret.is_none() && settings.jwt.secret.is_none() && role.is_some() {
            tracing::warn!(
                "neither ZNOVEL_FILE_LINK_SECRET nor JWT_SECRET is set: file download links \
                 work only on the process that made them"
            );
        }
        let files = FileService::new(
            store.clone(),
            settings.file_links(),
            settings.max_file_bytes,
        );
        let metrics = Metrics::new(Some(store.clone()))?;
        let shutdown = tokio::sync::watch::Sender::new(false);
        let sessions = tokio_util::task::TaskTracker::new();
        let shared_queue = settings.redis_url.is_some();
        let runs_workers = role.is_none_or(|r| r.runs_workers(shared_queue));
        // Roles without a GraphQL API that run no jobs need neither the queue nor a model.
        let pipeline = if role.is_none_or(|r| r.subgraph().is_some() || runs_workers) {
            Some(Pipeline::build(settings, runs_workers, &metrics).await?)
        } else {
            None
        };
        let memory = match &pipeline {
            Some(p) => Some(Memory::build(
                store.clone(),
                p,
                embedding::build_embedder(settings)?,
                settings,
            )?),
            None => None,
        };
        let generation = match (&pipeline, &memory) {
            (Some(p), Some(m)) => {
                wire_generation(p, m, &store, &files, &metrics, settings, role, runs_workers)?
            }
            _ => Generation::default(),
        };
        if let Some(why) = &generation.missing {
            tracing::warn!(reason = %why, "chapter generation is unavailable");
        }
        let mut services = Services::new(store.clone());
        services.files = files.clone();
        if let Some(p) = &pipeline {
            services.validation = p.validation(store.clone());
        }
        if let Some(m) = &memory {
            services =
                services.with_memory(m.indexer.clone(), m.scheduler.clone(), m.recall.clone());
        }
        // Rate limits: in this process, or in Redis for every replica at once.
        let limiter: Arc<dyn RateLimiter> = match pipeline.as_ref().and_then(|p| p.redis.clone()) {
            Some(conns) => Arc::new(RedisRateLimiter::new(conns, &settings.redis_prefix)?),
            None => Arc::new(MemoryRateLimiter::default()),
        };
        if let Some(mut g) = generation.service {
            let starts = settings.rate_limits.generations_per_tenant;
            if starts > 0 {
                g = g.with_start_limit(limiter.clone(), Rate::per_minute(starts));
            }
            services = services.with_generation(g);
        }
        // Revocations and role changes are announced to every process (see `live_auth`).
        let credential_events: Arc<dyn CredentialEvents> = match &pipeline {
            Some(p) => p.credentials.clone(),
            None => Arc::new(MemoryCredentialEvents::default()),
        };
        services.admin = services
            .admin
            .with_credential_events(credential_events.clone());
        let admin_key = if settings.bootstrap_enabled(role.is_none()) {
            Some(bootstrap::ensure_local_admin(&services.admin, &settings.data_dir).await?)
        } else {
            None
        };
        let metrics_router =
            server::metrics_router(metrics.clone(), pipeline.map(|p| p.queue.clone()));
        let auth = Authenticator::new(services.admin.clone(), &settings.jwt)?;
        let router = match served_schema(settings, role, &services, &store)? {
            Some(schema) => {
                let state = AppState {
                    executor: InstrumentedSchema::new(schema, metrics.clone()),
                    live: LiveCredentials::new(auth.clone(), credential_events),
                    limits: RequestLimits::new(limiter, &settings.rate_limits),
                    files: files.clone(),
                    generation: services.generation.clone(),
                    file_routes: role.is_none_or(|r| r == Role::File),
                    auth,
                    metrics,
                    store: store.clone(),
                    max_subscriptions: settings.limits.max_subscriptions_per_connection,
                    shutdown: shutdown.subscribe(),
                    sessions: sessions.clone(),
                    behind_router: role.is_some(),
                    ws_init_timeout: Duration::from_secs(settings.limits.ws_init_timeout_secs),
                    max_message_bytes: settings.limits.max_body_bytes,
                    // In a cluster the Ingress routes the playground to story-gen.
                    playground: settings.playground && role.is_none_or(|r| r == Role::StoryGen),
                };
                server::router(state, &settings.limits)
            }
            None => {
                let probes = Probes {
                    metrics,
                    store: store.clone(),
                };
                let name = role.map_or("all-in-one", Role::name);
                server::probe_router(probes, name)
            }
        };
        Ok(Self {
            router,
            metrics_router,
            store,
            services,
            admin_key,
            workers: generation.workers,
            memory,
            local_queue: !shared_queue,
            generation_missing: generation.missing,
            shutdown,
            sessions,
            header_timeout: Duration::from_secs(settings.limits.header_timeout_secs),
        })
    }

    /// Serves on the given listeners until `shutdown` resolves, then drains in-flight
    /// requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics_listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (tx, rx) = (self.shutdown.clone(), self.shutdown.subscribe());
        let mut workers = Vec::new();
        if let Some((deps, opts)) = self.workers {
            // A process that runs jobs also keeps the memory up to date.
            if let Some(m) = &self.memory {
                workers.push(tokio::spawn(crate::memory::maintain(
                    deps.jobs.clone(),
                    self.store.clone(),
                    deps.queue.clone(),
                    m.scheduler.clone(),
                    self.local_queue,
                    rx.clone(),
                )));
            }
            workers.extend(worker::spawn(deps, opts, rx.clone()));
        }
        // Novels whose Qdrant copy missed a write are copied again once Qdrant answers.
        if let Some(mirror) = self.memory.as_ref().and_then(|m| m.mirror.clone()) {
            workers.push(tokio::spawn(
                mirror.resync_loop(crate::memory::RESYNC_EVERY, rx.clone()),
            ));
        }
        let mut metrics_rx = rx.clone();
        let metrics = tokio::spawn(async move {
            axum::serve(metrics_listener, self.metrics_router)
                .with_graceful_shutdown(async move {
                    let _ = metrics_rx.wait_for(|stop| *stop).await;
                })
                .await
        });
        let result =
            server::listen::serve(listener, self.router, self.header_timeout, async move {
                shutdown.await;
                let _ = tx.send(true);
            })
            .await;
        let _ = metrics.await;
        // Open WebSockets were told to reconnect (1012) when the shutdown began; let each
        // finish its closing handshake, or the process exit would reset the connection
        // before the close frame is out.
        self.sessions.close();
        if tokio::time::timeout(SESSIONS_DRAIN, self.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.sessions.len(),
                "WebSocket sessions still open at exit"
            );
        }
        // Workers hand their jobs back on shutdown (they resume elsewhere, or here at the
        // next start) — give them a moment to do so.
        for w in workers {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), w).await;
        }
        result.context("HTTP server failed")
    }
}

/// How long shutdown waits for open WebSocket sessions to close.
const SESSIONS_DRAIN: Duration = Duration::from_secs(5);

/// Binds `addr` with an accept queue of `backlog` connections (the kernel caps it at
/// `net.core.somaxconn`), naming the variable on failure. Address reuse is on, as with
/// `TcpListener::bind`, so a restarted server binds while old connections linger.
pub fn bind(addr: SocketAddr, backlog: u32, variable: &str) -> anyhow::Result<TcpListener> {
    let listen = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(backlog)
    };
    listen().with_context(|| format!("cannot listen on {addr} ({variable})"))
}

/// What the pipeline gives this process for chapter generation.
#[derive(Default)]
struct Generation {
    /// The generation service, when jobs can run (here, or elsewhere through Redis).
    service: Option<GenerationService>,
    /// In-process workers, when this process runs jobs.
    workers: Option<(WorkerDeps, WorkerOptions)>,
    /// Why this process cannot generate chapters, if it cannot.
    missing: Option<String>,
}

/// Wires generation from the pipeline: the service the API calls and the workers (which
/// remember what they write and run memory jobs).
#[allow(clippy::too_many_arguments)]
fn wire_generation(
    pipeline: &Pipeline,
    memory: &Memory,
    store: &Arc<SqlStore>,
    files: &FileService,
    metrics: &Metrics,
    settings: &Settings,
    role: Option<Role>,
    runs_workers: bool,
) -> anyhow::Result<Generation> {
    let shared_queue = settings.redis_url.is_some();
    let runner = pipeline.runner(store.clone(), store.clone()).map(|r| {
        r.with_memory(memory.for_runner(store.clone(), pipeline))
            .with_files(files.clone())
    });
    if role == Some(Role::JobWorker) && runner.is_none() {
        anyhow::bail!(
            "no language model: {}",
            pipeline.llm_missing.clone().unwrap_or_default()
        );
    }
    let mut generation = Generation::default();
    // In-process queue: jobs run only in this process, so without a model nothing could
    // run them. With Redis, other processes (job workers) may run them.
    if runner.is_some() || shared_queue {
        generation.service = Some(pipeline.service(store.clone(), store.clone()));
    } else if role.is_none_or(|r| r == Role::StoryGen) {
        generation.missing = pipeline.llm_missing.clone();
    }
    generation.workers = runner.filter(|_| runs_workers).map(|runner| {
        (
            WorkerDeps {
                queue: pipeline.queue.clone(),
                jobs: store.clone(),
                events: pipeline.events.clone(),
                runner,
                metrics: Some(metrics.clone()),
            },
            WorkerOptions::for_visibility(
                settings.worker_concurrency,
                settings.job_visibility_timeout_secs,
            ),
        )
    });
    Ok(generation)
}

/// The GraphQL schema this process serves: the gateway's (all-in-one), one subgraph's,
/// or none (roles without a GraphQL API).
fn served_schema(
    settings: &Settings,
    role: Option<Role>,
    services: &Services,
    store: &Arc<SqlStore>,
) -> anyhow::Result<Option<ServedSchema>> {
    let registry: Arc<dyn TrustedDocumentRepository> = store.clone();
    let limits = SchemaLimits {
        max_depth: settings.limits.max_query_depth,
        max_complexity: settings.limits.max_query_complexity,
        max_selections: settings.limits.max_query_selections,
        trusted: TrustedDocuments::new(settings.trusted_documents, Some(registry)),
    };
    Ok(match role.map(|r| r.subgraph()) {
        None => Some(graphql::build_schema(services.clone(), &limits).into()),
        Some(Some(name)) => Some(
            graphql::build_subgraph(name, services.clone(), &limits)
                .with_context(|| format!("no subgraph {name}"))?
                .into(),
        ),
        Some(None) => None,
    })
}
