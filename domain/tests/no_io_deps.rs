//! Proves the architecture rule `api → domain ← infra`: the domain crate's dependency
//! tree holds no database, HTTP, GraphQL, queue or vector-store crate.

use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "diesel",
    "diesel-async",
    "tokio-postgres",
    "libsqlite3-sys",
    "axum",
    "hyper",
    "async-graphql",
    "redis",
    "bb8",
    "qdrant-client",
    "reqwest",
    "tonic",
];

#[test]
fn domain_has_no_io_crates_in_its_tree() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "znovel-domain",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| e.to_string());
    let out = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => panic!("cargo tree failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("cannot run cargo tree: {e}"),
    };
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"znovel-domain"), "unexpected tree: {out}");
    assert!(
        names.contains(&"uuid"),
        "the tree should list real deps: {out}"
    );
    for bad in FORBIDDEN {
        assert!(
            !names.contains(bad),
            "domain must not depend on {bad}; tree:\n{out}"
        );
    }
}
