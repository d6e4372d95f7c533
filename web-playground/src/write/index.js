// The writing room: pick or create a novel, see its volumes and chapters, generate a
// chapter and watch it arrive, cancel it, roll back to an earlier revision, with the story
// bible alongside. The place (novel, chapter) lives in the URL, so a reload or a shared
// link opens the same chapter — and goes on following its job if one is running.

import '../shared/base.css';
import './write.css';
import { gql, onAuthFailure } from '../shared/api.js';
import { signIn, viewerLabel } from '../shared/key-gate.js';
import { $, h } from './dom.js';
import { loadChapter, renderChapter, startFromForm } from './chapter.js';
import { detectFeatures } from './features.js';
import * as gen from './generation.js';
import { chapterHref, followJobEvents, loadJobs, loadOutline, renderOutline, upsertChapter, wireOutlineForms } from './outline.js';
import * as Q from './queries.js';
import { isWriting, notice, noticeError, state } from './state.js';
import { renderSide, wireSide } from './side.js';

function parseHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { novelId: params.get('novel'), chapterId: params.get('chapter') };
}

async function loadNovels() {
  const novels = [];
  let after = null;
  do {
    const { novels: page } = await gql(Q.NOVELS, { after });
    novels.push(...page.edges.map((e) => e.node));
    after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
  } while (after);
  state.novels = novels;
}

function renderNovelSelect() {
  const select = $('#novel-select');
  select.disabled = state.novels.length === 0;
  select.replaceChildren(
    ...(state.novels.length ? [] : [h('option', { value: '' }, 'No novels yet')]),
    ...state.novels.map((n) => h('option', { value: n.id, lang: n.language }, n.title)),
  );
  if (state.novel) select.value = state.novel.id;
  $('#new-novel').disabled = false;
}

/** Opens the novel (list, job statuses, live events) unless it is open already. */
async function openNovel(novelId) {
  if (state.novel?.id === novelId) return;
  state.chapter = null;
  await loadOutline(novelId);
  await loadJobs(novelId);
  renderOutline();
  renderNovelSelect();
  document.documentElement.lang = state.novel.language || 'en';
  followJobEvents(novelId, onJobEvent);
}

/** A job of the open novel changed: follow it if it is the open chapter's and new to us. */
function onJobEvent({ status, job }) {
  const open = state.chapter;
  if (!open || job.chapterId !== open.id || !isWriting(job)) return;
  const followed = gen.liveFor(open.id);
  if ((status === 'QUEUED' || status === 'RUNNING') && followed?.jobId !== job.id) {
    gen.follow(
      { ...job, status, targetWords: null },
      { base: job.kind === 'CONTINUE' ? open.content : '' },
    );
  }
}

/** Shows the place the URL names (or the first novel and its first chapter). */
async function route() {
  let { novelId, chapterId } = parseHash();
  if (!novelId || !state.novels.some((n) => n.id === novelId)) novelId = state.novels[0]?.id ?? null;
  if (!novelId) {
    $('#room').hidden = true;
    notice('No novels yet: create the first one with “New novel”.', 'info');
    $('#new-novel').focus();
    return;
  }
  $('#room').hidden = false;
  try {
    await openNovel(novelId);
    if (!chapterId || !state.chapters.some((c) => c.id === chapterId)) chapterId = state.chapters[0]?.id ?? null;
    if (chapterId) await loadChapter(chapterId);
    else state.chapter = null;
  } catch (e) {
    noticeError('Cannot open the novel', e);
    return;
  }
  const wanted = chapterId ? chapterHref(novelId, chapterId) : `#novel=${encodeURIComponent(novelId)}`;
  if (location.hash !== wanted) history.replaceState(null, '', wanted);
  renderOutline();
  renderChapter();
  renderSide();
  resumeActive();
}

