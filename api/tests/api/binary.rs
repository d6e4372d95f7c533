//! The real `znovel` binary, as a newcomer runs it: no configuration, data in ./data,
//! the admin key printed once and kept in ./data/admin.key, data surviving a restart;
//! the operator subcommands; wrong configuration failing with the variable's name.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_znovel");

fn znovel(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir).env_clear();
    if let Ok(p) = std::env::var("PATH") {
        c.env("PATH", p);
    }
    c
}

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `znovel serve` with nothing configured but OS-chosen ports (8080 may be
    /// taken on a shared machine); returns it with its GraphQL URL.
    fn start(dir: &Path) -> (Self, String) {
        Self::start_with(dir, &[])
    }

    /// [`Server::start`] with environment variables set.
    fn start_with(dir: &Path, env: &[(&str, &str)]) -> (Self, String) {
        let mut child = znovel(dir)
            .envs(env.iter().copied())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Self { child, lines: rx };
        let line = server.wait_for("GraphQL at ");
        let url = line
            .split("GraphQL at ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        (server, url)
    }

    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no line containing {needle:?} within 60 s"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    fn next_line(&mut self) -> String {
        self.lines.recv_timeout(Duration::from_secs(30)).unwrap()
    }

    /// SIGTERM, then the exit status must be success (graceful shutdown).
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful shutdown exits 0, got {status}");
    }
}

impl Drop for Server {
    /// A test that fails before `stop` leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn gql(url: &str, key: &str, query: &str, variables: Value) -> Value {
    let body: Value = reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"].clone()
}

