// The writing room's state, shared by its parts, and the status line under the top bar.

import { describe } from '../shared/key-gate.js';

/**
 * The job kinds that write a chapter's text. Other jobs of a chapter (the memory job that
 * remembers it after every change, later ones) are not generation: the room neither follows
 * them live nor shows them as the chapter's job.
 */
export const WRITING_KINDS = ['DRAFT', 'CONTINUE', 'REWRITE', 'POLISH'];

/** Whether `job` writes text (a job whose kind is not known yet counts as writing). */
export const isWriting = (job) => !job.kind || WRITING_KINDS.includes(job.kind);

/**
 * A continuity issue's identity on this page (issues have no id in the API): its kind,
 * where it is and what it says.
 */
export const issueKey = (issue) => [issue.kind, issue.span?.start, issue.span?.end, issue.message].join(':');

/** What the page shows now. */
export const state = {
  /** The detected optional API features (features.js). */
  features: {},
  /** Every novel of the tenant: `{ id title language … }`. */
  novels: [],
  /** The open novel, with `memoryProgress` when the API has it. */
  novel: null,
  /** Its volumes and chapters (chapters without content), in order. */
  volumes: [],
  chapters: [],
  /** The open chapter, with its content. */
  chapter: null,
  /** The live job per chapter id: `{ id, status }` while QUEUED or RUNNING. */
  activeJobs: new Map(),
  /** The latest job per chapter id seen on this page (for "what the model was given"). */
  lastJobs: new Map(),
};

let noticeTimer = null;

/**
 * Shows a message in the status line: `kind` is 'info', 'ok' or 'error' (an error stays
 * until the next message; the others fade after a while).
 */
export function notice(message, kind = 'info') {
  const el = document.getElementById('notice');
  clearTimeout(noticeTimer);
  el.textContent = message;
  el.className = `notice ${kind}`;
  el.hidden = false;
  if (kind !== 'error') noticeTimer = setTimeout(() => (el.hidden = true), 6000);
}

/** Shows an API error (with its code) in the status line, prefixed with what failed. */
export function noticeError(what, error) {
  notice(`${what}: ${describe(error)}`, 'error');
}

/** The chapter in the list with this id. */
export const chapterById = (id) => state.chapters.find((c) => c.id === id) ?? null;
