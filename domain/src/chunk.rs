//! Cutting a chapter into passages to remember: whole sentences, packed up to a target
//! length, never across a paragraph break once a passage is half full, with one sentence
//! of overlap so a fact told across a boundary is still found whole. Every passage is an
//! exact slice of the chapter, with its offsets in Unicode code points, so a hit can be
//! quoted and linked.

use crate::text::{WordCounter, count_words};

/// Target length of a passage, in words (CJK: characters count as words).
pub const TARGET_WORDS: i64 = 90;
/// A passage longer than this is cut even inside a sentence.
pub const MAX_WORDS: i64 = 160;

/// One passage of a chapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// The text: exactly the chapter's characters `start..end`.
    pub text: String,
    /// Start offset in the chapter (Unicode code points).
    pub start: usize,
    /// End offset, exclusive.
    pub end: usize,
}

/// A sentence: char offsets, and whether a paragraph break follows it.
#[derive(Debug, Clone, Copy)]
struct Sentence {
    start: usize,
    end: usize,
    words: i64,
    paragraph_end: bool,
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

/// Splits `chars` into sentences (trimmed of surrounding whitespace).
fn sentences(chars: &[char]) -> Vec<Sentence> {
    let mut out = Vec::new();
    let n = chars.len();
    let mut i = 0;
    while i < n {
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= n {
            break;
        }
        let start = i;
        let mut end = n;
        let mut j = i;
        while j < n {
            let c = chars[j];
            if c == '\n' {
                end = j;
                break;
            }
            if is_terminal(c) {
                let mut k = j + 1;
                while k < n && (is_terminal(chars[k]) || is_closing(chars[k])) {
                    k += 1;
                }
                // A Latin full stop ends a sentence only before whitespace or the end
                // ("3.5", "e.g.x" do not); CJK marks always do.
                if c != '.' || k >= n || chars[k].is_whitespace() {
                    end = k;
                    break;
                }
                j = k;
                continue;
            }
            j += 1;
        }
        let mut e = end;
        while e > start && chars[e - 1].is_whitespace() {
            e -= 1;
        }
        // A paragraph ends at a blank line or a single newline (novels often use one).
        let mut k = end;
        let mut newlines = 0;
        while k < n && chars[k].is_whitespace() {
            if chars[k] == '\n' {
                newlines += 1;
            }
            k += 1;
        }
        if e > start {
            let text: String = chars[start..e].iter().collect();
            out.push(Sentence {
                start,
                end: e,
                words: count_words(&text).max(1),
                paragraph_end: newlines > 0 || k >= n,
            });
        }
        i = end.max(start + 1);
    }
    out
}

/// Cuts a sentence longer than [`MAX_WORDS`] into pieces of at most [`TARGET_WORDS`],
/// at whitespace where there is some.
fn split_long(chars: &[char], s: Sentence) -> Vec<Sentence> {
    if s.words <= MAX_WORDS {
        return vec![s];
    }
    let mut out = Vec::new();
    let mut start = s.start;
    while start < s.end {
        let mut end = start;
        let mut counter = WordCounter::default();
        let mut last_space = None;
        while end < s.end && counter.count() < TARGET_WORDS {
            counter.push(chars[end]);
            if chars[end].is_whitespace() {
                last_space = Some(end);
            }
            end += 1;
        }
        if end < s.end
            && let Some(space) = last_space.filter(|&p| p > start)
        {
            end = space;
        }
        let mut e = end;
        while e > start && chars[e - 1].is_whitespace() {
            e -= 1;
        }
        if e > start {
            let text: String = chars[start..e].iter().collect();
            out.push(Sentence {
                start,
                end: e,
                words: count_words(&text).max(1),
                paragraph_end: false,
            });
        }
        start = end;
        while start < s.end && chars[start].is_whitespace() {
            start += 1;
        }
    }
    if let Some(last) = out.last_mut() {
        last.paragraph_end = s.paragraph_end;
    }
    out
}

/// Cuts `content` into passages (see the module documentation). Empty content has none.
pub fn passages(content: &str) -> Vec<Passage> {
    let chars: Vec<char> = content.chars().collect();
    let all: Vec<Sentence> = sentences(&chars)
        .into_iter()
        .flat_map(|s| split_long(&chars, s))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < all.len() {
        let first = i;
        let mut words = 0;
        let mut j = i;
        while j < all.len() {
            words += all[j].words;
            j += 1;
            let full = words >= TARGET_WORDS;
            let break_here = all[j - 1].paragraph_end && words * 2 >= TARGET_WORDS;
            let next_too_long = j < all.len() && words + all[j].words > MAX_WORDS;
            if full || break_here || next_too_long {
                break;
            }
        }
        let (start, end) = (all[first].start, all[j - 1].end);
        out.push(Passage {
            text: chars[start..end].iter().collect(),
            start,
            end,
        });
        if j >= all.len() {
            break;
        }
        // One sentence of overlap, unless the passage is that one sentence (or the next
        // passage would start at a paragraph break).
        i = if j - first > 1 && !all[j - 1].paragraph_end {
            j - 1
        } else {
            j
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(content: &str, p: &Passage) -> String {
        content
            .chars()
            .skip(p.start)
            .take(p.end - p.start)
            .collect()
    }

    #[test]
    fn passages_are_exact_slices_with_code_point_offsets() {
        let content = "Mara lit the lamp. The storm came.\n\n\u{201c}Who is there?\u{201d} she asked. 林黛玉进了贾府。她笑了。";
        let ps = passages(content);
        assert!(!ps.is_empty());
        for p in &ps {
            assert_eq!(slice(content, p), p.text);
            assert!(!p.text.starts_with(char::is_whitespace));
            assert!(!p.text.ends_with(char::is_whitespace));
        }
        assert_eq!(ps[0].start, 0);
        let joined: String = ps
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(joined.contains("林黛玉进了贾府。"));
    }

    #[test]
    fn long_text_is_packed_near_the_target_with_overlap() {
        let sentence = "The keeper climbed the stairs again to tend the light. ";
        let content = sentence.repeat(60);
        let ps = passages(&content);
        assert!(ps.len() > 3, "{}", ps.len());
        for p in &ps {
            let w = count_words(&p.text);
            assert!(w <= MAX_WORDS, "{w}");
        }
        for pair in ps.windows(2) {
            assert!(pair[1].start < pair[0].end, "consecutive passages overlap");
        }
        assert_eq!(
            ps.last().map(|p| p.end),
            Some(content.trim_end().chars().count())
        );
    }

    #[test]
    fn sentences_end_at_terminal_marks_not_decimals() {
        let chars: Vec<char> = "It cost 3.5 coins. Done! 好。".chars().collect();
        let s = sentences(&chars);
        let texts: Vec<String> = s
            .iter()
            .map(|s| chars[s.start..s.end].iter().collect())
            .collect();
        assert_eq!(texts, vec!["It cost 3.5 coins.", "Done!", "好。"]);
    }

    #[test]
    fn a_sentence_without_end_is_cut_and_nothing_is_lost() {
        let content = "word ".repeat(400);
        let ps = passages(&content);
        assert!(ps.len() >= 4);
        assert!(ps.iter().all(|p| count_words(&p.text) <= MAX_WORDS));
        let covered: i64 = ps.iter().map(|p| count_words(&p.text)).sum();
        assert!(covered >= 400);
        assert!(passages("").is_empty());
        assert!(passages("   \n ").is_empty());
    }
}
