// Page weight and time to interactive of /playground and /write on the local server
// (scripts/playground.sh bench; the numbers are in docs/benchmarks.md).
//
// Each round loads both pages in a fresh browser context (cold cache), then reloads them
// (warm cache: the hashed assets are cached for good), alternating pages so the machine's
// load hits both alike. Bytes: transferred (gzip, headers included) and decoded, from the
// browser's own accounting. "Interactive":
//   /playground  the query editor is on screen and the schema has arrived (the
//                introspection request, sent with the key, has finished);
//   /write       the open chapter's text is on screen and Generate can be pressed.
// Times are the page's own clock (performance.now(), from navigation start).
//
//   BENCH_ROUNDS=5 (default)

import { execSync } from 'node:child_process';
import { cpus } from 'node:os';
import { launch } from './lib/browser.mjs';
import { englishDemo } from './lib/demo.mjs';
import { startFakeLlm } from './lib/fake-llm.mjs';
import { startServer } from './lib/server.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const fake = await startFakeLlm();
const server = await startServer({ LLM_BASE_URL: fake.baseUrl });
const browser = await launch();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Waits until `page` is interactive; returns the time (ms since navigation start). */
async function interactive(page, which) {
  if (which === 'playground') {
    const introspection = page.waitForResponse((r) => r.request().postData()?.includes('IntrospectionQuery'), { timeout: 60_000 });
    const editorAt = page.waitForFunction(
      () => {
        if (document.querySelector('.graphiql-query-editor .monaco-editor .view-lines')) {
          window.__editorAt ??= performance.now();
          return window.__editorAt;
        }
        return false;
      },
      null,
      { polling: 'raf', timeout: 60_000 },
    );
    const response = await introspection;
    await response.finished();
    const editor = await (await editorAt).jsonValue();
    const schema = await page.evaluate(
      () => performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/graphql')).map((e) => e.responseEnd),
    );
    return Math.max(editor, ...schema);
  }
  const at = await page.waitForFunction(
    () => {
      const ready = document.querySelector('#chapter-text[data-version]') && !document.querySelector('#generate')?.disabled;
      if (ready) window.__readyAt ??= performance.now();
      return ready ? window.__readyAt : false;
    },
    null,
    { polling: 'raf', timeout: 60_000 },
  );
  return at.jsonValue();
}

/** Loads `which` in `context`; returns `{ tti, requests, transferred, decoded }`. */
async function load(context, which, url, reload = null) {
  const page = reload ?? (await context.newPage());
  const sizes = [];
  const onFinished = async (req) => {
    const resp = await req.response();
    if (!resp) return;
    const s = await req.sizes();
    const body = await resp.body().catch(() => Buffer.alloc(0));
    sizes.push({ url: req.url(), transferred: s.responseBodySize + s.responseHeadersSize, decoded: body.length, fromCache: resp.fromServiceWorker() || s.responseBodySize === 0 });
  };
  page.on('requestfinished', onFinished);
  if (reload) await page.reload({ waitUntil: 'commit' });
  else await page.goto(url, { waitUntil: 'commit' });
  const tti = await interactive(page, which);
  // Then until no request has finished for half a second (the pages keep a WebSocket
  // open, so the browser's own "network idle" never comes).
  for (let seen = -1, i = 0; seen !== sizes.length && i < 20; i += 1) {
    seen = sizes.length;
    await new Promise((r) => setTimeout(r, 500));
  }
  page.off('requestfinished', onFinished);
  return {
    page,
    tti,
    requests: sizes.length,
    transferred: sizes.reduce((n, s) => n + s.transferred, 0),
    decoded: sizes.reduce((n, s) => n + s.decoded, 0),
  };
}

try {
  const demo = await englishDemo(server, fake);
  const urls = {
    playground: `${server.url}/playground`,
    write: `${server.url}/write#novel=${demo.novelId}&chapter=${demo.chapterIds[0]}`,
  };
  const results = { playground: { cold: [], warm: [] }, write: { cold: [], warm: [] } };
  for (let round = 0; round < ROUNDS; round += 1) {
    const order = round % 2 ? ['write', 'playground'] : ['playground', 'write'];
    for (const which of order) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript((key) => location.protocol === 'http:' && localStorage.setItem('znovel.apiKey', key), server.key);
      const cold = await load(context, which, urls[which]);
      const warm = await load(context, which, urls[which], cold.page);
      results[which].cold.push(cold);
      results[which].warm.push(warm);
      await context.close();
    }
  }
  const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
  const ms = (n) => `${Math.round(n)} ms`;
  const commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
  const chromium = execSync('/usr/bin/chromium --version', { encoding: 'utf8' }).trim();
  console.log(`commit ${commit}; ${cpus().length} × ${cpus()[0].model}; ${chromium}; znovel: ${process.env.ZNOVEL_BIN ?? 'debug build'}; ${ROUNDS} rounds\n`);
  console.log('| page | requests (cold) | transferred (gzip) | decoded | transferred / decoded | TTI cold (median) | TTI warm (median) | warm / cold |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const which of ['playground', 'write']) {
    const r = results[which];
    const cold = median(r.cold.map((x) => x.tti));
    const warm = median(r.warm.map((x) => x.tti));
    console.log(
      `| /${which} | ${r.cold[0].requests} | ${kb(median(r.cold.map((x) => x.transferred)))} | ${kb(median(r.cold.map((x) => x.decoded)))} | ${(median(r.cold.map((x) => x.transferred)) / median(r.cold.map((x) => x.decoded))).toFixed(2)}× | ${ms(cold)} | ${ms(warm)} | ${(warm / cold).toFixed(2)}× |`,
    );
  }
  const p = results.playground;
  const w = results.write;
  console.log(`\n/write over /playground: TTI cold ${(median(w.cold.map((x) => x.tti)) / median(p.cold.map((x) => x.tti))).toFixed(2)}×, bytes ${(median(w.cold.map((x) => x.transferred)) / median(p.cold.map((x) => x.transferred))).toFixed(3)}×`);
  console.log(`every TTI (ms): ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { cold: v.cold.map((x) => Math.round(x.tti)), warm: v.warm.map((x) => Math.round(x.tti)) }])))}`);
} finally {
  await browser.close();
  await server.stop();
  await fake.close();
}
