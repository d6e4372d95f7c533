#!/usr/bin/env bash
# README command 2 (and what CI runs): format check, clippy with -D warnings, and every
# test of the workspace — against real SQLite files, the real PostgreSQL and Redis on
# this machine (started here when down). The schema drift check is one of the tests; the
# web playground's asset check and browser tests (headless Chromium) run last.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-services.sh --services
# The embedded model (and the build tools llama.cpp needs); the local-model tests use it.
scripts/fetch-models.sh >/dev/null

echo "== cargo fmt"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== doc tests"
cargo test --locked --workspace --doc
scripts/check-k8s.sh  # k8s/ manifests and the runbook: schemas, policies, env, metrics
scripts/playground.sh check  # web-playground/dist (embedded in the binary) = a fresh build of its sources
# Qdrant and Hive Router: the memory index suites start their own Qdrant from $QDRANT_BIN
# and the federated e2e test runs Hive Router from $HIVE_ROUTER_BIN. Unset, each is looked
# for in ../shared/bin beside this checkout, then beside the repository it was cloned from
# (a fresh clone elsewhere still finds them), then on PATH.
shared_bin() {
  local origin dir
  origin="$(git config --get remote.origin.url 2>/dev/null || true)"
  for dir in ../shared/bin ${origin:+"${origin%/}/../shared/bin"}; do
    if [ -x "$dir/$1" ]; then
      echo "$(cd "$dir" && pwd)/$1"
      return
    fi
  done
}
if [ -z "${QDRANT_BIN:-}" ] && [ -n "$(shared_bin qdrant)" ]; then
  QDRANT_BIN="$(shared_bin qdrant)"
  export QDRANT_BIN
fi
if [ -z "${HIVE_ROUTER_BIN:-}" ] && [ -n "$(shared_bin hive-router)" ]; then
  HIVE_ROUTER_BIN="$(shared_bin hive-router)"
  export HIVE_ROUTER_BIN
fi
if [ -n "${QDRANT_BIN:-}" ] || command -v qdrant >/dev/null 2>&1; then
  echo "== qdrant server for the tests: ${QDRANT_BIN:-$(command -v qdrant)}"
else
  echo "!! no qdrant binary: the Qdrant memory index tests are SKIPPED (set QDRANT_BIN)"
fi
echo "== hive router for the federated e2e test: ${HIVE_ROUTER_BIN:-$(command -v hive-router || echo 'none: SKIPPED, set HIVE_ROUTER_BIN')}"
echo "== tests"
cargo nextest run --locked --workspace --no-fail-fast
scripts/http-audit.sh        # graphql-http serverAudits: 0 errors; graphql-ws close codes
scripts/federation.sh check  # supergraph = schema.graphql; federated e2e through Hive Gateway
scripts/playground.sh test   # /playground and /write in headless Chromium
