#!/usr/bin/env node
// What a federation router adds, measured side by side in one run
// (`scripts/federation.sh bench`; docs/benchmarks.md has the numbers and how to read them).
//
// The deployments of the end-to-end test (lib/deployment.mjs: one process per subgraph
// and a job-worker on PostgreSQL + Redis; an all-in-one server on SQLite) with Hive Router
// (the k8s configuration) and Hive Gateway in front of the subgraphs. Then:
//
// 1. Per query: the same operations, sequentially over keep-alive connections, against the
//    all-in-one server, the story-gen subgraph directly (for the query it serves alone),
//    Hive Router and Hive Gateway — targets alternated round by round so load changes hit
//    them alike. A query story-gen answers alone, and one spanning three subgraphs with
//    entity fetches (`node(chapter) { novel }` completed by story-gen for admin).
// 2. Per streamed chunk: the provider streams chunks whose text is the instant they left it;
//    one job of the federated deployment is followed at once through Hive Router, Hive
//    Gateway and directly from story-gen, and a job of the all-in-one server directly. A
//    chunk's latency is arrival − departure; the router's own share is, per chunk,
//    arrival through the router − arrival directly from story-gen (same job, same chunk).
//
// Knobs: BENCH_QUERIES (sequential requests per target and round, default 100),
// BENCH_ROUNDS (default 5), BENCH_JOBS (jobs per deployment, default 3), BENCH_CHUNKS
// (chunks per job, default 200, one every 10 ms). Prints Markdown tables.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { data, followWs, httpClient } from './lib/client.mjs';
import { Deployment, freePort } from './lib/deployment.mjs';
import { startFakeLlm } from './lib/fake-llm.mjs';
import { Processes } from './lib/processes.mjs';
import { findHiveRouter, startHiveGateway, startHiveRouter } from './lib/routers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const QUERIES = Number(process.env.BENCH_QUERIES || 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const JOBS = Number(process.env.BENCH_JOBS || 3);
const CHUNKS = Number(process.env.BENCH_CHUNKS || 200);
const log = (msg) => console.error(`[bench] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const SINGLE = `query($n: ID!) { novel(id: $n) { id title genre chapters(first: 10) { edges { node { id seq title } } } } }`;
const SPANNING = `query($n: ID!, $c: ID!) {
  viewer { role user { email } }
  novel(id: $n) { id title }
  entities(novelId: $n) { edges { node { id name } } }
  node(id: $c) { id ... on Chapter { title novel { title } } }
}`;
const STREAM = `subscription($j: ID!) { chapterStream(jobId: $j, after: 0) { __typename ... on ChapterChunk { seq text } } }`;

/** The value at quantile `q` of sorted `xs`. */
const quantile = (xs, q) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const fmt = (x) => (x === undefined ? '–' : x.toFixed(2));
function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s.at(-1), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

/** A story to query and write in: a novel, `chapters` chapters and a character. */
async function story(gql, chapters) {
  const novel = data(await gql(`mutation { createNovel(input: { title: "Bench", genre: "mystery" }) { novel { id } } }`), 'createNovel').createNovel.novel;
  const ids = [];
  for (let seq = 1; seq <= chapters; seq++) {
    const c = data(await gql(`mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }`, { i: { novelId: novel.id, seq, title: `Chapter ${seq}` } }), 'createChapter');
    ids.push(c.createChapter.chapter.id);
  }
  data(await gql(`mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id } } }`, { i: { novelId: novel.id, name: 'Mara', kind: 'CHARACTER' } }), 'createEntity');
  return { novel: novel.id, chapters: ids };
}

/** Latencies (ms) of `n` sequential requests of `query` by `gql`; throws on an error. */
async function timeQueries(gql, query, variables, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const body = await gql(query, variables);
    out.push(performance.now() - t0);
    if (body.errors) throw new Error(`${JSON.stringify(body.errors)}`);
  }
  return out;
}

/** Chunk arrivals of one subscription: seq → `{ arrived, departed }` (performance.now() ms). */
function arrivals(wsUrl, key, jobId) {
  const seen = new Map();
  const done = followWs(wsUrl, { Authorization: `Bearer ${key}` }, STREAM, { j: jobId }, {
    timeoutMs: 120_000,
    onEvent: (d) => {
      const e = d.chapterStream;
      if (e.__typename === 'ChapterChunk') {
        // A chunk may carry several provider pieces: the first is the oldest.
        seen.set(e.seq, { arrived: performance.now(), departed: Number(e.text.trim().split(/\s+/)[0]) / 1000 });
      }
      return e.__typename !== 'ChapterChunk';
    },
  }).then((r) => {
    if (r.errors.length || r.timedOut) throw new Error(`chapterStream: ${JSON.stringify(r.errors)}${r.timedOut ? ' (timed out)' : ''}`);
    return seen;
  });
  return done;
}

async function main() {
  const bin = process.env.ZNOVEL_BIN;
  if (!bin) throw new Error('set ZNOVEL_BIN (scripts/federation.sh bench builds the release binary)');
  const work = mkdtempSync(join(tmpdir(), 'znovel-federation-bench-'));
  const procs = new Processes(work);
  const deployment = new Deployment({
    bin,
    work,
    procs,
    pgAdmin: process.env.ZNOVEL_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: process.env.ZNOVEL_TEST_REDIS_URL || 'redis://127.0.0.1:6379',
  });
  let release = () => {};
  let gateOpen = Promise.resolve();
  const llm = await startFakeLlm({ firstTokenDelayMs: 0, intervalMs: 10, stamped: CHUNKS, gate: () => gateOpen });
  const closeGate = () => {
    gateOpen = new Promise((r) => {
      release = r;
    });
  };
  try {
    await deployment.start({ LLM_BASE_URL: llm.baseUrl, LLM_MODEL: 'bench-model', LLM_API_KEY: 'sk-bench' });
    const urls = Object.fromEntries(Object.entries(deployment.roles).map(([n, r]) => [n, r.graphql]));
    const found = findHiveRouter();
    if (!found.path) throw new Error(`no Hive Router binary (looked at ${found.looked.join(', ')}): set HIVE_ROUTER_BIN`);
    const router = await startHiveRouter(procs, { binary: found.path, urls, port: await freePort() });
    const gateway = await startHiveGateway(procs, { bin, urls, port: await freePort(), work });
    const fedKey = deployment.createTenant('bench', { federated: true });
    const allKey = deployment.createTenant('bench', { federated: false });
    const fed = await story(httpClient(router.http, { bearer: fedKey }), JOBS);
    const all = await story(httpClient(deployment.allInOne.graphql, { bearer: allKey }), JOBS);
    log(`deployments up; znovel ${bin}, Hive Router ${found.path}`);

    // 1. Per query.
    const targets = [
      { name: 'all-in-one server', http: deployment.allInOne.graphql, key: allKey, story: all },
      { name: 'story-gen subgraph, directly', http: deployment.roles['story-gen'].graphql, key: fedKey, story: fed, only: SINGLE },
      { name: 'Hive Router → subgraphs', http: router.http, key: fedKey, story: fed },
      { name: 'Hive Gateway → subgraphs', http: gateway.http, key: fedKey, story: fed },
    ];
    const queryRows = [];
    for (const [qname, query] of [['one subgraph: `novel { chapters }`', SINGLE], ['three subgraphs + entity fetch', SPANNING]]) {
      const lat = new Map();
      const active = targets.filter((t) => !t.only || t.only === query);
      for (const t of active) {
        const gql = httpClient(t.http, { bearer: t.key });
        await timeQueries(gql, query, { n: t.story.novel, c: t.story.chapters[0] }, 20); // warm-up
        lat.set(t, []);
      }
      for (let round = 0; round < ROUNDS; round++) {
        for (const t of active) {
          const gql = httpClient(t.http, { bearer: t.key });
          lat.get(t).push(...(await timeQueries(gql, query, { n: t.story.novel, c: t.story.chapters[0] }, QUERIES)));
        }
      }
      const base = stats(lat.get(active[0]));
      for (const t of active) queryRows.push({ query: qname, target: t.name, ...stats(lat.get(t)), ratio: stats(lat.get(t)).p50 / base.p50 });
      log(`queries done: ${qname}`);
    }

    // 2. Per streamed chunk.
    const chunkLat = { all: [], direct: [], router: [], gateway: [], routerAdds: [], gatewayAdds: [] };
    const GENERATE = `mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id } } }`;
    for (let job = 0; job < JOBS; job++) {
      for (const side of ['federated', 'all-in-one']) {
        closeGate();
        const isFed = side === 'federated';
        const key = isFed ? fedKey : allKey;
        const via = isFed ? router.http : deployment.allInOne.graphql;
        const chapterId = (isFed ? fed : all).chapters[job];
        const j = data(
          await httpClient(via, { bearer: key })(GENERATE, { i: { chapterId, kind: 'DRAFT', targetWords: CHUNKS, idempotencyKey: `bench-${job}` } }),
          'generateChapter',
        ).generateChapter.job.id;
        const subs = isFed
          ? {
              direct: arrivals(deployment.roles['story-gen'].graphql.replace(/^http/, 'ws'), key, j),
              router: arrivals(router.http.replace(/^http/, 'ws'), key, j),
              gateway: arrivals(gateway.http.replace(/^http/, 'ws'), key, j),
            }
          : { all: arrivals(deployment.allInOne.graphql.replace(/^http/, 'ws'), key, j) };
        await sleep(1_500); // every subscription reaches its server before the first chunk
        release();
        const seen = Object.fromEntries(await Promise.all(Object.entries(subs).map(async ([k, p]) => [k, await p])));
        for (const [k, m] of Object.entries(seen)) {
          for (const { arrived, departed } of m.values()) chunkLat[k].push(arrived - departed);
        }
        if (isFed) {
          for (const [seq, d] of seen.direct) {
            if (seen.router.has(seq)) chunkLat.routerAdds.push(seen.router.get(seq).arrived - d.arrived);
            if (seen.gateway.has(seq)) chunkLat.gatewayAdds.push(seen.gateway.get(seq).arrived - d.arrived);
          }
          for (const k of ['router', 'gateway']) {
            if (seen[k].size !== seen.direct.size) throw new Error(`${k} delivered ${seen[k].size} chunks, story-gen ${seen.direct.size}`);
          }
        }
      }
      log(`job ${job + 1}/${JOBS} followed`);
    }

    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
    console.log(`\nCommit ${rev}; ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; Node ${process.version}.\n`);
    console.log(`### Per query (${ROUNDS} rounds × ${QUERIES} sequential requests per target)\n`);
    console.log('| query | target | requests | p50 ms | p90 ms | p99 ms | mean ms | p50 / all-in-one |');
    console.log('|---|---|---:|---:|---:|---:|---:|---:|');
    for (const r of queryRows) console.log(`| ${r.query} | ${r.target} | ${r.n} | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p99)} | ${fmt(r.mean)} | ${r.ratio.toFixed(2)}× |`);
    console.log(`\n### Per streamed chunk (${JOBS} jobs per deployment × ${CHUNKS} chunks, one every 10 ms)\n`);
    console.log('| path | chunks | p50 ms | p90 ms | p99 ms | max ms |');
    console.log('|---|---:|---:|---:|---:|---:|');
    const rows = [
      ['all-in-one server (in-process queue), directly', chunkLat.all],
      ['federated: story-gen subgraph, directly (worker → Redis → story-gen)', chunkLat.direct],
      ['federated: through Hive Router', chunkLat.router],
      ['federated: through Hive Gateway', chunkLat.gateway],
      ["Hive Router's own share (router − direct, same chunk)", chunkLat.routerAdds],
      ["Hive Gateway's own share (gateway − direct, same chunk)", chunkLat.gatewayAdds],
    ];
    for (const [name, xs] of rows) {
      const s = stats(xs);
      console.log(`| ${name} | ${s.n} | ${fmt(s.p50)} | ${fmt(s.p90)} | ${fmt(s.p99)} | ${fmt(s.max)} |`);
    }
  } finally {
    release();
    await procs.stopAll();
    deployment.cleanup();
    await llm.close();
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  await main();
  process.exit(0);
} catch (e) {
  console.error(`bench failed: ${e.stack || e.message}`);
  process.exit(1);
}
