//! Typed configuration, loaded once at start-up: embedded defaults, then an optional TOML
//! file, then environment variables, then command-line flags. No variable needs to be set
//! to run: the defaults are the zero-config embedded server.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ZNOVEL_CONFIG` | — | path of a TOML file with any of the settings below (snake_case keys) |
//! | `ZNOVEL_LISTEN` | `127.0.0.1:8080` | HTTP/WebSocket address (GraphQL, health) |
//! | `ZNOVEL_METRICS_LISTEN` | `127.0.0.1:9090` | Prometheus `/metrics` address |
//! | `ZNOVEL_DATA_DIR` | `./data` | SQLite file, admin key, local files |
//! | `DATABASE_URL` | unset = SQLite in the data dir | `sqlite://path` or `postgres://…` |
//! | `ZNOVEL_DATABASE_MAX_CONNECTIONS` | `16` | connection pool size |
//! | `ZNOVEL_CHAPTER_CACHE_BYTES` | `67108864` | chapters kept in memory for display reads (`chapter(id)`), 64 MiB; `0` = off. PostgreSQL: needs `LISTEN` (not through a transaction-pooling proxy) |
//! | `ZNOVEL_MIGRATE` | `true` | run pending migrations at start-up |
//! | `ZNOVEL_BOOTSTRAP` | `true` for `znovel serve`, `false` with `--role` | create a local tenant and admin key on first start |
//! | `REDIS_URL` | unset = in-process queue | Redis for queues and token streams |
//! | `ZNOVEL_REDIS_PREFIX` | `znovel` | prefix of every Redis key (and pub/sub channel): deployments sharing one Redis use different prefixes |
//! | `QDRANT_URL` | unset = the database indexes memory | Qdrant's gRPC URL (`http://host:6334`): story memory is searched there, mirrored from the database (the record) |
//! | `QDRANT_COLLECTION` | `znovel-memory` | the Qdrant collection of this deployment (created on first use) |
//! | `QDRANT_API_KEY` | unset | Qdrant's API key |
//! | `LLM_BASE_URL`, `LLM_API_KEY`, `LLM_MODEL` | unset = embedded model | OpenAI-compatible provider |
//! | `LLM_FALLBACK_MODELS` | empty | comma-separated fallback chain |
//! | `LLM_FALLBACK_ENABLED` | `false` | force the fallback chain |
//! | `LLM_FIRST_TOKEN_TIMEOUT_SECS` | `60` | a provider that sends no token within this long after the request is given up on (the fallback chain takes over) |
//! | `LLM_STALL_TIMEOUT_SECS` | `30` | a provider stream silent this long after its first token is stalled (the fallback chain continues the text) |
//! | `VALIDATION_REVIEWER` | `auto` | the language-model reviewer of continuity checks (after the rules, on stored chapters, `validateChapter` and `checkDraft`): `on`, `off`, or `auto` = on with an OpenAI-compatible provider, off on the embedded model (too small to review: see docs/benchmarks.md) |
//! | `VALIDATION_REVIEWER_MODEL` | `LLM_MODEL` | the provider's model the reviewer asks (the fallback chain follows it) |
//! | `VALIDATION_REVIEWER_TIMEOUT_SECS` | `60` | a review not answered within this long is given up: the rules' report is stored, marked incomplete |
//! | `LLM_FALLBACK_ENABLED_FILE` | unset | a file holding `true`/`false`, re-read every 2 s: flips the fallback switch without a restart (mount a ConfigMap key) |
//! | `EMBEDDING_PROVIDER` | `openai` when `EMBEDDING_BASE_URL` is set, else `local` | `local` (the embedded multilingual-e5-small), `openai` (an OpenAI-compatible endpoint) or `none` (keyword recall only); an automatic `local` whose files are missing warns and runs keyword-only |
//! | `EMBEDDING_BASE_URL`, `EMBEDDING_API_KEY`, `EMBEDDING_MODEL` | unset, unset, `text-embedding-3-small` | OpenAI-compatible embeddings endpoint (base URL ending in `/v1`) |
//! | `EMBEDDING_DIMENSIONS` | the model's (known for OpenAI's models) | vector length, also sent as `dimensions`; required for another `EMBEDDING_MODEL` |
//! | `EMBEDDING_BATCH` | `64` | most texts in one embeddings request |
//! | `ZNOVEL_EMBEDDING_MODEL_DIR` | `<data dir>/models/e5-small` | the embedded embedder's files (`e5-small-q4.bin`, `libe5.so`) |
//! | `ZNOVEL_MODEL_PATH` | `<data dir>/models/SmolLM2-135M-Instruct.Q4_1.gguf` | the embedded model's GGUF file |
//! | `ZNOVEL_WORKER_CONCURRENCY` | `2` | generation jobs one process runs at once |
//! | `ZNOVEL_JOB_VISIBILITY_TIMEOUT_SECS` | `60` | a job whose worker stopped answering (crashed, killed) is handed to another worker after this long |
//! | `ZNOVEL_MAX_SUBSCRIPTIONS_PER_CONNECTION` | `8` | concurrent subscriptions on one WebSocket |
//! | `JWT_SECRET` | unset | HS256 secret for bearer tokens |
//! | `JWT_PUBLIC_KEY` | unset | RS256 public key (PEM) for bearer tokens |
//! | `JWT_ISSUER`, `JWT_AUDIENCE` | unset | required `iss` / `aud` claims when set |
//! | `ZNOVEL_MAX_QUERY_DEPTH` | `15` | GraphQL depth limit |
//! | `ZNOVEL_MAX_QUERY_COMPLEXITY` | `5000` | GraphQL complexity limit |
//! | `ZNOVEL_MAX_BODY_BYTES` | `1048576` | largest request body (and WebSocket message) |
//! | `ZNOVEL_MAX_QUERY_SELECTIONS` | `2000` | most fields one operation may select once its fragments are expanded |
//! | `ZNOVEL_HTTP_HEADER_TIMEOUT_SECS` | `10` | a client must send a request's headers within this long; an idle keep-alive connection is closed after it |
//! | `ZNOVEL_HTTP_BODY_TIMEOUT_SECS` | `30` | a request body must arrive within this long |
//! | `ZNOVEL_LISTEN_BACKLOG` | `4096` | connections the kernel queues for the GraphQL listener before it accepts them (capped by `net.core.somaxconn`): a reconnect storm after a deploy is queued, not dropped |
//! | `ZNOVEL_WS_INIT_TIMEOUT_SECS` | `10` | a WebSocket must send `connection_init` within this long (else closed with 4408) |
//! | `ZNOVEL_RATE_LIMIT_REQUESTS_PER_KEY` | `600` | GraphQL requests (and WebSocket operations) per minute per API key (or per user for a JWT); `0` = no limit |
//! | `ZNOVEL_RATE_LIMIT_REQUESTS_PER_TENANT` | `6000` | GraphQL requests per minute per tenant, all keys together; `0` = no limit |
//! | `ZNOVEL_RATE_LIMIT_GENERATIONS_PER_TENANT` | `60` | chapter generations started per minute per tenant; `0` = no limit |
//! | `ZNOVEL_PLAYGROUND` | `true` | serve the web playground (`/playground`, `/write`, `/assets/…`; all-in-one server and `story-gen`) |
//! | `ZNOVEL_TRUSTED_DOCUMENTS` | `off` | `off`: any document runs (persisted queries are a cache); `allowlist`: only documents registered with `znovel documents register` run |
//! | `ZNOVEL_MAX_FILE_BYTES` | `52428800` | largest stored file (uploaded manuscript or exported book), 50 MB |
//! | `ZNOVEL_FILE_LINK_SECRET` | unset = derived from `JWT_SECRET`, else random per process | key signing file download links (`GET /files/{id}?token=…`); set the same value on every process of a deployment |
//! | `ZNOVEL_FILE_LINK_TTL_SECS` | `900` | how long a download link works |
//! | `ZNOVEL_LOG_FORMAT` | `json` | `json` or `pretty` |
//! | `RUST_LOG` | `info` | log filter |
//!
//! Every secret (`DATABASE_URL`, `REDIS_URL`, `QDRANT_API_KEY`, `LLM_API_KEY`,
//! `EMBEDDING_API_KEY`, `JWT_SECRET`, `JWT_PUBLIC_KEY`, `ZNOVEL_FILE_LINK_SECRET`)
//! may instead be read from a mounted file named by the same variable with `_FILE`
//! appended. A value that does not parse fails start-up with a message naming the variable.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Every setting of the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// HTTP/WebSocket listen address.
    pub listen: SocketAddr,
    /// Metrics listen address.
    pub metrics_listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL; `None` = SQLite file in the data directory.
    pub database_url: Option<SecretString>,
    /// Pool size.
    pub database_max_connections: u32,
    /// Most bytes of chapters kept in memory for display reads; `0` = off.
    pub chapter_cache_bytes: usize,
    /// Run migrations at start-up.
    pub migrate: bool,
    /// Create the local tenant and admin key on first start; `None` = yes for the
    /// all-in-one server, no for a single role (see [`Settings::bootstrap_enabled`]).
    pub bootstrap: Option<bool>,
    /// Redis URL (queues and token streams).
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key and channel.
    pub redis_prefix: String,
    /// Qdrant's gRPC URL: story memory is searched there, mirrored from the database.
    pub qdrant_url: Option<String>,
    /// The Qdrant collection of this deployment.
    pub qdrant_collection: String,
    /// Qdrant's API key.
    pub qdrant_api_key: Option<SecretString>,
    /// Language-model provider.
    pub llm: LlmSettings,
    /// Embedder (dense recall).
    pub embedding: EmbeddingSettings,
    /// Bearer-token verification.
    pub jwt: JwtSettings,
    /// Abuse limits.
    pub limits: LimitSettings,
    /// Rate limits per key and per tenant.
    pub rate_limits: RateLimitSettings,
    /// Log output format: `json` or `pretty`.
    pub log_format: LogFormat,
    /// The embedded model's GGUF file; `None` = the default file in the data directory.
    pub model_path: Option<PathBuf>,
    /// Generation jobs one process runs at once.
    pub worker_concurrency: usize,
    /// Seconds after which a job whose worker stopped keeping it alive is redelivered.
    pub job_visibility_timeout_secs: u64,
    /// Serve the web playground and the writing room (off in a locked-down production).
    pub playground: bool,
    /// Which GraphQL documents may run (see [`TrustedDocumentsMode`]).
    pub trusted_documents: TrustedDocumentsMode,
    /// Largest stored file in bytes.
    pub max_file_bytes: i64,
    /// Key signing file download links; `None` = derived from the JWT secret, else random.
    pub file_link_secret: Option<SecretString>,
    /// Lifetime of a download link in seconds.
    pub file_link_ttl_secs: i64,
}

