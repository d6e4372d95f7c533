// The right column: the story bible as of the open chapter (each entity's state as the
// chapters up to this one established it), and — where the API has them — what the model
// was given for the chapter's latest job, the chapter's continuity issues, and how far the
// story memory has indexed the novel.

import { gql } from '../shared/api.js';
import { $, h } from './dom.js';
import * as Q from './queries.js';
import { issueKey, notice, noticeError, state } from './state.js';

const KINDS = ['CHARACTER', 'LOCATION', 'ITEM', 'ORGANIZATION', 'CONCEPT'];

/** Entities of the novel with `asOf`: their state as of chapter `seq` (or null). */
async function loadEntities(novelId, seq) {
  const seqOf = new Map(state.chapters.map((c) => [c.id, c.seq]));
  const out = [];
  let after = null;
  do {
    const vars = { novelId, after, ...(state.features.stateAt ? { seq } : {}) };
    const { entities } = await gql(Q.entities(state.features), vars);
    for (const { node } of entities.edges) {
      let asOf = null;
      if (state.features.stateAt) {
        asOf = node.stateAt;
      } else {
        // Without Entity.stateAt: the latest recorded state from chapters 1..seq.
        const states = node.states.edges
          .map((e) => e.node)
          .filter((s) => s.chapterId && (seqOf.get(s.chapterId) ?? Infinity) <= seq)
          .sort((a, b) => seqOf.get(a.chapterId) - seqOf.get(b.chapterId) || a.createdAt.localeCompare(b.createdAt));
        asOf = states.at(-1) ?? null;
      }
      out.push({ ...node, asOf });
    }
    after = entities.pageInfo.hasNextPage ? entities.pageInfo.endCursor : null;
  } while (after);
  return out.sort((a, b) => b.importance - a.importance || a.name.localeCompare(b.name));
}

function entityItem(entity, seq) {
  const future = entity.firstChapterSeq !== null && entity.firstChapterSeq > seq;
  const stateText = entity.asOf?.state;
  return h(
    'li',
    { class: `entity${future ? ' future' : ''}`, 'data-entity-id': entity.id },
    h('div', { class: 'entity-head' }, h('strong', {}, entity.name), h('span', { class: 'chip kind' }, entity.kind)),
    entity.aliases.length ? h('p', { class: 'aliases' }, `also: ${entity.aliases.join(', ')}`) : null,
    entity.description ? h('p', { class: 'desc' }, entity.description) : null,
    h(
      'p',
      { class: 'state', 'data-state': stateText ?? '' },
      stateText
        ? [h('span', { class: 'label' }, `As of chapter ${seq}: `), stateText]
        : h('span', { class: 'label' }, future ? `First appears in chapter ${entity.firstChapterSeq}.` : 'No state recorded up to this chapter.'),
    ),
    h(
      'details',
      { class: 'record' },
      h('summary', {}, `Record a change in chapter ${seq}`),
      h(
        'form',
        { class: 'record-state inline', 'data-entity-id': entity.id },
        h('input', { name: 'state', placeholder: 'e.g. wounded, in the city, knows the secret', 'aria-label': `New state of ${entity.name} from chapter ${seq}`, required: true }),
        h('button', { type: 'submit', class: 'small' }, 'Record'),
      ),
    ),
  );
}

function bibleSection(entities, seq) {
  const form = h(
    'form',
    { id: 'new-entity-form', class: 'inline' },
    h('input', { name: 'name', placeholder: 'Name', required: true, 'aria-label': 'Entity name' }),
    h('select', { name: 'kind', 'aria-label': 'Entity kind' }, KINDS.map((k) => h('option', { value: k }, k))),
    h('button', { type: 'submit', class: 'small' }, 'Add'),
  );
  return h(
    'section',
    { id: 'bible', 'aria-labelledby': 'bible-title' },
    h('h2', { id: 'bible-title' }, `Story bible · as of chapter ${seq}`),
    entities.length ? h('ul', { class: 'entities' }, entities.map((e) => entityItem(e, seq))) : h('p', { class: 'empty' }, 'No characters, places or items yet.'),
    form,
  );
}

function hitItem(hit) {
  const where = hit.chapter ? `ch. ${hit.chapter.seq} · ${hit.chapter.title}` : hit.chapterSeq !== null ? `ch. ${hit.chapterSeq}` : '';
  return h(
    'li',
    { class: 'hit' },
    h('div', { class: 'hit-head' }, h('span', { class: 'chip kind' }, hit.kind), h('span', { class: 'meta' }, `${where} · score ${Number(hit.score).toFixed(3)}`)),
    h('p', { class: 'hit-text' }, hit.text),
  );
}

