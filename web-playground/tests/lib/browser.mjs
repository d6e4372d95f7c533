// Headless Chromium (Debian's package, driven by playwright-core) for the browser tests,
// with a guard that records every request and WebSocket a page opens and refuses (and
// reports) any that would leave 127.0.0.1, and the page's console errors and CSP reports.

import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';

/** Debian's Chromium, or $CHROMIUM. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** Launches Chromium (a fresh temporary profile: playwright passes its own --user-data-dir). */
export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: scripts/ensure-services.sh --browser installs Debian's package`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}

/**
 * A new browser context (its own storage) whose traffic is watched: `requests` lists every
 * URL asked for, `offsite` those refused for leaving 127.0.0.1, `errors` every console
 * error and uncaught exception.
 */
export async function watchedContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const watch = { context, requests: [], offsite: [], sockets: [], errors: [] };
  await context.route('**/*', (route) => {
    const url = route.request().url();
    watch.requests.push(url);
    const { protocol, hostname } = new URL(url);
    if ((protocol === 'http:' || protocol === 'https:') && hostname !== '127.0.0.1') {
      watch.offsite.push(url);
      return route.abort('blockedbyclient');
    }
    return route.continue();
  });
  context.on('page', (page) => watchPage(page, watch));
  return watch;
}

function watchPage(page, watch) {
  page.on('websocket', (ws) => watch.sockets.push(ws.url()));
  page.on('console', (msg) => {
    if (msg.type() === 'error') watch.errors.push(msg.text());
  });
  page.on('pageerror', (err) => watch.errors.push(`uncaught: ${err.message}`));
}

/** Every URL host the context talked to (requests and WebSockets). */
export function hostsOf(watch) {
  return [...new Set([...watch.requests, ...watch.sockets].map((u) => new URL(u).host))];
}

/** Console errors except the ones a test provoked on purpose (matching `expected`). */
export function unexpectedErrors(watch, expected = []) {
  return watch.errors.filter((e) => !expected.some((re) => re.test(e)));
}

/**
 * Records each distinct text length of `selector` until `until()` (evaluated in the page)
 * is true; returns the lengths in order. Runs in the page with a MutationObserver, so no
 * growth between two polls is missed.
 */
export async function recordGrowth(page, selector, untilSelector, timeoutMs = 60_000) {
  return page.evaluate(
    ({ selector, untilSelector, timeoutMs }) =>
      new Promise((resolve, reject) => {
        const target = document.querySelector(selector);
        if (!target) return reject(new Error(`no ${selector}`));
        const lengths = [target.textContent.length];
        const observer = new MutationObserver(() => {
          const n = document.querySelector(selector)?.textContent.length ?? 0;
          if (n !== lengths.at(-1)) lengths.push(n);
          if (document.querySelector(untilSelector)) done();
        });
        const timer = setTimeout(() => {
          observer.disconnect();
          reject(new Error(`${untilSelector} did not appear within ${timeoutMs} ms; lengths: ${lengths.join(',')}`));
        }, timeoutMs);
        function done() {
          clearTimeout(timer);
          observer.disconnect();
          resolve(lengths);
        }
        observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
        if (document.querySelector(untilSelector)) done();
      }),
    { selector, untilSelector, timeoutMs },
  );
}