/// Which GraphQL documents the server runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustedDocumentsMode {
    /// Any document (default). Automatic persisted queries work as a bounded cache.
    #[default]
    Off,
    /// Only documents registered with `znovel documents register` (by hash or by their
    /// exact text); everything else is refused with `PERSISTED_QUERY_NOT_ALLOWED`.
    Allowlist,
}

impl FromStr for TrustedDocumentsMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Self::Off),
            "allowlist" => Ok(Self::Allowlist),
            _ => Err("expected `off` or `allowlist`".into()),
        }
    }
}

/// Language-model provider settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    /// OpenAI-compatible base URL; `None` = the embedded model.
    pub base_url: Option<String>,
    /// Provider API key.
    pub api_key: Option<SecretString>,
    /// Primary model.
    pub model: Option<String>,
    /// Fallback chain, in order.
    pub fallback_models: Vec<String>,
    /// Force the fallback chain.
    pub fallback_enabled: bool,
    /// A file holding `true`/`false` that is re-read while running: the fallback switch
    /// an operator can flip without a restart.
    pub fallback_enabled_file: Option<PathBuf>,
    /// Seconds the provider has to send the first generated token (else the next model
    /// of the chain takes over); `None` = the client's default (60).
    pub first_token_timeout_secs: Option<u64>,
    /// Seconds without an event after the first token before the stream counts as
    /// stalled (the chain continues it); `None` = the client's default (30).
    pub stall_timeout_secs: Option<u64>,
    /// Whether continuity checks ask the language-model reviewer after the rules.
    pub reviewer: ReviewerMode,
    /// The model the reviewer asks; `None` = the primary model.
    pub reviewer_model: Option<String>,
    /// Seconds a review may take; `None` = 60.
    pub reviewer_timeout_secs: Option<u64>,
}

