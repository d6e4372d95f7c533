//! A real Qdrant server for tests: [`TestQdrant::start`] runs the `qdrant` binary on free
//! loopback ports with its storage in a temporary directory, and stops it (and removes
//! the directory) when dropped. The binary is `$QDRANT_BIN`, else `../shared/bin/qdrant`
//! next to the repository, else `qdrant` on `PATH`; without one, `start` prints a loud
//! `SKIPPED: no qdrant binary` line and returns `None`.

use anyhow::Context;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the Qdrant server binary.
pub const QDRANT_BIN_ENV: &str = "QDRANT_BIN";

/// A running Qdrant server, stopped on drop.
#[derive(Debug)]
pub struct TestQdrant {
    /// The gRPC URL (what `qdrant-client` talks to).
    pub url: String,
    /// The HTTP port (readiness, REST).
    pub http_port: u16,
    grpc_port: u16,
    binary: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
}

/// The Qdrant binary to run, if there is one.
pub fn qdrant_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var(QDRANT_BIN_ENV) {
        return Some(PathBuf::from(p));
    }
    // infra/ → the repository → the folder next to it.
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bin/qdrant");
    if shared.is_file() {
        return Some(shared);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("qdrant"))
        .find(|p| p.is_file())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl TestQdrant {
    /// Starts a server and waits until it is ready; `None` (after a loud line on stderr)
    /// when there is no binary.
    pub fn start() -> anyhow::Result<Option<TestQdrant>> {
        let Some(binary) = qdrant_binary() else {
            eprintln!(
                "SKIPPED: no qdrant binary (set {QDRANT_BIN_ENV}, or put it at ../shared/bin/qdrant or on PATH)"
            );
            return Ok(None);
        };
        let dir = std::env::temp_dir().join(format!("znovel-qdrant-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut q = TestQdrant {
            url: String::new(),
            http_port: free_port()?,
            grpc_port: free_port()?,
            binary,
            dir,
            child: None,
        };
        q.url = format!("http://127.0.0.1:{}", q.grpc_port);
        q.restart()?;
        Ok(Some(q))
    }

    /// Stops the server (SIGKILL, as a crash would); its storage stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again (after [`TestQdrant::kill`]) on the same ports and storage,
    /// and waits until it is ready.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let child = Command::new(&self.binary)
            .current_dir(&self.dir)
            .env("QDRANT__SERVICE__HOST", "127.0.0.1")
            .env("QDRANT__SERVICE__HTTP_PORT", self.http_port.to_string())
            .env("QDRANT__SERVICE__GRPC_PORT", self.grpc_port.to_string())
            .env("QDRANT__STORAGE__STORAGE_PATH", self.dir.join("storage"))
            .env(
                "QDRANT__STORAGE__SNAPSHOTS_PATH",
                self.dir.join("snapshots"),
            )
            .env("QDRANT__TELEMETRY_DISABLED", "true")
            .env("QDRANT__LOG_LEVEL", "WARN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                anyhow::bail!("qdrant exited at start-up: {status}");
            }
            if self.ready() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!("qdrant was not ready within 30 s")
    }

    /// Whether `/readyz` answers 200 and the gRPC port accepts connections.
    fn ready(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.http_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        if s.write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        (out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"))
            && std::net::TcpStream::connect(("127.0.0.1", self.grpc_port)).is_ok()
    }
}

impl Drop for TestQdrant {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
