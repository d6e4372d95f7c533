// What a person does in the writing room, as steps the tests share.

/** Opens /write (at `hash`) on `base` and signs in with `key`. */
export async function openRoom(context, base, key, hash = '') {
  const page = await context.newPage();
  await page.goto(`${base}/write${hash}`);
  await page.locator('#api-key').fill(key);
  await page.locator('#key-gate button[type=submit]').click();
  await page.locator('#key-gate').waitFor({ state: 'hidden' });
  return page;
}

/** Creates a novel with the "New novel" dialog; resolves once it is open. */
export async function createNovel(page, { title, language = 'en', genre = '' }) {
  await page.locator('#new-novel').click();
  const form = page.locator('#new-novel-form');
  await form.locator('input[name=title]').fill(title);
  await form.locator('input[name=genre]').fill(genre);
  await form.locator('select[name=language]').selectOption(language);
  await form.locator('button[type=submit]').click();
  await page.waitForFunction((t) => document.querySelector('#novel-select')?.selectedOptions[0]?.textContent === t, title);
  return page.evaluate(() => new URLSearchParams(location.hash.slice(1)).get('novel'));
}

/** Adds a chapter with the "New chapter" form; resolves with its id once it is open. */
export async function addChapter(page, { title, outline = '', target = 300 }) {
  const box = page.locator('#new-chapter-box');
  if (!(await box.evaluate((d) => d.open))) await box.locator('summary').click();
  const form = page.locator('#new-chapter-form');
  await form.locator('input[name=title]').fill(title);
  await form.locator('textarea[name=outline]').fill(outline);
  await form.locator('input[name=targetWordCount]').fill(String(target));
  await form.locator('button[type=submit]').click();
  await page.waitForFunction((t) => document.querySelector('#chapter-title')?.textContent.endsWith(t), title);
  return page.evaluate(() => new URLSearchParams(location.hash.slice(1)).get('chapter'));
}

/** Sets the target and presses Generate. */
export async function generate(page, { target, kind = 'DRAFT' } = {}) {
  if (target) await page.locator('#target-words').fill(String(target));
  await page.locator('#gen-kind').selectOption(kind);
  await page.locator('#generate').click();
}

/**
 * Call before starting a job: waits until the next followed job ends; resolves with
 * `{ status, text, lengths, resumes }`: the final status, the streamed text at that
 * moment, every distinct length the text went through while it was written (recorded in
 * the page by a MutationObserver), and how often the stream was resumed.
 */
export function watchStream(page, timeoutMs = 90_000) {
  return page.evaluate(
    (timeoutMs) =>
      new Promise((resolve, reject) => {
        const FINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'ERROR'];
        const text = () => document.querySelector('#chapter-text')?.textContent ?? '';
        const lengths = [];
        let started = false;
        const check = () => {
          const status = document.querySelector('#progress')?.dataset.status;
          // A job that ended before this one started does not count.
          if (!started) {
            if (!status || FINAL.includes(status)) return;
            started = true;
          }
          const n = text().length;
          if (n !== lengths.at(-1)) lengths.push(n);
          if (FINAL.includes(status)) {
            finish({ status, text: text(), lengths, resumes: Number(document.querySelector('#progress').dataset.resumes) });
          }
        };
        const observer = new MutationObserver(check);
        const timer = setTimeout(() => {
          observer.disconnect();
          reject(new Error(`the job did not end within ${timeoutMs} ms (lengths ${lengths.join(',')})`));
        }, timeoutMs);
        function finish(result) {
          clearTimeout(timer);
          observer.disconnect();
          resolve(result);
        }
        observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
      }),
    timeoutMs,
  );
}

/** Resolves once the chapter panel shows `version` of the chapter (after a reload of it). */
export function waitForVersion(page, version) {
  return page.locator(`#chapter-text[data-version="${version}"]`).waitFor();
}
