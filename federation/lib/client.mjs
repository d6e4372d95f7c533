// A GraphQL client as the suite's users would write one: queries and mutations over HTTP
// (credential in `Authorization: Bearer`, or `X-Api-Key`), subscriptions over
// graphql-transport-ws (credential in the `connection_init` payload) and over SSE
// (graphql-sse "distinct connections" mode: POST with `Accept: text/event-stream`), and
// HS256 JWTs signed like an identity provider would.

import { createHmac } from 'node:crypto';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

/** An endpoint: `{ http, ws }` URLs of one GraphQL server or router. */
export function endpointOf(httpUrl) {
  return { http: httpUrl, ws: httpUrl.replace(/^http/, 'ws') };
}

/**
 * A GraphQL-over-HTTP client of `httpUrl`. `auth`: `{ bearer }` (an API key or a JWT),
 * `{ apiKey }` (sent as `X-Api-Key`), or nothing (anonymous). The client resolves with the
 * parsed body; a body that is not JSON throws with the status and text.
 */
export function httpClient(httpUrl, auth = {}) {
  return async (query, variables = {}) => {
    const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
    if (auth.bearer) headers.authorization = `Bearer ${auth.bearer}`;
    if (auth.apiKey) headers['x-api-key'] = auth.apiKey;
    const res = await fetch(httpUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${httpUrl}: HTTP ${res.status}, not JSON: ${text.slice(0, 500)}`);
    }
  };
}

/** `data` of a response, or an error quoting the whole response. */
export function data(body, what) {
  if (body.errors?.length || !body.data) {
    throw new Error(`${what} failed: ${JSON.stringify(body, null, 2)}`);
  }
  return body.data;
}

/**
 * What a client sees of a failed operation: each error's message, `extensions.code` and
 * `extensions.field` (what the API documents), the data beside it.
 */
export function failure(body) {
  return {
    data: body.data ?? null,
    errors: (body.errors ?? []).map((e) => ({
      message: e.message,
      code: e.extensions?.code ?? null,
      field: e.extensions?.field ?? null,
    })),
  };
}

/**
 * Subscribes over graphql-transport-ws with `connectionParams` and collects every result
 * until completion, an error, or `timeoutMs` (then `timedOut` is set). Each event is
 * `{ at, data }`, `at` in ms since the subscription started. `onEvent(data)` may return
 * true to stop early.
 */
export async function followWs(wsUrl, connectionParams, query, variables, { timeoutMs = 60_000, onEvent } = {}) {
  const ws = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams, retryAttempts: 0, lazy: true });
  const events = [];
  const errors = [];
  let timedOut = false;
  const started = performance.now();
  try {
    const iterate = (async () => {
      for await (const result of ws.iterate({ query, variables })) {
        if (result.errors) errors.push(...result.errors);
        if (result.data) {
          events.push({ at: performance.now() - started, data: result.data });
          if (onEvent?.(result.data)) break;
        }
      }
    })();
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, timeoutMs);
    });
    try {
      await Promise.race([iterate, timeout]);
    } finally {
      clearTimeout(timer);
    }
  } catch (e) {
    // A rejected connection or a protocol error: reported like a GraphQL error.
    errors.push({ message: e?.message ?? e?.reason ?? String(e), extensions: { closeCode: e?.code } });
  } finally {
    await ws.dispose();
  }
  return { events, errors, timedOut };
}

/**
 * Subscribes over Server-Sent Events (graphql-sse, distinct connections): POST with
 * `Accept: text/event-stream`, then `event: next` per result until `event: complete`.
 * Same result shape as [`followWs`]; `complete` tells whether the stream said so.
 */
export async function followSse(httpUrl, auth, query, variables, { timeoutMs = 60_000 } = {}) {
  const headers = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (auth.bearer) headers.authorization = `Bearer ${auth.bearer}`;
  if (auth.apiKey) headers['x-api-key'] = auth.apiKey;
  const events = [];
  const errors = [];
  let complete = false;
  let timedOut = false;
  const started = performance.now();
  const abort = new AbortController();
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, timeoutMs);
  try {
    const res = await fetch(httpUrl, { method: 'POST', headers, body: JSON.stringify({ query, variables }), signal: abort.signal });
    const type = res.headers.get('content-type') ?? '';
    if (!type.startsWith('text/event-stream')) {
      const text = await res.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = { errors: [{ message: `HTTP ${res.status} ${type}: ${text.slice(0, 300)}` }] };
      }
      errors.push(...(body.errors ?? [{ message: `HTTP ${res.status} without an event stream` }]));
      return { events, errors, complete, timedOut, status: res.status };
    }
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const bytes of res.body) {
      buffer += decoder.decode(bytes, { stream: true }).replace(/\r\n/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = { event: 'message', data: [] };
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue; // a comment: the keep-alive
          const at = line.indexOf(':');
          const name = at < 0 ? line : line.slice(0, at);
          const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
          if (name === 'event') fields.event = value;
          if (name === 'data') fields.data.push(value);
        }
        if (fields.event === 'complete') {
          complete = true;
          abort.abort();
          return { events, errors, complete, timedOut, status: res.status };
        }
        if (fields.event === 'next' && fields.data.length) {
          const result = JSON.parse(fields.data.join('\n'));
          if (result.errors) errors.push(...result.errors);
          if (result.data) events.push({ at: performance.now() - started, data: result.data });
        }
      }
    }
    return { events, errors, complete, timedOut, status: res.status };
  } catch (e) {
    if (!complete && !timedOut) errors.push({ message: `SSE: ${e.message}` });
    return { events, errors, complete, timedOut };
  } finally {
    clearTimeout(timer);
  }
}

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** An HS256 JWT with `claims` (plus `iat`, and `exp` `ttlSeconds` from now) signed with `secret`. */
export function signJwt(claims, secret, ttlSeconds = 600) {
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ iat: now, exp: now + ttlSeconds, ...claims })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** The UUID inside a global ID (`base64url("<Type>:<uuid>")`). */
export function uuidOf(globalId) {
  return Buffer.from(globalId, 'base64url').toString('utf8').split(':')[1];
}

/** A well-formed global ID of `type` that names nothing. */
export function missingId(type) {
  return Buffer.from(`${type}:00000000-0000-7000-8000-000000000000`).toString('base64url');
}
