#!/usr/bin/env bash
# The federated deployment's tooling (federation/): composition of the subgraphs into
# federation/supergraph.graphql, its checks, the end-to-end test through the real
# federation routers — Hive Router (the production gateway, with the configuration and
# supergraph of k8s/base/gateway/) and Hive Gateway — and the router benchmark.
#
#   scripts/federation.sh install   npm ci into federation/node_modules (skipped while
#                                   package-lock.json is unchanged)
#   scripts/federation.sh compose   regenerate federation/supergraph.graphql (and the copy the
#                                   Kubernetes gateway serves); print its API schema
#   scripts/federation.sh check     what CI runs: fail if the supergraph is stale or its API
#                                   schema differs from schema.graphql, then run the e2e test
#   scripts/federation.sh e2e       only the end-to-end test (PostgreSQL and Redis on 127.0.0.1)
#   scripts/federation.sh up        start the federated deployment and keep it running (Ctrl-C
#                                   stops it): the routers' URLs and admin keys are printed
#   scripts/federation.sh bench     the latency each router adds per query and per streamed
#                                   chunk, beside the all-in-one server (release build)
#
# Hive Router is the binary $HIVE_ROUTER_BIN, else ../shared/bin/hive-router beside the
# repository, else `hive-router` on PATH; without one the e2e test says loudly that it skips
# it and runs through Hive Gateway alone. Needs Node.js >= 20 and npm (packages from the npm
# registry only); builds `znovel` with cargo ($CARGO_TARGET_DIR honoured).
set -euo pipefail
cd "$(dirname "$0")/.."

cmd="${1:-check}"

need_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "scripts/federation.sh: Node.js >= 20 and npm are needed (not found on PATH)" >&2
    exit 1
  fi
  if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "scripts/federation.sh: Node.js >= 20 is needed, found $(node --version)" >&2
    exit 1
  fi
}

# npm ci when node_modules is absent or was installed from another package-lock.json.
install() {
  need_node
  local stamp=federation/node_modules/.znovel-lock-stamp
  local want
  want="$(node --version) $(sha256sum federation/package-lock.json | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  echo "== npm ci (federation/)" >&2
  local started=$SECONDS
  npm ci --prefix federation --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
  echo "== npm ci done in $((SECONDS - started)) s" >&2
}

# Builds the binary (debug; `build release` for the optimised one, without the embedded
# model, which the tests here do not use); prints its path.
build() {
  local target
  target=$(cargo metadata --format-version 1 --no-deps |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
  if [ "${1:-}" = release ]; then
    cargo build --locked -p znovel --release --no-default-features --quiet >&2
    echo "$target/release/znovel"
  else
    cargo build --locked -p znovel --quiet >&2
    echo "$target/debug/znovel"
  fi
}

case "$cmd" in
  install)
    install
    ;;
  compose)
    install
    bin=$(build)
    node federation/compose.mjs --bin "$bin"
    # The Kubernetes gateway serves a copy (scripts/check-k8s.sh requires it to be equal).
    if [ -f k8s/base/gateway/supergraph.graphql ]; then
      cp federation/supergraph.graphql k8s/base/gateway/supergraph.graphql
      echo "copied to k8s/base/gateway/supergraph.graphql" >&2
    fi
    ;;
  check)
    install
    bin=$(build)
    echo "== supergraph check"
    node federation/compose.mjs --check --bin "$bin"
    echo "== federated end-to-end test"
    ZNOVEL_BIN="$bin" node federation/e2e.mjs
    ;;
  e2e)
    install
    bin=$(build)
    ZNOVEL_BIN="$bin" node federation/e2e.mjs
    ;;
  up)
    install
    bin=$(build)
    ZNOVEL_BIN="$bin" ZNOVEL_E2E_HOLD=1 node federation/e2e.mjs
    ;;
  bench)
    install
    bin=$(build release)
    ZNOVEL_BIN="$bin" node federation/bench.mjs
    ;;
  *)
    echo "usage: scripts/federation.sh [install|compose|check|e2e|up|bench]" >&2
    exit 2
    ;;
esac
