//! The `znovel` binary: parses the command line and runs it.

use clap::Parser;

/// The allocator: jemalloc, measured in `docs/benchmarks.md` ("Live generation"). After a
/// load — a thousand WebSocket subscribers gone — glibc's malloc keeps the process at its
/// peak RSS; jemalloc returns the freed pages to the system.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read once at start (the C symbol `malloc_conf` of the prefixed
/// build): a background thread purges freed pages on its own (without it, purging waits
/// for the next allocation in that arena, so an idle server never shrinks), dirty pages
/// are returned after 1 s and not kept as "muzzy" ones. `MALLOC_CONF` in the environment
/// (`_RJEM_MALLOC_CONF`) still overrides it.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[allow(unsafe_code)] // audited: a NUL-terminated constant, read by jemalloc, never written
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = znovel::cli::Cli::parse();
    match znovel::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
