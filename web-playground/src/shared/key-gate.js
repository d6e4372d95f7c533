// The API-key form both pages show before anything else: when no key is kept in the
// browser, when the server refuses the key (401 / WebSocket 4403), or when the server
// cannot be reached. The key is checked with a `viewer` query before the page goes on,
// so a wrong key is a clear message here, never a blank page.

import { ApiError, VIEWER_QUERY, gql, storeKey, storedKey } from './api.js';

const HELP =
  'znovel serve prints the local admin key on its first start and keeps it in ./data/admin.key; ' +
  'znovel apikey create makes more. The key stays in this browser only.';

/** Explains an error to the person at the keyboard. */
export function describe(error) {
  if (!(error instanceof ApiError)) return String(error?.message ?? error);
  switch (error.code) {
    case 'UNAUTHENTICATED':
      return `The server refused this API key (UNAUTHENTICATED): ${error.message}`;
    case 'NETWORK':
      return `Cannot reach the Z-Novel server at ${location.origin}: ${error.message}. Is it running?`;
    default:
      return `${error.message} (${error.code})`;
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

/**
 * Shows the key form (with `message`, if any) until a key the server accepts is entered;
 * resolves with the viewer. The form lives in `#key-gate`.
 */
function askForKey(message, kind) {
  const gate = document.getElementById('key-gate');
  return new Promise((resolve) => {
    const input = el('input', {
      id: 'api-key',
      type: 'password',
      name: 'api-key',
      autocomplete: 'off',
      spellcheck: 'false',
      placeholder: 'znk_…',
      required: '',
    });
    const status = el('p', { id: 'key-message', class: `gate-message ${kind}`, role: 'alert', text: message });
    const button = el('button', { type: 'submit', text: 'Use this key' });
    const form = el(
      'form',
      { class: 'gate-form', 'aria-labelledby': 'key-title' },
      el('h1', { id: 'key-title', text: 'Z-Novel — API key' }),
      status,
      el('label', { for: 'api-key', text: 'API key' }),
      input,
      button,
      el('p', { class: 'gate-help', text: HELP }),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      button.disabled = true;
      status.className = 'gate-message info';
      status.textContent = 'Checking the key…';
      storeKey(key);
      try {
        const { viewer } = await gql(VIEWER_QUERY, {}, { quiet: true });
        gate.hidden = true;
        gate.replaceChildren();
        resolve(viewer);
      } catch (e) {
        if (e instanceof ApiError && e.isAuth) storeKey(null);
        status.className = 'gate-message error';
        status.textContent = describe(e);
        button.disabled = false;
        input.select();
      }
    });
    gate.replaceChildren(form);
    gate.hidden = false;
    input.focus();
  });
}

/**
 * Resolves with the viewer once the browser holds a key the server accepts: the kept key
 * when it works, else whatever the person enters. `reason` is shown first: an error (the
 * page already knows the key failed) or a plain message (the person asked to change it).
 */
export async function signIn(reason) {
  if (typeof reason === 'string') return askForKey(reason, 'info');
  if (reason) return askForKey(describe(reason), 'error');
  if (!storedKey()) {
    return askForKey('Enter an API key to use the API: every request carries it.', 'info');
  }
  try {
    const { viewer } = await gql(VIEWER_QUERY, {}, { quiet: true });
    return viewer;
  } catch (e) {
    if (e instanceof ApiError && e.isAuth) storeKey(null);
    return askForKey(describe(e), 'error');
  }
}

/** "Ada Admin · local (ADMIN)" */
export const viewerLabel = (v) => `${v.user.displayName} · ${v.tenant.name} (${v.role})`;
