// The rag-retrieval subgraph through the gateway: `recall` finds the passage of the chapter
// the job-worker wrote (once its memory job indexed it), quoted exactly with its offsets,
// its `chapter` completed from story-gen; the story-time filter and bad input hold.

import assert from 'node:assert/strict';
import { data, failure } from '../lib/client.mjs';
import { TEXT } from '../lib/fake-llm.mjs';

const RECALL = `query($n: ID!, $q: String!, $b: Int, $f: Int) {
  recall(novelId: $n, query: $q, beforeChapter: $b, first: $f, mode: KEYWORD) {
    hits { text kind chapterSeq startOffset endOffset chapter { id seq title } }
  }
}`;

export default {
  name: 'rag-retrieval',
  subgraph: 'rag-retrieval',

  async run(ctx) {
    const { gql } = ctx;
    const n = ctx.state.novel.id;
    // The memory job runs after the chapter is stored: wait until its passages are found.
    let hits = [];
    for (let i = 0; i < 300 && hits.length === 0; i++) {
      hits = data(await gql(RECALL, { n, q: 'sealed letter', f: 1 }), 'recall').recall.hits;
      if (hits.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    return {
      hits,
      beforeFirst: data(await gql(RECALL, { n, q: 'sealed letter', b: 1 }), 'recall').recall.hits,
      tooMany: failure(await gql(RECALL, { n, q: 'sealed letter', f: 51 })),
    };
  },

  verify(t, ctx) {
    assert.equal(t.hits.length, 1, JSON.stringify(t.hits));
    const [hit] = t.hits;
    assert.equal(hit.kind, 'PASSAGE');
    assert.equal(hit.chapterSeq, 1);
    assert.equal(hit.chapter.seq, 1);
    assert.equal(hit.chapter.id, ctx.state.chapter.id);
    assert.equal([...TEXT].slice(hit.startOffset, hit.endOffset).join(''), hit.text);
    assert.ok(hit.text.includes('sealed letter'), hit.text);
    assert.deepEqual(t.beforeFirst, [], 'nothing is known before chapter 1');
    assert.equal(t.tooMany.errors[0]?.code, 'BAD_USER_INPUT', JSON.stringify(t.tooMany));
    assert.equal(t.tooMany.errors[0]?.field, 'first', JSON.stringify(t.tooMany));
  },
};
