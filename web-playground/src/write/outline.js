// The left column: the novel's volumes and chapters with their outlines and statuses (kept
// live by the `jobEvents` subscription), and the forms that add a chapter or a volume.

import { gql, subscribe } from '../shared/api.js';
import { $, h, isCjkLanguage } from './dom.js';
import * as Q from './queries.js';
import { chapterById, isWriting, notice, noticeError, state } from './state.js';

const ACTIVE = new Set(['QUEUED', 'RUNNING']);

/** Loads the novel's volumes and every chapter (page by page) into `state`. */
export async function loadOutline(novelId) {
  const chapters = [];
  let after = null;
  let novel;
  do {
    const data = await gql(Q.outline(state.features), { id: novelId, after });
    novel = data.novel;
    chapters.push(...novel.chapters.edges.map((e) => e.node));
    after = novel.chapters.pageInfo.hasNextPage ? novel.chapters.pageInfo.endCursor : null;
  } while (after);
  state.novel = novel;
  state.volumes = novel.volumes.edges.map((e) => e.node).sort((a, b) => a.seq - b.seq);
  state.chapters = chapters.sort((a, b) => a.seq - b.seq);
}

/** Loads which chapters have a job running (and each chapter's latest job). */
export async function loadJobs(novelId) {
  const data = await gql(Q.JOBS, { novelId });
  state.activeJobs.clear();
  state.lastJobs.clear();
  const jobs = data.generationJobs.edges.map((e) => e.node).sort((a, b) => a.queuedAt.localeCompare(b.queuedAt));
  for (const job of jobs) {
    if (!job.chapterId || !isWriting(job)) continue;
    state.lastJobs.set(job.chapterId, job);
    if (ACTIVE.has(job.status)) state.activeJobs.set(job.chapterId, job);
    else state.activeJobs.delete(job.chapterId);
  }
}

/** The link to a chapter (the URL keeps the place across reloads). */
export const chapterHref = (novelId, chapterId) =>
  `#novel=${encodeURIComponent(novelId)}&chapter=${encodeURIComponent(chapterId)}`;

function statusChip(chapter) {
  const job = state.activeJobs.get(chapter.id);
  const status = job ? job.status : chapter.status;
  return h('span', { class: `chip s-${status.toLowerCase()}`, 'data-status': status }, status);
}

function chapterItem(chapter) {
  const current = state.chapter?.id === chapter.id;
  return h(
    'li',
    { 'data-chapter-id': chapter.id, class: current ? 'current' : null },
    h(
      'a',
      { href: chapterHref(state.novel.id, chapter.id), 'aria-current': current ? 'page' : null },
      h('span', { class: 'seq' }, String(chapter.seq)),
      h('span', { class: 'title' }, chapter.title),
      statusChip(chapter),
    ),
    chapter.outline ? h('p', { class: 'outline' }, chapter.outline) : null,
    h('p', { class: 'meta' }, `${chapter.wordCount}${chapter.targetWordCount ? ` / ${chapter.targetWordCount}` : ''} ${isCjkLanguage(state.novel?.language) ? 'characters' : 'words'}`),
  );
}

/** Redraws the chapter list, grouped by volume. */
export function renderOutline() {
  const list = $('#chapter-list');
  const groups = state.volumes.map((v) => ({ volume: v, chapters: state.chapters.filter((c) => c.volumeId === v.id) }));
  const loose = state.chapters.filter((c) => !c.volumeId || !state.volumes.some((v) => v.id === c.volumeId));
  const blocks = [];
  for (const { volume, chapters } of groups) {
    blocks.push(
      h(
        'section',
        { class: 'volume', 'data-volume-id': volume.id },
        h('h3', {}, `${volume.seq}. ${volume.title}`),
        volume.summary ? h('p', { class: 'volume-summary' }, volume.summary) : null,
        chapters.length ? h('ol', { class: 'chapter-items' }, chapters.map(chapterItem)) : h('p', { class: 'empty' }, 'No chapters yet.'),
      ),
    );
  }
  if (loose.length || !state.volumes.length) {
    blocks.push(
      h(
        'section',
        { class: 'volume' },
        state.volumes.length ? h('h3', {}, 'Outside any volume') : null,
        loose.length ? h('ol', { class: 'chapter-items' }, loose.map(chapterItem)) : h('p', { class: 'empty' }, 'No chapters yet: add the first one below.'),
      ),
    );
  }
  list.replaceChildren(...blocks);
  const select = $('#new-chapter-form select[name=volumeId]');
  select.replaceChildren(h('option', { value: '' }, '— no volume —'), ...state.volumes.map((v) => h('option', { value: v.id }, `${v.seq}. ${v.title}`)));
}

