#!/usr/bin/env node
// The federated end-to-end test (run by `scripts/federation.sh e2e|check`, so by CI).
//
// Starts the distributed deployment on this machine — one `znovel serve --role <r>`
// process per subgraph (story-gen, memory, admin) and a job-worker, sharing a fresh
// PostgreSQL database and Redis (under a key prefix of its own) — behind a real federation
// router (Hive Gateway, with federation/gateway.config.mjs), and an all-in-one
// `znovel serve` (SQLite, in-process queue) next to it; a fake OpenAI-compatible provider
// streams a fixed chapter to both. It runs the same client session against the router and
// against the all-in-one server (lib/session.mjs) and asserts:
//   - a query spanning every subgraph (admin `viewer`/`node`/`nodes` completed from
//     story-gen and memory, story-gen `novel`, memory `entities`) and the mutations work
//     through the router;
//   - `chapterStream` through the router over graphql-transport-ws, with the credential
//     forwarded from `connection_init`, delivers chunks 1..n in order and a
//     `ChapterCompleted` whose stored chapter is exactly the chunks concatenated (= the
//     provider's text); the job ran in the job-worker (story-gen runs no workers with Redis);
//   - `jobEvents(novelId)` through the router sees the job QUEUED, RUNNING, SUCCEEDED;
//   - a missing or wrong credential is refused through the router, at once (HTTP and
//     WebSocket: a subgraph fails the operation with UNAUTHENTICATED);
//   - both deployments give the same transcript, ids aside;
//   - every role process answers /health, /ready and /metrics.
// Every process is stopped and the database and Redis keys are removed at the end, pass or
// fail. Environment: ZNOVEL_BIN (the binary), ZNOVEL_TEST_PG_URL (PostgreSQL admin URL,
// default postgres://postgres@127.0.0.1:5432/postgres), ZNOVEL_TEST_REDIS_URL (default
// redis://127.0.0.1:6379), ZNOVEL_E2E_KEEP=1 keeps the logs directory, ZNOVEL_E2E_HOLD=1
// keeps the deployment running after start-up for manual tests (Ctrl-C ends it).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { compose, subgraphSdls, SUBGRAPHS } from './lib/compose.mjs';
import { startFakeLlm, TEXT } from './lib/fake-llm.mjs';
import { Processes, waitForHttp } from './lib/processes.mjs';
import { comparable, runSession } from './lib/session.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const step = (msg) => console.error(`[e2e ${elapsed()}] ${msg}`);

const bin = process.env.ZNOVEL_BIN || join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug', 'znovel');
const pgAdmin = process.env.ZNOVEL_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.ZNOVEL_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const runId = randomBytes(4).toString('hex');
const dbName = `znovel_e2e_${runId}`;
const redisPrefix = `znovel-e2e-${runId}`;
const work = mkdtempSync(join(tmpdir(), 'znovel-federation-e2e-'));
const procs = new Processes(work);

/** `url` with its database replaced by `db`. */
function withDatabase(url, db) {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}
const databaseUrl = withDatabase(pgAdmin, dbName);

