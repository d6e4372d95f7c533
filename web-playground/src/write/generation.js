// Generating a chapter and watching it arrive: `generateChapter`, then `chapterStream`
// followed chunk by chunk with its progress (words so far / target, time to first token,
// tokens per second). A dropped connection resubscribes with `after` = the last chunk seen,
// so the text goes on with no gap and no repeat; `cancelGeneration` stops the job.

import { gql, subscribe } from '../shared/api.js';
import { $, duration, h, isCjkLanguage, randomKey } from './dom.js';
import { noteJob } from './outline.js';
import * as Q from './queries.js';
import { issueKey, notice, noticeError, state } from './state.js';
import { countWords, segments } from './text.js';

const FINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** The job being followed (one at a time), or null. */
let live = null;

/** What runs when a followed job ends: `(live, storedChapter | null)`. */
let finished = () => {};

/** Registers what to do when a followed job ends (reload the chapter, its revisions…). */
export function onFinished(fn) {
  finished = fn;
}

/** The followed job of `chapterId`, if any. */
export const liveFor = (chapterId) => (live && live.chapterId === chapterId ? live : null);

/** Whether a job of `chapterId` is being started, or followed and has not ended. */
export const isRunning = (chapterId) =>
  starting.chapterId === chapterId || Boolean(liveFor(chapterId) && !FINAL.has(live.status));

/** The chapter whose generateChapter is on its way, and whether Cancel came before its answer. */
const starting = { chapterId: null, cancel: false };

/** Starts generating the open chapter with the generate form's settings. */
export async function generate({ chapter, kind, targetWords, instructions }) {
  const clicked = performance.now();
  starting.chapterId = chapter.id;
  starting.cancel = false;
  let job;
  try {
    const data = await gql(Q.GENERATE, {
      input: {
        chapterId: chapter.id,
        kind,
        targetWords,
        instructions: instructions || null,
        idempotencyKey: randomKey(),
      },
    });
    job = data.generateChapter.job;
  } catch (e) {
    noticeError('Cannot generate the chapter', e);
    return;
  } finally {
    starting.chapterId = null;
  }
  noteJob(job);
  follow(job, { clicked, base: kind === 'CONTINUE' ? chapter.content : '' });
  if (starting.cancel) cancel(chapter.id);
}

/** Cancels the followed job of `chapterId` (or the one being started for it). */
export async function cancel(chapterId) {
  if (starting.chapterId === chapterId) {
    starting.cancel = true;
    return;
  }
  const l = liveFor(chapterId);
  if (!l || FINAL.has(l.status)) return;
  l.cancelling = true;
  renderProgress();
  try {
    await gql(Q.CANCEL, { input: { jobId: l.jobId } });
  } catch (e) {
    l.cancelling = false;
    renderProgress();
    noticeError('Cannot cancel', e);
  }
}

/**
 * Follows `job` until it ends. `clicked`: when the person asked for it (for the time to
 * first token as they saw it); `base`: the text the stream continues (CONTINUE).
 */
export function follow(job, { clicked = null, base = '' } = {}) {
  live?.abort.abort();
  const l = {
    jobId: job.id,
    chapterId: job.chapterId,
    kind: job.kind,
    target: job.targetWords,
    status: job.status,
    base,
    text: '',
    seq: 0,
    chunks: 0,
    issues: [],
    clicked,
    firstAt: null,
    lastAt: null,
    result: null,
    error: null,
    connection: 'connecting',
    resumes: 0,
    cancelling: false,
    abort: new AbortController(),
  };
  live = l;
  attach();
  run(l);
}

async function run(l) {
  let delay = 300;
  while (!l.abort.signal.aborted) {
    try {
      const events = subscribe(Q.stream(state.features), { jobId: l.jobId, after: l.seq }, { signal: l.abort.signal });
      for await (const data of events) {
        l.connection = 'live';
        delay = 300;
        if (handle(l, data.chapterStream)) return;
      }
      if (l.abort.signal.aborted) return;
      // The stream ended without a final event (the job was already over): read the job.
      await settle(l);
      return;
    } catch (e) {
      if (l.abort.signal.aborted) return;
      if (!e.isConnection) {
        l.error = e;
        l.status = 'ERROR';
        renderProgress();
        noticeError('Lost the live stream', e);
        return;
      }
      l.connection = 'reconnecting';
      renderProgress();
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
      l.resumes += 1;
    }
  }
}

