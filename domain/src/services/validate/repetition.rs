//! A passage repeated from an earlier chapter: runs of at least [`MIN_TOKENS`] words
//! (CJK: characters) that an earlier passage has in the same order. Texts are compared
//! as sequences of 8-token shingles; the index of the earlier passages is built once per
//! story, so checking a chapter costs one hash look-up per token.

use super::{Ctx, EarlierPassage, evidence};
use crate::model::{IssueKind, Severity, ValidationIssue};
use crate::text::is_cjk_char;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Tokens per shingle.
const SHINGLE: usize = 8;
/// The shortest repeated run reported, in tokens: shorter runs are stock phrases.
pub const MIN_TOKENS: usize = 16;

/// A token: its hash and its code-point span.
#[derive(Debug, Clone, Copy)]
struct Token {
    hash: u64,
    start: usize,
    end: usize,
}

fn fnv(h: u64, c: char) -> u64 {
    (h ^ u64::from(c as u32)).wrapping_mul(0x0000_0100_0000_01b3)
}

/// Words of spaced scripts, lower-cased, and CJK characters, one token each.
fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word: Option<Token> = None;
    for (i, c) in text.chars().enumerate() {
        if is_cjk_char(c) {
            out.extend(word.take());
            out.push(Token {
                hash: fnv(0xcbf2_9ce4_8422_2325, c),
                start: i,
                end: i + 1,
            });
        } else if c.is_alphanumeric() {
            let w = word.get_or_insert(Token {
                hash: 0xcbf2_9ce4_8422_2325,
                start: i,
                end: i,
            });
            for l in c.to_lowercase() {
                w.hash = fnv(w.hash, l);
            }
            w.end = i + 1;
        } else {
            out.extend(word.take());
        }
    }
    out.extend(word);
    out
}

fn shingles(tokens: &[Token]) -> impl Iterator<Item = u64> + '_ {
    tokens.windows(SHINGLE).map(|w| {
        w.iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, t| {
            (h.rotate_left(5) ^ t.hash).wrapping_mul(0x0100_0000_01b3)
        })
    })
}

/// The keys are hashes already: no need to hash them again.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The shingles of the earlier passages, each to the first passage that has it.
pub struct ShingleIndex {
    map: HashMap<u64, u32, BuildHasherDefault<Identity>>,
    passages: Vec<EarlierPassage>,
}

impl ShingleIndex {
    /// Indexes `passages`.
    pub fn new(passages: &[EarlierPassage]) -> Self {
        let mut map: HashMap<u64, u32, BuildHasherDefault<Identity>> = HashMap::default();
        for (i, p) in passages.iter().enumerate() {
            for h in shingles(&tokens(&p.text)) {
                map.entry(h).or_insert(i as u32);
            }
        }
        Self {
            map,
            passages: passages.to_vec(),
        }
    }
}

/// Issues of passages repeated from earlier chapters.
pub(super) fn check(ctx: &Ctx<'_>, index: &ShingleIndex) -> Vec<ValidationIssue> {
    let mut out = Vec::new();
    if index.map.is_empty() {
        return out;
    }
    let text: String = ctx.doc.chars.iter().collect();
    let toks = tokens(&text);
    let hits: Vec<Option<u32>> = shingles(&toks)
        .map(|h| index.map.get(&h).copied())
        .collect();
    let mut i = 0;
    while i < hits.len() {
        let Some(first) = hits[i] else {
            i += 1;
            continue;
        };
        let mut j = i;
        while j + 1 < hits.len() && hits[j + 1].is_some() {
            j += 1;
        }
        let covered = j - i + SHINGLE;
        if covered >= MIN_TOKENS {
            let p = &index.passages[first as usize];
            let (start, end) = (toks[i].start, toks[j + SHINGLE - 1].end);
            out.push(ctx.issue(
                IssueKind::Repetition,
                Severity::Warning,
                (start, end),
                format!(
                    "{covered} words repeat a passage of chapter {} word for word",
                    p.chapter_seq
                ),
                vec![evidence::passage(p)],
                "Rewrite the passage, or refer back to it briefly",
            ));
        }
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::StoryBuilder;
    use crate::model::IssueKind;

    const EARLIER: &str = "The wind came down from the mountains that night, cold as iron, \
        and every dog in the village began to howl at once.";

    #[test]
    fn a_passage_repeated_from_an_earlier_chapter_is_flagged() {
        let mut b = StoryBuilder::new();
        b.passage(2, EARLIER);
        b.passage(
            3,
            "风从山上吹下来，冷得像铁一样，村子里所有的狗一齐叫了起来，一直叫到天亮。",
        );
        let text = format!("Morning came. {EARLIER} Nobody slept.");
        let issues = b.check(&text);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].kind, IssueKind::Repetition);
        let span = issues[0].span.as_ref().unwrap();
        assert_eq!(span.text, EARLIER.trim_end_matches('.'));
        assert_eq!(span.start, 14);
        assert_eq!(issues[0].evidence[0].chapter_seq, Some(2));
        let zh = b.check("天黑了。风从山上吹下来，冷得像铁一样，村子里所有的狗一齐叫了起来。");
        assert_eq!(zh.len(), 1, "{zh:?}");
        assert_eq!(zh[0].evidence[0].chapter_seq, Some(3));
    }

    #[test]
    fn short_shared_phrases_are_not_repetition() {
        let mut b = StoryBuilder::new();
        b.passage(2, EARLIER);
        for text in [
            "The wind came down from the mountains that night, and nobody cared.",
            "Every dog in the village began to howl.",
        ] {
            assert!(b.check(text).is_empty(), "{text}");
        }
    }
}
