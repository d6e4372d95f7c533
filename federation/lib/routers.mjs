// The federation routers the suite runs in front of the subgraphs:
//
// - Hive Router, the production gateway, started with exactly the configuration file and
//   supergraph Kubernetes deploys (k8s/base/gateway/). Only what the router itself lets an
//   operator override from its environment differs: each subgraph's URL
//   (`SUBGRAPH_URL_<NAME>`, a `from_env` placeholder of that file), the listener (`HOST`,
//   `PORT`) and where the supergraph file is (`SUPERGRAPH_FILE_PATH`).
// - Hive Gateway (npm), with federation/gateway.config.mjs and a supergraph composed with
//   the local subgraph URLs: a second, independent router implementation.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compose, subgraphSdls } from './compose.mjs';
import { waitForHttp } from './processes.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const federation = join(here, '..');
const root = join(federation, '..');

/** The configuration and supergraph the Kubernetes gateway serves. */
export const K8S_ROUTER_CONFIG = join(root, 'k8s/base/gateway/router.config.yaml');
export const K8S_SUPERGRAPH = join(root, 'k8s/base/gateway/supergraph.graphql');

/** The environment variable that overrides subgraph `name`'s URL in the router configuration. */
export const subgraphUrlVar = (name) => `SUBGRAPH_URL_${name.toUpperCase().replace(/-/g, '_')}`;

/**
 * Where the Hive Router binary is: `$HIVE_ROUTER_BIN`, else `../shared/bin/hive-router`
 * beside the repository, else `hive-router` on PATH. Returns `{ path }`, or
 * `{ path: null, looked }` listing where it looked.
 */
export function findHiveRouter() {
  const looked = [];
  if (process.env.HIVE_ROUTER_BIN) {
    looked.push(`$HIVE_ROUTER_BIN=${process.env.HIVE_ROUTER_BIN}`);
    return existsSync(process.env.HIVE_ROUTER_BIN) ? { path: process.env.HIVE_ROUTER_BIN } : { path: null, looked };
  }
  const candidates = [
    join(root, '..', 'shared', 'bin', 'hive-router'),
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'hive-router')),
  ];
  for (const c of candidates) {
    looked.push(c);
    if (existsSync(c)) return { path: c };
  }
  return { path: null, looked: [looked[0], 'hive-router on PATH'] };
}

/**
 * Starts Hive Router (`binary`) with the Kubernetes configuration, the Kubernetes
 * supergraph and the subgraphs at `urls` (name → GraphQL URL), listening on 127.0.0.1:`port`.
 * Fails first when the configuration has no `SUBGRAPH_URL_<NAME>` placeholder for one of
 * them. Resolves with `{ proc, http }` once `/readiness` answers.
 */
export async function startHiveRouter(procs, { binary, urls, port }) {
  const config = readFileSync(K8S_ROUTER_CONFIG, 'utf8');
  const missing = Object.keys(urls).filter((name) => !new RegExp(`from_env:\\s*${subgraphUrlVar(name)}\\b`).test(config));
  if (missing.length) {
    throw new Error(
      `${K8S_ROUTER_CONFIG} has no override for the subgraph(s) ${missing.join(', ')}: add ` +
        missing.map((n) => `override_subgraph_urls.subgraphs.${n}.url: { from_env: ${subgraphUrlVar(n)}, default: http://${n}:8080/graphql }`).join('; '),
    );
  }
  // Exactly these variables: a developer's PORT, HOST or LOG_* must not change the router.
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ROUTER_CONFIG_FILE_PATH: K8S_ROUTER_CONFIG,
    SUPERGRAPH_FILE_PATH: K8S_SUPERGRAPH,
    HOST: '127.0.0.1',
    PORT: String(port),
    ...Object.fromEntries(Object.entries(urls).map(([name, url]) => [subgraphUrlVar(name), url])),
  };
  const proc = procs.start('hive-router', binary, [], { env });
  // The Deployment's probes: readiness (supergraph loaded), then liveness.
  await waitForHttp(`http://127.0.0.1:${port}/readiness`, { what: 'Hive Router', proc, timeoutMs: 60_000 });
  await waitForHttp(`http://127.0.0.1:${port}/health`, { what: 'Hive Router /health', proc });
  return { proc, http: `http://127.0.0.1:${port}/graphql` };
}

/**
 * Starts Hive Gateway (federation/node_modules) on 127.0.0.1:`port` with
 * federation/gateway.config.mjs and the subgraphs of the binary `bin` composed with the
 * URLs `urls`, the supergraph written into `work`. Resolves with `{ proc, http }` once
 * `/readiness` answers.
 */
export async function startHiveGateway(procs, { bin, urls, port, work }) {
  const { supergraphSdl } = compose(subgraphSdls(bin), (name) => urls[name]);
  const supergraph = join(work, 'supergraph.graphql');
  writeFileSync(supergraph, supergraphSdl);
  const proc = procs.start(
    'hive-gateway',
    process.execPath,
    [
      join(federation, 'node_modules/@graphql-hive/gateway/dist/bin.js'),
      'supergraph',
      supergraph,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--fork',
      '1',
      '-c',
      join(federation, 'gateway.config.mjs'),
    ],
    { cwd: federation, env: { ...process.env, NODE_ENV: 'production' } },
  );
  await waitForHttp(`http://127.0.0.1:${port}/readiness`, { what: 'Hive Gateway', proc, timeoutMs: 90_000 });
  return { proc, http: `http://127.0.0.1:${port}/graphql` };
}
