// The memory subgraph through the gateway: a character of the story bible created and
// listed for the novel story-gen owns, and a bad input refused with its code and field.

import assert from 'node:assert/strict';
import { data, failure } from '../lib/client.mjs';

const CREATE_ENTITY = `mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id name kind aliases description } } }`;
const ENTITIES = `query($n: ID!) { entities(novelId: $n, kind: CHARACTER) { edges { node { id name aliases } } } }`;

export default {
  name: 'memory',
  subgraph: 'memory',

  async run(ctx) {
    const { gql } = ctx;
    const novelId = ctx.state.novel.id;
    const input = { novelId, name: 'Mara', kind: 'CHARACTER', aliases: ['the keeper'], description: 'Keeps the light.' };
    const entity = data(await gql(CREATE_ENTITY, { i: input }), 'createEntity').createEntity.entity;
    ctx.state.entity = entity;
    return {
      entity,
      listed: data(await gql(ENTITIES, { n: novelId }), 'entities').entities,
      blankName: failure(await gql(CREATE_ENTITY, { i: { ...input, name: '' } })),
    };
  },

  verify(t) {
    assert.deepEqual(t.listed.edges.map((e) => e.node.name), ['Mara']);
    assert.equal(t.blankName.errors[0]?.code, 'BAD_USER_INPUT', JSON.stringify(t.blankName));
    assert.equal(t.blankName.errors[0]?.field, 'name', JSON.stringify(t.blankName));
  },
};