async function contextSection(chapter) {
  const job = state.lastJobs.get(chapter.id);
  const section = h('section', { id: 'context', 'aria-labelledby': 'context-title' }, h('h2', { id: 'context-title' }, 'What the model was given'));
  if (!job) {
    section.append(h('p', { class: 'empty' }, 'Generate the chapter to see the memory its prompt carried.'));
    return section;
  }
  const { generationJob } = await gql(Q.job(state.features), { id: job.id });
  const hits = generationJob.context ?? [];
  section.append(
    h('p', { class: 'meta' }, `${generationJob.kind} job · ${generationJob.status}${generationJob.model ? ` · ${generationJob.model}` : ''} · ${hits.length} passages`),
    hits.length ? h('ol', { class: 'hits' }, hits.map(hitItem)) : h('p', { class: 'empty' }, 'Nothing from earlier chapters (the first chapter, or nothing relevant yet).'),
  );
  return section;
}

/** The continuity issues of the open chapter (`issues`: from the stream or the report). */
export function issuesSection(issues, complete) {
  const section = h('section', { id: 'issues', 'aria-labelledby': 'issues-title' }, h('h2', { id: 'issues-title' }, 'Continuity'));
  if (!issues) {
    section.append(h('p', { class: 'empty' }, 'Not checked yet.'));
    return section;
  }
  section.append(
    h('p', { class: 'meta' }, `${issues.length} issue${issues.length === 1 ? '' : 's'}${complete === false ? ' so far (checking…)' : ''}`),
    h(
      'ol',
      { class: 'issues' },
      issues.map((issue) =>
        h(
          'li',
          { class: `issue-item sev-${String(issue.severity).toLowerCase()}`, 'data-issue-id': issueKey(issue) },
          h(
            'button',
            { type: 'button', class: 'link', onclick: () => focusIssue(issueKey(issue)) },
            h('span', { class: 'chip' }, issue.severity),
            ' ',
            h('span', { class: 'chip kind' }, issue.kind),
            ' ',
            issue.message,
          ),
          issue.span?.text ? h('blockquote', {}, issue.span.text) : null,
          issue.suggestion ? h('p', { class: 'suggestion' }, `Suggestion: ${issue.suggestion}`) : null,
          issue.evidence?.length ? h('details', {}, h('summary', {}, `Evidence (${issue.evidence.length})`), h('ol', { class: 'hits' }, issue.evidence.map(hitItem))) : null,
        ),
      ),
    ),
  );
  return section;
}

function focusIssue(id) {
  const mark = document.querySelector(`#chapter-text mark[data-issue-id="${CSS.escape(id)}"]`);
  if (!mark) return;
  mark.scrollIntoView({ block: 'center' });
  mark.classList.add('flash');
  setTimeout(() => mark.classList.remove('flash'), 1200);
}

function memorySection(progress) {
  return h(
    'p',
    { id: 'memory', class: 'meta' },
    `Story memory: ${progress.indexedChapters} chapters indexed · ${progress.pendingChapters} pending · ${progress.failedChapters} failed`,
  );
}

/** Draws the side panel for the open chapter. */
export async function renderSide() {
  const side = $('#side');
  const chapter = state.chapter;
  if (!chapter || !state.novel) {
    side.replaceChildren();
    return;
  }
  const parts = [];
  try {
    if (state.features.memoryProgress && state.novel.memoryProgress) parts.push(memorySection(state.novel.memoryProgress));
    parts.push(bibleSection(await loadEntities(state.novel.id, chapter.seq), chapter.seq));
    if (state.features.validation || state.features.streamIssues) parts.push(issuesSection(chapter.validation?.issues ?? null, chapter.validation?.complete));
    if (state.features.context) parts.push(await contextSection(chapter));
  } catch (e) {
    noticeError('Cannot load the story bible', e);
  }
  if (state.chapter?.id !== chapter.id) return;
  side.replaceChildren(...parts);
}

/** Wires the side panel's forms (delegated: the panel is redrawn often). */
export function wireSide() {
  const side = $('#side');
  side.addEventListener('submit', async (event) => {
    const form = event.target;
    event.preventDefault();
    const fd = new FormData(form);
    try {
      if (form.id === 'new-entity-form') {
        await gql(Q.CREATE_ENTITY, {
          input: { novelId: state.novel.id, name: String(fd.get('name')).trim(), kind: String(fd.get('kind')) },
        });
        notice('Added to the story bible.', 'ok');
      } else if (form.classList.contains('record-state')) {
        await gql(Q.RECORD_STATE, {
          input: { entityId: form.dataset.entityId, chapterId: state.chapter.id, state: String(fd.get('state')).trim() },
        });
        notice(`State recorded as of chapter ${state.chapter.seq}.`, 'ok');
      } else {
        return;
      }
    } catch (e) {
      noticeError('Cannot update the story bible', e);
      return;
    }
    renderSide();
  });
  // Issues that arrive while a chapter is written.
  document.addEventListener('zn:issues', (event) => {
    if (event.detail.chapterId !== state.chapter?.id) return;
    $('#issues')?.replaceWith(issuesSection(event.detail.issues, false));
  });
}
