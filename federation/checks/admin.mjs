// The admin subgraph through the gateway: one query spanning every subgraph (admin's
// `viewer`, `node` and `nodes` answering references that the router completes from
// story-gen and memory, story-gen's `novel`, memory's `entities`), and a VIEWER user with
// an API key of its own, created by the admin mutations, for the authorization checks.

import assert from 'node:assert/strict';
import { data } from '../lib/client.mjs';

const SPANNING = `query($n: ID!, $c: ID!, $e: ID!, $j: ID!) {
  viewer { role user { id email } tenant { id slug name } }
  novel(id: $n) { id title genre chapters(first: 10) { edges { node { id seq title outline } } } }
  entities(novelId: $n) { edges { node { id name kind aliases } } }
  node(id: $c) { __typename id ... on Chapter { title outline novel { title } } }
  nodes(ids: [$n, $e]) { __typename id ... on Novel { title } ... on Entity { name description } }
  job: node(id: $j) { __typename id ... on GenerationJob { status } }
}`;
const CREATE_USER = `mutation($i: CreateUserInput!) { createUser(input: $i) { user { id email role } } }`;
const CREATE_API_KEY = `mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { apiKey { id name } secret } }`;

export default {
  name: 'admin',
  subgraph: 'admin',

  async run(ctx) {
    const { gql, state } = ctx;
    const vars = { n: state.novel.id, c: state.chapter.id, e: state.entity.id, j: state.job.id };
    const spanning = data(await gql(SPANNING, vars), 'the query spanning the subgraphs');
    state.viewer = spanning.viewer;
    const user = data(await gql(CREATE_USER, { i: { email: 'reader@e2e.example', role: 'VIEWER' } }), 'createUser').createUser.user;
    const created = data(await gql(CREATE_API_KEY, { i: { name: 'reader key', userId: user.id } }), 'createApiKey').createApiKey;
    state.readerKey = created.secret;
    return { spanning, reader: { user, apiKey: created.apiKey, secretPrefix: created.secret.slice(0, 4) } };
  },

  verify(t) {
    assert.equal(t.spanning.viewer.role, 'ADMIN');
    assert.equal(t.spanning.node.novel.title, 'The Lighthouse Keeper', 'node(chapter) → Chapter → Novel across subgraphs');
    assert.deepEqual(t.spanning.nodes.map((n) => n.__typename), ['Novel', 'Entity'], 'nodes() resolves a story-gen and a memory object');
    assert.equal(t.spanning.job.__typename, 'GenerationJob', 'node(job) through admin, completed by story-gen');
    assert.equal(t.spanning.job.status, 'SUCCEEDED');
    assert.equal(t.reader.user.role, 'VIEWER');
    assert.equal(t.reader.secretPrefix, 'znk_');
  },
};
