// The writing room's text measures against the server's: word counts as domain/src/text.rs
// counts them (its own examples), and spans in Unicode code points — what continuity
// issues give — cut correctly even where a character takes two UTF-16 units.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countWords, segments } from '../src/write/text.js';

test('words are counted like the server counts them', () => {
  assert.equal(countWords("The dragon's hoard, at last."), 5);
  assert.equal(countWords('  well-known   fact '), 2);
  assert.equal(countWords('林黛玉进了贾府。'), 7);
  assert.equal(countWords('Alice 去了 Paris'), 4);
  assert.equal(countWords(''), 0);
  assert.equal(countWords('𠀀𠀁 ok'), 3, 'CJK extension B counts one per character');
});

test('issue spans are code-point offsets, marked without splitting a character', () => {
  const text = '𠀀林黛玉😀进了贾府';
  // Code points: 0 𠀀, 1 林, 2 黛, 3 玉, 4 😀, 5 进, 6 了, 7 贾, 8 府.
  const parts = segments(text, [{ start: 1, end: 4, id: 'a' }, { start: 7, end: 9, id: 'b' }]);
  assert.deepEqual(
    parts.map((p) => [p.text, p.mark?.id ?? null]),
    [
      ['𠀀', null],
      ['林黛玉', 'a'],
      ['😀进了', null],
      ['贾府', 'b'],
    ],
  );
  assert.equal(parts.map((p) => p.text).join(''), text, 'nothing lost or repeated');
});

test('overlapping, unordered and out-of-range spans are clipped, never duplicated', () => {
  const text = 'The storm broke.';
  const parts = segments(text, [
    { start: 10, end: 99, id: 'late' },
    { start: 4, end: 12, id: 'wide' },
    { start: 6, end: 8, id: 'inside' },
    { start: 3, end: 3, id: 'empty' },
  ]);
  assert.equal(parts.map((p) => p.text).join(''), text);
  assert.deepEqual(
    parts.filter((p) => p.mark).map((p) => [p.text, p.mark.id]),
    [
      ['storm br', 'wide'],
      ['oke.', 'late'],
    ],
  );
});
