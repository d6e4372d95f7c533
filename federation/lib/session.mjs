// The session the end-to-end test runs against one GraphQL endpoint (a federation router,
// or the all-in-one server): every check of ../checks in order, each adding its part to
// the transcript. [`comparable`] strips what necessarily differs between deployments.

import { CHECKS } from '../checks/index.mjs';
import { endpointOf, httpClient } from './client.mjs';

/**
 * Runs every check against the GraphQL endpoint `httpUrl` as the tenant whose admin API
 * key is `key`. `kind` is `router`, `gateway` or `all-in-one`; `label` names the
 * deployment in messages; `jwtSecret` is the deployment's JWT_SECRET; `files` is the base
 * URL of the file routes (`POST /files/import`, `GET /files/{id}`: the file service behind
 * a router, as the Ingress routes `/files` in the cluster). Returns
 * `{ transcript, timings }`; a failing step throws with the response that failed.
 */
export async function runSession(httpUrl, { kind, label, key, jwtSecret, files }) {
  const endpoint = endpointOf(httpUrl);
  const ctx = {
    kind,
    label,
    key,
    jwtSecret,
    endpoint,
    files,
    gql: httpClient(endpoint.http, { bearer: key }),
    httpAuth: { bearer: key },
    wsAuth: { Authorization: `Bearer ${key}` },
    state: {},
    timings: {},
  };
  const transcript = {};
  for (const check of CHECKS) {
    try {
      transcript[check.name] = await check.run(ctx);
    } catch (e) {
      e.message = `${label}, check ${check.name}: ${e.message}`;
      throw e;
    }
  }
  return { transcript, timings: ctx.timings, ctx };
}

/** Runs every check's `verify` on a transcript of the deployment `ctx` describes. */
export function verifySession(transcript, ctx) {
  for (const check of CHECKS) {
    try {
      check.verify?.(transcript[check.name], ctx);
    } catch (e) {
      e.message = `${ctx.label}, check ${check.name}: ${e.message}`;
      throw e;
    }
  }
}

/**
 * The transcript with what necessarily differs between two deployments replaced: every
 * global ID by its order of first appearance, keys sorted (so references must still
 * match), each
 * string of `rename` (e.g. the tenant's slug) by its replacement; every
 * `deploymentSpecific` part dropped.
 */
export function comparable(transcript, rename = {}) {
  const ids = new Map();
  const idKey = (k) => k === 'id' || /Id$/.test(k);
  const walk = (v, key) => {
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (v && typeof v === 'object') {
      // Keys in a fixed order, so that ids are numbered alike: the all-in-one server (its
      // GraphQL library resolves fields concurrently) may answer fields in another order
      // than the query's, which a router restores.
      const entries = Object.entries(v).filter(([k]) => k !== 'deploymentSpecific');
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return Object.fromEntries(entries.map(([k, x]) => [k, walk(x, k)]));
    }
    if (typeof v === 'string' && key && idKey(key)) {
      if (!ids.has(v)) ids.set(v, `<id ${ids.size + 1}>`);
      return ids.get(v);
    }
    if (typeof v === 'string' && Object.hasOwn(rename, v)) return rename[v];
    return v;
  };
  return walk(transcript);
}
