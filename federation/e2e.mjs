#!/usr/bin/env node
// The federated end-to-end test (run by `scripts/federation.sh e2e|check`, so by CI).
//
// Starts the distributed deployment on this machine (lib/deployment.mjs): one
// `znovel serve --role <subgraph>` process per subgraph the binary lists and a job-worker,
// sharing a fresh PostgreSQL database and Redis, and an all-in-one `znovel serve` (SQLite,
// in-process queue) next to it; a fake OpenAI-compatible provider streams a fixed chapter
// to both. In front of the subgraphs run two routers (lib/routers.mjs):
//   - Hive Router, the production gateway, with the very configuration file and supergraph
//     Kubernetes deploys (k8s/base/gateway/), only the subgraph URLs and its listener
//     overridden from its environment;
//   - Hive Gateway (npm), a second router implementation.
// The same client session (lib/session.mjs: the checks of checks/, in order) runs through
// each router, then against the all-in-one server, each as a tenant of its own. Uploads
// and downloads go to the file service's own routes (`/files`, as the Ingress sends them):
// Hive Router refuses GraphQL multipart requests (checks/file.mjs). Every
// check's assertions hold on every deployment, and every router's transcript equals the
// all-in-one server's, ids aside. Every subgraph the binary lists must be covered by a
// check, and every role answers /health, /ready and /metrics.
//
// Without a Hive Router binary (another machine) the suite says loudly that it skips it and
// runs through Hive Gateway alone. Every process is stopped and the database and Redis keys
// are removed at the end, pass or fail. Environment: ZNOVEL_BIN (the binary),
// HIVE_ROUTER_BIN (default: ../shared/bin/hive-router beside the repository, else PATH),
// ZNOVEL_TEST_PG_URL (PostgreSQL admin URL, default postgres://postgres@127.0.0.1:5432/postgres),
// ZNOVEL_TEST_REDIS_URL (default redis://127.0.0.1:6379), ZNOVEL_E2E_KEEP=1 keeps the logs
// directory, ZNOVEL_E2E_HOLD=1 keeps the deployment running after start-up for manual tests
// (Ctrl-C ends it).

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { uncovered } from './checks/index.mjs';
import { Deployment, freePort } from './lib/deployment.mjs';
import { startFakeLlm } from './lib/fake-llm.mjs';
import { Processes } from './lib/processes.mjs';
import { findHiveRouter, startHiveGateway, startHiveRouter } from './lib/routers.mjs';
import { comparable, runSession, verifySession } from './lib/session.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const step = (msg) => console.error(`[e2e ${elapsed()}] ${msg}`);

const bin = process.env.ZNOVEL_BIN || join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug', 'znovel');
const work = mkdtempSync(join(tmpdir(), 'znovel-federation-e2e-'));
const procs = new Processes(work);
const deployment = new Deployment({
  bin,
  work,
  procs,
  pgAdmin: process.env.ZNOVEL_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
  redisUrl: process.env.ZNOVEL_TEST_REDIS_URL || 'redis://127.0.0.1:6379',
});

/** Says loudly that Hive Router is not tested on this machine. */
function warnSkippedRouter(looked) {
  const line = '!'.repeat(100);
  console.error(
    `${line}\n!! SKIPPED: Hive Router (the production gateway) is NOT tested: no hive-router binary ` +
      `(looked at ${looked.join(', ')}).\n!! The federated suite runs through Hive Gateway only. ` +
      `Set HIVE_ROUTER_BIN to run it.\n${line}`,
  );
}

