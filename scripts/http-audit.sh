#!/usr/bin/env bash
# The GraphQL-over-HTTP conformance audit (graphql-http's serverAudits) and the
# graphql-transport-ws close codes as a stock graphql-ws client sees them, against the real
# `znovel` binary on a fresh SQLite data directory (tests/http-audit/audit.mjs). Fails on
# any audit error or unexpected close code; warnings are printed (docs/operations.md lists
# the ones that stay, and why).
#
#   scripts/http-audit.sh          build the debug binary (as scripts/federation.sh does) and audit it
#   ZNOVEL_BIN=path scripts/http-audit.sh   audit that binary
#
# Needs Node.js >= 20 and npm; packages from the npm registry, pinned by
# tests/http-audit/package-lock.json, installed once per lock file (npm's cache is used
# first, so a warm machine needs no network).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "scripts/http-audit.sh: Node.js >= 20 and npm are needed (not found on PATH)" >&2
  exit 1
fi

dir=tests/http-audit
stamp=$dir/node_modules/.znovel-lock-stamp
want="$(node --version) $(sha256sum $dir/package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "== npm ci ($dir)" >&2
  npm ci --prefix "$dir" --prefer-offline --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
fi

if [ -z "${ZNOVEL_BIN:-}" ]; then
  target=$(cargo metadata --format-version 1 --no-deps |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
  cargo build --locked -p znovel --quiet >&2
  export ZNOVEL_BIN="$target/debug/znovel"
fi
echo "== GraphQL-over-HTTP audit and graphql-ws close codes ($ZNOVEL_BIN)"
node "$dir/audit.mjs"
