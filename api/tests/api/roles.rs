//! `znovel serve --role <role>`: each subgraph role serves its own subgraph (and only it)
//! with the same authentication; roles bootstrap no admin key unless asked; story-gen runs
//! the workers itself only without a shared queue; the file role serves the file routes
//! too; the job-worker serves only the probes. (Through a real federation router: `federation/`,
//! run by `scripts/federation.sh check`.)

use serde_json::{Value, json};
use std::net::SocketAddr;
use tokio::sync::oneshot;
use znovel::app::{self, App};
use znovel::config::Settings;
use znovel::role::Role;
use znovel_infra::testing::TestDatabase;

/// A role served on port 0 over a fresh SQLite database.
struct RoleApp {
    app: Option<App>,
    addr: SocketAddr,
    dir: std::path::PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    _db: TestDatabase,
}

impl RoleApp {
    /// Builds `role` with an OpenAI-compatible provider configured (never called here),
    /// so workers can be built, and `tweak` applied; not yet serving.
    async fn build(role: Option<Role>, tweak: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDatabase::sqlite().unwrap();
        let dir = std::env::temp_dir().join(format!("znovel-role-{}", uuid::Uuid::new_v4()));
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.clone(),
            database_url: Some(db.url.clone().into()),
            ..Settings::default()
        };
        settings.llm.base_url = Some("http://127.0.0.1:9/v1".into());
        tweak(&mut settings);
        let app = App::build_role(&settings, role).await.unwrap();
        Self {
            app: Some(app),
            addr: "127.0.0.1:0".parse().unwrap(),
            dir,
            shutdown: None,
            _db: db,
        }
    }

    /// Starts serving.
    async fn serve(mut self) -> Self {
        let app = self.app.take().unwrap();
        let listener = app::bind("127.0.0.1:0".parse().unwrap(), 1024, "ZNOVEL_LISTEN").unwrap();
        let metrics =
            app::bind("127.0.0.1:0".parse().unwrap(), 128, "ZNOVEL_METRICS_LISTEN").unwrap();
        self.addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            app.serve(listener, metrics, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        self.shutdown = Some(tx);
        self
    }

    fn app(&self) -> &App {
        self.app.as_ref().unwrap()
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let resp = reqwest::get(format!("http://{}{path}", self.addr))
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn post(&self, key: Option<&str>, query: &str) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("http://{}/graphql", self.addr))
            .json(&json!({ "query": query }));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for RoleApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates a tenant through the services; returns its admin's key.
async fn tenant_key(app: &App) -> String {
    app.services
        .admin
        .create_tenant(znovel_domain::services::CreateTenant {
            name: "Role Books".into(),
            slug: "roles".into(),
            admin_email: "admin@roles.example".into(),
            admin_name: None,
        })
        .await
        .unwrap()
        .api_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subgraph_role_serves_its_subgraph_with_the_same_authentication() {
    let role = RoleApp::build(Some(Role::StoryGen), |_| {}).await;
    assert!(
        role.app().admin_key.is_none(),
        "a role bootstraps no admin key by default"
    );
    assert!(!role.dir.join("admin.key").exists());
    let key = tenant_key(role.app()).await;
    let role = role.serve().await;

    let (status, body) = role
        .post(
            Some(&key),
            r#"mutation { createNovel(input: {title: "Sub"}) { novel { title } } }"#,
        )
        .await;
    assert_eq!(
        (status, &body["data"]["createNovel"]["novel"]["title"]),
        (200, &json!("Sub")),
        "{body}"
    );
    let (status, body) = role
        .post(None, "{ novels(first: 1) { edges { node { id } } } }")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    // A wrong credential: the error alone, with 200 — a router would add an error of its
    // own for a 401 (the all-in-one server answers 401).
    let (status, body) = role
        .post(
            Some("znk_wrong"),
            "{ novels(first: 1) { edges { node { id } } } }",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");

    // Its own subgraph: the federation fields, and no other subgraph's fields.
    let (_, body) = role.post(None, "{ _service { sdl } }").await;
    let sdl = body["data"]["_service"]["sdl"].as_str().unwrap_or_default();
    assert!(
        sdl.contains("type Chapter implements Node @key(fields: \"id\")"),
        "{body}"
    );
    let (_, body) = role.post(Some(&key), "{ viewer { role } }").await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("viewer")),
        "admin's fields are not served by story-gen: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_bootstraps_only_when_asked() {
    let role = RoleApp::build(Some(Role::Admin), |s| s.bootstrap = Some(true)).await;
    assert!(role.app().admin_key.is_some());
    let all = RoleApp::build(None, |_| {}).await;
    assert!(
        all.app().admin_key.is_some(),
        "the all-in-one server does by default"
    );
    let off = RoleApp::build(None, |s| s.bootstrap = Some(false)).await;
    assert!(off.app().admin_key.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_runs_the_jobs() {
    // In-process queue (no REDIS_URL): story-gen must run its jobs itself.
    assert!(
        RoleApp::build(Some(Role::StoryGen), |_| {})
            .await
            .app()
            .workers
            .is_some()
    );
    assert!(
        RoleApp::build(Some(Role::JobWorker), |_| {})
            .await
            .app()
            .workers
            .is_some()
    );
    assert!(RoleApp::build(None, |_| {}).await.app().workers.is_some());
    for r in [Role::Memory, Role::Admin, Role::Validator, Role::File] {
        assert!(
            RoleApp::build(Some(r), |_| {})
                .await
                .app()
                .workers
                .is_none(),
            "{r}"
        );
    }
    // A job worker without a model fails at start-up, naming why.
    let db = TestDatabase::sqlite().unwrap();
    let settings = Settings {
        data_dir: std::env::temp_dir().join(format!("znovel-role-{}", uuid::Uuid::new_v4())),
        database_url: Some(db.url.clone().into()),
        model_path: Some("/nonexistent/model.gguf".into()),
        ..Settings::default()
    };
    let err = App::build_role(&settings, Some(Role::JobWorker))
        .await
        .err()
        .expect("no model, no worker");
    assert!(format!("{err:#}").contains("no language model"), "{err:#}");
    let _ = std::fs::remove_dir_all(&settings.data_dir);
}

/// The file role serves the file subgraph and the file routes (a manuscript imported by
/// `POST /files/import`, its job then read through the subgraph's `GenerationJob` entity);
/// story-gen serves neither. (The job is queued in Redis, for a job worker.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_role_serves_files_import_and_export() {
    let prefix = format!("znovel-test-{}", uuid::Uuid::new_v4().simple());
    let role = RoleApp::build(Some(Role::File), |s| {
        s.redis_url = Some("redis://127.0.0.1:6379".to_string().into());
        s.redis_prefix = prefix.clone();
    })
    .await;
    let key = tenant_key(role.app()).await;
    let role = role.serve().await;
    let (_, body) = role.post(None, "{ _service { sdl } }").await;
    let sdl = body["data"]["_service"]["sdl"].as_str().unwrap_or_default();
    for field in [
        "exportNovel(",
        "importManuscript(",
        "previewImport(",
        "files(",
    ] {
        assert!(sdl.contains(field), "{field}: {sdl}");
    }

    let client = reqwest::Client::new();
    let manuscript =
        "Chapter 1 Arrival\nRain on the roofs.\n\nChapter 2 Departure\nThe ship left.\n";
    let resp = client
        .post(format!(
            "http://{}/files/import?name=harbour.txt&title=Harbour",
            role.addr
        ))
        .bearer_auth(&key)
        .body(manuscript)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let imported: Value = resp.json().await.unwrap();
    assert_eq!(imported["job"]["kind"], "IMPORT", "{imported}");
    assert_eq!(imported["job"]["status"], "QUEUED", "{imported}");
    assert_eq!(imported["novel"]["title"], "Harbour", "{imported}");
    let job = imported["job"]["id"].as_str().unwrap();
    let (_, body) = role
        .post(
            Some(&key),
            &format!(
                r#"{{ _entities(representations: [{{__typename: "GenerationJob", id: "{job}"}}]) {{ ... on GenerationJob {{ file {{ name size downloadUrl }} }} }} }}"#
            ),
        )
        .await;
    let file = &body["data"]["_entities"][0]["file"];
    assert_eq!(file["name"], "harbour.txt", "{body}");
    assert_eq!(file["size"], manuscript.len(), "{body}");
    let url = file["downloadUrl"].as_str().unwrap();
    assert_eq!(role.get(url).await, (200, manuscript.to_owned()));

    let resp = client
        .post(format!("http://{}/files/import?name=a.txt", role.addr))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "a credential is needed");
    let resp = client
        .post(format!(
            "http://{}/files/import?name=a.txt&format=PDF",
            role.addr
        ))
        .bearer_auth(&key)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    // Story-gen serves neither the file operations nor the file routes.
    let story = RoleApp::build(Some(Role::StoryGen), |_| {})
        .await
        .serve()
        .await;
    let (_, body) = story.post(None, "{ _service { sdl } }").await;
    let sdl = body["data"]["_service"]["sdl"].as_str().unwrap_or_default();
    assert!(sdl.contains("type GenerationJob"), "{sdl}");
    assert!(
        !sdl.contains("exportNovel") && !sdl.contains("StoredFile"),
        "{sdl}"
    );
    assert_eq!(story.get(url).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_worker_serves_only_the_probes() {
    let r = Role::JobWorker;
    let role = RoleApp::build(Some(r), |_| {}).await.serve().await;
    assert_eq!(role.get("/health").await.0, 200, "{r}");
    assert_eq!(role.get("/ready").await.0, 200, "{r}");
    let (status, index) = role.get("/").await;
    assert_eq!(status, 200);
    assert!(index.contains(&format!("\"role\":\"{r}\"")), "{index}");
    assert_eq!(
        role.post(None, "{ __typename }").await.0,
        404,
        "{r}: no /graphql"
    );
}
