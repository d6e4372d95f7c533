//! The checked text cut for the rules: sentences (with their paragraph and scene), the
//! entities each sentence names, and word look-ups. Offsets are Unicode code points of
//! the checked text; each sentence keeps a lower-cased copy with one character per
//! character of the original, so a position in the copy is a position in the text.

use crate::text::is_cjk_char;

/// One sentence of the checked text.
#[derive(Debug, Clone)]
pub(super) struct Sent {
    /// Start offset (code points).
    pub start: usize,
    /// End offset, exclusive.
    pub end: usize,
    /// The sentence lower-cased, character for character.
    pub lower: String,
    /// Index of its scene (scenes are separated by a line of `*`, `#`, `-`, `—`, `~`, `※`).
    pub scene: usize,
}

/// An entity named in a sentence.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mention {
    /// Index of the entity in the story.
    pub entity: usize,
    /// Index of the sentence.
    pub sent: usize,
    /// Byte range of the name in the sentence's lower-cased copy.
    pub bytes: (usize, usize),
}

/// Lower-cases one character into exactly one character.
fn lower1(c: char) -> char {
    let mut l = c.to_lowercase();
    match (l.next(), l.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

fn is_terminal(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…' | '；' | ';')
}

fn is_closing(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '”' | '’' | '」' | '』' | '）' | ')' | '》' | '】' | '»'
    )
}

fn is_scene_break(line: &[char]) -> bool {
    let t: Vec<char> = line
        .iter()
        .copied()
        .filter(|c| !c.is_whitespace())
        .collect();
    !t.is_empty()
        && t.iter()
            .all(|c| matches!(c, '*' | '#' | '-' | '—' | '~' | '※' | '◇' | '◆'))
}

/// Letters and digits of scripts written with spaces between words.
pub(super) fn spaced(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk_char(c)
}

/// Byte positions where `needle` (lower-case) occurs in `hay` as a word: not inside a
/// longer word of a spaced script; CJK anywhere.
pub(super) fn word_positions(hay: &str, needle: &str) -> Vec<usize> {
    let mut out = Vec::new();
    if needle.is_empty() {
        return out;
    }
    let first_spaced = needle.chars().next().is_some_and(spaced);
    let last_spaced = needle.chars().next_back().is_some_and(spaced);
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        let inside_word =
            first_spaced && before.is_some_and(spaced) || last_spaced && after.is_some_and(spaced);
        if !inside_word {
            out.push(start);
        }
        from = start + needle.chars().next().map_or(1, char::len_utf8);
    }
    out
}

/// Whether `hay` holds `needle` as a word.
pub(super) fn has(hay: &str, needle: &str) -> bool {
    !word_positions(hay, needle).is_empty()
}

/// Whether `hay` holds any of `needles` as a word.
pub(super) fn has_any(hay: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| has(hay, n))
}