/** Applies one stream event; true when the job ended. */
function handle(l, ev) {
  switch (ev.__typename) {
    case 'ChapterChunk': {
      if (ev.seq <= l.seq) return false;
      l.seq = ev.seq;
      if (l.status !== 'RUNNING') noteJob({ id: l.jobId, chapterId: l.chapterId, kind: l.kind, status: 'RUNNING' });
      l.status = 'RUNNING';
      l.text += ev.text;
      l.chunks += 1;
      const now = performance.now();
      l.firstAt ??= now;
      l.lastAt = now;
      appendText(l, ev.text);
      renderProgress();
      return false;
    }
    case 'ChapterIssue': {
      if (!l.issues.some((i) => issueKey(i) === issueKey(ev.issue))) {
        l.issues.push(ev.issue);
        redrawText(l);
        document.dispatchEvent(new CustomEvent('zn:issues', { detail: { chapterId: l.chapterId, issues: l.issues } }));
      }
      return false;
    }
    case 'ChapterCompleted':
      l.seq = ev.seq;
      l.status = 'SUCCEEDED';
      l.result = ev.job;
      l.connection = 'done';
      noteJob({ ...ev.job, chapterId: l.chapterId, kind: l.kind });
      renderProgress();
      finished(l, ev.chapter);
      return true;
    case 'ChapterFailed':
      l.seq = ev.seq;
      l.status = ev.status;
      l.error = { message: ev.message };
      l.connection = 'done';
      noteJob({ id: l.jobId, chapterId: l.chapterId, kind: l.kind, status: ev.status });
      renderProgress();
      if (ev.status === 'CANCELLED') notice('Cancelled: the chapter is as it was.', 'info');
      else notice(`The job failed: ${ev.message}`, 'error');
      finished(l, null);
      return true;
    default:
      return false;
  }
}

/** Reads the job's final state when its stream had nothing more to say. */
async function settle(l) {
  try {
    const { generationJob } = await gql(Q.job(state.features), { id: l.jobId });
    l.status = generationJob.status;
    l.result = generationJob;
    l.connection = 'done';
    noteJob(generationJob);
  } catch (e) {
    l.error = e;
  }
  renderProgress();
  finished(l, null);
}

// ---- the view: the progress block and the text, when the followed chapter is shown ----

/** What lengths are counted in: characters for Chinese, Japanese, Korean; else words. */
export const unitLabel = () => (isCjkLanguage(state.novel?.language) ? 'Characters' : 'Words');

/** The progress block for the chapter panel (filled by `renderProgress`). */
export function progressBlock() {
  return h(
    'div',
    { id: 'progress', class: 'progress', hidden: true, 'data-status': '' },
    h('div', { class: 'bar', role: 'progressbar', 'aria-label': `${unitLabel()} written`, 'aria-valuemin': '0' }, h('span')),
    h(
      'dl',
      { class: 'stats' },
      h('div', {}, h('dt', {}, unitLabel()), h('dd', { id: 'stat-words' }, '0')),
      h('div', {}, h('dt', {}, 'First token'), h('dd', { id: 'stat-ttft' }, '—')),
      h('div', {}, h('dt', {}, 'Tokens/s'), h('dd', { id: 'stat-rate' }, '—')),
      h('div', {}, h('dt', {}, 'Status'), h('dd', { id: 'stat-status' }, '—')),
    ),
    h('p', { id: 'stream-note', class: 'note' }),
  );
}

/**
 * Shows the followed job in the chapter panel if it is its chapter's: its progress, and
 * its text while it is being written (once it ended, the panel shows the stored chapter).
 */
export function attach() {
  if (!live || state.chapter?.id !== live.chapterId) return;
  if (!FINAL.has(live.status) && live.status !== 'ERROR') redrawText(live);
  renderProgress();
}

function shown(l) {
  return l === live && state.chapter?.id === l.chapterId && $('#chapter-text');
}

