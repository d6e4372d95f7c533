// The GraphQL-over-HTTP audit (graphql-http's `serverAudits`) against the real `znovel`
// binary, plus the close codes of graphql-transport-ws as a stock graphql-ws client sees
// them. Exits non-zero on any audit error or any unexpected close code; prints every
// warning (docs/operations.md says why each remaining one stays).
//
//   node tests/http-audit/audit.mjs        (the debug binary; ZNOVEL_BIN to pick another)

import { serverAudits } from 'graphql-http';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startServer } from '../../web-playground/tests/lib/server.mjs';

// A refused connection also rejects the client's own connect promise with the close event;
// that close is what the checks below look at.
process.on('unhandledRejection', (reason) => {
  if (typeof reason?.code !== 'number') throw reason;
});

const server = await startServer({ ZNOVEL_WS_INIT_TIMEOUT_SECS: '1' });
let failed = false;
try {
  failed = (await httpAudit(server)) || failed;
  failed = (await closeCodes(server)) || failed;
} finally {
  await server.stop();
}
process.exit(failed ? 1 : 0);

/** Runs every server audit with the admin key on each request; true when one errs. */
async function httpAudit({ url, key }) {
  // The public endpoint refuses a request without a credential (401) before anything
  // else, so the audits carry one: what they check is the protocol, not the auth.
  const fetchFn = (input, init = {}) => {
    const headers = new Headers(init.headers ?? {});
    headers.set('authorization', `Bearer ${key}`);
    return fetch(input, { ...init, headers });
  };
  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  for (const audit of serverAudits({ url: `${url}/graphql`, fetchFn })) {
    const result = await audit.fn();
    counts[result.status] += 1;
    if (result.status !== 'ok') {
      let body = '';
      try {
        body = await result.response.clone().text();
      } catch {
        // the response of some audits is already consumed
      }
      console.log(`${result.status.toUpperCase()} ${audit.id} ${audit.name}: ${result.reason}`);
      if (body) console.log(`    response ${result.response.status}: ${body.slice(0, 300)}`);
    }
  }
  console.log(
    `graphql-http serverAudits: ${counts.ok} ok, ${counts.warn} warnings, ${counts.notice} notices, ${counts.error} errors`,
  );
  return counts.error > 0;
}

/**
 * The close codes of graphql-transport-ws (4409, a duplicate subscription id, is checked
 * with raw frames in api/tests/api/hardening.rs), provoked through a stock graphql-ws client
 * (its hooks changing what it sends where the protocol error needs it); true when one
 * differs.
 */
async function closeCodes({ url, key }) {
  const wsUrl = `${url.replace('http', 'ws')}/graphql`;
  const auth = { Authorization: `Bearer ${key}` };
  const cases = [
    // A message of an unknown type.
    {
      code: 4400,
      what: 'an invalid message',
      options: {
        connectionParams: auth,
        jsonMessageReplacer: (k, v) => (k === 'type' && v === 'subscribe' ? 'subscribe-please' : v),
      },
      ops: 1,
    },
    // A subscribe before connection_init was acknowledged.
    {
      code: 4401,
      what: 'a subscribe before connection_ack',
      options: {
        jsonMessageReplacer: (k, v) =>
          k === '' && v?.type === 'connection_init'
            ? { type: 'subscribe', id: 'early', payload: { query: '{ __typename }' } }
            : v,
      },
      ops: 1,
    },
    // connection_init without a credential.
    { code: 4403, what: 'no credential', options: { connectionParams: {} }, ops: 1 },
    // connection_init never sent (ZNOVEL_WS_INIT_TIMEOUT_SECS=1).
    {
      code: 4408,
      what: 'no connection_init in time',
      options: { connectionParams: () => new Promise(() => {}) },
      ops: 1,
    },
  ];
  let failed = false;
  for (const c of cases) {
    const got = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve('no close within 10 s'), 10_000);
      const client = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: true,
        ...c.options,
        on: {
          closed: (event) => {
            clearTimeout(timer);
            resolve(event?.code);
            client.dispose();
          },
        },
      });
      for (let i = 0; i < c.ops; i++) {
        client.subscribe(c.request ?? { query: '{ __typename }' }, { next() {}, error() {}, complete() {} });
      }
    });
    const ok = got === c.code;
    failed ||= !ok;
    console.log(`${ok ? 'ok' : 'FAILED'} graphql-ws close code for ${c.what}: expected ${c.code}, got ${got}`);
  }
  return failed;
}
