// /write in a real headless Chromium against the real binary and a fake OpenAI-compatible
// provider: a novel and a chapter are created with the page's forms, the chapter is
// generated and its text grows on screen chunk by chunk, a generation is cancelled, an
// older revision is rolled back to, a dropped connection resumes with no gap or repeat,
// jobs started elsewhere show up live, Chinese renders with a CJK font, and a wrong key
// is a clear message.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hostsOf, launch, unexpectedErrors, watchedContext } from './lib/browser.mjs';
import { CHINESE, ENGLISH, MORNING, charsOf, startFakeLlm, wordsOf } from './lib/fake-llm.mjs';
import { addChapter, createNovel, generate, openRoom, waitForVersion, watchStream } from './lib/room.mjs';
import { startProxy, startServer } from './lib/server.mjs';

let server;
let fake;
let browser;
let watch;
let page;
/** The page a failure is shown from when it is not `page` (a second browser context). */
let other = null;
/** The novel and chapter the first test makes; later tests build on them. */
const story = {};

const CHAPTER = `query($id: ID!) {
  chapter(id: $id) { content version status wordCount revisions(first: 20) { edges { node { id version source content } } } }
}`;

before(async () => {
  fake = await startFakeLlm();
  server = await startServer({ LLM_BASE_URL: fake.baseUrl, LLM_MODEL: 'fake-writer' });
  browser = await launch();
  watch = await watchedContext(browser);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await fake?.close();
});

/**
 * A test that, when it fails, leaves a screenshot of the page and prints the page's status
 * line and the server's last log lines, so a failure in CI can be understood.
 */
