// Credentials through the gateway, as every subgraph checks them: an API key as
// `Authorization: Bearer` or `X-Api-Key`, a signed JWT on HTTP and in `connection_init`,
// roles (a VIEWER's key may read, not write: FORBIDDEN), and every missing or wrong
// credential refused with UNAUTHENTICATED at once — over HTTP, WebSocket and SSE.

import assert from 'node:assert/strict';
import { failure, followSse, followWs, httpClient, signJwt, uuidOf } from '../lib/client.mjs';
import { chapterEvents, STREAM } from './story-gen.mjs';

const VIEWER = `{ viewer { role user { email } tenant { name } } }`;
const CREATE_NOVEL = `mutation { createNovel(input: { title: "Not allowed" }) { novel { id } } }`;

export default {
  name: 'auth',
  subgraph: null,

  async run(ctx) {
    const { endpoint, state, jwtSecret } = ctx;
    const as = (auth) => httpClient(endpoint.http, auth);
    const claims = { sub: uuidOf(state.viewer.user.id), tid: uuidOf(state.viewer.tenant.id) };
    const jwt = signJwt(claims, jwtSecret);
    const job = { j: state.job.id, after: 0 };

    const jwtStream = await followWs(endpoint.ws, { Authorization: `Bearer ${jwt}` }, STREAM, job);
    const wrongWs = await followWs(endpoint.ws, { Authorization: 'Bearer znk_not-a-key' }, STREAM, job, { timeoutMs: 3_000 });
    const anonymousSse = await followSse(endpoint.http, {}, STREAM, job, { timeoutMs: 3_000 });
    return {
      apiKeyHeader: await as({ apiKey: ctx.key })(VIEWER),
      jwt: await as({ bearer: jwt })(VIEWER),
      jwtStream: { errors: jwtStream.errors, ...chapterEvents(jwtStream.events) },
      reader: await as({ bearer: state.readerKey })(VIEWER),
      readerWrites: failure(await as({ bearer: state.readerKey })(CREATE_NOVEL)),
      refused: {
        anonymous: failure(await as({})(VIEWER)),
        wrongKey: failure(await as({ bearer: 'znk_not-a-key' })(VIEWER)),
        wrongApiKeyHeader: failure(await as({ apiKey: 'znk_not-a-key' })(VIEWER)),
        expiredJwt: failure(await as({ bearer: signJwt(claims, jwtSecret, -3_600) })(VIEWER)),
        forgedJwt: failure(await as({ bearer: signJwt(claims, 'not-the-secret') })(VIEWER)),
        anonymousSse: { events: anonymousSse.events.length, codes: anonymousSse.errors.map((e) => e.extensions?.code) },
      },
      // How a refused WebSocket ends differs by design: the all-in-one server closes the
      // connection (4403); a subgraph fails the operation (a router would retry a close).
      deploymentSpecific: {
        wrongKeySubscription: { events: wrongWs.events.length, timedOut: wrongWs.timedOut, errors: wrongWs.errors },
      },
    };
  },

  verify(t, ctx) {
    assert.equal(t.apiKeyHeader.data?.viewer?.role, 'ADMIN', `X-Api-Key: ${JSON.stringify(t.apiKeyHeader)}`);
    assert.equal(t.jwt.data?.viewer?.user?.email, 'admin@e2e.example', `JWT: ${JSON.stringify(t.jwt)}`);
    assert.deepEqual(t.jwtStream.errors, [], 'a JWT in connection_init is accepted');
    assert.equal(t.jwtStream.final[0]?.__typename, 'ChapterCompleted', `chapterStream with a JWT: ${JSON.stringify(t.jwtStream)}`);
    assert.equal(t.reader.data?.viewer?.role, 'VIEWER');
    assert.equal(t.readerWrites.errors[0]?.code, 'FORBIDDEN', JSON.stringify(t.readerWrites));
    for (const [what, refused] of Object.entries(t.refused)) {
      if (what === 'anonymousSse') continue;
      assert.equal(refused.errors[0]?.code, 'UNAUTHENTICATED', `${what}: ${JSON.stringify(refused)}`);
    }
    assert.equal(t.refused.anonymousSse.events, 0, 'an anonymous SSE subscription gets no event');
    assert.deepEqual(t.refused.anonymousSse.codes, ['UNAUTHENTICATED'], JSON.stringify(t.refused.anonymousSse));
    const ws = t.deploymentSpecific.wrongKeySubscription;
    assert.equal(ws.events, 0, 'a subscription with a wrong key gets no event');
    assert.ok(!ws.timedOut && ws.errors.length > 0, `${ctx.label} refuses a wrong-key subscription at once: ${JSON.stringify(ws)}`);
    if (ctx.kind === 'all-in-one') {
      assert.equal(ws.errors[0]?.extensions?.closeCode, 4403, JSON.stringify(ws));
    } else {
      assert.equal(ws.errors[0]?.extensions?.code, 'UNAUTHENTICATED', JSON.stringify(ws));
    }
  },
};