/// Whether continuity checks ask the language-model reviewer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewerMode {
    /// On with an OpenAI-compatible provider, off on the embedded model.
    #[default]
    Auto,
    /// Always (with the embedded model too).
    On,
    /// Never: rules only.
    Off,
}

impl FromStr for ReviewerMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "on" => Ok(Self::On),
            "off" => Ok(Self::Off),
            _ => Err("expected `auto`, `on` or `off`".into()),
        }
    }
}

impl LlmSettings {
    /// Whether the reviewer runs: `on`, or `auto` with an OpenAI-compatible provider.
    pub fn reviewer_enabled(&self) -> bool {
        match self.reviewer {
            ReviewerMode::On => true,
            ReviewerMode::Off => false,
            ReviewerMode::Auto => self.base_url.is_some(),
        }
    }
}

/// Which embedder dense recall uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    /// The embedded multilingual model (multilingual-e5-small).
    Local,
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    Openai,
    /// None: recall searches keywords only.
    None,
}

impl FromStr for EmbeddingProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Self::Local),
            "openai" => Ok(Self::Openai),
            "none" => Ok(Self::None),
            _ => Err("expected `local`, `openai` or `none`".into()),
        }
    }
}

/// Embedder settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingSettings {
    /// The provider; `None` = `openai` when [`Self::base_url`] is set, else `local` when
    /// its files exist (else none, with a warning).
    pub provider: Option<EmbeddingProvider>,
    /// OpenAI-compatible base URL (ending in `/v1`).
    pub base_url: Option<String>,
    /// Provider API key.
    pub api_key: Option<SecretString>,
    /// The provider's model; `None` = `text-embedding-3-small`.
    pub model: Option<String>,
    /// The provider's vector length; `None` = the known length of the model.
    pub dimensions: Option<usize>,
    /// Most texts in one request to the provider.
    pub batch: usize,
    /// The embedded model's folder; `None` = `models/e5-small` in the data directory.
    pub model_dir: Option<PathBuf>,
}

impl Default for EmbeddingSettings {
    fn default() -> Self {
        Self {
            provider: None,
            base_url: None,
            api_key: None,
            model: None,
            dimensions: None,
            batch: 64,
            model_dir: None,
        }
    }
}

/// Bearer-token (JWT) verification settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtSettings {
    /// HS256 shared secret.
    pub secret: Option<SecretString>,
    /// RS256 public key, PEM.
    pub public_key: Option<SecretString>,
    /// Required issuer.
    pub issuer: Option<String>,
    /// Required audience.
    pub audience: Option<String>,
}

/// Rate limits, per minute; 0 turns one off. Counted in the process, or in Redis when
/// `REDIS_URL` is set (then every replica shares them).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// GraphQL requests (and WebSocket operations) per API key (or JWT user).
    pub requests_per_key: u32,
    /// GraphQL requests per tenant, all its keys together.
    pub requests_per_tenant: u32,
    /// Chapter generations started per tenant.
    pub generations_per_tenant: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            requests_per_key: 600,
            requests_per_tenant: 6_000,
            generations_per_tenant: 60,
        }
    }
}

/// Request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Deepest query nesting.
    pub max_query_depth: usize,
    /// Highest query complexity.
    pub max_query_complexity: usize,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Concurrent subscriptions on one WebSocket connection.
    pub max_subscriptions_per_connection: usize,
    /// Most field selections one operation may expand to (fragments spread).
    pub max_query_selections: usize,
    /// Seconds a client has to send a request's headers; also how long an idle
    /// keep-alive connection stays open.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body.
    pub body_timeout_secs: u64,
    /// Seconds a WebSocket has to send `connection_init`.
    pub ws_init_timeout_secs: u64,
    /// Connections the kernel queues for the GraphQL listener before they are accepted.
    pub listen_backlog: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_query_depth: 15,
            max_query_complexity: 5_000,
            max_body_bytes: 1024 * 1024,
            max_subscriptions_per_connection: 8,
            max_query_selections: 2_000,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            ws_init_timeout_secs: 10,
            listen_backlog: 4096,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (default; what log pipelines want).
    #[default]
    Json,
    /// Human-readable.
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err("expected `json` or `pretty`".into()),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 16,
            chapter_cache_bytes: znovel_infra::sql::DEFAULT_CHAPTER_CACHE_BYTES,
            migrate: true,
            bootstrap: None,
            redis_url: None,
            redis_prefix: "znovel".into(),
            qdrant_url: None,
            qdrant_collection: "znovel-memory".into(),
            qdrant_api_key: None,
            llm: LlmSettings::default(),
            embedding: EmbeddingSettings::default(),
            jwt: JwtSettings::default(),
            limits: LimitSettings::default(),
            rate_limits: RateLimitSettings::default(),
            log_format: LogFormat::Json,
            model_path: None,
            worker_concurrency: 2,
            job_visibility_timeout_secs: 60,
            playground: true,
            trusted_documents: TrustedDocumentsMode::Off,
            max_file_bytes: znovel_domain::model::DEFAULT_MAX_FILE_BYTES,
            file_link_secret: None,
            file_link_ttl_secs: znovel_domain::services::DEFAULT_LINK_TTL_SECS,
        }
    }
}

