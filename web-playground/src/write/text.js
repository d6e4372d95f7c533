// Text measures the way the server takes them: word counts (every CJK character counts
// as one, every run of other letters or digits as one word — domain/src/text.rs) and
// spans given in Unicode code points (a JavaScript string index counts UTF-16 units).

function isCjk(cp) {
  return (
    (cp >= 0x3040 && cp <= 0x30ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xac00 && cp <= 0xd7af) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x20000 && cp <= 0x2fa1f)
  );
}

const ALNUM = /[\p{L}\p{N}]/u;

/** Words in `text`, counted like the server counts them. */
export function countWords(text) {
  let count = 0;
  let inWord = false;
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (isCjk(cp)) {
      count += 1;
      inWord = false;
    } else if (ALNUM.test(ch) || (inWord && (ch === "'" || ch === '’' || ch === '-'))) {
      if (!inWord) count += 1;
      inWord = true;
    } else {
      inWord = false;
    }
  }
  return count;
}

/**
 * Cuts `text` into plain and marked pieces: `marks` are `{ start, end, ...}` in code
 * points; overlapping or out-of-range marks are clipped. Returns `[{ text, mark? }]`.
 */
export function segments(text, marks) {
  const points = Array.from(text);
  const sorted = marks
    .map((m) => ({ ...m, start: Math.max(0, m.start), end: Math.min(points.length, m.end) }))
    .filter((m) => m.end > m.start)
    .sort((a, b) => a.start - b.start);
  const out = [];
  let at = 0;
  for (const m of sorted) {
    const start = Math.max(m.start, at);
    if (start >= m.end) continue;
    if (start > at) out.push({ text: points.slice(at, start).join('') });
    out.push({ text: points.slice(start, m.end).join(''), mark: m });
    at = m.end;
  }
  if (at < points.length) out.push({ text: points.slice(at).join('') });
  return out;
}
