// How clients may connect, checked where the router and the all-in-one server differ by
// design (docs/operations.md, "The gateway"): the credential in `connection_init` as
// `X-Api-Key` works everywhere, while the forms only the all-in-one server understands (an
// `apiKey` field) and the legacy `graphql-ws` subprotocol (subscriptions-transport-ws) are
// recorded per deployment and asserted to be refused by Hive Router.

import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { followWs } from '../lib/client.mjs';

const VIEWER = `subscription($j: ID!) { chapterStream(jobId: $j, after: 0) { __typename } }`;

/** Whether a legacy `graphql-ws` (subscriptions-transport-ws) client gets a connection_ack. */
function legacyProtocolAck(wsUrl, key) {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, 'graphql-ws');
    const done = (result) => {
      clearTimeout(timer);
      ws.terminate();
      resolve(result);
    };
    const timer = setTimeout(() => done({ acked: false, closed: 'no answer within 5 s' }), 5_000);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${key}` } })));
    ws.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      if (msg.type === 'connection_ack') done({ acked: true });
    });
    ws.on('close', (code) => done({ acked: false, closed: code }));
    ws.on('error', (e) => done({ acked: false, closed: e.message }));
  });
}

/** The final event type of a `chapterStream` with `params` in connection_init, or the error codes. */
async function streamWith(endpoint, params, jobId) {
  const r = await followWs(endpoint.ws, params, VIEWER, { j: jobId }, { timeoutMs: 10_000 });
  return {
    last: r.events.at(-1)?.data?.chapterStream?.__typename ?? null,
    errors: r.errors.map((e) => e.extensions?.code ?? e.extensions?.closeCode ?? e.message),
  };
}

export default {
  name: 'transports',
  subgraph: null,

  async run(ctx) {
    const { endpoint, key, state } = ctx;
    return {
      xApiKeyInConnectionInit: await streamWith(endpoint, { 'X-Api-Key': key }, state.job.id),
      deploymentSpecific: {
        apiKeyFieldInConnectionInit: await streamWith(endpoint, { apiKey: key }, state.job.id),
        legacyGraphqlWs: await legacyProtocolAck(endpoint.ws, key),
      },
    };
  },

  verify(t, ctx) {
    assert.deepEqual(t.xApiKeyInConnectionInit, { last: 'ChapterCompleted', errors: [] }, 'X-Api-Key in connection_init');
    const specific = t.deploymentSpecific;
    if (ctx.kind === 'all-in-one') {
      assert.deepEqual(specific.apiKeyFieldInConnectionInit, { last: 'ChapterCompleted', errors: [] }, JSON.stringify(specific));
      assert.equal(specific.legacyGraphqlWs.acked, true, JSON.stringify(specific));
    }
    if (ctx.kind === 'router') {
      assert.deepEqual(specific.apiKeyFieldInConnectionInit.errors, ['UNAUTHENTICATED'], JSON.stringify(specific));
      assert.equal(specific.legacyGraphqlWs.acked, false, JSON.stringify(specific));
    }
  },
};
