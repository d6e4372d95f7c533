#!/usr/bin/env python3
"""Policy checks over the rendered Kubernetes manifests (run by scripts/check-k8s.sh).

    k8s_policy.py --rendered DIR --znovel BIN --root REPO

DIR holds one `<overlay>.yaml` per overlay (`kubectl kustomize` output). Checks, per
overlay unless said otherwise:

- workloads: every container has CPU and memory requests and limits; pods run as
  non-root with a RuntimeDefault seccomp profile and an fsGroup; containers have a
  read-only root filesystem, no privilege escalation, all capabilities dropped;
  Deployments spread over zones (podAntiAffinity on topology.kubernetes.io/zone, matching
  their own pods); Deployments and StatefulSets have liveness and readiness probes on a
  port they declare -- znovel on /health and /ready, the Hive Router on /health and
  /readiness; znovel Deployments run `serve --role <role>` named like them, with a role
  the binary accepts (`znovel serve --role <role> --help`).
- wiring: every HPA targets an existing Deployment (which has no `replicas` field); every
  PDB, Service and NetworkPolicy selector matches some workload's pods; every Service
  targetPort is declared by the pods it selects; no two Deployments select each other's
  pods; Ingress backends, ConfigMap/Secret references (envFrom, keyRefs, volumes) exist.
- environment: every env var a znovel container ends up with (env, envFrom ConfigMaps
  and Secrets) goes through `znovel check-env` (known names, values that load);
  LLM_FALLBACK_ENABLED_FILE is a mounted ConfigMap key holding true/false; in-cluster
  DATABASE_URL/REDIS_URL/QDRANT_URL hosts are Services with that port, and their
  passwords match the data stores' credentials; the PostgreSQL connection budget
  ((pool size + the chapter cache's listener) x pods at the autoscalers' maximum, plus a
  rollout's surge) fits max_connections.
- gateway: the router configuration (Hive Router 0.3 keys) points every supergraph
  subgraph at an existing Service port (a fixed URL, or the default of a
  `from_env: SUBGRAPH_URL_<NAME>` placeholder).
- monitoring: ServiceMonitor and PrometheusRule (CRDs, not in kubernetes-validate's
  schemas) are checked structurally here; prod must have them; every metric in the alerts
  is one `znovel print-metrics` lists or on EXTERNAL_METRICS; the dashboard uses only the
  binary's metrics; the required alerts exist.
- canary: the canary overlay equals prod plus exactly the canary objects, and those equal
  their stable twins except for the intended fields.
- runbook: the kubectl commands of docs/operations.md name only namespaces, objects,
  labels, overlays and env vars that exist; its PromQL uses only known metrics.

Exits 1 listing every problem.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import yaml

NAMESPACE = "z-novel-ai"
OVERLAYS = ("dev", "prod", "canary")

# Roles the manifests use, checked against the binary (`znovel serve --role R --help`).
ROLES_USED: dict[str, list[str]] = {}

# Kinds kubernetes-validate has no schema for; validated structurally here.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}

# Series the alerts may use that the binary does not export (kube-state-metrics and
# cAdvisor, for pod state and CPU/memory against limits). Nothing else.
EXTERNAL_METRICS = {
    "kube_pod_status_phase",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_resource_limits",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
}

# The binary's histograms (they export NAME_bucket, NAME_sum, NAME_count). Each must be
# in `znovel print-metrics`; a new histogram used in a query must be added here.
HISTOGRAMS = {
    "znovel_http_request_duration_seconds",
    "znovel_graphql_operation_duration_seconds",
    "znovel_generation_job_duration_seconds",
    "znovel_llm_time_to_first_token_seconds",
    "znovel_llm_tokens_per_second",
}

# Alerts the runbook's inspection list relies on: each set must be used by some rule.
REQUIRED_ALERT_METRICS = {
    "pod not running": {"kube_pod_status_phase"},
    "CPU over 80% of limits": {"container_cpu_usage_seconds_total", "kube_pod_container_resource_limits"},
    "memory over 80% of limits": {"container_memory_working_set_bytes", "kube_pod_container_resource_limits"},
    "queue lag over 1000": {"znovel_queue_jobs"},
    "HTTP error rate": {"znovel_http_requests_total"},
    "GraphQL error rate": {"znovel_graphql_errors_total", "znovel_graphql_operations_total"},
    "time to first token": {"znovel_llm_time_to_first_token_seconds_bucket"},
    "fallback activations": {"znovel_llm_fallback_activations_total"},
    "forced fallback": {"znovel_llm_fallback_forced"},
}

# Identifiers in the runbook that look like metrics but are not (the PostgreSQL role, the
# channel chapter writes are notified on).
NOT_METRICS = {"znovel_app", "znovel_chapters"}

# The canary overlay adds exactly these (kind, name) -- generated ConfigMaps by prefix.
CANARY_ADDED = {
    ("Deployment", "story-gen-canary"),
    ("Service", "story-gen-canary"),
    ("Deployment", "gateway-canary"),
    ("Service", "gateway-canary"),
    ("Ingress", "z-novel-canary"),
    ("ConfigMap", "gateway-canary-config"),
}

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan", "le",
}

ROOT_DIR: Path | None = None

HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, msg: str) -> None:
        self.items.append(f"[{where}] {msg}")


P = Problems()


# --- loading ---------------------------------------------------------------------------


def load(path: Path) -> list[dict]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d]


def base_name(name: str) -> str:
    """A generated ConfigMap/Secret name without its hash suffix."""
    return HASH_SUFFIX.sub("", name)


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def find(docs: list[dict], kind: str, name: str) -> dict | None:
    for d in docs:
        if d.get("kind") == kind and d["metadata"]["name"] == name:
            return d
    return None


def pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") in ("Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"):
        return doc["spec"]["template"]["spec"]
    if doc.get("kind") == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def pod_labels(doc: dict) -> dict:
    return doc["spec"]["template"]["metadata"].get("labels", {}) or {}


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if pod_spec(d) is not None]


def matches(selector: dict | None, labels: dict) -> bool:
    """matchLabels + matchExpressions (In/NotIn/Exists/DoesNotExist) against labels."""
    if selector is None:
        return False
    ml = selector.get("matchLabels", selector if "matchExpressions" not in selector and "matchLabels" not in selector else {})
    for k, v in (ml or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []) or []:
        k, op, vals = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and labels.get(k) in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def is_znovel(container: dict) -> bool:
    image = container.get("image", "")
    repo = image.rsplit("/", 1)[-1].split(":")[0].split("@")[0]
    return repo in ("znovel", "znovel-canary")


def container_ports(spec: dict) -> list[dict]:
    return [p for c in spec.get("containers", []) for p in c.get("ports", []) or []]


def port_declared(spec: dict, port) -> bool:
    for p in container_ports(spec):
        if port == p.get("name") or port == p.get("containerPort"):
            return True
    return False


# --- workloads -------------------------------------------------------------------------


def check_workloads(ov: str, docs: list[dict]) -> None:
    for w in workloads(docs):
        kind, name = w["kind"], w["metadata"]["name"]
        where = f"{ov} {kind}/{name}"
        spec = pod_spec(w)
        psc = spec.get("securityContext", {}) or {}
        if psc.get("runAsNonRoot") is not True:
            P.add(where, "pod securityContext.runAsNonRoot must be true")
        if not psc.get("runAsUser"):
            P.add(where, "pod securityContext.runAsUser must be set to a non-zero uid")
        if psc.get("fsGroup") is None:
            P.add(where, "pod securityContext.fsGroup must be set")
        if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            P.add(where, "pod securityContext.seccompProfile.type must be RuntimeDefault")
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            cw = f"{where} container {c['name']}"
            res = c.get("resources") or {}
            for section in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if not (res.get(section) or {}).get(r):
                        P.add(cw, f"resources.{section}.{r} is missing")
            sc = c.get("securityContext") or {}
            if sc.get("readOnlyRootFilesystem") is not True:
                P.add(cw, "securityContext.readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation") is not False:
                P.add(cw, "securityContext.allowPrivilegeEscalation must be false")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                P.add(cw, "securityContext.capabilities.drop must contain ALL")
            if sc.get("privileged"):
                P.add(cw, "must not be privileged")
            if kind in ("Deployment", "StatefulSet"):
                check_probes(cw, spec, c)
            if is_znovel(c):
                check_znovel_container(cw, w, c)
        if kind == "Deployment":
            sel = w["spec"].get("selector")
            if not matches(sel, pod_labels(w)):
                P.add(where, "spec.selector does not match its own pod template labels")
            check_anti_affinity(where, w)


def check_probes(where: str, spec: dict, c: dict) -> None:
    znovel = is_znovel(c)
    router = "graphql-hive/router" in c.get("image", "")
    want = {"livenessProbe": "/health", "readinessProbe": "/ready" if znovel else "/readiness" if router else None}
    for probe, path in want.items():
        p = c.get(probe)
        if not p:
            P.add(where, f"{probe} is missing")
            continue
        http = p.get("httpGet")
        if znovel or router:
            if not http:
                P.add(where, f"{probe} must be an httpGet probe on {path}")
                continue
            if http.get("path") != path:
                P.add(where, f"{probe} path is {http.get('path')!r}, expected {path!r}")
        for h in (http, p.get("tcpSocket"), p.get("grpc")):
            if h and not port_declared(spec, h.get("port")):
                P.add(where, f"{probe} port {h.get('port')!r} is not a port the pod declares")
    if znovel:
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", []) or []}
        if ports.get("http") != 8080 or ports.get("metrics") != 9090:
            P.add(where, f"znovel must declare ports http=8080 and metrics=9090 (has {ports})")


def check_anti_affinity(where: str, w: dict) -> None:
    aa = ((pod_spec(w).get("affinity") or {}).get("podAntiAffinity")) or {}
    terms = [t.get("podAffinityTerm", {}) for t in aa.get("preferredDuringSchedulingIgnoredDuringExecution", []) or []]
    terms += aa.get("requiredDuringSchedulingIgnoredDuringExecution", []) or []
    zone = [t for t in terms if t.get("topologyKey") == "topology.kubernetes.io/zone"]
    if not zone:
        P.add(where, "needs podAntiAffinity on topology.kubernetes.io/zone")
    elif not any(matches(t.get("labelSelector"), pod_labels(w)) for t in zone):
        P.add(where, "its zone podAntiAffinity labelSelector does not match its own pods")


def check_znovel_container(where: str, w: dict, c: dict) -> None:
    args = list(c.get("command", []) or []) + list(c.get("args", []) or [])
    if not args:
        P.add(where, "znovel container needs explicit args (serve --role ROLE / migrate)")
        return
    if args[0] == "serve":
        if "--role" not in args or args.index("--role") + 1 >= len(args):
            P.add(where, "`serve` needs `--role ROLE` in the cluster")
            return
        role = args[args.index("--role") + 1]
        ROLES_USED.setdefault(role, []).append(where)
        name = w["metadata"]["name"]
        if w["kind"] == "Deployment" and name.removesuffix("-canary") != role:
            P.add(where, f"Deployment {name} runs role {role}: name and role must agree")
    elif args[0] != "migrate":
        P.add(where, f"unexpected znovel command {args[0]!r}")


# --- wiring ----------------------------------------------------------------------------


def check_wiring(ov: str, docs: list[dict]) -> None:
    ws = workloads(docs)
    deployments = by_kind(docs, "Deployment")
    for hpa in by_kind(docs, "HorizontalPodAutoscaler"):
        where = f"{ov} HorizontalPodAutoscaler/{hpa['metadata']['name']}"
        ref = hpa["spec"]["scaleTargetRef"]
        target = find(docs, ref.get("kind"), ref.get("name"))
        if target is None:
            P.add(where, f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} does not exist")
        elif "replicas" in target["spec"]:
            P.add(where, f"{ref['kind']}/{ref['name']} sets spec.replicas: every `kubectl apply` would reset what the autoscaler chose -- leave it out")
        if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
            P.add(where, "minReplicas > maxReplicas")
    for pdb in by_kind(docs, "PodDisruptionBudget"):
        if not any(matches(pdb["spec"].get("selector"), pod_labels(w)) for w in ws):
            P.add(f"{ov} PodDisruptionBudget/{pdb['metadata']['name']}", "selector matches no workload's pods")
    for svc in by_kind(docs, "Service"):
        where = f"{ov} Service/{svc['metadata']['name']}"
        sel = svc["spec"].get("selector")
        if not sel:
            P.add(where, "has no selector")
            continue
        targets = [w for w in ws if matches({"matchLabels": sel}, pod_labels(w))]
        if not targets:
            P.add(where, f"selector {sel} matches no workload's pods")
        for port in svc["spec"].get("ports", []):
            tp = port.get("targetPort", port.get("port"))
            for w in targets:
                if not port_declared(pod_spec(w), tp):
                    P.add(where, f"targetPort {tp!r} is not declared by {w['kind']}/{w['metadata']['name']}")
    for np in by_kind(docs, "NetworkPolicy"):
        sel = np["spec"].get("podSelector") or {}
        if sel and not any(matches(sel, pod_labels(w)) for w in ws):
            P.add(f"{ov} NetworkPolicy/{np['metadata']['name']}", f"podSelector {sel} matches no workload's pods")
        for rule in np["spec"].get("ingress", []) or []:
            for peer in rule.get("from", []) or []:
                ps = peer.get("podSelector")
                if ps and "namespaceSelector" not in peer and not any(matches(ps, pod_labels(w)) for w in ws):
                    P.add(f"{ov} NetworkPolicy/{np['metadata']['name']}", f"from podSelector {ps} matches no workload's pods")
    for a in deployments:
        for b in deployments:
            if a is not b and matches(a["spec"]["selector"], pod_labels(b)):
                P.add(f"{ov} Deployment/{a['metadata']['name']}", f"its selector also matches the pods of Deployment/{b['metadata']['name']}")
    for ing in by_kind(docs, "Ingress"):
        for rule in ing["spec"].get("rules", []):
            for path in (rule.get("http") or {}).get("paths", []):
                s = path["backend"]["service"]
                svc = find(docs, "Service", s["name"])
                if svc is None:
                    P.add(f"{ov} Ingress/{ing['metadata']['name']}", f"backend Service {s['name']} does not exist")
                    continue
                want = s["port"].get("name") or s["port"].get("number")
                if not any(want in (p.get("name"), p.get("port")) for p in svc["spec"]["ports"]):
                    P.add(f"{ov} Ingress/{ing['metadata']['name']}", f"Service {s['name']} has no port {want!r}")
    check_references(ov, docs)


def config_data(doc: dict) -> dict[str, str]:
    if doc["kind"] == "ConfigMap":
        return dict(doc.get("data") or {})
    out = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    out.update(doc.get("stringData") or {})
    return out


def check_references(ov: str, docs: list[dict]) -> None:
    def need(where: str, kind: str, name: str, key: str | None = None) -> None:
        d = find(docs, kind, name)
        if d is None:
            P.add(where, f"references {kind} {name}, which does not exist")
        elif key is not None and key not in config_data(d):
            P.add(where, f"references key {key!r} of {kind} {name}, which has no such key")

    for w in workloads(docs):
        where = f"{ov} {w['kind']}/{w['metadata']['name']}"
        spec = pod_spec(w)
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            for ef in c.get("envFrom", []) or []:
                if "configMapRef" in ef:
                    need(where, "ConfigMap", ef["configMapRef"]["name"])
                if "secretRef" in ef:
                    need(where, "Secret", ef["secretRef"]["name"])
            for e in c.get("env", []) or []:
                vf = e.get("valueFrom") or {}
                if "configMapKeyRef" in vf:
                    need(where, "ConfigMap", vf["configMapKeyRef"]["name"], vf["configMapKeyRef"]["key"])
                if "secretKeyRef" in vf:
                    need(where, "Secret", vf["secretKeyRef"]["name"], vf["secretKeyRef"]["key"])
        for v in spec.get("volumes", []) or []:
            sources = [v] + [s for s in (v.get("projected") or {}).get("sources", [])]
            for s in sources:
                if "configMap" in s:
                    for it in s["configMap"].get("items", []) or [None]:
                        need(where, "ConfigMap", s["configMap"]["name"], it and it["key"])
                if "secret" in s:
                    need(where, "Secret", s["secret"].get("secretName") or s["secret"].get("name"))


# --- environment -----------------------------------------------------------------------


def container_env(docs: list[dict], c: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """What the container's process sees: envFrom in order, then env (env wins)."""
    env: dict[str, str] = {}
    issues = []
    for ef in c.get("envFrom", []) or []:
        ref = ef.get("configMapRef") or ef.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in ef else "Secret"
        d = find(docs, kind, ref["name"])
        if d is not None:
            for k, v in config_data(d).items():
                env[ef.get("prefix", "") + k] = v
    for e in c.get("env", []) or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            vf = e["valueFrom"]
            ref = vf.get("configMapKeyRef") or vf.get("secretKeyRef")
            if ref:
                d = find(docs, "ConfigMap" if "configMapKeyRef" in vf else "Secret", ref["name"])
                env[e["name"]] = config_data(d).get(ref["key"], "") if d else ""
            else:
                issues.append(f"env {e['name']}: only values and ConfigMap/Secret keys are supported")
        else:
            env[e["name"]] = ""
    for k, v in env.items():
        if "\n" in v.strip():
            issues.append(f"env {k} has a multi-line value (mount it as a file with {k}_FILE instead)")
    return sorted(env.items()), issues