/// A configuration error, naming the variable or file at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// Where variables come from: the process environment, or a map in tests.
pub trait Env {
    /// The value of a variable, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Every environment variable the binary reads (the `_FILE` forms of [`SECRETS`] too).
pub const VARIABLES: &[&str] = &[
    "ZNOVEL_CONFIG",
    "ZNOVEL_LISTEN",
    "ZNOVEL_METRICS_LISTEN",
    "ZNOVEL_DATA_DIR",
    "DATABASE_URL",
    "ZNOVEL_DATABASE_MAX_CONNECTIONS",
    "ZNOVEL_CHAPTER_CACHE_BYTES",
    "ZNOVEL_MIGRATE",
    "ZNOVEL_BOOTSTRAP",
    "REDIS_URL",
    "ZNOVEL_REDIS_PREFIX",
    "QDRANT_URL",
    "QDRANT_COLLECTION",
    "QDRANT_API_KEY",
    "LLM_BASE_URL",
    "LLM_API_KEY",
    "LLM_MODEL",
    "LLM_FALLBACK_MODELS",
    "LLM_FALLBACK_ENABLED",
    "LLM_FALLBACK_ENABLED_FILE",
    "LLM_FIRST_TOKEN_TIMEOUT_SECS",
    "LLM_STALL_TIMEOUT_SECS",
    "VALIDATION_REVIEWER",
    "VALIDATION_REVIEWER_MODEL",
    "VALIDATION_REVIEWER_TIMEOUT_SECS",
    "EMBEDDING_PROVIDER",
    "EMBEDDING_BASE_URL",
    "EMBEDDING_API_KEY",
    "EMBEDDING_MODEL",
    "EMBEDDING_DIMENSIONS",
    "EMBEDDING_BATCH",
    "ZNOVEL_EMBEDDING_MODEL_DIR",
    "JWT_SECRET",
    "JWT_PUBLIC_KEY",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "ZNOVEL_MAX_QUERY_DEPTH",
    "ZNOVEL_MAX_QUERY_COMPLEXITY",
    "ZNOVEL_MAX_BODY_BYTES",
    "ZNOVEL_MAX_SUBSCRIPTIONS_PER_CONNECTION",
    "ZNOVEL_MAX_QUERY_SELECTIONS",
    "ZNOVEL_HTTP_HEADER_TIMEOUT_SECS",
    "ZNOVEL_HTTP_BODY_TIMEOUT_SECS",
    "ZNOVEL_WS_INIT_TIMEOUT_SECS",
    "ZNOVEL_LISTEN_BACKLOG",
    "ZNOVEL_LOG_FORMAT",
    "ZNOVEL_MAX_FILE_BYTES",
    "ZNOVEL_FILE_LINK_SECRET",
    "ZNOVEL_FILE_LINK_TTL_SECS",
    "ZNOVEL_MODEL_PATH",
    "ZNOVEL_WORKER_CONCURRENCY",
    "ZNOVEL_JOB_VISIBILITY_TIMEOUT_SECS",
    "ZNOVEL_PLAYGROUND",
    "ZNOVEL_TRUSTED_DOCUMENTS",
    "ZNOVEL_RATE_LIMIT_REQUESTS_PER_KEY",
    "ZNOVEL_RATE_LIMIT_REQUESTS_PER_TENANT",
    "ZNOVEL_RATE_LIMIT_GENERATIONS_PER_TENANT",
    "RUST_LOG",
];

/// The variables that may instead be read from a file named by `NAME_FILE`.
pub const SECRETS: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "QDRANT_API_KEY",
    "LLM_API_KEY",
    "EMBEDDING_API_KEY",
    "JWT_SECRET",
    "JWT_PUBLIC_KEY",
    "ZNOVEL_FILE_LINK_SECRET",
];

/// Whether the binary reads the variable `name`.
pub fn is_known_variable(name: &str) -> bool {
    VARIABLES.contains(&name)
        || name
            .strip_suffix("_FILE")
            .is_some_and(|base| SECRETS.contains(&base))
}

/// Checks an environment given as `NAME=VALUE` lines (`#` comments and blank lines
/// skipped), as a deployment would set it: every name must be one the binary reads, and
/// the values must load. `_FILE` variables are checked by name only (their files live in
/// the deployment). Returns every problem found, one per line.
pub fn check_env_text(text: &str) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    let mut vars = std::collections::HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            problems.push(format!("line {}: expected NAME=VALUE", n + 1));
            continue;
        };
        let name = name.trim();
        if !is_known_variable(name) {
            problems.push(format!("line {}: unknown variable {name}", n + 1));
        } else if !name.ends_with("_FILE") && name != "ZNOVEL_CONFIG" {
            vars.insert(name.to_owned(), value.trim().to_owned());
        }
    }
    if let Err(e) = Settings::load(&vars, None) {
        problems.push(e.to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError(problems.join("\n")))
    }
}

/// Reads a `true`/`false` switch file.
pub fn read_switch_file(path: &Path) -> Result<bool, String> {
    let raw = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_bool(&path.display().to_string(), &raw).map_err(|e| e.to_string())
}

fn parse<T: FromStr>(name: &str, raw: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    raw.trim()
        .parse()
        .map_err(|e| ConfigError(format!("invalid value for {name} ({raw:?}): {e}")))
}

