// The client both pages use: the API key kept in the browser, GraphQL over HTTP (POST
// /graphql with the key in `Authorization`), and subscriptions over graphql-transport-ws
// (the key in `connection_init`). Every failure becomes an `ApiError` with a stable code:
// the server's `extensions.code`, or NETWORK / DISCONNECTED / BAD_RESPONSE for what happens
// before the server can answer.

import { createClient } from 'graphql-ws';

/** Where the API is: the page's own origin, so a proxy or an Ingress in front needs no setting. */
export const GRAPHQL_PATH = '/graphql';

const KEY_STORAGE = 'znovel.apiKey';

/** The API key kept in this browser, or null. */
export function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

/** Keeps `key` in this browser (null forgets it). */
export function storeKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage disabled: the key lives as long as the page.
  }
  memoryKey = key;
  resetSocket();
}

let memoryKey = null;
const currentKey = () => storedKey() ?? memoryKey;

/** The `Authorization` header value for the current key. */
export const authorization = (key = currentKey()) => `Bearer ${key ?? ''}`;

/** A failed API call: `code` is the server's `extensions.code` or a client-side code. */
export class ApiError extends Error {
  constructor(message, code, errors = []) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.errors = errors;
  }

  /** Whether the credential was missing or refused. */
  get isAuth() {
    return this.code === 'UNAUTHENTICATED';
  }

  /** Whether the connection broke (the call may succeed again). */
  get isConnection() {
    return this.code === 'NETWORK' || this.code === 'DISCONNECTED';
  }
}

const authListeners = new Set();

/** Calls `fn(error)` whenever the server refuses the key (HTTP 401, WebSocket 4403). */
export function onAuthFailure(fn) {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}

function reportAuth(error) {
  if (error.isAuth) for (const fn of authListeners) fn(error);
  return error;
}

/**
 * POSTs a GraphQL request and returns the server's whole response body (`data`, `errors`)
 * with its HTTP status; throws an `ApiError` only when no GraphQL response came back.
 * A 401 is reported to `onAuthFailure` listeners unless `quiet` (the key check itself).
 */
export async function postGraphQL(params, { headers = {}, signal, quiet = false } = {}) {
  let res;
  try {
    res = await fetch(GRAPHQL_PATH, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json;q=0.9',
        authorization: authorization(),
        ...headers,
      },
      body: JSON.stringify(params),
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`cannot reach the server (${e.message})`, 'NETWORK');
  }
  let body;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`the server answered HTTP ${res.status} without a GraphQL response`, 'BAD_RESPONSE');
  }
  if (res.status === 401 && !quiet) {
    const first = body.errors?.[0];
    reportAuth(new ApiError(first?.message ?? 'the API key was refused', 'UNAUTHENTICATED', body.errors));
  }
  return { status: res.status, body };
}

/** Runs a query or mutation; returns its `data`, or throws an `ApiError` for any error. */
export async function gql(query, variables = {}, options = {}) {
  const { status, body } = await postGraphQL({ query, variables }, options);
  if (body.errors?.length) {
    const first = body.errors[0];
    const code = first.extensions?.code ?? (status === 401 ? 'UNAUTHENTICATED' : 'ERROR');
    throw new ApiError(first.message, code, body.errors);
  }
  if (!body.data) throw new ApiError(`the server answered HTTP ${status} without data`, 'BAD_RESPONSE');
  return body.data;
}

let socket = null;

function resetSocket() {
  socket?.dispose();
  socket = null;
}

/** The WebSocket URL of the API on this page's origin. */
export function websocketUrl() {
  const url = new URL(GRAPHQL_PATH, location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

const socketListeners = new Set();

/** Calls `fn(state)` on WebSocket changes: 'connecting', 'connected', 'closed'. */
export function onSocketState(fn) {
  socketListeners.add(fn);
  return () => socketListeners.delete(fn);
}

const emitSocket = (state) => {
  for (const fn of socketListeners) fn(state);
};

/**
 * The page's one graphql-transport-ws client. It does not retry by itself: a dropped
 * connection fails every running subscription with a DISCONNECTED error, and whoever
 * follows a stream resubscribes where it stopped (`after`), which a blind retry cannot.
 */
function client() {
  if (!socket) {
    socket = createClient({
      url: websocketUrl(),
      connectionParams: () => ({ Authorization: authorization() }),
      lazy: true,
      retryAttempts: 0,
      keepAlive: 10_000,
      on: {
        connecting: () => emitSocket('connecting'),
        connected: () => emitSocket('connected'),
        closed: () => emitSocket('closed'),
      },
    });
  }
  return socket;
}

/** Turns whatever graphql-ws reports (a close event, GraphQL errors) into an `ApiError`. */
export function toApiError(err) {
  if (err instanceof ApiError) return err;
  if (Array.isArray(err)) {
    const first = err[0] ?? {};
    return new ApiError(first.message ?? 'subscription failed', first.extensions?.code ?? 'ERROR', err);
  }
  if (err && typeof err.code === 'number') {
    const reason = err.reason ? `: ${err.reason}` : '';
    if (err.code === 4403 || err.code === 4401) {
      return reportAuth(new ApiError(`the server refused the API key${reason}`, 'UNAUTHENTICATED'));
    }
    if (err.code >= 4400 && err.code < 4500) {
      return new ApiError(`the server closed the connection (${err.code}${reason})`, 'BAD_REQUEST');
    }
    return new ApiError(`the connection was lost (${err.code}${reason})`, 'DISCONNECTED');
  }
  if (err instanceof Event) return new ApiError('the connection was lost', 'DISCONNECTED');
  return new ApiError(err?.message ?? String(err), 'ERROR');
}

/**
 * Subscribes over WebSocket; yields each result's `data`. A result with errors, a refused
 * key or a dropped connection throws an `ApiError`; aborting `signal` ends it quietly.
 */
export async function* subscribe(query, variables = {}, { signal } = {}) {
  const iterator = client().iterate({ query, variables });
  const stop = () => iterator.return?.();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    while (true) {
      let step;
      try {
        step = await iterator.next();
      } catch (e) {
        throw toApiError(e);
      }
      if (step.done) return;
      const result = step.value;
      if (result.errors?.length) throw toApiError(result.errors);
      yield result.data;
    }
  } finally {
    signal?.removeEventListener('abort', stop);
    await iterator.return?.();
  }
}

/** Raw results (errors included) of one operation over WebSocket, for GraphiQL. */
export function iterateRaw(params) {
  return client().iterate(params);
}

/** The signed-in identity: who the key belongs to. */
export const VIEWER_QUERY = /* GraphQL */ `
  query Viewer {
    viewer {
      role
      user { displayName email }
      tenant { name slug }
    }
  }
`;
