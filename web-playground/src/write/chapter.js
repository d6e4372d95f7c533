// The middle column: the open chapter — its outline, the generate form, the live progress,
// the text (continuity issues highlighted) and the revision history with roll back.

import { gql } from '../shared/api.js';
import { $, clock, h, isCjkLanguage } from './dom.js';
import * as gen from './generation.js';
import { upsertChapter } from './outline.js';
import * as Q from './queries.js';
import { WRITING_KINDS, notice, noticeError, state } from './state.js';

const KINDS = WRITING_KINDS;

/** "words", or "characters" for a Chinese, Japanese or Korean novel. */
export const unit = () => gen.unitLabel().toLowerCase();

/** Loads a chapter (with its content) as the open one. */
export async function loadChapter(id) {
  const { chapter } = await gql(Q.chapter(state.features), { id });
  state.chapter = chapter;
  return chapter;
}

function generateForm(chapter) {
  const running = gen.isRunning(chapter.id);
  const form = h(
    'form',
    { id: 'generate-form', class: 'generate' },
    h('label', {}, 'Kind ', h('select', { name: 'kind', id: 'gen-kind' }, KINDS.map((k) => h('option', { value: k }, k)))),
    h(
      'label',
      {},
      `Target ${unit()} `,
      h('input', { name: 'targetWords', id: 'target-words', type: 'number', min: '1', max: '100000', value: String(chapter.targetWordCount ?? 300) }),
    ),
    h('button', { type: 'submit', class: 'primary', id: 'generate', disabled: running, title: 'Ctrl+Enter' }, 'Generate'),
    h('button', { type: 'button', id: 'cancel', disabled: !running, title: 'Esc', onclick: () => gen.cancel(chapter.id) }, 'Cancel'),
    h(
      'details',
      { class: 'instructions' },
      h('summary', {}, 'Instructions'),
      h('textarea', { name: 'instructions', rows: '2', placeholder: 'Optional: tone, what must happen, what to avoid…' }),
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    startFromForm();
  });
  return form;
}

/** Generates the open chapter with the form's settings (the Generate button, Ctrl+Enter). */
export function startFromForm() {
  const form = $('#generate-form');
  const chapter = state.chapter;
  if (!form || !chapter || gen.isRunning(chapter.id)) return;
  const fd = new FormData(form);
  const target = Number(fd.get('targetWords'));
  gen.generate({
    chapter,
    kind: String(fd.get('kind')),
    targetWords: Number.isFinite(target) && target > 0 ? target : null,
    instructions: String(fd.get('instructions') ?? '').trim(),
  });
}

/** Draws the open chapter into the middle column. */
export function renderChapter() {
  const chapter = state.chapter;
  const panel = $('#chapter');
  if (!chapter) {
    panel.replaceChildren(h('p', { class: 'empty', id: 'chapter-empty' }, 'Pick a chapter on the left, or add one.'));
    return;
  }
  const lang = state.novel?.language || 'en';
  const article = h('article', {
    id: 'chapter-text',
    class: `text${isCjkLanguage(lang) ? ' cjk' : ''}`,
    lang,
    'data-version': String(chapter.version),
    tabindex: '0',
    'aria-label': 'Chapter text',
  });
  gen.drawText(article, chapter.content, chapter.validation?.issues ?? []);
  if (!chapter.content) article.dataset.empty = 'true';
  panel.replaceChildren(
    h(
      'header',
      { class: 'chapter-head' },
      h('h2', { id: 'chapter-title' }, `${chapter.seq}. ${chapter.title}`),
      h('span', { class: `chip s-${chapter.status.toLowerCase()}`, id: 'chapter-status' }, chapter.status),
      h('span', { class: 'meta', id: 'chapter-meta' }, `version ${chapter.version} · ${chapter.wordCount} ${unit()}${chapter.targetWordCount ? ` (target ${chapter.targetWordCount})` : ''}`),
    ),
    chapter.outline ? h('p', { class: 'outline-full' }, h('strong', {}, 'Outline: '), chapter.outline) : h('p', { class: 'outline-full empty' }, 'No outline yet.'),
    generateForm(chapter),
    gen.progressBlock(),
    article,
    h('section', { id: 'revisions', 'aria-labelledby': 'revisions-title' }, h('h3', { id: 'revisions-title' }, 'Revisions'), h('p', { class: 'empty' }, 'Loading…')),
  );
  gen.attach();
  loadRevisions(chapter.id);
}