ENV_FAILURES: dict[str, list[str]] = {}  # check-env output -> where (reported once each)


def run_check_env(znovel: str, lines: list[str], where: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".env", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        path = f.name
    try:
        r = subprocess.run([znovel, "check-env", path], capture_output=True, text=True)
        if r.returncode != 0:
            out = (r.stdout + r.stderr).strip().replace(path, "<env>")
            # Line numbers are those of the generated file: drop them.
            out = re.sub(r"line \d+: ", "", out)
            ENV_FAILURES.setdefault(out, []).append(where)
    finally:
        os.unlink(path)


def check_roles(znovel: str) -> None:
    for role, wheres in sorted(ROLES_USED.items()):
        r = subprocess.run([znovel, "serve", "--role", role, "--help"], capture_output=True, text=True)
        if r.returncode != 0:
            msg = (r.stderr or r.stdout).strip().split("\n")[0]
            P.add(wheres[0], f"`znovel serve --role {role}` is refused by the binary: {msg}")


def report_env_failures() -> None:
    for out, wheres in ENV_FAILURES.items():
        shown = ", ".join(wheres[:4]) + (f" and {len(wheres) - 4} more" if len(wheres) > 4 else "")
        P.add("env", f"`znovel check-env` rejects the environment of {shown} (each standing for every container with the same environment):\n      " + out.replace("\n", "\n      "))


def check_environment(ov: str, docs: list[dict], znovel: str) -> None:
    seen: dict[tuple, str] = {}
    for w in workloads(docs):
        spec = pod_spec(w)
        for c in spec.get("containers", []):
            if not is_znovel(c):
                continue
            where = f"{ov} {w['kind']}/{w['metadata']['name']} container {c['name']}"
            env, issues = container_env(docs, c)
            for i in issues:
                P.add(where, i)
            key = tuple(env)
            if key not in seen:
                seen[key] = where
                run_check_env(znovel, [f"{k}={v}" for k, v in env], where)
            envd = dict(env)
            if w["kind"] == "Deployment" or "LLM_FALLBACK_ENABLED_FILE" in envd:
                check_fallback_file(where, docs, spec, c, envd)
            check_urls(where, docs, envd)


def check_fallback_file(where: str, docs: list[dict], spec: dict, c: dict, env: dict) -> None:
    path = env.get("LLM_FALLBACK_ENABLED_FILE")
    if not path:
        P.add(where, "LLM_FALLBACK_ENABLED_FILE is not set: operators could not flip the fallback without a restart")
        return
    for m in c.get("volumeMounts", []) or []:
        mp = m["mountPath"].rstrip("/")
        if path.startswith(mp + "/"):
            key = path[len(mp) + 1:]
            vol = next((v for v in spec.get("volumes", []) if v["name"] == m["name"]), None)
            if m.get("subPath"):
                P.add(where, f"{path} is mounted with subPath: ConfigMap updates never reach it")
            if not vol or "configMap" not in vol:
                P.add(where, f"{path} is not on a ConfigMap volume")
                return
            cm = find(docs, "ConfigMap", vol["configMap"]["name"])
            if cm is None:
                return  # reported by check_references
            value = config_data(cm).get(key)
            if value is None:
                P.add(where, f"ConfigMap {cm['metadata']['name']} has no key {key!r} for {path}")
            elif value.strip().lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                P.add(where, f"{path} holds {value!r}, not true/false")
            return
    P.add(where, f"LLM_FALLBACK_ENABLED_FILE={path} is not inside any volume mount")


def check_urls(where: str, docs: list[dict], env: dict) -> None:
    creds = {}
    dc = next((d for d in by_kind(docs, "Secret") if base_name(d["metadata"]["name"]) == "datastore-credentials"), None)
    if dc is not None:
        creds = config_data(dc)
    for var, default_port in (("DATABASE_URL", 5432), ("REDIS_URL", 6379), ("QDRANT_URL", 6334)):
        raw = env.get(var)
        if not raw:
            continue
        u = urlsplit(raw)
        host = u.hostname or ""
        if "." in host or host in ("localhost", ""):
            continue  # outside the cluster (managed service): nothing to check here
        svc = find(docs, "Service", host)
        if svc is None:
            P.add(where, f"{var} names host {host!r}: no Service of that name")
            continue
        port = u.port or default_port
        if not any(p.get("port") == port for p in svc["spec"]["ports"]):
            P.add(where, f"{var} uses port {port}, Service {host} has no such port")
        if var == "DATABASE_URL" and host == "postgres" and creds:
            if u.username != "znovel" or u.password != creds.get("ZNOVEL_DB_PASSWORD"):
                P.add(where, "DATABASE_URL must log in as `znovel` with datastore-credentials' ZNOVEL_DB_PASSWORD")
        if var == "REDIS_URL" and host == "redis" and creds:
            if u.password != creds.get("REDIS_PASSWORD"):
                P.add(where, "REDIS_URL's password differs from datastore-credentials' REDIS_PASSWORD")


def check_connection_budget(ov: str, docs: list[dict]) -> None:
    pg = find(docs, "StatefulSet", "postgres")
    if pg is None:
        return
    args = pg["spec"]["template"]["spec"]["containers"][0].get("args", []) or []
    max_conn = 100
    for i, a in enumerate(args):
        if a == "-c" and i + 1 < len(args) and args[i + 1].startswith("max_connections="):
            max_conn = int(args[i + 1].split("=", 1)[1])
    usable = max_conn - 3  # superuser_reserved_connections
    total = 0
    parts = []
    for w in workloads(docs):
        for c in pod_spec(w).get("containers", []):
            if not is_znovel(c):
                continue
            env = dict(container_env(docs, c)[0])
            if "postgres" not in env.get("DATABASE_URL", "") or "@postgres" not in env.get("DATABASE_URL", ""):
                continue
            pool = int(env.get("ZNOVEL_DATABASE_MAX_CONNECTIONS", "16"))
            # The chapter cache's LISTEN connection, outside the pool.
            pool += 0 if env.get("ZNOVEL_CHAPTER_CACHE_BYTES", "") == "0" else 1
            if w["kind"] == "Deployment":
                hpa = next((h for h in by_kind(docs, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == w["metadata"]["name"]), None)
                pods = hpa["spec"]["maxReplicas"] if hpa else w["spec"].get("replicas", 1)
                pods += 1  # a rollout's surge
            else:
                pods = 1
            total += pods * pool
            parts.append(f"{w['metadata']['name']} {pods}x{pool}")
    if total > usable:
        P.add(f"{ov} StatefulSet/postgres", f"znovel pods may open {total} connections ({', '.join(parts)}) but max_connections={max_conn} leaves {usable}")


# --- gateway ---------------------------------------------------------------------------


def check_gateway(ov: str, docs: list[dict]) -> None:
    for w in by_kind(docs, "Deployment"):
        spec = pod_spec(w)
        for c in spec["containers"]:
            if "graphql-hive/router" not in c.get("image", ""):
                continue
            where = f"{ov} Deployment/{w['metadata']['name']}"
            files = mounted_files(docs, spec, c)
            env = {e["name"]: e.get("value") for e in c.get("env", []) or []}
            cfg_path = env.get("ROUTER_CONFIG_FILE_PATH")
            if cfg_path not in files:
                P.add(where, f"ROUTER_CONFIG_FILE_PATH={cfg_path} is not a mounted file")
                continue
            cfg = yaml.safe_load(files[cfg_path])
            sg_path = (cfg.get("supergraph") or {}).get("path")
            if sg_path not in files:
                P.add(where, f"supergraph.path {sg_path} is not a mounted file")
                continue
            port = (cfg.get("http") or {}).get("port", 4000)
            if not port_declared(spec, port):
                P.add(where, f"router listens on {port}, which the pod does not declare")
            overrides = router_subgraph_urls(cfg, where, env)
            for sub, url in overrides.items():
                u = urlsplit(url)
                svc = find(docs, "Service", u.hostname or "")
                if svc is None:
                    P.add(where, f"subgraph {sub} -> {url}: no Service {u.hostname}")
                elif not any(p.get("port") == u.port for p in svc["spec"]["ports"]):
                    P.add(where, f"subgraph {sub} -> {url}: Service {u.hostname} has no port {u.port}")
            graphs = set(re.findall(r'@join__graph\(\s*name:\s*"([^"]+)"', files[sg_path]))
            if graphs:
                for g in sorted(graphs - set(overrides)):
                    P.add(where, f"supergraph subgraph {g!r} has no override_subgraph_urls entry (it would use the composed URL)")
                for g in sorted(set(overrides) - graphs):
                    P.add(where, f"override_subgraph_urls names {g!r}, which the supergraph does not have")


def router_subgraph_urls(cfg: dict, where: str, env: dict) -> dict[str, str]:
    """The URL each subgraph gets in the cluster, from Hive Router 0.3's
    `override_subgraph_urls.subgraphs.<name>.url`: a URL, or `{from_env: SUBGRAPH_URL_<NAME>,
    default: URL}` (the container's `env` value if it sets the variable, else the default)."""
    section = cfg.get("override_subgraph_urls") or {}
    for key in sorted(set(section) - {"subgraphs", "all"}):
        P.add(where, f"override_subgraph_urls.{key}: Hive Router 0.3 knows only `subgraphs` and `all` there")
    out = {}
    for sub, o in (section.get("subgraphs") or {}).items():
        url = o.get("url") if isinstance(o, dict) else None
        if isinstance(url, dict) and "from_env" in url:
            want = "SUBGRAPH_URL_" + sub.upper().replace("-", "_")
            if url["from_env"] != want:
                P.add(where, f"subgraph {sub}: from_env {url['from_env']!r}, expected {want!r} (the e2e suite sets that name)")
            url = env.get(url["from_env"], url.get("default"))
        if not isinstance(url, str):
            P.add(where, f"subgraph {sub}: no URL (a string, or from_env with a default)")
            continue
        out[sub] = url
    return out


def mounted_files(docs: list[dict], spec: dict, c: dict) -> dict[str, str]:
    out = {}
    vols = {v["name"]: v for v in spec.get("volumes", []) or []}
    for m in c.get("volumeMounts", []) or []:
        v = vols.get(m["name"], {})
        sources = [v] + list((v.get("projected") or {}).get("sources", []))
        for s in sources:
            if "configMap" not in s:
                continue
            cm = find(docs, "ConfigMap", s["configMap"]["name"])
            if cm is None:
                continue
            data = config_data(cm)
            items = s["configMap"].get("items") or [{"key": k, "path": k} for k in data]
            for it in items:
                if it["key"] in data:
                    out[m["mountPath"].rstrip("/") + "/" + it["path"]] = data[it["key"]]
    return out


# --- metrics ---------------------------------------------------------------------------


def promql_metrics(expr: str) -> set[str]:
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\boffset\s+\S+", " ", s)
    s = re.sub(r"(?<![A-Za-z_:])\d+(\.\d+)?([eE][+-]?\d+)?", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        tok = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("(") or tok.lower() in PROMQL_WORDS:
            continue
        names.add(tok)
    return names


def known_series(exported: set[str]) -> set[str]:
    series = set(exported)
    for h in HISTOGRAMS:
        series |= {h + "_bucket", h + "_sum", h + "_count"}
    return series


def check_metrics_lists(exported: set[str]) -> None:
    for h in sorted(HISTOGRAMS - exported):
        P.add("metrics", f"HISTOGRAMS names {h}, which `znovel print-metrics` does not list (renamed? update scripts/k8s_policy.py)")


def check_monitoring(ov: str, docs: list[dict], exported: set[str]) -> None:
    sms = [d for d in docs if (d.get("apiVersion"), d.get("kind")) == ("monitoring.coreos.com/v1", "ServiceMonitor")]
    rules = [d for d in docs if (d.get("apiVersion"), d.get("kind")) == ("monitoring.coreos.com/v1", "PrometheusRule")]
    if ov in ("prod", "canary") and (not sms or not rules):
        P.add(ov, "prod must include the monitoring component (ServiceMonitor and PrometheusRule)")
    series = known_series(exported)
    for sm in sms:
        where = f"{ov} ServiceMonitor/{sm['metadata']['name']}"
        spec = sm.get("spec") or {}
        unknown = set(spec) - {"selector", "endpoints", "namespaceSelector", "podTargetLabels", "targetLabels", "jobLabel", "sampleLimit"}
        if unknown:
            P.add(where, f"unknown spec fields {sorted(unknown)}")
        eps = spec.get("endpoints") or []
        if not eps:
            P.add(where, "spec.endpoints is empty")
        svcs = [s for s in by_kind(docs, "Service") if matches(spec.get("selector"), s["metadata"].get("labels", {}))]
        if not svcs:
            P.add(where, "spec.selector matches no Service")
        for ep in eps:
            if set(ep) - {"port", "path", "interval", "scrapeTimeout", "scheme", "relabelings", "metricRelabelings", "honorLabels"}:
                P.add(where, f"unknown endpoint fields {sorted(set(ep) - {'port', 'path', 'interval', 'scrapeTimeout'})}")
            for s in svcs:
                if not any(p.get("name") == ep.get("port") for p in s["spec"]["ports"]):
                    P.add(where, f"Service {s['metadata']['name']} has no port named {ep.get('port')!r}")
    used: set[str] = set()
    for pr in rules:
        where = f"{ov} PrometheusRule/{pr['metadata']['name']}"
        groups = (pr.get("spec") or {}).get("groups") or []
        if not groups:
            P.add(where, "spec.groups is empty")
        for g in groups:
            if not g.get("name") or not g.get("rules"):
                P.add(where, f"group {g.get('name')!r} needs a name and rules")
            for r in g.get("rules") or []:
                rw = f"{where} rule {r.get('alert') or r.get('record')}"
                if not (r.get("alert") or r.get("record")) or not isinstance(r.get("expr"), str):
                    P.add(rw, "needs alert (or record) and a string expr")
                    continue
                if r.get("alert") and not (r.get("labels") or {}).get("severity"):
                    P.add(rw, "needs labels.severity")
                if "for" in r and not re.fullmatch(r"\d+[smhdw]", str(r["for"])):
                    P.add(rw, f"for: {r['for']!r} is not a duration")
                if set(r) - {"alert", "record", "expr", "for", "labels", "annotations", "keep_firing_for"}:
                    P.add(rw, f"unknown fields {sorted(set(r) - {'alert', 'expr', 'for', 'labels', 'annotations'})}")
                names = promql_metrics(r["expr"])
                used |= names
                for n in sorted(names - series - EXTERNAL_METRICS):
                    P.add(rw, f"uses metric {n!r}: not in `znovel print-metrics` nor on EXTERNAL_METRICS")
    anchors = doc_anchors(ROOT_DIR / "docs" / "operations.md") if ROOT_DIR else set()
    for pr in rules:
        for g in (pr.get("spec") or {}).get("groups") or []:
            for r in g.get("rules") or []:
                link = ((r.get("annotations") or {}).get("runbook")) or ""
                if r.get("alert") and not link:
                    P.add(f"{ov} PrometheusRule alert {r['alert']}", "needs a runbook annotation (docs/operations.md#section)")
                elif link and "#" in link and link.split("#", 1)[1] not in anchors:
                    P.add(f"{ov} PrometheusRule alert {r.get('alert')}", f"runbook {link}: docs/operations.md has no such heading")
    if rules:
        for what, need in REQUIRED_ALERT_METRICS.items():
            if not need <= used:
                P.add(ov, f"no alert for {what} (expected one using {sorted(need)})")
    for cm in by_kind(docs, "ConfigMap"):
        if (cm["metadata"].get("labels") or {}).get("grafana_dashboard") != "1":
            continue
        for key, text in config_data(cm).items():
            where = f"{ov} ConfigMap/{cm['metadata']['name']} {key}"
            try:
                dash = json.loads(text)
            except ValueError as e:
                P.add(where, f"not JSON: {e}")
                continue
            exprs = []
            def walk(panels):
                for p in panels or []:
                    exprs.extend(t["expr"] for t in p.get("targets", []) or [] if "expr" in t)
                    walk(p.get("panels"))
            walk(dash.get("panels"))
            if not exprs:
                P.add(where, "dashboard has no queries")
            for e in exprs:
                for n in sorted(promql_metrics(e) - series):
                    P.add(where, f"query uses {n!r}, which `znovel print-metrics` does not list")


def doc_anchors(path: Path) -> set[str]:
    """GitHub-style anchors of the Markdown headings of a file."""
    out = set()
    if path.exists():
        for line in path.read_text().split("\n"):
            m = re.match(r"#+\s+(.*)", line)
            if m:
                slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
                out.add(slug)
    return out


# --- canary ----------------------------------------------------------------------------


def norm_key(d: dict) -> tuple[str, str]:
    name = d["metadata"]["name"]
    if d["kind"] in ("ConfigMap", "Secret"):
        name = base_name(name)
    return d["kind"], name


def check_canary(prod: list[dict], canary: list[dict]) -> None:
    pm = {norm_key(d): d for d in prod}
    cm = {norm_key(d): d for d in canary}
    for k in sorted(set(pm) - set(cm)):
        P.add("canary", f"{k[0]}/{k[1]} of prod is missing from the canary overlay")
    for k in sorted(set(cm) - set(pm) - CANARY_ADDED):
        P.add("canary", f"{k[0]}/{k[1]} is added by the canary overlay but is not one of the intended canary objects")
    for k in sorted(CANARY_ADDED - set(cm)):
        P.add("canary", f"the canary overlay lacks {k[0]}/{k[1]}")
    for k in sorted(set(pm) & set(cm)):
        if pm[k] != cm[k]:
            P.add("canary", f"{k[0]}/{k[1]} differs from prod: the canary overlay must leave prod's objects alone\n      " + first_difference(pm[k], cm[k]))
    for d in canary:
        if norm_key(d) in CANARY_ADDED and (d["metadata"].get("labels") or {}).get("track") != "canary":
            P.add("canary", f"{d['kind']}/{d['metadata']['name']} needs the label track=canary (the runbook deletes canary objects by it)")
    # story-gen-canary == prod story-gen, but for the intended fields.
    stable, cand = pm.get(("Deployment", "story-gen")), cm.get(("Deployment", "story-gen-canary"))
    if stable and cand:
        s_img = stable["spec"]["template"]["spec"]["containers"][0]["image"]
        c_img = cand["spec"]["template"]["spec"]["containers"][0]["image"]
        if s_img == c_img:
            P.add("canary", f"story-gen-canary runs the stable image {s_img}: set the candidate tag (images: znovel-canary)")
        a, b = strip_twin(stable), strip_twin(cand)
        a["spec"].pop("replicas", None), b["spec"].pop("replicas", None)
        if a != b:
            P.add("canary", "story-gen-canary differs from prod's story-gen beyond name, track label, image and replicas\n      " + first_difference(a, b))
    stable, cand = pm.get(("Deployment", "gateway")), cm.get(("Deployment", "gateway-canary"))
    if stable and cand:
        a, b = strip_twin(stable), strip_twin(cand)
        a["spec"].pop("replicas", None), b["spec"].pop("replicas", None)
        for x in (a, b):
            for v in x["spec"]["template"]["spec"]["volumes"]:
                if v["name"] == "config":
                    v.clear()
                    v["name"] = "config"
        if a != b:
            P.add("canary", "gateway-canary differs from prod's gateway beyond name, track label, replicas and config volume\n      " + first_difference(a, b))
        sf = mounted_files(prod, pod_spec(stable), pod_spec(stable)["containers"][0])
        cf = mounted_files(canary, pod_spec(cand), pod_spec(cand)["containers"][0])
        if set(sf) != set(cf):
            P.add("canary", f"gateway-canary mounts {sorted(cf)}, the stable gateway {sorted(sf)}")
        for path in set(sf) & set(cf):
            if path.endswith(".yaml"):
                want = yaml.safe_load(sf[path])
                story_gen = (want.get("override_subgraph_urls") or {}).get("subgraphs", {}).get("story-gen", {})
                if isinstance(story_gen.get("url"), dict):
                    story_gen["url"]["default"] = "http://story-gen-canary:8080/graphql"
                else:
                    story_gen["url"] = "http://story-gen-canary:8080/graphql"
                if yaml.safe_load(cf[path]) != want:
                    P.add("canary", f"the canary router config {path} must equal the stable one with story-gen -> http://story-gen-canary:8080/graphql, and nothing else")
            elif sf[path] != cf[path]:
                P.add("canary", f"gateway-canary's {path} differs from the stable gateway's")
    ing, main = cm.get(("Ingress", "z-novel-canary")), cm.get(("Ingress", "z-novel"))
    if ing and main:
        ann = ing["metadata"].get("annotations") or {}
        if ann.get("nginx.ingress.kubernetes.io/canary") != "true":
            P.add("canary", "Ingress z-novel-canary needs nginx.ingress.kubernetes.io/canary: \"true\"")
        w = ann.get("nginx.ingress.kubernetes.io/canary-weight", "")
        if not w.isdigit() or not 0 < int(w) <= 50:
            P.add("canary", f"Ingress z-novel-canary canary-weight {w!r} must be 1..50")
        def hosts_paths(i):
            return sorted((r.get("host"), p["path"]) for r in i["spec"]["rules"] for p in r["http"]["paths"])
        if hosts_paths(ing) != hosts_paths(main):
            P.add("canary", "Ingress z-novel-canary must have the same hosts and paths as z-novel (ingress-nginx canary rule)")


def strip_twin(d: dict) -> dict:
    """A Deployment without what may differ between stable and canary twins."""
    x = copy.deepcopy(d)
    x["metadata"]["name"] = "X"
    for labels in (x["metadata"].get("labels"), x["spec"]["selector"].get("matchLabels"), x["spec"]["template"]["metadata"].get("labels")):
        if labels is not None:
            labels.pop("track", None)
    for c in x["spec"]["template"]["spec"]["containers"]:
        c["image"] = "X"
    return x


def first_difference(a, b, path: str = "") -> str:
    if type(a) is not type(b):
        return f"at {path or '/'}: {a!r} vs {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                if k not in a or k not in b:
                    return f"at {path}/{k}: {a.get(k)!r} vs {b.get(k)!r}"
                return first_difference(a[k], b[k], f"{path}/{k}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"at {path}: {len(a)} items vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_difference(x, y, f"{path}/{i}")
    return f"at {path or '/'}: {str(a)[:200]!r} vs {str(b)[:200]!r}"


# --- runbook ---------------------------------------------------------------------------

KIND_ALIASES = {
    "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
    "statefulset": "StatefulSet", "statefulsets": "StatefulSet", "sts": "StatefulSet",
    "job": "Job", "jobs": "Job",
    "service": "Service", "services": "Service", "svc": "Service",
    "configmap": "ConfigMap", "configmaps": "ConfigMap", "cm": "ConfigMap",
    "secret": "Secret", "secrets": "Secret",
    "hpa": "HorizontalPodAutoscaler", "horizontalpodautoscaler": "HorizontalPodAutoscaler",
    "pdb": "PodDisruptionBudget", "poddisruptionbudget": "PodDisruptionBudget",
    "ingress": "Ingress", "ingresses": "Ingress", "ing": "Ingress",
    "networkpolicy": "NetworkPolicy", "networkpolicies": "NetworkPolicy", "netpol": "NetworkPolicy",
    "servicemonitor": "ServiceMonitor", "prometheusrule": "PrometheusRule",
    "pod": "Pod", "pods": "Pod", "po": "Pod",
    "pvc": "PersistentVolumeClaim", "persistentvolumeclaim": "PersistentVolumeClaim",
    "event": "Event", "events": "Event", "all": "All", "replicaset": "ReplicaSet", "rs": "ReplicaSet",
}
CLUSTER_SCOPED_OK = {"apply", "delete", "diff", "kustomize", "version", "config", "api-resources", "top", "get"}
FLAGS_WITH_VALUE = {"-n", "--namespace", "-l", "--selector", "-c", "--container", "-k", "-f", "-o",
                    "--output", "--replicas", "--type", "-p", "--patch", "--timeout", "--for", "--tail",
                    "--since", "--to-revision", "--field-selector", "--sort-by", "--context", "-L"}


def runbook_commands(text: str) -> list[tuple[int, str]]:
    """kubectl commands in fenced code blocks and inline code spans, with line numbers."""
    cmds = []
    prose = []  # the text with code blocks blanked (line numbers kept)
    in_code = False
    buf, start = "", 0
    for i, line in enumerate(text.split("\n"), 1):
        if line.strip().startswith("```"):
            in_code = not in_code
            prose.append("")
            continue
        if not in_code:
            prose.append(line)
            continue
        prose.append("")
        s = line.strip()
        if buf:
            buf += " " + s.rstrip("\\").strip()
            if not s.endswith("\\"):
                cmds.append((start, buf))
                buf = ""
            continue
        s = re.sub(r"^\$\s+", "", s)
        if s.startswith("kubectl "):
            if s.endswith("\\"):
                buf, start = s.rstrip("\\").strip(), i
            else:
                cmds.append((i, s))
    joined = "\n".join(prose)
    # Inline spans (may wrap lines): commands, not prose mentions like `kubectl apply -k`.
    for m in re.finditer(r"`(kubectl [^`]+)`", joined):
        cmd = " ".join(m.group(1).split())
        if re.search(r"\s-n\s|--namespace|\s[a-z]+/[a-z0-9<$]", cmd):
            cmds.append((joined[: m.start()].count("\n") + 1, cmd))
    return sorted(cmds)


def check_runbook(root: Path, rendered: dict[str, list[dict]], exported: set[str], znovel: str) -> None:
    doc = root / "docs" / "operations.md"
    text = doc.read_text()
    alldocs = [d for docs in rendered.values() for d in docs]
    names = {(d["kind"], d["metadata"]["name"]) for d in alldocs}
    names |= {(d["kind"], base_name(d["metadata"]["name"])) for d in alldocs if d["kind"] in ("ConfigMap", "Secret")}
    label_sets = []
    for d in alldocs:
        label_sets.append(d["metadata"].get("labels") or {})
        if pod_spec(d) is not None:
            label_sets.append(pod_labels(d))
    env_lines = []
    commands = runbook_commands(text)
    if not commands:
        P.add("docs/operations.md", "no kubectl commands found (expected the Kubernetes runbook)")
    for lineno, cmd in commands:
        where = f"docs/operations.md:{lineno}"
        try:
            toks = shlex.split(cmd)
        except ValueError as e:
            P.add(where, f"cannot parse `{cmd}`: {e}")
            continue
        for stop in ("--", "|", "&&", ";"):
            if stop in toks:
                toks = toks[: toks.index(stop)]
        ns, positional, i = None, [], 1
        selectors = []
        while i < len(toks):
            t = toks[i]
            if t in ("-n", "--namespace"):
                ns = toks[i + 1] if i + 1 < len(toks) else None
                i += 2
                continue
            if t.startswith("--namespace="):
                ns = t.split("=", 1)[1]
            elif t in ("-l", "--selector"):
                selectors.append(toks[i + 1] if i + 1 < len(toks) else "")
                i += 2
                continue
            elif t.startswith(("-l=", "--selector=")):
                selectors.append(t.split("=", 1)[1])
            elif t in ("-k",):
                path = toks[i + 1] if i + 1 < len(toks) else ""
                if not path or not (root / path / "kustomization.yaml").exists():
                    P.add(where, f"-k {path}: no kustomization there")
                i += 2
                continue
            elif t in FLAGS_WITH_VALUE:
                i += 2
                continue
            elif not t.startswith("-"):
                positional.append(t)
            i += 1
        verb = positional[0] if positional else ""
        if ns is not None and ns != NAMESPACE:
            P.add(where, f"namespace {ns!r}: the manifests use {NAMESPACE}")
        if ns is None and verb not in ("apply", "delete", "diff", "kustomize", "version", "config", "api-resources") and not (verb in ("get", "top") and positional[1:2] in (["nodes"], ["node"], ["crd"], ["namespace"], ["ns"])):
            P.add(where, f"`{cmd}` lacks `-n {NAMESPACE}` (it would act on the default namespace)")
        if verb == "delete" and ns is None and not any(t == "-k" for t in toks):
            P.add(where, f"`{cmd}` lacks `-n {NAMESPACE}`")
        rest = positional[1:]
        if verb in ("rollout", "set") and rest:
            rest = rest[1:]
        for sel in selectors:
            want = {}
            for part in sel.split(","):
                if "!=" in part or "=" not in part:
                    continue
                k, v = part.split("=", 1)
                want[k.strip()] = v.strip().lstrip("=")
            if want and not any(all(ls.get(k) == v for k, v in want.items()) for ls in label_sets):
                P.add(where, f"label selector {sel!r} matches nothing in the rendered manifests")
        j = 0
        while j < len(rest):
            t = rest[j]
            if "=" in t or ":" in t:
                pass  # NAME=VALUE, container=image, port mappings
            elif "/" in t and not t.startswith(("k8s/", "./", "/", "http")):
                kind_s, name = t.split("/", 1)
                kind = KIND_ALIASES.get(kind_s.lower())
                if kind is None:
                    P.add(where, f"unknown resource type {kind_s!r} in {t!r}")
                elif kind != "Pod" and not re.search(r"[<$]", name) and (kind, name) not in names:
                    P.add(where, f"{kind}/{name} is not in the rendered manifests")
            elif t.lower() in KIND_ALIASES or "," in t and all(x.lower() in KIND_ALIASES for x in t.split(",")):
                kinds = [KIND_ALIASES[x.lower()] for x in t.split(",")]
                if len(kinds) == 1 and j + 1 < len(rest) and kinds[0] not in ("Pod", "All", "Event"):
                    name = rest[j + 1]
                    if not re.search(r"[<$=]", name) and (kinds[0], name) not in names:
                        P.add(where, f"{kinds[0]} {name} is not in the rendered manifests")
                    j += 1
            j += 1
        if verb == "set" and positional[1:2] == ["env"]:
            for t in positional[2:]:
                if re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", t):
                    env_lines.append(t)
                elif re.fullmatch(r"[A-Z][A-Z0-9_]*-", t):
                    env_lines.append(t[:-1] + ("=/unset" if t[:-1].endswith("_FILE") else "="))
    if env_lines:
        run_check_env(znovel, env_lines, "docs/operations.md `kubectl set env`")
    # PromQL: ```promql blocks in full; elsewhere every znovel_* identifier.
    series = known_series(exported)
    for m in re.finditer(r"```promql\n(.*?)```", text, re.S):
        lineno = text[: m.start()].count("\n") + 2
        for q in m.group(1).split("\n\n"):
            q = "\n".join(l for l in q.split("\n") if not l.strip().startswith("#"))
            for n in sorted(promql_metrics(q) - series - EXTERNAL_METRICS):
                P.add(f"docs/operations.md:{lineno}", f"PromQL uses {n!r}: not in `znovel print-metrics` nor on EXTERNAL_METRICS")
    for m in re.finditer(r"\b(znovel_[a-z0-9_]+)", text):
        n = m.group(1)
        if n not in series and n not in NOT_METRICS:
            lineno = text[: m.start()].count("\n") + 1
            P.add(f"docs/operations.md:{lineno}", f"{n!r} is not a metric `znovel print-metrics` lists")


# --- main ------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rendered", required=True, type=Path)
    ap.add_argument("--znovel", required=True)
    ap.add_argument("--root", required=True, type=Path)
    ap.add_argument("--split-crds", action="store_true", help="only write <overlay>.core.yaml (no CRDs) next to each rendering")
    a = ap.parse_args()

    global ROOT_DIR
    ROOT_DIR = a.root
    rendered = {ov: load(a.rendered / f"{ov}.yaml") for ov in OVERLAYS}
    if a.split_crds:
        for ov, docs in rendered.items():
            core = [d for d in docs if (d.get("apiVersion"), d.get("kind")) not in CRD_KINDS]
            crds = sorted({f"{d['kind']}/{d['metadata']['name']}" for d in docs} - {f"{d['kind']}/{d['metadata']['name']}" for d in core})
            (a.rendered / f"{ov}.core.yaml").write_text(yaml.safe_dump_all(core, sort_keys=False))
            if crds:
                print(f"  {ov}: {', '.join(crds)}: CRDs (monitoring.coreos.com/v1), not in kubernetes-validate's schemas -- checked structurally by the policy step")
        return 0

    exported = set(subprocess.run([a.znovel, "print-metrics"], check=True, capture_output=True, text=True).stdout.split())
    if not exported:
        P.add("metrics", "`znovel print-metrics` printed nothing")
    check_metrics_lists(exported)
    for ov, docs in rendered.items():
        for d in docs:
            md = d.get("metadata") or {}
            if d.get("kind") != "Namespace" and md.get("namespace") != NAMESPACE:
                P.add(ov, f"{d.get('kind')}/{md.get('name')} is in namespace {md.get('namespace')!r}, not {NAMESPACE}")
            if (md.get("labels") or {}).get("app.kubernetes.io/part-of") != "z-novel":
                P.add(ov, f"{d.get('kind')}/{md.get('name')} lacks the label app.kubernetes.io/part-of=z-novel")
        check_workloads(ov, docs)
        check_wiring(ov, docs)
        check_environment(ov, docs, a.znovel)
        check_connection_budget(ov, docs)
        check_gateway(ov, docs)
        check_monitoring(ov, docs, exported)
    check_canary(rendered["prod"], rendered["canary"])
    check_runbook(a.root, rendered, exported, a.znovel)
    report_env_failures()
    check_roles(a.znovel)

    if P.items:
        print(f"k8s policy: {len(P.items)} problem(s):", file=sys.stderr)
        for p in P.items:
            print(f"  - {p}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{ov} {len(docs)} objects" for ov, docs in rendered.items())
    print(f"k8s policy: ok ({counts}; {len(exported)} exported metrics)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