fn parse_bool(name: &str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError(format!(
            "invalid value for {name} ({raw:?}): expected true or false"
        ))),
    }
}

/// Reads a secret from `NAME` or from the file named by `NAME_FILE`.
fn secret(env: &dyn Env, name: &str) -> Result<Option<SecretString>, ConfigError> {
    if let Some(v) = env.var(name) {
        return Ok((!v.is_empty()).then(|| SecretString::from(v)));
    }
    let file_var = format!("{name}_FILE");
    match env.var(&file_var) {
        None => Ok(None),
        Some(path) => std::fs::read_to_string(&path)
            .map(|s| Some(SecretString::from(s.trim_end().to_owned())))
            .map_err(|e| ConfigError(format!("cannot read {file_var} ({path}): {e}"))),
    }
}

impl Settings {
    /// The signer of file download links: `ZNOVEL_FILE_LINK_SECRET`, else a key derived
    /// from `JWT_SECRET` (never the JWT key itself), else a random key of this process
    /// (then a link works only on the process that made it).
    pub fn file_links(&self) -> znovel_domain::services::FileLinks {
        use znovel_domain::services::FileLinks;
        if let Some(s) = &self.file_link_secret {
            return FileLinks::new(s.expose_secret().as_bytes(), self.file_link_ttl_secs);
        }
        if let Some(s) = &self.jwt.secret {
            return FileLinks::derived(s.expose_secret().as_bytes(), self.file_link_ttl_secs);
        }
        FileLinks::random(self.file_link_ttl_secs)
    }

