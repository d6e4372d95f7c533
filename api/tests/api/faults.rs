//! Faults with real processes: a private PostgreSQL (its own `initdb` cluster on a free
//! port, so stopping it disturbs no other test) stopped and started again under a running
//! server; a private Redis restarted under a `znovel serve` process while a chapter
//! streams from it.

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

/// A private redis-server on a free port with its append-only file in a temporary
/// directory (as a production Redis keeps its data), stopped and started again in place.
struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("znovel-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Self {
            port,
            dir,
            child: None,
        };
        r.up();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn up(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        let started = Instant::now();
        while !Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "ping"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "redis-server up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM (Redis flushes its append-only file and exits), then starts it again on
    /// the same port and data after `down`.
    fn restart(&mut self, down: Duration) {
        if let Some(child) = self.child.take() {
            run(Command::new("kill").arg(child.id().to_string()));
            let mut child = child;
            let _ = child.wait();
        }
        std::thread::sleep(down);
        self.up();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Redis stopped for two seconds and started again while a chapter streams: the job is not
/// lost (it completes, stored once), and the subscriber gets every chunk exactly once, in
/// order — resubscribing with `after` if its subscription ended while Redis was away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_chapter_loses_no_job_and_no_chunk() {
    use crate::scale_out::{
        Cluster, assert_consecutive, generate, novel_and_chapter, subscribe, words,
    };
    use crate::websocket::next_json;
    use znovel_infra::llm::testing::{FakeOpenAi, FakeStream};

    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    fake.script(
        "primary",
        FakeStream::new(words(100)).interval(Duration::from_millis(60)),
    );
    // A retried attempt (the job handed to a worker again) continues from here.
    fake.script("primary", FakeStream::new(words(100)));
    let mut redis = PrivateRedis::start();
    let cluster = Cluster::with_redis(&fake, &redis.url()).await;
    let (api, key) = cluster.serve("api", true, true);
    let key = key.unwrap();
    let chapter = novel_and_chapter(api.url(), &key).await;
    let job = generate(api.url(), &key, &chapter, 100).await;

    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut ws = subscribe(api.url(), &key, &job, None).await;
    let mut restarted = false;
    let mut resubscribed = 0;
    let done = 'follow: loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), next_json(&mut ws)).await;
        let ended = match &msg {
            // While Redis is away the subscription answers UNAVAILABLE (then completes).
            Ok(m) if m["type"] == "next" && m["payload"]["errors"].is_array() => {
                let code = &m["payload"]["errors"][0]["extensions"]["code"];
                assert_eq!(code, "UNAVAILABLE", "{m}");
                true
            }
            Ok(m) if m["type"] == "next" => {
                let ev = &m["payload"]["data"]["chapterStream"];
                if ev["__typename"] != "ChapterChunk" {
                    break 'follow ev.clone();
                }
                seen.push((
                    ev["seq"].as_i64().unwrap(),
                    ev["text"].as_str().unwrap().to_owned(),
                ));
                if seen.len() == 10 && !restarted {
                    restarted = true;
                    redis.restart(Duration::from_secs(2));
                }
                false
            }
            // The subscription ended with an error or the connection closed: resume.
            _ => true,
        };
        if ended {
            resubscribed += 1;
            assert!(resubscribed <= 20, "the stream never came back: {msg:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = seen.last().map(|c| c.0);
            ws = subscribe(api.url(), &key, &job, after).await;
        }
    };
    assert!(restarted, "Redis was restarted mid-chapter");
    eprintln!("subscription resumed {resubscribed} time(s) around the restart");
    assert_eq!(done["__typename"], "ChapterCompleted", "{done}");
    assert_consecutive(&seen, 1);
    let streamed: String = seen.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        done["chapter"]["content"],
        streamed.as_str(),
        "stored == every chunk once"
    );
    let d = crate::scale_out::gql(
        api.url(),
        &key,
        "query($c: ID!) { chapter(id: $c) { revisions(first: 10) { edges { node { source } } } } }",
        json!({ "c": chapter }),
    )
    .await;
    let generated = d["chapter"]["revisions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["source"] == "GENERATION")
        .count();
    assert_eq!(generated, 1, "stored once: {d}");
}