/** Goes on following the open chapter's running job (after a reload, or from elsewhere). */
function resumeActive() {
  const chapter = state.chapter;
  const active = chapter && state.activeJobs.get(chapter.id);
  if (active && gen.liveFor(chapter.id)?.jobId !== active.id) {
    gen.follow(active, { base: active.kind === 'CONTINUE' ? chapter.content : '' });
  }
}

/** A followed job ended: show the stored chapter, its revisions and side panel. */
gen.onFinished(async (live, stored) => {
  try {
    if (stored) upsertChapter(stored);
    if (state.chapter?.id === live.chapterId) {
      await loadChapter(live.chapterId);
      upsertChapter(state.chapter);
      renderChapter();
      renderSide();
    }
  } catch (e) {
    noticeError('Cannot reload the chapter', e);
  }
});

function wireNovelDialog() {
  const dialog = $('#new-novel-dialog');
  const form = $('#new-novel-form');
  const error = form.querySelector('.form-error');
  $('#new-novel').addEventListener('click', () => {
    error.hidden = true;
    dialog.showModal();
    form.elements.title.focus();
  });
  $('#new-novel-cancel').addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const fd = new FormData(form);
    const input = {
      title: String(fd.get('title')).trim(),
      genre: String(fd.get('genre') ?? '').trim() || null,
      language: String(fd.get('language')),
      description: String(fd.get('description') ?? '').trim() || null,
    };
    try {
      const { createNovel } = await gql(Q.CREATE_NOVEL, { input });
      state.novels.unshift(createNovel.novel);
      form.reset();
      dialog.close();
      location.hash = `#novel=${encodeURIComponent(createNovel.novel.id)}`;
      notice(`“${createNovel.novel.title}” created: add its first chapter.`, 'ok');
      $('#new-chapter-box').open = true;
      $('#new-chapter-form input[name=title]').focus();
    } catch (e) {
      error.textContent = `${e.message} (${e.code})`;
      error.hidden = false;
    }
  });
  $('#novel-select').addEventListener('change', (event) => {
    location.hash = `#novel=${encodeURIComponent(event.target.value)}`;
  });
}

const typing = (target) => target.closest?.('input, textarea, select, [contenteditable], dialog');

/** Ctrl+Enter generates, Esc cancels, j/k move between chapters, n adds a chapter. */
function wireKeys() {
  document.addEventListener('keydown', (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === 'Enter' && !event.target.closest?.('dialog, #side, .chapters')) {
      event.preventDefault();
      startFromForm();
      return;
    }
    if (event.key === 'Escape' && state.chapter && gen.isRunning(state.chapter.id) && !event.target.closest?.('dialog')) {
      gen.cancel(state.chapter.id);
      return;
    }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === 'j' || event.key === 'k') {
      const i = state.chapters.findIndex((c) => c.id === state.chapter?.id);
      const next = state.chapters[i + (event.key === 'j' ? 1 : -1)];
      if (next) location.hash = chapterHref(state.novel.id, next.id);
    } else if (event.key === 'n' && state.novel) {
      event.preventDefault();
      $('#new-chapter-box').open = true;
      $('#new-chapter-form input[name=title]').focus();
    }
  });
}

async function start(reason) {
  const viewer = await signIn(reason);
  $('#who').textContent = viewerLabel(viewer);
  try {
    state.features = await detectFeatures();
    await loadNovels();
  } catch (e) {
    noticeError('Cannot load the novels', e);
    return;
  }
  state.novel = null;
  renderNovelSelect();
  await route();
}

let asking = false;
onAuthFailure(async (error) => {
  if (asking) return;
  asking = true;
  await start(error);
  asking = false;
});

$('#change-key').addEventListener('click', () => start('Enter the API key to use from now on.'));
window.addEventListener('hashchange', () => route());
document.addEventListener('zn:chapter-changed', () => renderSide());
wireNovelDialog();
wireOutlineForms((chapter) => {
  location.hash = chapterHref(state.novel.id, chapter.id);
});
wireSide();
wireKeys();
start();
