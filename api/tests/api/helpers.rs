//! `TestApp`: a running server on a fresh database, plus a small GraphQL client.

use serde_json::{Value, json};
use std::net::SocketAddr;
use tokio::sync::oneshot;
use znovel::app::{self, App};
use znovel::config::{ReviewerMode, Settings};
use znovel_infra::testing::TestDatabase;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per backend: `both!(name, |app| async move { ... })`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await;
                ($body)(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await;
                ($body)(app).await;
            }
        }
    };
}

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// The bootstrap admin key of the local tenant.
    pub admin_key: String,
    pub client: reqwest::Client,
    pub services: znovel_domain::services::Services,
    /// The database's URL (for tests that open a store of their own on it).
    pub database_url: String,
    _db: TestDatabase,
    _dir: tempdir::Dir,
    shutdown: Option<oneshot::Sender<()>>,
}

mod tempdir {
    /// A temporary directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("znovel-api-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with settings adjusted by `tweak`.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        let db = match backend {
            Backend::Sqlite => TestDatabase::sqlite().unwrap(),
            Backend::Postgres => TestDatabase::postgres().await.unwrap(),
        };
        let dir = tempdir::Dir::new();
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.0.clone(),
            database_url: Some(db.url.clone().into()),
            database_max_connections: 8,
            ..Settings::default()
        };
        // Scripted fakes answer prose to every request: tests of the continuity reviewer
        // switch it on (and script its answers) themselves.
        settings.llm.reviewer = ReviewerMode::Off;
        tweak(&mut settings);
        let app = App::build(&settings).await.unwrap();
        let admin_key = app.admin_key.as_ref().unwrap().key.clone();
        let services = app.services.clone();
        let listener = app::bind(
            settings.listen,
            settings.limits.listen_backlog,
            "ZNOVEL_LISTEN",
        )
        .unwrap();
        let metrics_listener =
            app::bind(settings.metrics_listen, 128, "ZNOVEL_METRICS_LISTEN").unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics_addr = metrics_listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            app.serve(listener, metrics_listener, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            metrics_addr,
            admin_key,
            client: reqwest::Client::new(),
            services,
            database_url: db.url.clone(),
            _db: db,
            _dir: dir,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a GraphQL request with `key` (if any); returns (HTTP status, body).
    pub async fn post(&self, key: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        (status, body)
    }

    /// Announces a POST /graphql body of `len` bytes without sending it and returns the
    /// head of the answer (status line and headers), lower-cased. A body over the limit is
    /// refused from its Content-Length before it is uploaded; over a client that insists on
    /// writing the whole body first, the server's early answer and close race with the
    /// upload, so the request is written by hand.
    pub async fn announce_body(&self, len: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
            self.addr, self.admin_key,
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 2048];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut answer))
            .await
            .expect("answered before the body")
            .unwrap();
        String::from_utf8_lossy(&answer[..n]).to_lowercase()
    }

    /// Runs a GraphQL operation as `key` and returns its `data`, failing on any error.
    pub async fn ok_as(&self, key: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(Some(key), query, variables).await;
        assert!(
            body.get("errors").is_none() && status == 200,
            "unexpected errors (HTTP {status}): {body:#}"
        );
        body["data"].clone()
    }

    /// [`Self::ok_as`] with the admin key.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        self.ok_as(&self.admin_key, query, variables).await
    }

    /// Runs an operation expected to fail; returns the first error's code and the body.
    pub async fn err_as(
        &self,
        key: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (String, Value) {
        let (_, body) = self.post(key, query, variables).await;
        let code = body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error with a code, got {body:#}"))
            .to_owned();
        (code, body)
    }

    /// [`Self::err_as`] with the admin key.
    pub async fn err(&self, query: &str, variables: Value) -> String {
        self.err_as(Some(&self.admin_key), query, variables).await.0
    }

    /// Creates another tenant; returns its admin's API key.
    pub async fn new_tenant(&self, slug: &str) -> String {
        self.services
            .admin
            .create_tenant(znovel_domain::services::CreateTenant {
                name: format!("Tenant {slug}"),
                slug: slug.into(),
                admin_email: format!("admin@{slug}.example"),
                admin_name: None,
            })
            .await
            .unwrap()
            .api_key
    }

    /// Creates a user of the local tenant with `role` and returns an API key acting as it.
    pub async fn user_key(&self, email: &str, role: &str) -> String {
        let d = self
            .ok(
                "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id role } } }",
                json!({ "i": { "email": email, "role": role } }),
            )
            .await;
        let uid = d["createUser"]["user"]["id"].as_str().unwrap().to_owned();
        let d = self
            .ok(
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }",
                json!({ "i": { "name": "test", "userId": uid } }),
            )
            .await;
        d["createApiKey"]["secret"].as_str().unwrap().to_owned()
    }

    /// Creates a novel; returns its id.
    pub async fn novel(&self, title: &str) -> String {
        let d = self
            .ok(
                "mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }",
                json!({ "i": { "title": title } }),
            )
            .await;
        d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates a chapter; returns its id.
    pub async fn chapter(&self, novel: &str, seq: i64, title: &str) -> String {
        let d = self
            .ok(
                "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }",
                json!({ "i": { "novelId": novel, "seq": seq, "title": title } }),
            )
            .await;
        d["createChapter"]["chapter"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Counts the local tenant's novels through the API (archived ones included).
    /// Starts the server's graceful shutdown (as SIGTERM does).
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn novel_count(&self) -> usize {
        let mut n = 0;
        for status in ["DRAFT", "WRITING", "COMPLETED", "ARCHIVED"] {
            let d = self
                .ok(
                    "query($s: NovelStatus) { novels(first: 100, status: $s) { edges { node { id } } } }",
                    json!({ "s": status }),
                )
                .await;
            n += d["novels"]["edges"].as_array().unwrap().len();
        }
        n
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
