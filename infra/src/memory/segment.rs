//! Words for keyword search, the same for every index (SQLite FTS5, PostgreSQL full-text
//! search, Qdrant's sparse BM25 vectors).
//!
//! Text is cut into runs: Chinese/Japanese/Korean characters, other letters and digits,
//! and separators. A CJK run yields its words as `jieba` segments them for search plus
//! every pair of adjacent characters (bigrams), so a two-character name is found inside
//! an unsegmented sentence whatever jieba decides; another run is one lower-cased word
//! (common English function words are dropped: they would match every passage).

use jieba_rs::Jieba;
use std::sync::LazyLock;
use znovel_domain::text::is_cjk_char;

/// The segmenter (its dictionary loads once, on first use: ~0.3 s).
static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// Words too common to search by (English; CJK bigrams make Chinese stop words rare
/// enough to keep). Apostrophes separate words, as PostgreSQL's parser does.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing",
    "for", "from", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "my", "no", "nor",
    "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "out", "over", "own",
    "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
    "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why",
    "will", "with", "would", "you", "your",
    // What an apostrophe leaves behind ("Mara's", "don't", "we'll").
    "s", "t", "d", "ll", "re", "ve", "m",
];

/// Loads the dictionary now (start-up), so the first search does not pay for it.
pub fn warm_up() {
    LazyLock::force(&JIEBA);
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk_char(c)
}

/// The words of `text`, lower-cased, in order, repeated as often as they occur (term
/// frequency matters to BM25).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if is_cjk_char(c) {
            let mut j = i;
            while j < chars.len() && is_cjk_char(chars[j].1) {
                j += 1;
            }
            let end = chars.get(j).map_or(text.len(), |&(b, _)| b);
            cjk_run(&text[start..end], &mut out);
            i = j;
        } else if is_word_char(c) {
            let mut j = i;
            while j < chars.len() && is_word_char(chars[j].1) {
                j += 1;
            }
            let end = chars.get(j).map_or(text.len(), |&(b, _)| b);
            let word = text[start..end].to_lowercase();
            if !STOP_WORDS.contains(&word.as_str()) {
                out.push(word);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn cjk_run(run: &str, out: &mut Vec<String>) {
    for token in JIEBA.cut_for_search(run, true) {
        if token.word.chars().count() >= 2 || run.chars().count() == 1 {
            out.push(token.word.to_lowercase());
        }
    }
    let chars: Vec<char> = run.chars().collect();
    for pair in chars.windows(2) {
        let bigram: String = pair.iter().collect();
        if out.last().is_none_or(|w| *w != bigram) {
            out.push(bigram);
        }
    }
}

/// The distinct words of `text`, in first-seen order (for queries).
pub fn distinct_words(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    words(text)
        .into_iter()
        .filter(|w| seen.insert(w.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_names_are_found_inside_sentences() {
        let w = words("林黛玉进了贾府，宝玉笑了。");
        assert!(w.contains(&"黛玉".to_owned()), "{w:?}");
        assert!(w.contains(&"宝玉".to_owned()), "{w:?}");
        assert!(w.contains(&"贾府".to_owned()), "{w:?}");
    }

    #[test]
    fn latin_words_are_lower_cased_without_stop_words() {
        assert_eq!(
            words("The Ferret's knife, and Mara’s lamp: 3.5 coins!"),
            vec!["ferret", "knife", "mara", "lamp", "3", "5", "coins"]
        );
        assert_eq!(words("Élodie"), vec!["élodie"]);
        assert!(words("the of and").is_empty());
    }

    #[test]
    fn mixed_text_keeps_both() {
        let w = distinct_words("Alice 去了 Paris 和 Alice");
        assert_eq!(w.iter().filter(|x| *x == "alice").count(), 1);
        assert!(w.contains(&"paris".to_owned()));
        assert!(w.contains(&"去了".to_owned()));
    }
}
