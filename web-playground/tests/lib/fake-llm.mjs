// A fake OpenAI-compatible provider: `POST /v1/chat/completions` with `stream: true`
// answers the real SSE wire format — a role chunk, then one chunk per piece of the text
// (after a first-token delay, at a fixed interval), a finish chunk, a usage chunk when
// `stream_options.include_usage` asks for it, `data: [DONE]`. What it streams is set per
// test with `fake.play({ pieces, firstTokenDelayMs, intervalMs })`. A client that hangs up
// (a cancelled job) stops the stream, and `fake.aborted` counts those.

import { createServer } from 'node:http';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Splits a text into the pieces a model would stream: a word and its trailing space each. */
export const wordsOf = (text) => text.match(/\S+\s*/g);

/** Splits a Chinese text into pieces of `n` characters. */
export const charsOf = (text, n = 2) => Array.from(text).reduce((out, ch, i) => {
  if (i % n === 0) out.push(ch);
  else out[out.length - 1] += ch;
  return out;
}, []);

/** An English chapter of about 120 words. */
export const ENGLISH =
  'The storm broke over the lighthouse at midnight. Mara climbed the iron stairs with the lamp in her hand. ' +
  'Below, the sea threw itself at the rocks again and again, white and furious. A stranger lay there, half drowned, ' +
  'holding a sealed letter against his chest. She dragged him above the tide line and read the name on it. ' +
  'It was her own name, written in her mother\'s hand, a hand she had not seen in twenty years. The wind howled ' +
  'through the broken pane. She did not open the letter yet. Instead she lit the fire, wrapped the stranger in ' +
  'wool, and sat beside him until the grey light came, listening to the bell buoy toll beyond the reef.';

/** Another English chapter, about 60 words: a rewrite. */
export const MORNING =
  'Morning came grey and quiet over the reef. The stranger woke before the kettle boiled and asked for ' +
  'the letter at once. Mara said nothing. She set a cup of tea beside him, watched the steam curl toward ' +
  'the cold window, and waited for him to say his name. He did not. Outside, the gulls fought over the tide line.';

/** A Chinese chapter (counted in characters). */
export const CHINESE =
  '夜半时分，暴风雨笼罩了灯塔。玛拉提着油灯，一步步登上铁梯。礁石下面，海浪一次又一次地扑来。' +
  '一个陌生人躺在那里，几乎被淹死，胸前紧紧抱着一封封好的信。她把他拖到潮水够不着的地方，读了信封上的名字。' +
  '那是她自己的名字，是母亲的笔迹。风在破窗外呼啸。她没有立刻拆开那封信。';

/** Starts the fake on 127.0.0.1 (a free port). */
export async function startFakeLlm() {
  const state = {
    script: { pieces: wordsOf(ENGLISH), firstTokenDelayMs: 200, intervalMs: 40 },
    requests: 0,
    aborted: 0,
  };
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
    state.requests += 1;
    const { pieces, firstTokenDelayMs, intervalMs } = state.script;
    const model = request.model ?? 'fake';
    const chunk = (choices, extra = {}) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-web', object: 'chat.completion.chunk', created: 0, model, choices, ...extra })}\n\n`;
    let gone = false;
    res.on('close', () => {
      if (!res.writableFinished) {
        gone = true;
        state.aborted += 1;
      }
    });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
    await sleep(firstTokenDelayMs);
    for (const piece of pieces) {
      if (gone) return;
      res.write(chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]));
      await sleep(intervalMs);
    }
    if (gone) return;
    res.write(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]));
    if (request.stream_options?.include_usage) {
      res.write(chunk([], { usage: { prompt_tokens: 100, completion_tokens: pieces.length, total_tokens: 100 + pieces.length } }));
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
    /** What every following request streams. */
    play(script) {
      state.script = { ...state.script, ...script };
    },
    get requests() {
      return state.requests;
    },
    get aborted() {
      return state.aborted;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
