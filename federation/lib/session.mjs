// The session the end-to-end test runs against a GraphQL endpoint (the federation router,
// or the all-in-one server): a client's mutations, a query spanning every subgraph, a live
// `chapterStream` subscription over graphql-transport-ws, and the reads after it. Returns
// a transcript; [`comparable`] strips what necessarily differs between two deployments.

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const CREATE_NOVEL = `mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id title genre status } } }`;
const CREATE_CHAPTER = `mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id seq title outline version } } }`;
const CREATE_ENTITY = `mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id name kind aliases description } } }`;
// admin (viewer, node, nodes) + story-gen (novel, chapters) + memory (entities) in one
// operation; `node`/`nodes` answer references that the router completes from the owners.
const SPANNING = `query($n: ID!, $c: ID!, $e: ID!) {
  viewer { role user { email } tenant { slug name } }
  novel(id: $n) { id title genre chapters(first: 10) { edges { node { id seq title outline } } } }
  entities(novelId: $n) { edges { node { id name kind aliases } } }
  node(id: $c) { __typename id ... on Chapter { title outline novel { title } } }
  nodes(ids: [$n, $e]) { __typename id ... on Novel { title } ... on Entity { name description } }
}`;
const GENERATE = `mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id status kind targetWords } } }`;
const STREAM = `subscription($j: ID!) { chapterStream(jobId: $j, after: 0) {
  __typename
  ... on ChapterChunk { seq text }
  ... on ChapterCompleted { seq chapter { id content version wordCount } job { id status model promptTokens completionTokens attempts } }
  ... on ChapterFailed { seq status message }
} }`;
const AFTER = `query($c: ID!, $j: ID!) {
  chapter(id: $c) { id content version revisions(first: 5) { edges { node { version source content } } } }
  generationJob(id: $j) { id status kind model completionTokens chapter { id version } }
  node(id: $j) { __typename id ... on GenerationJob { status } }
}`;
const VIEWER = `{ viewer { role } }`;
const JOB_EVENTS = `subscription($n: ID!) { jobEvents(novelId: $n) { status job { id kind status } } }`;

/**
 * Follows `jobEvents(novelId)` until an event with a final status arrives (or 60 s pass);
 * `done` resolves with the events seen. Resolves `ready` once the subscription has had
 * time to reach the server (events are live only: the job must start after that).
 */
function watchJobEvents(wsUrl, key, novelId) {
  const ws = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${key}` },
    retryAttempts: 0,
  });
  const events = [];
  const done = (async () => {
    const deadline = setTimeout(() => ws.dispose(), 60_000);
    try {
      for await (const result of ws.iterate({ query: JOB_EVENTS, variables: { n: novelId } })) {
        if (result.errors) throw new Error(`jobEvents failed: ${JSON.stringify(result.errors)}`);
        events.push(result.data.jobEvents);
        if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(result.data.jobEvents.status)) break;
      }
    } finally {
      clearTimeout(deadline);
      await ws.dispose();
    }
    return events;
  })();
  const ready = new Promise((resolve) => setTimeout(resolve, 1_000));
  return { ready, done };
}

/** A GraphQL client of `httpUrl` acting with `key` (none: anonymous). */
function client(httpUrl, key) {
  return async (query, variables = {}) => {
    const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    const res = await fetch(httpUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${httpUrl}: HTTP ${res.status}, not JSON: ${text.slice(0, 500)}`);
    }
  };
}

/** `data` of a response, or an error quoting the whole response. */
function data(body, what) {
  if (body.errors?.length || !body.data) {
    throw new Error(`${what} failed: ${JSON.stringify(body, null, 2)}`);
  }
  return body.data;
}

/**
 * Subscribes over graphql-transport-ws and collects every event until completion, an
 * error, or `timeoutMs` (then `timedOut` is set).
 */