/** Loads and draws the revision history of the open chapter. */
export async function loadRevisions(chapterId) {
  let data;
  try {
    data = await gql(Q.REVISIONS, { id: chapterId });
  } catch (e) {
    noticeError('Cannot load the revisions', e);
    return;
  }
  if (state.chapter?.id !== chapterId) return;
  const current = data.chapter.version;
  const revisions = data.chapter.revisions.edges.map((e) => e.node).sort((a, b) => b.version - a.version);
  const section = $('#revisions');
  if (!section) return;
  section.replaceChildren(
    h('h3', { id: 'revisions-title' }, 'Revisions'),
    revisions.length
      ? h('ol', { class: 'revisions' }, revisions.map((r) => revisionItem(r, current)))
      : h('p', { class: 'empty' }, 'No revisions yet: generate the chapter or write it through the API.'),
  );
}

function revisionItem(revision, currentVersion) {
  const isCurrent = revision.version === currentVersion;
  const view = h('pre', { class: 'revision-text', hidden: true });
  const viewButton = h('button', { type: 'button', class: 'small', onclick: () => toggleView(revision, view, viewButton) }, 'View');
  const rollback = isCurrent
    ? h('span', { class: 'chip current' }, 'current')
    : h('button', { type: 'button', class: 'small rollback', 'data-version': String(revision.version) }, 'Roll back');
  if (!isCurrent) wireRollback(rollback, revision);
  return h(
    'li',
    { 'data-version': String(revision.version), 'data-revision-id': revision.id },
    h('span', { class: 'v' }, `v${revision.version}`),
    h('span', { class: 'src' }, revision.source),
    h('span', { class: 'meta' }, `${revision.wordCount} ${unit()} · ${clock(revision.createdAt)}`),
    h('span', { class: 'actions' }, viewButton, rollback),
    view,
  );
}

async function toggleView(revision, view, button) {
  if (!view.hidden) {
    view.hidden = true;
    button.textContent = 'View';
    return;
  }
  try {
    const { revision: r } = await gql(Q.REVISION, { id: revision.id });
    view.textContent = r.content;
    view.lang = state.novel?.language || 'en';
    view.hidden = false;
    button.textContent = 'Hide';
  } catch (e) {
    noticeError('Cannot load the revision', e);
  }
}

/** Two steps, so a stray click or Enter does not roll back: "Roll back" then "Confirm". */
function wireRollback(button, revision) {
  let armed = false;
  const disarm = () => {
    armed = false;
    button.textContent = 'Roll back';
    button.classList.remove('armed');
  };
  button.addEventListener('blur', disarm);
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = `Confirm: back to v${revision.version}`;
      button.classList.add('armed');
      return;
    }
    button.disabled = true;
    try {
      const { rollbackChapter } = await gql(Q.ROLLBACK, { input: { chapterId: state.chapter.id, revisionId: revision.id } });
      const chapter = rollbackChapter.chapter;
      upsertChapter(chapter);
      await loadChapter(chapter.id);
      renderChapter();
      document.dispatchEvent(new CustomEvent('zn:chapter-changed'));
      notice(`Rolled back to version ${revision.version}: the chapter is now version ${chapter.version}.`, 'ok');
    } catch (e) {
      button.disabled = false;
      disarm();
      noticeError('Cannot roll back', e);
    }
  });
}
