// A fake OpenAI-compatible provider for the end-to-end test: `POST /v1/chat/completions`
// with `stream: true` answers the real SSE wire format — a role chunk, one chunk per piece
// of a fixed text (after a short first-token delay, then at a fixed interval), a finish
// chunk, a usage chunk when `stream_options.include_usage` asks for it, `data: [DONE]`.
// Deterministic, so two deployments given the same requests store the same chapter.

import { createServer } from 'node:http';

/** The chapter every request gets: ~70 words, so a 80-word target needs no continuation. */
export const TEXT =
  'The storm broke over the lighthouse at midnight. Mara climbed the stairs with the lamp. ' +
  'Below, the sea threw itself at the rocks again and again. A stranger lay there, half drowned, ' +
  'holding a sealed letter. She dragged him above the tide line and read the name on it. ' +
  'It was her own name, written in her mother\'s hand. The wind howled. She did not open it yet.';

/** The pieces the text is streamed in (a word and its trailing space each). */
export const PIECES = TEXT.match(/\S+\s*/g);

/**
 * What a memory extraction request (one with `response_format`) gets: a valid answer of the
 * extraction schema, so the chapter's memory job succeeds deterministically.
 */
export const EXTRACTION = JSON.stringify({
  summary: 'Mara finds a half-drowned stranger holding a sealed letter addressed to her.',
  characters: [],
  items: [],
  events: [],
  relations: [],
  planted: [],
  resolved: [],
});

/**
 * What a continuity review request (one whose `response_format` schema has `findings`)
 * gets: a clean review, so every report is complete.
 */
export const REVIEW = JSON.stringify({ findings: [] });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the fake on 127.0.0.1 (a free port). Returns `{ baseUrl, requests, extractions, reviews, close }`;
 * `requests` counts the chapter completions served, `extractions` the memory extractions
 * (requests with a `response_format`, answered with [`EXTRACTION`] in one piece), `reviews`
 * the continuity reviews (answered with [`REVIEW`]). For benchmarks: `stamped: n` streams `n` pieces
 * whose text is the instant each left the provider (`performance.now()` in whole µs, then a
 * space: one word, no sentence end) instead of [`TEXT`]; `gate()`, when given, is awaited
 * before the first piece.
 */
export async function startFakeLlm({ firstTokenDelayMs = 400, intervalMs = 15, stamped = 0, gate } = {}) {
  const state = { requests: 0, extractions: 0, reviews: 0 };
  const server = createServer(async (req, res) => {
    if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
      return;
    }
    let body = '';
    for await (const part of req) body += part;
    let request;
    try {
      request = JSON.parse(body);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'invalid JSON', type: 'invalid_request_error' } }));
      return;
    }
    const extraction = request.response_format != null;
    const review = request.response_format?.json_schema?.schema?.properties?.findings != null;
    if (review) state.reviews += 1;
    else if (extraction) state.extractions += 1;
    else state.requests += 1;
    const model = request.model ?? 'fake';
    const chunk = (choices, extra = {}) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-e2e', object: 'chat.completion.chunk', created: 0, model, choices, ...extra })}\n\n`;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
    await sleep(firstTokenDelayMs);
    if (gate) await gate();
    const count = extraction ? 1 : stamped || PIECES.length;
    for (let i = 0; i < count; i++) {
      if (res.destroyed) return;
      const piece = review ? REVIEW : extraction ? EXTRACTION : stamped ? `${Math.round(performance.now() * 1000)} ` : PIECES[i];
      res.write(chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]));
      await sleep(intervalMs);
    }
    res.write(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]));
    if (request.stream_options?.include_usage) {
      res.write(chunk([], { usage: { prompt_tokens: 100, completion_tokens: count, total_tokens: 100 + count } }));
    }
    res.end('data: [DONE]\n\n');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return state.requests;
    },
    get extractions() {
      return state.extractions;
    },
    get reviews() {
      return state.reviews;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
