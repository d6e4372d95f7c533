// A tiny DOM builder: every text goes in as a text node, so nothing the API returns is
// ever parsed as HTML.

/**
 * `h('button', { class: 'x', onclick: fn, disabled: true, 'data-id': id }, 'text', child)`.
 * `false`/`null` attribute values are left out; `true` sets an empty attribute.
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** The first element matching `selector`. */
export const $ = (selector, root = document) => root.querySelector(selector);

/** "12:04:31" for an RFC 3339 time. */
export function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Milliseconds as "420 ms" or "3.2 s". */
export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** An idempotency key for one click (works without a secure context, unlike randomUUID). */
export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** Whether the language is written without spaces between words (counted in characters). */
export const isCjkLanguage = (lang) => /^(zh|ja|ko)/i.test(lang ?? '');
