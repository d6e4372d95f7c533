//! Faults with real processes: a private PostgreSQL (its own `initdb` cluster on a free
//! port, so stopping it disturbs no other test) stopped and started again under a running
//! server.

use crate::helpers::{Backend, TestApp};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL cluster of its own, run as the `postgres` user (PostgreSQL refuses root),
/// removed on drop.
struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("znovel-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        run(Command::new("chown").arg("postgres:postgres").arg(&dir));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Self { dir, port };
        run(pg.as_postgres("initdb").args([
            "-D",
            &pg.data(),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]));
        pg.up();
        pg
    }

    fn as_postgres(&self, tool: &str) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &format!("{PG_BIN}/{tool}")]);
        c
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        run(self.as_postgres("pg_ctl").args([
            "-D",
            &self.data(),
            "-o",
            &opts,
            "-l",
            &log,
            "-w",
            "start",
        ]));
    }

    /// Stops the server, closing every connection (`-m fast`).
    fn down(&self) {
        run(self
            .as_postgres("pg_ctl")
            .args(["-D", &self.data(), "-m", "fast", "-w", "stop"]));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(c: &mut Command) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn ready(app: &TestApp) -> u16 {
    app.client
        .get(app.url("/ready"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `f` every 100 ms until it is true; returns how long that took.
async fn until<F, Fut>(limit: Duration, what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !f().await {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

const LIST: &str = "{ novels(first: 10) { edges { node { title } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_is_survived_without_restarting_the_server() {
    let pg = PrivatePostgres::start();
    let url = pg.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.database_url = Some(url.into());
    })
    .await;
    app.novel("Before the outage").await;
    assert_eq!(ready(&app).await, 200);

    pg.down();
    let noticed = until(Duration::from_secs(15), "/ready turns 503", || async {
        ready(&app).await == 503
    })
    .await;
    // Requests fail with UNAVAILABLE (retry later), not a 5xx or a hang.
    let started = Instant::now();
    let (status, body) = app.post(Some(&app.admin_key), LIST, json!({})).await;
    let failed_in = started.elapsed();
    assert!(status < 500, "{status} {body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );
    assert!(
        failed_in < Duration::from_secs(10),
        "failed in {failed_in:?}"
    );

    pg.up();
    let recovered = until(
        Duration::from_secs(30),
        "/ready turns 200 again",
        || async { ready(&app).await == 200 },
    )
    .await;
    // Every request works again, reads and writes, on the same server process.
    let recovered_requests = until(
        Duration::from_secs(30),
        "requests succeed again",
        || async {
            let (_, body) = app.post(Some(&app.admin_key), LIST, json!({})).await;
            body.get("errors").is_none()
        },
    )
    .await;
    app.novel("After the outage").await;
    let d: Value = app.ok(LIST, json!({})).await;
    assert_eq!(d["novels"]["edges"].as_array().unwrap().len(), 2, "{d}");
    eprintln!(
        "PostgreSQL down: /ready 503 after {noticed:?}, a request failed UNAVAILABLE in \
         {failed_in:?}; up again: /ready 200 after {recovered:?}, requests ok after a further \
         {recovered_requests:?}"
    );
}
