// The writing room with no provider configured: the embedded SmolLM2 model (fetched by
// scripts/fetch-models.sh) writes the chapter, and the page shows it growing token by token.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { launch, unexpectedErrors, watchedContext } from './lib/browser.mjs';
import { addChapter, createNovel, generate, openRoom, waitForVersion, watchStream } from './lib/room.mjs';
import { LOCAL_MODEL, startServer } from './lib/server.mjs';

let server;
let browser;

before(async () => {
  assert.ok(existsSync(LOCAL_MODEL), `the local model is missing (${LOCAL_MODEL}): run scripts/fetch-models.sh`);
  server = await startServer({ LLM_BASE_URL: '', ZNOVEL_MODEL_PATH: LOCAL_MODEL });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the embedded model writes a chapter live in the writing room', async () => {
  const watch = await watchedContext(browser);
  const page = await openRoom(watch.context, server.url, server.key);
  await createNovel(page, { title: 'The Lighthouse Keeper', genre: 'mystery' });
  const chapterId = await addChapter(page, {
    title: 'The Storm',
    outline: 'Mara, the lighthouse keeper, finds a stranger on the rocks during a storm.',
    target: 60,
  });
  const watching = watchStream(page, 180_000);
  await generate(page, { target: 60 });
  const run = await watching;
  assert.equal(run.status, 'SUCCEEDED');
  assert.ok(run.lengths.length >= 5, `the text grew ${run.lengths.length} times on screen`);

  const { chapter } = await server.gql('query($id: ID!) { chapter(id: $id) { content version } }', { id: chapterId });
  assert.equal(run.text, chapter.content);
  assert.ok(chapter.content.trim().length > 0);
  await waitForVersion(page, 1);
  const note = await page.locator('#stream-note').textContent();
  assert.match(note, /^Written by /, note);
  assert.match(await page.locator('#stat-rate').textContent(), /^\d+\.\d$/);
  assert.deepEqual(watch.offsite, []);
  assert.deepEqual(unexpectedErrors(watch), []);
});
