#!/usr/bin/env bash
# The web playground (web-playground/): its build, the staleness check of the committed
# assets the binary embeds, and its browser tests in a real headless Chromium.
#
#   scripts/playground.sh install      npm ci into web-playground/node_modules (skipped
#                                      while package-lock.json is unchanged)
#   scripts/playground.sh build        rebuild web-playground/dist (commit it with the sources)
#   scripts/playground.sh check        fail when web-playground/dist differs from a fresh
#                                      build of the sources (what CI runs)
#   scripts/playground.sh test         the browser tests (Chromium + a fake LLM provider,
#                                      and one with the real local model)
#   scripts/playground.sh screenshots  docs/playground.png, docs/writing-room*.png
#   scripts/playground.sh bench        page weight and time to interactive (docs/benchmarks.md)
#
# Needs Node.js >= 20 and npm (packages from the npm registry only). `test`, `screenshots`
# and `bench` also need Debian's chromium (installed by scripts/ensure-services.sh
# --browser) and build `znovel` with cargo (debug profile, $CARGO_TARGET_DIR honoured).
set -euo pipefail
cd "$(dirname "$0")/.."

cmd="${1:-check}"
dir=web-playground

need_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "scripts/playground.sh: Node.js >= 20 and npm are needed (not found on PATH)" >&2
    exit 1
  fi
  if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "scripts/playground.sh: Node.js >= 20 is needed, found $(node --version)" >&2
    exit 1
  fi
}

# npm ci when node_modules is absent or was installed from another package-lock.json.
install() {
  need_node
  local stamp=$dir/node_modules/.znovel-lock-stamp
  local want
  want="$(node --version) $(sha256sum $dir/package-lock.json | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  echo "== npm ci ($dir/)" >&2
  local started=$SECONDS
  npm ci --prefix $dir --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
  echo "== npm ci done in $((SECONDS - started)) s" >&2
}

# Builds the binary the browser tests run; prints its path.
build_binary() {
  cargo build --locked -p znovel --quiet >&2
  local target
  target=$(cargo metadata --format-version 1 --no-deps |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
  echo "$target/debug/znovel"
}

browser() {
  scripts/ensure-services.sh --browser
}

case "$cmd" in
  install)
    install
    ;;
  build)
    install
    node $dir/build.mjs
    ;;
  check)
    install
    echo "== web playground: committed assets match the sources"
    node $dir/build.mjs --check
    ;;
  test)
    install
    browser
    bin=$(build_binary)
    echo "== web playground: browser tests (headless Chromium)"
    ZNOVEL_BIN="$bin" node --test --test-concurrency=1 $dir/tests/
    ;;
  screenshots)
    install
    browser
    bin=$(build_binary)
    ZNOVEL_BIN="$bin" node $dir/tests/screenshots.mjs
    ;;
  bench)
    install
    browser
    bin=$(build_binary)
    ZNOVEL_BIN="$bin" node $dir/tests/bench.mjs
    ;;
  *)
    echo "usage: scripts/playground.sh [install|build|check|test|screenshots|bench]" >&2
    exit 2
    ;;
esac