async function follow(wsUrl, key, query, variables, timeoutMs = 60_000) {
  const ws = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: key ? { Authorization: `Bearer ${key}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
  const events = [];
  const errors = [];
  let timedOut = false;
  const started = Date.now();
  try {
    const iterate = (async () => {
      for await (const result of ws.iterate({ query, variables })) {
        if (result.errors) errors.push(...result.errors);
        if (result.data) events.push({ at: Date.now() - started, event: result.data.chapterStream });
      }
    })();
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, timeoutMs);
    });
    try {
      await Promise.race([iterate, timeout]);
    } finally {
      clearTimeout(timer);
    }
  } catch (e) {
    // A rejected connection or a protocol error: reported like a GraphQL error.
    errors.push({ message: e?.message ?? e?.reason ?? String(e), code: e?.code });
  } finally {
    await ws.dispose();
  }
  return { events, errors, timedOut };
}

/**
 * Runs the session against `{ http, ws }` with `key`. Every step's result goes into the
 * transcript; failures throw with the response that failed.
 */
export async function runSession(endpoint, key) {
  const gql = client(endpoint.http, key);
  const t = {};

  const novel = data(await gql(CREATE_NOVEL, { i: { title: 'The Lighthouse Keeper', genre: 'mystery' } }), 'createNovel').createNovel.novel;
  const chapter = data(
    await gql(CREATE_CHAPTER, { i: { novelId: novel.id, seq: 1, title: 'The Storm', outline: 'Mara finds a stranger on the rocks.' } }),
    'createChapter',
  ).createChapter.chapter;
  const entity = data(
    await gql(CREATE_ENTITY, { i: { novelId: novel.id, name: 'Mara', kind: 'CHARACTER', aliases: ['the keeper'], description: 'Keeps the light.' } }),
    'createEntity',
  ).createEntity.entity;
  t.created = { novel, chapter, entity };

  t.spanning = data(await gql(SPANNING, { n: novel.id, c: chapter.id, e: entity.id }), 'the query spanning the subgraphs');

  const watching = watchJobEvents(endpoint.ws, key, novel.id);
  await watching.ready;
  const job = data(
    await gql(GENERATE, { i: { chapterId: chapter.id, kind: 'DRAFT', targetWords: 80, idempotencyKey: 'e2e-ch1' } }),
    'generateChapter',
  ).generateChapter.job;
  t.generated = job;

  const stream = await follow(endpoint.ws, key, STREAM, { j: job.id });
  if (stream.errors.length || stream.timedOut) {
    throw new Error(
      `chapterStream failed${stream.timedOut ? ' (did not complete within 60 s)' : ''}: ` +
        JSON.stringify({ errors: stream.errors, events: stream.events }, null, 2),
    );
  }
  const chunks = stream.events.filter((e) => e.event.__typename === 'ChapterChunk').map((e) => e.event);
  const final = stream.events.filter((e) => e.event.__typename !== 'ChapterChunk');
  t.stream = { chunks, final: final.map((e) => e.event) };
  t.streamTimings = {
    firstChunkMs: stream.events[0]?.at,
    lastEventMs: stream.events.at(-1)?.at,
  };

  t.after = data(await gql(AFTER, { c: chapter.id, j: job.id }), 'the reads after generation');
  // Every status change of the novel's job, live, as the subscriber saw it.
  t.jobEvents = await watching.done;

  // Credentials are checked behind the router too: none, or a wrong one, is refused. A
  // subscription with a wrong key gets no event and is refused at once: the all-in-one
  // server closes the connection with 4403 (graphql-transport-ws); a subgraph role accepts
  // the router's connection and fails the operation with UNAUTHENTICATED (a router would
  // retry a 4403 from its upstream for ~40 s before telling its client).
  const anonymous = await client(endpoint.http, null)(VIEWER);
  const wrong = await client(endpoint.http, 'znk_not-a-key')(VIEWER);
  const wrongWs = await follow(endpoint.ws, 'znk_not-a-key', STREAM, { j: job.id }, 3_000);
  t.refused = {
    anonymous: anonymous.errors?.[0]?.extensions?.code ?? JSON.stringify(anonymous),
    wrongKey: wrong.errors?.[0]?.extensions?.code ?? JSON.stringify(wrong),
    wrongKeySubscriptionEvents: wrongWs.events.length,
  };
  t.wrongKeySubscription = { refusedAtOnce: !wrongWs.timedOut && wrongWs.errors.length > 0, errors: wrongWs.errors };
  return t;
}

/**
 * The transcript with what necessarily differs between two deployments replaced: every
 * global ID by its order of first appearance (so references must still match); the
 * stream timings and how a wrong-key subscription ends dropped.
 */
export function comparable(transcript) {
  const ids = new Map();
  const idKey = (k) => k === 'id' || /Id$/.test(k);
  const walk = (v, key) => {
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (v && typeof v === 'object') {
      const differs = (k) => k === 'streamTimings' || k === 'wrongKeySubscription';
      return Object.fromEntries(Object.entries(v).filter(([k]) => !differs(k)).map(([k, x]) => [k, walk(x, k)]));
    }
    if (typeof v === 'string' && key && idKey(key)) {
      if (!ids.has(v)) ids.set(v, `<id ${ids.size + 1}>`);
      return ids.get(v);
    }
    return v;
  };
  return walk(transcript);
}