function psql(sql) {
  execFileSync('psql', [pgAdmin, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Deletes this run's Redis keys (and only those). */
function cleanRedis() {
  const keys = execFileSync('redis-cli', ['-u', redisUrl, '--scan', '--pattern', `${redisPrefix}:*`], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  for (let i = 0; i < keys.length; i += 100) {
    execFileSync('redis-cli', ['-u', redisUrl, 'DEL', ...keys.slice(i, i + 100)], { stdio: 'ignore' });
  }
  return keys.length;
}

/**
 * This process's environment without any variable the binary reads (a developer's
 * DATABASE_URL or ZNOVEL_* settings must not leak into the deployment under test).
 */
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([k]) => !/^(ZNOVEL_|DATABASE_URL|REDIS_URL|QDRANT_URL|LLM_|JWT_)/.test(k) || k === 'ZNOVEL_E2E_KEEP',
  ),
);

/** Runs a `znovel` subcommand to completion; returns its stdout. */
function znovel(args, env) {
  try {
    return execFileSync(bin, args, { encoding: 'utf8', env: { ...cleanEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`znovel ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Creates the tenant of the test on a database; returns its admin key. */
function createTenant(env) {
  const out = znovel(['tenant', 'create', '--name', 'E2E Books', '--slug', 'e2e', '--admin-email', 'admin@e2e.example'], env);
  const key = out.split('\n').find((l) => l.startsWith('znk_'));
  assert.ok(key, `tenant create printed no key:\n${out}`);
  return key.trim();
}

/** Settings every znovel process gets (on top of [`cleanEnv`]). */
const baseEnv = { RUST_LOG: 'info', ZNOVEL_LOG_FORMAT: 'json' };

/** Starts `znovel serve` with `args`; resolves with its URLs once it says it is ready. */
async function serve(name, args, env) {
  const proc = procs.start(name, bin, ['serve', ...args, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'], {
    env: { ...cleanEnv, ...baseEnv, ZNOVEL_DATA_DIR: join(work, name), ...env },
  });
  const m = await proc.waitForLine(/ready: .*?http:\/\/([\d.:]+)\/\S+ .*?metrics at (http:\/\/[\d.:]+\/metrics)/);
  const base = `http://${m[1]}`;
  await waitForHttp(`${base}/health`, { what: name, proc });
  return { name, proc, base, graphql: `${base}/graphql`, metrics: m[2] };
}

async function main() {
  if (!existsSync(bin)) throw new Error(`no znovel binary at ${bin} (set ZNOVEL_BIN or build it)`);
  step(`run ${runId}: logs in ${work}`);
  const llm = await startFakeLlm();
  const llmEnv = { LLM_BASE_URL: llm.baseUrl, LLM_MODEL: 'e2e-model', LLM_API_KEY: 'sk-e2e' };

  // The distributed deployment's shared database and Redis.
  psql(`CREATE DATABASE "${dbName}"`);
  const shared = { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, ZNOVEL_REDIS_PREFIX: redisPrefix };
  znovel(['migrate'], { ...baseEnv, ...shared });
  const fedKey = createTenant({ ...baseEnv, ...shared });
  step('database migrated, tenant created');

  // The all-in-one server, zero-config but for the provider: SQLite, in-process queue.
  const allDir = join(work, 'all-in-one');
  const allKey = createTenant({ ...baseEnv, ZNOVEL_DATA_DIR: allDir });

  const [storyGen, memory, admin, worker, allInOne] = await Promise.all([
    serve('story-gen', ['--role', 'story-gen'], shared),
    serve('memory', ['--role', 'memory'], shared),
    serve('admin', ['--role', 'admin'], shared),
    serve('job-worker', ['--role', 'job-worker'], { ...shared, ...llmEnv }),
    serve('all-in-one', [], { ...llmEnv, ZNOVEL_DATA_DIR: allDir }),
  ]);
  const subgraphs = { 'story-gen': storyGen, memory, admin };
  assert.ok(
    storyGen.proc.lines.some((l) => l.includes('Generation jobs run in the job workers')),
    'story-gen runs no workers when REDIS_URL is set',
  );
  step('story-gen, memory, admin, job-worker and all-in-one are up');

  // The router: the supergraph composed with this run's subgraph URLs.
  const { supergraphSdl } = compose(subgraphSdls(bin), (name) => subgraphs[name].graphql);
  const supergraph = join(work, 'supergraph.graphql');
  writeFileSync(supergraph, supergraphSdl);
  const port = await freePort();
  const gateway = procs.start(
    'gateway',
    process.execPath,
    [join(here, 'node_modules/@graphql-hive/gateway/dist/bin.js'), 'supergraph', supergraph, '--host', '127.0.0.1', '--port', String(port), '--fork', '1', '-c', join(here, 'gateway.config.mjs')],
    { cwd: here, env: { ...process.env, NODE_ENV: 'production' } },
  );
  const router = { http: `http://127.0.0.1:${port}/graphql`, ws: `ws://127.0.0.1:${port}/graphql` };
  await waitForHttp(`http://127.0.0.1:${port}/readiness`, { what: 'the gateway', proc: gateway, timeoutMs: 90_000 });
  step(`gateway up on ${router.http}`);
  if (process.env.ZNOVEL_E2E_HOLD) {
    step(`holding the deployment for manual tests (Ctrl-C stops it): router ${router.http}, key ${fedKey}`);
    await new Promise(() => {});
  }

  for (const p of [storyGen, memory, admin, worker]) {
    await waitForHttp(`${p.base}/ready`, { what: `${p.name} /ready`, proc: p.proc });
    await waitForHttp(p.metrics, { what: `${p.name} /metrics`, proc: p.proc });
  }
  const probeOnly = await serve('validator', ['--role', 'validator'], shared);
  const graphqlOnProbeOnly = await fetch(probeOnly.graphql, { method: 'POST' });
  assert.equal(graphqlOnProbeOnly.status, 404, 'a role without a GraphQL API serves no /graphql');

  // The session through the router, then against the all-in-one server.
  const t0 = Date.now();
  const federated = await runSession(router, fedKey);
  const federatedMs = Date.now() - t0;
  const requestsFederated = llm.requests;
  writeFileSync(join(work, 'federated.json'), JSON.stringify(federated, null, 2));
  step(`federated session done in ${federatedMs} ms (stream: first chunk at ${federated.streamTimings.firstChunkMs} ms, last event at ${federated.streamTimings.lastEventMs} ms)`);
  const t1 = Date.now();
  const single = await runSession({ http: allInOne.graphql, ws: allInOne.graphql.replace('http://', 'ws://') }, allKey);
  step(`all-in-one session done in ${Date.now() - t1} ms`);
  writeFileSync(join(work, 'all-in-one.json'), JSON.stringify(single, null, 2));

  // What the federated session must show on its own.
  const { chunks, final } = federated.stream;
  assert.ok(chunks.length > 1, `the chapter arrives in chunks (got ${chunks.length})`);
  assert.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => i + 1), 'chunks in order from seq 1, no gap, no duplicate');
  assert.equal(final.length, 1, `one final event: ${JSON.stringify(final)}`);
  assert.equal(final[0].__typename, 'ChapterCompleted', JSON.stringify(final[0]));
  const streamed = chunks.map((c) => c.text).join('');
  assert.equal(final[0].chapter.content, streamed, 'the stored chapter is exactly the chunks concatenated');
  assert.equal(streamed.trim(), TEXT.trim(), "the chunks are the provider's text");
  assert.equal(final[0].job.status, 'SUCCEEDED');
  assert.equal(federated.after.chapter.content, streamed);
  assert.equal(federated.after.generationJob.status, 'SUCCEEDED');
  assert.equal(federated.after.node.__typename, 'GenerationJob', 'node(job) through admin, completed by story-gen');
  assert.equal(federated.spanning.node.novel.title, 'The Lighthouse Keeper', 'node(chapter) → Chapter → Novel across subgraphs');
  assert.deepEqual(
    federated.spanning.nodes.map((n) => n.__typename),
    ['Novel', 'Entity'],
    'nodes() resolves a story-gen and a memory object',
  );
  assert.equal(federated.refused.anonymous, 'UNAUTHENTICATED');
  assert.equal(federated.refused.wrongKey, 'UNAUTHENTICATED');
  assert.deepEqual(
    federated.jobEvents.map((e) => e.status),
    ['QUEUED', 'RUNNING', 'SUCCEEDED'],
    `jobEvents through the router: ${JSON.stringify(federated.jobEvents)}`,
  );
  assert.equal(federated.refused.wrongKeySubscriptionEvents, 0, 'a subscription with a wrong key gets no event');
  assert.ok(federated.wrongKeySubscription.refusedAtOnce, `the router refuses a wrong-key subscription at once: ${JSON.stringify(federated.wrongKeySubscription)}`);
  assert.equal(federated.wrongKeySubscription.errors[0]?.extensions?.code, 'UNAUTHENTICATED', JSON.stringify(federated.wrongKeySubscription));
  assert.ok(single.wrongKeySubscription.refusedAtOnce, `the all-in-one server refuses a wrong key at once: ${JSON.stringify(single.wrongKeySubscription)}`);
  assert.equal(requestsFederated, 1, 'the job-worker called the provider once');

  // The same transcript from both deployments.
  assert.deepEqual(comparable(federated), comparable(single), 'the federated deployment answers like the all-in-one server');
  step(`PASS: ${chunks.length} chunks streamed through the router; federated and all-in-one transcripts are equal`);
  await llm.close();
}

/** Stops every process, drops the database, deletes this run's Redis keys. */
async function cleanup(keepLogs) {
  await procs.stopAll();
  try {
    psql(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  } catch (e) {
    console.error(`cannot drop the database ${dbName}: ${e.stderr || e.message}`);
  }
  try {
    cleanRedis();
  } catch (e) {
    console.error(`cannot remove the Redis keys ${redisPrefix}:*: ${e.message}`);
  }
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