/** Updates one chapter's status chip. */
function refreshItem(chapterId) {
  const item = document.querySelector(`#chapter-list li[data-chapter-id="${CSS.escape(chapterId)}"]`);
  const chapter = chapterById(chapterId);
  if (item && chapter) item.replaceWith(chapterItem(chapter));
}

/** Puts a changed chapter (from a mutation or a completed job) in the list. */
export function upsertChapter(chapter) {
  const i = state.chapters.findIndex((c) => c.id === chapter.id);
  const { content, validation, ...listed } = chapter;
  if (i >= 0) state.chapters[i] = { ...state.chapters[i], ...listed };
  else state.chapters.push(listed);
  state.chapters.sort((a, b) => a.seq - b.seq);
  if (i >= 0) refreshItem(chapter.id);
  else renderOutline();
}

const RANK = { QUEUED: 0, RUNNING: 1, SUCCEEDED: 2, FAILED: 2, CANCELLED: 2 };

/**
 * Records a job's new status for its chapter and updates the list. Statuses arrive by two
 * roads (a mutation's answer, `jobEvents`) in either order: an older one is ignored.
 */
export function noteJob(job) {
  if (!job.chapterId || !isWriting(job)) return;
  const known = state.lastJobs.get(job.chapterId);
  if (known?.id === job.id && RANK[known.status] > RANK[job.status]) return;
  state.lastJobs.set(job.chapterId, job);
  if (ACTIVE.has(job.status)) state.activeJobs.set(job.chapterId, job);
  else if (state.activeJobs.get(job.chapterId)?.id === job.id) state.activeJobs.delete(job.chapterId);
  refreshItem(job.chapterId);
}

let eventsAbort = null;

/**
 * Follows `jobEvents(novelId)` until another novel is opened, resubscribing after a dropped
 * connection. `onEvent(event)` runs for each event after the list is updated.
 */
export function followJobEvents(novelId, onEvent) {
  stopJobEvents();
  const abort = new AbortController();
  eventsAbort = abort;
  (async () => {
    let delay = 500;
    while (!abort.signal.aborted) {
      try {
        for await (const data of subscribe(Q.JOB_EVENTS, { novelId }, { signal: abort.signal })) {
          delay = 500;
          const { status, job } = data.jobEvents;
          noteJob({ ...job, status });
          onEvent({ status, job });
        }
      } catch (e) {
        if (abort.signal.aborted) return;
        if (!e.isConnection) {
          noticeError('Live job statuses stopped', e);
          return;
        }
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 8000);
    }
  })();
}

/** Stops following job events (another novel is being opened). */
export function stopJobEvents() {
  eventsAbort?.abort();
  eventsAbort = null;
}

/** Wires the "new chapter" and "new volume" forms; `onCreated(chapter)` opens the new chapter. */
export function wireOutlineForms(onCreated) {
  const form = $('#new-chapter-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const fd = new FormData(form);
    const target = Number(fd.get('targetWordCount'));
    const input = {
      novelId: state.novel.id,
      title: String(fd.get('title')).trim(),
      outline: String(fd.get('outline') ?? ''),
      volumeId: fd.get('volumeId') || null,
      targetWordCount: Number.isFinite(target) && target > 0 ? target : null,
    };
    try {
      const { createChapter } = await gql(Q.CREATE_CHAPTER, { input });
      form.reset();
      upsertChapter(createChapter.chapter);
      notice(`Chapter ${createChapter.chapter.seq} added.`, 'ok');
      onCreated(createChapter.chapter);
    } catch (e) {
      noticeError('Cannot add the chapter', e);
    }
  });
  const volumeForm = $('#new-volume-form');
  volumeForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const title = String(new FormData(volumeForm).get('title')).trim();
    try {
      const { createVolume } = await gql(Q.CREATE_VOLUME, { input: { novelId: state.novel.id, title } });
      volumeForm.reset();
      state.volumes.push(createVolume.volume);
      state.volumes.sort((a, b) => a.seq - b.seq);
      renderOutline();
      notice(`Volume ${createVolume.volume.seq} added.`, 'ok');
    } catch (e) {
      noticeError('Cannot add the volume', e);
    }
  });
}