function scenario(name, body) {
  test(name, async () => {
    other = null;
    try {
      await body();
    } catch (e) {
      const shown = other ?? page;
      const dir = join(process.env.ZNOVEL_TEST_ARTIFACTS ?? tmpdir(), 'znovel-web-failures');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${name.replace(/\W+/g, '-').slice(0, 60)}.png`);
      await shown?.screenshot({ path: file, fullPage: true }).catch(() => {});
      const notice = await shown?.locator('#notice').textContent().catch(() => '');
      console.error(`failed: ${name}\n  screenshot: ${file}\n  status line: ${notice}\n  server log:\n${server.log.split('\n').slice(-15).join('\n')}`);
      throw e;
    }
  });
}

describe('the writing room', () => {
  scenario('creates a novel and a chapter, then generates it while the text visibly grows', async () => {
    page = await openRoom(watch.context, server.url, server.key);
    await page.locator('#notice').filter({ hasText: 'No novels yet' }).waitFor();
    story.novelId = await createNovel(page, { title: 'The Lighthouse Keeper', genre: 'mystery' });
    story.chapterId = await addChapter(page, {
      title: 'The Storm',
      outline: 'Mara finds a stranger on the rocks below the lighthouse.',
      target: 110,
    });
    assert.match(await page.locator('#chapter-list').innerText(), /The Storm[\s\S]*Mara finds a stranger/);

    fake.play({ pieces: wordsOf(ENGLISH), firstTokenDelayMs: 300, intervalMs: 50 });
    const watching = watchStream(page);
    await generate(page, { target: 110 });
    const run = await watching;
    assert.equal(run.status, 'SUCCEEDED');
    assert.ok(run.lengths.length >= 8, `the text grew ${run.lengths.length} times on screen before the job completed`);
    for (let i = 1; i < run.lengths.length; i += 1) assert.ok(run.lengths[i] > run.lengths[i - 1], 'it only grows');

    const { chapter } = await server.gql(CHAPTER, { id: story.chapterId });
    assert.equal(run.text, chapter.content, 'what was shown live is exactly what was stored');
    assert.ok(chapter.content.startsWith('The storm broke'));
    story.v1 = chapter.content;

    // The stored chapter replaces the live view; its progress says how it went.
    await waitForVersion(page, 1);
    assert.equal(await page.locator('#chapter-text').textContent(), chapter.content);
    assert.equal(await page.locator('#stat-words').textContent(), `${chapter.wordCount} / 110`);
    assert.match(await page.locator('#stat-ttft').textContent(), /^\d+(\.\d)? (ms|s)$/);
    assert.match(await page.locator('#stat-rate').textContent(), /^\d+\.\d$/);
    assert.match(await page.locator('#stream-note').textContent(), /Written by fake-writer/);
    await page.locator('#revisions li[data-version="1"]').waitFor();
    assert.match(await page.locator('#revisions li[data-version="1"]').innerText(), /GENERATION/);
    await page.locator(`#chapter-list li[data-chapter-id="${story.chapterId}"] [data-status="REVIEW"], #chapter-list li[data-chapter-id="${story.chapterId}"] [data-status="COMPLETED"], #chapter-list li[data-chapter-id="${story.chapterId}"] [data-status="DRAFT"]`).first().waitFor();
  });

  scenario('cancel stops the job and leaves the chapter as it was', async () => {
    const abortedBefore = fake.aborted;
    fake.play({ pieces: wordsOf(`${ENGLISH} ${ENGLISH} ${ENGLISH}`), firstTokenDelayMs: 100, intervalMs: 60 });
    const watching = watchStream(page);
    await generate(page, { target: 300 });
    await page.waitForFunction(() => (document.querySelector('#chapter-text')?.textContent.length ?? 0) > 80);
    await page.locator('#cancel').click();
    const run = await watching;
    assert.equal(run.status, 'CANCELLED');
    assert.match(await page.locator('#stream-note').textContent(), /Cancelled: the chapter is as it was/);

    const { chapter } = await server.gql(CHAPTER, { id: story.chapterId });
    assert.equal(chapter.version, 1, 'no new revision');
    assert.equal(chapter.content, story.v1);
    await page.waitForFunction((v1) => document.querySelector('#chapter-text')?.textContent === v1, story.v1);
    const { generationJobs } = await server.gql(
      'query($n: ID!) { generationJobs(novelId: $n, status: CANCELLED) { edges { node { id } } } }',
      { n: story.novelId },
    );
    assert.equal(generationJobs.edges.length, 1);
    await waitUntil(() => fake.aborted > abortedBefore, 'the provider request was stopped');
  });

  scenario('rolls back to an earlier revision', async () => {
    fake.play({ pieces: wordsOf(MORNING), intervalMs: 20 });
    const watching = watchStream(page);
    await generate(page, { target: 55, kind: 'REWRITE' });
    assert.equal((await watching).status, 'SUCCEEDED');
    await waitForVersion(page, 2);
    assert.match(await page.locator('#chapter-text').textContent(), /^Morning came grey/);

    const button = page.locator('#revisions li[data-version="1"] button.rollback');
    await button.click();
    assert.equal(await button.textContent(), 'Confirm: back to v1', 'a first click only arms it');
    await button.click();
    await waitForVersion(page, 3);
    assert.equal(await page.locator('#chapter-text').textContent(), story.v1);
    await page.locator('#revisions li[data-version="3"]').waitFor();
    assert.match(await page.locator('#revisions li[data-version="3"]').innerText(), /ROLLBACK/);

    const { chapter } = await server.gql(CHAPTER, { id: story.chapterId });
    assert.equal(chapter.version, 3);
    assert.equal(chapter.content, story.v1);
  });

  scenario('a dropped connection resumes where it stopped, with no gap and no repeat', async () => {
    const proxy = await startProxy(server.url);
    try {
      const context = (await watchedContext(browser)).context;
      const remote = await openRoom(context, proxy.url, server.key, `#novel=${story.novelId}&chapter=${story.chapterId}`);
      other = remote;
      await remote.locator('#chapter-title').waitFor();
      fake.play({ pieces: wordsOf(`${ENGLISH} ${ENGLISH}`), firstTokenDelayMs: 100, intervalMs: 50 });
      const watching = watchStream(remote);
      await generate(remote, { target: 230 });
      // The stored chapter is already longer than that: wait for the live text, which
      // replaces it once the job is followed, and for the stream's first event (so the
      // WebSocket is open through the proxy when the connections are dropped).
      await remote.waitForFunction(
        () =>
          document.querySelector('#progress')?.dataset.connection === 'live' &&
          (document.querySelector('#chapter-text[data-live="true"]')?.textContent.length ?? 0) > 120,
      );
      assert.ok(proxy.dropAll() >= 1, 'the WebSocket was open through the proxy');
      await remote.locator('#progress[data-connection="reconnecting"], #progress[data-resumes="1"]').first().waitFor();
      const run = await watching;
      assert.equal(run.status, 'SUCCEEDED');
      assert.ok(run.resumes >= 1, 'the stream was resumed');
      const { chapter } = await server.gql(CHAPTER, { id: story.chapterId });
      assert.equal(run.text, chapter.content, 'the text on screen is the stored chapter: nothing lost, nothing twice');
      assert.match(await remote.locator('#stream-note').textContent(), /resumed 1× after a dropped connection|resumed \d+×/);
      await context.close();
    } finally {
      await proxy.close();
    }
  });

  scenario('jobs started elsewhere show up live: statuses in the list, text in the open chapter', async () => {
    // A second chapter, generated through the API while the room shows the first one.
    const second = await server.gql(
      'mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }',
      { i: { novelId: story.novelId, seq: 2, title: 'The Letter', outline: 'Mara opens the letter.', targetWordCount: 60 } },
    );
    const secondId = second.createChapter.chapter.id;
    await page.reload();
    await page.locator(`#chapter-list li[data-chapter-id="${secondId}"]`).waitFor();
    fake.play({ pieces: wordsOf(ENGLISH), firstTokenDelayMs: 600, intervalMs: 30 });
    const item = page.locator(`#chapter-list li[data-chapter-id="${secondId}"]`);
    const seenRunning = item.locator('[data-status="RUNNING"], [data-status="QUEUED"]').first().waitFor();
    await server.gql('mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id } } }', {
      i: { chapterId: secondId, targetWords: 60 },
    });
    await seenRunning;
    await item.locator('[data-status="REVIEW"], [data-status="COMPLETED"], [data-status="DRAFT"]').first().waitFor({ timeout: 30_000 });

    // A job of the open chapter, started elsewhere, streams into the page.
    await page.locator(`#chapter-list li[data-chapter-id="${story.chapterId}"] a`).click();
    await page.waitForFunction(() => document.querySelector('#chapter-title')?.textContent.endsWith('The Storm'));
    const before = (await server.gql(CHAPTER, { id: story.chapterId })).chapter.version;
    fake.play({ pieces: wordsOf(ENGLISH), firstTokenDelayMs: 300, intervalMs: 40 });
    const watching = watchStream(page);
    await server.gql('mutation($i: GenerateChapterInput!) { generateChapter(input: $i) { job { id } } }', {
      i: { chapterId: story.chapterId, targetWords: 110 },
    });
    const run = await watching;
    assert.equal(run.status, 'SUCCEEDED');
    assert.ok(run.lengths.length >= 5, `grew ${run.lengths.length} times`);
    const { chapter } = await server.gql(CHAPTER, { id: story.chapterId });
    assert.equal(chapter.version, before + 1);
    assert.equal(run.text, chapter.content);
  });

  scenario('the story bible shows each entity as of the open chapter', async () => {
    const secondTitle = page.locator(`#chapter-list li a:has-text("The Letter")`);
    await page.locator(`#chapter-list li[data-chapter-id="${story.chapterId}"] a`).click();
    await page.locator('#bible').waitFor();
    await page.locator('#new-entity-form input[name=name]').fill('Mara');
    await page.locator('#new-entity-form button').click();
    const mara = page.locator('#bible li.entity', { hasText: 'Mara' });
    await mara.waitFor();
    assert.match(await mara.innerText(), /No state recorded up to this chapter/);
    await mara.locator('details.record summary').click();
    await mara.locator('input[name=state]').fill('keeps the light alone');
    await mara.locator('button').click();
    await page.locator('#bible li.entity p.state[data-state="keeps the light alone"]').waitFor();

    await secondTitle.click();
    await page.waitForFunction(() => document.querySelector('#bible-title')?.textContent.endsWith('chapter 2'));
    const mara2 = page.locator('#bible li.entity', { hasText: 'Mara' });
    await mara2.locator('p.state[data-state="keeps the light alone"]').waitFor();
    await mara2.locator('details.record summary').click();
    await mara2.locator('input[name=state]').fill('has read the letter');
    await mara2.locator('button').click();
    await page.locator('#bible li.entity p.state[data-state="has read the letter"]').waitFor();

    // Back in chapter 1, chapter 2's state is still in the future.
    await page.keyboard.press('k');
    await page.waitForFunction(() => document.querySelector('#bible-title')?.textContent.endsWith('chapter 1'));
    await page.locator('#bible li.entity p.state[data-state="keeps the light alone"]').waitFor();
  });

  scenario('the panels for story memory and continuity follow what the schema offers', async () => {
    const { job, chapter } = await server.gql(`{
      job: __type(name: "GenerationJob") { fields { name } }
      chapter: __type(name: "Chapter") { fields { name } }
    }`);
    const hasContext = job.fields.some((f) => f.name === 'context');
    const hasValidation = chapter.fields.some((f) => f.name === 'validation');
    await page.reload();
    await page.locator('#bible').waitFor();
    assert.equal(await page.locator('#context').count(), hasContext ? 1 : 0);
    assert.equal(await page.locator('#issues').count(), hasValidation ? 1 : 0);
  });

  scenario('keyboard: j and k move between chapters, Ctrl+Enter generates, Escape cancels', async () => {
    await page.locator('#chapter-title').click();
    await page.keyboard.press('j');
    await page.waitForFunction(() => document.querySelector('#chapter-title')?.textContent.startsWith('2.'));
    await page.keyboard.press('k');
    await page.waitForFunction(() => document.querySelector('#chapter-title')?.textContent.startsWith('1.'));
    fake.play({ pieces: wordsOf(`${ENGLISH} ${ENGLISH}`), firstTokenDelayMs: 100, intervalMs: 80 });
    const watching = watchStream(page);
    await page.keyboard.press('Control+Enter');
    await page.locator('#progress[data-status="RUNNING"]').waitFor();
    await page.keyboard.press('Escape');
    assert.equal((await watching).status, 'CANCELLED');
  });

  scenario('Chinese: characters are counted and rendered with a CJK font', async () => {
    await createNovel(page, { title: '灯塔看守人', language: 'zh', genre: '悬疑' });
    await addChapter(page, { title: '暴风雨', outline: '玛拉在礁石上发现了一个陌生人。', target: 100 });
    fake.play({ pieces: charsOf(CHINESE, 2), firstTokenDelayMs: 200, intervalMs: 30 });
    const watching = watchStream(page);
    await generate(page, { target: 100 });
    const run = await watching;
    assert.equal(run.status, 'SUCCEEDED');
    const chapterId = await page.evaluate(() => new URLSearchParams(location.hash.slice(1)).get('chapter'));
    const { chapter } = await server.gql(CHAPTER, { id: chapterId });
    assert.equal(run.text, chapter.content);
    assert.ok(chapter.content.startsWith('夜半时分'));
    await waitForVersion(page, 1);
    assert.equal(await page.locator('#stat-words').textContent(), `${chapter.wordCount} / 100`);
    assert.equal(await page.locator('#chapter-text').getAttribute('lang'), 'zh');
    assert.equal(await page.locator('#novel-select option:checked').textContent(), '灯塔看守人');

    // The glyphs come from a font that has them (not boxes): ask the renderer.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('DOM.enable');
    await cdp.send('CSS.enable');
    const { root } = await cdp.send('DOM.getDocument');
    const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: '#chapter-text' });
    const { fonts } = await cdp.send('CSS.getPlatformFontsForNode', { nodeId });
    const han = Array.from(chapter.content).filter((c) => /\p{Script=Han}/u.test(c)).length;
    const cjk = fonts.filter((f) => /CJK|WenQuanYi|Micro Hei|Droid Sans Fallback|Noto Sans SC|Noto Serif SC/i.test(f.familyName));
    assert.ok(cjk.length > 0, `a CJK font renders the text: ${JSON.stringify(fonts)}`);
    assert.ok(cjk.reduce((n, f) => n + f.glyphCount, 0) >= han, `every Han character has a glyph: ${JSON.stringify(fonts)}`);
  });

  scenario('on a phone the room is one readable column', async () => {
    const phone = await watchedContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const small = await openRoom(phone.context, server.url, server.key, `#novel=${story.novelId}&chapter=${story.chapterId}`);
    await small.locator('#chapter-text[data-version]').waitFor();
    const width = await small.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no sideways scrolling (page is ${width}px wide)`);
    const box = await small.locator('#chapter-text').boundingBox();
    assert.ok(box.width >= 300 && box.x >= 0 && box.x + box.width <= 390, `the text uses the screen: ${JSON.stringify(box)}`);
    const fontSize = await small.locator('#chapter-text').evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
    assert.ok(fontSize >= 16, `readable text (${fontSize}px)`);
    await small.locator('#generate').scrollIntoViewIfNeeded();
    assert.ok(await small.locator('#generate').isVisible());
    await phone.context.close();
  });

  scenario('a wrong key is a clear message, not a blank page', async () => {
    const other = await watchedContext(browser);
    await other.context.addInitScript(() => location.protocol === 'http:' && localStorage.setItem('znovel.apiKey', 'znk_wrong'));
    const p = await other.context.newPage();
    await p.goto(`${server.url}/write`);
    await p.locator('#key-message').waitFor();
    assert.match(await p.locator('#key-message').innerText(), /The server refused this API key \(UNAUTHENTICATED\)/);
    assert.equal(await p.locator('#room').isVisible(), false);
    await other.context.close();
  });

  scenario('nothing left 127.0.0.1 and nothing failed in the page', async () => {
    const origin = new URL(server.url).host;
    assert.deepEqual(watch.offsite, []);
    assert.deepEqual(hostsOf(watch), [origin]);
    assert.deepEqual(unexpectedErrors(watch), []);
  });
});

async function waitUntil(check, what, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
