//! Builds the whole server from [`Settings`]: the store (migrated), the services, the
//! bootstrap admin key, the routers; and serves them until shutdown.

use crate::auth::Authenticator;
use crate::bootstrap::{self, AdminKey};
use crate::config::Settings;
use crate::graphql::{self, SchemaLimits};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::server::{self, AppState, executor::InstrumentedSchema};
use crate::worker::{self, WorkerDeps, WorkerOptions};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use znovel_domain::services::Services;
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
    /// Why this process cannot generate chapters, if it cannot.
    pub generation_missing: Option<String>,
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
    /// Builds everything `serve` needs.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let store = Arc::new(open_store(settings, settings.migrate).await?);
        let pipeline = Pipeline::build(settings).await?;
        let mut services = Services::new(store.clone());
        let runner = pipeline.runner(store.clone(), store.clone());
        // In-process queue: jobs run only here, so without a model nothing could run them.
        // With Redis, other processes (`znovel worker`) may run them.
        let generation_missing = if runner.is_some() || settings.redis_url.is_some() {
            services = services.with_generation(pipeline.service(store.clone(), store.clone()));
            None
        } else {
            pipeline.llm_missing.clone()
        };
        if let Some(why) = &generation_missing {
            tracing::warn!(reason = %why, "chapter generation is unavailable");
        }
        let workers = runner.map(|runner| {
            (
                WorkerDeps {
                    queue: pipeline.queue.clone(),
                    jobs: store.clone(),
                    streams: pipeline.streams.clone(),
                    runner,
                },
                WorkerOptions {
                    concurrency: settings.worker_concurrency,
                    ..WorkerOptions::default()
                },
            )
        });
        let admin_key = if settings.bootstrap {
            Some(bootstrap::ensure_local_admin(&services.admin, &settings.data_dir).await?)
        } else {
            None
        };
        let metrics = Metrics::new(Some(store.clone()))?;
        let limits = SchemaLimits {
            max_depth: settings.limits.max_query_depth,
            max_complexity: settings.limits.max_query_complexity,
        };
        let schema = graphql::build_schema(services.clone(), &limits);
        let state = AppState {
            executor: InstrumentedSchema::new(schema, metrics.clone()),
            auth: Authenticator::new(services.admin.clone(), &settings.jwt)?,
            metrics: metrics.clone(),
            store: store.clone(),
        };
        Ok(Self {
            router: server::router(state, settings.limits.max_body_bytes),
            metrics_router: server::metrics_router(metrics),
            store,
            services,
            admin_key,
            workers,
            generation_missing,
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
        let (tx, rx) = tokio::sync::watch::channel(false);
        let workers = self
            .workers
            .map(|(deps, opts)| worker::spawn(deps, opts, rx.clone()))
            .unwrap_or_default();
        let mut metrics_rx = rx.clone();
        let metrics = tokio::spawn(async move {
            axum::serve(metrics_listener, self.metrics_router)
                .with_graceful_shutdown(async move {
                    let _ = metrics_rx.wait_for(|stop| *stop).await;
                })
                .await
        });
        let result = axum::serve(listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = tx.send(true);
            })
            .await;
        let _ = metrics.await;
        // Workers hand their jobs back on shutdown (they resume elsewhere, or here at the
        // next start) — give them a moment to do so.
        for w in workers {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), w).await;
        }
        result.context("HTTP server failed")
    }
}

/// Binds `addr`, naming the variable on failure.
pub async fn bind(addr: SocketAddr, variable: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({variable})"))
}