async function main() {
  if (!existsSync(bin)) throw new Error(`no znovel binary at ${bin} (set ZNOVEL_BIN or build it)`);
  step(`run ${deployment.runId}: logs in ${work}`);
  const missingChecks = uncovered(deployment.subgraphs);
  if (missingChecks.length) {
    throw new Error(
      `no end-to-end checks for the subgraph(s) ${missingChecks.join(', ')}: add federation/checks/<name>.mjs ` +
        'exercising its operations through the router and list it in federation/checks/index.mjs',
    );
  }
  const llm = await startFakeLlm();
  await deployment.start({ LLM_BASE_URL: llm.baseUrl, LLM_MODEL: 'e2e-model', LLM_API_KEY: 'sk-e2e' });
  const { roles } = deployment;
  assert.ok(
    roles['story-gen'].proc.lines.some((l) => l.includes('Generation jobs run in the job workers')),
    'story-gen runs no workers when REDIS_URL is set',
  );
  step(`subgraphs ${deployment.subgraphs.join(', ')}, a job-worker and the all-in-one server are up`);

  const urls = Object.fromEntries(Object.entries(roles).map(([name, r]) => [name, r.graphql]));
  const routers = [];
  const hiveRouter = findHiveRouter();
  if (hiveRouter.path) {
    const router = await startHiveRouter(procs, { binary: hiveRouter.path, urls, port: await freePort() });
    routers.push({ kind: 'router', label: 'Hive Router', ...router });
    step(`Hive Router (${hiveRouter.path}) up on ${router.http} with k8s/base/gateway/router.config.yaml`);
  } else {
    warnSkippedRouter(hiveRouter.looked);
  }
  const gateway = await startHiveGateway(procs, { bin, urls, port: await freePort(), work });
  routers.push({ kind: 'gateway', label: 'Hive Gateway', ...gateway });
  step(`Hive Gateway up on ${gateway.http}`);

  const tenants = Object.fromEntries(routers.map((r) => [r.kind, deployment.createTenant(`e2e-${r.kind}`, { federated: true })]));
  const allInOneKey = deployment.createTenant('e2e-all-in-one', { federated: false });
  if (process.env.ZNOVEL_E2E_HOLD) {
    for (const r of routers) step(`${r.label}: ${r.http} (admin key ${tenants[r.kind]})`);
    step(`all-in-one: ${deployment.allInOne.graphql} (admin key ${allInOneKey}); holding the deployment (Ctrl-C stops it)`);
    await new Promise(() => {});
  }
  await deployment.checkProbes();

  // The session through each router, then against the all-in-one server.
  const sessions = [
    ...routers.map((r) => ({ kind: r.kind, label: r.label, http: r.http, files: roles.file.base, key: tenants[r.kind], slug: `e2e-${r.kind}` })),
    {
      kind: 'all-in-one',
      label: 'the all-in-one server',
      http: deployment.allInOne.graphql,
      files: deployment.allInOne.base,
      key: allInOneKey,
      slug: 'e2e-all-in-one',
    },
  ];
  const results = {};
  for (const s of sessions) {
    const before = llm.requests;
    const t0 = Date.now();
    const { transcript, timings, ctx } = await runSession(s.http, { ...s, jwtSecret: deployment.jwtSecret });
    writeFileSync(join(work, `${s.kind}.json`), JSON.stringify(transcript, null, 2));
    verifySession(transcript, ctx);
    assert.equal(llm.requests - before, 1, `${s.label}: the provider was called once for the one job`);
    results[s.kind] = comparable(transcript, { [s.slug]: '<tenant slug>' });
    step(
      `${s.label}: session passed in ${Date.now() - t0} ms ` +
        `(chapterStream: first chunk at ${timings.stream.firstChunkMs.toFixed(0)} ms, last event at ${timings.stream.lastEventMs.toFixed(0)} ms)`,
    );
  }

  // The same transcript from every deployment.
  for (const r of routers) {
    assert.deepEqual(results[r.kind], results['all-in-one'], `${r.label} answers like the all-in-one server`);
  }
  step(`PASS: the transcript through ${routers.map((r) => r.label).join(' and through ')} equals the all-in-one server's (ids aside)`);
  if (!hiveRouter.path) warnSkippedRouter(hiveRouter.looked);
  await llm.close();
}

async function cleanup(keepLogs) {
  await procs.stopAll();
  deployment.cleanup();
  if (!keepLogs && !process.env.ZNOVEL_E2E_KEEP) rmSync(work, { recursive: true, force: true });
}

// Interrupted (Ctrl-C, CI cancel, timeout): clean up all the same.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, async () => {
    step(`${signal}: stopping`);
    await cleanup(true);
    process.exit(130);
  });
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`\nFAIL (federated e2e, after ${elapsed()}): ${e.stack || e.message}`);
  console.error(`logs: ${work}`);
}
await cleanup(failed);
step(failed ? 'failed' : 'done');
process.exit(failed ? 1 : 0);
