// Screenshots of both pages for docs/ and the README (scripts/playground.sh screenshots):
// the playground following a chapter stream, the writing room while a chapter is being
// written (1280×800), and the writing room on a phone with a Chinese chapter.

import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, watchedContext } from './lib/browser.mjs';
import { chineseDemo, englishDemo } from './lib/demo.mjs';
import { ENGLISH, startFakeLlm, wordsOf } from './lib/fake-llm.mjs';
import { generate } from './lib/room.mjs';
import { startServer } from './lib/server.mjs';

const docs = resolve(dirname(fileURLToPath(import.meta.url)), '../../docs');
mkdirSync(docs, { recursive: true });

const fake = await startFakeLlm();
const server = await startServer({ LLM_BASE_URL: fake.baseUrl, LLM_MODEL: 'fake-writer' });
const browser = await launch();
try {
  const demo = await englishDemo(server, fake);
  const zh = await chineseDemo(server, fake);
  const keep = (key) => location.protocol === 'http:' && localStorage.setItem('znovel.apiKey', key);

  // The writing room, chapter 3 being written.
  const desk = await watchedContext(browser);
  await desk.context.addInitScript(keep, server.key);
  const room = await desk.context.newPage();
  await room.goto(`${server.url}/write#novel=${demo.novelId}&chapter=${demo.chapterIds[2]}`);
  await room.locator('#bible li.entity').first().waitFor();
  fake.play({ pieces: wordsOf(ENGLISH), firstTokenDelayMs: 200, intervalMs: 60 });
  await generate(room, { target: 110 });
  await room.waitForFunction(() => (document.querySelector('#chapter-text')?.textContent.length ?? 0) > 330);
  await room.screenshot({ path: join(docs, 'writing-room.png') });
  await room.locator('#progress[data-status="SUCCEEDED"]').waitFor();

  // The playground: the Guide, and step 5 following a job.
  const pg = await desk.context.newPage();
  await pg.goto(`${server.url}/playground`);
  await pg.locator('.graphiql-container').waitFor();
  await pg.waitForFunction(() => globalThis.__MONACO?.editor.getModels().some((m) => m.uri.path.endsWith('operation.graphql')));
  fake.play({ pieces: wordsOf(ENGLISH), firstTokenDelayMs: 200, intervalMs: 80 });
  const { generateChapter } = await server.gql(
    'mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id } } }',
    { i: { chapterId: demo.chapterIds[2], targetWords: 110, kind: 'REWRITE' } },
  );
  await pg.evaluate(
    (ids) => localStorage.setItem('znovel.guide.ids', JSON.stringify(ids)),
    { novelId: demo.novelId, chapterId: demo.chapterIds[2], jobId: generateChapter.job.id },
  );
  await pg.reload();
  await pg.locator('.graphiql-container').waitFor();
  await pg.waitForFunction(() => globalThis.__MONACO?.editor.getModels().some((m) => m.uri.path.endsWith('operation.graphql')));
  await pg.locator('button[aria-label^="Open step 5:"]').click();
  await pg.waitForFunction(() =>
    globalThis.__MONACO?.editor.getModels().some((m) => m.uri.path.endsWith('operation.graphql') && m.getValue().startsWith('# Step 5 ')),
  );
  await pg.locator('.graphiql-execute-button').click();
  await pg.waitForFunction(() => {
    const v = globalThis.__MONACO?.editor.getModels().find((m) => m.uri.path.endsWith('response.json'))?.getValue() ?? '';
    return v.includes('"seq": 12');
  });
  await pg.screenshot({ path: join(docs, 'playground.png') });
  await desk.context.close();

  // A phone, a Chinese chapter.
  const phone = await watchedContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await phone.context.addInitScript(keep, server.key);
  const small = await phone.context.newPage();
  await small.goto(`${server.url}/write#novel=${zh.novelId}&chapter=${zh.chapterId}`);
  await small.locator('#chapter-text[data-version="1"]').waitFor();
  await small.screenshot({ path: join(docs, 'writing-room-phone.png') });
  await phone.context.close();
  console.log(`screenshots written to ${docs}: playground.png, writing-room.png, writing-room-phone.png`);
} finally {
  await browser.close();
  await server.stop();
  await fake.close();
}
