// The validator subgraph through the gateway: in a story whose chapter 1 kills Ned Stark,
// `checkDraft` flags a draft where he speaks (the issue's code, span and evidence, the
// evidence's chapter completed from story-gen); `validateChapter` stores the report of a
// chapter where he speaks again, and `Chapter.validation` (the validator's field of the
// `Chapter` entity) comes back beside the chapter's title (story-gen's); a wrong credential
// and bad input are refused with their codes.

import assert from 'node:assert/strict';
import { data, failure, httpClient, missingId } from '../lib/client.mjs';

const CREATE_NOVEL = `mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }`;
const CREATE_ENTITY = `mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id } } }`;
const CREATE_CHAPTER = `mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id seq title } } }`;
const RECORD_STATE = `mutation($i: RecordEntityStateInput!) { recordEntityState(input: $i) { entityState { id } } }`;
const ISSUE = `id kind severity source message suggestion span { start end text }
  evidence { kind text chapterSeq chapter { id seq title } }`;
const CHECK = `query($i: CheckDraftInput!) { checkDraft(input: $i) { complete issues { ${ISSUE} } } }`;
const VALIDATE = `mutation($i: ValidateChapterInput!) { validateChapter(input: $i) {
  chapter { id title version } report { complete issues { ${ISSUE} } }
} }`;
const CHAPTER = `query($c: ID!) { chapter(id: $c) { id title seq validation { complete issues { ${ISSUE} } } } }`;

const CH1 = 'The sword fell at the Sept. The crowd roared, and Ned Stark was dead before the bells stopped.';
const CH2 = 'Snow covered the yard. Ned Stark smiled and poured the wine for his guests.';
/** A draft in which the dead man speaks, named by his alias after a Chinese line (offsets are code points). */
export const DRAFT = '雪落了。“Winter is coming,” said Lord Stark.';

/** The characters `start..end` (code points) of `text`. */
const slice = (text, start, end) => [...text].slice(start, end).join('');

export default {
  name: 'validator',
  subgraph: 'validator',

  async run(ctx) {
    const { gql, endpoint } = ctx;
    const novel = data(await gql(CREATE_NOVEL, { i: { title: 'Winter', genre: 'fantasy' } }), 'createNovel').createNovel.novel;
    const ned = data(
      await gql(CREATE_ENTITY, { i: { novelId: novel.id, name: 'Ned Stark', kind: 'CHARACTER', aliases: ['Lord Stark'] } }),
      'createEntity',
    ).createEntity.entity;
    const one = data(await gql(CREATE_CHAPTER, { i: { novelId: novel.id, seq: 1, title: 'The Sept', content: CH1 } }), 'createChapter')
      .createChapter.chapter;
    data(await gql(RECORD_STATE, { i: { entityId: ned.id, chapterId: one.id, state: 'beheaded', vital: 'DEAD' } }), 'recordEntityState');
    const two = data(await gql(CREATE_CHAPTER, { i: { novelId: novel.id, seq: 2, title: 'Ghost', content: CH2 } }), 'createChapter')
      .createChapter.chapter;
    ctx.state.validated = { novel, one, two };

    const check = (text, asOfChapter) => gql(CHECK, { i: { novelId: novel.id, text, asOfChapter } });
    return {
      draft: data(await check(DRAFT, 1), 'checkDraft').checkDraft,
      beforeDeath: data(await check(DRAFT, 0), 'checkDraft as of chapter 0').checkDraft,
      validated: data(await gql(VALIDATE, { i: { chapterId: two.id } }), 'validateChapter').validateChapter,
      chapter: data(await gql(CHAPTER, { c: two.id }), 'chapter with its validation').chapter,
      refused: {
        wrongKey: failure(await httpClient(endpoint.http, { bearer: 'znk_not-a-key' })(CHECK, { i: { novelId: novel.id, text: DRAFT, asOfChapter: 1 } })),
        malformedChapterId: failure(await gql(VALIDATE, { i: { chapterId: 'nope' } })),
        missingChapter: failure(await gql(VALIDATE, { i: { chapterId: missingId('Chapter') } })),
        lateAsOf: failure(await check(DRAFT, 9)),
        blankDraft: failure(await check('   ', 1)),
      },
    };
  },

  verify(t, ctx) {
    const { one, two } = ctx.state.validated;
    // The dead man speaks: one ERROR of the rules, quoting his alias, with the record of his
    // death (chapter 1, completed from story-gen) as evidence.
    assert.equal(t.draft.complete, true);
    assert.equal(t.draft.issues.length, 1, JSON.stringify(t.draft));
    const [issue] = t.draft.issues;
    assert.equal(issue.kind, 'DEAD_CHARACTER', JSON.stringify(issue));
    assert.equal(issue.severity, 'ERROR');
    assert.equal(issue.source, 'RULE');
    assert.ok(issue.id, 'the issue has its stable id');
    assert.deepEqual(issue.span, { start: 29, end: 39, text: 'Lord Stark' });
    assert.equal(slice(DRAFT, issue.span.start, issue.span.end), 'Lord Stark');
    assert.ok(issue.evidence.length > 0, JSON.stringify(issue));
    const evidence = issue.evidence[0];
    assert.equal(evidence.kind, 'ENTITY_STATE', JSON.stringify(evidence));
    assert.equal(evidence.chapterSeq, 1);
    assert.deepEqual(evidence.chapter, { id: one.id, seq: 1, title: 'The Sept' });
    assert.deepEqual(t.beforeDeath.issues, [], 'as of chapter 0 he is alive');

    // validateChapter: the report, its chapter completed from story-gen; then the chapter's
    // title (story-gen) and validation (validator) in one query.
    assert.deepEqual(t.validated.chapter, { id: two.id, title: 'Ghost', version: 1 });
    const stored = t.validated.report.issues;
    assert.equal(stored[0]?.kind, 'DEAD_CHARACTER', JSON.stringify(t.validated));
    assert.deepEqual(stored[0].span, { start: 23, end: 32, text: 'Ned Stark' });
    assert.equal(slice(CH2, stored[0].span.start, stored[0].span.end), 'Ned Stark');
    assert.equal(t.chapter.id, two.id);
    assert.equal(t.chapter.title, 'Ghost');
    assert.deepEqual(t.chapter.validation, t.validated.report, 'Chapter.validation is the stored report');

    assert.equal(t.refused.wrongKey.errors[0]?.code, 'UNAUTHENTICATED', JSON.stringify(t.refused.wrongKey));
    assert.equal(t.refused.malformedChapterId.errors[0]?.code, 'BAD_USER_INPUT', JSON.stringify(t.refused.malformedChapterId));
    assert.equal(t.refused.malformedChapterId.errors[0]?.field, 'chapterId', JSON.stringify(t.refused.malformedChapterId));
    assert.equal(t.refused.missingChapter.errors[0]?.code, 'NOT_FOUND', JSON.stringify(t.refused.missingChapter));
    assert.equal(t.refused.lateAsOf.errors[0]?.code, 'BAD_USER_INPUT', JSON.stringify(t.refused.lateAsOf));
    assert.equal(t.refused.lateAsOf.errors[0]?.field, 'asOfChapter', JSON.stringify(t.refused.lateAsOf));
    assert.equal(t.refused.blankDraft.errors[0]?.code, 'BAD_USER_INPUT', JSON.stringify(t.refused.blankDraft));
  },
};
