// The story-gen subgraph through the gateway: novels and chapters, errors with their codes,
// and a chapter written live — `generateChapter`, `chapterStream` over graphql-transport-ws
// from the start, resumed with `after`, and replayed over SSE — with `jobEvents` following
// the job from QUEUED to SUCCEEDED.

import assert from 'node:assert/strict';
import { data, failure, followSse, followWs, missingId } from '../lib/client.mjs';
import { TEXT } from '../lib/fake-llm.mjs';

const CREATE_NOVEL = `mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id title genre status } } }`;
const CREATE_CHAPTER = `mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id seq title outline version } } }`;
const NOVEL = `query($n: ID!) { novel(id: $n) { id title } }`;
const GENERATE = `mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id status kind targetWords } } }`;
export const STREAM = `subscription($j: ID!, $after: Int) { chapterStream(jobId: $j, after: $after) {
  __typename
  ... on ChapterChunk { seq text }
  ... on ChapterCompleted { seq chapter { id content version wordCount } job { id status model promptTokens completionTokens attempts } }
  ... on ChapterFailed { seq status message }
} }`;
const AFTER = `query($c: ID!, $j: ID!) {
  chapter(id: $c) { id content version revisions(first: 5) { edges { node { version source content } } } }
  generationJob(id: $j) { id status kind model completionTokens chapter { id version } }
}`;
// `job` is the job as it is when the event is resolved: its status may have moved on.
const JOB_EVENTS = `subscription($n: ID!) { jobEvents(novelId: $n) { status job { id kind } } }`;
const FINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

/** The events of a `chapterStream` result list, split into chunks and the final event. */
export function chapterEvents(events) {
  const all = events.map((e) => e.data.chapterStream);
  return { chunks: all.filter((e) => e.__typename === 'ChapterChunk'), final: all.filter((e) => e.__typename !== 'ChapterChunk') };
}

/** Throws unless a subscription completed without errors. */
function completed(result, what) {
  if (result.errors.length || result.timedOut || result.complete === false) {
    throw new Error(`${what} failed${result.timedOut ? ' (did not complete within its time)' : ''}: ${JSON.stringify(result, null, 2)}`);
  }
  return result;
}

export default {
  name: 'story-gen',
  subgraph: 'story-gen',

  async run(ctx) {
    const { gql, endpoint, wsAuth, httpAuth } = ctx;
    const novel = data(await gql(CREATE_NOVEL, { i: { title: 'The Lighthouse Keeper', genre: 'mystery' } }), 'createNovel').createNovel.novel;
    const chapterInput = { novelId: novel.id, seq: 1, title: 'The Storm', outline: 'Mara finds a stranger on the rocks.' };
    const chapter = data(await gql(CREATE_CHAPTER, { i: chapterInput }), 'createChapter').createChapter.chapter;
    ctx.state.novel = novel;
    ctx.state.chapter = chapter;

    // Errors keep their code, message and field through the gateway.
    const errors = {
      blankTitle: failure(await gql(CREATE_NOVEL, { i: { title: '   ' } })),
      duplicateSeq: failure(await gql(CREATE_CHAPTER, { i: chapterInput })),
      missingNovel: failure(await gql(NOVEL, { n: missingId('Novel') })),
      malformedId: failure(await gql(NOVEL, { n: 'not-an-id' })),
    };

    // `jobEvents` is live only: subscribe, give the subscription time to reach the
    // subgraph, then start the job.
    const jobEvents = followWs(endpoint.ws, wsAuth, JOB_EVENTS, { n: novel.id }, {
      onEvent: (d) => FINAL.includes(d.jobEvents.status),
    });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const job = data(
      await gql(GENERATE, { i: { chapterId: chapter.id, kind: 'DRAFT', targetWords: 80, idempotencyKey: 'e2e-ch1' } }),
      'generateChapter',
    ).generateChapter.job;
    ctx.state.job = job;

    const live = completed(await followWs(endpoint.ws, wsAuth, STREAM, { j: job.id, after: 0 }), 'chapterStream over WebSocket');
    const stream = chapterEvents(live.events);
    ctx.timings.stream = { firstChunkMs: live.events[0]?.at, lastEventMs: live.events.at(-1)?.at };
    const after = data(await gql(AFTER, { c: chapter.id, j: job.id }), 'the reads after generation');
    const events = await jobEvents;
    if (events.errors.length || events.timedOut) throw new Error(`jobEvents failed: ${JSON.stringify(events, null, 2)}`);

    // A client that saw all but the last two chunks resumes after them.
    const lastSeen = Math.max(0, stream.chunks.length - 2);
    const resumed = completed(await followWs(endpoint.ws, wsAuth, STREAM, { j: job.id, after: lastSeen }), 'chapterStream resumed');
    // The same stream over Server-Sent Events.
    const sse = completed(await followSse(endpoint.http, httpAuth, STREAM, { j: job.id, after: 0 }), 'chapterStream over SSE');

    return {
      created: { novel, chapter },
      errors,
      generated: job,
      stream,
      after,
      jobEvents: events.events.map((e) => e.data.jobEvents),
      resumed: { after: lastSeen, ...chapterEvents(resumed.events) },
      sse: chapterEvents(sse.events),
    };
  },

  verify(t) {
    const { chunks, final } = t.stream;
    assert.ok(chunks.length > 2, `the chapter arrives in chunks (got ${chunks.length})`);
    assert.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => i + 1), 'chunks in order from seq 1, no gap, no duplicate');
    assert.equal(final.length, 1, `one final event: ${JSON.stringify(final)}`);
    assert.equal(final[0].__typename, 'ChapterCompleted', JSON.stringify(final[0]));
    const streamed = chunks.map((c) => c.text).join('');
    assert.equal(final[0].chapter.content, streamed, 'the stored chapter is exactly the chunks concatenated');
    assert.equal(streamed.trim(), TEXT.trim(), "the chunks are the provider's text");
    assert.equal(final[0].job.status, 'SUCCEEDED');
    assert.equal(t.after.chapter.content, streamed);
    assert.equal(t.after.generationJob.status, 'SUCCEEDED');
    assert.deepEqual(t.jobEvents.map((e) => e.status), ['QUEUED', 'RUNNING', 'SUCCEEDED'], `jobEvents: ${JSON.stringify(t.jobEvents)}`);
    assert.deepEqual(t.resumed.chunks, chunks.slice(t.resumed.after), 'a resumed stream starts right after the last chunk seen');
    assert.deepEqual(t.resumed.final, final);
    assert.deepEqual(t.sse, t.stream, 'SSE delivers the same events as the WebSocket');
    assert.equal(t.errors.blankTitle.errors[0]?.code, 'BAD_USER_INPUT', JSON.stringify(t.errors.blankTitle));
    assert.equal(t.errors.blankTitle.errors[0]?.field, 'title', JSON.stringify(t.errors.blankTitle));
    assert.equal(t.errors.duplicateSeq.errors[0]?.code, 'CONFLICT', JSON.stringify(t.errors.duplicateSeq));
    assert.equal(t.errors.missingNovel.errors[0]?.code, 'NOT_FOUND', JSON.stringify(t.errors.missingNovel));
    assert.equal(t.errors.malformedId.errors[0]?.code, 'BAD_USER_INPUT', JSON.stringify(t.errors.malformedId));
  },
};