/// The first `n` words of `hay` after byte `from` (words of spaced scripts only).
pub(super) fn words_after(hay: &str, from: usize, n: usize) -> Vec<&str> {
    hay[from..]
        .split(|c: char| !(spaced(c) || c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
        .take(n)
        .collect()
}

/// The last `n` words of `hay` before byte `to`, nearest first.
pub(super) fn words_before(hay: &str, to: usize, n: usize) -> Vec<&str> {
    hay[..to]
        .rsplit(|c: char| !(spaced(c) || c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
        .take(n)
        .collect()
}

/// The `n` characters of `hay` after byte `from`.
pub(super) fn chars_after(hay: &str, from: usize, n: usize) -> String {
    hay[from..].chars().take(n).collect()
}

/// The `n` characters of `hay` before byte `to`, in text order.
pub(super) fn chars_before(hay: &str, to: usize, n: usize) -> String {
    let mut v: Vec<char> = hay[..to].chars().rev().take(n).collect();
    v.reverse();
    v.into_iter().collect()
}

/// The checked text, cut for the rules.
pub(super) struct Doc {
    /// The text's characters.
    pub chars: Vec<char>,
    /// Its sentences, in order.
    pub sents: Vec<Sent>,
}

impl Doc {
    /// Cuts `text` into sentences, paragraphs and scenes.
    pub fn new(text: &str) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let mut sents = Vec::new();
        let mut scene = 0;
        let mut line_start = 0;
        while line_start < chars.len() {
            let line_end = chars[line_start..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |p| line_start + p);
            let line = &chars[line_start..line_end];
            if is_scene_break(line) {
                scene += 1;
            } else if line.iter().any(|c| !c.is_whitespace()) {
                Self::cut_line(&chars, line_start, line_end, scene, &mut sents);
            }
            line_start = line_end + 1;
        }
        Self { chars, sents }
    }

    fn cut_line(chars: &[char], from: usize, to: usize, scene: usize, out: &mut Vec<Sent>) {
        let mut i = from;
        while i < to {
            while i < to && chars[i].is_whitespace() {
                i += 1;
            }
            if i >= to {
                return;
            }
            let start = i;
            while i < to && !is_terminal(chars[i]) {
                i += 1;
            }
            while i < to && (is_terminal(chars[i]) || is_closing(chars[i])) {
                i += 1;
            }
            let mut end = i;
            while end > start && chars[end - 1].is_whitespace() {
                end -= 1;
            }
            out.push(Sent {
                start,
                end,
                lower: chars[start..end].iter().map(|&c| lower1(c)).collect(),
                scene,
            });
        }
    }

    /// The code-point offset in the text of byte `b` of sentence `s`'s copy.
    pub fn offset(&self, s: usize, b: usize) -> usize {
        let sent = &self.sents[s];
        sent.start + sent.lower[..b].chars().count()
    }

    /// The span (code points and exact text) of the whole sentence `s`.
    pub fn sentence_span(&self, s: usize) -> (usize, usize) {
        (self.sents[s].start, self.sents[s].end)
    }

    /// The text's characters `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> String {
        self.chars[start..end].iter().collect()
    }

    /// Every mention of the entities named by `names` (entity index, lower-case name),
    /// longest name first where two overlap.
    pub fn mentions(&self, names: &[(usize, String)]) -> Vec<Mention> {
        let mut out: Vec<Mention> = Vec::new();
        for (si, s) in self.sents.iter().enumerate() {
            let mut here: Vec<Mention> = Vec::new();
            for (entity, name) in names {
                for b in word_positions(&s.lower, name) {
                    here.push(Mention {
                        entity: *entity,
                        sent: si,
                        bytes: (b, b + name.len()),
                    });
                }
            }
            here.sort_by_key(|m| (m.bytes.0, usize::MAX - m.bytes.1));
            let mut kept: Vec<Mention> = Vec::new();
            for m in here {
                if kept
                    .iter()
                    .any(|k| m.bytes.0 < k.bytes.1 && k.bytes.0 < m.bytes.1)
                {
                    continue;
                }
                kept.push(m);
            }
            out.extend(kept);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_scenes_and_offsets_are_code_points() {
        let d = Doc::new("“走吧。”黛玉说。\n\n* * *\n\nNed smiled. He left!");
        let texts: Vec<String> = d.sents.iter().map(|s| d.slice(s.start, s.end)).collect();
        assert_eq!(texts, ["“走吧。”", "黛玉说。", "Ned smiled.", "He left!"]);
        assert_eq!(d.sents[1].scene, 0);
        assert_eq!(d.sents[2].scene, 1);
        let b = d.sents[1].lower.find('说').unwrap();
        assert_eq!(d.offset(1, b), 7);
    }

    #[test]
    fn words_are_bounded_in_spaced_scripts_only() {
        assert!(has("ned said so", "said"));
        assert!(!has("unsaid", "said"));
        assert!(has("他说道", "说"));
        assert_eq!(words_after("ned slowly said", 3, 2), ["slowly", "said"]);
        assert_eq!(words_before("as said ned", 8, 1), ["said"]);
    }
}