fn tempdir() -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("znovel-bin-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_config_first_session_survives_a_restart() {
    let dir = tempdir();
    let (mut server, url) = Server::start(&dir);
    server.wait_for("Admin API key (shown once");
    let key = server.next_line().trim().to_owned();
    assert!(key.starts_with("znk_"), "{key}");
    let stored = std::fs::read_to_string(dir.join("data/admin.key")).unwrap();
    assert_eq!(stored.trim(), key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("data/admin.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the admin key is readable by its owner only"
        );
    }
    assert!(dir.join("data/znovel.db").exists(), "SQLite file in ./data");

    // The README's first session.
    let d = gql(&url, &key, r#"mutation { createNovel(input: {title: "The Lighthouse Keeper"}) { novel { id title } } }"#, json!({})).await;
    let novel = d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned();
    let d = gql(&url, &key, r#"mutation($n: ID!) { createChapter(input: {novelId: $n, seq: 1, title: "The Storm", outline: "Mara finds a stranger on the rocks."}) { chapter { id } } }"#, json!({ "n": novel })).await;
    let chapter = d["createChapter"]["chapter"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    gql(&url, &key, r#"mutation($n: ID!) { createEntity(input: {novelId: $n, name: "Mara", kind: CHARACTER, description: "The keeper."}) { entity { id } } }"#, json!({ "n": novel })).await;
    server.stop();

    let (mut server, url) = Server::start(&dir);
    let line = server.wait_for("Admin API key");
    assert!(
        line.contains("admin.key") && !line.contains(&key),
        "later starts do not print the key: {line}"
    );
    let d = gql(
        &url,
        &key,
        r#"query($n: ID!, $c: ID!) { novel(id: $n) { title } chapter(id: $c) { title outline } entities(novelId: $n) { edges { node { name } } } }"#,
        json!({ "n": novel, "c": chapter }),
    )
    .await;
    assert_eq!(d["novel"]["title"], "The Lighthouse Keeper");
    assert_eq!(
        d["chapter"]["outline"],
        "Mara finds a stranger on the rocks."
    );
    assert_eq!(d["entities"]["edges"][0]["node"]["name"], "Mara");
    server.stop();
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn operator_subcommands_work_on_a_fresh_database() {
    let dir = tempdir();
    let out = znovel(&dir).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = znovel(&dir)
        .args([
            "tenant",
            "create",
            "--name",
            "Acme Books",
            "--slug",
            "acme",
            "--admin-email",
            "boss@acme.example",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("znk_")), "{stdout}");
    let out = znovel(&dir)
        .args([
            "tenant",
            "create",
            "--name",
            "Again",
            "--slug",
            "acme",
            "--admin-email",
            "x@acme.example",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("taken"));
    let out = znovel(&dir)
        .args([
            "apikey",
            "create",
            "--tenant",
            "acme",
            "--email",
            "boss@acme.example",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .starts_with("znk_")
    );
    let out = znovel(&dir).args(["print-schema"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), znovel::graphql::sdl());
    let out = znovel(&dir)
        .args(["print-schema", "--subgraph", "memory"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("@key"));
    // The list the federation tooling starts one service per subgraph from.
    let out = znovel(&dir)
        .args(["print-schema", "--list-subgraphs"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        znovel::graphql::SUBGRAPHS
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn wrong_configuration_fails_naming_the_variable() {
    let dir = tempdir();
    for (var, value) in [
        ("ZNOVEL_LISTEN", "not-an-address"),
        ("DATABASE_URL", "mysql://nope"),
        ("LLM_FALLBACK_ENABLED", "perhaps"),
        ("ZNOVEL_METRICS_LISTEN", "127.0.0.1"),
    ] {
        let out = znovel(&dir).arg("serve").env(var, value).output().unwrap();
        assert!(!out.status.success(), "{var}={value} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var), "{var}: {err}");
    }
    let out = znovel(&dir)
        .arg("migrate")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
    std::fs::remove_dir_all(&dir).ok();
}

/// `znovel worker` is the job-worker role: no GraphQL API, but the probes on
/// `ZNOVEL_LISTEN` so Kubernetes can check it; an unknown role is refused with the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_serves_the_probes_and_roles_are_checked() {
    let dir = tempdir();
    let mut child = znovel(&dir)
        .args([
            "worker",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env("LLM_BASE_URL", "http://127.0.0.1:9/v1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut server = Server { child, lines: rx };
    let line = server.wait_for("job-worker is ready");
    let health = line
        .split("health at ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_owned();
    let resp = reqwest::get(&health).await.unwrap();
    assert_eq!(resp.status(), 200);
    let graphql = health.replace("/health", "/graphql");
    let resp = reqwest::Client::new().post(&graphql).send().await.unwrap();
    assert_eq!(resp.status(), 404, "the worker has no GraphQL API");
    server.stop();

    let out = znovel(&dir)
        .args(["serve", "--role", "story"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("story-gen") && err.contains("job-worker"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Allow-list mode on the real binary: documents registered with `znovel documents
/// register` (also while the server runs) run, by hash or by text; nothing else does,
/// introspection included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_mode_runs_only_registered_documents() {
    use crate::trusted::{persisted, sha256};
    let dir = tempdir();
    let viewer = "query Viewer {\n  viewer {\n    role\n  }\n}\n";
    std::fs::write(dir.join("viewer.graphql"), viewer).unwrap();
    std::fs::write(dir.join("broken.graphql"), "query {").unwrap();
    // A file that does not parse is refused, and nothing is registered.
    let out = znovel(&dir)
        .args(["documents", "register", "viewer.graphql", "broken.graphql"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.graphql"));
    let out = znovel(&dir).args(["documents", "list"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");

    let out = znovel(&dir)
        .args(["documents", "register", "viewer.graphql"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = sha256(viewer);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{hash}  viewer.graphql\n")
    );

    let (server, url) = Server::start_with(&dir, &[("ZNOVEL_TRUSTED_DOCUMENTS", "allowlist")]);
    let key = std::fs::read_to_string(dir.join("data/admin.key")).unwrap();
    let key = key.trim();
    let client = reqwest::Client::new();
    let send = |body: Value| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let r = client
                .post(&url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    let ok = send(json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(ok["data"]["viewer"]["role"], "ADMIN", "{ok}");
    let ok = send(json!({ "query": viewer })).await;
    assert_eq!(ok["data"]["viewer"]["role"], "ADMIN", "{ok}");
    for body in [
        json!({ "query": "{ viewer { role } }" }),
        json!({ "query": "{ __schema { queryType { name } } }" }),
        json!({ "extensions": persisted(&sha256("{ __typename }")) }),
    ] {
        let refused = send(body.clone()).await;
        let code = refused["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("");
        assert!(
            code == "PERSISTED_QUERY_NOT_ALLOWED" || code == "PERSISTED_QUERY_NOT_FOUND",
            "{body} -> {refused}"
        );
        assert!(refused.get("data").is_none_or(Value::is_null), "{refused}");
    }
    let refused = send(json!({ "query": "{ __typename }" })).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_ALLOWED",
        "{refused}"
    );

    // Registered while the server runs: allowed at once, no restart.
    std::fs::write(dir.join("typename.graphql"), "{ __typename }").unwrap();
    let out = znovel(&dir)
        .args(["documents", "register", "typename.graphql"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = send(json!({ "query": "{ __typename }" })).await;
    assert_eq!(ok["data"]["__typename"], "Query", "{ok}");
    let out = znovel(&dir).args(["documents", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].starts_with(&hash) && lines[0].ends_with("  Viewer"),
        "{listed}"
    );
    server.stop();
    std::fs::remove_dir_all(&dir).ok();
}

/// SIGTERM to the real binary with a WebSocket open: the socket is closed with 1012
/// (Service Restart, graphql-ws clients reconnect), the process exits 0, and after a
/// restart on the same data the client connects and subscribes again. (Without a model
/// configured `jobEvents` answers UNAVAILABLE; the connection stays open all the same.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_open_websockets_with_1012_and_clients_resume() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let dir = tempdir();
    let subscribe = |url: String, key: String, novel: String| async move {
        let mut req = url.replace("http", "ws").into_client_request().unwrap();
        req.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {key}") } });
        ws.send(Message::text(init.to_string())).await.unwrap();
        let ack = ws.next().await.unwrap().unwrap();
        assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
        let sub = json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription($n: ID!) { jobEvents(novelId: $n) { __typename } }",
            "variables": { "n": novel } } });
        ws.send(Message::text(sub.to_string())).await.unwrap();
        ws
    };
    let (server, url) = Server::start(&dir);
    let key = std::fs::read_to_string(dir.join("data/admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let d = gql(
        &url,
        &key,
        "mutation { createNovel(input: { title: \"Drained\" }) { novel { id } } }",
        json!({}),
    )
    .await;
    let novel = d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned();
    let mut ws = subscribe(url.clone(), key.clone(), novel.clone()).await;
    let stopping = std::thread::spawn(move || server.stop());
    let code = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(15), ws.next())
            .await
            .expect("a close within 15 s")
        {
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(code, Some(1012));
    stopping.join().unwrap();

    let (server, url) = Server::start(&dir);
    let mut ws = subscribe(url, key, novel).await;
    let answer = ws.next().await.unwrap().unwrap();
    assert!(
        answer.to_text().unwrap().contains("\"id\":\"1\""),
        "{answer:?}"
    );
    drop(ws);
    server.stop();
    std::fs::remove_dir_all(&dir).ok();
}