/** Draws the text (with its continuity issues marked) into `#chapter-text`. */
export function drawText(article, text, issues) {
  if (!issues?.length) {
    article.textContent = text;
    return;
  }
  article.replaceChildren(
    ...segments(text, issues.filter((i) => i.span).map((i) => ({ start: i.span.start, end: i.span.end, issue: i }))).map((s) =>
      s.mark
        ? h(
            'mark',
            {
              class: `issue sev-${String(s.mark.issue.severity).toLowerCase()}`,
              'data-issue-id': issueKey(s.mark.issue),
              title: `${s.mark.issue.kind}: ${s.mark.issue.message}`,
            },
            s.text,
          )
        : s.text,
    ),
  );
}

function redrawText(l) {
  const article = shown(l);
  if (!article) return;
  drawText(article, l.base + l.text, l.issues);
  article.dataset.live = 'true';
  delete article.dataset.empty;
}

function appendText(l, text) {
  const article = shown(l);
  if (!article) return;
  const panel = article.closest('.chapter');
  const atBottom = panel && panel.scrollHeight - panel.scrollTop - panel.clientHeight < 60;
  if (article.dataset.empty) {
    delete article.dataset.empty;
    article.dataset.live = 'true';
  }
  article.append(text);
  if (atBottom) panel.scrollTop = panel.scrollHeight;
}

/** Updates the progress block from the followed job. */
export function renderProgress() {
  const l = live;
  const block = $('#progress');
  if (!l || !block || state.chapter?.id !== l.chapterId) return;
  block.hidden = false;
  block.dataset.status = l.status;
  block.dataset.jobId = l.jobId;
  block.dataset.resumes = String(l.resumes);
  block.dataset.connection = l.connection;
  const words = countWords(l.text);
  const target = l.target ?? state.chapter?.targetWordCount ?? null;
  const pct = target ? Math.min(100, Math.round((words / target) * 100)) : 0;
  const bar = block.querySelector('.bar');
  bar.setAttribute('aria-valuenow', String(words));
  if (target) bar.setAttribute('aria-valuemax', String(target));
  bar.firstChild.style.width = `${FINAL.has(l.status) && l.status === 'SUCCEEDED' ? 100 : pct}%`;
  $('#stat-words').textContent = target ? `${words} / ${target}` : String(words);
  const ttft = l.result?.timeToFirstTokenMs ?? (l.clicked !== null && l.firstAt !== null ? l.firstAt - l.clicked : null);
  $('#stat-ttft').textContent = duration(ttft);
  $('#stat-rate').textContent = rate(l);
  $('#stat-status').textContent = l.cancelling && !FINAL.has(l.status) ? 'CANCELLING…' : l.status;
  $('#stream-note').textContent = note(l);
  const cancelButton = $('#cancel');
  if (cancelButton) cancelButton.disabled = FINAL.has(l.status) || l.cancelling;
  const generateButton = $('#generate');
  if (generateButton) generateButton.disabled = !FINAL.has(l.status) && l.status !== 'ERROR';
}

function rate(l) {
  const r = l.result;
  if (r?.completionTokens && r.durationMs && r.timeToFirstTokenMs !== null && r.durationMs > r.timeToFirstTokenMs) {
    return (r.completionTokens / ((r.durationMs - r.timeToFirstTokenMs) / 1000)).toFixed(1);
  }
  if (l.chunks > 1 && l.lastAt > l.firstAt) return ((l.chunks - 1) / ((l.lastAt - l.firstAt) / 1000)).toFixed(1);
  return '—';
}

function note(l) {
  if (l.connection === 'reconnecting') return `Connection lost — reconnecting; the text resumes after chunk ${l.seq}.`;
  if (l.status === 'SUCCEEDED') {
    const r = l.result ?? {};
    const model = r.model ? ` by ${r.model}` : '';
    return `Written${model} in ${duration(r.durationMs)}${l.resumes ? ` (resumed ${l.resumes}× after a dropped connection)` : ''}.`;
  }
  if (l.status === 'CANCELLED') return 'Cancelled: the chapter is as it was.';
  if (l.status === 'FAILED') return `Failed: ${l.error?.message ?? 'unknown error'}`;
  if (l.status === 'ERROR') return `Stopped following: ${l.error?.message ?? ''}`;
  if (l.resumes) return `Reconnected: resumed after a dropped connection (${l.resumes}×), no chunk lost or repeated.`;
  if (l.status === 'QUEUED' && !l.chunks) return 'Queued: waiting for a worker…';
  return '';
}
