//! The `znovel` command line: `serve [--role ROLE]`, `worker`, `migrate`, `reindex`,
//! `print-schema`, `tenant create`, `apikey create`, … Flags override environment variables, which override
//! the config file.

use crate::app::{self, App};
use crate::config::{ProcessEnv, Settings};
use crate::graphql;
use crate::role::Role;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use znovel_domain::ports::TrustedDocumentRepository;
use znovel_domain::services::{CreateTenant, Services};

/// Z-Novel: the backend of an AI novel-writing platform.
#[derive(Debug, Parser)]
#[command(name = "znovel", version, about)]
pub struct Cli {
    /// TOML configuration file (also `ZNOVEL_CONFIG`).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (GraphQL API, health, metrics) — with no configuration, the
    /// embedded default on a SQLite file in ./data; with `--role`, one service of the
    /// distributed deployment.
    Serve(ServeArgs),
    /// Run job workers only (no GraphQL API; `/health`, `/ready` and `/metrics` for
    /// probes): claim generation jobs from the queue (Redis when `REDIS_URL` is set) and
    /// run them until SIGTERM, then hand unfinished jobs back. The same as
    /// `serve --role job-worker`.
    Worker {
        /// Jobs run at once (also `ZNOVEL_WORKER_CONCURRENCY`).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Listen flags.
        #[command(flatten)]
        listen: ListenArgs,
        /// Database flags.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Apply pending database migrations and exit.
    Migrate(DbArgs),
    /// Rebuild the Qdrant memory index (`QDRANT_URL`) from the database, which stays the
    /// record: every novel, or one. Run it after Qdrant lost data, or after an outage in
    /// which a process stopped before it could copy missed writes again.
    Reindex {
        /// Only this novel (its id).
        #[arg(long, value_name = "ID")]
        novel: Option<uuid::Uuid>,
        /// Database flags.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print the GraphQL schema (SDL): the public API, or one subgraph's federation SDL.
    PrintSchema {
        /// Print this subgraph's federation SDL instead (story-gen, memory, admin,
        /// rag-retrieval, validator, file).
        #[arg(long, conflicts_with = "list_subgraphs")]
        subgraph: Option<String>,
        /// Print the name of every subgraph instead, one per line (also the
        /// `serve --role` of the service that serves it).
        #[arg(long)]
        list_subgraphs: bool,
    },
    /// Print the name of every Prometheus metric the binary exports, one per line.
    PrintMetrics,
    /// Check an environment file (`NAME=VALUE` lines, as a deployment sets them): every
    /// name must be a variable the binary reads and every value must load. Exits non-zero
    /// listing each problem.
    CheckEnv {
        /// The file.
        file: PathBuf,
    },
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Manage trusted documents (the documents `ZNOVEL_TRUSTED_DOCUMENTS=allowlist` runs).
    #[command(subcommand)]
    Documents(DocumentsCommand),
}

/// Database flags.
#[derive(Debug, Args, Clone, Default)]
pub struct DbArgs {
    /// Database URL (also `DATABASE_URL`).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Data directory (also `ZNOVEL_DATA_DIR`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Listen flags.
#[derive(Debug, Args, Clone, Default)]
pub struct ListenArgs {
    /// HTTP listen address (also `ZNOVEL_LISTEN`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Metrics listen address (also `ZNOVEL_METRICS_LISTEN`).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// `serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Run one service of the distributed deployment instead of all of them: story-gen,
    /// memory, admin, rag-retrieval, validator, file (a federation subgraph each),
    /// job-worker.
    #[arg(long, value_name = "ROLE")]
    pub role: Option<Role>,
    /// Listen flags.
    #[command(flatten)]
    pub listen: ListenArgs,
    /// Database flags.
    #[command(flatten)]
    pub db: DbArgs,
}

/// `tenant` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with its first ADMIN user; prints the admin's API key once.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Unique handle (a-z, 0-9, '-').
        #[arg(long)]
        slug: String,
        /// Email of the first admin.
        #[arg(long)]
        admin_email: String,
        /// Database flags.
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `apikey` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Issue an API key for a user of a tenant; prints it once.
    Create {
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// Email of the user the key acts as.
        #[arg(long)]
        email: String,
        /// Label of the key.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Database flags.
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `documents` subcommands.
#[derive(Debug, Subcommand)]
pub enum DocumentsCommand {
    /// Register GraphQL documents from `.graphql` files: each file is one document, its
    /// exact text (what a client sends). Prints `<sha256>  <file>` for each, the hash a
    /// client sends as `extensions.persistedQuery.sha256Hash`. A file that does not parse
    /// is refused and nothing is registered.
    Register {
        /// The files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Database flags.
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the registered documents: `<sha256>  <registered at>  <operation name>`,
    /// oldest first.
    List {
        /// Database flags.
        #[command(flatten)]
        db: DbArgs,
    },
}

fn apply_listen(settings: &mut Settings, listen: &ListenArgs) {
    if let Some(l) = listen.listen {
        settings.listen = l;
    }
    if let Some(l) = listen.metrics_listen {
        settings.metrics_listen = l;
    }
}

fn apply_db(settings: &mut Settings, db: &DbArgs) {
    if let Some(u) = &db.database_url {
        settings.database_url = Some(u.clone().into());
    }
    if let Some(d) = &db.data_dir {
        settings.data_dir = d.clone();
    }
}

/// Loads the settings and runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Commands that read no settings.
    match &cli.command {
        Command::PrintMetrics => {
            for name in crate::metrics::Metrics::names()? {
                println!("{name}");
            }
            return Ok(());
        }
        Command::CheckEnv { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            crate::config::check_env_text(&text)
                .map_err(|e| anyhow::anyhow!("{}:\n{e}", file.display()))?;
            println!("{}: ok", file.display());
            return Ok(());
        }
        _ => {}
    }
    let mut settings = Settings::load(&ProcessEnv, cli.config.as_deref())?;
    crate::telemetry::init(settings.log_format);
    match cli.command {
        Command::Serve(args) => {
            apply_listen(&mut settings, &args.listen);
            apply_db(&mut settings, &args.db);
            settings.validate()?;
            serve(settings, args.role).await
        }
        Command::Worker {
            concurrency,
            listen,
            db,
        } => {
            apply_listen(&mut settings, &listen);
            apply_db(&mut settings, &db);
            if let Some(c) = concurrency {
                settings.worker_concurrency = c;
            }
            settings.validate()?;
            serve(settings, Some(Role::JobWorker)).await
        }
        Command::PrintMetrics | Command::CheckEnv { .. } => Ok(()),
        Command::Migrate(db) => {
            apply_db(&mut settings, &db);
            settings.validate()?;
            app::open_store(&settings, true).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Reindex { novel, db } => {
            apply_db(&mut settings, &db);
            settings.validate()?;
            let store = app::open_store(&settings, settings.migrate).await?;
            let novel = novel.map(znovel_domain::ids::NovelId::from_uuid);
            let done = crate::reindex::reindex(&settings, &store, novel).await?;
            println!(
                "reindexed {} novels ({} records) into Qdrant",
                done.novels, done.records
            );
            Ok(())
        }
        Command::PrintSchema {
            list_subgraphs: true,
            ..
        } => {
            for name in graphql::SUBGRAPHS {
                println!("{name}");
            }
            Ok(())
        }
        Command::PrintSchema { subgraph, .. } => {
            let sdl = match subgraph {
                None => graphql::sdl(),
                Some(name) => graphql::subgraph_sdl(&name).with_context(|| {
                    format!(
                        "unknown subgraph {name:?}; known: {}",
                        graphql::SUBGRAPHS.join(", ")
                    )
                })?,
            };
            print!("{sdl}");
            Ok(())
        }
        Command::Tenant(TenantCommand::Create {
            name,
            slug,
            admin_email,
            db,
        }) => {
            apply_db(&mut settings, &db);
            settings.validate()?;
            let services = services(&settings).await?;
            let t = services
                .admin
                .create_tenant(CreateTenant {
                    name,
                    slug,
                    admin_email,
                    admin_name: None,
                })
                .await?;
            println!("tenant {} ({}) created", t.tenant.slug, t.tenant.id);
            println!("admin {} — API key (shown once):", t.admin.email);
            println!("{}", t.api_key);
            Ok(())
        }
        Command::Apikey(ApiKeyCommand::Create {
            tenant,
            email,
            name,
            db,
        }) => {
            apply_db(&mut settings, &db);
            settings.validate()?;
            let services = services(&settings).await?;
            let t = services.admin.tenant_by_slug(&tenant).await?;
            let (_, key) = services
                .admin
                .create_api_key_for(t.id, &email, &name)
                .await?;
            println!("{key}");
            Ok(())
        }
        Command::Documents(DocumentsCommand::Register { files, db }) => {
            apply_db(&mut settings, &db);
            settings.validate()?;
            let docs = crate::documents::read_files(&files)?;
            let store = app::open_store(&settings, settings.migrate).await?;
            for (file, doc) in crate::documents::register(&store, docs).await? {
                println!("{}  {}", doc.hash, file.display());
            }
            Ok(())
        }
        Command::Documents(DocumentsCommand::List { db }) => {
            apply_db(&mut settings, &db);
            settings.validate()?;
            let store = app::open_store(&settings, settings.migrate).await?;
            for doc in store.list_trusted_documents().await? {
                println!(
                    "{}  {}  {}",
                    doc.hash,
                    doc.registered_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    doc.operation_name.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
    }
}

async fn services(settings: &Settings) -> anyhow::Result<Services> {
    let store = app::open_store(settings, settings.migrate).await?;
    Ok(Services::new(std::sync::Arc::new(store)))
}

async fn serve(settings: Settings, role: Option<Role>) -> anyhow::Result<()> {
    let app = App::build_role(&settings, role).await?;
    let listener = app::bind(
        settings.listen,
        settings.limits.listen_backlog,
        "ZNOVEL_LISTEN",
    )?;
    let metrics_listener = app::bind(settings.metrics_listen, 128, "ZNOVEL_METRICS_LISTEN")?;
    let addr = listener.local_addr()?;
    let maddr = metrics_listener.local_addr()?;
    let metrics = format!("metrics at http://{maddr}/metrics");
    match role {
        None => println!("Z-Novel is ready: GraphQL at http://{addr}/graphql ({metrics})"),
        Some(r) if r.subgraph().is_some() => {
            println!("Z-Novel {r} subgraph is ready: GraphQL at http://{addr}/graphql ({metrics})");
        }
        Some(Role::JobWorker) => println!(
            "Z-Novel job-worker is ready: running jobs ({} at once), health at http://{addr}/health ({metrics}); SIGTERM hands unfinished jobs back",
            settings.worker_concurrency
        ),
        Some(r) => {
            println!(
                "Z-Novel {r} is ready: no GraphQL API yet, health at http://{addr}/health ({metrics})"
            );
            tracing::info!(role = %r, "no GraphQL API yet: serving only /health, /ready and /metrics");
        }
    }
    if settings.playground && role.is_none_or(|r| r == Role::StoryGen) {
        println!("Playground at http://{addr}/playground · writing room at http://{addr}/write");
    }
    if role == Some(Role::StoryGen) {
        if app.workers.is_some() {
            println!("Generation jobs run in this process (REDIS_URL is unset)");
        } else if settings.redis_url.is_some() {
            println!("Generation jobs run in the job workers (REDIS_URL is set)");
        }
    }
    if settings.is_embedded_database() {
        println!("Embedded mode: data in {}", settings.data_dir.display());
    }
    if let Some(why) = &app.generation_missing {
        println!("Chapter generation is unavailable: {why}");
    }
    if let Some(k) = &app.admin_key {
        if k.created {
            println!("Admin API key (shown once, saved to {}):", k.path.display());
            println!("{}", k.key);
        } else {
            println!("Admin API key: in {}", k.path.display());
        }
    }
    tracing::info!(%addr, metrics = %maddr, role = role.map_or("all", Role::name), "listening");
    app.serve(listener, metrics_listener, crate::server::shutdown_signal())
        .await
}
