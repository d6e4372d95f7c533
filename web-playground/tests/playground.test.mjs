// /playground in a real headless Chromium against the real binary: GraphiQL loads with
// nothing fetched from outside 127.0.0.1, the guided steps create a novel, a chapter and a
// job, a query runs, and `chapterStream` shows its results as they stream in; a missing or
// wrong key is a clear message, never a blank page.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hostsOf, launch, unexpectedErrors, watchedContext } from './lib/browser.mjs';
import { ENGLISH, startFakeLlm, wordsOf } from './lib/fake-llm.mjs';
import { startServer } from './lib/server.mjs';

let server;
let fake;
let browser;

before(async () => {
  fake = await startFakeLlm();
  server = await startServer({ LLM_BASE_URL: fake.baseUrl, LLM_MODEL: 'fake-writer' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await fake?.close();
});

/** The text of GraphiQL's result pane (its Monaco model: the DOM shows only what is in view). */
const resultText = (page) =>
  page.evaluate(() => globalThis.__MONACO?.editor.getModels().find((m) => m.uri.path.endsWith('response.json'))?.getValue() ?? '');

async function signInWith(page, key) {
  await page.locator('#api-key').fill(key);
  await page.locator('#key-gate button[type=submit]').click();
  await page.locator('#key-gate').waitFor({ state: 'hidden' });
}

/** Opens step `n` of the Guide: its operation is in the editor once this resolves. */
async function openStep(page, n) {
  await page.locator(`button[aria-label^="Open step ${n}:"]`).click();
  await page.waitForFunction(
    (marker) => globalThis.__MONACO?.editor.getModels().some((m) => m.uri.path.endsWith('operation.graphql') && m.getValue().startsWith(marker)),
    `# Step ${n} `,
  );
}

/** Opens step `n` of the Guide and runs it; resolves with the parsed result. */
async function runStep(page, n, expectKey) {
  await openStep(page, n);
  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(
    (key) => {
      const v = globalThis.__MONACO?.editor.getModels().find((x) => x.uri.path.endsWith('response.json'))?.getValue() ?? '';
      return v.includes(`"${key}"`) || v.includes('"errors"');
    },
    expectKey,
    { timeout: 30_000 },
  );
  const result = JSON.parse(await resultText(page));
  assert.equal(result.errors, undefined, `step ${n} answered errors: ${JSON.stringify(result.errors)}`);
  return result;
}

describe('the playground', () => {
  test('loads offline from the binary, runs queries and mutations, and streams a subscription', async () => {
    const watch = await watchedContext(browser);
    const page = await watch.context.newPage();

    // A browser opening the API's URL lands on the playground.
    await page.goto(`${server.url}/graphql`);
    assert.equal(new URL(page.url()).pathname, '/playground');
    await page.locator('#key-message').waitFor();
    assert.match(await page.locator('#key-message').innerText(), /Enter an API key/);

    await signInWith(page, server.key);
    await page.locator('.graphiql-container').waitFor();
    assert.match(await page.locator('#who').innerText(), /\(ADMIN\)/);
    // GraphiQL is ready once its editors exist and the schema has been fetched (with the key).
    await page.waitForFunction(() => globalThis.__MONACO?.editor.getModels().some((m) => m.uri.path.endsWith('operation.graphql')));
    await page.locator('.graphiql-doc-explorer-title, [aria-label="Show Documentation Explorer"]').first().waitFor();

    // Step 1: a query.
    const viewer = await runStep(page, 1, 'viewer');
    assert.equal(viewer.data.viewer.role, 'ADMIN');
    assert.equal(viewer.data.viewer.tenant.slug, 'local');

    // Steps 2-4: mutations; the Guide carries each id to the next step.
    const novel = await runStep(page, 2, 'createNovel');
    const novelId = novel.data.createNovel.novel.id;
    assert.equal(await page.locator('dd[data-id=novelId]').innerText(), novelId);
    const chapter = await runStep(page, 3, 'createChapter');
    const chapterId = chapter.data.createChapter.chapter.id;
    fake.play({ pieces: wordsOf(ENGLISH), firstTokenDelayMs: 300, intervalMs: 60 });
    const job = await runStep(page, 4, 'generateChapter');
    const jobId = job.data.generateChapter.job.id;
    assert.equal(await page.locator('dd[data-id=jobId]').innerText(), jobId);

    // Step 5: the subscription, over graphql-transport-ws; the result pane follows it.
    await openStep(page, 5);
    const seen = page.evaluate(
      () =>
        new Promise((resolve, reject) => {
          const values = [];
          const timer = setInterval(() => {
            const m = globalThis.__MONACO?.editor.getModels().find((x) => x.uri.path.endsWith('response.json'));
            const v = m?.getValue() ?? '';
            if (v && v !== values.at(-1)) values.push(v);
            if (v.includes('ChapterCompleted') || v.includes('ChapterFailed')) {
              clearInterval(timer);
              resolve(values);
            }
          }, 10);
          setTimeout(() => {
            clearInterval(timer);
            reject(new Error(`no final event; saw ${values.length} results`));
          }, 60_000);
        }),
    );
    await page.locator('.graphiql-execute-button').click();
    const values = await seen;
    const chunks = values.filter((v) => v.includes('"ChapterChunk"')).map((v) => JSON.parse(v).data.chapterStream);
    assert.ok(chunks.length >= 5, `the result pane showed ${chunks.length} chunks as they came`);
    for (let i = 1; i < chunks.length; i += 1) assert.ok(chunks[i].seq > chunks[i - 1].seq, 'chunks in order');
    const completed = JSON.parse(values.at(-1)).data.chapterStream;
    assert.equal(completed.__typename, 'ChapterCompleted');
    const stored = await server.gql('query($id: ID!) { chapter(id: $id) { content version } }', { id: chapterId });
    assert.equal(completed.chapter.content, stored.chapter.content);
    assert.ok(stored.chapter.content.startsWith('The storm broke'), stored.chapter.content);
    assert.equal(completed.job.model, 'fake-writer');

    // Nothing left 127.0.0.1: every request and the WebSocket went to this server.
    const origin = new URL(server.url).host;
    assert.deepEqual(watch.offsite, []);
    assert.deepEqual(hostsOf(watch), [origin]);
    assert.ok(watch.sockets.some((u) => u === `ws://${origin}/graphql`), `WebSocket: ${watch.sockets}`);
    for (const worker of ['editor.worker', 'graphql.worker', 'json.worker']) {
      assert.ok(watch.requests.some((u) => u.includes(`/assets/${worker}-`)), `Monaco's ${worker} came from the server`);
    }
    assert.deepEqual(unexpectedErrors(watch), []);
    await watch.context.close();
  });

  test('a wrong key is a clear message, and the right one opens GraphiQL', async () => {
    const watch = await watchedContext(browser);
    await watch.context.addInitScript(() => location.protocol === 'http:' && localStorage.setItem('znovel.apiKey', 'znk_not-a-real-key'));
    const page = await watch.context.newPage();
    await page.goto(`${server.url}/playground`);
    const message = page.locator('#key-message');
    await message.waitFor();
    assert.match(await message.innerText(), /refused this API key \(UNAUTHENTICATED\)/);
    assert.equal(await page.locator('.graphiql-container').count(), 0, 'GraphiQL waits for a valid key');
    assert.match(await page.locator('body').innerText(), /Z-Novel — API key/);

    // A wrong key typed in is refused too, and the form stays.
    await page.locator('#api-key').fill('znk_still-wrong');
    await page.locator('#key-gate button[type=submit]').click();
    await page.waitForFunction(() => document.querySelector('#key-message')?.textContent.includes('UNAUTHENTICATED'));
    assert.equal(await page.locator('#key-gate').isVisible(), true);

    await signInWith(page, server.key);
    await page.locator('.graphiql-container').waitFor();
    const kept = await page.evaluate(() => localStorage.getItem('znovel.apiKey'));
    assert.equal(kept, server.key, 'the key is kept in the browser');
    assert.deepEqual(unexpectedErrors(watch, [/status of 401/]), []);
    await watch.context.close();
  });
});