    /// Loads defaults, then the file named by `file` or `ZNOVEL_CONFIG`, then the
    /// environment. Fails with a message naming the variable or file at fault.
    pub fn load(env: &dyn Env, file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.var("ZNOVEL_CONFIG").map(PathBuf::from));
        let mut s = match file {
            None => Settings::default(),
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", path.display()))
                })?;
                toml::from_str(&text).map_err(|e| {
                    ConfigError(format!("invalid config file {}: {e}", path.display()))
                })?
            }
        };
        s.apply_env(env)?;
        s.validate()?;
        Ok(s)
    }

    fn apply_env(&mut self, env: &dyn Env) -> Result<(), ConfigError> {
        let get = |n: &str| env.var(n).filter(|v| !v.is_empty());
        if let Some(v) = get("ZNOVEL_LISTEN") {
            self.listen = parse("ZNOVEL_LISTEN", &v)?;
        }
        if let Some(v) = get("ZNOVEL_METRICS_LISTEN") {
            self.metrics_listen = parse("ZNOVEL_METRICS_LISTEN", &v)?;
        }
        if let Some(v) = get("ZNOVEL_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = secret(env, "DATABASE_URL")? {
            self.database_url = Some(v);
        }
        if let Some(v) = get("ZNOVEL_DATABASE_MAX_CONNECTIONS") {
            self.database_max_connections = parse("ZNOVEL_DATABASE_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = get("ZNOVEL_CHAPTER_CACHE_BYTES") {
            self.chapter_cache_bytes = parse("ZNOVEL_CHAPTER_CACHE_BYTES", &v)?;
        }
        if let Some(v) = get("ZNOVEL_MIGRATE") {
            self.migrate = parse_bool("ZNOVEL_MIGRATE", &v)?;
        }
        if let Some(v) = get("ZNOVEL_BOOTSTRAP") {
            self.bootstrap = Some(parse_bool("ZNOVEL_BOOTSTRAP", &v)?);
        }
        if let Some(v) = secret(env, "REDIS_URL")? {
            self.redis_url = Some(v);
        }
        if let Some(v) = get("ZNOVEL_REDIS_PREFIX") {
            self.redis_prefix = v;
        }
        if let Some(v) = get("QDRANT_URL") {
            self.qdrant_url = Some(v);
        }
        if let Some(v) = get("QDRANT_COLLECTION") {
            self.qdrant_collection = v;
        }
        if let Some(v) = secret(env, "QDRANT_API_KEY")? {
            self.qdrant_api_key = Some(v);
        }
        if let Some(v) = get("LLM_BASE_URL") {
            self.llm.base_url = Some(v);
        }
        if let Some(v) = secret(env, "LLM_API_KEY")? {
            self.llm.api_key = Some(v);
        }
        if let Some(v) = get("LLM_MODEL") {
            self.llm.model = Some(v);
        }
        if let Some(v) = env.var("LLM_FALLBACK_MODELS") {
            self.llm.fallback_models = v
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = get("VALIDATION_REVIEWER") {
            self.llm.reviewer = parse("VALIDATION_REVIEWER", &v)?;
        }
        if let Some(v) = get("VALIDATION_REVIEWER_MODEL") {
            self.llm.reviewer_model = Some(v);
        }
        if let Some(v) = get("LLM_FALLBACK_ENABLED") {
            self.llm.fallback_enabled = parse_bool("LLM_FALLBACK_ENABLED", &v)?;
        }
        for (name, slot) in [
            (
                "LLM_FIRST_TOKEN_TIMEOUT_SECS",
                &mut self.llm.first_token_timeout_secs,
            ),
            ("LLM_STALL_TIMEOUT_SECS", &mut self.llm.stall_timeout_secs),
            (
                "VALIDATION_REVIEWER_TIMEOUT_SECS",
                &mut self.llm.reviewer_timeout_secs,
            ),
        ] {
            if let Some(v) = get(name) {
                let secs: u64 = parse(name, &v)?;
                if secs == 0 {
                    return Err(ConfigError(format!(
                        "invalid value for {name}: must be at least 1"
                    )));
                }
                *slot = Some(secs);
            }
        }
        if let Some(v) = secret(env, "JWT_SECRET")? {
            self.jwt.secret = Some(v);
        }
        if let Some(v) = secret(env, "JWT_PUBLIC_KEY")? {
            self.jwt.public_key = Some(v);
        }
        if let Some(v) = get("JWT_ISSUER") {
            self.jwt.issuer = Some(v);
        }
        if let Some(v) = get("JWT_AUDIENCE") {
            self.jwt.audience = Some(v);
        }
        if let Some(v) = get("ZNOVEL_MAX_QUERY_DEPTH") {
            self.limits.max_query_depth = parse("ZNOVEL_MAX_QUERY_DEPTH", &v)?;
        }
        if let Some(v) = get("ZNOVEL_MAX_QUERY_COMPLEXITY") {
            self.limits.max_query_complexity = parse("ZNOVEL_MAX_QUERY_COMPLEXITY", &v)?;
        }
        if let Some(v) = get("ZNOVEL_MAX_BODY_BYTES") {
            self.limits.max_body_bytes = parse("ZNOVEL_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = get("ZNOVEL_LOG_FORMAT") {
            self.log_format = parse("ZNOVEL_LOG_FORMAT", &v)?;
        }
        if let Some(v) = get("LLM_FALLBACK_ENABLED_FILE") {
            let path = PathBuf::from(v);
            // The file's value wins over LLM_FALLBACK_ENABLED from the start.
            self.llm.fallback_enabled = read_switch_file(&path)
                .map_err(|e| ConfigError(format!("invalid LLM_FALLBACK_ENABLED_FILE: {e}")))?;
            self.llm.fallback_enabled_file = Some(path);
        }
        if let Some(v) = get("ZNOVEL_MODEL_PATH") {
            self.model_path = Some(PathBuf::from(v));
        }
        if let Some(v) = get("ZNOVEL_WORKER_CONCURRENCY") {
            self.worker_concurrency = parse("ZNOVEL_WORKER_CONCURRENCY", &v)?;
        }
        if let Some(v) = get("ZNOVEL_JOB_VISIBILITY_TIMEOUT_SECS") {
            self.job_visibility_timeout_secs = parse("ZNOVEL_JOB_VISIBILITY_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("ZNOVEL_MAX_FILE_BYTES") {
            self.max_file_bytes = parse("ZNOVEL_MAX_FILE_BYTES", &v)?;
            if self.max_file_bytes < 1 {
                return Err(ConfigError(format!(
                    "invalid value for ZNOVEL_MAX_FILE_BYTES ({v:?}): must be at least 1"
                )));
            }
        }
        if let Some(v) = secret(env, "ZNOVEL_FILE_LINK_SECRET")? {
            self.file_link_secret = Some(v);
        }
        if let Some(v) = get("ZNOVEL_FILE_LINK_TTL_SECS") {
            self.file_link_ttl_secs = parse("ZNOVEL_FILE_LINK_TTL_SECS", &v)?;
        }
        if let Some(v) = get("ZNOVEL_PLAYGROUND") {
            self.playground = parse_bool("ZNOVEL_PLAYGROUND", &v)?;
        }
        if let Some(v) = get("ZNOVEL_TRUSTED_DOCUMENTS") {
            self.trusted_documents = parse("ZNOVEL_TRUSTED_DOCUMENTS", &v)?;
        }
        if let Some(v) = get("ZNOVEL_MAX_SUBSCRIPTIONS_PER_CONNECTION") {
            self.limits.max_subscriptions_per_connection =
                parse("ZNOVEL_MAX_SUBSCRIPTIONS_PER_CONNECTION", &v)?;
        }
        self.apply_deadline_env(&get)?;
        let r = &mut self.rate_limits;
        for (name, slot) in [
            (
                "ZNOVEL_RATE_LIMIT_REQUESTS_PER_KEY",
                &mut r.requests_per_key,
            ),
            (
                "ZNOVEL_RATE_LIMIT_REQUESTS_PER_TENANT",
                &mut r.requests_per_tenant,
            ),
            (
                "ZNOVEL_RATE_LIMIT_GENERATIONS_PER_TENANT",
                &mut r.generations_per_tenant,
            ),
        ] {
            if let Some(v) = get(name) {
                *slot = parse(name, &v)?;
            }
        }
        self.apply_embedding_env(env, &get)?;
        Ok(())
    }

    fn apply_embedding_env(
        &mut self,
        env: &dyn Env,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let e = &mut self.embedding;
        if let Some(v) = get("EMBEDDING_PROVIDER") {
            e.provider = Some(parse("EMBEDDING_PROVIDER", &v)?);
        }
        if let Some(v) = get("EMBEDDING_BASE_URL") {
            e.base_url = Some(v);
        }
        if let Some(v) = secret(env, "EMBEDDING_API_KEY")? {
            e.api_key = Some(v);
        }
        if let Some(v) = get("EMBEDDING_MODEL") {
            e.model = Some(v);
        }
        if let Some(v) = get("EMBEDDING_DIMENSIONS") {
            e.dimensions = Some(parse("EMBEDDING_DIMENSIONS", &v)?);
        }
        if let Some(v) = get("EMBEDDING_BATCH") {
            e.batch = parse("EMBEDDING_BATCH", &v)?;
        }
        if let Some(v) = get("ZNOVEL_EMBEDDING_MODEL_DIR") {
            e.model_dir = Some(PathBuf::from(v));
        }
        Ok(())
    }

    /// The embedder in effect: `EMBEDDING_PROVIDER`, else `openai` when
    /// `EMBEDDING_BASE_URL` is set, else `None` (the embedded model when its files exist).
    pub fn embedding_provider(&self) -> Option<EmbeddingProvider> {
        self.embedding.provider.or_else(|| {
            self.embedding
                .base_url
                .as_ref()
                .map(|_| EmbeddingProvider::Openai)
        })
    }

    /// The embedded embedder's folder: `ZNOVEL_EMBEDDING_MODEL_DIR`, else
    /// `models/e5-small` in the data directory.
    pub fn embedding_model_dir(&self) -> PathBuf {
        self.embedding
            .model_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("models").join("e5-small"))
    }

    fn validate_embedding(&self) -> Result<(), ConfigError> {
        let e = &self.embedding;
        if let Some(u) = &e.base_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(ConfigError(format!(
                "invalid value for EMBEDDING_BASE_URL ({u:?}): expected an http(s) URL"
            )));
        }
        if self.embedding_provider() == Some(EmbeddingProvider::Openai) && e.base_url.is_none() {
            return Err(ConfigError(
                "EMBEDDING_PROVIDER=openai needs EMBEDDING_BASE_URL".into(),
            ));
        }
        if e.batch == 0 {
            return Err(ConfigError(
                "invalid value for EMBEDDING_BATCH: must be at least 1".into(),
            ));
        }
        if e.dimensions == Some(0) {
            return Err(ConfigError(
                "invalid value for EMBEDDING_DIMENSIONS: must be at least 1".into(),
            ));
        }
        Ok(())
    }

    fn apply_deadline_env(
        &mut self,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let l = &mut self.limits;
        for (name, slot) in [
            (
                "ZNOVEL_HTTP_HEADER_TIMEOUT_SECS",
                &mut l.header_timeout_secs,
            ),
            ("ZNOVEL_HTTP_BODY_TIMEOUT_SECS", &mut l.body_timeout_secs),
            ("ZNOVEL_WS_INIT_TIMEOUT_SECS", &mut l.ws_init_timeout_secs),
        ] {
            if let Some(v) = get(name) {
                *slot = parse(name, &v)?;
                if *slot == 0 {
                    return Err(ConfigError(format!(
                        "invalid value for {name}: must be at least 1"
                    )));
                }
            }
        }
        if let Some(v) = get("ZNOVEL_MAX_QUERY_SELECTIONS") {
            l.max_query_selections = parse("ZNOVEL_MAX_QUERY_SELECTIONS", &v)?;
        }
        if let Some(v) = get("ZNOVEL_LISTEN_BACKLOG") {
            l.listen_backlog = parse("ZNOVEL_LISTEN_BACKLOG", &v)?;
            if l.listen_backlog == 0 {
                return Err(ConfigError(
                    "invalid value for ZNOVEL_LISTEN_BACKLOG: must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }

    /// Checks cross-field rules; the message names the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url {
            let u = url.expose_secret();
            if !(u.starts_with("postgres://")
                || u.starts_with("postgresql://")
                || u.starts_with("sqlite://"))
            {
                return Err(ConfigError(
                    "invalid value for DATABASE_URL: expected postgres://… or sqlite://…".into(),
                ));
            }
        }
        if self.redis_prefix.is_empty()
            || self
                .redis_prefix
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '*' | '?' | '[' | ']'))
        {
            return Err(ConfigError(format!(
                "invalid value for ZNOVEL_REDIS_PREFIX ({:?}): must be non-empty, without whitespace or *?[]",
                self.redis_prefix
            )));
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError(
                "invalid value for ZNOVEL_DATABASE_MAX_CONNECTIONS: must be at least 1".into(),
            ));
        }
        if let Some(u) = &self.llm.base_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(ConfigError(format!(
                "invalid value for LLM_BASE_URL ({u:?}): expected an http(s) URL"
            )));
        }
        if self.worker_concurrency == 0 {
            return Err(ConfigError(
                "invalid value for ZNOVEL_WORKER_CONCURRENCY: must be at least 1".into(),
            ));
        }
        if self.job_visibility_timeout_secs < 2 {
            return Err(ConfigError(
                "invalid value for ZNOVEL_JOB_VISIBILITY_TIMEOUT_SECS: must be at least 2".into(),
            ));
        }
        if self.limits.max_subscriptions_per_connection == 0 {
            return Err(ConfigError(
                "invalid value for ZNOVEL_MAX_SUBSCRIPTIONS_PER_CONNECTION: must be at least 1"
                    .into(),
            ));
        }
        if self.limits.max_query_depth == 0 || self.limits.max_query_complexity == 0 {
            return Err(ConfigError(
                "invalid value for ZNOVEL_MAX_QUERY_DEPTH/ZNOVEL_MAX_QUERY_COMPLEXITY: must be at least 1"
                    .into(),
            ));
        }
        self.validate_embedding()
    }

    /// The database URL in effect: `DATABASE_URL`, or the SQLite file in the data dir.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("znovel.db").display()),
        }
    }

    /// Whether the database is the embedded SQLite default.
    pub fn is_embedded_database(&self) -> bool {
        self.effective_database_url().starts_with("sqlite://")
    }

    /// Whether to bootstrap the local tenant and admin key: `ZNOVEL_BOOTSTRAP` when set,
    /// else yes for the all-in-one server and no for a single role (a cluster's tenants
    /// are created with `znovel tenant create`).
    pub fn bootstrap_enabled(&self, all_in_one: bool) -> bool {
        self.bootstrap.unwrap_or(all_in_one)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_variables() {
        let s = Settings::load(&[("UNRELATED", "x")], None).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.metrics_listen.to_string(), "127.0.0.1:9090");
        assert_eq!(s.effective_database_url(), "sqlite://./data/znovel.db");
        assert!(s.is_embedded_database());
        assert!(s.playground, "the playground is on by default");
    }

    #[test]
    fn embedding_provider_defaults_and_errors() {
        let s = Settings::load(&[("UNRELATED", "x")], None).unwrap();
        assert_eq!(
            s.embedding_provider(),
            None,
            "automatic: local when its files exist"
        );
        assert_eq!(
            s.embedding_model_dir(),
            PathBuf::from("./data/models/e5-small")
        );
        assert_eq!(s.embedding.batch, 64);
        let s = Settings::load(
            &[
                ("EMBEDDING_BASE_URL", "http://emb:8000/v1"),
                ("EMBEDDING_MODEL", "bge-m3"),
                ("EMBEDDING_DIMENSIONS", "1024"),
                ("EMBEDDING_BATCH", "16"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(s.embedding_provider(), Some(EmbeddingProvider::Openai));
        assert_eq!(s.embedding.dimensions, Some(1024));
        assert_eq!(s.embedding.batch, 16);
        let s = Settings::load(&[("EMBEDDING_PROVIDER", "none")], None).unwrap();
        assert_eq!(s.embedding_provider(), Some(EmbeddingProvider::None));
        for (var, val) in [
            ("EMBEDDING_PROVIDER", "bert"),
            ("EMBEDDING_PROVIDER", "openai"),
            ("EMBEDDING_BASE_URL", "ftp://x"),
            ("EMBEDDING_BATCH", "0"),
            ("EMBEDDING_DIMENSIONS", "many"),
        ] {
            let err = Settings::load(&[(var, val)], None).unwrap_err().to_string();
            assert!(err.contains(var), "{var}={val}: {err}");
        }
    }

    #[test]
    fn environment_overrides_and_errors_name_the_variable() {
        let s = Settings::load(
            &[
                ("ZNOVEL_LISTEN", "0.0.0.0:8081"),
                ("DATABASE_URL", "postgres://u@h/db"),
                ("LLM_FALLBACK_MODELS", "a, b,,c"),
                ("LLM_FALLBACK_ENABLED", "true"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(s.listen.port(), 8081);
        assert!(!s.is_embedded_database());
        assert_eq!(s.llm.fallback_models, vec!["a", "b", "c"]);
        assert!(s.llm.fallback_enabled);

        for (var, val) in [
            ("ZNOVEL_LISTEN", "nonsense"),
            ("ZNOVEL_METRICS_LISTEN", "1.2.3.4"),
            ("DATABASE_URL", "mysql://x"),
            ("LLM_FALLBACK_ENABLED", "maybe"),
            ("ZNOVEL_DATABASE_MAX_CONNECTIONS", "-1"),
            ("ZNOVEL_CHAPTER_CACHE_BYTES", "64MiB"),
            ("LLM_BASE_URL", "ftp://x"),
            ("ZNOVEL_PLAYGROUND", "perhaps"),
        ] {
            let err = Settings::load(&[(var, val)], None).unwrap_err().to_string();
            assert!(err.contains(var), "{err} should name {var}");
        }
    }

    #[test]
    fn the_reviewer_is_on_with_a_provider_unless_told_otherwise() {
        let s = Settings::load(&[], None).unwrap();
        assert!(!s.llm.reviewer_enabled(), "off on the embedded model");
        let s = Settings::load(&[("LLM_BASE_URL", "http://llm/v1")], None).unwrap();
        assert!(s.llm.reviewer_enabled(), "on with a provider");
        let s = Settings::load(
            &[
                ("LLM_BASE_URL", "http://llm/v1"),
                ("VALIDATION_REVIEWER", "off"),
            ],
            None,
        )
        .unwrap();
        assert!(!s.llm.reviewer_enabled());
        let s = Settings::load(
            &[
                ("VALIDATION_REVIEWER", "on"),
                ("VALIDATION_REVIEWER_MODEL", "judge"),
                ("VALIDATION_REVIEWER_TIMEOUT_SECS", "5"),
            ],
            None,
        )
        .unwrap();
        assert!(s.llm.reviewer_enabled());
        assert_eq!(s.llm.reviewer_model.as_deref(), Some("judge"));
        assert_eq!(s.llm.reviewer_timeout_secs, Some(5));
        for (var, val) in [
            ("VALIDATION_REVIEWER", "sometimes"),
            ("VALIDATION_REVIEWER_TIMEOUT_SECS", "0"),
        ] {
            let err = Settings::load(&[(var, val)], None).unwrap_err().to_string();
            assert!(err.contains(var), "{var}={val}: {err}");
        }
    }

    #[test]
    fn file_then_environment_and_unknown_keys_rejected() {
        let dir = std::env::temp_dir().join(format!("znovel-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:7000\"\n[limits]\nmax_query_depth = 5\n",
        )
        .unwrap();
        let s = Settings::load(&[("ZNOVEL_LISTEN", "127.0.0.1:7001")], Some(&path)).unwrap();
        assert_eq!(s.listen.port(), 7001, "env wins over file");
        assert_eq!(s.limits.max_query_depth, 5);
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = Settings::load(&[("A", "b")], Some(&path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
        let secret_file = dir.join("jwt");
        std::fs::write(&secret_file, "s3cret\n").unwrap();
        let s =
            Settings::load(&[("JWT_SECRET_FILE", secret_file.to_str().unwrap())], None).unwrap();
        assert_eq!(s.jwt.secret.unwrap().expose_secret(), "s3cret");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn env_files_are_checked_by_name_and_value() {
        check_env_text(
            "# comment\nREDIS_URL=redis://r:6379\nDATABASE_URL_FILE=/s/db\nZNOVEL_WORKER_CONCURRENCY=4\n",
        )
        .unwrap();
        let err = check_env_text("ZNOVEL_LISTN=0.0.0.0:8080\nZNOVEL_WORKER_CONCURRENCY=0\nbad\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variable ZNOVEL_LISTN"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("ZNOVEL_WORKER_CONCURRENCY"), "{err}");
        assert!(
            !is_known_variable("LLM_MODEL_FILE"),
            "only secrets have _FILE forms"
        );
        assert!(is_known_variable("JWT_SECRET_FILE"));
    }
}
