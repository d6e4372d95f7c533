#!/usr/bin/env bash
# Makes sure what the project needs on this machine is there: the Rust toolchain's
# components, cargo-nextest, and (for the test suite) PostgreSQL and Redis running on
# 127.0.0.1, and (for the browser tests) Debian's Chromium with a CJK font. Installs from
# Debian packages / crates.io only when something is missing.
#
#   scripts/ensure-services.sh              toolchain only
#   scripts/ensure-services.sh --services   + PostgreSQL, Redis, cargo-nextest
#   scripts/ensure-services.sh --browser    + Chromium and fonts for the playground's tests
set -euo pipefail

need_services="${1:-}"

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  if ! have apt-get; then
    echo "missing $* and no apt-get to install it" >&2
    exit 1
  fi
  if [ -z "${ZNOVEL_APT_UPDATED:-}" ]; then
    apt-get update -qq || true
    export ZNOVEL_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
have cc || apt_install build-essential

if [ "$need_services" = "--browser" ]; then
  # Debian's Chromium (what playwright-core drives; its own browser downloads are not
  # reachable) and a font with Chinese glyphs, so CJK text renders as text, not boxes.
  [ -x /usr/bin/chromium ] || apt_install chromium
  fc-list :lang=zh 2>/dev/null | grep -q . || apt_install fonts-wqy-microhei
fi

if [ "$need_services" = "--services" ]; then
  have cargo-nextest || cargo install cargo-nextest --locked

  # PostgreSQL on 127.0.0.1:5432 (trust auth for local tests).
  if ! have pg_ctlcluster; then
    apt_install postgresql
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    ver=$(ls /etc/postgresql | sort -n | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || pg_ctlcluster "$ver" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432

  # Redis on 127.0.0.1:6379, nothing persisted.
  have redis-server || apt_install redis-server
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null
fi
